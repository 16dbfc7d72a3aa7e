"""Start, stop and observe training jobs. A job is a subprocess; the run folder is the only channel.

    JobManager(runs_root).start(cfg)  -> makes <runs_root>/<timestamp>-<name>/, saves config.json, launches
                                         `python -m whisper_studio train --config RUN_DIR/config.json`
    .stop(run_id) / .list_runs() / .get(run_id) / .active()

Everything a caller sees is read back from disk (runfolder.py), so a restarted app, a second app process or a
headless `python -m whisper_studio train` run are all observed the same way. What this module adds on top of
the run folder:

* One live job per runs root. Training saturates the machine, and two jobs would make both unusably slow,
  so `start` refuses while a job is alive. The check and the launch happen under an exclusive file lock on
  `<runs_root>/.jobs.lock` (util.file_lock), so two browser sessions (threads) or two app processes cannot both
  pass the check.
* Dead-job detection. A job killed by the OOM killer or SIGKILL never writes its final state; its status
  would say "running" forever. A status that says queued/running while its process is gone (or the pid now
  belongs to another process: the process was created after the run started) is rewritten as `failed`, so
  the verdict sticks for every later reader.
* Reaping. Children started in this process are kept (process-wide, so every JobManager in the app shares
  them) and waited on by a daemon thread, so an exited job never lingers as a zombie; a zombie would still
  "exist" to psutil and look alive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from whisper_studio import process, runfolder, util
from whisper_studio.config import TrainConfig
from whisper_studio.errors import ConfigError, JobError
from whisper_studio.options import command_line  # noqa: F401 (re-exported: the headless command preview)
from whisper_studio.runfolder import FINAL_STATES, LIVE_STATES, RunStatus, read_json, read_metrics  # noqa: F401

__all__ = ["RunInfo", "JobManager", "read_metrics", "tail_log", "command_line", "progress", "DIED_MESSAGE"]

DIED_MESSAGE = "the training process exited unexpectedly (see train.log)"
NEVER_STARTED_MESSAGE = "the training process was never started (the app stopped while launching it)"
# runfolder.JOB is the manager-side record of the launched process (pid + its exact creation time), next to
# status.json. The job rewrites status.json itself; that file is ours alone, so the pid-reuse check does not
# depend on the job. runfolder.STOP is written before the stop signal is sent: a job that then dies without a
# final state was stopped, not failed.

# Children this process launched, by resolved run folder: shared by every JobManager in the process.
_CHILDREN: dict[str, subprocess.Popen] = {}
_CHILDREN_LOCK = threading.Lock()


@dataclass
class RunInfo:
    run_id: str
    run_dir: Path
    state: str
    config: TrainConfig | None
    step: int = 0
    total_steps: int | None = None
    started: float | None = None
    updated: float | None = None
    error: str | None = None
    alive: bool = False
    epoch: float = 0.0
    finished: float | None = None
    message: str | None = None
    pid: int | None = None

    @property
    def name(self) -> str:
        """What the UI shows: the run name if one was given, else the folder name."""
        if self.config is not None and self.config.run_name:
            return self.config.run_name
        return self.run_id

    @property
    def has_adapter(self) -> bool:
        return (self.run_dir / runfolder.ADAPTER / "adapter_config.json").is_file()


DEFAULT_COMMAND = (sys.executable, "-m", "whisper_studio", "train")


class JobManager:
    """Start/stop/observe training subprocesses under one runs root.

    `command` replaces the job's command line before `--config RUN_DIR/config.json` (tests run a small fake
    job through it; the default is this interpreter running `-m whisper_studio train`).
    """

    def __init__(self, runs_root: str | os.PathLike | None = None, *, command: Sequence[str] | None = None):
        if runs_root is None:
            from whisper_studio.paths import runs_dir

            self.runs_root = runs_dir()
        else:
            self.runs_root = Path(runs_root).expanduser().resolve()
            self.runs_root.mkdir(parents=True, exist_ok=True)
        self.command = tuple(command) if command else DEFAULT_COMMAND
        # Re-entrant within a thread, exclusive across threads (one descriptor each) and processes.
        self._lock = util.file_lock(self.runs_root / runfolder.LOCK)

    def _locked(self):
        return self._lock

    # --- starting ------------------------------------------------------------------------------------
    def start(self, cfg: TrainConfig) -> RunInfo:
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"JobManager.start needs a TrainConfig, got {type(cfg).__name__}")
        with self._locked():
            live = [run for run in self._scan(have_lock=True) if run.alive]
            if live:
                running = live[0]
                raise JobError(
                    f"A training job is already running: {running.name} ({running.state}, step {running.step}"
                    f"{'/' + str(running.total_steps) if running.total_steps else ''}). "
                    "Wait for it to finish or stop it before starting another."
                )
            run_dir = self._new_run_dir(cfg)
            cfg = dataclasses.replace(cfg, output_dir=str(run_dir))
            cfg.save(run_dir / runfolder.CONFIG)
            started = time.time()
            runfolder.write_status(run_dir, RunStatus(state="queued", started=started, message="starting"))
            argv = [*self._job_command(cfg), "--config", str(run_dir / runfolder.CONFIG)]
            try:
                proc = self._launch(argv, run_dir)
            except OSError as exc:
                runfolder.write_status(
                    run_dir,
                    RunStatus(state="failed", started=started, finished=time.time(), error=f"could not start the training process: {exc}"),
                )
                raise JobError(f"Could not start the training process: {exc}") from None
            self._record_launch(run_dir, proc, argv, started)
        return self.get(run_dir.name)

    def _job_command(self, cfg: TrainConfig) -> list[str]:
        """One process, or one per GPU through torchrun (torch's own launcher: it starts the ranks, sets
        RANK/LOCAL_RANK/WORLD_SIZE and forwards SIGTERM to them, so Stop works the same)."""
        if cfg.num_processes > 1 and self.command == DEFAULT_COMMAND:
            return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={cfg.num_processes}", "-m", "whisper_studio", "train"]
        return list(self.command)

    def _new_run_dir(self, cfg: TrainConfig) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{_slug(cfg.run_name) if cfg.run_name else _slug(f'{cfg.language}-{_model_slug(cfg.model)}')}"
        for i in range(1, 1000):
            candidate = self.runs_root / (base if i == 1 else f"{base}-{i}")
            try:
                candidate.mkdir()  # exclusive: two starts in one second get different folders
                return candidate
            except FileExistsError:
                continue
        raise JobError(f"Could not create a run folder under {self.runs_root}.")

    def _launch(self, argv: list[str], run_dir: Path) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # the log shows progress as it happens, not in 8 KiB blocks
        # The job must import this very package even when the app was started from another directory.
        package_parent = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        # Append mode: the job may also write train.log itself; O_APPEND keeps both writers' lines whole.
        log = open(run_dir / runfolder.LOG, "ab")
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own session and process group: stop() signals the whole group (dataloader workers
                # included), and a Ctrl-C in the app's terminal does not kill the job.
                start_new_session=True,
                close_fds=True,
            )
        finally:
            log.close()  # the child holds its own descriptor
        with _CHILDREN_LOCK:
            _CHILDREN[str(run_dir.resolve())] = proc
        # Reap the child the moment it exits, whoever (if anyone) is watching it.
        threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
        return proc

    def _record_launch(self, run_dir: Path, proc: subprocess.Popen, argv: list[str], started: float) -> None:
        util.write_json_atomic(run_dir / runfolder.JOB, {"pid": proc.pid, "create_time": process.create_time(proc.pid),
                                                         "argv": argv, "started": started})
        # Record the pid in status.json unless the job has already written its own status (it would carry the
        # same pid and more news); python startup takes far longer than this, so that is belt and braces.
        current = runfolder.read_status(run_dir)
        if current is None or (current.state == "queued" and current.pid is None):
            runfolder.write_status(run_dir, RunStatus(state="queued", pid=proc.pid, started=started, message="starting"))

    # --- observing -----------------------------------------------------------------------------------
    def list_runs(self) -> list[RunInfo]:
        """Every run folder under the root, newest first (read from disk, so it survives restarts)."""
        return self._scan(have_lock=False)

    def get(self, run_id: "str | os.PathLike | RunInfo") -> RunInfo:
        return self._info(self._resolve(run_id))

    def active(self) -> RunInfo | None:
        """The live job under this root, if any."""
        live = [run for run in self._scan(have_lock=False) if run.alive]
        return live[0] if live else None

    def _scan(self, *, have_lock: bool) -> list[RunInfo]:
        runs = []
        try:
            entries = list(self.runs_root.iterdir())
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            if not ((entry / runfolder.CONFIG).exists() or (entry / runfolder.STATUS).exists()):
                continue  # not a run folder
            runs.append(self._info(entry, have_lock=have_lock))
        runs.sort(key=lambda r: (r.started or _mtime(r.run_dir), r.run_id), reverse=True)
        return runs

    def _resolve(self, run_id: "str | os.PathLike | RunInfo") -> Path:
        """A run id (folder name) under this root, a run folder path, or a RunInfo."""
        if isinstance(run_id, RunInfo):
            run_id = run_id.run_dir
        if isinstance(run_id, Path) or os.sep in str(run_id):
            path = Path(run_id).expanduser().resolve()
        else:
            name = str(run_id)
            if not name or name in (".", "..") or name.startswith("."):
                raise JobError(f"No run named {run_id!r}.")
            path = self.runs_root / name
        if not path.is_dir() or not ((path / runfolder.CONFIG).exists() or (path / runfolder.STATUS).exists()):
            raise JobError(f"No run named {str(run_id)!r} under {self.runs_root}.")
        return path

    def _info(self, run_dir: Path, *, have_lock: bool = False) -> RunInfo:
        status = runfolder.read_status(run_dir)
        config = None
        config_error = None
        try:
            config = TrainConfig.load(run_dir / runfolder.CONFIG)
        except ConfigError as exc:
            config_error = str(exc)
        if status is None:
            # A folder whose launch is in progress (start() writes status.json right after config.json), or
            # one left by a launcher that crashed in between: shown, never written to, never alive.
            fresh = time.time() - _mtime(run_dir) < 60
            status = RunStatus(
                state="queued" if fresh and config_error is None else "failed",
                error=None if fresh and config_error is None else (config_error or "the run has no status.json"),
                started=_mtime(run_dir),
            )
            alive = False
        else:
            alive = status.state in LIVE_STATES and self._process_alive(run_dir, status)
            if status.state in LIVE_STATES and not alive:
                status = self._mark_dead(run_dir, have_lock=have_lock)
                alive = status.state in LIVE_STATES  # the re-check found it alive after all
        return RunInfo(
            run_id=run_dir.name,
            run_dir=run_dir,
            state=status.state,
            config=config,
            step=status.step,
            total_steps=status.total_steps,
            started=status.started,
            updated=status.updated,
            error=status.error,
            alive=alive,
            epoch=status.epoch,
            finished=status.finished,
            message=status.message,
            pid=status.pid,
        )

    def _process_alive(self, run_dir: Path, status: RunStatus) -> bool:
        with _CHILDREN_LOCK:
            proc = _CHILDREN.get(str(run_dir.resolve()))
        if proc is not None:
            # Our own child: poll() reaps it if it exited, and is exact (no pid-reuse question).
            if proc.poll() is None:
                return True
            if status.pid in (None, proc.pid):
                return False
            # Our child is gone but the status names another process: the run was resumed headless
            # (`train --resume RUN_DIR`) in the same folder; judge that process below.
        job = read_json(run_dir / runfolder.JOB) or {}
        pid = status.pid or job.get("pid")
        if not pid:
            return False
        recorded = job.get("create_time") if job.get("pid") == pid else None
        return process.is_job_process(pid, create_time=recorded, started=status.started)

    def _mark_dead(self, run_dir: Path, *, have_lock: bool) -> RunStatus:
        """Rewrite a live-looking status whose process is gone; re-checked under the lock so a launch that is
        still recording its pid (it holds the lock) is never mistaken for a dead job."""
        ctx = contextlib.nullcontext() if have_lock else self._locked()
        with ctx:
            status = runfolder.read_status(run_dir)
            if status is None or status.state not in LIVE_STATES:
                return status or RunStatus(state="failed", error="the run has no status.json")
            if self._process_alive(run_dir, status):
                return status
            job = read_json(run_dir / runfolder.JOB)
            status.finished = time.time()
            if (run_dir / runfolder.STOP).exists():
                status.state = "stopped"
                status.message = "stopped by the user"
            else:
                status.state = "failed"
                status.error = DIED_MESSAGE if (status.pid or job) else NEVER_STARTED_MESSAGE
            return runfolder.write_status(run_dir, status)

    # --- stopping ------------------------------------------------------------------------------------
    def stop(self, run_id: "str | os.PathLike | RunInfo", grace: float = 10) -> RunInfo:
        """SIGTERM the job's process group (the job saves its adapter and writes `stopped`), wait up to `grace`
        seconds, then SIGKILL. A run that is not live is returned as it is."""
        run_dir = self._resolve(run_id)
        info = self._info(run_dir)
        if not info.alive:
            return info
        (run_dir / runfolder.STOP).write_text(f"{time.time()}\n", encoding="utf-8")
        status = runfolder.read_status(run_dir)
        job = read_json(run_dir / runfolder.JOB) or {}
        pid = (status.pid if status else None) or job.get("pid")
        if pid:
            process.signal_job(int(pid), signal.SIGTERM)
        deadline = time.monotonic() + max(0.0, grace)
        while time.monotonic() < deadline:
            status = runfolder.read_status(run_dir)
            if not self._process_alive(run_dir, status or RunStatus()):
                break
            time.sleep(0.1)
        else:
            if pid:
                process.signal_job(int(pid), signal.SIGKILL)
            # Wait briefly for the kill to land and the reaper to collect it.
            end = time.monotonic() + 5
            while time.monotonic() < end and self._process_alive(run_dir, runfolder.read_status(run_dir) or RunStatus()):
                time.sleep(0.05)
        with self._locked():
            status = runfolder.read_status(run_dir) or RunStatus()
            if status.state not in FINAL_STATES:
                # The job did not get to write its final state (killed, or stopped before its handler was in).
                status.state = "stopped"
                status.finished = time.time()
                status.message = "stopped by the user"
                runfolder.write_status(run_dir, status)
        return self._info(run_dir)


def tail_log(run_dir: str | os.PathLike, n: int = 40) -> str:
    """The last `n` lines of the run's train.log (runfolder.tail_log under the documented name)."""
    return runfolder.tail_log(run_dir, n)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _slug(text: str) -> str:
    """A folder-name-safe form of a run name; keeps non-Latin letters (and their vowel signs) readable."""
    out = []
    for ch in unicodedata.normalize("NFC", str(text).strip()):
        if ch.isalnum() or ch in "._-" or unicodedata.category(ch).startswith("M"):
            out.append(ch)
        else:
            out.append("-")
    slug = re.sub(r"-{2,}", "-", "".join(out)).strip("-.")
    return slug[:60] or "run"


