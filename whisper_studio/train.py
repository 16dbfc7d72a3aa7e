"""The training job: LoRA on a (by default 8-bit) Whisper base, driven through its run folder.

    python -m whisper_studio train --config RUN_DIR/config.json      (what jobs.py starts)
    python -m whisper_studio train --language mr --source demo --epochs 2 --out runs/mr-demo
    python -m whisper_studio train --resume RUN_DIR                  (continue from the last checkpoint)
    (the command line itself: cli/train.py; the Trainer and its callback: trainer.py; the card: modelcard.py)

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

import dataclasses
import gc
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from whisper_studio import runfolder
from whisper_studio.config import PRECISIONS, TrainConfig
from whisper_studio.errors import ConfigError, JobError, StudioError
from whisper_studio.languages import Language, resolve
from whisper_studio.modelcard import write_model_card
from whisper_studio.runfolder import RunStatus
from whisper_studio.trainer import (  # noqa: F401 (FAIL_AT_STEP_ENV re-exported for tests and drills)
    FAIL_AT_STEP_ENV,
    GENERATION_MAX_LENGTH,
    Reporter,
    StopFlag,
    StopRequested,
    build_trainer,
    fmt_seconds,
    make_callback,
    previous_elapsed,
)


# --- device, ranks, precision ---------------------------------------------------------------------------------
def dist_env() -> tuple[int, int, int]:
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



# --- data ------------------------------------------------------------------------------------------------------
def _select(ds, n: int | None, seed: int):
    """A seeded random subset (same subset on every rank and on resume)."""
    if n is None or len(ds) <= n:
        return ds
    return ds.shuffle(seed=seed).select(range(n))


def _load_data(cfg: TrainConfig, processor, language: Language, reporter: Reporter, *, with_test: bool):
    from whisper_studio import data as data_mod

    reporter.phase(f"loading data ({cfg.source.kind}, {cfg.language})")
    splits = ("train", "test") if with_test else ("train",)
    dsd = data_mod.load_source(cfg.source, splits=splits)
    if "train" not in dsd or len(dsd["train"]) == 0:
        raise ConfigError("The data source has no training clips for this language.")
    train_raw = _select(dsd["train"], cfg.max_train_samples, cfg.seed)
    reporter.phase(f"computing features for {len(train_raw)} training clips")
    prepared = data_mod.prepare(train_raw, processor, language, task=cfg.task)
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
        test_ds = data_mod.prepare(test_raw, processor, language, task=cfg.task).dataset
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
    rank, local_rank, world_size = dist_env()
    is_main = rank == 0
    stop = StopFlag()
    stop.install()

    # 1. The run folder: config.json, then status queued -> running with our pid.
    checkpoint: Path | None = None
    if resume:
        checkpoint = runfolder.last_checkpoint(run_dir)
        if checkpoint is None:
            raise JobError(f"{run_dir} has no checkpoint to resume from; start a new run instead.")
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(cfg, output_dir=str(run_dir))
    previous = runfolder.read_status(run_dir) if resume else None
    status = RunStatus(state="queued", pid=os.getpid(), started=time.time(),
                       step=previous.step if previous else 0, total_steps=previous.total_steps if previous else None,
                       epoch=previous.epoch if previous else 0.0)
    reporter = Reporter(run_dir, status, enabled=is_main)
    if is_main:
        (run_dir / runfolder.STOP).unlink(missing_ok=True)  # a stop request of an earlier attempt (resume) is done
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

        language = resolve(cfg.language)  # once: everything below takes the Language
        device = _device_for_rank(local_rank)
        precision = resolve_precision(cfg.precision, device)
        torch.manual_seed(cfg.seed)

        # 2. Data: load the source and compute log-mel features and labels once.
        from transformers import PrinterCallback

        from whisper_studio import models

        _quiet_progress_bars()

        processor = models.load_processor(cfg.model)
        train_ds, eval_ds, sizes = _load_data(cfg, processor, language, reporter, with_test=cfg.eval_each_epoch)
        summary.update(sizes)
        _check_stop(stop)

        # 3. The base model: 8-bit through bitsandbytes when asked, on this rank's own device.
        reporter.phase(f"loading {cfg.model}" + (" in 8-bit" if cfg.load_in_8bit else "") + f" on {device}")
        model = models.load_model(cfg.model, load_in_8bit=cfg.load_in_8bit, dtype=torch.float32, device=device)
        _configure_generation(model, language, cfg)
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
        trainer = build_trainer(cfg, model, processor, train_ds, eval_ds, run_dir=run_dir, device=device,
                                 precision=precision, world_size=world_size, save_steps=save_steps,
                                 max_steps=max_steps)
        samples_per_step = cfg.batch_size * cfg.grad_accum * world_size
        callback = make_callback(reporter, stop, samples_per_step=samples_per_step,
                                  elapsed_before=previous_elapsed(run_dir) if resume else 0.0,
                                  world_size=world_size, time_limit_s=time_limit_s)
        trainer.add_callback(callback)
        trainer.remove_callback(PrinterCallback)  # our callback prints one readable line per logging step
        _check_stop(stop)
        t_train = time.monotonic()
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        trained = True
        train_seconds = time.monotonic() - t_train
        done_steps = trainer.state.global_step - (runfolder.checkpoint_step(checkpoint) if checkpoint else 0)
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
            write_model_card(adapter_dir, cfg, language, summary)
        reporter.update(step=trainer.state.global_step, epoch=float(trainer.state.epoch or 0.0))
        del trainer, model
        gc.collect()

        if stopped:
            return _finish(reporter, "stopped", f"stopped at step {summary['steps']}; adapter saved")

        # 8. Evaluation of base vs adapted on the test split; optional, and stoppable (the adapter is complete).
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
                write_model_card(adapter_dir, cfg, language, summary)
        total = time.monotonic() - t_start
        limited = f" (training time limit reached at step {summary['steps']})" if summary.get("time_limited") else ""
        return _finish(reporter, "finished", f"finished in {fmt_seconds(total)}{limited}")
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


def _check_stop(stop: StopFlag) -> None:
    if stop.requested:
        raise StopRequested()


def _finish(reporter: Reporter, state: str, message: str, *, error: str | None = None) -> RunStatus:
    reporter.say(f"{state}: {message}")
    reporter.update(state=state, message=message, error=error, finished=time.time())
    return reporter.status


def _configure_generation(model, language: Language, cfg: TrainConfig) -> None:
    """Generation (evaluation during training, and the exported model) forced to the run's language and task."""
    gen = model.generation_config
    gen.language = language.whisper
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


def _final_evaluation(cfg: TrainConfig, run_dir: Path, reporter: Reporter) -> dict[str, Any]:
    """Base vs adapted WER (fractions) on the test split through evaluation.py (which writes eval.json)."""
    from whisper_studio import evaluation

    reporter.phase("evaluating base and adapted on the test split")
    t0 = time.monotonic()
    result = evaluation.evaluate_run(run_dir, split="test", max_samples=cfg.max_test_samples)
    reporter.say(f"test WER base {result.base_wer:.1%} -> adapted {result.adapted_wer:.1%} "
                 f"(normalized {result.base_wer_normalized:.1%} -> {result.adapted_wer_normalized:.1%}, n={result.n})")
    return {"base_wer": result.base_wer, "adapted_wer": result.adapted_wer,
            "base_wer_normalized": result.base_wer_normalized,
            "adapted_wer_normalized": result.adapted_wer_normalized, "eval_clips": result.n,
            "eval_seconds": round(time.monotonic() - t0, 1)}

