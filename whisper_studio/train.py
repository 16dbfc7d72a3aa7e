"""The training job: LoRA on a (by default 8-bit) Whisper base, driven through its run folder.

    python -m whisper_studio train --config RUN_DIR/config.json      (what jobs.py starts)
    python -m whisper_studio train --language mr --source demo --epochs 2 --out runs/mr-demo
    python -m whisper_studio train --resume RUN_DIR                  (continue from the last checkpoint)

`run_training(cfg, run_dir)` is the job itself, as numbered steps. Everything an observer needs goes through
the run folder (runfolder.py): status.json (replaced atomically), metrics.jsonl (appended), checkpoints/,
adapter/ (PEFT format + model card) and, at the end, eval.json from evaluation.py. Human-readable progress
goes to stdout, which jobs.py appends to train.log.

Signals: SIGTERM (and a first Ctrl-C) ask the job to stop at the next optimizer step; the job then saves a
checkpoint and the adapter and ends `stopped`. A failure ends `failed` with the message in status.json and
the traceback on stderr (train.log).

Multi-process: the entry works unchanged under `torchrun --nproc_per_node N` (gloo on CPU, NCCL on GPUs).
Each rank puts its base on its own device; only rank 0 writes the run folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import platform
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from whisper_studio import runfolder, sagemaker
from whisper_studio.config import LORA_TARGETS, PRECISIONS, TrainConfig
from whisper_studio.errors import ConfigError, JobError, StudioError
from whisper_studio.runfolder import RunStatus

# Fault injection for tests and drills: the job raises at this optimizer step, as a bug would.
FAIL_AT_STEP_ENV = "WHISPER_STUDIO_FAIL_AT_STEP"
# Checkpoints are LoRA weights + optimizer state (a few MB): cheap, so save often enough that a stop or a
# crash loses little, but not every step on fast hardware.
DEFAULT_SAVE_STEPS = 25
SAVE_TOTAL_LIMIT = 2
# Longest label Whisper's decoder takes (its max_target_positions); generation during evaluation stops there.
GENERATION_MAX_LENGTH = 225


class StopRequested(Exception):
    """Raised when a stop is asked for while the job cannot stop at a step boundary (e.g. final evaluation)."""


# --- signals ------------------------------------------------------------------------------------------------
class _StopFlag:
    """Set by SIGTERM/SIGINT; read by the Trainer callback at each optimizer step."""

    def __init__(self) -> None:
        self.requested = False
        self.raise_now = False  # outside training there is no step boundary: interrupt at once
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a UI worker): no signal handling
                pass

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            try:
                signal.signal(sig, handler)
            except ValueError:
                pass
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        first = not self.requested
        self.requested = True
        print(f"received {signal.Signals(signum).name}: stopping at the next step", flush=True)
        if signum == signal.SIGINT and not first:
            raise KeyboardInterrupt  # a second Ctrl-C means now
        if self.raise_now:
            raise StopRequested()


# --- device, ranks, precision ---------------------------------------------------------------------------------
def _dist_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun/accelerate's environment; (0, 0, 1) when launched alone."""
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return rank, local_rank, world


def _device_for_rank(local_rank: int) -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{local_rank}"
    return "cpu"


def cpu_has_fast_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16): autocast then roughly halves a step."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        flags = ""
    if "amx_bf16" in flags or "avx512_bf16" in flags:
        return True
    try:  # other platforms: ask oneDNN
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and platform.machine() in ("x86_64", "AMD64")
    except Exception:
        return False


def resolve_precision(precision: str, device: str) -> str:
    """'auto' -> 'bf16' where the hardware has fast bf16 (AMX/AVX512-BF16 CPUs, bf16-capable GPUs), else 'fp32'."""
    import torch

    if precision not in PRECISIONS:
        raise ConfigError(f"Precision must be one of {', '.join(PRECISIONS)} (got {precision!r}).")
    on_gpu = device.startswith("cuda")
    if precision == "auto":
        if on_gpu:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if precision == "fp16" and not on_gpu:
        raise ConfigError("fp16 mixed precision needs a GPU; on a CPU choose bf16 (or auto) or fp32.")
    if precision == "bf16" and on_gpu and not torch.cuda.is_bf16_supported():
        raise ConfigError("This GPU has no bf16 support; choose fp16 or fp32.")
    return precision


