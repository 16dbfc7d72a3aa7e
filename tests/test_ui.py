"""Fast tests of the app as a whole and the shared handler helpers: handlers called directly against real run folders (no browser)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import gradio as gr
import pytest

from whisper_studio.errors import DataSourceError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))




def test_studio_error_shows_its_message_and_bugs_a_short_line(caplog):
    from whisper_studio.ui.common import handler

    @handler("Doing X")
    def user_mistake():
        raise DataSourceError("No Common Voice folder at /nope.")

    @handler("Doing Y")
    def bug():
        raise KeyError("secret internals")

    with pytest.raises(gr.Error) as info:
        user_mistake()
    assert info.value.message == "No Common Voice folder at /nope."
    with caplog.at_level(logging.ERROR, logger="whisper_studio.ui"), pytest.raises(gr.Error) as info:
        bug()
    assert info.value.message.startswith("KeyError:") and "app log" in info.value.message
    assert "Traceback" not in info.value.message
    assert any("unexpected error in Doing Y" in r.message for r in caplog.records)  # the traceback is logged


def test_handler_keeps_the_progress_parameter_visible_to_gradio():
    import inspect

    from whisper_studio.ui.evaluate_tab import evaluate

    assert isinstance(inspect.signature(evaluate).parameters["progress"].default, gr.Progress)


def test_progress_adapter_accepts_the_engine_styles():
    from whisper_studio.ui.common import progress_callback

    seen = []
    cb = progress_callback(lambda fraction, desc=None: seen.append((fraction, desc)), "Working")
    cb(0.5, "Reading train.tsv")
    cb(3, 12)
    cb(done=6, total=12)
    cb(2.0)
    assert seen[0] == (0.5, "Reading train.tsv")
    assert seen[1] == (0.25, "Working (3/12)")
    assert seen[2][0] == 0.5
    assert seen[3][0] == 1.0  # clamped


def test_app_builds_without_torch_and_has_the_test_contract_ids():
    code = (
        "import sys, app\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'peft', 'bitsandbytes') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "cfg = app.demo.get_config_file()\n"
        "ids = {c['props'].get('elem_id') for c in cfg['components']}\n"
        "labels = {c['props'].get('label') for c in cfg['components'] if c['type'] == 'tabitem'}\n"
        "print(sorted(i for i in ids if i)); print(sorted(l for l in labels if l))\n"
    )
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    ids = set(eval(out.stdout.splitlines()[0]))
    labels = set(eval(out.stdout.splitlines()[1]))
    assert {"Data", "Train", "Evaluate", "Try it"} <= labels
    assert {"language", "source", "model", "lora-rank", "lora-alpha", "epochs", "start-btn", "stop-btn",
            "train-status", "loss-plot", "run-select", "eval-btn", "wer-plot", "eval-table", "mic-audio",
            "adapter-select", "transcribe-btn", "base-text", "adapted-text"} <= ids


def test_key_field_is_a_password_and_never_an_output():
    import app

    cfg = app.demo.get_config_file()
    key = next(c for c in cfg["components"] if c["props"].get("elem_id") == "mdc-key")
    assert key["props"]["type"] == "password"
    for dep in cfg["dependencies"]:
        assert key["id"] not in dep["outputs"]
