"""Fault injection on the training job (issues 10 and 13): full and read-only disks, SIGKILL then resume, a
stop file, missing splits, skipped clips, secrets on stdin, bounds on the job's own flags, the probe WER.

Everything runs the real job on the random tiny Whisper (`tiny_model_dir`) and a few clips of the demo corpus
(copied into a Common Voice folder so a test can break it). Disk-full tests use a real 3 MB tmpfs (root only;
skipped with the reason otherwise).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from whisper_studio import runfolder
from whisper_studio.config import LoraSpec, SourceConfig, TrainConfig
from whisper_studio.errors import ConfigError, JobError

REPO = Path(__file__).resolve().parent.parent
CV_HEADER = "client_id\tpath\tsentence\tup_votes\tdown_votes\tlocale"


@pytest.fixture(scope="module")
def demo_en() -> Path:
    from whisper_studio import demo, synth

    if not synth.available():
        pytest.skip("eSpeak NG (espeakng-loader) is not available")
    return demo.build_corpus("en")


def _cv_copy(demo_en: Path, root: Path, *, n_train: int = 4, n_test: int = 2, with_test: bool = True,
             bad_rows: bool = False) -> Path:
    """A small Common Voice folder from the demo corpus: `n_train`/`n_test` rows; with `bad_rows`, a row whose
    clip is missing and a row whose clip is garbage."""
    loc = root / "en"
    (loc / "clips").mkdir(parents=True)

    def rows(split: str, n: int) -> list[str]:
        lines = (demo_en / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        head = lines[0].split("\t")
        out = []
        for line in lines[1:n + 1]:
            cells = dict(zip(head, line.split("\t")))
            shutil.copy(demo_en / "clips" / cells["path"], loc / "clips" / cells["path"])
            out.append("\t".join([cells["client_id"], cells["path"], cells["sentence"], "2", "0", "en"]))
        return out

    train = rows("train", n_train)
    if bad_rows:
        train.append("espeak-en\tnot_there.mp3\ta clip that is missing\t2\t0\ten")
        (loc / "clips" / "garbage.mp3").write_bytes(b"this is not audio at all" * 40)
        train.append("espeak-en\tgarbage.mp3\ta clip that is corrupt\t2\t0\ten")
    (loc / "train.tsv").write_text("\n".join([CV_HEADER, *train]) + "\n", encoding="utf-8")
    if with_test:
        (loc / "test.tsv").write_text("\n".join([CV_HEADER, *rows("test", n_test)]) + "\n", encoding="utf-8")
    return root


def _cfg(model: Path, data: Path, **overrides) -> TrainConfig:
    fields = dict(model=str(model), language="en", source=SourceConfig(kind="cv-folder", language="en", path=str(data)),
                  epochs=1.0, batch_size=2, learning_rate=1e-3, warmup_steps=0, load_in_8bit=False, precision="fp32",
                  logging_steps=1, seed=0, probe_clips=0)
    fields.update(overrides)
    return TrainConfig(**fields)


def _train_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in runfolder.read_metrics(run_dir) if r.get("type") == "train"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture()
def mount_tmpfs(tmp_path):
    """mount(size, *opts) -> a fresh tmpfs folder; unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: str = "3m", *opts: str) -> Path:
        target = tmp_path / f"tmpfs{len(mounted)}"
        target.mkdir()
        options = ",".join([f"size={size}", *opts])
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({(proc.stderr or proc.stdout).strip() or 'not permitted'})")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


# --- 13.3 disk full ---------------------------------------------------------------------------------------------
def test_full_disk_is_refused_before_step_1(tiny_model_dir, demo_en, tmp_path, mount_tmpfs):
    from whisper_studio.train import run_training

    runs = mount_tmpfs("3m")
    data = _cv_copy(demo_en, tmp_path / "cv")
    # rank 64 on every target: a checkpoint of ~4.6 MB cannot fit on 3 MB
    cfg = _cfg(tiny_model_dir, data, lora=LoraSpec(rank=64, alpha=128, target_modules=(
        "q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")))
    with pytest.raises(JobError, match=r"No space left on .* \(\d+\.\d MB free, checkpoint needs ~4\.\d MB\)"):
        run_training(cfg, runs / "run", evaluate=False, max_steps=2)
    status = runfolder.read_status(runs / "run")
    assert status.state == "failed" and "No space left on" in status.error and "checkpoint needs" in status.error
    assert _train_steps(runs / "run") == []  # refused before step 1


