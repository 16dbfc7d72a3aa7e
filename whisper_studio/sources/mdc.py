"""mdc: a Common Voice archive from the Mozilla Data Collective (`datacollective` SDK), cached and resumable,
unpacked once and read as a Common Voice folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import threading
import zipfile
import zlib
from pathlib import Path
from urllib.parse import urlparse

from whisper_studio import paths
from whisper_studio.errors import ConfigError, DataSourceError, OfflineError
from whisper_studio.sources.base import Input, Progress, Source, report_progress, scaled
from whisper_studio.sources.cv_folder import read_cv_folder

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
            report_progress(progress, 0.05, f"Downloading from the Mozilla Data Collective: {size / 1e6:.1f} MB")


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
        report_progress(progress, 0.0, f"Fetching {src.dataset_id} from the Mozilla Data Collective")
        archive = _mdc_download(src.dataset_id.strip(), api_key, progress)
        report_progress(progress, 0.7, f"Unpacking {archive.name}")
        root = extract_archive(archive)
        return read_cv_folder(root, language, splits, progress=scaled(progress, 0.8, 0.2), report=report)

    def describe(self, src) -> str:
        return f"Mozilla Data Collective dataset {src.dataset_id}"
