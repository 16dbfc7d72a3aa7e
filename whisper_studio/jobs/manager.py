"""JobManager: start, stop, resume and observe the training jobs of one runs root (see the package docstring)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from whisper_studio import process, runfolder, util
from whisper_studio.config import TrainConfig
from whisper_studio.errors import JobError
from whisper_studio.jobs import lifecycle
from whisper_studio.runfolder import LIVE_STATES, RunStatus

SECRETS_FLAG = "--secrets-stdin"


@dataclass
class RunInfo:
    run_id: str
    run_dir: Path
    state: str  # runfolder.STATES, or "unreadable" (then `error` says why)
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
        self._lock = util.file_lock(self.runs_root / runfolder.ROOT_LOCK)

    # --- starting ------------------------------------------------------------------------------------
    def start(self, cfg: TrainConfig, *, secrets: Mapping[str, str] | None = None, resume: bool = False) -> RunInfo:
        """Launch a new run (or, with resume=True, relaunch the run folder cfg.output_dir from its checkpoint).
        `secrets` reach the job on its stdin only."""
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"JobManager.start needs a TrainConfig, got {type(cfg).__name__}")
        secrets = _checked_secrets(secrets)
        with self._lock:
            # 1. One job at a time: refuse while a run is alive or any of its processes is still exiting.
            self._refuse_if_busy()
            # 2. The run folder: a new one, or the stopped/failed one to resume.
            started = time.time()
            if resume:
                run_dir = self._resolve(cfg.output_dir or "")
                self._prepare_resume(run_dir)
                argv = [*self._job_command(cfg), "--resume", str(run_dir)]
            else:
                run_dir = self._new_run_dir(cfg, started)
                argv = [*self._job_command(cfg), "--config", str(run_dir / runfolder.CONFIG)]
            if secrets:
                argv.append(SECRETS_FLAG)
            # 3. Launch, and record the process (pid, creation time, group) next to status.json.
            try:
                proc = self._launch(argv, run_dir, secrets)
            except OSError as exc:
                with runfolder.run_lock(run_dir):
                    runfolder.write_status(run_dir, RunStatus(state="failed", started=started, finished=time.time(),
                                                              error=f"could not start the training process: {exc}"))
                raise JobError(f"Could not start the training process: {exc}") from None
            runfolder.write_job(run_dir, runfolder.JobRecord(pid=proc.pid, create_time=process.create_time(proc.pid),
                                                             pgid=proc.pid, argv=argv, started=started))
        return self.get(run_dir.name)

    def resume(self, run_id: "str | os.PathLike | RunInfo", *, secrets: Mapping[str, str] | None = None) -> RunInfo:
        """Relaunch a stopped or failed run from its last checkpoint (JobError "nothing saved yet" without one)."""
        run_dir = self._resolve(run_id)
        cfg = TrainConfig.load(run_dir / runfolder.CONFIG)
        return self.start(dataclasses.replace(cfg, output_dir=str(run_dir)), secrets=secrets, resume=True)

    def _refuse_if_busy(self) -> None:
        for run in self._scan():
            if run.alive:
                raise JobError(
                    f"A training job is already running: {run.name} ({run.state}, step {run.step}"
                    f"{'/' + str(run.total_steps) if run.total_steps else ''}). "
                    "Wait for it to finish or stop it before starting another."
                )
            stray = lifecycle.stray_processes(run.run_dir)
            if stray:
                raise JobError(
                    f"The processes of {run.name} are still exiting (pids {', '.join(map(str, stray[:8]))}). "
                    "Wait for them, or stop the run again with kill, before starting another."
                )

    def _prepare_resume(self, run_dir: Path) -> None:
        info = self._info(run_dir)
        if info.state == "finished":
            raise JobError(f"{info.name} has finished; there is nothing to resume.")
        if info.state not in ("stopped", "failed"):
            raise JobError(f"{info.name} is {info.state}; only a stopped or failed run can be resumed.")
        if runfolder.last_checkpoint(run_dir) is None:
            raise JobError(f"{info.name} cannot be resumed: nothing saved yet (no checkpoint in "
                           f"{run_dir / runfolder.CHECKPOINTS}). Start a new run instead.")
        (run_dir / runfolder.STOP).unlink(missing_ok=True)  # the earlier attempt's stop request is done
        with runfolder.run_lock(run_dir):
            status = runfolder.read_status(run_dir) or RunStatus()
            runfolder.write_status(run_dir, dataclasses.replace(status, state="queued", error=None, finished=None,
                                                                 message="resuming"))

    def _job_command(self, cfg: TrainConfig) -> list[str]:
        """One process, or one per GPU through torchrun (torch's own launcher: it starts the ranks in its
        process group and sets RANK/LOCAL_RANK/WORLD_SIZE; Stop signals the whole group)."""
        if cfg.num_processes > 1 and self.command == DEFAULT_COMMAND:
            return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={cfg.num_processes}", "-m", "whisper_studio", "train"]
        return list(self.command)

    def _new_run_dir(self, cfg: TrainConfig, started: float) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{_slug(cfg.run_name) if cfg.run_name else _slug(f'{cfg.language}-{_model_slug(cfg.model)}')}"
        for i in range(1, 1000):
            candidate = self.runs_root / (base if i == 1 else f"{base}-{i}")
            try:
                candidate.mkdir()  # exclusive: two starts in one second get different folders
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise JobError(f"Could not create a run folder under {self.runs_root}: {exc.strerror or exc}.") from None
        else:
            raise JobError(f"Could not create a run folder under {self.runs_root}.")
        try:
            cfg = dataclasses.replace(cfg, output_dir=str(candidate))
            cfg.save(candidate / runfolder.CONFIG)
            runfolder.write_status(candidate, RunStatus(state="queued", started=started, message="starting"))
        except OSError as exc:
            for leftover in candidate.iterdir():
                leftover.unlink(missing_ok=True)
            candidate.rmdir()
            raise JobError(f"Could not write the run folder {candidate}: {exc.strerror or exc}.") from None
        return candidate

    def _launch(self, argv: list[str], run_dir: Path, secrets: dict[str, str]) -> subprocess.Popen:
        env = dict(os.environ)  # a copy: the app's own environment is never changed
        env["PYTHONUNBUFFERED"] = "1"  # the log shows progress as it happens, not in 8 KiB blocks
        # The job must import this very package even when the app was started from another directory.
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        # Append mode: the job may also write train.log itself; O_APPEND keeps both writers' lines whole.
        log = open(run_dir / runfolder.LOG, "ab")
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if secrets else subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own session and process group: stop() signals the whole group (ranks and dataloader
                # workers included), and a Ctrl-C in the app's terminal does not kill the job.
                start_new_session=True,
                close_fds=True,
            )
        finally:
            log.close()  # the child holds its own descriptor
        if secrets:
            # One line into the pipe buffer (far below its 64 KiB), then EOF; a job that died already is
            # reported by the reaper like any other early exit.
            try:
                proc.stdin.write((json.dumps(secrets) + "\n").encode("utf-8"))
                proc.stdin.close()
            except BrokenPipeError:
                pass
        lifecycle.register_child(run_dir, proc)
        return proc

    # --- observing -----------------------------------------------------------------------------------
    def list_runs(self) -> list[RunInfo]:
        """Every run folder under the root, newest first (read from disk, so it survives restarts). Never
        writes, never raises on a bad folder."""
        return self._scan()

    def get(self, run_id: "str | os.PathLike | RunInfo") -> RunInfo:
        return self._info(self._resolve(run_id))

    def active(self) -> RunInfo | None:
        """The live job under this root, if any."""
        live = [run for run in self._scan() if run.alive]
        return live[0] if live else None

    def wait(self, run_id: "str | os.PathLike | RunInfo", timeout: float | None = None) -> RunInfo:
        """Block until the run is no longer alive and none of its processes is left (or `timeout` s)."""
        run_dir = self._resolve(run_id)
        end = None if timeout is None else time.monotonic() + timeout
        while (self._info(run_dir).alive or lifecycle.stray_processes(run_dir)) and (end is None or time.monotonic() < end):
            time.sleep(0.1)
        return self._info(run_dir)

    def _scan(self) -> list[RunInfo]:
        runs = []
        try:
            entries = list(self.runs_root.iterdir())
        except OSError:
            return []
        for entry in entries:
            try:
                if entry.name.startswith(".") or not entry.is_dir():
                    continue
                if not ((entry / runfolder.CONFIG).exists() or (entry / runfolder.STATUS).exists()):
                    continue  # not a run folder
                runs.append(self._info(entry))
            except Exception as exc:  # noqa: BLE001 - one bad folder never hides the others
                runs.append(RunInfo(run_id=entry.name, run_dir=entry, state=runfolder.UNREADABLE, config=None,
                                    error=f"unreadable: {exc}"))
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

    def _info(self, run_dir: Path) -> RunInfo:
        """The run as a reader sees it: read only, so it works on a full or read-only disk."""
        config = config_error = None
        try:
            config = TrainConfig.load(run_dir / runfolder.CONFIG)
        except Exception as exc:  # noqa: BLE001 - ConfigError, or a file no reader could decode
            config_error = str(exc)
        unreadable = None
        try:
            status = runfolder.load_status(run_dir)
        except runfolder.Unreadable as exc:
            status, unreadable = None, f"unreadable: {exc}"
        alive = lifecycle.launcher_alive(run_dir, status)
        if unreadable:
            status = RunStatus(state=runfolder.UNREADABLE, error=unreadable, started=_mtime(run_dir))
        elif status is None:
            # A folder whose launch is in progress (start() writes status.json right after config.json), or
            # one left by a launcher that crashed in between: shown, never written to.
            fresh = time.time() - _mtime(run_dir) < 60
            status = RunStatus(
                state="queued" if fresh and config_error is None else "failed",
                error=None if fresh and config_error is None else (config_error or "the run has no status.json"),
                started=_mtime(run_dir),
            )
        elif status.state in LIVE_STATES:
            status = lifecycle.as_seen(run_dir, status, alive)
        job = runfolder.read_job(run_dir)
        return RunInfo(
            run_id=run_dir.name, run_dir=run_dir, state=status.state, config=config, step=status.step,
            total_steps=status.total_steps, started=status.started, updated=status.updated, error=status.error,
            alive=alive, epoch=status.epoch, finished=status.finished, message=status.message,
            pid=status.pid or (job.pid if job else None),
        )

    # --- stopping ------------------------------------------------------------------------------------
    def stop(self, run_id: "str | os.PathLike | RunInfo", *, kill: bool = False, grace: float | None = None) -> RunInfo:
        """Ask the job to stop (SIGTERM to its process group: it saves its adapter at the end of the step and
        writes `stopped`) and return at once with state `stopping`. A watchdog sends SIGKILL to the group after
        `grace` seconds (default escalation_delay: max(60 s, 3 x the measured step time)); kill=True kills now.
        A run that is not live is returned as it is."""
        run_dir = self._resolve(run_id)
        info = self._info(run_dir)
        if not info.alive and not lifecycle.stray_processes(run_dir):
            return info
        requested = lifecycle.request_stop(run_dir)
        if kill:
            lifecycle.note_kill(run_dir, "killed at once")
        lifecycle.signal_run(run_dir, signal.SIGKILL if kill else signal.SIGTERM)
        if kill:
            end = time.monotonic() + lifecycle.KILL_WAIT_S
            while lifecycle.running(run_dir) and time.monotonic() < end:
                time.sleep(0.05)
            lifecycle.finalize(run_dir)
        delay = lifecycle.escalation_delay(run_dir) if grace is None else max(0.0, grace)
        lifecycle.start_watchdog(run_dir, requested + delay)  # with kill too: it finishes the job of a slow kill
        return self._info(run_dir)


def _checked_secrets(secrets: Mapping[str, str] | None) -> dict[str, str]:
    if not secrets:
        return {}
    out = {}
    for key, value in secrets.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("secrets must map names to strings")
        if value:
            out[key] = value
    return out


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


