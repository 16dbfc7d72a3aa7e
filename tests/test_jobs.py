"""Job manager: real subprocesses, real signals, the real run folder.

Most tests run a small fake job (FAKE_JOB below) through `JobManager(command=...)`: it speaks the run-folder
contract exactly as train.py does (status via runfolder, metrics.jsonl lines, SIGTERM -> stop at the next
step, save adapter/, state `stopped`) but takes a second instead of a training run. One test at the end
runs the real `python -m whisper_studio train` on the tiny random model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from whisper_studio import jobs, runfolder
from whisper_studio.config import LoraSpec, SourceConfig, TrainConfig
from whisper_studio.errors import JobError
from whisper_studio.jobs import DIED_MESSAGE, JobManager
from helpers import wait_until as _wait

REPO = Path(__file__).resolve().parent.parent

FAKE_JOB = textwrap.dedent(
    """
    import argparse, os, signal, sys, time
    from whisper_studio import runfolder
    from whisper_studio.config import TrainConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    cfg = TrainConfig.load(ap.parse_args().config)
    run_dir = cfg.output_dir
    steps = int(os.environ.get("FAKE_JOB_STEPS", "5"))
    step_s = float(os.environ.get("FAKE_JOB_STEP_S", "0.05"))
    stop = []
    if os.environ.get("FAKE_JOB_IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a job stuck where it cannot stop
    else:
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    prev = runfolder.read_status(run_dir)
    st = runfolder.RunStatus(state="running", pid=os.getpid(), total_steps=steps, started=prev.started if prev else time.time())
    runfolder.write_status(run_dir, st)
    t0 = time.time()
    for step in range(1, steps + 1):
        if stop:
            break
        time.sleep(step_s)
        runfolder.append_metric(run_dir, {"type": "train", "step": step, "epoch": step / steps, "loss": 5.0 / step,
                                          "learning_rate": 1e-3, "elapsed": time.time() - t0, "samples_per_second": 8.0})
        st.step = step
        runfolder.write_status(run_dir, st)
        print(f"step {step}/{steps} loss {5.0 / step:.3f}")
    os.makedirs(os.path.join(run_dir, "adapter"), exist_ok=True)
    with open(os.path.join(run_dir, "adapter", "adapter_config.json"), "w") as f:
        f.write("{}")
    st.state = "stopped" if stop else "finished"
    st.message = f"stopped at step {st.step}" if stop else "done"
    st.finished = time.time()
    runfolder.write_status(run_dir, st)
    print(st.state)
    """
)


@pytest.fixture()
def fake_job(tmp_path) -> list[str]:
    script = tmp_path / "fake_job.py"
    script.write_text(FAKE_JOB, encoding="utf-8")
    return [sys.executable, str(script)]


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"model": "bundled/whisper-base", "language": "mr", **kw})




def test_job_runs_metrics_stay_valid_json_and_progress(runs_root, fake_job, monkeypatch):
    monkeypatch.setenv("FAKE_JOB_STEPS", "30")
    monkeypatch.setenv("FAKE_JOB_STEP_S", "0.05")
    manager = JobManager(runs_root, command=fake_job)
    info = manager.start(_cfg(run_name="metrics check"))
    assert info.run_dir.parent == runs_root.resolve()
    assert info.run_id.endswith("-metrics-check")
    assert info.state in ("queued", "running") and info.alive and info.pid
    # config.json holds the run folder as output_dir: the job writes there and nowhere else.
    assert TrainConfig.load(info.run_dir).output_dir == str(info.run_dir)

    seen_while_alive = 0
    while manager.get(info.run_id).alive:
        raw = (info.run_dir / runfolder.METRICS).read_text(encoding="utf-8") if (info.run_dir / runfolder.METRICS).exists() else ""
        complete = raw.splitlines(keepends=True)
        for line in complete:
            if line.endswith("\n"):
                json.loads(line)  # every complete line parses while the writer is mid-run
        seen_while_alive = max(seen_while_alive, len(runfolder.read_metrics(info.run_dir)))
        time.sleep(0.02)
    assert seen_while_alive >= 1, "metrics were only visible after the job ended"

    done = manager.get(info.run_id)
    assert done.state == "finished" and not done.alive and done.step == 30
    metrics = jobs.read_metrics(done.run_dir)
    assert [m["step"] for m in metrics] == list(range(1, 31))
    assert "step 30/30" in jobs.tail_log(done.run_dir, 5)
    assert jobs.tail_log(done.run_dir, n=2).splitlines() == ["step 30/30 loss 0.167", "finished"]
    p = jobs.progress(done, metrics)
    assert p["step"] == 30 and p["total"] == 30 and p["fraction"] == 1.0
    assert p["loss"] == pytest.approx(5.0 / 30) and p["samples_per_second"] == 8.0
    assert p["elapsed"] > 0 and p["eta"] == 0.0
    assert 0 < p["seconds_per_step"] < 1


def test_progress_eta_while_running(runs_root, fake_job, monkeypatch):
    monkeypatch.setenv("FAKE_JOB_STEPS", "200")
    monkeypatch.setenv("FAKE_JOB_STEP_S", "0.05")
    manager = JobManager(runs_root, command=fake_job)
    info = manager.start(_cfg())
    try:
        # (the fake appends a step's metric line before it rewrites status.json, as train.py does)
        _wait(lambda: manager.get(info.run_id).step >= 5)
        live = manager.get(info.run_id)
        p = jobs.progress(live)
        assert p["alive"] and p["total"] == 200 and 5 <= p["step"] < 200
        # about (200 - step) * 0.05 s left: loose bounds, the CPU is shared
        assert 0.02 * (200 - p["step"]) < p["eta"] < 1.0 * (200 - p["step"])
    finally:
        manager.stop(info.run_id)
        manager.wait(info.run_id, timeout=20)


def test_second_start_is_refused_naming_the_running_run(runs_root, fake_job, monkeypatch):
    monkeypatch.setenv("FAKE_JOB_STEPS", "400")
    first = JobManager(runs_root, command=fake_job)
    running = first.start(_cfg(run_name="marathi-first"))
    try:
        # Another manager on the same root (another browser session, or the app after a restart) sees it too.
        other = JobManager(runs_root, command=fake_job)
        with pytest.raises(JobError, match="marathi-first"):
            other.start(_cfg(run_name="second"))
        assert other.active().run_id == running.run_id
        assert [r.run_id for r in other.list_runs()] == [running.run_id]  # the refused start left no folder
    finally:
        first.stop(running.run_id)
        first.wait(running.run_id, timeout=20)
    # Once it is stopped, a new start is allowed.
    monkeypatch.setenv("FAKE_JOB_STEPS", "1")
    again = first.start(_cfg(run_name="second"))
    _wait(lambda: not first.get(again.run_id).alive)
    assert first.get(again.run_id).state == "finished"


RACE = textwrap.dedent(
    """
    import sys, time
    from whisper_studio.config import TrainConfig
    from whisper_studio.errors import JobError
    from whisper_studio.jobs import JobManager
    root, go_at, name = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    manager = JobManager(root, command=sys.argv[4:])
    while time.time() < go_at:
        pass
    try:
        info = manager.start(TrainConfig(model="m", language="mr", run_name=name))
        print("started", info.run_id)
    except JobError as exc:
        print("refused", exc)
    """
)


def test_concurrent_starts_from_two_processes_launch_one_job(runs_root, fake_job, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_JOB_STEPS", "400")
    script = tmp_path / "race.py"
    script.write_text(RACE, encoding="utf-8")
    runs_root.mkdir(parents=True, exist_ok=True)
    go_at = time.time() + 1.5  # both processes are imported and spinning by then, so the starts overlap
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, str(script), str(runs_root), str(go_at), f"racer{i}", *fake_job],
                         stdout=subprocess.PIPE, text=True, env=env)
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    manager = JobManager(runs_root, command=fake_job)
    try:
        assert sorted(o.split()[0] for o in outputs) == ["refused", "started"], outputs
        winner = next(o.split()[1] for o in outputs if o.startswith("started"))
        loser = next(o for o in outputs if o.startswith("refused"))
        assert winner.split("-")[-1] in loser  # the refusal names the run that won
        assert [r.run_id for r in manager.list_runs()] == [winner]
    finally:
        for run in manager.list_runs():
            if run.alive:
                manager.stop(run.run_id)
                manager.wait(run.run_id, timeout=20)


def test_stop_lets_the_job_save_and_mark_itself_stopped(runs_root, fake_job, monkeypatch):
    monkeypatch.setenv("FAKE_JOB_STEPS", "400")
    manager = JobManager(runs_root, command=fake_job)
    info = manager.start(_cfg())
    _wait(lambda: manager.get(info.run_id).step >= 2)
    t0 = time.monotonic()
    stopping = manager.stop(info.run_id)
    assert stopping.state == "stopping" and stopping.alive  # Stop returns at once; the job ends by itself
    stopped = manager.wait(info.run_id, timeout=20)
    assert time.monotonic() - t0 < 5  # it stopped at the next step, not at the kill deadline
    assert stopped.state == "stopped" and not stopped.alive
    assert stopped.message.startswith("stopped at step")  # written by the job itself, not by the manager
    assert stopped.has_adapter
    assert 2 <= stopped.step < 400


def test_stop_kills_a_job_that_ignores_sigterm(runs_root, fake_job, monkeypatch):
    monkeypatch.setenv("FAKE_JOB_STEPS", "400")
    monkeypatch.setenv("FAKE_JOB_IGNORE_TERM", "1")
    manager = JobManager(runs_root, command=fake_job)
    info = manager.start(_cfg())
    _wait(lambda: manager.get(info.run_id).step >= 1)
    pid = manager.get(info.run_id).pid
    t0 = time.monotonic()
    assert manager.stop(info.run_id, grace=1).state == "stopping"
    stopped = manager.wait(info.run_id, timeout=20)
    assert 1 <= time.monotonic() - t0 < 8
    assert stopped.state == "stopped" and not stopped.alive and stopped.error is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped: no zombie left behind
    assert runfolder.read_status(info.run_dir).state == "stopped"


def test_sigkilled_job_is_reported_failed_and_it_sticks(runs_root, fake_job, monkeypatch):
    monkeypatch.setenv("FAKE_JOB_STEPS", "400")
    manager = JobManager(runs_root, command=fake_job)
    info = manager.start(_cfg())
    _wait(lambda: manager.get(info.run_id).state == "running")
    os.kill(manager.get(info.run_id).pid, signal.SIGKILL)
    dead = _wait(lambda: (lambda r: r if not r.alive else None)(manager.get(info.run_id)))
    assert dead.state == "failed" and dead.error == DIED_MESSAGE
    on_disk = runfolder.read_status(info.run_dir)
    assert on_disk.state == "failed" and on_disk.error == DIED_MESSAGE and on_disk.finished
    assert manager.active() is None
    # a dead job does not block the next one
    monkeypatch.setenv("FAKE_JOB_STEPS", "1")
    nxt = manager.start(_cfg())
    _wait(lambda: manager.get(nxt.run_id).state == "finished")


def _fake_run(root: Path, name: str, status: runfolder.RunStatus) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    _cfg(output_dir=str(run_dir)).save(run_dir / runfolder.CONFIG)
    runfolder.write_status(run_dir, status)
    return run_dir


def test_dead_pid_and_reused_pid_from_another_app_process(runs_root):
    """Runs this process never launched (the app restarted): judged from status.json's pid alone."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _fake_run(runs_root, "20260101-000000-gone", runfolder.RunStatus(state="running", pid=gone.pid, started=time.time() - 50))
    # A live process whose pid the status names, but created long after the run started: the pid was reused.
    reused = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _fake_run(runs_root, "20260101-000001-reused", runfolder.RunStatus(state="running", pid=reused.pid, started=time.time() - 100))
        # This test process itself, created before the run's start: genuinely alive.
        _fake_run(runs_root, "20260101-000002-live", runfolder.RunStatus(state="running", pid=os.getpid(), started=time.time()))
        runs = {r.run_id.split("-")[-1]: r for r in JobManager(runs_root).list_runs()}
        assert runs["gone"].state == "failed" and runs["gone"].error == DIED_MESSAGE
        assert runs["reused"].state == "failed" and runs["reused"].error == DIED_MESSAGE
        assert runs["live"].state == "running" and runs["live"].alive
        assert JobManager(runs_root).active().run_id.endswith("-live")
    finally:
        reused.kill()
        reused.wait()


def test_list_runs_survives_restart_newest_first(runs_root, fake_job, monkeypatch):
    monkeypatch.setenv("FAKE_JOB_STEPS", "1")
    manager = JobManager(runs_root, command=fake_job)
    ids = []
    for name in ("older", "newer"):
        info = manager.start(_cfg(run_name=name))
        _wait(lambda: not manager.get(info.run_id).alive)
        ids.append(info.run_id)
    restarted = JobManager(runs_root)  # a fresh manager: nothing in memory, only the folders
    runs = restarted.list_runs()
    assert [r.run_id for r in runs] == ids[::-1]
    assert all(r.state == "finished" and not r.alive and r.config.run_name for r in runs)
    assert restarted.get(ids[0]).config.run_name == "older"
    assert restarted.get(runs_root / ids[0]).run_id == ids[0]  # a path works too
    with pytest.raises(JobError, match="No run named"):
        restarted.get("../etc")
    with pytest.raises(JobError, match="No run named"):
        restarted.get("nope")


def test_default_runs_root_and_command_from_environment(runs_root):
    manager = JobManager()
    assert manager.runs_root == runs_root.resolve() and runs_root.is_dir()
    assert list(manager.command[:4]) == [sys.executable, "-m", "whisper_studio", "train"]


def test_command_line_shows_only_non_default_flags():
    line = jobs.command_line(_cfg(language="hi", epochs=1.0, learning_rate=5e-4, load_in_8bit=False,
                                  lora=LoraSpec(rank=8, alpha=16, target_modules=("q_proj", "v_proj", "fc1")),
                                  source=SourceConfig(kind="cv-folder", language="hi", path="/data/cv corpus/hi"),
                                  max_train_samples=200))
    assert line.startswith("python -m whisper_studio train --model bundled/whisper-base --language hi ")
    for part in ("--epochs 1", "--learning-rate 0.0005", "--no-8bit", "--rank 8", "--alpha 16",
                 "--source cv-folder", "--path '/data/cv corpus/hi'", "--max-train-samples 200"):
        assert part in line, (part, line)
    assert "fc1" in line
    for default_flag in ("--batch-size", "--dropout", "--seed", "--warmup-steps", "--precision", "--grad-accum"):
        assert default_flag not in line
    assert jobs.command_line(_cfg()) == "python -m whisper_studio train --model bundled/whisper-base --language mr"


def test_command_line_round_trips_through_train_cli(tmp_path):
    """The shown command, parsed by train.py's own parser, gives back the same configuration."""
    import shlex

    train = pytest.importorskip("whisper_studio.cli.train")
    from whisper_studio.cli import build_parser

    cfg = TrainConfig(
        model="bundled/whisper-base", language="hi", task="translate", epochs=2.5, learning_rate=3e-4, warmup_steps=3,
        batch_size=4, grad_accum=2, load_in_8bit=False, precision="fp32", seed=7, logging_steps=5,
        max_train_samples=100, max_test_samples=20, run_name="hindi try 1", eval_each_epoch=True,
        lora=LoraSpec(rank=16, alpha=24, dropout=0.1, target_modules=("q_proj", "k_proj", "v_proj", "out_proj")),
        source=SourceConfig(kind="cv-folder", language="hi", path=str(tmp_path / "cv corpus")),
        output_dir=str(tmp_path / "run"),
    )
    line = jobs.command_line(cfg, include_out=True)
    argv = shlex.split(line)
    assert argv[:4] == ["python", "-m", "whisper_studio", "train"]
    args = build_parser().parse_args(argv[3:])
    parsed, run_dir = train.config_from_args(args)
    # --out is the run folder; train.py writes it into output_dir when the run starts
    assert {**parsed.to_dict(), "output_dir": None} == {**cfg.to_dict(), "output_dir": None}
    assert run_dir == tmp_path / "run"
    # without include_out the line makes a new run folder instead of writing into this one
    assert "--out" not in jobs.command_line(cfg)

    hub = TrainConfig(model="openai/whisper-small", language="sv-SE", lora=LoraSpec(bias="all"),
                      source=SourceConfig(kind="hub", language="sv-SE", dataset_id="someone/swedish-speech",
                                          audio_column="wav", text_column="text", hub_config="clean"))
    args = build_parser().parse_args(shlex.split(jobs.command_line(hub))[3:])
    parsed, _ = train.config_from_args(args)
    assert parsed.to_dict() == hub.to_dict()


# --- the real training job --------------------------------------------------------------------------------
def _cv_folder(root: Path, n_train: int, n_test: int) -> Path:
    """A Common Voice-layout English folder with short synthetic clips (tones; the model is random anyway)."""
    import numpy as np
    import soundfile as sf

    locale_dir = root / "en"
    (locale_dir / "clips").mkdir(parents=True)
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\tsegment"
    words = "the quick brown fox jumps over a lazy dog near river bank today".split()
    for split, n in (("train", n_train), ("test", n_test)):
        lines = [header]
        for i in range(n):
            t = np.arange(int(16000 * 0.8)) / 16000
            name = f"{split}_{i}.wav"
            sf.write(locale_dir / "clips" / name, (0.3 * np.sin(2 * np.pi * (150 + 25 * i) * t)).astype(np.float32), 16000)
            lines.append(f"c\t{name}\t{' '.join(words[i % 5:i % 5 + 4])}\t2\t0\t\t\t\ten\t")
        (locale_dir / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return locale_dir


@pytest.mark.slow
def test_real_training_job_streams_metrics_and_stops_with_adapter(runs_root, tiny_model_dir, tmp_path, monkeypatch):
    """`python -m whisper_studio train` on the tiny model, started, watched and stopped through JobManager."""
    # The job inherits our environment: one torch thread, as a loaded shared CPU runs fastest that way.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = TrainConfig(
        model=str(tiny_model_dir), language="en", load_in_8bit=False, precision="fp32",
        source=SourceConfig(kind="cv-folder", language="en", path=str(_cv_folder(tmp_path / "cv", 4, 2))),
        lora=LoraSpec(rank=4, alpha=8), epochs=200.0, batch_size=2, warmup_steps=0, max_train_samples=4,
        run_name="real-tiny",
    )
    manager = JobManager(runs_root)  # the real command
    info = manager.start(cfg)
    try:
        with pytest.raises(JobError, match="real-tiny"):
            JobManager(runs_root).start(cfg)
        # While it trains, every metrics line is whole JSON and progress numbers move.
        def trained_steps():
            run = manager.get(info.run_id)
            assert run.state in ("queued", "running"), (run.state, run.error, jobs.tail_log(info.run_dir))
            raw = (info.run_dir / runfolder.METRICS).read_text(encoding="utf-8") if (info.run_dir / runfolder.METRICS).exists() else ""
            for line in raw.splitlines(keepends=True):
                if line.endswith("\n"):
                    json.loads(line)
            return run.step >= 2 and any(m.get("type") == "train" for m in runfolder.read_metrics(info.run_dir))
        _wait(trained_steps, timeout=240, every=0.2)
        p = jobs.progress(manager.get(info.run_id))
        assert p["alive"] and p["total"] == 400 and p["step"] >= 2 and p["loss"] is not None
    finally:
        manager.stop(info.run_id)
        stopped = manager.wait(info.run_id, timeout=300)
    assert stopped.state == "stopped", (stopped.state, stopped.error, jobs.tail_log(info.run_dir))
    assert stopped.message and "adapter saved" in stopped.message  # the job's own words: it handled SIGTERM
    assert stopped.has_adapter and not stopped.alive
    assert "train" in jobs.tail_log(info.run_dir, 200).lower()
    # after an app restart the run is still listed, with its final state
    assert [(r.run_id, r.state) for r in JobManager(runs_root).list_runs()] == [(info.run_id, "stopped")]
