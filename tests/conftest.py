"""Shared fixtures. Tests are offline and CPU-only; the hub is never contacted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Offline for every library that might otherwise try the hub, set before any of them is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Converted bundled models and demo corpora are kept between local test runs (a clean clone converts once).
os.environ.setdefault("WHISPER_STUDIO_CACHE", str(REPO / ".cache" / "test-cache"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random tiny Whisper (real multilingual tokenizer) saved as a normal transformers folder."""
    from whisper_studio.testing import make_random_model

    return make_random_model(tmp_path_factory.mktemp("tiny-model") / "tiny", shape="tiny-test")


@pytest.fixture()
def runs_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    monkeypatch.setenv("WHISPER_STUDIO_RUNS", str(root))
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: the test machine's CPUs are shared, and one thread per process is much
    faster there than oversubscribing. Modules opt in with `pytestmark = pytest.mark.usefixtures(...)`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
