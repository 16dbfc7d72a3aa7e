"""Evaluate a training run: its adapter against its base model on a split of the run's own data, then the
forgetting check on a control set in another language, kept in the run's evaluation history."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from whisper_studio import runfolder, scoring
from whisper_studio.errors import ConfigError, DataSourceError, JobError, StudioError
from whisper_studio.evaluation.core import (ClipCounter, Progress, ScoredSet, build_result, score_set, select_rows,
                                            summarize)
from whisper_studio.evaluation.results import ControlResult, EvalResult, headline_text, save_eval
from whisper_studio.languages import Language, resolve

log = logging.getLogger(__name__)

CONTROL_CLIPS = 16  # enough to see an adapter break another language, few enough to cost seconds
CONTROL_SEED = 0  # the same control clips for every run and every evaluation, so the numbers compare
CONTROL_SOURCE = "synthetic eSpeak NG demo corpus, test split"


def default_control_language(run_language: Language) -> Language:
    """English, the language most users also need to keep; German for an English run."""
    return resolve("de" if run_language.whisper == "en" else "en")


def control_rows(language: Language, clips: int) -> list[Mapping[str, Any]]:
    """`clips` fixed clips of the demo corpus's test split in `language` (built once, offline, in seconds).

    The demo corpus rather than real speech: it is the only speech bundled or buildable offline for every
    control language (assets/examples holds single synthetic clips, not a set)."""
    from whisper_studio import data
    from whisper_studio.config import SourceConfig

    test = data.load_source(SourceConfig(kind="demo", language=language.locale), splits=("test",))["test"]
    return list(test.shuffle(seed=CONTROL_SEED).select(range(min(clips, len(test)))))


def _check_run(run_dir: Path):
    """The run's config, once its folder and a loadable-looking adapter are there (JobError / ModelError)."""
    from whisper_studio.config import TrainConfig
    from whisper_studio.models.lora import check_adapter_weights

    if not run_dir.is_dir():
        raise JobError(f"No run folder at {run_dir}.")
    if not (run_dir / runfolder.CONFIG).is_file():
        raise JobError(f"{run_dir} is not a run folder (it has no config.json).")
    cfg = TrainConfig.load(run_dir / runfolder.CONFIG)
    adapter = run_dir / runfolder.ADAPTER
    if not (adapter / "adapter_config.json").is_file():
        status = runfolder.read_status(run_dir)
        state = status.state if status else "unknown"
        if state in ("queued", "running"):
            why = "it is still training; the adapter is saved when it finishes or is stopped"
        elif state == "failed":
            why = "the run failed before saving one" + (f" ({status.error})" if status and status.error else "")
        else:
            why = f"the run is {state} but adapter/ is missing"
        raise JobError(f"Run {run_dir.name} has no adapter to evaluate: {why}.")
    check_adapter_weights(adapter)  # a truncated file fails here, in words, before any model loads
    return cfg, adapter


