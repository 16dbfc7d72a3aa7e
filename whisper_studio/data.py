"""Data sources -> `datasets.DatasetDict`, then log-mel features + labels for Whisper, and the training collator.

Every source yields the same columns: `audio` (`Audio(decode=False)`: a `{"path", "bytes"}` dict, never decoded
by datasets, since datasets 5 decodes through torchcodec, which does not load here), `sentence`, `locale`,
`split` and `id`. Decoding is ours: `whisper_studio.audio.load_audio` (soundfile + soxr).

Sources:
- `cv-folder`: a Common Voice release on disk (`cv-corpus-*/<locale>/` with train/dev/test.tsv and clips/).
- `demo`: a synthetic (eSpeak NG) corpus in the same layout, built by `whisper_studio.demo`.
- `mdc`: a Common Voice archive from the Mozilla Data Collective (`datacollective` SDK), cached and resumable.
- `hub`: a Hugging Face dataset of parquet files (or a local folder of parquet or audiofolder files).

torch is imported only inside the collator: the UI imports this module.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import random
import shutil
import socket
import sys
import tarfile
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlparse

import numpy as np

from whisper_studio import audio, languages, paths
from whisper_studio.config import SOURCE_KINDS, SourceConfig
from whisper_studio.errors import AudioError, DataSourceError, OfflineError, StudioError

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None] | None

COLUMNS = ("audio", "sentence", "locale", "split", "id")
# Requested split name -> Common Voice TSV file. "validation" is the name transformers' recipes use for dev.
CV_SPLIT_FILES = {"train": "train.tsv", "dev": "dev.tsv", "validation": "dev.tsv", "test": "test.tsv",
                  "validated": "validated.tsv", "other": "other.tsv", "invalidated": "invalidated.tsv"}
MAX_AUDIO_SECONDS = 30.0  # Whisper's window: the feature extractor pads/cuts every clip to 30 s
SYNTHETIC_MARK = "SYNTHETIC"  # demo corpora carry this file (docs/ARCHITECTURE.md)


def _report(progress: Progress, fraction: float, message: str) -> None:
    if progress is not None:
        try:
            progress(max(0.0, min(1.0, fraction)), message)
        except Exception:  # a UI progress bar must never break data loading
            log.debug("progress callback failed", exc_info=True)


@dataclass
class LoadReport:
    """What `load_source` found, besides the rows: filled into the `report` argument when given."""

    kind: str = ""
    root: str | None = None  # the locale folder read, for folder sources
    synthetic: bool = False
    missing_clips: dict[str, int] = field(default_factory=dict)  # split -> rows skipped, clip file absent
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------------
# Building a DatasetDict
# --------------------------------------------------------------------------------------------------------------
def _make_dataset(rows: dict[str, list]):
    """Rows with audio as path strings or {path, bytes} dicts -> a Dataset with `Audio(decode=False)`.

    Built from plain strings/structs and cast afterwards: `Dataset.from_dict` with an `Audio` feature would
    encode through torchcodec.
    """
    import datasets

    ds = datasets.Dataset.from_dict(rows)
    return ds.cast_column("audio", datasets.Audio(decode=False))


def _empty_rows() -> dict[str, list]:
    return {name: [] for name in COLUMNS}


# --------------------------------------------------------------------------------------------------------------
# cv-folder: a Common Voice release on disk
# --------------------------------------------------------------------------------------------------------------
def _has_tsvs(folder: Path) -> bool:
    return any((folder / name).is_file() for name in ("train.tsv", "dev.tsv", "test.tsv", "validated.tsv"))


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
    # would treat as a field spanning lines.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            header = next(reader)
        except StopIteration:
            return [], []
        return header, list(reader)


def _read_cv_split(locale_dir: Path, split: str, locale: str, clip_names: set[str]) -> tuple[dict[str, list], int]:
    tsv = locale_dir / CV_SPLIT_FILES[split]
    header, rows = _read_tsv(tsv)
    if not header:
        return _empty_rows(), 0
    try:
        i_path, i_sentence = header.index("path"), header.index("sentence")
    except ValueError:
        raise DataSourceError(f"{tsv} has no 'path' and 'sentence' columns (found: {', '.join(header[:10])}).") from None
    i_locale = header.index("locale") if "locale" in header else None
    out, missing, other_locales = _empty_rows(), 0, {}
    clips = locale_dir / "clips"
    for row in rows:
        if len(row) <= max(i_path, i_sentence):
            continue  # a blank or cut line
        name = row[i_path].strip()
        if name not in clip_names and name + ".mp3" in clip_names:
            name += ".mp3"  # the first releases listed clips without their extension
        if name not in clip_names:
            missing += 1
            continue
        if i_locale is not None and len(row) > i_locale and row[i_locale] and row[i_locale] != locale:
            other_locales[row[i_locale]] = other_locales.get(row[i_locale], 0) + 1
        out["audio"].append(str(clips / name))
        out["sentence"].append(row[i_sentence].strip())
        out["locale"].append(locale)
        out["split"].append(split)
        out["id"].append(Path(name).stem)
    if other_locales and sum(other_locales.values()) == len(out["id"]):
        raise DataSourceError(
            f"{tsv} is Common Voice locale {max(other_locales, key=other_locales.get)!r} data, "
            f"but the chosen language is {locale!r}."
        )
    return out, missing


def read_cv_folder(path: str | os.PathLike, language: str, splits: Iterable[str] = ("train", "test"),
                   progress: Progress = None, report: LoadReport | None = None):
    """A Common Voice release folder -> DatasetDict. Rows whose clip file is missing are skipped and counted."""
    import datasets

    lang = languages.resolve(language)
    locale_dir = find_locale_dir(path, lang.locale)
    clips_dir = locale_dir / "clips"
    if not clips_dir.is_dir():
        raise DataSourceError(f"{locale_dir} has no clips/ folder; the release was not fully extracted.")
    clip_names = set(os.listdir(clips_dir))  # one listing instead of a stat per row (CV English: 1M+ rows)
    report = report if report is not None else LoadReport()
    report.root = str(locale_dir)
    report.synthetic = report.synthetic or (locale_dir / SYNTHETIC_MARK).exists()
    out = {}
    splits = list(splits)
    for i, split in enumerate(splits):
        if split not in CV_SPLIT_FILES:
            raise DataSourceError(f"Unknown split {split!r}; Common Voice has {', '.join(CV_SPLIT_FILES)}.")
        tsv = locale_dir / CV_SPLIT_FILES[split]
        if not tsv.is_file():
            raise DataSourceError(f"{locale_dir} has no {tsv.name} for the {split!r} split.")
        _report(progress, i / max(1, len(splits)), f"Reading {tsv.name}")
        rows, missing = _read_cv_split(locale_dir, split, lang.locale, clip_names)
        if missing:
            report.missing_clips[split] = missing
            log.warning("%s: %d row(s) skipped, their clip is missing from clips/", tsv, missing)
        if not rows["id"]:
            raise DataSourceError(
                f"{tsv} lists no usable clips" + (f" ({missing} listed clips are missing from clips/)." if missing else ".")
            )
        out[split] = _make_dataset(rows)
    _report(progress, 1.0, "Read the Common Voice folder")
    return datasets.DatasetDict(out)


# --------------------------------------------------------------------------------------------------------------
# demo: synthetic corpus
# --------------------------------------------------------------------------------------------------------------
def _load_demo(src: SourceConfig, splits, progress, report: LoadReport):
    from whisper_studio import demo  # lazy: it loads eSpeak NG

    lang = languages.resolve(src.language)
    folder = demo.build_corpus(lang.locale, progress=(lambda f, m: _report(progress, 0.8 * f, m)) if progress else None)
    report.synthetic = True
    report.notes.append("Synthetic speech (eSpeak NG): for trying the pipeline, not for real accuracy.")
    return read_cv_folder(folder, lang.locale, splits,
                          progress=(lambda f, m: _report(progress, 0.8 + 0.2 * f, m)) if progress else None,
                          report=report)


# --------------------------------------------------------------------------------------------------------------
# mdc: Mozilla Data Collective
# --------------------------------------------------------------------------------------------------------------
_ENV_LOCK = threading.Lock()
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


@contextlib.contextmanager
def mdc_key_in_env(api_key: str | None):
    """The SDK (and a training job, which inherits the environment) reads the key from MDC_API_KEY only: an
    explicit key is put there for the duration and removed after. Blank means none: the environment's own."""
    api_key = (api_key or "").strip() or None
    if api_key is None:
        yield
        return
    with _ENV_LOCK:
        old = os.environ.get("MDC_API_KEY")
        os.environ["MDC_API_KEY"] = api_key
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("MDC_API_KEY", None)
            else:
                os.environ["MDC_API_KEY"] = old