# --- run folder helpers -----------------------------------------------------------------------------------------
class _Reporter:
    """Writes status.json / metrics.jsonl and prints progress; a no-op writer on ranks other than 0."""

    def __init__(self, run_dir: Path, status: RunStatus, enabled: bool) -> None:
        self.run_dir = run_dir
        self.status = status
        self.enabled = enabled

    def update(self, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self.status, key, value)
        if self.enabled:
            runfolder.write_status(self.run_dir, self.status)

    def phase(self, message: str) -> None:
        self.say(message)
        self.update(message=message)

    def metric(self, record: dict[str, Any]) -> None:
        if self.enabled:
            runfolder.append_metric(self.run_dir, record)

    def say(self, text: str) -> None:
        if self.enabled:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _last_checkpoint(run_dir: Path) -> Path | None:
    folder = run_dir / runfolder.CHECKPOINTS
    if not folder.is_dir():
        return None
    found = []
    for child in folder.iterdir():
        name = child.name
        if child.is_dir() and name.startswith("checkpoint-") and name[len("checkpoint-"):].isdigit():
            if (child / "trainer_state.json").is_file():  # a checkpoint cut short by a kill has none
                found.append((int(name[len("checkpoint-"):]), child))
    return max(found)[1] if found else None


def _checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name[len("checkpoint-"):])


def _previous_elapsed(run_dir: Path) -> float:
    """Training seconds already spent by earlier attempts of this run (a resume continues the clock)."""
    elapsed = 0.0
    for record in runfolder.read_metrics(run_dir):
        if record.get("type") == "train" and isinstance(record.get("elapsed"), (int, float)):
            elapsed = max(elapsed, float(record["elapsed"]))
    return elapsed


# --- the Trainer callback ----------------------------------------------------------------------------------------
def _stop_file(run_dir: Path) -> Path:
    """jobs.py writes this before it signals the job: a second channel, in case a signal is missed."""
    from whisper_studio.jobs import STOP_FILE

    return run_dir / STOP_FILE


def _make_callback(reporter: _Reporter, stop: _StopFlag, *, samples_per_step: int, elapsed_before: float,
                   world_size: int, time_limit_s: float | None = None):
    stop_file = _stop_file(reporter.run_dir)

    from transformers import TrainerCallback

    fail_at = os.environ.get(FAIL_AT_STEP_ENV)
    fail_at_step = int(fail_at) if fail_at and fail_at.strip().isdigit() else None

    class RunFolderCallback(TrainerCallback):
        """Mirrors the Trainer's progress into the run folder and turns a stop request into a clean stop."""

        def __init__(self) -> None:
            self.t0 = time.monotonic()
            self.last_log_time = self.t0
            self.last_log_step: int | None = None
            self.stopped = False
            self.time_limited = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.t0 = time.monotonic()
            self.last_log_time = self.t0
            self.last_log_step = state.global_step
            reporter.update(total_steps=state.max_steps, step=state.global_step, epoch=float(state.epoch or 0.0),
                            message="training")
            reporter.say(f"training: {state.max_steps} steps, {samples_per_step} samples per step"
                         + (f", resuming at step {state.global_step}" if state.global_step else ""))

        def elapsed(self) -> float:
            return elapsed_before + (time.monotonic() - self.t0)

        def on_step_end(self, args, state, control, **kwargs):
            if fail_at_step is not None and state.global_step >= fail_at_step:
                raise RuntimeError(f"injected failure at step {state.global_step} ({FAIL_AT_STEP_ENV})")
            requested = stop.requested or stop_file.exists()
            if time_limit_s is not None and self.elapsed() >= time_limit_s and not self.stopped:
                self.time_limited = True
                requested = True
            if world_size > 1:
                requested = _any_rank(requested)  # all ranks must stop at the same step or DDP hangs
            if requested and not self.stopped:
                self.stopped = True
                control.should_training_stop = True
                control.should_save = True  # a checkpoint at the stop step, so --resume continues from here
                control.should_log = True
                reporter.say(f"stopping at step {state.global_step}"
                             + (f" (time limit of {_fmt_seconds(time_limit_s)} reached)" if self.time_limited else ""))
            if state.global_step >= state.max_steps:
                control.should_log = True  # the last step's loss always reaches metrics.jsonl
            reporter.update(step=state.global_step, epoch=float(state.epoch or 0.0))
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" not in logs:  # the end-of-training summary (train_runtime, ...) and eval logs
                return
            now = time.monotonic()
            steps = state.global_step - (self.last_log_step or 0)
            dt = now - self.last_log_time
            sps = steps * samples_per_step / dt if dt > 0 and steps > 0 else None
            self.last_log_time, self.last_log_step = now, state.global_step
            record = {
                "type": "train",
                "step": state.global_step,
                "epoch": round(float(state.epoch or 0.0), 4),
                "loss": float(logs["loss"]),
                "learning_rate": float(logs.get("learning_rate", 0.0)),
                "elapsed": round(self.elapsed(), 2),
                "samples_per_second": round(sps, 3) if sps is not None else None,
            }
            reporter.metric(record)
            reporter.say(
                f"step {state.global_step}/{state.max_steps} epoch {record['epoch']:.2f} loss {record['loss']:.4f} "
                f"lr {record['learning_rate']:.2e}" + (f" {sps:.2f} samples/s" if sps else "")
            )

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            metrics = metrics or {}
            record = {
                "type": "eval",
                "step": state.global_step,
                "epoch": round(float(state.epoch or 0.0), 4),
                "eval_loss": metrics.get("eval_loss"),
                "wer": metrics.get("eval_wer"),
            }
            reporter.metric(record)
            wer = record["wer"]
            reporter.say(f"evaluation at step {state.global_step}: loss {record['eval_loss']}"
                         + (f", WER {wer:.1%}" if isinstance(wer, (int, float)) else ""))

    return RunFolderCallback()


