"""Fault injection for the job manager: slow steps, multi-rank launchers, a killed app, malformed run folders,
a disk that refuses writes, and secrets that must not leak. Real subprocesses and signals, no network.

The fake job (FAKE below) speaks the run-folder contract as train.py does (status.json under run_lock,
metrics.jsonl lines, SIGTERM -> stop when the current step ends, adapter/ + `stopped`); its step length is set by
FAKE_STEP_S, so "a 20 s step" costs 20 s of sleeping, not of CPU.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from whisper_studio import jobs, process, runfolder
from whisper_studio.config import TrainConfig
from whisper_studio.errors import JobError
from whisper_studio.jobs import JobManager
from helpers import wait_until as _wait

REPO = Path(__file__).resolve().parent.parent
SECRET = "mdc-SECRET-123"

FAKE = textwrap.dedent(
    """
    import argparse, hashlib, json, os, signal, subprocess, sys, time
    from whisper_studio import runfolder
    from whisper_studio.config import TrainConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--resume")
    ap.add_argument("--secrets-stdin", action="store_true")
    ap.add_argument("--rank", type=int, default=None)
    args = ap.parse_args()
    if args.secrets_stdin:
        secrets = json.loads(sys.stdin.readline())
        with open(os.environ["FAKE_RECEIVED"], "w") as f:  # outside the run folder: only a digest
            f.write(hashlib.sha256(secrets["mdc_api_key"].encode()).hexdigest())
    run_dir = args.resume or os.path.dirname(os.path.abspath(args.config))
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(time.time()))  # noted; the step still runs to its end

    if os.environ.get("FAKE_RANKS") and args.rank is None:
        # A launcher like torchrun: its ranks share its process group; it waits for them and exits.
        ranks = [subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--rank", str(r)]) for r in (0, 1)]
        with open(os.environ["FAKE_PIDS"], "w") as f:
            f.write(" ".join(str(p.pid) for p in ranks))
        for p in ranks:
            while p.poll() is None:
                time.sleep(0.05)
        sys.exit(0)

    def write(st):
        with runfolder.run_lock(run_dir):
            runfolder.write_status(run_dir, st)

    steps = int(os.environ.get("FAKE_STEPS", "5"))
    step_s = float(os.environ.get("FAKE_STEP_S", "0.05"))
    if args.rank == 1:
        # Rank 1 writes nothing; after SIGTERM it needs FAKE_LINGER_S more seconds to exit.
        while not stop:
            time.sleep(0.05)
        time.sleep(float(os.environ.get("FAKE_LINGER_S", "0")))
        sys.exit(0)
    if os.environ.get("FAKE_SELF_CHECK"):  # what the real job's --resume asks: does another attempt live?
        from whisper_studio import process
        with open(os.environ["FAKE_SELF_CHECK"], "w") as f:
            f.write(str(process.job_alive(run_dir)))
    prev = runfolder.read_status(run_dir)
    st = runfolder.RunStatus(state="running", pid=os.getpid(), total_steps=steps, started=time.time(),
                             step=prev.step if prev and args.resume else 0)
    write(st)
    t0 = time.time()
    for step in range(st.step + 1, steps + 1):
        if stop:
            break
        end = time.time() + step_s
        while time.time() < end:
            time.sleep(min(0.05, max(0.0, end - time.time())))
        runfolder.append_metric(run_dir, {"type": "train", "step": step, "epoch": step / steps, "loss": 1.0,
                                          "elapsed": time.time() - t0})
        st.step = step
        write(st)
    os.makedirs(os.path.join(run_dir, "adapter"), exist_ok=True)
    with open(os.path.join(run_dir, "adapter", "adapter_config.json"), "w") as f:
        f.write("{}")
    st.state = "stopped" if stop else "finished"
    st.message = f"stopped at step {st.step}, adapter saved" if stop else "done"
    st.finished = time.time()
    write(st)
    """
)


@pytest.fixture()
def fake(tmp_path) -> list[str]:
    script = tmp_path / "fake_job.py"
    script.write_text(FAKE, encoding="utf-8")
    return [sys.executable, str(script)]


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"model": "bundled/whisper-base", "language": "mr", **kw})




def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _kill_group(pid: int | None) -> None:
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# --- Stop -------------------------------------------------------------------------------------------------------
def test_stop_with_a_20s_step_returns_at_once_and_keeps_the_adapter(runs_root, fake, monkeypatch):
    monkeypatch.setenv("FAKE_STEPS", "3")
    monkeypatch.setenv("FAKE_STEP_S", "20")
    manager = JobManager(runs_root, command=fake)
    info = manager.start(_cfg())
    try:
        _wait(lambda: manager.get(info.run_id).state == "running")
        t0 = time.monotonic()
        stopping = manager.stop(info.run_id)
        assert time.monotonic() - t0 < 2  # returns at once
        assert stopping.state == "stopping" and stopping.alive
        assert runfolder.read_status(info.run_dir).state == "stopping"
        time.sleep(11)  # past the old 10 s grace: nothing was killed
        assert manager.get(info.run_id).state == "stopping" and manager.get(info.run_id).alive
        done = manager.wait(info.run_id, timeout=30)
        assert done.state == "stopped" and not done.alive and done.has_adapter
        assert "adapter saved" in done.message  # the job's own final word, not a kill
    finally:
        _kill_group(info.pid)


def test_escalation_waits_three_measured_steps_and_at_least_a_minute(tmp_path):
    assert jobs.escalation_delay(tmp_path) == 60  # nothing measured yet
    for step, elapsed in ((1, 2.0), (2, 4.0), (3, 6.0)):
        runfolder.append_metric(tmp_path, {"type": "train", "step": step, "elapsed": elapsed})
    assert jobs.escalation_delay(tmp_path) == 60
    runfolder.append_metric(tmp_path, {"type": "train", "step": 5, "elapsed": 66.0})  # 30 s per step
    assert jobs.escalation_delay(tmp_path) == pytest.approx(90)


def test_kill_true_kills_at_once(runs_root, fake, monkeypatch):
    monkeypatch.setenv("FAKE_STEPS", "3")
    monkeypatch.setenv("FAKE_STEP_S", "20")
    manager = JobManager(runs_root, command=fake)
    info = manager.start(_cfg())
    _wait(lambda: manager.get(info.run_id).state == "running")
    pid = manager.get(info.run_id).pid
    t0 = time.monotonic()
    killed = manager.stop(info.run_id, kill=True)
    assert time.monotonic() - t0 < 6
    assert killed.state == "stopped" and not killed.alive and not killed.has_adapter
    assert "killed" in killed.message
    assert _gone(pid)
    assert runfolder.read_status(info.run_dir).state == "stopped"


def test_two_rank_launcher_is_fully_stopped_and_blocks_a_second_start(runs_root, fake, monkeypatch, tmp_path):
    pids_file = tmp_path / "pids"
    monkeypatch.setenv("FAKE_RANKS", "1")
    monkeypatch.setenv("FAKE_PIDS", str(pids_file))
    monkeypatch.setenv("FAKE_STEPS", "400")
    monkeypatch.setenv("FAKE_STEP_S", "0.1")
    monkeypatch.setenv("FAKE_LINGER_S", "3")  # rank 1 exits 3 s after rank 0 has written `stopped`
    manager = JobManager(runs_root, command=fake)
    info = manager.start(_cfg(run_name="two-ranks"))
    try:
        _wait(lambda: manager.get(info.run_id).step >= 2)
        ranks = [int(p) for p in pids_file.read_text().split()]
        assert manager.stop(info.run_id).state == "stopping"
        _wait(lambda: runfolder.read_status(info.run_dir).state == "stopped")  # rank 0 is done
        assert not _gone(ranks[1])
        with pytest.raises(JobError, match="two-ranks"):
            manager.start(_cfg(run_name="second"))
        done = manager.wait(info.run_id, timeout=20)
        assert done.state == "stopped" and not done.alive and done.has_adapter
        assert all(_gone(pid) for pid in [info.pid, *ranks])
        assert process.group_members(info.pid) == []
    finally:
        _kill_group(info.pid)
    monkeypatch.delenv("FAKE_RANKS")
    monkeypatch.setenv("FAKE_STEPS", "1")
    again = manager.start(_cfg(run_name="second"))
    assert manager.wait(again.run_id, timeout=20).state == "finished"


def test_orphaned_ranks_of_a_killed_launcher_block_start_and_kill_true_ends_them(runs_root, fake, monkeypatch, tmp_path):
    pids_file = tmp_path / "pids"
    monkeypatch.setenv("FAKE_RANKS", "1")
    monkeypatch.setenv("FAKE_PIDS", str(pids_file))
    monkeypatch.setenv("FAKE_STEPS", "400")
    monkeypatch.setenv("FAKE_STEP_S", "0.1")
    manager = JobManager(runs_root, command=fake)
    info = manager.start(_cfg(run_name="orphans"))
    try:
        _wait(lambda: manager.get(info.run_id).step >= 1)
        ranks = [int(p) for p in pids_file.read_text().split()]
        os.kill(info.pid, signal.SIGKILL)  # the launcher dies; its ranks go on
        _wait(lambda: _gone(info.pid))
        with pytest.raises(JobError, match="orphans"):
            manager.start(_cfg(run_name="second"))
        stopped = manager.stop(info.run_id, kill=True)
        assert stopped.state == "stopped" and not stopped.alive
        assert all(_gone(pid) for pid in ranks)
    finally:
        _kill_group(info.pid)


# --- the app is killed and restarted while a job runs ---------------------------------------------------------
APP = textwrap.dedent(
    """
    import sys, time
    from whisper_studio.config import TrainConfig
    from whisper_studio.jobs import JobManager
    info = JobManager(sys.argv[1], command=sys.argv[2:]).start(TrainConfig(model="m", language="mr", run_name="survivor"))
    print(info.run_id, flush=True)
    time.sleep(600)
    """
)


def test_app_killed_and_restarted_sees_the_job_live_and_can_stop_it(runs_root, fake, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_STEPS", "400")
    monkeypatch.setenv("FAKE_STEP_S", "0.1")
    script = tmp_path / "app.py"
    script.write_text(APP, encoding="utf-8")
    app = subprocess.Popen([sys.executable, str(script), str(runs_root), *fake], stdout=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    run_id = app.stdout.readline().strip()
    app.kill()  # SIGKILL: no cleanup in the app
    app.wait()
    restarted = JobManager(runs_root)
    _wait(lambda: restarted.get(run_id).step >= 1)
    (run,) = restarted.list_runs()
    assert run.run_id == run_id and run.alive and run.state == "running" and run.name == "survivor"
    with pytest.raises(JobError, match="survivor"):
        restarted.start(_cfg())
    try:
        assert restarted.stop(run_id).state == "stopping"
        done = restarted.wait(run_id, timeout=20)
        assert done.state == "stopped" and not done.alive and done.has_adapter
    finally:
        _kill_group(run.pid)


# --- malformed run folders ------------------------------------------------------------------------------------
BAD_STATUS = {
    "non-utf8": b'{"state": "running", "error": "\xff\xfe"}',
    "a-list": b'["running", 3]',
    "started-text": json.dumps({"state": "finished", "started": "yesterday"}).encode(),
    "truncated": b'{"state": "runn',
    "empty": b"",
    "unknown-state": json.dumps({"state": 7}).encode(),
}


def test_malformed_status_files_are_listed_unreadable_and_the_rest_work(runs_root, fake, monkeypatch):
    runs_root.mkdir(parents=True)
    for i, (name, raw) in enumerate(BAD_STATUS.items()):
        run_dir = runs_root / f"20260101-00000{i}-{name}"
        run_dir.mkdir()
        _cfg(output_dir=str(run_dir)).save(run_dir / runfolder.CONFIG)
        (run_dir / runfolder.STATUS).write_bytes(raw)
    good = runs_root / "20260102-000000-good"
    good.mkdir()
    _cfg(output_dir=str(good)).save(good / runfolder.CONFIG)
    runfolder.write_status(good, runfolder.RunStatus(state="finished", started=time.time(), step=3))
    (good / runfolder.METRICS).write_bytes(b'{"type": "train", "step": 1, "elapsed": 1.0}\n'
                                           b'{"type": "train", "step": 2, "loss": "\xff"}\n'
                                           b'[1, 2]\n'
                                           b'{"type": "train", "step": "x", "elapsed": 2.0}\n'
                                           b'{"type": "train", "step": 3, "elapsed": 3.0}\n'
                                           b'{"type": "train", "step": 4, "el')
    (good / runfolder.EVAL).write_bytes(b"\xff[]")
    before = {p: p.stat().st_mtime_ns for p in runs_root.rglob("*")}

    manager = JobManager(runs_root, command=fake)
    runs = {r.run_id.split("-", 2)[2]: r for r in manager.list_runs()}
    assert runs["good"].state == "finished" and runs["good"].step == 3
    for name in BAD_STATUS:
        assert runs[name].state == "unreadable" and runs[name].error.startswith("unreadable: "), (name, runs[name])
        assert not runs[name].alive
    assert "not UTF-8" in runs["non-utf8"].error and "list" in runs["a-list"].error
    assert "started" in runs["started-text"].error
    assert [m["step"] for m in runfolder.read_metrics(good)] == [1, "x", 3]
    assert jobs.progress(runs["good"])["step"] == 3
    assert {p: p.stat().st_mtime_ns for p in runs_root.rglob("*")} == before  # listing wrote nothing
    monkeypatch.setenv("FAKE_STEPS", "1")
    new = manager.start(_cfg())  # a start is not blocked by the bad folders
    assert manager.wait(new.run_id, timeout=20).state == "finished"


@pytest.fixture()
def disk_refuses_writes(monkeypatch):
    """Every file write or create fails as on a full disk (ENOSPC); reads work."""
    real_os_open, real_open = os.open, builtins.open
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def os_open(path, flags, *a, **kw):
        if flags & writing:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_os_open(path, flags, *a, **kw)

    def open_(file, mode="r", *a, **kw):
        if any(c in mode for c in "wax+"):
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real_open(file, mode, *a, **kw)

    def install():
        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(io, "open", open_)

    return install


def test_listing_works_on_a_disk_that_refuses_writes(runs_root, disk_refuses_writes):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run_dir = runs_root / "20260101-000000-dead"
    run_dir.mkdir(parents=True)
    _cfg(output_dir=str(run_dir)).save(run_dir / runfolder.CONFIG)
    runfolder.write_status(run_dir, runfolder.RunStatus(state="running", pid=gone.pid, started=time.time() - 50))
    disk_refuses_writes()
    manager = JobManager(runs_root)
    (run,) = manager.list_runs()
    assert run.state == "failed" and run.error == jobs.DIED_MESSAGE and not run.alive
    assert manager.get(run.run_id).state == "failed" and manager.active() is None
    assert json.loads(Path(run_dir / runfolder.STATUS).read_text())["state"] == "running"  # nothing written


# --- secrets ----------------------------------------------------------------------------------------------------
def test_secrets_reach_the_job_on_stdin_and_nowhere_else(runs_root, fake, monkeypatch, tmp_path):
    received = tmp_path / "received"
    monkeypatch.setenv("FAKE_RECEIVED", str(received))
    monkeypatch.setenv("FAKE_STEPS", "400")
    monkeypatch.setenv("FAKE_STEP_S", "0.1")
    environ_before = dict(os.environ)
    manager = JobManager(runs_root, command=fake)
    info = manager.start(_cfg(), secrets={"mdc_api_key": SECRET})
    try:
        _wait(lambda: received.exists() and received.read_text())
        assert received.read_text() == hashlib.sha256(SECRET.encode()).hexdigest()
        assert dict(os.environ) == environ_before
        for name in ("environ", "cmdline"):
            assert SECRET.encode() not in Path(f"/proc/{info.pid}/{name}").read_bytes(), name
        assert "--secrets-stdin" in json.loads((info.run_dir / runfolder.JOB).read_text())["argv"]
        manager.stop(info.run_id)
        assert manager.wait(info.run_id, timeout=20).state == "stopped"
    finally:
        _kill_group(info.pid)
    files = [p for p in info.run_dir.rglob("*") if p.is_file()]
    assert any(p.name == runfolder.LOG for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert dict(os.environ) == environ_before


# --- resume -----------------------------------------------------------------------------------------------------
def test_resume_needs_a_checkpoint_and_relaunches_the_same_folder(runs_root, fake, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_STEPS", "400")
    manager = JobManager(runs_root, command=fake)
    info = manager.start(_cfg(run_name="to-resume"))
    _wait(lambda: manager.get(info.run_id).step >= 2)
    manager.stop(info.run_id)
    assert manager.wait(info.run_id, timeout=20).state == "stopped"
    with pytest.raises(JobError, match="nothing saved yet"):
        manager.resume(info.run_id)
    checkpoint = info.run_dir / runfolder.CHECKPOINTS / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    monkeypatch.setenv("FAKE_STEPS", "50")
    self_check = tmp_path / "self-check"
    monkeypatch.setenv("FAKE_SELF_CHECK", str(self_check))
    assert not process.job_alive(info.run_dir)
    resumed = manager.resume(info.run_id)
    assert resumed.run_id == info.run_id and resumed.alive
    assert process.job_alive(info.run_dir)  # seen from another process (this test)
    assert _wait(lambda: self_check.exists() and self_check.read_text()) == "False"  # the job does not see itself
    assert "--resume" in json.loads((info.run_dir / runfolder.JOB).read_text())["argv"]
    done = manager.wait(info.run_id, timeout=20)
    assert done.state == "finished" and done.step == 50 and not process.job_alive(info.run_dir)
    with pytest.raises(JobError, match="finished"):
        manager.resume(info.run_id)
    assert [r.run_id for r in manager.list_runs()] == [info.run_id]
