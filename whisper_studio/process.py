"""Is a job's process still the one we started, and how to signal it: the pid questions, without the run folder.

A pid alone is not an identity: after a job dies the kernel may hand its pid to an unrelated process. So a
process counts as the job only when its creation time matches the one recorded at launch (or, lacking that
record, when it was created no later than the run started).
"""

from __future__ import annotations

import os

# A pid whose process was created more than this many seconds after the run's `started` is a reused pid.
PID_REUSE_SLACK_S = 2.0
# Creation times recorded at launch and read back later agree to well within this (seconds).
CREATE_TIME_TOLERANCE_S = 1.0


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (it may belong to someone else: then it exists too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_job_process(pid: int, *, create_time: float | None = None, started: float | None = None) -> bool:
    """True when `pid` is alive (not a zombie) and is the process launched at `create_time` (unix seconds,
    psutil's), else created no later than `started` (the run's start, unix seconds)."""
    import psutil

    try:
        p = psutil.Process(int(pid))
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        created = p.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; we just may not look at it
    if create_time:
        return abs(created - float(create_time)) < CREATE_TIME_TOLERANCE_S
    if started is not None:
        # The job's process exists before the run's start time is recorded; one created later holds a reused pid.
        return created <= started + PID_REUSE_SLACK_S
    return True


def create_time(pid: int) -> float | None:
    """psutil's creation time of `pid`, or None when it is gone already or cannot be seen."""
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - the status pid check still works without it
        return None


def signal_job(pid: int, sig: int) -> None:
    """Signal the job's process group (it leads its own session); never our own group."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    try:
        if pgid == pid and pgid != os.getpgid(0):
            os.killpg(pgid, sig)
        else:
            # Not a group leader (a headless run started from a shell): signal the process alone.
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