def _any_rank(flag: bool) -> bool:
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    backend = dist.get_backend()
    device = f"cuda:{torch.cuda.current_device()}" if backend == "nccl" else "cpu"
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


# --- data ------------------------------------------------------------------------------------------------------
def _select(ds, n: int | None, seed: int):
    """A seeded random subset (same subset on every rank and on resume)."""
    if n is None or len(ds) <= n:
        return ds
    return ds.shuffle(seed=seed).select(range(n))


def _load_data(cfg: TrainConfig, processor, reporter: _Reporter, *, with_test: bool):
    from whisper_studio import data as data_mod

    reporter.phase(f"loading data ({cfg.source.kind}, {cfg.language})")
    splits = ("train", "test") if with_test else ("train",)
    dsd = data_mod.load_source(cfg.source, splits=splits)
    if "train" not in dsd or len(dsd["train"]) == 0:
        raise ConfigError("The data source has no training clips for this language.")
    train_raw = _select(dsd["train"], cfg.max_train_samples, cfg.seed)
    reporter.phase(f"computing features for {len(train_raw)} training clips")
    prepared = data_mod.prepare(train_raw, processor, cfg.language, task=cfg.task)
    train_ds = prepared.dataset
    dropped = {"long_audio": prepared.dropped_long_audio, "long_labels": prepared.dropped_long_labels}
    if prepared.dropped_long_audio or prepared.dropped_long_labels:
        reporter.say(f"dropped {prepared.dropped_long_audio} clips over 30 s and "
                     f"{prepared.dropped_long_labels} with labels too long for the decoder")
    cfg.check_data_size(len(train_ds))
    test_ds = None
    if with_test and "test" in dsd and len(dsd["test"]):
        test_raw = _select(dsd["test"], cfg.max_test_samples, cfg.seed)
        reporter.phase(f"computing features for {len(test_raw)} test clips")
        test_ds = data_mod.prepare(test_raw, processor, cfg.language, task=cfg.task).dataset
    # Features are computed once (above); numpy format makes each epoch's reads cheap (no Python lists).
    train_ds = _numpy_format(train_ds)
    test_ds = _numpy_format(test_ds) if test_ds is not None else None
    sizes = {"train_clips": len(train_ds), "test_clips": len(test_ds) if test_ds is not None else None,
             "dropped": dropped}
    return train_ds, test_ds, sizes


def _numpy_format(ds):
    cols = [c for c in ("input_features", "labels") if c in ds.column_names]
    try:
        return ds.with_format("numpy", columns=cols, output_all_columns=False)
    except Exception:  # a collator that wants lists still works with the default format
        return ds


