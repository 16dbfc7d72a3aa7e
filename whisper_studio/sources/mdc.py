"""mdc: a Common Voice archive from the Mozilla Data Collective (`datacollective` SDK), cached and resumable,
unpacked once and read as a Common Voice folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
import zipfile
import zlib
from pathlib import Path
from urllib.parse import urlparse

from whisper_studio import paths, util
from whisper_studio.errors import ConfigError, DataSourceError, OfflineError
from whisper_studio.sources.base import Input, Progress, Source, check_inside, report_progress, scaled
from whisper_studio.sources.cv_folder import read_cv_folder

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


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
            report_progress(progress, 0.05, f"Downloading from the Mozilla Data Collective: {size / 1e6:.1f} MB")


def _fetch_archive(dataset_id: str, key: str, folder: Path) -> Path:
    """The SDK's `download_dataset` flow (public details, download session, resumable transfer) with the key
    given to the one request that needs it: the SDK itself reads it only from MDC_API_KEY, and a process-wide
    variable would lend one user's key to every other session and to the jobs it launches."""
    from datacollective import api_utils, download
    from datacollective.datasets import get_dataset_details

    details = get_dataset_details(dataset_id)  # public: no key sent
    if not details.filename:
        raise DataSourceError(f"The Mozilla Data Collective gave no archive name for {dataset_id!r}.")
    target = folder / Path(details.filename).name
    if target.exists():
        return target
    response = api_utils._send_api_request(
        method="POST", url=f"{api_utils._get_api_url()}/datasets/{details.id}/download",
        include_auth_headers=False, extra_headers={"Authorization": f"Bearer {key}"},
        source_function=download.DOWNLOAD_SOURCE_DOWNLOAD)
    plan = download._build_download_plan(response.json(), target)
    return download._run_download_plan(plan, show_progress=False, overwrite_existing=False,
                                       download_source=download.DOWNLOAD_SOURCE_DOWNLOAD)


def _mdc_download(dataset_id: str, api_key: str | None, progress: Progress) -> Path:
    try:
        import datacollective
        import requests
        from datacollective.errors import AuthenticationError, DownloadError, RateLimitError
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise DataSourceError(f"The Mozilla Data Collective client is not installed ({exc}); pip install datacollective.") from None

    # The key is read from the environment (never written to it: issue 10.6) when none is given.
    key = (api_key or "").strip() or os.environ.get("MDC_API_KEY", "")
    if not key.strip():
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
        return _fetch_archive(dataset_id, key.strip(), folder)
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
        if isinstance(cause, (requests.ConnectionError, requests.Timeout)) and not str(exc.session_bytes).startswith("0.0 "):
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


def _members_size(archive: Path) -> int:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            return sum(info.file_size for info in zf.infolist())
    with tarfile.open(archive, "r:" if archive.name.endswith(".tar") else "r:gz") as tf:
        return sum(member.size for member in tf.getmembers() if member.isfile())


def _unpack(archive: Path, into: Path) -> None:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"bad CRC for {bad}")
            for member in zf.namelist():  # zip-slip: the same guard tarfile's "data" filter gives
                if member.startswith(("/", "\\")) or ".." in Path(member.replace("\\", "/")).parts or ":" in member:
                    raise DataSourceError(f"{archive.name} holds an unsafe path {member!r}; refusing to unpack it.")
            zf.extractall(into)
    else:
        with tarfile.open(archive, "r:" if archive.name.endswith(".tar") else "r:gz") as tf:
            tf.extractall(into, filter="data")


def _remove_stale_partials(parent: Path, stem: str, max_age: float = 6 * 3600.0) -> None:
    """Temporary folders of extractions that were killed (a running one touches its folder as it writes)."""
    now = time.time()
    for path in parent.glob(f".{stem}.partial-*"):
        try:
            if now - path.stat().st_mtime > max_age:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass
    shutil.rmtree(parent / f"{stem}.partial", ignore_errors=True)  # the fixed name earlier versions used


