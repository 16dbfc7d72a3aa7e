"""Metadata tables of user datasets (CSV, TSV, LJSpeech `id|text`, JSON lines, parquet) and the rows they give.

Shared by the hub source (local audiofolders), the own-data source and the cv-folder reader (TSV decoding).
Every file a table names goes through `check_inside` (a metadata.csv listing /etc/passwd is refused), rows
whose clip is missing or whose sentence is blank are skipped and counted in the LoadReport.

Encoding rule (issue 13.4): metadata must be UTF-8 (a BOM is accepted). Anything else is refused with the file
and line named, rather than guessed as latin-1: a wrong guess would silently train on mangled transcripts.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from whisper_studio.errors import AudioError, DataSourceError
from whisper_studio.sources.base import LoadReport, check_inside, empty_rows, log

AUDIO_COLUMNS = ("file_name", "audio_file", "file", "filename", "path", "audio", "audio_path", "wav", "clip")
TEXT_COLUMNS = ("sentence", "text", "transcription", "transcript", "normalized_text", "label")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".parquet")


@dataclass
class Table:
    """A metadata table: column names, rows as dicts, and each row's line number (for messages)."""

    path: Path
    columns: list[str]
    rows: list[dict] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def where(self, i: int) -> str:
        return f"{self.path.name} line {self.lines[i]}" if i < len(self.lines) else self.path.name


