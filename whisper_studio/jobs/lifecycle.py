"""The process side of a run: who launched it, is it alive, how it is signalled, and who writes its end.

Module level, not per JobManager: children of this process, stop watchdogs and kill notes are shared by every
JobManager in the app (two browser sessions, a restarted tab) and by the daemon threads that outlive a call.

* Reaper: a daemon thread waits for each child, records its final state if the job did not (under the run
  lock), then marks it reaped; "alive" for our own child means "not reaped yet", so nobody ever sees it dead
  with a live-looking status on disk.
* Watchdog: after a Stop request it waits for the job to end by itself; past the deadline it SIGKILLs the
  process group, then records the end.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from whisper_studio import process, runfolder
from whisper_studio.runfolder import FINAL_STATES, LIVE_STATES, RunStatus

DIED_MESSAGE = "the training process exited unexpectedly (see train.log)"
NEVER_STARTED_MESSAGE = "the training process was never started (the app stopped while launching it)"
STOPPED_MESSAGE = "stopped by the user"
STOPPING_MESSAGE = "stopping: the adapter is saved at the end of the current step"
# Stop waits at least this long, and 3 steps, before it kills: a batch-8 step of the base model takes ~13 s on
# two free cores and far longer under load, and the job still has to save its adapter after it.
ESCALATE_MIN_S = 60.0
ESCALATE_STEPS = 3
KILL_WAIT_S = 5.0  # how long a kill is given to land before the caller is answered

@dataclass
class Child:
    """A job this process launched; `reaped` is set once it has exited, been waited for and its final state
    recorded, so no observer ever sees it dead with a live-looking status."""

    proc: subprocess.Popen
    reaped: threading.Event


# Process-wide, shared by every JobManager in the app: children by resolved run folder, watchdogs likewise,
# and why a run was killed (for the final status the reaper writes).
CHILDREN: dict[str, Child] = {}
_WATCHDOGS: dict[str, threading.Thread] = {}
_KILL_NOTES: dict[str, str] = {}
CHILDREN_LOCK = threading.Lock()

def escalation_delay(run_dir: str | os.PathLike) -> float:
    """Seconds Stop waits before it kills: max(60 s, 3 x the longest measured step in metrics.jsonl)."""
    step = _longest_step_seconds(runfolder.read_metrics(run_dir))
    return max(ESCALATE_MIN_S, ESCALATE_STEPS * step) if step else ESCALATE_MIN_S


def _longest_step_seconds(metrics: list[dict]) -> float | None:
    train, _ = runfolder.split_records(metrics)
    longest, prev = None, None
    for r in train:
        if r.elapsed is None:
            continue
        if prev is None:
            per_step = r.elapsed / r.step if r.step > 0 else None
        elif r.step > prev.step and r.elapsed >= prev.elapsed:
            per_step = (r.elapsed - prev.elapsed) / (r.step - prev.step)
        else:
            per_step = None  # a resumed attempt restarted the count
        if per_step is not None:
            longest = per_step if longest is None else max(longest, per_step)
        prev = r
    return longest


def run_key(run_dir: Path) -> str:
    return str(Path(run_dir).resolve())


def _own_child(run_dir: Path, job: runfolder.JobRecord | None) -> Child | None:
    with CHILDREN_LOCK:
        child = CHILDREN.get(run_key(run_dir))
    return child if child is not None and (job is None or job.pid == child.proc.pid) else None


def launcher_alive(run_dir: Path, status: RunStatus | None) -> bool:
    """The launcher is not reaped (our child), or is the recorded process (pid + exact creation time); for a
    headless attempt (`train --resume` from a shell) the status pid is checked against the start time."""
    job = runfolder.read_job(run_dir)
    child = _own_child(run_dir, job)
    if child is not None:
        if not child.reaped.is_set():
            return True
    elif job is not None and process.is_job_process(job.pid, create_time=job.create_time, started=job.started):
        return True
    if status is not None and status.state in LIVE_STATES and status.pid and status.pid != (job.pid if job else None):
        return process.is_job_process(status.pid, started=status.started)
    return False


def stray_processes(run_dir: Path) -> list[int]:
    """Processes of the run's group still alive after (or besides) the launcher: torchrun ranks, workers."""
    job = runfolder.read_job(run_dir)
    if job is None:
        return []
    return process.group_members(job.pgid or job.pid, since=job.create_time)


def running(run_dir: Path) -> bool:
    return launcher_alive(run_dir, runfolder.read_status(run_dir)) or bool(stray_processes(run_dir))