def extract_archive(archive: Path, *, into: Path | None = None, max_bytes: int | None = None) -> Path:
    """Unpack a .tar.gz/.tgz/.tar/.zip, once, into `<into or its own folder>/<stem>/`; returns that folder.

    Concurrency (issue 10.8): each caller unpacks into its own unique temporary folder, then renames it into
    place in one step; a caller that loses the race (the folder appeared meanwhile) drops its copy and uses the
    winner's. `max_bytes` caps the unpacked size (uploads): DataSourceError before anything is written.
    A corrupt archive is deleted, so that the next run downloads it afresh instead of failing on the cache.
    """
    archive = Path(archive)
    stem = _archive_stem(archive.name)
    if stem is None:
        raise DataSourceError(f"{archive.name} is not an archive this app can unpack ({', '.join(ARCHIVE_SUFFIXES)}).")
    parent = Path(into) if into is not None else archive.parent
    target = parent / stem
    if target.is_dir():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(parent, stem)
    partial = Path(tempfile.mkdtemp(prefix=f".{stem}.partial-", dir=parent))
    try:
        if max_bytes is not None:
            size = _members_size(archive)
            if size > max_bytes:
                raise DataSourceError(f"{archive.name} unpacks to {size / 1e6:.0f} MB, over the "
                                      f"{max_bytes / 1e6:.0f} MB limit; refusing to unpack it.")
        _unpack(archive, partial)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if target.is_dir():  # a concurrent extraction won (and may have removed a corrupt archive): theirs
            return target
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # a disk problem (full, permissions), not a bad archive: let it surface as such
        if into is not None:  # someone's upload, not our download: leave it, say what is wrong
            raise DataSourceError(f"{archive.name} is not a readable archive ({type(exc).__name__}).") from None
        archive.unlink(missing_ok=True)
        raise DataSourceError(
            f"The downloaded archive {archive.name} is corrupt ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "it was deleted. "
            "Run again to download it afresh."
        ) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    try:
        os.rename(partial, target)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        if not target.is_dir():
            raise
    return target


# --- Offline-first (issue 10.7): dataset id -> the folder it extracted to ---------------------------------------
def _index_path(dataset_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset_id)[:80]
    digest = hashlib.sha256(dataset_id.encode("utf-8")).hexdigest()[:12]
    return mdc_dir() / ".index" / f"{safe}-{digest}.json"


def cached_extraction(dataset_id: str) -> Path | None:
    """The extracted folder of a dataset loaded before, when it is still there (no key, no network)."""
    try:
        entry = json.loads(_index_path(dataset_id).read_text(encoding="utf-8"))
        folder = check_inside(mdc_dir(), str(entry["folder"]))
    except (OSError, ValueError, KeyError, TypeError, DataSourceError):
        return None
    return folder if folder.is_dir() else None


def _remember(dataset_id: str, archive: Path, folder: Path) -> None:
    try:
        util.write_json_atomic(_index_path(dataset_id), {"dataset_id": dataset_id, "archive": archive.name,
                                                         "folder": folder.name, "created": time.time()})
    except OSError:  # only an optimisation: the next load asks the network again
        pass


class MdcSource(Source):
    kind = "mdc"
    label = "Common Voice via the Mozilla Data Collective"
    fields = ("dataset_id",)
    required = ("dataset_id",)
    inputs = (
        # Not a SourceConfig field: the key goes to the one load (or job start) that needs it, never to disk.
        Input("mdc_key", None, "Mozilla Data Collective API key", secret=True, elem_id="mdc-key",
              placeholder="leave empty to use MDC_API_KEY from the environment",
              info="Used for this download only; never stored or shown."),
        Input("mdc_id", "dataset_id", "MDC dataset id", elem_id="mdc-id",
              placeholder="the Common Voice dataset id on datacollective.mozillafoundation.org"),
    )

    def check(self, src) -> None:
        if not src.dataset_id:
            raise ConfigError("The mdc source needs a Mozilla Data Collective dataset id.")

    def load(self, src, language, splits, progress, report, *, api_key=None):
        # 1. Download (resumable, cached under cache_dir()/mdc), 2. unpack once, 3. read the release.
        # 0. Offline-first: a dataset extracted before is read from the cache, without key or network.
        dataset_id = src.dataset_id.strip()
        root = cached_extraction(dataset_id)
        if root is not None:
            report.notes.append(f"Read from the cache ({root.name}); nothing downloaded.")
            return read_cv_folder(root, language, splits, progress=progress, report=report)
        report_progress(progress, 0.0, f"Fetching {dataset_id} from the Mozilla Data Collective")
        archive = _mdc_download(dataset_id, api_key, progress)
        report_progress(progress, 0.7, f"Unpacking {archive.name}")
        root = extract_archive(archive)
        _remember(dataset_id, archive, root)
        return read_cv_folder(root, language, splits, progress=scaled(progress, 0.8, 0.2), report=report)

    def describe(self, src) -> str:
        return f"Mozilla Data Collective dataset {src.dataset_id}"
