"""Fast tests of the Train tab: handlers called directly against real run folders (no browser)."""

from __future__ import annotations

import json
import os

import gradio as gr
import pytest

from whisper_studio import runfolder
from whisper_studio.config import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


from helpers import make_run


def settings(**changes):
    """The Train tab's form values (Data tab source fields first), as Start receives them."""
    values = {"language": "en", "kind": "demo", "mdc_key": "", "model": "bundled/whisper-base", "rank": 8,
              "alpha": 16, "dropout": 0.05, "targets": ["q_proj", "v_proj"], "epochs": 1, "learning_rate": 1e-3,
              "batch_size": 2, "max_train": 8, "in8bit": True, "precision": "auto", "run_name": ""}
    return {**values, **changes}


def test_refresh_shows_the_live_run_with_progress_plot_and_log(runs_root):
    from whisper_studio.ui import train_tab

    make_run(runs_root, "20260101-000000-old", state="finished", step=10, total=10, adapter=True)
    make_run(runs_root, "20260101-000100-live", pid=os.getpid(), evals=[(3, 1.9, 0.42)])
    # Even a page that watched the old run is switched to the live one (someone else started it).
    out = train_tab.refresh("20260101-000000-old", None)
    watched, seen, status, loss, eloss, wer, log, command, stop, run_state, kill, resume, to_eval = out
    assert watched == "20260101-000100-live"
    assert "step 3 of 10" in status and "ETA" in status and "samples/s" in status
    assert list(loss["value"]["loss"]) == [2.5, 2.1, 1.7]
    assert loss["x_lim"] == [0, 10]  # whole-step axis from 0 to the run's total, even with few points
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
    assert list(third[3]["value"]["loss"])[-1] == 1.5


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
        train_tab.start_training(settings())
    assert "already running" in info.value.message and "20260101-000100-busy" in info.value.message
    assert len(list(runs_root.iterdir())) == 2  # the busy run and the lock file: no new run folder


def test_start_validates_settings_before_launching(runs_root):
    from whisper_studio.ui import train_tab

    with pytest.raises(gr.Error, match="target module"):
        train_tab.start_training(settings(targets=[]))
    with pytest.raises(gr.Error, match="Batch size 16 is larger"):
        train_tab.start_training(settings(targets=["q_proj"], batch_size=16))
    with pytest.raises(gr.Error, match="LoRA rank must be a whole number"):
        train_tab.start_training(settings(rank=2.5, targets=["q_proj"]))
    assert not runs_root.exists() or not [p for p in runs_root.iterdir() if not p.name.startswith(".")]


def test_model_dropdown_lists_catalog_and_extra_folders(monkeypatch, tmp_path):
    from whisper_studio.ui.train_tab import model_choices

    monkeypatch.setenv("WHISPER_STUDIO_EXTRA_MODELS", str(tmp_path / "tiny"))
    values = [v for _, v in model_choices()]
    assert "bundled/whisper-base" in values and str(tmp_path / "tiny") == values[-1]


def test_timer_refresh_never_raises_on_a_broken_run_folder(runs_root, monkeypatch):
    from whisper_studio.ui import train_tab

    make_run(runs_root, "20260101-000000-done", state="finished")

    def broken(*args, **kwargs):
        raise OSError("disk went away")

    monkeypatch.setattr("whisper_studio.jobs.read_metrics", broken)
    out = train_tab.safe_refresh(None, None)
    assert len(out) == train_tab.N_OUTPUTS == 13 and all(o == gr.skip() for o in out)


def test_public_space_locks_training_but_a_password_unlocks_it(runs_root, monkeypatch):
    from whisper_studio import hosting
    from whisper_studio.ui import train_tab

    monkeypatch.setenv("SPACE_ID", "alice/whisper-studio")
    monkeypatch.delenv(hosting.ADMIN_PASSWORD_ENV, raising=False)
    with pytest.raises(gr.Error, match="duplicate=true"):
        train_tab.start_training(settings(admin_password=""))
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
        train_tab.start_training(settings(admin_password="guess"))
    # The right password gets past the lock: what stops it now is the (invalid) setting, checked next.
    with pytest.raises(gr.Error, match="target module"):
        train_tab.start_training(settings(targets=[], admin_password="s3cret"))
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


def test_typed_numbers_that_are_not_numbers_get_a_clear_message(runs_root):
    from whisper_studio.ui import train_tab

    with pytest.raises(gr.Error, match=r"Learning rate must be a number \(got 'abc'\)"):
        train_tab.start_training(settings(learning_rate="abc"))
    with pytest.raises(gr.Error, match="Epochs must be a number"):
        train_tab.start_training(settings(epochs=float("nan")))
    with pytest.raises(gr.Error, match="Warm-up steps must be a whole number"):
        train_tab.start_training(settings(warmup_steps="x"))
    assert not [p for p in runs_root.glob("*") if not p.name.startswith(".")]


def test_start_passes_the_mdc_key_as_a_secret_not_the_environment(runs_root, monkeypatch):
    from whisper_studio import jobs
    from whisper_studio.ui import common, train_tab

    calls = []

    class Recorder(jobs.JobManager):
        def start(self, cfg, *, secrets=None, resume=False):
            calls.append((cfg, secrets, dict(os.environ)))
            run_dir = make_run(runs_root, "20260101-000500-mdc", state="queued")
            return self.get(run_dir.name)

    monkeypatch.setattr(common, "job_manager", lambda: Recorder(runs_root))
    train_tab.start_training(settings(kind="mdc", mdc_id="cv-corpus-x", mdc_key="sk-SECRET-123",
                                      final_eval_clips=0, in8bit="auto"))
    cfg, secrets, env = calls[0]
    assert secrets == {"mdc_api_key": "sk-SECRET-123"}
    assert "sk-SECRET-123" not in " ".join(env.values()) and "sk-SECRET-123" not in json.dumps(cfg.to_dict())
    assert cfg.final_eval_clips == 0 and cfg.load_in_8bit == "auto"


