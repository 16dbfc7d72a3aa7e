"""The reusable core: transcribe clips with the base model and the adapter, score each one, and sum up.

Both transcripts come from ONE base model in memory (transcribe.get_transcriber), with the LoRA adapter
switched off for the base pass: the comparison isolates the adapter, and memory holds one model, not two.
Decoding is greedy with the language and task forced, as in training, so language detection errors do not
leak into the comparison. Base transcripts can come from a scoring.BaseTranscriptCache (`cache=`): the base
model's output on the same clips with the same decoding does not change, so re-evaluating skips that pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from whisper_studio import audio as audio_io
from whisper_studio import scoring
from whisper_studio.audio import SAMPLE_RATE
from whisper_studio.errors import AudioError, DataSourceError
from whisper_studio.evaluation.results import EvalResult, UtteranceRow
from whisper_studio.inference.decode import resolve_language
from whisper_studio.languages import Language

# progress(done clips, total clips, message); called once per batch of clips.
Progress = Callable[[int, int, str], None]

# Speech carries at most ~18 tokens a second even in scripts the byte-level BPE splits finely (measured on the
# demo corpora: Marathi, Hindi, Tamil 12-18 tokens/s; English and German 4-6). A model that never reaches
# end-of-text (a base model lost in an unfamiliar language, a random model) would otherwise decode all 448
# positions for every clip of the batch: a budget of ~1.7x the fastest speech keeps every real transcript whole
# and ends the runaways early.
TOKENS_PER_SECOND_BUDGET = 30
MAX_TARGET_TOKENS = 440
BUDGET_FLOOR = 16


def token_budget(seconds: float) -> int:
    return int(min(MAX_TARGET_TOKENS, BUDGET_FLOOR + TOKENS_PER_SECOND_BUDGET * seconds))


class ClipCounter:
    """Clips done out of a total that may span several sets (the main split, then the control clips)."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total, message)

    def add(self, n: int, message: str) -> None:
        self.done = min(self.total, self.done + n)
        self.say(message)


