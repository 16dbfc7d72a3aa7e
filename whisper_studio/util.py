"""Small helpers every module shares, written once: atomic writes, environment flags, network probes, locks.

Why here: each of these existed in three to six slightly different copies (different truthy spellings,
different probe timeouts, a flock + RLock pair); one definition keeps the rules identical everywhere.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

TRUE_WORDS = ("1", "true", "yes", "on")
HUB_ENDPOINT_DEFAULT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0


# --- Files ----------------------------------------------------------------------------------------------------
def write_atomic(path: str | os.PathLike, data: bytes | str, *, fsync: bool = True) -> Path:
    """Write through a unique temporary file in the same folder, then rename it over the target.

    Readers see the old file or the new one, never half of one; concurrent writers never share a temp name.
    The temp file is removed when anything fails (a full disk included), so no 0-byte `.tmp` is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    return write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def file_lock(path: str | os.PathLike, timeout: float = -1):
    """An inter-process lock (the `filelock` package: re-entrant within a thread, works across processes)."""
    from filelock import FileLock

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path), timeout=timeout)


# --- Environment ------------------------------------------------------------------------------------------------
def env_true(name: str) -> bool:
    """The one rule for boolean environment variables: 1/true/yes/on, any case, surrounding spaces ignored."""
    return os.environ.get(name, "").strip().lower() in TRUE_WORDS


def hub_offline() -> bool:
    """Offline mode as any of the Hugging Face libraries spell it."""
    return any(env_true(n) for n in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT_DEFAULT


# --- Network --------------------------------------------------------------------------------------------------
def reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """One TCP connect to the URL's host, bounded even when DNS hangs.

    Cheaper and faster than letting a hub client retry for minutes. The connect runs in a daemon thread
    because a socket timeout does not cover name resolution, and a stuck resolver must not stall the UI.
    """
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return bool(result and result[0])


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    return reachable(hub_endpoint(), timeout)
