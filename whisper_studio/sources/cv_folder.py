"""cv-folder: a Common Voice release on disk: Scripted Speech (`cv-corpus-*/<locale>/` with train/dev/test.tsv
and clips/) or Spontaneous Speech (`ss-corpus-<locale>.tsv` with a split column, and audios/).

The reader here is shared: the demo and mdc sources end in a folder of this layout too.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable

from whisper_studio import languages
from whisper_studio.errors import ConfigError, DataSourceError
from whisper_studio.sources import tables
from whisper_studio.sources.base import (SYNTHETIC_MARK, Input, LoadReport, Progress, Source, check_inside, empty_rows,
                                         log, make_dataset, report_progress)

# Requested split name -> Common Voice TSV file. "validation" is the name transformers' recipes use for dev.
CV_SPLIT_FILES = {"train": "train.tsv", "dev": "dev.tsv", "validation": "dev.tsv", "test": "test.tsv",
                  "validated": "validated.tsv", "other": "other.tsv", "invalidated": "invalidated.tsv"}


def _has_tsvs(folder: Path) -> bool:
    return (any((folder / name).is_file() for name in ("train.tsv", "dev.tsv", "test.tsv", "validated.tsv"))
            or any(folder.glob("ss-corpus-*.tsv")))


# Common Voice locales Whisper cannot learn: a folder named like this is a release folder, just not ours.
_OTHER_CV_LOCALES = frozenset(x.casefold() for x in (
    "ab ast bas ckb cnh cv dv dyu eo fy-NL ga-IE gn hsb ia ig kab kln kmr ky lg lij ltg luo mdf mhr mrj myv "
    "nan-tw nhi nso or os quy rm-sursilv rm-vallader rw sah sat sc skr ti tig tok tw ug vot zgh zu zza").split())


def _looks_like_locale(name: str) -> bool:
    key = name.casefold()
    return key in _OTHER_CV_LOCALES or any(key == lang.locale.casefold() for lang in languages.LANGUAGES)


def _subdirs(root: Path, depth: int = 3) -> list[Path]:
    """Folders below `root` down to `depth`, never entering clips/ (a million files in big releases)."""
    out, level = [], [root]
    for _ in range(depth):
        nxt = []
        for folder in level:
            try:
                with os.scandir(folder) as entries:
                    nxt += [Path(e.path) for e in entries
                            if e.is_dir() and e.name != "clips" and not e.name.startswith(".")]
            except OSError:
                continue
        out += sorted(nxt)
        level = nxt
    return out


def find_locale_dir(path: str | os.PathLike, locale: str) -> Path:
    """The `<locale>` folder of a release given the folder itself, its parent (`cv-corpus-*`) or the
    extraction root above that. `DataSourceError` saying what is there when it is not the expected one."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataSourceError(f"Folder not found: {root}")
    if not root.is_dir():
        raise DataSourceError(f"{root} is a file; give the Common Voice release folder (cv-corpus-*/{locale}).")
    want = locale.casefold()
    if _has_tsvs(root):
        if root.name.casefold() == want or not _looks_like_locale(root.name):
            return root
        raise DataSourceError(
            f"{root} holds Common Voice locale {root.name!r}, but the chosen language is {locale!r}. "
            "Pick the matching language, or the folder of the language you want."
        )
    below = _subdirs(root)
    # Locale folder names are case-sensitive on disk but people type "zh-cn": match case-insensitively.
    for candidate in below:
        if candidate.name.casefold() == want and _has_tsvs(candidate):
            return candidate
    found = sorted({p.name for p in below if _has_tsvs(p)})
    if found:
        raise DataSourceError(
            f"{root} has no {locale!r} folder; it holds Common Voice locale(s) {', '.join(found[:12])}. "
            "Choose one of those languages, or download the release for your language."
        )
    raise DataSourceError(
        f"{root} is not a Common Voice release folder: no train.tsv, dev.tsv or test.tsv in it or in a "
        f"{locale}/ folder below it. Extract the release archive and give its cv-corpus-*/{locale} folder."
    )