def _model_slug(model: str) -> str:
    return Path(str(model).rstrip("/")).name or str(model)


# --- progress for the UI -------------------------------------------------------------------------------
def progress(run_info: RunInfo, metrics: list[dict] | None = None) -> dict[str, Any]:
    """Numbers for a progress display: step/total, fraction, elapsed and ETA (seconds), samples/s, last loss,
    last eval WER. Rates come from the train records' own `elapsed`, so they ignore model-loading time."""
    if metrics is None:
        metrics = read_metrics(run_info.run_dir)
    train, evals = runfolder.split_records(metrics)
    step = run_info.step or (train[-1].step if train else 0)
    total = run_info.total_steps
    now = time.time()
    if run_info.started is None:
        elapsed = None
    elif run_info.alive:
        elapsed = now - run_info.started
    else:
        elapsed = (run_info.finished or run_info.updated or now) - run_info.started
    seconds_per_step = None
    if len(train) >= 2 and train[-1].elapsed is not None and train[0].elapsed is not None:
        d_steps = train[-1].step - train[0].step
        d_time = train[-1].elapsed - train[0].elapsed
        if d_steps > 0 and d_time > 0:
            seconds_per_step = d_time / d_steps
    if seconds_per_step is None and train and train[-1].elapsed and train[-1].step:
        seconds_per_step = train[-1].elapsed / train[-1].step
    eta = None
    if run_info.alive and total and seconds_per_step is not None:
        eta = max(0.0, (total - step) * seconds_per_step)
    elif run_info.state in FINAL_STATES:
        eta = 0.0 if run_info.state == "finished" else None
    def last(records: list, name: str) -> Any:
        return next((getattr(r, name) for r in reversed(records) if getattr(r, name) is not None), None)

    return {
        "state": run_info.state,
        "alive": run_info.alive,
        "step": step,
        "total": total,
        "fraction": (min(1.0, step / total) if total else (1.0 if run_info.state == "finished" else 0.0)),
        "epoch": run_info.epoch or (train[-1].epoch if train else None),
        "elapsed": elapsed,
        "eta": eta,
        "seconds_per_step": seconds_per_step,
        "samples_per_second": last(train, "samples_per_second"),  # samples per second
        "loss": last(train, "loss"),
        "eval_loss": last(evals, "eval_loss"),
        "wer": last(evals, "wer"),  # a fraction
        "message": run_info.message,
        "error": run_info.error,
    }