def utf8_lines(path: Path) -> Iterator[str]:
    """The lines of a text file, decoded strictly as UTF-8; DataSourceError naming the file and line otherwise."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise DataSourceError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataSourceError(
                    f"{path} is not UTF-8 text (line {number}, byte 0x{raw[exc.start]:02x} at column {exc.start + 1}). "
                    "Save it as UTF-8 (for example from a spreadsheet: 'CSV UTF-8') and load it again."
                ) from None


def read_delimited(path: Path, delimiter: str, *, header: bool = True,
                   quoting: int = csv.QUOTE_MINIMAL) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, fields)]) of a delimited UTF-8 file; blank lines are left out."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    lines = utf8_lines(path)
    reader = csv.reader(lines, delimiter=delimiter, quoting=quoting)
    out, head = [], []
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if header and not head:
                head = [f.strip() for f in fields]
                continue
            out.append((reader.line_num, fields))
    except csv.Error as exc:
        raise DataSourceError(f"{path} line {reader.line_num}: not a valid table ({exc}).") from None
    return head, out


def _sniff_delimiter(path: Path) -> str:
    first = next(utf8_lines(path), "")
    counts = {d: first.count(d) for d in ("\t", "|", ",", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_table(path: Path) -> Table:
    """A metadata file -> Table. LJSpeech's `metadata.csv` (`id|text|normalized`, no header) gets the columns
    `id`, `text`, `normalized_text`; a header line is expected otherwise."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        return Table(path, [str(c) for c in frame.columns], frame.to_dict("records"), list(range(2, len(frame) + 2)))
    if suffix == ".jsonl":
        table = Table(path, [])
        for number, line in enumerate(utf8_lines(path), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise DataSourceError(f"{path} line {number}: not valid JSON ({exc}).") from None
            if not isinstance(row, dict):
                raise DataSourceError(f"{path} line {number}: expected a JSON object per line.")
            table.columns += [k for k in row if k not in table.columns]
            table.rows.append(row)
            table.lines.append(number)
        return table
    delimiter = "\t" if suffix == ".tsv" else _sniff_delimiter(path)
    quoting = csv.QUOTE_NONE if delimiter in ("\t", "|") else csv.QUOTE_MINIMAL  # CV/LJSpeech: unbalanced quotes
    head, rows = read_delimited(path, delimiter, header=False, quoting=quoting)
    if not rows:
        return Table(path, [])
    first = [f.strip() for f in rows[0][1]]
    if delimiter == "|" and not any(name.lower() in AUDIO_COLUMNS + TEXT_COLUMNS + ("id",) for name in first):
        columns = ["id", "text", "normalized_text"][:max(2, len(first))]  # LJSpeech: no header line
        body = rows
    else:
        columns, body = first, rows[1:]
    table = Table(path, columns)
    for number, fields in body:
        table.rows.append({name: fields[i] if i < len(fields) else "" for i, name in enumerate(columns)})
        table.lines.append(number)
    return table


def pick_column(table: Table, wanted: str | None, candidates: tuple[str, ...], what: str) -> str:
    """The column to use: `wanted` when the table has it, else the first known name (any case)."""
    lower = {c.lower(): c for c in table.columns}
    for name in ((wanted,) if wanted else ()) + candidates:
        if name and name.lower() in lower:
            return lower[name.lower()]
    raise DataSourceError(
        f"{table.path} has no {what} column (looked for {', '.join(((wanted,) if wanted else ()) + candidates)}); "
        f"its columns: {', '.join(map(str, table.columns)) or 'none'}."
    )


def _text(value) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None, NaN
        return ""
    return str(value).strip()


def table_rows(folder: Path, table: Table, *, split: str, locale: str, report: LoadReport,
               audio_column: str, text_column: str, audio_dirs: tuple[str, ...] = ("",),
               bound: Path | None = None, check_audio: bool = False) -> dict[str, list]:
    """The usable rows of a table: each clip named relative to `folder` (in the first of `audio_dirs` that
    has it; a name without a suffix tries the audio suffixes, as LJSpeech ids do) and resolved inside `bound`
    (default `folder`); blank sentences and missing or empty files skipped and counted per split in `report`.
    `check_audio`: also read each clip's header (user data: a file that is not audio is counted, not trained)."""
    from whisper_studio import audio

    bound = bound or folder
    prefix = Path(os.path.relpath(folder, bound))
    rows = empty_rows()
    missing = empty = corrupt = 0
    for i, row in enumerate(table.rows):
        name = _text(row.get(audio_column))
        sentence = _text(row.get(text_column))
        if not name:
            missing += 1
            continue
        clip = None
        for sub in audio_dirs:
            names = [name] if Path(name).suffix.lower() in AUDIO_SUFFIXES else [name] + [name + s for s in AUDIO_SUFFIXES]
            for candidate in names:
                if Path(candidate).is_absolute():  # refused by check_inside, not joined onto the prefix
                    check_inside(bound, candidate, where=table.where(i))
                path = check_inside(bound, prefix / sub / candidate, where=table.where(i))
                if path.is_file():
                    clip = path
                    break
            if clip is not None:
                break
        if clip is None:
            missing += 1
            continue
        if not sentence:
            empty += 1
            continue
        if clip.stat().st_size == 0:
            corrupt += 1
            continue
        if check_audio:
            try:
                audio.info(str(clip))
            except AudioError as exc:
                log.warning("%s: %s", table.where(i), exc)
                corrupt += 1
                continue
        rows["audio"].append(str(clip))
        rows["sentence"].append(sentence)
        rows["locale"].append(locale)
        rows["split"].append(split)
        rows["id"].append(_text(row.get("id")) or Path(name).stem)
    for counts, n, what in ((report.missing_clips, missing, "clip file missing"),
                            (report.skipped_empty, empty, "empty sentence"), (report.skipped_corrupt, corrupt, "unreadable file")):
        if n:
            counts[split] = counts.get(split, 0) + n
            log.warning("%s [%s]: %d row(s) skipped (%s)", table.path, split, n, what)
    return rows


def describe_skips(report: LoadReport, split: str) -> str:
    parts = [f"{n} {what}" for what, n in (("listed clips are missing", report.missing_clips.get(split, 0)),
                                            ("rows have an empty sentence", report.skipped_empty.get(split, 0)),
                                            ("files are empty or not audio", report.skipped_corrupt.get(split, 0))) if n]
    return f" ({', '.join(parts)})" if parts else ""


__all__ = ["AUDIO_COLUMNS", "TEXT_COLUMNS", "Table", "describe_skips", "pick_column", "read_delimited",
           "read_table", "table_rows", "utf8_lines"]