def _read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    # QUOTE_NONE: Common Voice sentences contain unbalanced quotes ("He said "no), which the default dialect
    # would treat as a field spanning lines. Strict UTF-8: DataSourceError naming the file and line otherwise.
    header, rows = tables.read_delimited(path, "\t", quoting=csv.QUOTE_NONE)
    return header, [fields for _, fields in rows]


def _clip_listing(clips: Path) -> tuple[set[str], set[str]]:
    """(names, symlinked names) in clips/: one listing instead of a stat per row (CV English: 1M+ rows)."""
    names, links = set(), set()
    with os.scandir(clips) as entries:
        for entry in entries:
            names.add(entry.name)
            if entry.is_symlink():
                links.add(entry.name)
    return names, links


def _read_cv_split(locale_dir: Path, split: str, locale: str, clip_names: set[str], links: set[str],
                   report: LoadReport) -> dict[str, list]:
    tsv = locale_dir / CV_SPLIT_FILES[split]
    header, rows = _read_tsv(tsv)
    if not header:
        return empty_rows()
    try:
        i_path, i_sentence = header.index("path"), header.index("sentence")
    except ValueError:
        raise DataSourceError(f"{tsv} has no 'path' and 'sentence' columns (found: {', '.join(header[:10])}).") from None
    i_locale = header.index("locale") if "locale" in header else None
    out, missing, empty, other_locales = empty_rows(), 0, 0, {}
    clips = locale_dir / "clips"
    for row in rows:
        if len(row) <= max(i_path, i_sentence):
            continue  # a blank or cut line
        name = row[i_path].strip()
        if name not in clip_names and name + ".mp3" in clip_names:
            name += ".mp3"  # the first releases listed clips without their extension
        if name not in clip_names:  # only direct entries of clips/ can match: no "../" or absolute path
            missing += 1
            continue
        if name in links:  # a symlink must still point inside the release
            check_inside(locale_dir, f"clips/{name}", where=f"{tsv.name}, clip {name}")
        sentence = row[i_sentence].strip()
        if not sentence:
            empty += 1
            continue
        if i_locale is not None and len(row) > i_locale and row[i_locale] and row[i_locale] != locale:
            other_locales[row[i_locale]] = other_locales.get(row[i_locale], 0) + 1
        out["audio"].append(str(clips / name))
        out["sentence"].append(sentence)
        out["locale"].append(locale)
        out["split"].append(split)
        out["id"].append(Path(name).stem)
    if other_locales and sum(other_locales.values()) == len(out["id"]):
        raise DataSourceError(
            f"{tsv} is Common Voice locale {max(other_locales, key=other_locales.get)!r} data, "
            f"but the chosen language is {locale!r}."
        )
    _count(report, split, tsv, missing, empty)
    return out


def _count(report: LoadReport, split: str, where: Path, missing: int, empty: int) -> None:
    if missing:
        report.missing_clips[split] = report.missing_clips.get(split, 0) + missing
        log.warning("%s: %d row(s) skipped, their clip is missing", where, missing)
    if empty:
        report.skipped_empty[split] = report.skipped_empty.get(split, 0) + empty
        log.warning("%s: %d row(s) skipped, their sentence is empty", where, empty)


# --- Common Voice Spontaneous Speech: ss-corpus-<locale>.tsv (a `split` column) + audios/ --------------------
SPONTANEOUS_SPLITS = {"train": ("train",), "dev": ("dev", "validation"), "validation": ("dev", "validation"),
                      "test": ("test",)}


def _spontaneous_tsv(folder: Path) -> Path | None:
    found = sorted(folder.glob("ss-corpus-*.tsv"))
    return found[0] if found else None


