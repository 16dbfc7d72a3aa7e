"""Is a job's process still the one we started, and how to signal it: the pid questions.

A pid alone is not an identity: after a job dies the kernel may hand its pid to an unrelated process. So a
process counts as the job only when its creation time matches the one recorded at launch (or, lacking that
record, when it was created no later than the run started).

A job is a process group: the launcher (the job itself, or torchrun) leads its own session, and its ranks and
dataloader workers are members. Stop signals the group; "any member lives" is what blocks a second start.
`job_alive(run_dir)` is the one question a job asks about another attempt of its own run folder (--resume).
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


def group_members(pgid: int, *, since: float | None = None) -> list[int]:
    """Live (non-zombie) processes of process group `pgid` created no earlier than `since` (the launcher's
    creation time: an older process in a reused group number is not the job's). Never our own group."""
    if pgid <= 1 or pgid == os.getpgid(0):
        return []
    try:
        os.killpg(pgid, 0)  # cheap: does the group have any member at all?
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    import psutil

    leader_created = create_time(pgid)
    if since is not None and leader_created is not None and abs(leader_created - since) >= CREATE_TIME_TOLERANCE_S:
        return []  # the group number now belongs to a new session leader: not the job's group

    members = []
    for p in psutil.process_iter(["pid", "status", "create_time"]):
        try:
            if os.getpgid(p.info["pid"]) != pgid or p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
        except (ProcessLookupError, PermissionError):
            continue
        created = p.info["create_time"]
        if since is not None and created is not None and created < since - CREATE_TIME_TOLERANCE_S:
            continue
        members.append(p.info["pid"])
    return members


def signal_group(pgid: int, sig: int, *, since: float | None = None) -> bool:
    """Signal every process of the job's group; False when none is left. Refuses our own group."""
    if not group_members(pgid, since=since):
        return False
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def job_alive(run_dir: str | os.PathLike) -> bool:
    """Whether another attempt of this run folder still runs: its launcher (pid + exact creation time from
    `.job.json`) is not reaped, or a process of its group lives. Without a `.job.json` (a headless run) the
    status pid and start time decide. The calling process, its ancestors and its own group never count: a
    job resumed by the app finds its own launcher recorded there."""
    from whisper_studio import runfolder

    ours = _self_and_ancestors()
    job = runfolder.read_job(run_dir)
    if job is not None:
        if job.pid not in ours and is_job_process(job.pid, create_time=job.create_time, started=job.started):
            return True
        if job.pgid and job.pgid != os.getpgid(0) and job.pgid not in ours:
            return bool(group_members(job.pgid, since=job.create_time))
        return False
    status = runfolder.read_status(run_dir)
    if status is None or status.pid is None or status.state not in runfolder.LIVE_STATES or status.pid in ours:
        return False
    return is_job_process(status.pid, started=status.started)


def _self_and_ancestors() -> set[int]:
    try:
        import psutil

        return {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    except Exception:  # noqa: BLE001 - without psutil, at least never count ourselves
        return {os.getpid()}


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
