"""The training job: LoRA on a Whisper base (8-bit on CUDA by default), driven through its run folder.

    python -m whisper_studio train --config RUN_DIR/config.json      (what jobs.py starts)
    python -m whisper_studio train --language mr --source demo --epochs 2 --out runs/mr-demo
    python -m whisper_studio train --resume RUN_DIR                  (continue from the last checkpoint)
    (the command line itself: cli/train.py; the Trainer and its callback: trainer.py; the card: modelcard.py)

`run_training(cfg, run_dir)` is the job itself, as numbered steps. Everything an observer needs goes through
the run folder (runfolder.py): status.json (replaced atomically), metrics.jsonl (appended), checkpoints/,
adapter/ (PEFT format + model card) and, at the end, eval.json from evaluation.py. Human-readable progress
goes to stdout, which jobs.py appends to train.log.

Signals: SIGTERM, a first Ctrl-C or the manager's stop file ask the job to stop after the current optimizer
step; the job then saves a checkpoint and the adapter and ends `stopped`. A failure (a full disk included) ends
`failed` with the message in status.json and the traceback on stderr (train.log).

Multi-process: the entry works unchanged under `torchrun --nproc_per_node N` (gloo on CPU, NCCL on GPUs).
Each rank puts its base on its own device; only rank 0 writes the run folder.
"""

from __future__ import annotations

import dataclasses
import errno
import gc
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from whisper_studio import runfolder
from whisper_studio.config import (TrainConfig, check_run_limits, cpu_has_fast_bf16,  # noqa: F401 (re-exported)
                                   resolve_8bit, resolve_precision)
from whisper_studio.errors import ConfigError, DataSourceError, JobError, StudioError
from whisper_studio.languages import Language, resolve
from whisper_studio.modelcard import write_model_card
from whisper_studio.runfolder import RunStatus
from whisper_studio.trainer import (  # noqa: F401 (FAIL_AT_STEP_ENV re-exported for tests and drills)
    FAIL_AT_STEP_ENV, GENERATION_MAX_LENGTH, Probe, Reporter, StopFlag, StopRequested, build_trainer, check_space,
    checkpoint_bytes, drop_partial_checkpoints, fmt_seconds, free_bytes, is_disk_full, make_callback,
    no_space_message, previous_elapsed, record_failure)


# --- device and ranks ---------------------------------------------------------------------------------
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


# --- data ------------------------------------------------------------------------------------------------------
def _select(ds, n: int | None, seed: int):
    """A seeded random subset (same subset on every rank and on resume)."""
    if n is None or len(ds) <= n:
        return ds
    return ds.shuffle(seed=seed).select(range(n))