def mdc_dir() -> Path:
    path = paths.cache_dir() / "mdc"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _watch_download(folder: Path, progress: Progress, stop: threading.Event) -> None:
    """Report the size of the growing `.part` file: the SDK has no progress callback of its own."""
    while not stop.wait(0.5):
        try:
            size = max((p.stat().st_size for p in folder.glob("*.part")), default=None)
        except OSError:  # renamed into place between the listing and the stat: the download just finished
            continue
        if size is not None:
            _report(progress, 0.05, f"Downloading from the Mozilla Data Collective: {size / 1e6:.1f} MB")


def _mdc_download(dataset_id: str, api_key: str | None, progress: Progress) -> Path:
    try:
        import datacollective
        import requests
        from datacollective.errors import AuthenticationError, DownloadError, RateLimitError
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise DataSourceError(f"The Mozilla Data Collective client is not installed ({exc}); pip install datacollective.") from None

    key = api_key if api_key is not None else os.environ.get("MDC_API_KEY")
    if not key or not key.strip():
        raise DataSourceError(
            "Downloading from the Mozilla Data Collective needs an API key: create one at "
            "https://mozilladatacollective.com (profile -> API keys), accept the dataset's terms on its page, "
            "then set MDC_API_KEY (or paste the key in the app)."
        )
    folder = mdc_dir()
    stop = threading.Event()
    watcher = None
    if progress is not None:
        watcher = threading.Thread(target=_watch_download, args=(folder, progress, stop), daemon=True)
        watcher.start()
    try:
        with mdc_key_in_env(api_key):
            return Path(datacollective.download_dataset(dataset_id, download_directory=str(folder),
                                                        show_progress=False, extract=False))
    except AuthenticationError:
        raise DataSourceError(
            "The Mozilla Data Collective rejected the API key (401): it is invalid, expired or revoked. "
            "Create a new key on mozilladatacollective.com and set MDC_API_KEY."
        ) from None
    except PermissionError as exc:
        detail = str(exc).split(" — ", 1)[1] if " — " in str(exc) else ""
        raise DataSourceError(
            f"The Mozilla Data Collective refused access to dataset {dataset_id!r} (403)"
            + (f": {detail}" if detail else "")
            + ". Accept the dataset's terms on its page with the account that owns the key, or check the key."
        ) from None
    except FileNotFoundError:  # 404, and 410 (ResourceRemovedError subclasses it)
        raise DataSourceError(
            f"The Mozilla Data Collective has no dataset {dataset_id!r} (404). Copy the id from the dataset's "
            "page URL (mozilladatacollective.com/datasets/<id>)."
        ) from None
    except RateLimitError:
        raise DataSourceError("The Mozilla Data Collective is rate-limiting requests (429); try again in a minute.") from None
    except DownloadError as exc:
        cause = exc.__cause__
        if isinstance(cause, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        progress_note = f"{exc.total_downloaded_bytes} of {exc.total_archive_bytes} downloaded"
        if isinstance(cause, (requests.ConnectionError, requests.Timeout)) and not exc.session_bytes.startswith("0.0 "):
            raise OfflineError(
                f"The download of {dataset_id!r} was interrupted ({progress_note}): the network went away. "
                "Run it again when it is back: it resumes where it stopped."
            ) from None
        raise DataSourceError(
            f"The download of {dataset_id!r} was interrupted ({progress_note}; {type(cause).__name__ if cause else 'error'}). "
            "Just run it again: it resumes where it stopped."
        ) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        host = urlparse(os.environ.get("MDC_API_URL") or "https://mozilladatacollective.com").netloc
        raise OfflineError(
            f"Cannot reach the Mozilla Data Collective ({host}): no network? Use the demo source or a local "
            f"Common Voice folder offline. ({type(exc).__name__})"
        ) from None
    except ValueError as exc:  # the SDK's "Missing API key" or an empty id
        raise DataSourceError(f"Mozilla Data Collective: {exc}") from None
    except requests.HTTPError as exc:
        raise DataSourceError(f"The Mozilla Data Collective answered with an error: {exc}") from None
    finally:
        stop.set()
        if watcher is not None:
            watcher.join(timeout=2)


def _archive_stem(name: str) -> str | None:
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix) and name != suffix:
            return name[: -len(suffix)]
    return None