# --- the job --------------------------------------------------------------------------------------------------
def run_training(cfg: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False, evaluate: bool = True,
                 save_steps: int | None = None, max_steps: int | None = None,
                 time_limit_s: float | None = None) -> RunStatus:
    """Fine-tune `cfg.model` with LoRA into `run_dir`; returns the final status (also in status.json).

    Raises what made the run fail, after recording it as `failed`; a stop request (SIGTERM) returns `stopped`.
    `max_steps` caps the optimizer steps (overrides epochs); `time_limit_s` ends training at the first step past
    that many seconds of training (the run then finishes normally, adapter and evaluation included). Neither is
    part of config.json: a resumed run trains to its configured epochs.
    """
    run_dir = Path(run_dir).resolve()
    rank, local_rank, world_size = _dist_env()
    is_main = rank == 0
    stop = _StopFlag()
    stop.install()

    # 1. The run folder: config.json, then status queued -> running with our pid.
    checkpoint: Path | None = None
    if resume:
        checkpoint = _last_checkpoint(run_dir)
        if checkpoint is None:
            raise JobError(f"{run_dir} has no checkpoint to resume from; start a new run instead.")
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(cfg, output_dir=str(run_dir))
    previous = runfolder.read_status(run_dir) if resume else None
    status = RunStatus(state="queued", pid=os.getpid(), started=time.time(),
                       step=previous.step if previous else 0, total_steps=previous.total_steps if previous else None,
                       epoch=previous.epoch if previous else 0.0)
    reporter = _Reporter(run_dir, status, enabled=is_main)
    if is_main:
        _stop_file(run_dir).unlink(missing_ok=True)  # a stop request of an earlier attempt (resume) is done
        if not resume:
            cfg.save(run_dir / runfolder.CONFIG)
        reporter.update(state="queued", message="starting")
        reporter.update(state="running", message="starting")
        reporter.say(f"run folder {run_dir}" + (f", resuming from {checkpoint.name}" if checkpoint else ""))

    t_start = time.monotonic()
    summary: dict[str, Any] = {}
    trained = False
    try:
        import torch

        device = _device_for_rank(local_rank)
        precision = resolve_precision(cfg.precision, device)
        torch.manual_seed(cfg.seed)

        # 2. Data: load the source and compute log-mel features and labels once.
        from transformers import PrinterCallback

        from whisper_studio import models

        _quiet_progress_bars()

        processor = models.load_processor(cfg.model)
        train_ds, eval_ds, sizes = _load_data(cfg, processor, reporter, with_test=cfg.eval_each_epoch)
        summary.update(sizes)
        _check_stop(stop)

        # 3. The base model: 8-bit through bitsandbytes when asked, on this rank's own device.
        reporter.phase(f"loading {cfg.model}" + (" in 8-bit" if cfg.load_in_8bit else "") + f" on {device}")
        model = models.load_model(cfg.model, load_in_8bit=cfg.load_in_8bit, dtype=torch.float32, device=device)
        _configure_generation(model, processor, cfg)
        _check_stop(stop)

        # 4. LoRA (after k-bit preparation: norms in fp32, input grads for the frozen 8-bit layers).
        model = models.attach_lora(model, cfg.lora, prepare_kbit=cfg.load_in_8bit,
                                   gradient_checkpointing=_use_gradient_checkpointing(device))
        model.get_base_model().config.use_cache = False  # no KV cache while training
        trainable, total = _count_params(model)
        summary.update(trainable_params=trainable, total_params=total)
        reporter.say(f"LoRA r={cfg.lora.rank} alpha={cfg.lora.alpha} on {', '.join(cfg.lora.target_modules)}: "
                     f"{trainable:,} trainable of {total:,} parameters; precision {precision}")

        # 5. Seq2SeqTrainer with the run-folder callback.
        trainer = _build_trainer(cfg, model, processor, train_ds, eval_ds, run_dir=run_dir, device=device,
                                 precision=precision, world_size=world_size, save_steps=save_steps,
                                 max_steps=max_steps)
        samples_per_step = cfg.batch_size * cfg.grad_accum * world_size
        callback = _make_callback(reporter, stop, samples_per_step=samples_per_step,
                                  elapsed_before=_previous_elapsed(run_dir) if resume else 0.0,
                                  world_size=world_size, time_limit_s=time_limit_s)
        trainer.add_callback(callback)
        trainer.remove_callback(PrinterCallback)  # our callback prints one readable line per logging step
        _check_stop(stop)
        t_train = time.monotonic()
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        trained = True
        train_seconds = time.monotonic() - t_train
        done_steps = trainer.state.global_step - (_checkpoint_step(checkpoint) if checkpoint else 0)
        # Our own rate: the Trainer's assumes all max_steps ran, which a stop or time limit makes untrue.
        summary.update(train_seconds=round(train_seconds, 1), steps=trainer.state.global_step,
                       epochs_done=float(trainer.state.epoch or 0.0), precision=precision, device=device,
                       world_size=world_size, train_loss=float(result.training_loss),
                       samples_per_second=round(done_steps * samples_per_step / train_seconds, 3) if train_seconds else None)
        stopped = stop.requested or (callback.stopped and not callback.time_limited)
        if world_size > 1:  # every rank says what it did (rank 0's reporter speaks for the run folder only)
            print(f"rank {rank}/{world_size} on {device}: trained {done_steps} steps", flush=True)
        summary["time_limited"] = callback.time_limited

        # 6/7. The adapter in PEFT format, with its model card (rank 0 only).
        adapter_dir = run_dir / runfolder.ADAPTER
        if is_main:
            reporter.phase("saving the adapter")
            trainer.model.save_pretrained(str(adapter_dir))
            write_model_card(adapter_dir, cfg, summary)
        reporter.update(step=trainer.state.global_step, epoch=float(trainer.state.epoch or 0.0))
        del trainer, model
        gc.collect()

        if stopped:
            return _finish(reporter, "stopped", f"stopped at step {summary['steps']}; adapter saved")

        # Evaluation of base vs adapted on the test split; optional, and stoppable (the adapter is complete).
        if evaluate and is_main:
            stop.raise_now = True
            try:
                wer = _final_evaluation(cfg, run_dir, reporter)
            except StopRequested:
                return _finish(reporter, "stopped", "stopped during the final evaluation; the adapter is complete")
            finally:
                stop.raise_now = False
            if wer:
                summary.update(wer)
                write_model_card(adapter_dir, cfg, summary)
        total = time.monotonic() - t_start
        limited = f" (training time limit reached at step {summary['steps']})" if summary.get("time_limited") else ""
        return _finish(reporter, "finished", f"finished in {_fmt_seconds(total)}{limited}")
    except StopRequested:
        # Asked to stop before training began: nothing to save.
        return _finish(reporter, "stopped", "stopped before training began" if not trained else "stopped")
    except BaseException as exc:
        message = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KeyboardInterrupt):
            message = "interrupted"
        if is_main and not isinstance(exc, StudioError):
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
        _finish(reporter, "failed", message, error=message)
        raise
    finally:
        stop.restore()


