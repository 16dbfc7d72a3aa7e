"""folder: your own recordings — a folder or a .zip of audio plus a table of transcripts.

Layouts read (first match wins):
1. A Common Voice release (Scripted: train.tsv + clips/; Spontaneous: ss-corpus-*.tsv + audios/): the
   cv-folder reader.
2. An audiofolder with split subfolders (train/metadata.csv, test/metadata.csv): the hub source's reader.
3. One table in the folder: `metadata.csv` (LJSpeech `id|text[|normalized]`, or a header naming a file/path
   column and a text/sentence/transcription column), `metadata.tsv/.jsonl/.parquet`, or the folder's only
   .csv/.tsv/.txt/.jsonl. Clips are looked up beside it and in wavs/, clips/, audio/, audios/. A `split`
   column decides the splits; without one, 1 sentence in 5 goes to test, chosen by sentence, so no test
   sentence is ever trained on.
Every path goes through `check_inside`; missing clips, empty sentences and files that are not audio are
skipped and counted (LoadReport). A .zip is unpacked once into the cache (no zip-slip, size-capped).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from whisper_studio import paths
from whisper_studio.errors import ConfigError, DataSourceError
from whisper_studio.sources import tables
from whisper_studio.sources.base import Input, LoadReport, Source, make_dataset, report_progress
from whisper_studio.sources.cv_folder import _has_tsvs, read_cv_folder

MAX_UPLOAD_BYTES = 8 * 1024**3  # unpacked size of an uploaded zip
AUDIO_DIRS = ("", "wavs", "clips", "audio", "audios")
TEST_SHARE = 5  # 1 sentence in TEST_SHARE goes to test when the data names no split
_TABLE_NAMES = ("metadata.csv", "metadata.tsv", "metadata.jsonl", "metadata.parquet", "metadata.txt")


def unpack_upload(archive: Path) -> Path:
    """A .zip (or tar) unpacked into cache_dir()/own/<content hash>/: the same upload unpacks once."""
    from whisper_studio.sources.mdc import extract_archive

    digest = hashlib.sha256()
    with open(archive, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    root = extract_archive(archive, into=paths.cache_dir() / "own" / digest.hexdigest()[:20],
                           max_bytes=MAX_UPLOAD_BYTES)
    entries = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else root  # zip of one folder: that folder


def _find_table(folder: Path) -> Path | None:
    for name in _TABLE_NAMES:
        if (folder / name).is_file():
            return folder / name
    candidates = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in tables.TABLE_SUFFIXES
                  and not p.name.startswith(".")]
    return candidates[0] if len(candidates) == 1 else None


def _test_sentences(sentences: list[str]) -> set[str]:
    """1 in TEST_SHARE distinct sentences (at least one when there are two), by a hash: stable across loads."""
    distinct = sorted({s for s in sentences if s}, key=lambda s: hashlib.sha256(s.casefold().encode("utf-8")).hexdigest())
    if len(distinct) < 2:
        return set()
    return set(distinct[:max(1, round(len(distinct) / TEST_SHARE))])


def read_own_folder(path: str, language, splits: tuple[str, ...], report: LoadReport, progress=None):
    import datasets

    from whisper_studio.sources.hub import read_audiofolder

    # 1. Where the data is: a folder, or an archive unpacked into the cache.
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DataSourceError(f"Not found: {folder}. Give a folder of recordings or a .zip of one.")
    if folder.is_file():
        report_progress(progress, 0.0, f"Unpacking {folder.name}")
        folder = unpack_upload(folder)
    report.root = str(folder)
    # 2. Layouts with their own reader.
    if (_has_tsvs(folder) and (folder / "clips").is_dir()) or any(folder.glob("ss-corpus-*.tsv")):
        return read_cv_folder(folder, language, splits, progress=progress, report=report)
    if any((folder / s / "metadata.csv").is_file() or (folder / s / "metadata.jsonl").is_file()
           for s in ("train", "test", "validation")):
        from whisper_studio.config import SourceConfig

        src = SourceConfig(kind="folder", language=language.locale, path=str(folder))
        return read_audiofolder(folder, src, splits, language.locale, report)
    # 3. One table of clips and transcripts.
    table_path = _find_table(folder)
    if table_path is None:
        raise DataSourceError(
            f"{folder} has no transcript table: add a metadata.csv (LJSpeech 'id|text', or a header with a "
            "file column and a text column), or lay it out as a Common Voice folder."
        )
    report_progress(progress, 0.2, f"Reading {table_path.name}")
    table = tables.read_table(table_path)
    audio_column = tables.pick_column(table, None, tables.AUDIO_COLUMNS + ("id",), "audio file")
    text_column = tables.pick_column(table, None, tables.TEXT_COLUMNS, "text")
    split_column = next((c for c in table.columns if c.lower() == "split"), None)
    if split_column is None:
        held_out = _test_sentences([str(r.get(text_column) or "").strip() for r in table.rows])
        for row in table.rows:
            row["__split"] = "test" if str(row.get(text_column) or "").strip() in held_out else "train"
        split_column = "__split"
        report.notes.append(f"No split column: 1 sentence in {TEST_SHARE} was held out for test (by sentence, "
                            "so test sentences are never trained on).")
    out = {}
    for split in splits:
        names = ("test", "validation", "dev") if split == "test" else (("dev", "validation") if split in ("dev", "validation") else (split,))
        keep = [i for i, r in enumerate(table.rows) if str(r.get(split_column, "")).strip().lower() in names]
        part = tables.Table(table.path, table.columns, [table.rows[i] for i in keep], [table.lines[i] for i in keep])
        rows = tables.table_rows(folder, part, split=split, locale=language.locale, report=report,
                                 audio_column=audio_column, text_column=text_column, audio_dirs=AUDIO_DIRS,
                                 check_audio=True)
        if not rows["id"]:
            raise DataSourceError(f"{table_path} gives no usable clips for the {split!r} split"
                                  f"{tables.describe_skips(report, split)}.")
        out[split] = make_dataset(rows)
    report_progress(progress, 1.0, f"Read {table_path.name}")
    return datasets.DatasetDict(out)


class OwnDataSource(Source):
    kind = "folder"
    label = "Your own recordings (a folder or .zip)"
    fields = ("path",)
    required = ("path",)
    inputs = (Input("own_path", "path", "Folder or .zip of recordings", elem_id="own-path",
                    placeholder="holds metadata.csv (id|text, or file,text columns) and the audio files",
                    info="Also reads an audiofolder or a Common Voice (Scripted or Spontaneous) folder."),)

    def check(self, src) -> None:
        if not src.path:
            raise ConfigError("Your own recordings need the path of their folder or .zip file.")

    def load(self, src, language, splits, progress, report, *, api_key=None):
        return read_own_folder(src.path, language, splits, report, progress)

    def describe(self, src) -> str:
        return f"own recordings ({src.path})"
