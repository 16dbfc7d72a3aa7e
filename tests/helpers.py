"""Helpers shared by the tests: a run folder as the training job writes it, waiting for a condition."""

from __future__ import annotations

import time

from whisper_studio import runfolder
from whisper_studio.config import LoraSpec, SourceConfig, TrainConfig
from whisper_studio.runfolder import RunStatus


def no_progress(*args, **kwargs):
    return None


def make_run(root, name, *, state="running", step=3, total=10, losses=(2.5, 2.1, 1.7), pid=None, adapter=False,
             model="bundled/whisper-base", evals=()):
    """A run folder as the training job writes it. `pid` of this test process makes a live-looking job."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    cfg = TrainConfig(model=model, language="en", source=SourceConfig(kind="demo", language="en"),
                      lora=LoraSpec(), epochs=2, batch_size=4, max_train_samples=40, output_dir=str(run_dir))
    cfg.save(run_dir / runfolder.CONFIG)
    # A live run must look started after this process was created (jobs.py treats older pids as reused).
    started = time.time() if pid else time.time() - 30
    runfolder.write_status(run_dir, RunStatus(state=state, pid=pid, step=step, total_steps=total, started=started,
                                              message="training" if state == "running" else None))
    for i, loss in enumerate(losses, 1):
        runfolder.append_metric(run_dir, {"type": "train", "step": i, "epoch": i / 5, "loss": loss,
                                          "learning_rate": 1e-3, "elapsed": 2.0 * i, "samples_per_second": 2.0})
    for step, eval_loss, wer in evals:
        runfolder.append_metric(run_dir, {"type": "eval", "step": step, "epoch": 1.0, "eval_loss": eval_loss,
                                          "wer": wer})
    (run_dir / runfolder.LOG).write_text("loading model\nstep 1\nstep 2\nstep 3 loss 1.7\n", encoding="utf-8")
    if adapter:
        (run_dir / "adapter").mkdir()
        (run_dir / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    return run_dir



def wait_until(predicate, timeout=20.0, every=0.05):
    """The predicate's first truthy value, polling every `every` s; AssertionError after `timeout` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