def _quiet_progress_bars() -> None:
    """stdout is train.log: carriage-return progress bars would fill it with noise."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def _check_stop(stop: _StopFlag) -> None:
    if stop.requested:
        raise StopRequested()


def _finish(reporter: _Reporter, state: str, message: str, *, error: str | None = None) -> RunStatus:
    reporter.say(f"{state}: {message}")
    reporter.update(state=state, message=message, error=error, finished=time.time())
    return reporter.status


def _fmt_seconds(s: float) -> str:
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec} s" if m else f"{sec} s"


def _configure_generation(model, processor, cfg: TrainConfig) -> None:
    """Generation (evaluation during training, and the exported model) forced to the run's language and task."""
    from whisper_studio.languages import resolve

    gen = model.generation_config
    try:
        gen.language = resolve(cfg.language).whisper
    except StudioError:
        gen.language = cfg.language
    gen.task = cfg.task
    gen.forced_decoder_ids = None
    model.config.forced_decoder_ids = None
    gen.max_length = GENERATION_MAX_LENGTH


def _use_gradient_checkpointing(device: str) -> bool:
    """Checkpointing trades ~30% more compute for activation memory: worth it on a GPU, not on a CPU with RAM."""
    return device.startswith("cuda")


def _count_params(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def _build_trainer(cfg: TrainConfig, model, processor, train_ds, eval_ds, *, run_dir: Path, device: str,
                   precision: str, world_size: int, save_steps: int | None, max_steps: int | None = None):
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    from whisper_studio import data as data_mod

    steps_per_epoch = max(1, math.ceil(len(train_ds) / (cfg.batch_size * world_size)) // cfg.grad_accum)
    save_every = save_steps or min(steps_per_epoch, DEFAULT_SAVE_STEPS)
    on_gpu = device.startswith("cuda")
    do_eval = eval_ds is not None and cfg.eval_each_epoch
    args = Seq2SeqTrainingArguments(
        output_dir=str(run_dir / runfolder.CHECKPOINTS),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_steps,
        num_train_epochs=cfg.epochs,
        max_steps=max_steps if max_steps else -1,
        lr_scheduler_type="linear",
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=save_every,
        save_total_limit=SAVE_TOTAL_LIMIT,
        eval_strategy="epoch" if do_eval else "no",
        # Generation is slow: training never generates; the per-epoch evaluation does, for a WER.
        predict_with_generate=do_eval,
        generation_max_length=GENERATION_MAX_LENGTH,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not on_gpu,
        ddp_backend=("nccl" if on_gpu else "gloo") if world_size > 1 else None,
        ddp_find_unused_parameters=False if world_size > 1 else None,
        remove_unused_columns=False,  # the collator needs input_features/labels; Whisper's forward has no 'labels' peers
        label_names=["labels"],
        report_to="none",
        disable_tqdm=True,  # stdout is a log file: our callback prints one line per logging step instead
        seed=cfg.seed,
        dataloader_num_workers=0,
        dataloader_pin_memory=on_gpu,
    )
    collator = data_mod.DataCollatorSpeechSeq2SeqWithPadding(
        processor=processor, decoder_start_token_id=model.get_base_model().config.decoder_start_token_id
    )
    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds if do_eval else None,
        data_collator=collator,
        processing_class=processor,
        compute_metrics=_wer_metric(processor) if do_eval else None,
    )
    # Whisper's forward takes **kwargs, so the Trainer assumes it normalizes its loss by num_items_in_batch; it
    # does not (plain mean cross-entropy). Left alone, the Trainer then skips the division by grad_accum and
    # multiplies by the number of processes: gradients (and logged losses) grad_accum x / world_size x too big.
    trainer.model_accepts_loss_kwargs = False
    return trainer


def _wer_metric(processor):
    import jiwer
    import numpy as np

    tokenizer = processor.tokenizer

    def compute(pred) -> dict[str, float]:
        pred_ids = pred.predictions
        label_ids = np.where(pred.label_ids == -100, tokenizer.pad_token_id, pred.label_ids)
        hyps = tokenizer.batch_decode(pred_ids, skip_special_tokens=True)
        refs = tokenizer.batch_decode(label_ids, skip_special_tokens=True)
        pairs = [(r.strip(), h.strip()) for r, h in zip(refs, hyps) if r.strip()]
        if not pairs:
            return {"wer": float("nan")}
        return {"wer": float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]))}

    return compute