def _load_data(cfg: TrainConfig, processor, language: Language, reporter: Reporter, *, need_test: bool,
               want_test: bool, api_key: str | None):
    """Every split the run needs, loaded and checked before step 1: train always; test when an evaluation
    needs it (a missing one fails now, not after training), else when the probe can use it."""
    from whisper_studio import data as data_mod

    reporter.phase(f"loading data ({cfg.source.kind}, {cfg.language})")
    report = data_mod.LoadReport()
    splits = ("train", "test") if need_test or want_test else ("train",)
    try:
        dsd = data_mod.load_source(cfg.source, splits=splits, api_key=api_key, report=report)
    except DataSourceError:
        if need_test or not want_test:
            raise
        report = data_mod.LoadReport()  # the probe is optional: train without it
        dsd = data_mod.load_source(cfg.source, splits=("train",), api_key=api_key, report=report)
    if "train" not in dsd or len(dsd["train"]) == 0:
        raise ConfigError("The data source has no training clips for this language.")
    if need_test and ("test" not in dsd or len(dsd["test"]) == 0):
        raise ConfigError("The data source has no test clips, which the evaluation after training needs; add a "
                          "test split, or train without it (--no-eval, final evaluation clips 0).")
    train_raw = _select(dsd["train"], cfg.max_train_samples, cfg.seed)
    reporter.phase(f"computing features for {len(train_raw)} training clips")
    prepared = data_mod.prepare(train_raw, processor, language, task=cfg.task)
    train_ds = prepared.dataset
    skipped = _skipped_counts(report, prepared)
    dropped = {"long_audio": prepared.dropped_long_audio, "long_labels": prepared.dropped_long_labels}
    if skipped:
        reporter.say("skipped " + _skipped_text(skipped))
    cfg.check_data_size(len(train_ds))
    test_ds, probe = None, None
    if "test" in dsd and len(dsd["test"]) and (cfg.eval_each_epoch or cfg.probe_clips):
        test_raw = _select(dsd["test"], cfg.max_test_samples, cfg.seed)
        if not cfg.eval_each_epoch:  # only the probe's clips are needed
            test_raw = test_raw.select(range(min(cfg.probe_clips, len(test_raw))))
        reporter.phase(f"computing features for {len(test_raw)} test clips")
        test_ds = data_mod.prepare(test_raw, processor, language, task=cfg.task).dataset
        probe = _probe_inputs(test_ds, test_raw, cfg.probe_clips) if cfg.probe_clips else None
    # Features are computed once (above); numpy format makes each epoch's reads cheap (no Python lists).
    train_ds = _numpy_format(train_ds)
    test_ds = _numpy_format(test_ds) if test_ds is not None and cfg.eval_each_epoch else None
    sizes = {"train_clips": len(train_ds), "test_clips": len(test_ds) if test_ds is not None else None,
             "dropped": dropped, "skipped": skipped}
    return train_ds, test_ds, probe, sizes


# Why a clip was left out (LoadReport and PreparedData count them; names without their dropped_/skipped_ prefix).
SKIP_REASONS = {"missing_clips": "missing", "corrupt": "corrupt or unreadable", "empty": "empty sentence",
                "long_audio": "over 30 s", "long_labels": "transcript too long"}


def _skipped_counts(report, prepared) -> dict[str, int]:
    """Clips left out, by reason, over every split read: the loader's (missing clips, empty sentences, corrupt
    files) and prepare's (corrupt audio, over 30 s, labels too long); zero counts left out."""
    counts: dict[str, int] = {}
    for record in (report, prepared):
        for f in dataclasses.fields(record):
            value = getattr(record, f.name)
            if isinstance(value, dict) and value and all(isinstance(v, int) for v in value.values()):
                value = sum(value.values())
            if f.name.startswith(("dropped_", "skipped_", "missing_")) and isinstance(value, int) and value:
                name = f.name.removeprefix("dropped_").removeprefix("skipped_")
                counts[name] = counts.get(name, 0) + value
    return counts


def _skipped_text(skipped: dict[str, int]) -> str:
    total = sum(skipped.values())
    return f"{total} clip{'s' if total != 1 else ''} (" + ", ".join(
        f"{n} {SKIP_REASONS.get(name, name.replace('_', ' '))}" for name, n in skipped.items()) + ")"


def _probe_inputs(test_ds, test_raw, n: int) -> dict[str, Any]:
    """The probe's first `n` prepared test clips: features, references as written, token budgets."""
    from whisper_studio import evaluation
    from whisper_studio.features import clip_seconds

    rows = test_ds.select(range(min(n, len(test_ds))))
    audio_by_id = dict(zip(test_raw["id"], test_raw["audio"]))
    budgets = []
    for clip_id in rows["id"]:
        try:
            seconds = clip_seconds(audio_by_id[clip_id])
        except Exception:  # noqa: BLE001 - a clip that decoded for features but not for its header: 30 s
            seconds = 30.0
        budgets.append(evaluation.token_budget(seconds))
    features = list(rows.with_format("numpy", columns=["input_features"])["input_features"])
    return {"features": features, "refs": list(rows["sentence"]), "budgets": budgets}


