"""Log-mel features and labels for Whisper (`prepare`, cached on disk), and the training collator.

`prepare` decodes each clip (whisper_studio.audio: soundfile + soxr), computes `input_features` and the
`labels` token ids, drops what Whisper cannot learn from (clips over 30 s, labels over 448 tokens, unreadable
files) and stores the result under cache_dir()/features/<fingerprint>/ for later runs on the same data.

torch is imported only inside the collator: the UI imports data.py, which re-exports this module's names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from whisper_studio import audio, languages, paths
from whisper_studio.errors import AudioError, DataSourceError
from whisper_studio.sources.base import Progress
from whisper_studio.sources.base import report_progress as _report

log = logging.getLogger("whisper_studio.data")

MAX_AUDIO_SECONDS = 30.0  # Whisper's window: the feature extractor pads/cuts every clip to 30 s


# --------------------------------------------------------------------------------------------------------------
# Clip lengths, from the audio headers (no decoding)
# --------------------------------------------------------------------------------------------------------------
_DURATIONS: dict[tuple, float] = {}


def clip_seconds(value: dict) -> float:
    """Seconds of one `{path, bytes}` audio value, from its header; cached by (path, size, mtime)."""
    if value.get("bytes"):
        return audio.duration(value["bytes"])
    path = value.get("path")
    try:
        stat = os.stat(path)
    except (OSError, TypeError):
        raise AudioError(f"Audio file not found: {path}") from None
    key = (path, stat.st_size, stat.st_mtime_ns)
    seconds = _DURATIONS.get(key)
    if seconds is None:
        seconds = _DURATIONS[key] = audio.duration(path)
    return seconds


def iter_audio(ds) -> Iterable[dict]:
    for batch in ds.select_columns(["audio"]).iter(batch_size=512):
        yield from batch["audio"]


# --------------------------------------------------------------------------------------------------------------
# Features and labels
# --------------------------------------------------------------------------------------------------------------
@dataclass
class PreparedData:
    """The prepared rows and what was left out, for the job summary (issue 13.5: nothing skipped silently)."""

    dataset: Any  # datasets.Dataset with input_features and labels
    dropped_long_audio: int = 0
    dropped_long_labels: int = 0
    skipped_corrupt: int = 0  # clips that did not decode (a damaged or not-audio file)
    skipped_empty: int = 0  # rows with a blank sentence
    cached: bool = False  # features came from the on-disk cache
    notes: list[str] = field(default_factory=list)  # e.g. "the features cache is read-only: not cached"

    def skipped_summary(self) -> str:
        parts = [f"{n} {what}" for n, what in ((self.dropped_long_audio, "over 30 s"),
                                               (self.dropped_long_labels, "with transcripts too long"),
                                               (self.skipped_corrupt, "unreadable"),
                                               (self.skipped_empty, "with an empty sentence")) if n]
        return "skipped " + ", ".join(parts) if parts else ""


FEATURES_VERSION = 2  # bump when what `prepare` writes changes, so old caches are not reused


def _fingerprint(ds, processor, whisper_code: str, task: str, max_label_tokens: int) -> str:
    """What the features depend on: every clip (path, size, mtime or bytes hash), every sentence, the feature
    extractor's settings, the tokenizer's prefix and vocabulary, the language and task."""
    h = hashlib.sha256()
    fe = processor.feature_extractor
    settings = {k: v for k, v in fe.to_dict().items() if not k.startswith("_") and k not in ("mel_filters",)}
    tok = processor.tokenizer
    h.update(json.dumps({"v": FEATURES_VERSION, "fe": settings, "lang": whisper_code, "task": task,
                         "max": max_label_tokens, "vocab": len(tok), "tok": type(tok).__name__,
                         "eot": tok.eos_token_id}, sort_keys=True, default=str).encode())
    for batch in ds.select_columns(["audio", "sentence"]).iter(batch_size=1024):
        for value, sentence in zip(batch["audio"], batch["sentence"]):
            if value.get("bytes"):
                h.update(hashlib.sha256(value["bytes"]).digest())
            else:
                path = value.get("path") or ""
                try:
                    st = os.stat(path)
                    h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}".encode())
                except OSError:
                    h.update(f"{path}\0missing".encode())
            h.update(b"\1" + (sentence or "").encode() + b"\2")
    return h.hexdigest()[:32]


def _features_root() -> Path:
    return paths.cache_dir() / "features"


def prepare(ds, processor, language: str | languages.Language, task: str = "transcribe",
            max_label_tokens: int = 448, num_proc: int = 1, *, cache: bool = True, progress: Progress = None) -> PreparedData:
    """Decode each clip, compute log-mel `input_features` and the `labels` token ids.

    Labels are `<|startoftranscript|><|lang|><|task|><|notimestamps|> text <|endoftext|>`. Clips longer than
    30 s (Whisper's window would cut their audio but not their text) and labels longer than `max_label_tokens`
    (the decoder's 448 positions) are dropped and counted. With `cache`, the result is stored under
    cache_dir()/features/<fingerprint>/ and reused by later runs on the same data, model family and language.
    """
    import datasets

    lang = languages.resolve(language)
    tokenizer = processor.tokenizer
    languages.check_tokenizer(lang, tokenizer)
    if task not in ("transcribe", "translate"):
        raise DataSourceError(f"Task must be transcribe or translate (got {task!r}).")
    tokenizer.set_prefix_tokens(language=lang.whisper_name, task=task, predict_timestamps=False)
    fe = processor.feature_extractor
    sr = int(fe.sampling_rate)
    if len(ds) == 0:
        raise DataSourceError("No clips to prepare.")

    key = _fingerprint(ds, processor, lang.whisper, task, max_label_tokens) if cache else None
    try:
        final = _features_root() / key if key else None
    except OSError:  # the cache root cannot even be created: prepare without it (noted below)
        final, key = None, None
    if final is not None and (final / "meta.json").is_file():
        try:
            meta = json.loads((final / "meta.json").read_text())
            prepared = datasets.load_from_disk(str(final))
            return PreparedData(prepared, meta["dropped_long_audio"], meta["dropped_long_labels"],
                                meta.get("skipped_corrupt", meta.get("dropped_unreadable", 0)),
                                meta.get("skipped_empty", 0), cached=True)
        except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt, not fatal
            log.warning("feature cache %s unreadable; rebuilding", final, exc_info=True)
            shutil.rmtree(final, ignore_errors=True)

    # 1. Cheap checks first (headers and tokenizer only), so long clips are never decoded.
    _report(progress, 0.0, "Checking clip lengths and transcripts")
    keep, long_audio, long_labels, unreadable, empty = [], 0, 0, 0, 0
    sentences = [text.strip() if isinstance(text, str) else "" for text in ds["sentence"]]  # hub rows: None
    label_ids = tokenizer(sentences).input_ids if sentences else []
    for i, value in enumerate(iter_audio(ds)):
        if not sentences[i]:  # nothing to learn, and a label of only the prefix teaches the model silence
            empty += 1
            continue
        try:
            seconds = clip_seconds(value)
        except AudioError as exc:
            log.warning("skipping clip: %s", exc)
            unreadable += 1
            continue
        if seconds > MAX_AUDIO_SECONDS:
            long_audio += 1
        elif len(label_ids[i]) > max_label_tokens:
            long_labels += 1
        else:
            keep.append(i)
    if not keep:
        raise DataSourceError(
            f"No usable clips: {long_audio} longer than 30 s, {long_labels} with transcripts over {max_label_tokens} "
            f"tokens, {unreadable} unreadable, {empty} with an empty sentence."
        )
    subset = ds.select(keep) if len(keep) < len(ds) else ds
    subset = subset.add_column("labels", [label_ids[i] for i in keep])

    # 2. Decode and compute features, written to disk as they are made (a clip's features are 80x3000 floats).
    def featurize(batch):
        arrays, ok = [], []
        for value in batch["audio"]:
            try:
                arrays.append(audio.load_audio(value, sr=sr))
                ok.append(True)
            except AudioError as exc:
                log.warning("skipping clip: %s", exc)
                arrays.append(np.zeros(sr // 10, dtype=np.float32))
                ok.append(False)
        feats = fe(arrays, sampling_rate=sr, return_tensors="np").input_features
        audio.blank_after_audio(feats, [len(a) for a in arrays])  # as at inference: see audio.blank_after_audio
        return {"input_features": [f.astype(np.float32) for f in feats], "_ok": ok}

    scratch, notes = None, []
    if final is not None:
        scratch = _features_root() / f"tmp-{key}-{os.getpid()}"
        try:
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
        except OSError as exc:  # a read-only or full cache: the cache is an optimisation, prepare in memory
            notes.append(_no_cache_note(exc))
            log.warning("%s", notes[-1])
            final = scratch = None
    try:
        _report(progress, 0.05, f"Computing log-mel features for {len(subset)} clips")
        mapped = subset.map(
            featurize, batched=True, batch_size=16, num_proc=num_proc if num_proc and num_proc > 1 else None,
            remove_columns=[c for c in subset.column_names if c not in ("labels", "sentence", "id")],
            cache_file_name=str(scratch / "features.arrow") if scratch else None, desc="log-mel features",
            keep_in_memory=scratch is None,
        )
        bad = len(mapped) - sum(mapped["_ok"])
        if bad:
            unreadable += bad
            mapped = mapped.filter(lambda ok: ok, input_columns=["_ok"],
                                   cache_file_name=str(scratch / "kept.arrow") if scratch else None,
                                   keep_in_memory=scratch is None)
        mapped = mapped.remove_columns("_ok")
        if final is not None:
            # save_to_disk into a private folder, then one atomic rename: a crash never leaves a half entry, and
            # two processes preparing the same data both end up reading one complete copy.
            partial = final.with_name(final.name + f".partial-{os.getpid()}")
            shutil.rmtree(partial, ignore_errors=True)
            meta = {"dropped_long_audio": long_audio, "dropped_long_labels": long_labels,
                    "skipped_corrupt": unreadable, "skipped_empty": empty, "clips": len(mapped),
                    "language": lang.whisper, "task": task, "created": time.time()}
            try:
                mapped.save_to_disk(str(partial))
                (partial / "meta.json").write_text(json.dumps(meta, indent=1))
            except OSError as exc:  # filled or turned read-only meanwhile: keep the features in memory
                shutil.rmtree(partial, ignore_errors=True)
                notes.append(_no_cache_note(exc))
                log.warning("%s", notes[-1])
                mapped = mapped.flatten_indices(keep_in_memory=True)
            else:
                try:
                    partial.rename(final)
                except OSError:  # another process finished the same entry first: use theirs
                    shutil.rmtree(partial, ignore_errors=True)
                mapped = datasets.load_from_disk(str(final))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    _report(progress, 1.0, f"Prepared {len(mapped)} clips")
    return PreparedData(mapped, long_audio, long_labels, unreadable, empty, notes=notes)


def _no_cache_note(exc: OSError) -> str:
    return (f"The features cache ({_features_root()}) cannot be written ({exc.strerror or exc}); "
            "features are computed for this run only.")


# --------------------------------------------------------------------------------------------------------------
# Collator
# --------------------------------------------------------------------------------------------------------------
@dataclass
class DataCollatorSpeechSeq2SeqWithPadding:
    """Batches prepared rows: features padded by the feature extractor, labels padded with -100 (ignored by the
    loss), and the leading <|startoftranscript|> removed when every row has it, because the model prepends the
    decoder start token itself when it shifts the labels right."""

    processor: Any
    decoder_start_token_id: int

    def __call__(self, features: list[dict]) -> dict:
        import torch

        batch = self.processor.feature_extractor.pad(
            [{"input_features": f["input_features"]} for f in features], return_tensors="pt"
        )
        lengths = [len(f["labels"]) for f in features]
        labels = torch.full((len(features), max(lengths)), -100, dtype=torch.long)
        for row, (f, n) in enumerate(zip(features, lengths)):
            labels[row, :n] = torch.as_tensor(list(f["labels"]), dtype=torch.long)
        if labels.shape[1] > 0 and bool((labels[:, 0] == self.decoder_start_token_id).all()):
            labels = labels[:, 1:]
        batch["labels"] = labels
        return batch
