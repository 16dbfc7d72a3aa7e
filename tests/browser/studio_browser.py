"""Start the app in its own process group and drive Chromium (facts: /work/shared/notes/browser-tests.md)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
SPEECH_WAV = REPO / "assets" / "examples" / "en_1.wav"  # fed to the fake microphone
TABS = ("Data", "Record", "Train", "Evaluate", "Try it")
VIEWPORT = {"width": 1280, "height": 900}

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Otherwise Chromium keeps resolving Google hosts, which hangs without a network.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: own process group, and SIGTERM when the test process dies (even kill -9)."""
    os.setpgrp()
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class AppServer:
    def __init__(self, env: dict[str, str] | None = None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1",
                    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                    "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.ready_seconds: float | None = None

    def start(self, log_path: Path, timeout: float = 60) -> "AppServer":
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(self.port)],
                                     cwd=REPO, env=self.env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited with {self.proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2) as r:
                    if r.status == 200:
                        self.ready_seconds = time.monotonic() - t0
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"app not ready in {timeout}s:\n{log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None


def launch_browser(playwright, fake_audio: Path | None = None):
    args = list(CHROMIUM_ARGS)
    if fake_audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={Path(fake_audio).resolve()}")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


# --- page helpers (Gradio 6 selectors: by elem_id, never by hashed classes) ---------------------------------
def open_tab(page, name):
    page.get_by_role("tab", name=name).click()


def pick(page, elem_id, typed, option):
    """Choose a dropdown option by typing to filter it, then clicking it."""
    page.locator(f"#{elem_id} input").click()
    page.locator(f"#{elem_id} input").fill(typed)
    page.get_by_role("option", name=option, exact=True).click()


def wait_for(predicate, timeout, interval=0.5, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def in_viewport(page, locator) -> dict:
    """The element's box and whether it lies wholly inside the viewport horizontally."""
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    return {"box": box, "inside": box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width}
