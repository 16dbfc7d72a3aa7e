"""Start, stop and observe training jobs. A job is a subprocess; the run folder is the only channel.

    JobManager(runs_root).start(cfg, secrets=...) -> makes <runs_root>/<timestamp>-<name>/, saves config.json,
                                         launches `python -m whisper_studio train --config RUN_DIR/config.json`
    .stop(run_id, kill=False) / .resume(run_id) / .list_runs() / .get(run_id) / .active() / .wait(run_id)

Everything a caller sees is read back from disk (runfolder.py), so a restarted app, a second app process or a
headless `python -m whisper_studio train` run are all observed the same way. What this module adds:

* One live job per runs root. Training saturates the machine, so `start` refuses while a job is alive or any
  process of its group (a torchrun rank) still runs. Check and launch happen under `<runs_root>/.jobs.lock`.
* A job is its process group (its own session). `alive` means the launcher is not reaped: our own children
  are reaped by a daemon thread (a zombie would look alive), others are judged by pid + exact creation time
  from `.job.json`, so a reused pid is never taken for the job.
* One writer of status.json at a time (runfolder.run_lock). The manager writes only before the launch,
  `stopping` when asked to stop, and the final state after the launcher is gone without writing one itself.
  Listing never writes: a dead job is shown as failed/stopped from memory, so a full or read-only disk
  cannot stop the app from listing its runs, and a malformed run folder is listed as "unreadable: <reason>".
* Stop never loses work to impatience: it asks (SIGTERM to the group; the job saves at the end of its step)
  and returns at once with `stopping`; a watchdog thread sends SIGKILL only after max(60 s, 3 x the longest
  measured step) or at once with kill=True.
* Secrets (an MDC key) go to the job as one JSON line on its stdin (`--secrets-stdin`), never through the
  environment, the command line or a file.
"""

from whisper_studio.jobs.lifecycle import DIED_MESSAGE, NEVER_STARTED_MESSAGE, escalation_delay  # noqa: F401
from whisper_studio.jobs.manager import DEFAULT_COMMAND, SECRETS_FLAG, JobManager, RunInfo  # noqa: F401
from whisper_studio.jobs.progress import progress, tail_log  # noqa: F401
from whisper_studio.options import command_line  # noqa: F401 (re-exported: the headless command preview)
from whisper_studio.runfolder import read_json, read_metrics  # noqa: F401

__all__ = ["RunInfo", "JobManager", "read_metrics", "tail_log", "command_line", "progress", "DIED_MESSAGE",
           "escalation_delay"]