def test_stopping_shows_kill_now_and_a_stopped_run_offers_resume_or_says_nothing_saved(runs_root):
    from whisper_studio.ui import train_tab

    make_run(runs_root, "20260101-000000-stopped", state="stopped", step=4, total=10)
    out = dict(zip(train_view_names(), train_tab.refresh(None, None)))
    assert "Nothing saved yet" in out["status"] and out["resume"]["visible"] is False
    (runs_root / "20260101-000000-stopped" / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (runs_root / "20260101-000000-stopped" / "checkpoints" / "checkpoint-4" / "trainer_state.json").write_text("{}")
    out = dict(zip(train_view_names(), train_tab.refresh(None, None)))
    assert out["resume"]["visible"] is True and "Resume" in out["status"]

    make_run(runs_root, "20260101-000100-stopping", state="stopping", pid=os.getpid())
    out = dict(zip(train_view_names(), train_tab.refresh(None, None)))
    assert "stopping…" in out["status"] and "Kill now" in out["status"]
    assert out["kill"]["visible"] is True and out["stop"]["interactive"] is False


def train_view_names():
    from whisper_studio.ui.train_view import OUTPUT_NAMES

    return OUTPUT_NAMES


def test_finished_status_carries_the_result(runs_root):
    from whisper_studio.ui import train_tab

    run_dir = make_run(runs_root, "20260101-000000-done", state="finished", step=10, total=10, adapter=True)
    (run_dir / "eval.json").write_text(json.dumps({"base_wer": 2.12, "adapted_wer": 0.63, "n": 40}), encoding="utf-8")
    status = train_tab.refresh(None, None)[2]
    assert "WER 212.0% → 63.0% on 40 clips" in status and "Evaluate" in status


def test_cost_before_start_from_the_measured_speed_and_the_warmup_warning(runs_root):
    from whisper_studio.ui import train_tab

    text = train_tab.cost(settings(max_train=160, batch_size=8, epochs=2, warmup_steps=10, final_eval_clips=40))
    assert "**40 steps**" in text and "default" not in text and "guess" in text  # no run measured yet
    assert "Warm-up" not in text
    make_run(runs_root, "20260101-000000-measured", state="finished")  # 2.0 samples/s in its metrics
    text = train_tab.cost(settings(max_train=16, batch_size=4, epochs=1.5, warmup_steps=10, final_eval_clips=0))
    assert "**6 steps**" in text and "2.00 samples/s measured in run 20260101-000000-measured" in text
    assert "0:12" in text  # 6 steps x 4 clips / 2.0 samples/s
    assert "Warm-up is 10 steps but the run has only 6" in text
    assert "must be a number" in train_tab.cost(settings(learning_rate="abc"))


def test_reload_restores_the_live_runs_settings(runs_root):
    from whisper_studio.ui import train_tab

    make_run(runs_root, "20260101-000100-live", pid=os.getpid())
    names = ("model", "epochs", "batch_size", "max_train", "language", "kind", "in8bit", "mdc_key")
    out = dict(zip(names, train_tab.restore_form("20260101-000100-live", names)))
    assert out["model"] == "bundled/whisper-base" and out["epochs"] == 2 and out["batch_size"] == 4
    assert out["max_train"] == 40 and out["language"] == "en" and out["kind"] == "demo"
    assert out["mdc_key"] == gr.skip()  # never filled in
    make_run(runs_root, "20260101-000000-old", state="finished")
    assert all(v == gr.skip() for v in train_tab.restore_form("20260101-000000-old", names))


def test_starting_a_job_frees_the_ui_model(runs_root, monkeypatch):
    import sys

    from whisper_studio import jobs
    from whisper_studio.ui import common, train_tab

    released = []
    fake = type(sys)("whisper_studio.transcribe")
    fake.release_transcriber = lambda: released.append(True)
    monkeypatch.setitem(sys.modules, "whisper_studio.transcribe", fake)
    monkeypatch.setattr("whisper_studio.transcribe", fake, raising=False)

    class Recorder(jobs.JobManager):
        def start(self, cfg, *, secrets=None, resume=False):
            return self.get(make_run(runs_root, "20260101-000600-x", state="queued").name)

    monkeypatch.setattr(common, "job_manager", lambda: Recorder(runs_root))
    train_tab.start_training(settings())
    assert released == [True]


def test_a_visitor_typed_model_folder_is_refused_on_a_space(monkeypatch, tmp_path):
    from whisper_studio.errors import AccessError
    from whisper_studio.ui.train_tab import check_model

    folder = tmp_path / "some-model"
    folder.mkdir()
    # On one's own machine any folder or hub id is a model choice.
    assert check_model(f" {folder} ") == str(folder)
    assert check_model("openai/whisper-small") == "openai/whisper-small"
    monkeypatch.setenv("SPACE_ID", "alice/whisper-studio")
    assert check_model("bundled/whisper-base") == "bundled/whisper-base"  # listed models stay open
    assert check_model("openai/whisper-small") == "openai/whisper-small"  # a hub id reads no server file
    for typed in (str(folder), "/etc", "../runs", "~/models/x"):
        with pytest.raises(AccessError, match="does not read a model folder"):
            check_model(typed)
