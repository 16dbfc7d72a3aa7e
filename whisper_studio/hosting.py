"""Where the app is hosted: Hugging Face Spaces, ZeroGPU, or a machine of one's own.

A public Space is shared by everyone who opens it, so everything that trains, stops, pushes or reads the
server's files is guarded by an admin password the owner keeps as a Space secret (`require_admin`, the one rule
every such endpoint calls), and file paths typed by visitors are refused outright (`local_paths_allowed`);
transcription and evaluation stay open. ZeroGPU lends a GPU only for the length of one decorated call, so a background training job cannot use it:
there, GPU-bound inference is decorated with `spaces.GPU` and training is not offered.
"""

from __future__ import annotations

import functools
import hmac
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable, TypeVar

from whisper_studio.errors import AccessError

# The Space secret (Settings -> Variables and secrets) that unlocks training on a Space.
ADMIN_PASSWORD_ENV = "WHISPER_STUDIO_ADMIN_PASSWORD"

F = TypeVar("F", bound=Callable)


def on_spaces() -> bool:
    """Spaces sets SPACE_ID (owner/name) and SYSTEM=spaces in every Space's environment."""
    return bool(os.environ.get("SPACE_ID")) or os.environ.get("SYSTEM") == "spaces"


def space_id() -> str | None:
    return os.environ.get("SPACE_ID") or None


def zero_gpu() -> bool:
    """ZeroGPU hardware sets SPACES_ZERO_GPU; its `spaces` package must be importable to use it."""
    return "SPACES_ZERO_GPU" in os.environ and importlib.util.find_spec("spaces") is not None


def duplicate_url() -> str | None:
    sid = space_id()
    return f"https://huggingface.co/spaces/{sid}?duplicate=true" if sid else None


def gpu(duration: int = 60) -> Callable[[F], F]:
    """Decorate a GPU-bound inference function for ZeroGPU; elsewhere leave it as it is."""

    def wrap(fn: F) -> F:
        if not zero_gpu():
            return fn
        import spaces  # only present on Spaces hardware

        return spaces.GPU(duration=duration)(fn)

    return wrap


@functools.lru_cache(maxsize=1)
def visible_gpus() -> int:
    """How many CUDA GPUs a training job would see, found without importing torch (the UI stays light):
    CUDA_VISIBLE_DEVICES where it is set, else `nvidia-smi -L`."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d for d in visible.split(",") if d.strip() and d.strip() != "-1"]
        return len(ids)
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


@dataclass(frozen=True)
class TrainingPolicy:
    """Whether this deployment offers training, and whether a password unlocks it."""

    offered: bool
    needs_password: bool
    reason: str  # shown in the Train tab when training is off or locked; empty when open


def training_policy() -> TrainingPolicy:
    password_set = bool(os.environ.get(ADMIN_PASSWORD_ENV))
    if zero_gpu():
        return TrainingPolicy(
            offered=False,
            needs_password=False,
            reason=(
                "Training is not offered on ZeroGPU hardware: it lends a GPU only for the length of one call, "
                "and a fine-tune runs for minutes in the background. "
                + _duplicate_hint("on dedicated GPU or CPU hardware")
            ),
        )
    if on_spaces() and not password_set:
        return TrainingPolicy(
            offered=False,
            needs_password=True,
            reason=(
                "Training is locked on this public Space: its owner has not set the "
                f"{ADMIN_PASSWORD_ENV} secret. Transcription and evaluation stay open to everyone. "
                + _duplicate_hint("to train on your own hardware")
            ),
        )
    if password_set:
        return TrainingPolicy(
            offered=True,
            needs_password=True,
            reason="Starting or stopping training needs the admin password of this deployment.",
        )
    return TrainingPolicy(offered=True, needs_password=False, reason="")


def check_password(given: str | None) -> bool:
    """Constant-time comparison with the configured admin password; no password configured means open."""
    expected = os.environ.get(ADMIN_PASSWORD_ENV)
    if not expected:
        return not on_spaces()
    return hmac.compare_digest((given or "").encode(), expected.encode())


def require_admin(password: str | None, action: str = "This action") -> None:
    """The one rule for every endpoint that trains, stops, pushes or reads the server's files: on a public Space
    it needs the admin password (and is locked when the owner set none); on one's own machine it is open unless
    the owner set a password, which then applies the same way. Raises AccessError; returns None when allowed."""
    if check_password(password):
        return
    if not os.environ.get(ADMIN_PASSWORD_ENV):
        raise AccessError(
            f"{action} is locked on this public Space: its owner has not set the {ADMIN_PASSWORD_ENV} secret. "
            + _duplicate_hint("to do it on your own hardware")
        )
    raise AccessError(
        f"Wrong or missing admin password: {action[:1].lower() + action[1:]} on this deployment needs the password "
        f"kept in its {ADMIN_PASSWORD_ENV} secret."
    )


def local_paths_allowed() -> bool:
    """Whether visitors may name files or folders on the server (a Common Voice folder, a local dataset or model
    folder). Never on a Space: the server's disk holds the owner's secrets and caches, and a path typed in a
    page is a file read for whoever typed it."""
    return not on_spaces()


def refuse_local_path(what: str) -> None:
    """AccessError when a visitor-typed local path (`what`, e.g. "a Common Voice folder") is not allowed here."""
    if not local_paths_allowed():
        raise AccessError(
            f"This Space does not read {what} from its server: files on a hosted app are not open to visitors. "
            "Use the demo data, a Mozilla Data Collective dataset or a hub dataset id (OWNER/NAME) instead. "
            + _duplicate_hint("to use your own files")
        )


def _duplicate_hint(purpose: str) -> str:
    url = duplicate_url()
    if url:
        return f"Duplicate this Space ({url}) {purpose}."
    return f"Run Whisper Studio yourself {purpose}."