def extract_archive(archive: Path) -> Path:
    """Unpack a .tar.gz/.tgz/.tar/.zip beside itself (once; atomically through a `.partial` folder).

    A corrupt archive is deleted, so that the next run downloads it afresh instead of failing on the cache.
    """
    stem = _archive_stem(archive.name)
    if stem is None:
        raise DataSourceError(f"{archive.name} is not an archive this app can unpack ({', '.join(ARCHIVE_SUFFIXES)}).")
    target = archive.parent / stem
    if target.is_dir():
        return target
    partial = archive.parent / (stem + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise zipfile.BadZipFile(f"bad CRC for {bad}")
                for member in zf.namelist():  # the same guard tarfile's "data" filter gives
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise DataSourceError(f"{archive.name} holds an unsafe path {member!r}; refusing to unpack it.")
                zf.extractall(partial)
        else:
            with tarfile.open(archive, "r:" if archive.name.endswith(".tar") else "r:gz") as tf:
                tf.extractall(partial, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, (EOFError,)) and exc.errno is not None:
            raise  # a disk problem (full, permissions), not a bad archive: let it surface as such
        archive.unlink(missing_ok=True)
        raise DataSourceError(
            f"The downloaded archive {archive.name} is corrupt ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "it was deleted. "
            "Run again to download it afresh."
        ) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(target)
    return target


def _load_mdc(src: SourceConfig, splits, progress, report: LoadReport, api_key: str | None = None):
    _report(progress, 0.0, f"Fetching {src.dataset_id} from the Mozilla Data Collective")
    archive = _mdc_download(src.dataset_id.strip(), api_key, progress)
    _report(progress, 0.7, f"Unpacking {archive.name}")
    root = extract_archive(archive)
    return read_cv_folder(root, src.language, splits,
                          progress=(lambda f, m: _report(progress, 0.8 + 0.2 * f, m)) if progress else None,
                          report=report)


# --------------------------------------------------------------------------------------------------------------
# hub: Hugging Face datasets (parquet), or a local folder of parquet / audiofolder files
# --------------------------------------------------------------------------------------------------------------
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")
_ALTERNATIVES = "Offline, use the demo source (synthetic speech) or a local Common Voice folder (cv-folder)."


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connect to the hub: fails in milliseconds without DNS/network, where datasets would retry for minutes."""
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    parsed = urlparse(endpoint)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)), timeout=timeout):
            return True
    except OSError:
        return False


def _read_audiofolder(folder: Path, src: SourceConfig, splits, locale: str):
    """A local "audiofolder" (audio files + metadata.csv/.jsonl, optionally in train/ test/ subfolders),
    read without datasets' audiofolder builder, which encodes through torchcodec."""
    import datasets
    import pandas as pd

    def metadata(directory: Path):
        for name in ("metadata.csv", "metadata.jsonl", "metadata.parquet"):
            if (directory / name).is_file():
                p = directory / name
                if name.endswith(".csv"):
                    return pd.read_csv(p, keep_default_na=False)
                if name.endswith(".jsonl"):
                    return pd.read_json(p, lines=True)
                return pd.read_parquet(p)
        return None

    out = {}
    for split in splits:
        directory = folder / split if (folder / split).is_dir() else None
        if directory is None and split == "test" and (folder / "validation").is_dir():
            directory = folder / "validation"
        frame = metadata(directory) if directory is not None else None
        if frame is None and directory is None and metadata(folder) is not None:
            frame, directory = metadata(folder), folder
            if "split" in frame.columns:
                frame = frame[frame["split"] == split]
        if frame is None:
            raise DataSourceError(f"{folder} has no {split}/metadata.csv (or metadata.jsonl) for the {split!r} split.")
        path_column = "file_name" if "file_name" in frame.columns else src.audio_column
        for column, what in ((path_column, "audio file"), (src.text_column, "text")):
            if column not in frame.columns:
                raise DataSourceError(
                    f"{directory} metadata has no {what} column {column!r}; its columns: {', '.join(map(str, frame.columns))}. "
                    "Set the audio/text column names to match."
                )
        rows = _empty_rows()
        for file_name, text in zip(frame[path_column], frame[src.text_column]):
            clip = directory / str(file_name)
            if not clip.is_file():
                continue
            rows["audio"].append(str(clip))
            rows["sentence"].append(str(text))
            rows["locale"].append(locale)
            rows["split"].append(split)
            rows["id"].append(Path(str(file_name)).stem)
        if not rows["id"]:
            raise DataSourceError(f"{directory} lists no audio files that exist for the {split!r} split.")
        out[split] = _make_dataset(rows)
    return datasets.DatasetDict(out)


def _hub_error(exc: Exception, repo: str) -> StudioError:
    text = str(exc)
    name = type(exc).__name__
    if "scripts are no longer supported" in text:
        return DataSourceError(
            f"{repo} is a script-based dataset, which the datasets library (v4+) no longer runs. Use a repo with "
            "parquet files (look for a 'refs/convert/parquet' branch or a parquet mirror), or another source."
        )
    if "gated dataset" in text:
        return DataSourceError(
            f"{repo} is gated: accept its terms on huggingface.co/datasets/{repo} and log in (`hf auth login` or "
            "set HF_TOKEN) before loading it."
        )
    if "doesn't exist on the Hub" in text or name in ("DatasetNotFoundError", "RepositoryNotFoundError"):
        return DataSourceError(f"No dataset {repo!r} on the Hugging Face hub (or it is private). Check the id, e.g. 'owner/name'.")
    if isinstance(exc, ConnectionError) or "OfflineModeIsEnabled" in text or "Couldn't reach" in text:
        return OfflineError(f"Cannot reach the Hugging Face hub for {repo!r} and no cached copy exists. {_ALTERNATIVES}")
    if "torchcodec" in text:
        return DataSourceError(
            f"{repo} stores audio in a form datasets can only decode through torchcodec, which is not available here. "
            "Use a repo with parquet files (audio as bytes) or download it and load the folder."
        )
    if "Unknown split" in text or "Bad split" in text:
        return DataSourceError(f"{repo}: {text}")
    if name in ("DataFilesNotFoundError", "EmptyDatasetError", "FileNotFoundError", "FileNotFoundDatasetsError"):
        return DataSourceError(f"{repo} has no data files datasets can read (parquet, csv, json): {text}")
    if "config name is missing" in text.lower() or "BuilderConfig" in text:
        return DataSourceError(f"{repo} needs a configuration name (subset): {text}")
    return DataSourceError(f"Could not load {repo!r} from the hub: {name}: {text}")


def _load_hub(src: SourceConfig, splits, progress, report: LoadReport):
    import datasets

    lang = languages.resolve(src.language)
    repo = src.dataset_id.strip()
    local = Path(repo).expanduser()
    if local.is_dir():
        has_parquet = any(local.rglob("*.parquet"))
        has_meta = any(local.glob("metadata.*")) or any(local.glob("*/metadata.*"))
        if has_meta and not has_parquet:
            report.root = str(local)
            return _read_audiofolder(local, src, splits, lang.locale)
        repo = str(local)
    elif _env_true("HF_HUB_OFFLINE") or _env_true("HF_DATASETS_OFFLINE"):
        pass  # datasets answers at once from its cache, or with a connection error we translate
    elif not _hub_reachable():
        raise OfflineError(f"Cannot reach the Hugging Face hub (huggingface.co) to load {repo!r}. {_ALTERNATIVES}")

    out = {}
    for i, split in enumerate(splits):
        _report(progress, i / max(1, len(splits)), f"Loading {repo} [{split}]")
        candidates = [split] + (["validation", "dev"] if split == "test" else []) + (["dev"] if split == "validation" else [])
        ds, last_error = None, None
        for name in candidates:
            try:
                ds = datasets.load_dataset(repo, src.hub_config, split=name)
                if name != split:
                    report.notes.append(f"{repo} has no {split!r} split; using {name!r}.")
                break
            except ValueError as exc:  # unknown split: try the next name
                if "split" not in str(exc).lower():
                    raise _hub_error(exc, repo) from None
                last_error = exc
            except Exception as exc:  # noqa: BLE001 - translated to a message the user can act on
                if isinstance(exc, StudioError):
                    raise
                raise _hub_error(exc, repo) from None
        if ds is None:
            raise DataSourceError(f"{repo} has no {split!r} split ({last_error}).")
        if isinstance(ds, datasets.DatasetDict):  # defensive: split= always gives a Dataset
            ds = ds[next(iter(ds))]
        out[split] = _normalize_hub_split(ds, src, lang.locale, split, repo)
    _report(progress, 1.0, f"Loaded {repo}")
    return datasets.DatasetDict(out)


def _normalize_hub_split(ds, src: SourceConfig, locale: str, split: str, repo: str):
    import datasets

    missing = [c for c in (src.audio_column, src.text_column) if c not in ds.column_names]
    if missing:
        raise DataSourceError(
            f"{repo} [{split}] has no column(s) {', '.join(repr(c) for c in missing)}; its columns are "
            f"{', '.join(ds.column_names)}. Set the audio and text column names to match."
        )
    # Cast before anything touches a row: datasets would otherwise decode audio through torchcodec.
    ds = ds.cast_column(src.audio_column, datasets.Audio(decode=False))
    if src.audio_column != "audio":
        if "audio" in ds.column_names:
            ds = ds.remove_columns("audio")
        ds = ds.rename_column(src.audio_column, "audio")
    if src.text_column != "sentence":
        if "sentence" in ds.column_names:
            ds = ds.remove_columns("sentence")
        ds = ds.rename_column(src.text_column, "sentence")
    drop = [c for c in ds.column_names if c not in ("audio", "sentence", "id")]
    ds = ds.remove_columns(drop)
    n = len(ds)
    ds = ds.add_column("locale", [locale] * n).add_column("split", [split] * n)
    if "id" not in ds.column_names:
        ds = ds.add_column("id", [f"{split}-{i:06d}" for i in range(n)])
    else:
        ds = ds.cast_column("id", datasets.Value("string"))
    if ds.features["sentence"].dtype != "string":
        ds = ds.cast_column("sentence", datasets.Value("string"))
    return ds.select_columns(list(COLUMNS))


# --------------------------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------------------------
def load_source(src: SourceConfig, splits=("train", "test"), progress: Progress = None, *,
                api_key: str | None = None, report: LoadReport | None = None):
    """Any source -> DatasetDict(split -> Dataset[audio, sentence, locale, split, id]).

    `api_key`: an MDC key given in the UI instead of MDC_API_KEY (used for the call, never logged or stored).
    `report`: a LoadReport to fill (missing clips, synthetic, notes).
    """
    if src.kind not in SOURCE_KINDS:
        raise DataSourceError(f"Unknown data source {src.kind!r}; choose one of {', '.join(SOURCE_KINDS)}.")
    splits = tuple(splits) if not isinstance(splits, str) else (splits,)
    if not splits:
        raise DataSourceError("No split requested.")
    languages.resolve(src.language)  # an unknown language fails before any download
    report = report if report is not None else LoadReport()
    report.kind = src.kind
    if src.kind == "demo":
        dsd = _load_demo(src, splits, progress, report)
    elif src.kind == "cv-folder":
        dsd = read_cv_folder(src.path, src.language, splits, progress=progress, report=report)
    elif src.kind == "mdc":
        dsd = _load_mdc(src, splits, progress, report, api_key=api_key)
    else:
        dsd = _load_hub(src, splits, progress, report)
    return dsd


# --------------------------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------------------------
_DURATIONS: dict[tuple, float] = {}


def _clip_seconds(value: dict) -> float:
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


def _iter_audio(ds) -> Iterable[dict]:
    for batch in ds.select_columns(["audio"]).iter(batch_size=512):
        yield from batch["audio"]


def split_seconds(ds) -> list[float]:
    """Per-clip seconds of a split (unreadable clips count as 0 and are logged)."""
    out = []
    for value in _iter_audio(ds):
        try:
            out.append(_clip_seconds(value))
        except AudioError as exc:
            log.warning("%s", exc)
            out.append(0.0)
    return out


def summarize(dsd) -> dict[str, dict[str, float]]:
    """{split: {"clips": n, "hours": h}} with hours from the audio headers (no decoding)."""
    return {split: {"clips": len(ds), "hours": round(sum(split_seconds(ds)) / 3600.0, 4)} for split, ds in dsd.items()}


def sample_rows(dsd, split: str, n: int, seed: int = 0) -> list[dict]:
    """n rows of a split, spread at random (seeded: the same rows each time), as {"path", "sentence", "id"}.

    Audio held as bytes (hub parquet) is written once under cache_dir()/samples so that a UI can play a path.
    """
    if split not in dsd:
        raise DataSourceError(f"No {split!r} split; the data has {', '.join(dsd)}.")
    ds = dsd[split]
    if n <= 0 or len(ds) == 0:
        return []
    indices = sorted(random.Random(seed).sample(range(len(ds)), min(n, len(ds))))
    rows = []
    for row in ds.select(indices):
        value = row["audio"]
        path = value.get("path")
        if value.get("bytes"):
            data = value["bytes"]
            digest = hashlib.sha256(data).hexdigest()[:20]
            suffix = Path(path).suffix if path and Path(path).suffix else ".wav"
            target = paths.cache_dir() / "samples" / f"{digest}{suffix}"
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, target)
            path = str(target)
        rows.append({"path": path, "sentence": row["sentence"], "id": row["id"]})
    return rows


