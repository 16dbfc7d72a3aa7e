"""Fast tests of the UI's event logic: handlers called directly against real run folders (no browser)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import gradio as gr
import pytest

from whisper_studio import runfolder
from whisper_studio.config import LoraSpec, SourceConfig, TrainConfig
from whisper_studio.errors import ConfigError, DataSourceError
from whisper_studio.runfolder import RunStatus

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _no_progress(*args, **kwargs):
    return None


def make_run(root, name, *, state="running", step=3, total=10, losses=(2.5, 2.1, 1.7), pid=None, adapter=False,
             model="bundled/whisper-base", evals=()):
    """A run folder as the training job writes it. `pid` of this test process makes a live-looking job."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    cfg = TrainConfig(model=model, language="en", source=SourceConfig(kind="demo", language="en"),
                      lora=LoraSpec(), epochs=2, batch_size=4, max_train_samples=40, output_dir=str(run_dir))
    cfg.save(run_dir / runfolder.CONFIG)
    # A live run must look started after this process was created (jobs.py treats older pids as reused).
    started = time.time() if pid else time.time() - 30
    runfolder.write_status(run_dir, RunStatus(state=state, pid=pid, step=step, total_steps=total, started=started,
                                              message="training" if state == "running" else None))
    for i, loss in enumerate(losses, 1):
        runfolder.append_metric(run_dir, {"type": "train", "step": i, "epoch": i / 5, "loss": loss,
                                          "learning_rate": 1e-3, "elapsed": 2.0 * i, "samples_per_second": 2.0})
    for step, eval_loss, wer in evals:
        runfolder.append_metric(run_dir, {"type": "eval", "step": step, "epoch": 1.0, "eval_loss": eval_loss,
                                          "wer": wer})
    (run_dir / runfolder.LOG).write_text("loading model\nstep 1\nstep 2\nstep 3 loss 1.7\n", encoding="utf-8")
    if adapter:
        (run_dir / "adapter").mkdir()
        (run_dir / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    return run_dir


# --- errors become page messages -------------------------------------------------------------------------------
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


# --- data tab ------------------------------------------------------------------------------------------------
def test_source_config_from_page_values():
    from whisper_studio.ui.data_tab import source_config

    src = source_config("Marathi · मराठी (mr)", "demo", "", "", "", "", "audio", "sentence")
    assert (src.kind, src.language) == ("demo", "mr")
    src = source_config("sv-SE", "cv-folder", "", " /data/cv/sv-SE ", "", "", "audio", "sentence")
    assert (src.kind, src.path, src.language) == ("cv-folder", "/data/cv/sv-SE", "sv-SE")
    src = source_config("en", "hub", "", "", "user/set", "", "clip", "text")
    assert (src.dataset_id, src.audio_column, src.text_column) == ("user/set", "clip", "text")
    with pytest.raises(ConfigError, match="path"):
        source_config("en", "cv-folder", "", "  ", "", "", "audio", "sentence")
    with pytest.raises(ConfigError, match="Data Collective"):
        source_config("en", "mdc", "", "", "", "", "audio", "sentence")


def test_missing_folder_is_a_clear_message(tmp_path):
    from whisper_studio.ui.data_tab import load_data

    with pytest.warns(UserWarning, match="nope"):  # gr.Warning: the toast (a Python warning outside a request)
        out = load_data("en", "cv-folder", "", "", str(tmp_path / "nope"), "", "", "audio", "sentence",
                        progress=_no_progress)
    status, table, players = out[0], out[1], out[2:6]
    assert status.startswith("❌") and str(tmp_path / "nope") in status
    assert table == [] and not any(p["visible"] for p in players)
    assert "Traceback" not in status and "Error:" not in status


# --- train tab -------------------------------------------------------------------------------------------------
def test_refresh_shows_the_live_run_with_progress_plot_and_log(runs_root):
    from whisper_studio.ui import train_tab

    make_run(runs_root, "20260101-000000-old", state="finished", step=10, total=10, adapter=True)
    make_run(runs_root, "20260101-000100-live", pid=os.getpid(), evals=[(3, 1.9, 0.42)])
    # Even a page that watched the old run is switched to the live one (someone else started it).
    out = train_tab.refresh("20260101-000000-old", None)
    watched, seen, status, loss, eloss, wer, log, command, stop, run_state = out
    assert watched == "20260101-000100-live"
    assert "step 3 of 10" in status and "ETA" in status and "samples/s" in status
    assert list(loss["loss"]) == [2.5, 2.1, 1.7]
    assert eloss["visible"] is True and list(eloss["value"]["eval loss"]) == [1.9]
    assert list(wer["value"]["WER %"]) == [42.0]  # engine fraction -> percent
    assert "step 3 loss 1.7" in log
    assert "whisper_studio train" in command and "--language en" in command
    assert stop["interactive"] is True and run_state == "20260101-000100-live:running"
    # Nothing new in metrics.jsonl: the plots are not re-sent (no flicker), the rest still is.
    again = train_tab.refresh(watched, seen)
    assert again[3] == gr.skip() and again[4] == gr.skip() and "step 3 of 10" in again[2]
    runfolder.append_metric(runs_root / watched, {"type": "train", "step": 4, "loss": 1.5, "elapsed": 8.0})
    third = train_tab.refresh(watched, seen)
    assert list(third[3]["loss"])[-1] == 1.5


def test_refresh_without_runs_and_after_the_run_ended(runs_root):
    from whisper_studio.ui import train_tab

    out = train_tab.refresh(None, None)
    assert out[0] is None and "No runs yet" in out[2] and out[8]["interactive"] is False
    make_run(runs_root, "20260101-000000-done", state="finished", step=10, total=10)
    out = train_tab.refresh(None, None)
    assert out[0] == "20260101-000000-done" and "finished" in out[2] and "ETA" not in out[2]
    assert out[8]["interactive"] is False


def test_second_start_while_a_job_runs_names_the_busy_run(runs_root):
    from whisper_studio.ui import train_tab

    make_run(runs_root, "20260101-000100-busy", pid=os.getpid())
    with pytest.raises(gr.Error) as info:
        train_tab.start_training("en", "demo", "", "", "", "", "audio", "sentence", "",
                                 "bundled/whisper-base", 8, 16, 0.05, ["q_proj", "v_proj"], 1, 1e-3, 2, 8, True,
                                 "auto", "")
    assert "already running" in info.value.message and "20260101-000100-busy" in info.value.message
    assert len(list(runs_root.iterdir())) == 2  # the busy run and the lock file: no new run folder


def test_start_validates_settings_before_launching(runs_root):
    from whisper_studio.ui import train_tab

    args = ["en", "demo", "", "", "", "", "audio", "sentence", "", "bundled/whisper-base", 8, 16, 0.05]
    with pytest.raises(gr.Error, match="target module"):
        train_tab.start_training(*args, [], 1, 1e-3, 2, 8, True, "auto", "")
    with pytest.raises(gr.Error, match="Batch size 16 is larger"):
        train_tab.start_training(*args, ["q_proj"], 1, 1e-3, 16, 8, True, "auto", "")
    with pytest.raises(gr.Error, match="LoRA rank must be a whole number"):
        train_tab.start_training("en", "demo", "", "", "", "", "audio", "sentence", "", "bundled/whisper-base",
                                 2.5, 16, 0.05, ["q_proj"], 1, 1e-3, 2, 8, True, "auto", "")
    assert not runs_root.exists() or not [p for p in runs_root.iterdir() if not p.name.startswith(".")]


def test_model_dropdown_lists_catalog_and_extra_folders(monkeypatch, tmp_path):
    from whisper_studio.ui.train_tab import model_choices

    monkeypatch.setenv("WHISPER_STUDIO_EXTRA_MODELS", str(tmp_path / "tiny"))
    values = [v for _, v in model_choices()]
    assert "bundled/whisper-base" in values and str(tmp_path / "tiny") == values[-1]


# --- evaluate tab -----------------------------------------------------------------------------------------------
def test_word_errors_marked_and_sorting(tmp_path):
    pytest.importorskip("whisper_studio.evaluation")
    from whisper_studio.ui.evaluate_tab import marked, render_table, table_rows

    html, errors = marked("the cat sat on the mat", "the bat on the mat today")
    assert errors == 3
    assert 'class="ws-sub" title="reference: cat">bat<' in html
    assert 'class="ws-del" title="missing">sat<' in html and 'class="ws-ins" title="inserted">today<' in html
    clip = tmp_path / "a.wav"
    clip.write_bytes(b"RIFF")
    rows = table_rows([
        {"reference": "one two three", "base": "one two three", "adapted": "one too tree", "audio_path": str(clip)},
        {"reference": "four five six", "base": "for fife sicks", "adapted": "four five six"},
    ])
    better = render_table(rows, "better")
    assert better.index(">fife<") < better.index(">too<")  # the improved row first
    worse = render_table(rows, "worse")
    assert worse.index(">too<") < worse.index(">fife<")
    assert 'src="gradio_api/file=' in better and better.count("<audio") == 1


def test_saved_evaluation_is_shown_from_disk(runs_root):
    pytest.importorskip("whisper_studio.evaluation")
    from whisper_studio.ui import evaluate_tab

    run_dir = make_run(runs_root, "20260101-000000-done", state="finished", adapter=True)
    from whisper_studio.evaluation import EvalResult, UtteranceRow

    rows = [UtteranceRow(id="1", audio=None, reference="a b", base="a c", adapted="a b", base_wer=0.5,
                         adapted_wer=0.0, delta=-0.5),
            UtteranceRow(id="2", audio=None, reference="c d", base="x y", adapted="c y", base_wer=1.0,
                         adapted_wer=0.5, delta=-0.5)]
    result = EvalResult(base_wer=0.5, adapted_wer=0.25, base_wer_normalized=0.4, adapted_wer_normalized=0.2, n=2,
                        rows=rows)
    (run_dir / "eval.json").write_text(json.dumps(result.to_dict()), encoding="utf-8")
    update = evaluate_tab.refresh_runs(None)
    assert update["value"] == "20260101-000000-done"
    frame, summary, rows, html = evaluate_tab.show_saved("20260101-000000-done", "order")
    assert list(frame["WER %"]) == [50.0, 25.0, 40.0, 20.0] and list(frame["WER of"]) == ["base", "adapted", "base (norm.)", "adapted (norm.)"]
    assert "50.0% → adapted 25.0%" in summary and len(rows) == 2 and "<table>" in html


def test_evaluate_refuses_a_running_run(runs_root):
    from whisper_studio.ui import evaluate_tab

    make_run(runs_root, "20260101-000100-live", pid=os.getpid(), adapter=True)
    with pytest.raises(gr.Error, match="still training"):
        evaluate_tab.evaluate("20260101-000100-live", 5, "order", progress=_no_progress)
    with pytest.raises(gr.Error, match="Choose a run"):
        evaluate_tab.evaluate(None, 5, "order", progress=_no_progress)


# --- try it tab ------------------------------------------------------------------------------------------------
def test_adapter_choice_pins_its_base_model(runs_root):
    from whisper_studio.ui import try_tab

    make_run(runs_root, "20260101-000000-tiny", state="finished", adapter=True, model="/models/tiny")
    make_run(runs_root, "20260101-000100-noadapter", state="failed")
    choices = try_tab.adapter_choices()
    assert [v for _, v in choices] == ["", "20260101-000000-tiny"]
    assert try_tab.adapter_changed("20260101-000000-tiny", "bundled/whisper-base") == gr.update(
        value="/models/tiny", interactive=False)
    with pytest.raises(gr.Error, match="Record something"):
        try_tab.transcribe(None, "", "bundled/whisper-base", "auto", progress=_no_progress)


def test_examples_come_from_assets():
    from whisper_studio.ui.try_tab import EXAMPLES_DIR, examples

    listed = json.loads((EXAMPLES_DIR / "examples.json").read_text(encoding="utf-8"))
    ex = examples()
    assert len(ex) == len(listed) and all(os.path.isfile(p) for p, _ in ex)
    assert ex[0][1] == listed[0]["language"]


# --- the app ---------------------------------------------------------------------------------------------------
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


def test_local_common_voice_folder_loads_with_playable_samples(tmp_path, monkeypatch):
    """A Common Voice release folder outside the cache: counts per split, and sample clips copied to where the
    server may serve them (Gradio refuses to send files from arbitrary folders)."""
    import shutil

    from whisper_studio.ui.data_tab import load_data
    from whisper_studio.ui.try_tab import EXAMPLES_DIR

    cache = tmp_path / "cache"
    monkeypatch.setenv("WHISPER_STUDIO_CACHE", str(cache))
    locale_dir = tmp_path / "cv-corpus-1.0" / "en"
    (locale_dir / "clips").mkdir(parents=True)
    items = [i for i in json.loads((EXAMPLES_DIR / "examples.json").read_text()) if i["language"] == "en"]
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\tsegment\n"
    rows = {"train": items[:-1], "test": items[-1:]}
    for split, chosen in rows.items():
        lines = [header]
        for item in chosen:
            shutil.copy(EXAMPLES_DIR / item["file"], locale_dir / "clips" / item["file"])
            lines.append(f"c1\t{item['file']}\t{item['text']}\t2\t0\t\t\t\ten\t\n")
        (locale_dir / f"{split}.tsv").write_text("".join(lines), encoding="utf-8")
    out = load_data("en", "cv-folder", "", "", str(locale_dir.parent), "", "", "audio", "sentence",
                    progress=_no_progress)
    status, table, players = out[0], out[1], out[2:6]
    assert {r[0]: r[1] for r in table} == {"train": len(rows["train"]), "test": 1}, (status, table)
    shown = [p["value"] for p in players if p["visible"]]
    assert len(shown) == len(rows["train"])
    for path in shown:
        assert path.startswith(str(cache)) and os.path.getsize(path) > 1000


def test_timer_refresh_never_raises_on_a_broken_run_folder(runs_root, monkeypatch):
    from whisper_studio.ui import train_tab

    make_run(runs_root, "20260101-000000-done", state="finished")

    def broken(*args, **kwargs):
        raise OSError("disk went away")

    monkeypatch.setattr("whisper_studio.jobs.read_metrics", broken)
    out = train_tab.safe_refresh(None, None)
    assert len(out) == train_tab.N_OUTPUTS == 10 and all(o == gr.skip() for o in out)


def test_public_space_locks_training_but_a_password_unlocks_it(runs_root, monkeypatch):
    from whisper_studio import hosting
    from whisper_studio.ui import train_tab

    args = ["en", "demo", "", "", "", "", "audio", "sentence", "", "bundled/whisper-base", 8, 16, 0.05,
            ["q_proj", "v_proj"], 1, 1e-3, 2, 8, True, "auto", ""]
    monkeypatch.setenv("SPACE_ID", "alice/whisper-studio")
    monkeypatch.delenv(hosting.ADMIN_PASSWORD_ENV, raising=False)
    with pytest.raises(gr.Error, match="duplicate=true"):
        train_tab.start_training(*args, "")
    with pytest.raises(gr.Error, match="locked"):
        train_tab.stop_training(None, "")
    # The page says so before anyone presses a button, and Start is disabled.
    with gr.Blocks() as page:
        from whisper_studio.ui import data_tab

        train_tab.build(data_tab.build())
    config = page.get_config_file()
    by_id = {c["props"].get("elem_id"): c["props"] for c in config["components"] if c["props"].get("elem_id")}
    assert by_id["start-btn"]["interactive"] is False
    assert "locked" in by_id["train-policy"]["value"]

    monkeypatch.setenv(hosting.ADMIN_PASSWORD_ENV, "s3cret")
    with pytest.raises(gr.Error, match="Wrong or missing admin password"):
        train_tab.start_training(*args, "guess")
    # The right password gets past the lock: what stops it now is the (invalid) setting, checked next.
    bad = list(args)
    bad[13] = []
    with pytest.raises(gr.Error, match="target module"):
        train_tab.start_training(*bad, "s3cret")
    assert not [p for p in runs_root.glob("*") if not p.name.startswith(".")]


def test_several_gpus_offer_processes_and_launch_through_torchrun(runs_root, monkeypatch):
    from whisper_studio import hosting, jobs
    from whisper_studio.ui import data_tab, train_tab

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    hosting.visible_gpus.cache_clear()
    try:
        with gr.Blocks() as page:
            train_tab.build(data_tab.build())
        props = {c["props"].get("elem_id"): c["props"] for c in page.get_config_file()["components"]}
        assert props["num-processes"]["visible"] is True and props["num-processes"]["maximum"] == 4
    finally:
        hosting.visible_gpus.cache_clear()
    cfg = TrainConfig(language="mr", num_processes=4)
    assert jobs.command_line(cfg).startswith("torchrun --standalone --nproc_per_node=4 -m whisper_studio train ")
    argv = jobs.JobManager(runs_root)._job_command(cfg)
    assert argv[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "-m"]
    assert jobs.JobManager(runs_root)._job_command(TrainConfig())[1:] == ["-m", "whisper_studio", "train"]


def test_one_gpu_or_none_hides_the_processes_choice(monkeypatch):
    from whisper_studio import hosting
    from whisper_studio.ui import data_tab, train_tab

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    hosting.visible_gpus.cache_clear()
    try:
        with gr.Blocks() as page:
            train_tab.build(data_tab.build())
        props = {c["props"].get("elem_id"): c["props"] for c in page.get_config_file()["components"]}
        assert props["num-processes"]["visible"] is False
    finally:
        hosting.visible_gpus.cache_clear()


def test_push_from_the_evaluate_tab_gives_clear_messages_and_never_echoes_the_token(runs_root, monkeypatch):
    from whisper_studio.ui import evaluate_tab

    make_run(runs_root, "20260101-000300-shared", state="finished", adapter=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(gr.Error, match="Choose a run"):
        evaluate_tab.push("", "me/x", "hf_tok", False, False)
    with pytest.raises(gr.Error, match="OWNER/NAME"):
        evaluate_tab.push("20260101-000300-shared", "no slash", "hf_tok", False, False)
    with pytest.raises(gr.Error, match="needs the network") as err:
        evaluate_tab.push("20260101-000300-shared", "me/whisper-mr", "hf_secret_tok", False, False)
    assert "hf_secret_tok" not in err.value.message
    with gr.Blocks() as page:
        evaluate_tab.build()
    props = {c["props"].get("elem_id"): c["props"] for c in page.get_config_file()["components"]}
    assert props["push-token"]["type"] == "password"