def read_spontaneous(locale_dir: Path, locale: str, splits: list[str], report: LoadReport):
    """A Spontaneous Speech release: `audio_file` names a file in audios/, `transcription` the text (rows not
    transcribed yet are skipped and counted as empty), `split` the split."""
    import datasets

    tsv = _spontaneous_tsv(locale_dir)
    table = tables.read_table(tsv)
    audio_column = tables.pick_column(table, "audio_file", tables.AUDIO_COLUMNS, "audio file")
    text_column = tables.pick_column(table, "transcription", tables.TEXT_COLUMNS, "transcription")
    split_column = tables.pick_column(table, "split", (), "split")
    out = {}
    for split in splits:
        if split not in SPONTANEOUS_SPLITS:
            raise DataSourceError(f"Unknown split {split!r}; a Spontaneous Speech release has train, dev and test.")
        names = SPONTANEOUS_SPLITS[split]
        keep = [i for i, row in enumerate(table.rows) if str(row.get(split_column, "")).strip().lower() in names]
        part = tables.Table(tsv, table.columns, [table.rows[i] for i in keep], [table.lines[i] for i in keep])
        rows = tables.table_rows(locale_dir, part, split=split, locale=locale, report=report,
                                 audio_column=audio_column, text_column=text_column, audio_dirs=("audios", ""))
        if not rows["id"]:
            raise DataSourceError(f"{tsv} lists no usable clips for the {split!r} split"
                                  f"{tables.describe_skips(report, split)}.")
        out[split] = make_dataset(rows)
    return datasets.DatasetDict(out)


def read_cv_folder(path: str | os.PathLike, language: str | languages.Language,
                   splits: Iterable[str] = ("train", "test"), progress: Progress = None,
                   report: LoadReport | None = None):
    """A Common Voice release folder -> DatasetDict. Rows whose clip file is missing are skipped and counted."""
    import datasets

    lang = languages.resolve(language)
    locale_dir = find_locale_dir(path, lang.locale)
    report = report if report is not None else LoadReport()
    report.root = str(locale_dir)
    report.synthetic = report.synthetic or (locale_dir / SYNTHETIC_MARK).exists()
    splits = list(splits)
    if not (locale_dir / "clips").is_dir() and _spontaneous_tsv(locale_dir) is not None:
        report_progress(progress, 0.0, f"Reading {_spontaneous_tsv(locale_dir).name}")
        return read_spontaneous(locale_dir, lang.locale, splits, report)
    clips_dir = locale_dir / "clips"
    if not clips_dir.is_dir():
        raise DataSourceError(f"{locale_dir} has no clips/ folder; the release was not fully extracted.")
    clip_names, links = _clip_listing(clips_dir)
    out = {}
    for i, split in enumerate(splits):
        if split not in CV_SPLIT_FILES:
            raise DataSourceError(f"Unknown split {split!r}; Common Voice has {', '.join(CV_SPLIT_FILES)}.")
        tsv = locale_dir / CV_SPLIT_FILES[split]
        if not tsv.is_file():
            raise DataSourceError(f"{locale_dir} has no {tsv.name} for the {split!r} split.")
        report_progress(progress, i / max(1, len(splits)), f"Reading {tsv.name}")
        rows = _read_cv_split(locale_dir, split, lang.locale, clip_names, links, report)
        if not rows["id"]:
            raise DataSourceError(f"{tsv} lists no usable clips{tables.describe_skips(report, split)}.")
        out[split] = make_dataset(rows)
    report_progress(progress, 1.0, "Read the Common Voice folder")
    return datasets.DatasetDict(out)


class CvFolderSource(Source):
    kind = "cv-folder"
    label = "Local Common Voice folder"
    fields = ("path",)
    required = ("path",)
    inputs = (Input("folder", "path", "Common Voice release folder", elem_id="cv-folder",
                    placeholder="/data/cv-corpus-17.0-2024-03-15/mr  (holds train.tsv, test.tsv, clips/)"),)

    def check(self, src) -> None:
        if not src.path:
            raise ConfigError("The local Common Voice source needs the path of a release folder (cv-corpus-*/<locale>).")

    def load(self, src, language, splits, progress, report, *, api_key=None):
        return read_cv_folder(src.path, language, splits, progress=progress, report=report)

    def describe(self, src) -> str:
        return f"local Common Voice release ({src.path})"