def _final_evaluation(cfg: TrainConfig, run_dir: Path, reporter: _Reporter) -> dict[str, Any] | None:
    """Base vs adapted WER on the test split through evaluation.py (which writes eval.json)."""
    try:
        from whisper_studio import evaluation
    except ModuleNotFoundError as exc:
        if exc.name == "whisper_studio.evaluation":
            reporter.say("evaluation module not available; skipping the final evaluation")
            return None
        raise
    reporter.phase("evaluating base and adapted on the test split")
    t0 = time.monotonic()
    result = evaluation.evaluate_run(run_dir, split="test", max_samples=cfg.max_test_samples)
    reporter.say(f"test WER base {result.base_wer:.1%} -> adapted {result.adapted_wer:.1%} "
                 f"(normalized {result.base_wer_normalized:.1%} -> {result.adapted_wer_normalized:.1%}, n={result.n})")
    return {"base_wer": result.base_wer, "adapted_wer": result.adapted_wer,
            "base_wer_normalized": result.base_wer_normalized,
            "adapted_wer_normalized": result.adapted_wer_normalized, "eval_clips": result.n,
            "eval_seconds": round(time.monotonic() - t0, 1)}


# --- model card -------------------------------------------------------------------------------------------------
def write_model_card(adapter_dir: Path, cfg: TrainConfig, summary: dict[str, Any]) -> Path:
    """README.md next to the adapter: what it was trained from, on what, how, and how well."""
    try:
        from whisper_studio.languages import resolve

        lang = resolve(cfg.language)
        lang_name, whisper_code = lang.english, lang.whisper
    except Exception:
        lang_name, whisper_code = cfg.language, cfg.language
    src = cfg.source
    source_text = {"demo": "synthetic eSpeak NG demo corpus (robotic speech, Common Voice layout)",
                   "cv-folder": f"local Common Voice release ({src.path})",
                   "mdc": f"Mozilla Data Collective dataset {src.dataset_id}",
                   "hub": f"Hugging Face dataset {src.dataset_id}"}.get(src.kind, src.kind)

    def pct(key: str) -> str:
        value = summary.get(key)
        return f"{value:.1%}" if isinstance(value, (int, float)) and not math.isnan(value) else "not evaluated"

    lines = [
        "---",
        f"base_model: {cfg.model}",
        "library_name: peft",
        f"language: [{whisper_code}]",
        "pipeline_tag: automatic-speech-recognition",
        "tags: [whisper, lora, peft, whisper-studio" + (", synthetic-data" if src.kind == "demo" else "") + "]",
        "---",
        "",
        f"# Whisper LoRA adapter: {lang_name} ({cfg.language})",
        "",
        f"A LoRA adapter for `{cfg.model}` trained with Whisper Studio"
        + (" on a base loaded in 8-bit (bitsandbytes)" if cfg.load_in_8bit else "") + ".",
        "Load it with `PeftModel.from_pretrained(WhisperForConditionalGeneration.from_pretrained(BASE), "
        "'adapter')`; generate with `language=\"" + whisper_code + f"\", task=\"{cfg.task}\"`.",
        "",
        "## Data",
        f"- Source: {source_text}",
        f"- Training clips: {summary.get('train_clips', '?')}"
        + (f" (at most {cfg.max_train_samples} requested)" if cfg.max_train_samples else ""),
        f"- Test clips evaluated: {summary.get('eval_clips', 'none')}",
        "",
        "## Training",
        "| setting | value |",
        "| --- | --- |",
        f"| LoRA rank / alpha / dropout | {cfg.lora.rank} / {cfg.lora.alpha} / {cfg.lora.dropout} |",
        f"| target modules | {', '.join(cfg.lora.target_modules)} |",
        f"| bias | {cfg.lora.bias} |",
        f"| epochs | {cfg.epochs} (done: {summary.get('epochs_done', 0):.2f}) |",
        f"| steps | {summary.get('steps', '?')} |",
        f"| batch size x grad accum x processes | {cfg.batch_size} x {cfg.grad_accum} x {summary.get('world_size', 1)} |",
        f"| learning rate / warm-up steps | {cfg.learning_rate} / {cfg.warmup_steps} |",
        f"| precision | {summary.get('precision', cfg.precision)}{' autocast' if summary.get('precision') == 'bf16' else ''}"
        f"{', base in 8-bit' if cfg.load_in_8bit else ''} |",
        f"| device | {summary.get('device', '?')} |",
        f"| training time | {_fmt_seconds(summary['train_seconds']) if 'train_seconds' in summary else '?'} |",
        f"| throughput | {summary.get('samples_per_second') or '?'} samples/s |",
        f"| final training loss | {summary.get('train_loss', float('nan')):.4f} |",
        f"| trainable parameters | {summary.get('trainable_params', 0):,} of {summary.get('total_params', 0):,} |",
        f"| seed | {cfg.seed} |",
        "",
        "## Evaluation (test split, greedy decoding)",
        "| | base | adapted |",
        "| --- | --- | --- |",
        f"| WER | {pct('base_wer')} | {pct('adapted_wer')} |",
        f"| WER, normalized text | {pct('base_wer_normalized')} | {pct('adapted_wer_normalized')} |",
        "",
    ]
    if src.kind == "demo":
        lines += ["The training data is synthetic (eSpeak NG). The adapter learns that voice; it shows the "
                  "mechanism and does not improve accuracy on real speech.", ""]
    path = adapter_dir / "README.md"
    adapter_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --- command line -----------------------------------------------------------------------------------------------
