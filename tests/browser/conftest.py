"""Fixtures for the browser tests: one app server and one headless Chromium for the session.

The app runs in its own process group with a parent-death signal (tests/browser/helpers.py), against a fresh
runs folder; the cache (converted bundled models, demo corpora) is the shared test cache so it is built once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from studio_browser import ARTIFACTS, SPEECH_WAV, TABS, VIEWPORT, AppServer, launch_browser  # noqa: E402


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def browser_runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser-runs")


@pytest.fixture(scope="session")
def studio(tiny_model_dir, browser_runs):
    """The app, serving a fresh runs folder, with the tiny random model offered in the model dropdown."""
    server = AppServer(env={
        "WHISPER_STUDIO_RUNS": str(browser_runs),
        "WHISPER_STUDIO_CACHE": os.environ["WHISPER_STUDIO_CACHE"],
        "WHISPER_STUDIO_EXTRA_MODELS": str(tiny_model_dir),
    })
    ARTIFACTS.mkdir(exist_ok=True)
    server.start(ARTIFACTS / "app-server.log")
    print(f"\napp ready {server.ready_seconds:.2f} s after start")
    yield server
    server.stop()
    # Jobs outlive the app by design (own session); a test must not leave one behind.
    from whisper_studio.jobs import JobManager

    mgr = JobManager(browser_runs)
    for run in mgr.list_runs():
        if run.alive:
            mgr.stop(run.run_id, grace=5)


@pytest.fixture(scope="session")
def browser():
    pytest.importorskip("playwright")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_browser(p, fake_audio=SPEECH_WAV)
        yield b
        b.close()


@pytest.fixture()
def page(browser, studio, request):
    """A page on the app; page errors and console errors are collected in `page.errors`. On failure each tab
    is screenshotted to test-artifacts/."""
    context = browser.new_context(viewport=VIEWPORT, permissions=["microphone"], locale="en-US")
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(f"pageerror: {exc}"))
    pg.on("console", lambda msg: msg.type == "error" and pg.errors.append(f"console: {msg.text}"))
    pg.goto(studio.url)
    pg.wait_for_selector("#language")
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        stamp = time.strftime("%H%M%S")
        for tab in TABS:
            try:
                pg.get_by_role("tab", name=tab).click(timeout=3000)
                pg.wait_for_timeout(500)
                pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{tab.replace(' ', '_')}-{stamp}.png"),
                              full_page=True)
            except Exception as exc:  # noqa: BLE001 - best effort
                print(f"screenshot of {tab} failed: {exc}")
    context.close()


@pytest.fixture(scope="session")
def base_adapter_run(browser_runs):
    """A finished run on the bundled base with a freshly initialised (untrained) LoRA adapter, as train.py
    saves it: the adapter really loads and runs, and base and adapted text are both real transcripts."""
    from whisper_studio import runfolder
    from whisper_studio.config import LoraSpec, SourceConfig, TrainConfig
    from whisper_studio.models import attach_lora, load_model

    run_dir = browser_runs / "20260101-000000-base-lora"
    run_dir.mkdir()
    spec = LoraSpec(rank=4, alpha=8)
    cfg = TrainConfig(model="bundled/whisper-base", language="en", source=SourceConfig(kind="demo", language="en"),
                      lora=spec, output_dir=str(run_dir), run_name="base-lora")
    cfg.save(run_dir)
    attach_lora(load_model("bundled/whisper-base"), spec, prepare_kbit=False).save_pretrained(str(run_dir / "adapter"))
    now = time.time()
    runfolder.write_status(run_dir, runfolder.RunStatus(state="finished", step=1, total_steps=1, started=now - 5,
                                                        finished=now))
    return run_dir
