"""Data: any source -> `datasets.DatasetDict`, plus the summaries the CLI and the Data tab show.

Where the rows come from is the sources registry (whisper_studio/sources/: demo, mdc, cv-folder, hub, folder; one file
each); what every source yields is sources/base.py's COLUMNS: `audio` (`Audio(decode=False)`, a `{"path",
"bytes"}` dict that datasets never decodes), `sentence`, `locale`, `split` and `id`. Features, labels and the
training collator are in whisper_studio/features.py (re-exported here, so `data.prepare` works).

torch is imported only inside the collator: the UI imports this module.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from whisper_studio import languages, paths, sources, util
from whisper_studio.errors import AudioError, DataSourceError
# Re-exported: the names other modules and the tests use as data.<name>.
from whisper_studio.features import (DataCollatorSpeechSeq2SeqWithPadding, PreparedData, clip_seconds, iter_audio,
                                     prepare)
from whisper_studio.sources.base import COLUMNS, LoadReport, Progress, log
from whisper_studio.sources.cv_folder import find_locale_dir, read_cv_folder
from whisper_studio.sources.hub import _hub_error
from whisper_studio.sources import tables
from whisper_studio.sources.base import check_inside
from whisper_studio.sources.mdc import extract_archive, mdc_dir

__all__ = ["COLUMNS", "DataCollatorSpeechSeq2SeqWithPadding", "LoadReport", "PreparedData", "Progress",
           "_hub_error", "check_inside", "extract_archive", "find_locale_dir", "load_source", "mdc_dir", "prepare",
           "read_cv_folder", "sample_rows", "shared_sentences", "split_seconds", "summarize"]


def load_source(src, splits=("train", "test"), progress: Progress = None, *,
                api_key: str | None = None, report: LoadReport | None = None):
    """Any source -> DatasetDict(split -> Dataset[audio, sentence, locale, split, id]).

    `src`: a SourceConfig. `api_key`: an MDC key given in the UI instead of MDC_API_KEY (used for the call,
    never logged or stored). `report`: a LoadReport to fill (missing clips, synthetic, notes).
    """
    source = sources.get(src.kind)
    splits = tuple(splits) if not isinstance(splits, str) else (splits,)
    if not splits:
        raise DataSourceError("No split requested.")
    language = languages.resolve(src.language)  # once; an unknown language fails before any download
    report = report if report is not None else LoadReport()
    report.kind = src.kind
    return source.load(src, language, splits, progress, report, api_key=api_key)


# --------------------------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------------------------
def split_seconds(ds) -> list[float]:
    """Per-clip seconds of a split (unreadable clips count as 0 and are logged)."""
    out = []
    for value in iter_audio(ds):
        try:
            out.append(clip_seconds(value))
        except AudioError as exc:
            log.warning("%s", exc)
            out.append(0.0)
    return out


def summarize(dsd) -> dict[str, dict[str, float]]:
    """{split: {"clips": n, "hours": h}} with hours from the audio headers (no decoding)."""
    return {split: {"clips": len(ds), "hours": round(sum(split_seconds(ds)) / 3600.0, 4)} for split, ds in dsd.items()}


def sample_rows(dsd, split: str, n: int, seed: int = 0) -> list[dict]:
    """n rows of a split, spread at random (seeded: the same rows each time), as {"path", "sentence", "id"}.

    Only clips that decode as audio are returned (a UI plays and serves these paths, so a file that is not
    audio never leaves the server this way); the others are skipped and logged. Audio held as bytes (hub
    parquet) is written once under cache_dir()/samples so that a UI can play a path.
    """
    from whisper_studio import audio

    if split not in dsd:
        raise DataSourceError(f"No {split!r} split; the data has {', '.join(dsd)}.")
    ds = dsd[split]
    if n <= 0 or len(ds) == 0:
        return []
    order = random.Random(seed).sample(range(len(ds)), min(len(ds), max(n, 4 * n)))  # spares for bad clips
    rows = []
    for index in order:
        row = ds[index]
        value = row["audio"]
        try:
            audio.load_audio(value)
        except AudioError as exc:
            log.warning("not shown as a sample: %s", exc)
            continue
        path = value.get("path")
        if value.get("bytes"):
            data = value["bytes"]
            digest = hashlib.sha256(data).hexdigest()[:20]
            suffix = Path(path).suffix if path and Path(path).suffix.lower() in tables.AUDIO_SUFFIXES else ".wav"
            target = paths.cache_dir() / "samples" / f"{digest}{suffix}"
            if not target.exists():
                util.write_atomic(target, data, fsync=False)  # a cache file: rebuilt if lost
            path = str(target)
        rows.append((index, {"path": path, "sentence": row["sentence"], "id": row["id"]}))
        if len(rows) == n:
            break
    return [row for _, row in sorted(rows, key=lambda pair: pair[0])]


def shared_sentences(dsd) -> dict[tuple[str, str], int]:
    """How many distinct sentences each pair of splits has in common (a held-out split should share none)."""
    names = list(dsd)
    texts = {name: {str(t).strip() for t in dsd[name]["sentence"]} for name in names}
    return {(a, b): len(texts[a] & texts[b]) for i, a in enumerate(names) for b in names[i + 1:]}