# Flag -> (TrainConfig field path, type). `None` defaults let a flag override a --config file only when given.
_FLAG_FIELDS = {
    "model": ("model", str), "language": ("language", str), "source": ("source.kind", str),
    "path": ("source.path", str), "dataset_id": ("source.dataset_id", str), "rank": ("lora.rank", int),
    "alpha": ("lora.alpha", float), "dropout": ("lora.dropout", float), "epochs": ("epochs", float),
    "batch_size": ("batch_size", int), "grad_accum": ("grad_accum", int), "learning_rate": ("learning_rate", float),
    "warmup_steps": ("warmup_steps", int), "max_train_samples": ("max_train_samples", int),
    "max_test_samples": ("max_test_samples", int), "precision": ("precision", str), "seed": ("seed", int),
    "logging_steps": ("logging_steps", int), "task": ("task", str), "run_name": ("run_name", str),
    "audio_column": ("source.audio_column", str), "text_column": ("source.text_column", str),
    "hub_config": ("source.hub_config", str), "lora_bias": ("lora.bias", str),
}


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="fine-tune a Whisper model with LoRA into a run folder",
        description="Fine-tune Whisper with LoRA (base in 8-bit by default). Give a --config file (a run "
        "folder's config.json) or the settings as flags (flags override the file); --resume RUN_DIR continues "
        "a run from its last checkpoint.",
    )
    p.add_argument("--config", metavar="FILE", help="a TrainConfig JSON file (e.g. RUN_DIR/config.json)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue RUN_DIR from its last checkpoint, same config")
    p.add_argument("--out", metavar="RUN_DIR", help="the run folder (default: the config's output_dir, else a new "
                   "folder under the runs directory)")
    p.add_argument("--model", help="bundled/whisper-base, a hub id or a local folder")
    p.add_argument("--language", help="Common Voice locale, e.g. mr")
    p.add_argument("--source", choices=("demo", "cv-folder", "mdc", "hub"), help="data source kind")
    p.add_argument("--path", help="cv-folder: the Common Voice release folder")
    p.add_argument("--dataset-id", help="mdc / hub: the dataset id")
    p.add_argument("--audio-column", help="hub: the audio column (audio)")
    p.add_argument("--text-column", help="hub: the transcript column (sentence)")
    p.add_argument("--hub-config", help="hub: the dataset configuration name")
    p.add_argument("--rank", type=int, help="LoRA rank (32)")
    p.add_argument("--alpha", type=float, help="LoRA alpha (64)")
    p.add_argument("--dropout", type=float, help="LoRA dropout (0.05)")
    p.add_argument("--lora-bias", choices=("none", "all", "lora_only"), help="LoRA bias (none)")
    p.add_argument("--target-modules", nargs="+", metavar="MODULE",
                   help=f"LoRA target modules among {', '.join(LORA_TARGETS)} (q_proj v_proj); commas work too")
    p.add_argument("--epochs", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--max-test-samples", type=int)
    p.add_argument("--logging-steps", type=int)
    p.add_argument("--task", choices=("transcribe", "translate"))
    p.add_argument("--run-name")
    p.add_argument("--no-8bit", action="store_true", help="load the base in full precision instead of 8-bit")
    p.add_argument("--precision", choices=PRECISIONS, help="auto (bf16 where the hardware is fast at it) | fp32 | bf16 | fp16")
    p.add_argument("--seed", type=int)
    p.add_argument("--eval-each-epoch", action="store_true", help="evaluate loss and WER on the test split each epoch")
    p.add_argument("--no-eval", action="store_true", help="skip the base-vs-adapted evaluation at the end")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (overrides --epochs; not saved in config.json)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="end training at the first step past this many seconds; adapter and evaluation follow")
    p.add_argument("--save-steps", type=int, help=f"checkpoint every N steps (default: each epoch, at most every {DEFAULT_SAVE_STEPS})")
    p.set_defaults(func=_cli_train)


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, Path]:
    """The TrainConfig and run folder that the command line describes."""
    from whisper_studio.paths import runs_dir

    data: dict[str, Any] = {}
    config_path = None
    if args.config:
        config_path = Path(args.config)
        data = TrainConfig.load(config_path).to_dict()
    for flag, (field_path, kind) in _FLAG_FIELDS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if field_path == "lora.alpha" and float(value).is_integer():
            value = int(value)
        _set_path(data, field_path, value)
    if args.target_modules:
        modules = [m for item in args.target_modules for m in item.replace(",", " ").split()]
        _set_path(data, "lora.target_modules", modules)
    if args.no_8bit:
        data["load_in_8bit"] = False
    if args.eval_each_epoch:
        data["eval_each_epoch"] = True
    if "source" in data and "language" in data:
        data["source"].setdefault("language", data["language"])
    elif "language" in data:
        data.setdefault("source", {})["language"] = data["language"]
    cfg = TrainConfig.from_dict(data)

    if args.out:
        run_dir = Path(args.out)
    elif cfg.output_dir:
        run_dir = Path(cfg.output_dir)
    elif config_path is not None and (config_path.parent / runfolder.STATUS).exists():
        run_dir = config_path.parent  # a run folder's own config.json
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = runs_dir() / f"{stamp}-{cfg.language}-{Path(cfg.model).name}"
    return cfg, run_dir


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        data = data.setdefault(key, {})
    data[keys[-1]] = value