# rank 48 on the attention projections: ~2 MB a checkpoint; the first fits on 3 MB, the second does not.
MID_RUN_LORA = LoraSpec(rank=48, alpha=96, target_modules=("q_proj", "k_proj", "v_proj", "out_proj"))


def test_disk_fills_at_a_checkpoint_mid_run(tiny_model_dir, demo_en, tmp_path, mount_tmpfs):
    from whisper_studio.train import run_training

    runs = mount_tmpfs("3m")
    data = _cv_copy(demo_en, tmp_path / "cv")
    with pytest.raises(JobError, match=r"No space left on .* MB free, checkpoint needs ~2\.\d MB"):
        run_training(_cfg(tiny_model_dir, data, lora=MID_RUN_LORA), runs / "run", evaluate=False, max_steps=4,
                     save_steps=1)
    status = runfolder.read_status(runs / "run")
    assert status.state == "failed" and "No space left on" in status.error
    assert _train_steps(runs / "run") == [1]  # step 1 checkpointed; step 2's checkpoint refused
    assert not (runs / "run" / runfolder.ADAPTER).exists()


def test_enospc_during_a_checkpoint_write_ends_failed(tiny_model_dir, demo_en, tmp_path, mount_tmpfs, monkeypatch):
    """The estimate disabled: the write itself runs out of space, and the job still records `failed`."""
    from whisper_studio import train, trainer

    monkeypatch.setattr(trainer, "check_space", lambda folder, need: None)
    monkeypatch.setattr(train, "check_space", lambda folder, need: None)
    runs = mount_tmpfs("3m")
    data = _cv_copy(demo_en, tmp_path / "cv")
    with pytest.raises(JobError, match=r"No space left on .* MB free, checkpoint needs ~2\.\d MB"):
        train.run_training(_cfg(tiny_model_dir, data, lora=MID_RUN_LORA), runs / "run", evaluate=False,
                           max_steps=4, save_steps=1)
    status = runfolder.read_status(runs / "run")
    assert status.state == "failed" and "No space left on" in status.error
    assert runfolder.last_checkpoint(runs / "run").name == "checkpoint-1"  # the partial one was removed


def test_cli_on_a_full_or_read_only_runs_dir_says_so(tiny_model_dir, demo_en, tmp_path, mount_tmpfs, capsys):
    from whisper_studio.cli import main

    data = _cv_copy(demo_en, tmp_path / "cv")
    argv = ["train", "--model", str(tiny_model_dir), "--language", "en", "--source", "cv-folder", "--path",
            str(data), "--batch-size", "2", "--no-eval", "--max-steps", "1"]
    full = mount_tmpfs("1m")
    with open(full / "filler", "wb") as f:  # fill it to the last byte
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    assert main([*argv, "--out", str(full / "run")]) == 2
    err = capsys.readouterr().err
    assert "No space left on" in err and "Traceback" not in err
    assert not [p.name for p in (full / "run").glob("*.tmp")] and not (full / "run" / "config.json").exists()

    read_only = mount_tmpfs("1m", "ro")
    assert main([*argv, "--out", str(read_only / "run")]) == 2
    err = capsys.readouterr().err
    assert "Cannot write the run folder" in err and "read-only" in err.lower() and "Traceback" not in err