def evaluate_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    max_samples: int | None = None,
    batch_size: int = 8,
    progress: Progress | None = None,
    control: bool = True,
    control_clips: int = CONTROL_CLIPS,
    control_language: str | Language | None = None,
    base_cache: bool | scoring.BaseTranscriptCache = True,
    save: bool = True,
) -> EvalResult:
    """Evaluate a training run's adapter against its base model on a split of the run's own data source.

    `max_samples` defaults to the run's max_test_samples for the test split (the clips the job itself
    evaluated on), and to the whole split otherwise. `progress(done, total, message)` counts clips of the
    split and of the control set together. `control`: also score both models on `control_clips` clips of
    `control_language` (default: English, German for an English run). `base_cache`: reuse base transcripts
    (True: the shared cache under cache_dir(); False: always transcribe; or a cache object).
    `save`: keep the result in RUN_DIR/evals/ and eval.json (save_eval; ResultNotSaved if that fails).
    """
    t0 = time.time()
    run_dir = Path(run_dir).expanduser()
    # 1. The run, its adapter and the settings, checked before anything slow.
    cfg, adapter = _check_run(run_dir)
    language = resolve(cfg.language)
    if batch_size < 1:
        raise DataSourceError(f"Batch size must be at least 1 (got {batch_size}).")
    if max_samples is None and split == "test":
        max_samples = cfg.max_test_samples
    if max_samples is not None and max_samples < 1:
        raise DataSourceError(f"The number of clips to evaluate must be at least 1 (got {max_samples}).")
    if control and control_clips < 1:
        raise ConfigError(f"The control set needs at least 1 clip (got {control_clips}); or turn it off.")
    ctl_language = resolve(control_language) if control_language else default_control_language(language)
    if control and ctl_language.whisper == language.whisper:
        raise ConfigError(f"The control set must be in another language than the run's ({language.english}).")
    cache = base_cache if isinstance(base_cache, scoring.BaseTranscriptCache) else (
        scoring.BaseTranscriptCache() if base_cache else None)
    counter = ClipCounter(progress, 0)

    # 2. The clips: the same seeded subset the training job scored (train.py's _select); a random subset also
    # avoids the speaker or sentence ordering of a Common Voice tsv.
    from whisper_studio import data

    counter.say(f"loading the {split} split")
    dsd = data.load_source(cfg.source, splits=(split,))
    if split not in dsd:
        raise DataSourceError(f"The run's data source has no {split!r} split.")
    dataset = dsd[split]
    if len(dataset) == 0:
        raise DataSourceError(f"The {split} split of the run's data source is empty.")
    if max_samples is not None and len(dataset) > max_samples:
        dataset = dataset.shuffle(seed=cfg.seed).select(range(max_samples))
    rows_in = select_rows(dataset, max_samples)
    controls: Sequence[Mapping[str, Any]] = []
    control_skipped = None
    if control:
        counter.say(f"loading the {ctl_language.english} control set")
        try:
            controls = control_rows(ctl_language, control_clips)
        except StudioError as exc:  # the check is extra: without eSpeak NG the evaluation itself still runs
            control_skipped = str(exc)
            log.warning("control set skipped: %s", exc)
    counter.total = len(rows_in) + len(controls)

    # 3. Both sets in one session of one model: the adapter cannot change between the passes.
    counter.say(f"loading {cfg.model}")
    from whisper_studio.transcribe import get_transcriber

    transcriber = get_transcriber(cfg.model)
    with transcriber.session(str(adapter)) as session:
        main = score_set(session, rows_in, language, cfg.task, with_adapter=True, batch_size=batch_size,
                         counter=counter, cache=cache, label=f"{split} clips")
        ctl = None
        if controls:
            ctl = score_set(session, controls, ctl_language, "transcribe", with_adapter=True,
                            batch_size=batch_size, counter=counter, cache=cache,
                            label=f"{ctl_language.english} control clips")

    # 4. The result, with how it was made.
    result = build_result(main, rows_in, language, cfg.language, model_id=cfg.model, adapter_dir=adapter,
                          task=cfg.task, split=split, started=t0, batch_size=batch_size)
    result.control = _control_result(ctl, ctl_language) if ctl is not None and ctl.rows else None
    result.settings.update(
        max_samples=max_samples,
        control={"enabled": control, "language": ctl_language.locale, "clips": control_clips,
                 "seed": CONTROL_SEED, "base_cached": ctl.base_cached if ctl else None},
        control_skipped=control_skipped,
        base_cache=cache is not None,
        seconds=round(time.time() - t0, 2),
    )
    result.seconds = time.time() - t0
    # 5. Kept in the run's history.
    if save:
        save_eval(run_dir, result)
    counter.say(headline_text(result))
    return result


def _control_result(scored: ScoredSet, language: Language) -> ControlResult:
    numbers = summarize(scored.rows, language, with_adapter=True)
    return ControlResult(
        language=language.locale,
        n=len(scored.rows),
        base_wer=numbers["base_wer"],
        adapted_wer=numbers["adapted_wer"],
        base_cer=numbers["base_cer"],
        adapted_cer=numbers["adapted_cer"],
        source=CONTROL_SOURCE,
        base_wer_normalized=numbers["base_wer_normalized"],
        adapted_wer_normalized=numbers["adapted_wer_normalized"],
        normalizer=numbers["normalizer"],
        headline=numbers["headline"],
        flagged=numbers["audit_summary"]["adapted"]["flagged"],
    )


__all__ = ["CONTROL_CLIPS", "control_rows", "default_control_language", "evaluate_run"]