def _quiet_library_warnings() -> None:
    """train.log is read by people in the UI: keep out warnings about the libraries' own internals."""
    import logging
    import warnings

    # bitsandbytes looks for optional CPU 4-bit kernels we never use; transformers deprecates a name peft calls.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)


def _cli_train(args: argparse.Namespace) -> int:
    _quiet_library_warnings()
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / runfolder.CONFIG).is_file():
            raise JobError(f"{run_dir} is not a run folder (no {runfolder.CONFIG}).")
        status = runfolder.read_status(run_dir)
        if status and status.state == "running" and status.pid and _pid_alive(status.pid) and status.pid != os.getpid():
            raise JobError(f"{run_dir} is still running (pid {status.pid}); stop it before resuming.")
        cfg = TrainConfig.load(run_dir / runfolder.CONFIG)
        resume = True
    else:
        sm_env = sagemaker.environment()
        if sm_env is not None:  # inside a SageMaker training job: its channels and output folders by default
            sagemaker.apply_defaults(args, sm_env)
        cfg, run_dir = config_from_args(args)
        resume = False
    try:
        status = run_training(cfg, run_dir, resume=resume, evaluate=not args.no_eval, save_steps=args.save_steps,
                              max_steps=args.max_steps, time_limit_s=args.time_limit)
    except StudioError:
        raise  # cli.main prints the message and exits 2
    except Exception:
        return 1  # traceback already on stderr; status.json says failed
    if _dist_env()[0] == 0:
        sm_env = sagemaker.environment()
        if sm_env is not None:
            sagemaker.publish(run_dir, sm_env)  # SageMaker uploads SM_MODEL_DIR and the output dir to S3
        print(json.dumps({"run_dir": str(run_dir), "state": status.state, "step": status.step}), flush=True)
    return 0 if status.state in ("finished", "stopped") else 1


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
