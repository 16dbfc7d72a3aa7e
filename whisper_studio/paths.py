"""Where Whisper Studio keeps things; each root is overridable by an environment variable."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """Converted models, demo corpora and downloads (`WHISPER_STUDIO_CACHE`, default ~/.cache/whisper_studio)."""
    root = os.environ.get("WHISPER_STUDIO_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "whisper_studio"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Training runs, one folder each (`WHISPER_STUDIO_RUNS`, default ./runs)."""
    path = Path(os.environ.get("WHISPER_STUDIO_RUNS") or "runs").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