# --------------------------------------------------------------------------------------------------------------
# Features and labels
# --------------------------------------------------------------------------------------------------------------
@dataclass
class PreparedData:
    dataset: Any  # datasets.Dataset with input_features and labels
    dropped_long_audio: int = 0
    dropped_long_labels: int = 0
    dropped_unreadable: int = 0
    cached: bool = False  # features came from the on-disk cache


FEATURES_VERSION = 2  # bump when what `prepare` writes changes, so old caches are not reused


def _fingerprint(ds, processor, language: str, task: str, max_label_tokens: int) -> str:
    """What the features depend on: every clip (path, size, mtime or bytes hash), every sentence, the feature
    extractor's settings, the tokenizer's prefix and vocabulary, the language and task."""
    h = hashlib.sha256()
    fe = processor.feature_extractor
    settings = {k: v for k, v in fe.to_dict().items() if not k.startswith("_") and k not in ("mel_filters",)}
    tok = processor.tokenizer
    h.update(json.dumps({"v": FEATURES_VERSION, "fe": settings, "lang": language, "task": task,
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


def prepare(ds, processor, language: str, task: str = "transcribe", max_label_tokens: int = 448, num_proc: int = 1,
            *, cache: bool = True, progress: Progress = None) -> PreparedData:
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
    final = _features_root() / key if key else None
    if final is not None and (final / "meta.json").is_file():
        try:
            meta = json.loads((final / "meta.json").read_text())
            prepared = datasets.load_from_disk(str(final))
            return PreparedData(prepared, meta["dropped_long_audio"], meta["dropped_long_labels"],
                                meta.get("dropped_unreadable", 0), cached=True)
        except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt, not fatal
            log.warning("feature cache %s unreadable; rebuilding", final, exc_info=True)
            shutil.rmtree(final, ignore_errors=True)

    # 1. Cheap checks first (headers and tokenizer only), so long clips are never decoded.
    _report(progress, 0.0, "Checking clip lengths and transcripts")
    keep, long_audio, long_labels, unreadable = [], 0, 0, 0
    sentences = [text if isinstance(text, str) else "" for text in ds["sentence"]]  # hub rows may hold None
    label_ids = tokenizer(sentences).input_ids if sentences else []
    for i, value in enumerate(_iter_audio(ds)):
        try:
            seconds = _clip_seconds(value)
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
            f"tokens, {unreadable} unreadable."
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

    scratch = None
    if final is not None:
        scratch = _features_root() / f"tmp-{key}-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
    try:
        _report(progress, 0.05, f"Computing log-mel features for {len(subset)} clips")
        mapped = subset.map(
            featurize, batched=True, batch_size=16, num_proc=num_proc if num_proc and num_proc > 1 else None,
            remove_columns=[c for c in subset.column_names if c not in ("labels", "sentence", "id")],
            cache_file_name=str(scratch / "features.arrow") if scratch else None, desc="log-mel features",
        )
        bad = len(mapped) - sum(mapped["_ok"])
        if bad:
            unreadable += bad
            mapped = mapped.filter(lambda ok: ok, input_columns=["_ok"],
                                   cache_file_name=str(scratch / "kept.arrow") if scratch else None)
        mapped = mapped.remove_columns("_ok")
        if final is not None:
            # save_to_disk into a private folder, then one atomic rename: a crash never leaves a half entry, and
            # two processes preparing the same data both end up reading one complete copy.
            partial = final.with_name(final.name + f".partial-{os.getpid()}")
            shutil.rmtree(partial, ignore_errors=True)
            mapped.save_to_disk(str(partial))
            meta = {"dropped_long_audio": long_audio, "dropped_long_labels": long_labels,
                    "dropped_unreadable": unreadable, "clips": len(mapped), "language": lang.whisper, "task": task,
                    "created": time.time()}
            (partial / "meta.json").write_text(json.dumps(meta, indent=1))
            try:
                partial.rename(final)
            except OSError:  # another process finished the same entry first: use theirs
                shutil.rmtree(partial, ignore_errors=True)
            mapped = datasets.load_from_disk(str(final))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    _report(progress, 1.0, f"Prepared {len(mapped)} clips")
    return PreparedData(mapped, long_audio, long_labels, unreadable)


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


# --------------------------------------------------------------------------------------------------------------
# CLI: python -m whisper_studio data ...
# --------------------------------------------------------------------------------------------------------------
def register_cli(subparsers) -> None:
    p = subparsers.add_parser("data", help="load a data source and print clips and hours per split",
                              description="Load a data source and print clips and hours per split.")
    p.add_argument("--source", choices=SOURCE_KINDS, default="demo", help="where the data comes from (default: demo)")
    p.add_argument("--language", default="mr", help="Common Voice locale, Whisper code or name (default: mr)")
    p.add_argument("--path", help="cv-folder: the release folder (cv-corpus-*/<locale>)")
    p.add_argument("--dataset-id", help="mdc: the dataset id; hub: the repo id (or a local folder)")
    p.add_argument("--config", dest="hub_config", help="hub: the dataset configuration (subset)")
    p.add_argument("--audio-column", default="audio", help="hub: audio column (default: audio)")
    p.add_argument("--text-column", default="sentence", help="hub: text column (default: sentence)")
    p.add_argument("--splits", default="train,test", help="comma-separated splits (default: train,test)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cli)


def shared_sentences(dsd) -> dict[tuple[str, str], int]:
    """How many distinct sentences each pair of splits has in common (a held-out split should share none)."""
    names = list(dsd)
    texts = {name: {str(t).strip() for t in dsd[name]["sentence"]} for name in names}
    return {(a, b): len(texts[a] & texts[b]) for i, a in enumerate(names) for b in names[i + 1:]}


def _cli(args) -> int:
    from whisper_studio.config import SourceConfig
    from whisper_studio.errors import ConfigError

    try:
        src = SourceConfig(kind=args.source, language=args.language, path=args.path, dataset_id=args.dataset_id,
                           audio_column=args.audio_column, text_column=args.text_column, hub_config=args.hub_config)
    except ConfigError:
        raise
    lang = languages.resolve(args.language)
    report = LoadReport()
    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    dsd = load_source(src, splits, report=report)
    summary = summarize(dsd)
    overlap = shared_sentences(dsd)
    if args.json:
        print(json.dumps({"source": src.kind, "language": lang.locale, "synthetic": report.synthetic,
                          "root": report.root, "missing_clips": report.missing_clips, "splits": summary,
                          "shared_sentences": {f"{a}/{b}": n for (a, b), n in overlap.items()},
                          "notes": report.notes}, ensure_ascii=False, indent=2))
        return 0
    title = f"{src.kind} · {lang.label}"
    if report.synthetic:
        title += " · SYNTHETIC speech (eSpeak NG), for trying the pipeline only"
    print(title)
    if report.root:
        print(f"folder: {report.root}")
    for split, row in summary.items():
        print(f"  {split:<10} {row['clips']:>8} clips  {row['hours']:>8.3f} h")
    for (a, b), n in overlap.items():
        verdict = "disjoint" if n == 0 else f"{n} sentence(s) in both: a model may have heard these test sentences"
        print(f"  {a} / {b}: {verdict}")
    for split, n in report.missing_clips.items():
        print(f"note: {n} {split} row(s) skipped: their clip is missing from clips/")
    for note in report.notes:
        print(f"note: {note}")
    return 0