# --- 13.4 bounds ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, message", [
    (["--max-steps", "-5"], "Max steps must be a whole number of at least 1"),
    (["--save-steps", "0"], "Save steps must be a whole number of at least 1"),
    (["--time-limit", "-1"], "time limit must be a number of seconds of at least 0"),
    (["--epochs", "nan"], "Epochs must be a positive, finite number"),
    (["--epochs", "inf"], "Epochs must be a positive, finite number"),
])
def test_cli_bounds_are_messages_not_tracebacks(flags, message, tmp_path, capsys):
    from whisper_studio.cli import main

    assert main(["train", "--language", "en", "--out", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_lora_rank_beyond_the_model_width_fails_before_allocating(tiny_model_dir, demo_en, tmp_path, monkeypatch):
    from whisper_studio import models
    from whisper_studio.train import run_training

    def no_load(*args, **kwargs):
        raise AssertionError("the model must not be loaded for an impossible rank")

    monkeypatch.setattr(models, "load_model", no_load)
    cfg = _cfg(tiny_model_dir, _cv_copy(demo_en, tmp_path / "cv"), lora=LoraSpec(rank=1_000_000_000))
    with pytest.raises(ConfigError, match=r"LoRA rank 1000000000 is larger than .*width \(64\)"):
        run_training(cfg, tmp_path / "run", evaluate=False)
    assert "width (64)" in runfolder.read_status(tmp_path / "run").error


# --- 13.5 splits checked first, skipped clips counted, no duplicate steps after a kill -----------------------
def test_missing_test_split_fails_before_training(tiny_model_dir, demo_en, tmp_path):
    from whisper_studio.errors import StudioError
    from whisper_studio.train import run_training

    data = _cv_copy(demo_en, tmp_path / "cv", with_test=False)
    with pytest.raises(StudioError, match="test"):
        run_training(_cfg(tiny_model_dir, data), tmp_path / "run", evaluate=True)
    status = runfolder.read_status(tmp_path / "run")
    assert status.state == "failed" and "test" in status.error
    assert _train_steps(tmp_path / "run") == [] and not (tmp_path / "run" / runfolder.CHECKPOINTS).exists()


def test_sigkill_then_resume_loses_at_most_the_save_interval(tiny_model_dir, demo_en, tmp_path):
    from whisper_studio.cli import main

    run_dir = tmp_path / "run"
    cfg = _cfg(tiny_model_dir, _cv_copy(demo_en, tmp_path / "cv"), epochs=20.0, output_dir=str(run_dir))
    cfg.save(tmp_path / "config.json")
    run_dir.mkdir()
    cmd = [sys.executable, "-m", "whisper_studio", "train", "--config", str(tmp_path / "config.json"), "--no-eval",
           "--save-steps", "2", "--max-steps", "6"]
    with open(run_dir / runfolder.LOG, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=_env(),
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill one step past a checkpoint: that step is logged, not saved
            steps = _train_steps(run_dir)
            if steps and steps[-1] >= 3 and steps[-1] % 2 == 1:
                break
            assert proc.poll() is None, runfolder.tail_log(run_dir)
            time.sleep(0.02)
        else:
            pytest.fail("the job did not reach step 3 in time:\n" + runfolder.tail_log(run_dir))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    logged = _train_steps(run_dir)
    saved = runfolder.checkpoint_step(runfolder.last_checkpoint(run_dir))
    assert max(logged) - saved <= 2  # lost steps <= the save interval
    assert runfolder.read_status(run_dir).state == "running"  # as the kill left it

    assert main(["train", "--resume", str(run_dir), "--no-eval", "--save-steps", "2", "--max-steps", "6"]) == 0
    status = runfolder.read_status(run_dir)
    assert status.state == "finished" and status.step == 6 and status.error is None
    assert _train_steps(run_dir) == list(range(1, 7))  # every step once: the killed attempt's extra ones dropped


# --- 10.1 stop file, 10.6 secrets on stdin, 10.10 resume of a live run -------------------------------------------
def test_stop_file_ends_at_a_step_with_adapter_and_checkpoint(tiny_model_dir, demo_en, tmp_path):
    from whisper_studio.train import run_training

    run_dir = tmp_path / "run"
    cfg = _cfg(tiny_model_dir, _cv_copy(demo_en, tmp_path / "cv"), epochs=50.0)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(status=run_training(cfg, run_dir, evaluate=False)))
    worker.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _train_steps(run_dir):
        time.sleep(0.05)
    (run_dir / runfolder.STOP).write_text("stop")  # what the manager writes (then signals; here: no signal)
    worker.join(timeout=120)
    status = result["status"]
    assert status.state == "stopped" and "adapter saved" in status.message
    assert 1 <= status.step < status.total_steps
    assert (run_dir / runfolder.ADAPTER / "adapter_model.safetensors").is_file()
    assert runfolder.checkpoint_step(runfolder.last_checkpoint(run_dir)) == status.step


def test_secrets_from_stdin_reach_the_loader_and_nothing_else(tiny_model_dir, demo_en, tmp_path, monkeypatch, capsys):
    from whisper_studio import data as data_mod
    from whisper_studio.cli import main

    key = "mdc-secret-key-0123456789"
    seen = []
    real = data_mod.load_source

    def spy(src, *args, api_key=None, **kwargs):
        seen.append(api_key)
        return real(src, *args, api_key=api_key, **kwargs)

    monkeypatch.setattr(data_mod, "load_source", spy)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"mdc_api_key": key}) + "\n"))
    data = _cv_copy(demo_en, tmp_path / "cv", bad_rows=True)
    run_dir = tmp_path / "run"
    rc = main(["train", "--model", str(tiny_model_dir), "--language", "en", "--source", "cv-folder", "--path",
               str(data), "--batch-size", "2", "--no-8bit", "--no-eval", "--max-steps", "1", "--probe-clips", "0",
               "--secrets-stdin", "--out", str(run_dir)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert seen == [key]
    assert key not in os.environ.values() and key not in out.out + out.err
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    # 13.5: the missing and the corrupt clip are counted in the status message and the model card
    status = runfolder.read_status(run_dir)
    assert status.state == "finished" and "skipped 2 clips" in status.message, status.message
    assert "1 missing" in status.message and "1 corrupt" in status.message
    assert "Clips skipped: " in (run_dir / runfolder.ADAPTER / "README.md").read_text(encoding="utf-8")


def test_resume_refuses_a_run_whose_job_is_alive(tmp_path):
    from whisper_studio import process
    from whisper_studio.cli.train import still_running

    run_dir = tmp_path / "run"
    TrainConfig(language="en").save(run_dir / runfolder.CONFIG)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        runfolder.write_json_atomic(run_dir / runfolder.JOB, {"pid": sleeper.pid,
                                                               "create_time": process.create_time(sleeper.pid)})
        runfolder.write_status(run_dir, runfolder.RunStatus(state="running", pid=sleeper.pid, started=time.time()))
        assert still_running(run_dir) == sleeper.pid
        # the same pid with another start time is a reused pid, not the job
        runfolder.write_json_atomic(run_dir / runfolder.JOB, {"pid": sleeper.pid, "create_time": 1.0})
        assert still_running(run_dir) is None
    finally:
        sleeper.kill()
        sleeper.wait()
    assert still_running(run_dir) is None  # the process is gone: resume may go on


# --- 11.2 probe WER -----------------------------------------------------------------------------------------------
def test_probe_wer_of_generated_text_each_epoch(tiny_model_dir, demo_en, tmp_path):
    from whisper_studio.train import run_training

    run_dir = tmp_path / "run"
    cfg = _cfg(tiny_model_dir, _cv_copy(demo_en, tmp_path / "cv", n_test=3), epochs=1.0, probe_clips=16,
               eval_each_epoch=True)
    status = run_training(cfg, run_dir, evaluate=False)
    assert status.state == "finished", status.error
    evals = [r for r in runfolder.read_metrics(run_dir) if r.get("type") == "eval"]
    assert [r["step"] for r in evals] == [2]  # one record per epoch end, the test loss merged in
    for r in evals:
        assert set(r) >= {"type", "step", "epoch", "wer", "cer", "wer_normalized", "n", "eval_loss"}
        assert r["n"] == 3 and r["eval_loss"] > 0
        # a random model's generated text is nowhere near the references (teacher-forced argmax would be
        # scored on the reference's own length; generated text may run on and exceed 100%)
        assert r["wer"] > 0.5 and 0 <= r["cer"] and r["wer_normalized"] > 0.5


def test_job_never_writes_running_over_the_managers_stopping(tmp_path):
    """10.1/10.3: once the stop file exists, the job's own status writes say `stopping` (under the run lock)."""
    from whisper_studio.trainer import Reporter

    reporter = Reporter(tmp_path, runfolder.RunStatus(state="running", pid=os.getpid()), enabled=True)
    reporter.update(step=1)
    assert runfolder.read_status(tmp_path).state == "running"
    (tmp_path / runfolder.STOP).write_text("stop")
    reporter.update(step=2)
    assert (runfolder.read_status(tmp_path).state, runfolder.read_status(tmp_path).step) == ("stopping", 2)
    reporter.update(state="stopped")
    assert runfolder.read_status(tmp_path).state == "stopped"