def as_seen(run_dir: Path, status: RunStatus, alive: bool) -> RunStatus:
    """A live-looking status as it is: `stopping` once Stop was asked, failed/stopped (in memory only)
    when its process is gone without writing a final state."""
    stop_asked = (run_dir / runfolder.STOP).exists()
    if alive:
        return dataclasses.replace(status, state="stopping") if stop_asked else status
    if stop_asked:
        return dataclasses.replace(status, state="stopped", message=STOPPED_MESSAGE)
    job = runfolder.read_job(run_dir)
    if status.pid is None and job is None and time.time() - (status.updated or 0) < 60:
        return status  # a launch in progress in another process
    return dataclasses.replace(status, state="failed", error=DIED_MESSAGE if (status.pid or job) else NEVER_STARTED_MESSAGE)


def request_stop(run_dir: Path) -> float:
    """Record the stop request (its time sets the kill deadline, also for a later Stop press or another app
    process) and show `stopping` until the job writes its final state. A disk error does not prevent the
    signal: the job also hears SIGTERM."""
    stop_file = run_dir / runfolder.STOP
    try:
        requested = float(stop_file.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        requested = time.time()
        try:
            stop_file.write_text(f"{requested}\n", encoding="utf-8")
        except OSError:
            pass
    try:
        with runfolder.run_lock(run_dir):
            status = runfolder.read_status(run_dir)
            if status is not None and status.state in ("queued", "running"):
                runfolder.write_status(run_dir, dataclasses.replace(status, state="stopping", message=STOPPING_MESSAGE))
    except OSError:
        pass
    return requested


def signal_run(run_dir: Path, sig: int) -> None:
    """Signal the run's process group (from .job.json); a headless run without one: its status pid."""
    job = runfolder.read_job(run_dir)
    if job is not None:
        process.signal_group(job.pgid or job.pid, sig, since=job.create_time)
        return
    status = runfolder.read_status(run_dir)
    if status is not None and status.pid and process.is_job_process(status.pid, started=status.started):
        process.signal_job(status.pid, sig)


def note_kill(run_dir: Path, how: str) -> None:
    with CHILDREN_LOCK:
        _KILL_NOTES[run_key(run_dir)] = how


def finalize(run_dir: Path, *, launcher_gone: bool = False) -> None:
    """Write the final state the job could not write: only once its launcher is gone (our child: reaped),
    under the run lock, and never over the job's own final word."""
    if not launcher_gone and launcher_alive(run_dir, runfolder.read_status(run_dir)):
        return
    with CHILDREN_LOCK:
        note = _KILL_NOTES.pop(run_key(run_dir), None)
    try:
        with runfolder.run_lock(run_dir):
            status = runfolder.read_status(run_dir)
            if status is not None and status.state in FINAL_STATES:
                return
            job = runfolder.read_job(run_dir)
            status = status or RunStatus(started=job.started if job else None)
            if (run_dir / runfolder.STOP).exists():
                status = dataclasses.replace(status, state="stopped",
                                             message=STOPPED_MESSAGE + (f" ({note})" if note else ""))
            else:
                status = dataclasses.replace(status, state="failed", error=DIED_MESSAGE)
            runfolder.write_status(run_dir, dataclasses.replace(status, finished=time.time()))
    except OSError:
        pass  # a full disk: readers still see the dead job as failed/stopped (as_seen)


def _reap(run_dir: Path, child: Child) -> None:
    """Wait for our child; record its end before anyone can see it dead (`reaped` is set last)."""
    try:
        child.proc.wait()
        status, job = runfolder.read_status(run_dir), runfolder.read_job(run_dir)
        taken_over = (status is not None and status.state in LIVE_STATES and status.pid and job is not None
                      and status.pid != job.pid and process.is_job_process(status.pid, started=status.started))
        if not taken_over:  # (a headless attempt or a torchrun rank still running writes its own end)
            finalize(run_dir, launcher_gone=True)
    finally:
        child.reaped.set()


def start_watchdog(run_dir: Path, deadline: float) -> None:
    key = run_key(run_dir)
    with CHILDREN_LOCK:
        running = _WATCHDOGS.get(key)
        if running is not None and running.is_alive():
            return
        thread = threading.Thread(target=_watchdog, args=(run_dir, deadline), name=f"stop-{run_dir.name}", daemon=True)
        _WATCHDOGS[key] = thread
    thread.start()


def _watchdog(run_dir: Path, deadline: float) -> None:
    """Wait for the job to end by itself; past the deadline, SIGKILL its group. Then record the end."""
    killed = False
    while running(run_dir):
        if not killed and time.time() >= deadline:
            note_kill(run_dir, f"killed after {time.time() - deadline + escalation_delay(run_dir):.0f} s: the step did not end")
            signal_run(run_dir, signal.SIGKILL)
            killed = True
        time.sleep(0.2)
    finalize(run_dir)



def register_child(run_dir: Path, proc: subprocess.Popen) -> None:
    """Keep a child this process launched and reap it the moment it exits, whoever (if anyone) watches it."""
    child = Child(proc, threading.Event())
    with CHILDREN_LOCK:
        CHILDREN[run_key(run_dir)] = child
    threading.Thread(target=_reap, args=(run_dir, child), name=f"reap-{proc.pid}", daemon=True).start()