class Eta:
    """Seconds left of an evaluation, from the pace since the first finished batch: model loading and the first
    batch (warm-up) are not in the rate, so the estimate is not inflated by them. The one ETA rule for the
    Evaluate tab, the CLI and the job's closing evaluation. None until two batches are done."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.first: tuple[float, int] | None = None  # (time, clips done) at the first report with clips done

    def __call__(self, done: int, total: int) -> float | None:
        now = self.clock()
        if done <= 0:
            return None
        if self.first is None:
            self.first = (now, done)
            return None
        t0, done0 = self.first
        if not done0 < done < total:
            return None
        return (now - t0) / (done - done0) * (total - done)


# --- cache keys -------------------------------------------------------------------------------------------------
def model_key(transcriber) -> str:
    """The model id and a stamp of its folder (file names, sizes, mtimes): a reconverted or retrained base in
    the same folder is another model."""
    from whisper_studio import models

    model_id = str(getattr(transcriber, "model_id", ""))
    try:
        folder = models.resolve(model_id)
        stamp = hashlib.sha256(json.dumps(sorted(
            (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())).encode())
        return f"{model_id}|{folder}|{stamp.hexdigest()[:16]}"
    except Exception:  # not a resolvable id (a test double): the id alone, the cache stays correct per id
        return model_id


def data_fingerprint(rows: Sequence[Mapping[str, Any]]) -> str:
    """sha256 of the exact clips in order: id, audio path (with its size and mtime) or audio bytes, sentence."""
    digest = hashlib.sha256()
    for index, row in enumerate(rows):
        src = row.get("audio")
        path = src.get("path") if isinstance(src, Mapping) else (str(src) if isinstance(src, (str, Path)) else None)
        audio: Any = None
        if isinstance(src, Mapping) and src.get("bytes"):
            audio = hashlib.sha256(src["bytes"]).hexdigest()
        elif isinstance(src, Mapping) and src.get("array") is not None:
            import numpy as np

            audio = hashlib.sha256(np.ascontiguousarray(src["array"]).tobytes()).hexdigest()
        elif path:
            try:
                st = Path(path).stat()
                audio = [st.st_size, st.st_mtime_ns]
            except OSError:
                audio = None
        digest.update(json.dumps([str(row.get("id", index)), path, audio, str(row.get("sentence") or "")],
                                 ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def decoding_settings(transcriber, batch_size: int) -> dict[str, Any]:
    """Everything besides model, data, language and task that shapes a base transcript."""
    return {
        "decoder": "greedy" if getattr(transcriber, "fast_decode", True) else "generate",
        "inference": str(getattr(transcriber, "inference", "")),
        "device": str(getattr(transcriber, "device", "")),
        "batch_size": batch_size,  # the token budget is per batch (its longest clip)
        "token_budget": [BUDGET_FLOOR, TOKENS_PER_SECOND_BUDGET, MAX_TARGET_TOKENS],
    }


# --- one set of clips -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class ScoredSet:
    rows: list[UtteranceRow]
    skipped: list[dict[str, str]]
    base_cached: bool
    fingerprint: str
    decoding: dict[str, Any]


def score_set(session, rows_in: Sequence[Mapping[str, Any]], language: Language | None, task: str, *,
              with_adapter: bool, batch_size: int, counter: ClipCounter, cache: scoring.BaseTranscriptCache | None,
              label: str = "clips") -> ScoredSet:
    """Transcribe and score `rows_in` inside a transcriber session (its adapter already chosen)."""
    # 1. The base transcripts from the cache, if this exact base pass was done before.
    fingerprint = data_fingerprint(rows_in)
    decoding = decoding_settings(session, batch_size)
    key = cached = None
    if cache is not None:
        key = cache.key(model_key(session), fingerprint, language if language is not None else "auto", task, decoding)
        cached = cache.get(key)
        if cached is not None and len(cached) != len(rows_in):
            cached = None
    # 2. Batch by batch: the audio of a whole split need not sit in memory, and progress moves.
    rows: list[UtteranceRow] = []
    skipped: list[dict[str, str]] = []
    base_all = [""] * len(rows_in)  # per input row, "" for undecodable ones (what the cache keeps)
    total = len(rows_in)
    for start in range(0, total, batch_size):
        chunk = rows_in[start:start + batch_size]
        arrays, kept = [], []
        for i, row in enumerate(chunk):
            try:
                arrays.append(decode_audio(row.get("audio")))
                kept.append((start + i, row))
            except AudioError as exc:
                skipped.append({"id": str(row.get("id", start + i)), "error": str(exc)})
        if arrays:
            budget = token_budget(max(len(a) for a in arrays) / SAMPLE_RATE)
            if cached is not None:
                base = [cached[index] for index, _ in kept]
            else:
                base = session.transcribe_batch(arrays, language=language, task=task, adapted=False,
                                                batch_size=batch_size, max_new_tokens=budget)
            adapted = (
                session.transcribe_batch(arrays, language=language, task=task, adapted=True,
                                         batch_size=batch_size, max_new_tokens=budget)
                if with_adapter else [None] * len(arrays)
            )
            for (index, row), b, a in zip(kept, base, adapted):
                base_all[index] = (b or "").strip()
                rows.append(score_row(row, index, b, a, language))
        counter.add(len(chunk), f"transcribed {min(start + batch_size, total)}/{total} {label}")
    # 3. Keep the base pass for the next evaluation of the same clips.
    if cache is not None and cached is None and rows:
        cache.put(key, base_all)
    return ScoredSet(rows, skipped, cached is not None, fingerprint, decoding)


def decode_audio(src: Any):
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


def _audit_dict(audit: scoring.Audit) -> dict[str, Any]:
    # flags as a list: what eval.json gives back, so a saved row equals the row it was made from
    return {**dataclasses.asdict(audit), "flags": list(audit.flags)}


def _cer_text(text: str, spaceless: bool) -> str:
    return "".join(text.split()) if spaceless else text


def score_row(row: Mapping[str, Any], index: int, base: str, adapted: str | None, language: Language | None) -> UtteranceRow:
    normalize = scoring.normalizer_for(language)
    spaceless = scoring.is_spaceless(language)
    reference = str(row.get("sentence") or "")
    base = (base or "").strip()
    adapted = adapted.strip() if adapted is not None else None
    src = row.get("audio")
    path = src.get("path") if isinstance(src, Mapping) else (str(src) if isinstance(src, (str, Path)) else None)
    ref_n, base_n = normalize(reference), normalize(base)
    adapted_n = normalize(adapted) if adapted is not None else None
    base_wer = scoring.utterance_wer(reference, base)
    adapted_wer = scoring.utterance_wer(reference, adapted) if adapted is not None else None
    base_wer_n = scoring.utterance_wer(ref_n, base_n)
    adapted_wer_n = scoring.utterance_wer(ref_n, adapted_n) if adapted_n is not None else None
    ref_c = _cer_text(ref_n, spaceless)
    base_audit = scoring.audit(reference, base, language)
    adapted_audit = scoring.audit(reference, adapted, language) if adapted is not None else None
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
        base_cer=scoring.utterance_cer(ref_c, _cer_text(base_n, spaceless)),
        adapted_cer=scoring.utterance_cer(ref_c, _cer_text(adapted_n, spaceless)) if adapted_n is not None else None,
        audit={"base": _audit_dict(base_audit), "adapted": _audit_dict(adapted_audit) if adapted_audit else None},
        flags=list((adapted_audit or base_audit).flags),
    )


def summarize(rows: Sequence[UtteranceRow], language: Language | None, with_adapter: bool) -> dict[str, Any]:
    """The corpus numbers of scored rows, as EvalResult fields (scoring.score: the one definition)."""
    refs = [r.reference for r in rows]
    base = scoring.score(refs, [r.base for r in rows], language)
    adapted = scoring.score(refs, [r.adapted or "" for r in rows], language) if with_adapter else None

    def audits(side: str):
        return [scoring.Audit(**{**r.audit[side], "flags": tuple(r.audit[side]["flags"])}) for r in rows]

    return {
        "base_wer": base.wer,
        "adapted_wer": adapted.wer if adapted else None,
        "base_wer_normalized": base.wer_normalized,
        "adapted_wer_normalized": adapted.wer_normalized if adapted else None,
        "base_cer": base.cer,
        "adapted_cer": adapted.cer if adapted else None,
        "normalizer": base.normalizer,
        "headline": base.headline,
        "audit_summary": {"base": scoring.audit_summary(audits("base")),
                          "adapted": scoring.audit_summary(audits("adapted")) if with_adapter else None},
    }


def select_rows(dataset: Iterable[Mapping[str, Any]], max_samples: int | None) -> list[Mapping[str, Any]]:
    if max_samples is not None and max_samples < 1:
        raise DataSourceError(f"The number of clips to evaluate must be at least 1 (got {max_samples}).")
    if max_samples is not None and hasattr(dataset, "select") and hasattr(dataset, "__len__"):
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    rows_in = list(dataset)
    if max_samples is not None:
        rows_in = rows_in[:max_samples]
    if not rows_in:
        raise DataSourceError("There are no clips to evaluate.")
    return rows_in


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
    cache: scoring.BaseTranscriptCache | None = None,
) -> EvalResult:
    """Transcribe every clip of `dataset` with the base model and (if `adapter_dir`) the adapted one; score.

    `dataset`: rows with `audio` (a `{path, bytes}` dict as data.load_source gives, a path, or a
    `{array, sampling_rate}` dict), `sentence` and optionally `id`; a datasets.Dataset or any iterable.
    `language`: a Language, Common Voice locale or Whisper code ("auto": detected per clip); it is forced in
    decoding and picks the normalizer. `cache`: reuse (and keep) base transcripts; None (the default, what
    bench timings need) always runs the base pass.
    """
    t0 = time.time()
    rows_in = select_rows(dataset, max_samples)
    lang = resolve_language(language)
    counter = ClipCounter(progress, len(rows_in))
    counter.say(f"loading {model_id}")
    if transcriber is None:
        from whisper_studio.transcribe import get_transcriber

        transcriber = get_transcriber(model_id)
    # The transcriber is process-wide: the session keeps our adapter for the whole evaluation, so another caller
    # cannot switch it between our base and adapted passes.
    with transcriber.session(str(adapter_dir) if adapter_dir is not None else None) as session:
        scored = score_set(session, rows_in, lang, task, with_adapter=adapter_dir is not None,
                           batch_size=batch_size, counter=counter, cache=cache)
    return build_result(scored, rows_in, lang, language, model_id=model_id, adapter_dir=adapter_dir, task=task,
                        split=split, started=t0, batch_size=batch_size)


def build_result(scored: ScoredSet, rows_in, lang: Language | None, language, *, model_id, adapter_dir, task, split,
                 started: float, batch_size: int) -> EvalResult:
    if not scored.rows:
        raise DataSourceError(f"None of the {len(rows_in)} clips could be decoded "
                              f"(first error: {scored.skipped[0]['error']}).")
    return EvalResult(
        **summarize(scored.rows, lang, adapter_dir is not None),
        n=len(scored.rows),
        rows=scored.rows,
        model=str(model_id),
        adapter=str(adapter_dir) if adapter_dir is not None else None,
        language=lang.locale if lang is not None else str(language),
        task=task,
        split=split,
        seconds=time.time() - started,
        skipped=scored.skipped,
        settings={"split": split, "clips": len(rows_in), "batch_size": batch_size, "model": str(model_id),
                  "decoding": scored.decoding, "data": scored.fingerprint, "base_cached": scored.base_cached},
    )
