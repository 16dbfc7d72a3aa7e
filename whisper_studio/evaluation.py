"""Word error rate of the base model against the run's adapter, utterance by utterance.

    evaluate_run(RUN_DIR)  -> EvalResult, also written to RUN_DIR/eval.json
    evaluate_model(model_id, adapter_dir, dataset, language)   the reusable core
    word_errors(ref, hyp)  -> [(op, ref_word, hyp_word)] for marking errors in the UI
    format_summary(result) -> the text table `python -m whisper_studio evaluate` prints (whisper_studio/cli/evaluate.py)

Both transcripts come from ONE base model in memory (transcribe.get_transcriber), with the LoRA adapter
switched off for the base pass: the comparison isolates the adapter, and memory holds one model, not two. The
language is resolved once, at evaluate_run / evaluate_model, and passed down as a `languages.Language`.
Decoding is greedy with the language and task forced, as in training, so language detection errors do not
leak into the comparison.

WER is reported twice. Raw: jiwer on the text as written (only whitespace split), so punctuation and case
count. Normalized: Whisper's own normalizers (EnglishTextNormalizer for English, BasicTextNormalizer for
every other language), the number papers quote. BasicTextNormalizer replaces every Unicode mark (category
M*) by a space, which breaks Devanagari, Tamil, ... words at their vowel signs (मराठी -> "मर ठ"): for those
scripts the normalized number counts fragments, not words, which is why the raw number is reported beside it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import jiwer

from whisper_studio import audio as audio_io
from whisper_studio import runfolder
from whisper_studio.audio import SAMPLE_RATE
from whisper_studio.errors import AudioError, DataSourceError, JobError
from whisper_studio.inference.decode import resolve_language
from whisper_studio.languages import Language

__all__ = ["UtteranceRow", "EvalResult", "evaluate_run", "evaluate_model", "word_errors", "load_eval",
           "normalizer_for", "corpus_wer", "token_budget", "format_summary"]

Progress = Callable[[float, str], None]
RESOURCES = Path(__file__).resolve().parent / "resources"


@dataclass
class UtteranceRow:
    id: str
    audio: str | None  # the clip's path (None for in-memory audio)
    reference: str
    base: str
    adapted: str | None  # None when no adapter was evaluated
    base_wer: float
    adapted_wer: float | None
    delta: float | None  # adapted_wer - base_wer: negative means the adapter helped on this clip
    reference_normalized: str = ""
    base_normalized: str = ""
    adapted_normalized: str | None = None
    base_wer_normalized: float = 0.0
    adapted_wer_normalized: float | None = None
    delta_normalized: float | None = None


@dataclass
class EvalResult:
    base_wer: float
    adapted_wer: float | None
    base_wer_normalized: float
    adapted_wer_normalized: float | None
    n: int
    rows: list[UtteranceRow]
    model: str = ""
    adapter: str | None = None
    language: str = ""
    task: str = "transcribe"
    split: str | None = None
    normalizer: str = ""
    seconds: float = 0.0
    created: float = field(default_factory=time.time)
    skipped: list[dict[str, str]] = field(default_factory=list)  # clips whose audio could not be decoded

    def summary(self) -> dict[str, Any]:
        """The five headline numbers (what `evaluate --json` prints)."""
        return {
            "base_wer": self.base_wer,
            "adapted_wer": self.adapted_wer,
            "base_wer_normalized": self.base_wer_normalized,
            "adapted_wer_normalized": self.adapted_wer_normalized,
            "n": self.n,
        }

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["summary"] = self.summary()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvalResult":
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        row_fields = {f.name for f in dataclasses.fields(UtteranceRow)}
        kwargs["rows"] = [UtteranceRow(**{k: v for k, v in r.items() if k in row_fields}) for r in data.get("rows", [])]
        return cls(**kwargs)


def load_eval(run_dir: str | Path) -> EvalResult | None:
    """The run's last evaluation (RUN_DIR/eval.json), or None if it has none."""
    try:
        data = json.loads((Path(run_dir) / runfolder.EVAL).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return EvalResult.from_dict(data)


# --- scoring -------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _english_normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    # transformers ships the normalizer but not Whisper's British->American spelling map; ours is a copy.
    mapping = json.loads((RESOURCES / "english.json").read_text(encoding="utf-8"))
    return EnglishTextNormalizer(mapping)


@functools.lru_cache(maxsize=None)
def _basic_normalizer():
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    return BasicTextNormalizer()


def normalizer_for(language: str | Language | None) -> tuple[str, Callable[[str], str]]:
    """(name, function): Whisper's English normalizer for English, its basic normalizer otherwise (also for
    None, a detected language)."""
    lang = resolve_language(language)
    if lang is not None and lang.whisper == "en":
        return "whisper-english", _english_normalizer()
    return "whisper-basic", _basic_normalizer()


def _utterance_wer(ref: str, hyp: str) -> float:
    return float(jiwer.process_words(ref, hyp).wer)


def corpus_wer(refs: list[str], hyps: list[str]) -> float:
    """Corpus WER: all errors over all reference words (not a mean of per-clip rates, which would let a
    two-word clip weigh as much as a forty-word one)."""
    if not refs:
        return 0.0
    return float(jiwer.process_words(list(refs), list(hyps)).wer)


def word_errors(ref: str, hyp: str, *, normalize: Callable[[str], str] | None = None) -> list[tuple[str, str | None, str | None]]:
    """The word alignment of `hyp` against `ref`: (op, ref_word, hyp_word) with op one of equal, substitute,
    delete (hyp_word None) or insert (ref_word None), in reading order. `normalize` is applied to both
    first (e.g. `normalizer_for("en")[1]`)."""
    if normalize is not None:
        ref, hyp = normalize(ref), normalize(hyp)
    if not ref.split() and not hyp.split():
        return []
    out = jiwer.process_words(ref, hyp)
    ref_words, hyp_words = out.references[0], out.hypotheses[0]
    ops: list[tuple[str, str | None, str | None]] = []
    for chunk in out.alignments[0]:
        r = ref_words[chunk.ref_start_idx:chunk.ref_end_idx]
        h = hyp_words[chunk.hyp_start_idx:chunk.hyp_end_idx]
        if chunk.type in ("equal", "substitute"):
            ops.extend((chunk.type, a, b) for a, b in zip(r, h))
        elif chunk.type == "delete":
            ops.extend(("delete", a, None) for a in r)
        elif chunk.type == "insert":
            ops.extend(("insert", None, b) for b in h)
        else:  # a jiwer version with a new op type: fail loudly rather than mark errors wrongly
            raise ValueError(f"unknown alignment op {chunk.type!r}")
    return ops


# --- the core -------------------------------------------------------------------------------------------
def evaluate_model(
    model_id: str,
    adapter_dir: str | Path | None,
    dataset: Iterable[Mapping[str, Any]],
    language: str | Language,
    *,
    task: str = "transcribe",
    max_samples: int | None = None,
    batch_size: int = 8,
    progress: Progress | None = None,
    transcriber=None,
    split: str | None = None,
) -> EvalResult:
    """Transcribe every clip of `dataset` with the base model and (if `adapter_dir`) the adapted one; score.

    `dataset`: rows with `audio` (a `{path, bytes}` dict as data.load_source gives, a path, or a
    `{array, sampling_rate}` dict), `sentence` and optionally `id`; a datasets.Dataset or any iterable.
    `language`: a Language, Common Voice locale or Whisper code ("auto": detected per clip); it is forced in
    decoding and picks the normalizer.
    """
    t0 = time.time()
    report = progress or (lambda fraction, message: None)
    if max_samples is not None and max_samples < 1:
        raise DataSourceError(f"The number of clips to evaluate must be at least 1 (got {max_samples}).")
    if max_samples is not None and hasattr(dataset, "select") and hasattr(dataset, "__len__"):
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    rows_in = list(dataset)
    if max_samples is not None:
        rows_in = rows_in[:max_samples]
    if not rows_in:
        raise DataSourceError("There are no clips to evaluate.")
    lang = resolve_language(language)
    norm_name, normalize = normalizer_for(lang)

    report(0.0, f"loading {model_id}")
    if transcriber is None:
        from whisper_studio.transcribe import get_transcriber

        transcriber = get_transcriber(model_id)
    # The transcriber is process-wide: the session keeps our adapter for the whole evaluation, so another caller
    # cannot switch it between our base and adapted passes.
    with transcriber.session(str(adapter_dir) if adapter_dir is not None else None) as session:
        rows, skipped = _transcribe_all(session, rows_in, lang, task, adapter_dir is not None, batch_size,
                                        normalize, report)
    total = len(rows_in)
    if not rows:
        raise DataSourceError(f"None of the {total} clips could be decoded (first error: {skipped[0]['error']}).")

    refs = [r.reference for r in rows]
    refs_n = [r.reference_normalized for r in rows]
    has_adapter = adapter_dir is not None
    return EvalResult(
        base_wer=corpus_wer(refs, [r.base for r in rows]),
        adapted_wer=corpus_wer(refs, [r.adapted for r in rows]) if has_adapter else None,
        base_wer_normalized=corpus_wer(refs_n, [r.base_normalized for r in rows]),
        adapted_wer_normalized=corpus_wer(refs_n, [r.adapted_normalized for r in rows]) if has_adapter else None,
        n=len(rows),
        rows=rows,
        model=str(model_id),
        adapter=str(adapter_dir) if adapter_dir is not None else None,
        language=lang.locale if lang is not None else str(language),
        task=task,
        split=split,
        normalizer=norm_name,
        seconds=time.time() - t0,
        skipped=skipped,
    )


# Speech carries at most ~18 tokens a second even in scripts the byte-level BPE splits finely (measured on the
# demo corpora: Marathi, Hindi, Tamil 12-18 tokens/s; English and German 4-6). A model that never reaches
# end-of-text (a base model lost in an unfamiliar language, a random model) would otherwise decode all 448
# positions for every clip of the batch: a budget of ~1.7x the fastest speech keeps every real transcript whole
# and ends the runaways early.
TOKENS_PER_SECOND_BUDGET = 30
MAX_TARGET_TOKENS = 440


def token_budget(seconds: float) -> int:
    return int(min(MAX_TARGET_TOKENS, 16 + TOKENS_PER_SECOND_BUDGET * seconds))


def _transcribe_all(transcriber, rows_in, language: Language | None, task, with_adapter, batch_size, normalize, report):
    rows: list[UtteranceRow] = []
    skipped: list[dict[str, str]] = []
    total = len(rows_in)
    # One batch at a time: the audio of a whole test split need not sit in memory, and progress moves.
    for start in range(0, total, batch_size):
        chunk = rows_in[start:start + batch_size]
        arrays, kept = [], []
        for i, row in enumerate(chunk):
            clip_id = str(row.get("id", start + i))
            try:
                arrays.append(_decode(row.get("audio")))
                kept.append((start + i, row))
            except AudioError as exc:
                skipped.append({"id": clip_id, "error": str(exc)})
        if arrays:
            budget = token_budget(max(len(a) for a in arrays) / SAMPLE_RATE)
            base = transcriber.transcribe_batch(arrays, language=language, task=task, adapted=False,
                                                batch_size=batch_size, max_new_tokens=budget)
            adapted = (
                transcriber.transcribe_batch(arrays, language=language, task=task, adapted=True,
                                             batch_size=batch_size, max_new_tokens=budget)
                if with_adapter
                else [None] * len(arrays)
            )
            for (index, row), b, a in zip(kept, base, adapted):
                rows.append(_score_row(row, index, b, a, normalize))
        done = min(start + batch_size, total)
        report(done / total, f"transcribed {done}/{total} clips")
    return rows, skipped


def _decode(src: Any):
    """A dataset row's audio -> float32 mono 16 kHz."""
    if isinstance(src, Mapping):
        if src.get("array") is not None:
            import numpy as np

            return audio_io.to_16k(np.asarray(src["array"], dtype="float32"), int(src.get("sampling_rate") or SAMPLE_RATE))
        if src.get("bytes"):
            return audio_io.load_audio(src["bytes"])
        if src.get("path"):
            return audio_io.load_audio(src["path"])
        raise AudioError("A clip has neither audio bytes nor a path.")
    if src is None:
        raise AudioError("A clip has no audio.")
    return audio_io.load_audio(src)


def _score_row(row: Mapping[str, Any], index: int, base: str, adapted: str | None, normalize) -> UtteranceRow:
    reference = str(row.get("sentence") or "")
    base = (base or "").strip()
    adapted = adapted.strip() if adapted is not None else None
    src = row.get("audio")
    path = src.get("path") if isinstance(src, Mapping) else (str(src) if isinstance(src, (str, Path)) else None)
    ref_n, base_n = normalize(reference), normalize(base)
    adapted_n = normalize(adapted) if adapted is not None else None
    base_wer = _utterance_wer(reference, base)
    adapted_wer = _utterance_wer(reference, adapted) if adapted is not None else None
    base_wer_n = _utterance_wer(ref_n, base_n)
    adapted_wer_n = _utterance_wer(ref_n, adapted_n) if adapted_n is not None else None
    return UtteranceRow(
        id=str(row.get("id", index)),
        audio=path,
        reference=reference,
        base=base,
        adapted=adapted,
        base_wer=base_wer,
        adapted_wer=adapted_wer,
        delta=(adapted_wer - base_wer) if adapted_wer is not None else None,
        reference_normalized=ref_n,
        base_normalized=base_n,
        adapted_normalized=adapted_n,
        base_wer_normalized=base_wer_n,
        adapted_wer_normalized=adapted_wer_n,
        delta_normalized=(adapted_wer_n - base_wer_n) if adapted_wer_n is not None else None,
    )


# --- a run ----------------------------------------------------------------------------------------------
def evaluate_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    max_samples: int | None = None,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> EvalResult:
    """Evaluate a training run's adapter against its base model on a split of the run's own data source;
    writes RUN_DIR/eval.json. `max_samples` defaults to the run's max_test_samples for the test split (the
    clips the job itself evaluated on), and to the whole split otherwise."""
    from whisper_studio.config import TrainConfig

    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise JobError(f"No run folder at {run_dir}.")
    if not (run_dir / runfolder.CONFIG).is_file():
        raise JobError(f"{run_dir} is not a run folder (it has no config.json).")
    cfg = TrainConfig.load(run_dir / runfolder.CONFIG)
    language = resolve_language(cfg.language)
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
    if batch_size < 1:
        raise DataSourceError(f"Batch size must be at least 1 (got {batch_size}).")
    if max_samples is None and split == "test":
        max_samples = cfg.max_test_samples
    if max_samples is not None and max_samples < 1:
        raise DataSourceError(f"The number of clips to evaluate must be at least 1 (got {max_samples}).")

    report = progress or (lambda fraction, message: None)
    from whisper_studio import data

    report(0.0, f"loading the {split} split")
    dsd = data.load_source(cfg.source, splits=(split,))
    if split not in dsd:
        raise DataSourceError(f"The run's data source has no {split!r} split.")
    dataset = dsd[split]
    if len(dataset) == 0:
        raise DataSourceError(f"The {split} split of the run's data source is empty.")
    if max_samples is not None and len(dataset) > max_samples:
        # The same seeded subset the training job scored during training (train.py's _select): a random
        # subset also avoids the speaker or sentence ordering of a Common Voice tsv.
        dataset = dataset.shuffle(seed=cfg.seed).select(range(max_samples))
    result = evaluate_model(
        cfg.model,
        adapter,
        dataset,
        language,
        task=cfg.task,
        max_samples=max_samples,
        batch_size=batch_size,
        progress=progress,
        split=split,
    )
    runfolder.write_json_atomic(run_dir / runfolder.EVAL, result.to_dict())
    report(1.0, f"WER base {_pct(result.base_wer)} -> adapted {_pct(result.adapted_wer)} on {result.n} clips")
    return result


# --- text -----------------------------------------------------------------------------------------------
def format_summary(result: EvalResult, run_dir: Path | None = None) -> str:
    lines = [
        f"{result.n} clips" + (f" of the {result.split} split" if result.split else "")
        + f", language {result.language}, model {result.model}"
        + (f" ({len(result.skipped)} undecodable clips skipped)" if result.skipped else ""),
        "",
        f"{'':10}{'WER':>10}{'normalized':>14}",
        f"{'base':10}{_pct(result.base_wer):>10}{_pct(result.base_wer_normalized):>14}",
    ]
    if result.adapted_wer is not None:
        lines.append(f"{'adapted':10}{_pct(result.adapted_wer):>10}{_pct(result.adapted_wer_normalized):>14}")
        lines.append(
            f"{'change':10}{_pts(result.adapted_wer - result.base_wer):>10}"
            f"{_pts(result.adapted_wer_normalized - result.base_wer_normalized):>14}"
        )
    lines.append("")
    lines.append(f"normalizer: {result.normalizer}; raw WER counts case and punctuation")
    if run_dir is not None:
        lines.append(f"per-utterance rows: {Path(run_dir) / runfolder.EVAL}")
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f} %"


def _pts(x: float) -> str:
    return f"{x * 100:+.1f} pts"
