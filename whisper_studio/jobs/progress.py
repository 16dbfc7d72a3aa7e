"""Numbers for a progress display, and the log tail, read from a run folder."""

from __future__ import annotations

import os
import time
from typing import Any

from whisper_studio import runfolder
from whisper_studio.jobs.manager import RunInfo
from whisper_studio.runfolder import FINAL_STATES


def tail_log(run_dir: str | os.PathLike, n: int = 40) -> str:
    """The last `n` lines of the run's train.log (runfolder.tail_log under the documented name)."""
    return runfolder.tail_log(run_dir, n)



def progress(run_info: RunInfo, metrics: list[dict] | None = None) -> dict[str, Any]:
    """Numbers for a progress display: step/total, fraction, elapsed and ETA (seconds), samples/s, last loss,
    last eval WER. Rates come from the train records' own `elapsed`, so they ignore model-loading time."""
    if metrics is None:
        metrics = runfolder.read_metrics(run_info.run_dir)
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