def _numpy_format(ds):
    cols = [c for c in ("input_features", "labels") if c in ds.column_names]
    try:
        return ds.with_format("numpy", columns=cols, output_all_columns=False)
    except Exception:  # a collator that wants lists still works with the default format
        return ds



# --- the job --------------------------------------------------------------------------------------------------
def run_training(cfg: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False, evaluate: bool = True,
                 save_steps: int | None = None, max_steps: int | None = None,
                 time_limit_s: float | None = None, api_key: str | None = None) -> RunStatus:
    """Fine-tune `cfg.model` with LoRA into `run_dir`; returns the final status (also in status.json).

    Raises what made the run fail, after recording it as `failed`; a stop request (SIGTERM or the stop file)
    returns `stopped` after the current step, with the adapter and a checkpoint saved. `max_steps` caps the
    optimizer steps (overrides epochs); `time_limit_s` ends training at the first step past that many seconds
    of training (the run then finishes normally, adapter and evaluation included). Neither is part of
    config.json: a resumed run trains to its configured epochs. `api_key` (an MDC key) is used for loading the
    data only, never written anywhere.
    """
    check_run_limits(max_steps=max_steps, save_steps=save_steps, time_limit_s=time_limit_s)
    run_dir = Path(run_dir).resolve()
    rank, local_rank, world_size = dist_env()
    is_main = rank == 0
    stop = StopFlag()
    stop.install()

    # 1. The run folder: config.json, then status queued -> running with our pid. A resume first drops the
    #    metrics a killed attempt logged after its last checkpoint, so no step is listed twice.
    checkpoint: Path | None = None
    if resume:
        checkpoint = runfolder.last_checkpoint(run_dir)
        if checkpoint is None:
            raise JobError(f"{run_dir} has no checkpoint to resume from; start a new run instead.")
    cfg = dataclasses.replace(cfg, output_dir=str(run_dir))
    previous = runfolder.read_status(run_dir) if resume else None
    status = RunStatus(state="queued", pid=os.getpid(), started=time.time(),
                       step=runfolder.checkpoint_step(checkpoint) if checkpoint else 0,
                       total_steps=previous.total_steps if previous else None,
                       epoch=previous.epoch if previous else 0.0)
    reporter = Reporter(run_dir, status, enabled=is_main)
    if is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / runfolder.STOP).unlink(missing_ok=True)  # a stop request of an earlier attempt is done
            if checkpoint is not None:
                runfolder.drop_metrics_after(run_dir, runfolder.checkpoint_step(checkpoint))
            if not resume:
                cfg.save(run_dir / runfolder.CONFIG)
            reporter.update(state="queued", message="starting")
            reporter.update(state="running", message="starting")
        except OSError as exc:
            stop.restore()
            raise JobError(_write_error(run_dir, exc)) from None
        reporter.say(f"run folder {run_dir}" + (f", resuming from {checkpoint.name}" if checkpoint else ""))

    t_start = time.monotonic()
    summary: dict[str, Any] = {}
    trained = False
    need = 0  # bytes a checkpoint needs, once the trainable parameters are known
    try:
        import torch

        language = resolve(cfg.language)  # once: everything below takes the Language
        device = _device_for_rank(local_rank)
        precision = resolve_precision(cfg.precision, device)
        in_8bit, why_8bit = resolve_8bit(cfg.load_in_8bit, device)
        torch.manual_seed(cfg.seed)

        # 2. The model's shape, before anything is allocated: a LoRA rank beyond its width is refused.
        from transformers import PrinterCallback

        from whisper_studio import models

        _quiet_progress_bars()
        processor = models.load_processor(cfg.model)
        cfg.lora.check_width(_model_width(cfg.model), cfg.model)

        # 3. Data: every split the run needs, checked now; log-mel features and labels computed once.
        final_clips = cfg.final_eval_clips if cfg.final_eval_clips is not None else cfg.max_test_samples
        evaluate = evaluate and final_clips != 0
        train_ds, eval_ds, probe_in, sizes = _load_data(
            cfg, processor, language, reporter, need_test=evaluate or cfg.eval_each_epoch,
            want_test=cfg.probe_clips > 0, api_key=api_key)
        summary.update(sizes)
        _check_stop(stop, run_dir)

        # 4. The base model (8-bit through bitsandbytes where resolve_8bit says so), on this rank's device.
        reporter.say(why_8bit)
        reporter.phase(f"loading {cfg.model} on {device} ({why_8bit})")
        model = models.load_model(cfg.model, load_in_8bit=in_8bit, dtype=torch.float32, device=device)
        _configure_generation(model, language, cfg)
        summary.update(load_in_8bit=in_8bit, load_in_8bit_reason=why_8bit)
        _check_stop(stop, run_dir)

        # 5. LoRA (after k-bit preparation: norms in fp32, input grads for the frozen 8-bit layers); then the
        #    disk must hold a checkpoint and the adapter before step 1.
        model = models.attach_lora(model, cfg.lora, prepare_kbit=in_8bit,
                                   gradient_checkpointing=_use_gradient_checkpointing(device))
        model.get_base_model().config.use_cache = False  # no KV cache while training
        trainable, total = _count_params(model)
        summary.update(trainable_params=trainable, total_params=total)
        reporter.say(f"LoRA r={cfg.lora.rank} alpha={cfg.lora.alpha} on {', '.join(cfg.lora.target_modules)}: "
                     f"{trainable:,} trainable of {total:,} parameters; precision {precision}")
        need = checkpoint_bytes(trainable)
        if is_main:
            check_space(run_dir, need)

        # 6. Seq2SeqTrainer with the run-folder callback (and the probe, rank 0 only).
        trainer = build_trainer(cfg, model, processor, train_ds, eval_ds, run_dir=run_dir, device=device,
                                 precision=precision, world_size=world_size, save_steps=save_steps,
                                 max_steps=max_steps)
        probe = (Probe(model, processor, probe_in["features"], probe_in["refs"], probe_in["budgets"], language,
                       cfg.task, device) if probe_in and is_main else None)
        samples_per_step = cfg.batch_size * cfg.grad_accum * world_size
        callback = make_callback(reporter, stop, samples_per_step=samples_per_step,
                                  elapsed_before=previous_elapsed(run_dir) if resume else 0.0,
                                  world_size=world_size, time_limit_s=time_limit_s, probe=probe,
                                  checkpoint_need=need, with_eval_loss=eval_ds is not None)
        trainer.add_callback(callback)
        trainer.remove_callback(PrinterCallback)  # our callback prints one readable line per logging step
        _check_stop(stop, run_dir)
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

        # 7. The adapter in PEFT format, with its model card (rank 0 only).
        adapter_dir = run_dir / runfolder.ADAPTER
        if is_main:
            reporter.phase("saving the adapter")
            trainer.model.save_pretrained(str(adapter_dir))
            write_model_card(adapter_dir, cfg, language, summary)
        reporter.update(step=trainer.state.global_step, epoch=float(trainer.state.epoch or 0.0))
        del trainer, model, probe
        gc.collect()
        skipped = f"; skipped {_skipped_text(summary['skipped'])}" if summary.get("skipped") else ""

        if stopped:
            return _finish(reporter, "stopped", f"stopped at step {summary['steps']}; adapter saved{skipped}")

        # 8. Evaluation of base vs adapted on the test split; optional, and stoppable (the adapter is complete).
        if evaluate and is_main:
            stop.raise_now = True
            try:
                wer = _final_evaluation(cfg, run_dir, reporter, final_clips)
            except StopRequested:
                return _finish(reporter, "stopped", "stopped during the final evaluation; the adapter is complete")
            finally:
                stop.raise_now = False
            if wer:
                summary.update(wer)
                write_model_card(adapter_dir, cfg, language, summary)
        total = time.monotonic() - t_start
        limited = f" (training time limit reached at step {summary['steps']})" if summary.get("time_limited") else ""
        return _finish(reporter, "finished", f"finished in {fmt_seconds(total)}{limited}{skipped}")
    except StopRequested:
        # Asked to stop before training began: nothing to save.
        return _finish(reporter, "stopped", "stopped before training began" if not trained else "stopped")
    except BaseException as exc:
        # A full disk, however the writer reported it (torch.save only says "unexpected pos" when it runs out).
        full = is_main and (is_disk_full(exc) or (isinstance(exc, (OSError, RuntimeError))
                                                  and free_bytes(run_dir) < max(need, 1 << 20)))
        if full:
            drop_partial_checkpoints(run_dir)  # frees what the failed write took, so the failure can be recorded
        message = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
        if full and not isinstance(exc, StudioError):
            message = no_space_message(run_dir, need) if need else _write_error(run_dir, exc)
        if isinstance(exc, KeyboardInterrupt):
            message = "interrupted"
        if api_key:
            message = message.replace(api_key, "***")
        if is_main and not isinstance(exc, StudioError):
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
        if is_main:
            record_failure(reporter, message)
        if full and not isinstance(exc, StudioError):
            raise JobError(message) from exc  # a message for the CLI (exit 2), the traceback is in train.log
        raise
    finally:
        stop.restore()


