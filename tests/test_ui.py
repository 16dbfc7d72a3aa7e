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
    # The same for every secret field (admin passwords, the hub token): typed in, never sent back.
    secrets = [c for c in cfg["components"] if c["type"] == "textbox" and c["props"].get("type") == "password"]
    assert {"mdc-key", "admin-password", "data-admin-password", "push-token"} <= {c["props"].get("elem_id")
                                                                                  for c in secrets}
    for dep in cfg["dependencies"]:
        assert not {c["id"] for c in secrets} & set(dep["outputs"]), dep.get("api_name")


# --- What the page may play (10.5, 13.1) ---------------------------------------------------------------------
EXAMPLE_WAV = os.path.join(REPO, "assets", "examples", "en_1.wav")


def test_servable_copies_only_audio_into_the_one_served_folder(tmp_path, monkeypatch):
    from whisper_studio.errors import AudioError
    from whisper_studio.ui import common, launch_kwargs

    monkeypatch.setenv("WHISPER_STUDIO_CACHE", str(tmp_path / "cache"))
    served = common.served_dir()
    assert served == (tmp_path / "cache" / "served").resolve()
    assert launch_kwargs()["allowed_paths"] == [str(served)]  # never the cache or the runs folder whole
    copy = common.servable(EXAMPLE_WAV)
    assert os.path.dirname(copy) == str(served) and open(copy, "rb").read() == open(EXAMPLE_WAV, "rb").read()
    assert common.servable(EXAMPLE_WAV) == copy  # stored once, named by content
    fake = tmp_path / "secret.wav"
    fake.write_text("HF_TOKEN=hf_secret\n")
    link = tmp_path / "link.wav"
    link.symlink_to("/etc/passwd")
    for path in ("/etc/passwd", "/proc/self/environ", fake, link, tmp_path, tmp_path / "missing.wav"):
        with pytest.raises(AudioError):
            common.servable(path)
    assert sorted(os.listdir(served)) == [os.path.basename(copy)]  # nothing else was copied


# --- The app starts with malformed run folders present (13.2) -------------------------------------------------
def test_app_starts_and_lists_runs_with_malformed_run_folders(tmp_path, monkeypatch):
    from helpers import make_run

    from whisper_studio.ui import build_app, common

    runs = tmp_path / "runs"
    monkeypatch.setenv("WHISPER_STUDIO_RUNS", str(runs))
    make_run(runs, "good", state="finished", adapter=True)
    bad_status = {"bad-utf8": b'{"state": "finished", "note": "\xff\xfe\xfa"}', "bad-list": b"[1, 2, 3]",
                  "bad-started": b'{"state": "finished", "started": "yesterday", "step": 3}'}
    for name, content in bad_status.items():
        (make_run(runs, name, state="finished", adapter=True) / "status.json").write_bytes(content)
    (make_run(runs, "bad-eval", state="finished", adapter=True) / "eval.json").write_text("[1, 2]")
    (make_run(runs, "bad-eval-bytes", state="finished", adapter=True) / "eval.json").write_bytes(b"\xff\xfe{")

    demo = build_app()  # raised on each of these folders before 13.2
    listed = {info.name: info for info in common.list_runs()}
    assert set(listed) == {"good", "bad-eval", "bad-eval-bytes", *bad_status}
    assert listed["good"].state == "finished"
    for name in bad_status:
        assert listed[name].state == "unreadable" and "unreadable" in (listed[name].error or ""), listed[name]
    # What a browser runs on opening the page (the run view, the run and adapter dropdowns) answers.
    loads = [fn for fn in demo.fns.values() if any(event == "load" for _, event in fn.targets)]
    assert len(loads) >= 3
    for fn in loads:
        fn.fn(*[block.value for block in fn.inputs])
    # A run whose eval.json is malformed is shown with a message, not a traceback.
    from whisper_studio.ui import evaluate_tab

    for name in ("bad-eval", "bad-eval-bytes"):
        try:
            out = evaluate_tab.show_saved(listed[name].run_id, "order")
        except gr.Error as exc:
            assert "Traceback" not in exc.message and not exc.message.startswith(("KeyError", "TypeError",
                                                                                 "AttributeError")), exc.message
        else:
            assert out is not None