def _write_error(run_dir: Path, exc: OSError) -> str:
    """Why the run folder cannot be written, in words (a full disk, a read-only or foreign folder)."""
    if is_disk_full(exc):
        return f"No space left on {run_dir} to write the run folder; free some space or choose another runs folder."
    reason = exc.strerror or str(exc)
    if getattr(exc, "errno", None) in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason += " (the runs folder is read-only or not yours)"
    return f"Cannot write the run folder {run_dir}: {reason}. Choose another with --out or WHISPER_STUDIO_RUNS."


def _model_width(model_id: str) -> int:
    """d_model from the model's config.json: every LoRA target of Whisper is that wide (or wider)."""
    from whisper_studio import models

    config = runfolder.read_json(Path(models.resolve(model_id)) / "config.json") or {}
    width = config.get("d_model")
    return int(width) if isinstance(width, int) and width > 0 else 1 << 30  # unknown: no bound


def _quiet_progress_bars() -> None:
    """stdout is train.log: carriage-return progress bars would fill it with noise."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def _check_stop(stop: StopFlag, run_dir: Path) -> None:
    """Between the steps before training: a signal or the manager's stop file ends the job here."""
    if stop.requested or (run_dir / runfolder.STOP).exists():
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


def _final_evaluation(cfg: TrainConfig, run_dir: Path, reporter: Reporter, clips: int | None) -> dict[str, Any]:
    """Base vs adapted WER (fractions) on the test split through evaluation.py (which writes eval.json)."""
    from whisper_studio import evaluation

    reporter.phase("evaluating base and adapted on the test split")
    t0 = time.monotonic()

    left_s = evaluation.Eta()

    def progress(done: int, total: int, message: str = "") -> None:
        # The slowest phase of a CPU run: the status line shows clips done and an ETA.
        left = left_s(done, total)
        eta = f" · ETA {fmt_seconds(left)}" if left is not None else ""
        reporter.update(message=f"closing evaluation: {done}/{total} clips{eta}")

    result = evaluation.evaluate_run(run_dir, split="test", max_samples=clips, progress=progress)
    reporter.say(f"test WER base {result.base_wer:.1%} -> adapted {result.adapted_wer:.1%} "
                 f"(normalized {result.base_wer_normalized:.1%} -> {result.adapted_wer_normalized:.1%}, n={result.n})")
    return {"base_wer": result.base_wer, "adapted_wer": result.adapted_wer,
            "base_wer_normalized": result.base_wer_normalized,
            "adapted_wer_normalized": result.adapted_wer_normalized, "eval_clips": result.n,
            "eval_seconds": round(time.monotonic() - t0, 1)}

