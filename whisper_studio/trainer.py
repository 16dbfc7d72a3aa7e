"""The Hugging Face Trainer side of a training job: stop flag, run-folder callback, the Seq2SeqTrainer itself.

train.py's `run_training` drives these as steps; nothing here writes the run folder except through a
`Reporter` (rank 0 only) and nothing imports torch or transformers at module level.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from whisper_studio import runfolder
from whisper_studio.config import TrainConfig
from whisper_studio.errors import JobError
from whisper_studio.languages import Language
from whisper_studio.runfolder import EvalRecord, RunStatus, TrainRecord

# Fault injection for tests and drills: the job raises at this optimizer step, as a bug would.
FAIL_AT_STEP_ENV = "WHISPER_STUDIO_FAIL_AT_STEP"
# Checkpoints are LoRA weights + optimizer state (a few MB): cheap, so save often enough that a stop or a
# crash loses little, but not every step on fast hardware.
DEFAULT_SAVE_STEPS = 25
SAVE_TOTAL_LIMIT = 2
# Longest label sequence Whisper's decoder takes is its max_target_positions (448); generation during
# evaluation stops well before, at the 225 tokens of Whisper's own fine-tuning recipe, which a 30 s clip's
# transcript never needs more than.
GENERATION_MAX_LENGTH = 225
# A checkpoint is the adapter (4 bytes per trainable parameter), AdamW's two moments (8 more) and a few small
# files (trainer state, scheduler, RNG states, the adapter's config and card).
CHECKPOINT_BYTES_PER_PARAM = 12
CHECKPOINT_OVERHEAD_BYTES = 256 * 1024
PROBE_BATCH_SIZE = 16  # the probe's clips in one batch: decoding cost is mostly per token, not per clip


class StopRequested(Exception):
    """Raised when a stop is asked for while the job cannot stop at a step boundary (e.g. final evaluation)."""


# --- signals ------------------------------------------------------------------------------------------------
class StopFlag:
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



class Reporter:
    """Writes status.json / metrics.jsonl and prints progress; a no-op writer on ranks other than 0."""

    def __init__(self, run_dir: Path, status: RunStatus, enabled: bool) -> None:
        self.run_dir = run_dir
        self.status = status
        self.enabled = enabled

    def update(self, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self.status, key, value)
        if not self.enabled:
            return
        if self.status.state == "running" and (self.run_dir / runfolder.STOP).exists():
            # The manager has asked for a stop and written `stopping`: the job never writes `running` over it.
            self.status.state = "stopping"
        with runfolder.run_lock(self.run_dir):
            runfolder.write_status(self.run_dir, self.status)

    def phase(self, message: str) -> None:
        self.say(message)
        self.update(message=message)

    def metric(self, record: TrainRecord | EvalRecord) -> None:
        if self.enabled:
            runfolder.append_metric(self.run_dir, record)

    def say(self, text: str) -> None:
        if self.enabled:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)



# --- disk space -----------------------------------------------------------------------------------------------
def checkpoint_bytes(trainable_params: int) -> int:
    return CHECKPOINT_BYTES_PER_PARAM * trainable_params + CHECKPOINT_OVERHEAD_BYTES


def _mb(n_bytes: float) -> str:
    mb = n_bytes / 1e6
    return f"{mb:.1f}" if mb < 10 else f"{mb:.0f}"


def free_bytes(folder: Path) -> int:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def no_space_message(folder: Path, need: int) -> str:
    return f"No space left on {folder} ({_mb(free_bytes(folder))} MB free, checkpoint needs ~{_mb(need)} MB)"


def check_space(folder: Path, need: int) -> None:
    """Refuse to start (or to write a checkpoint) when the run folder's disk cannot hold `need` bytes."""
    if free_bytes(folder) < need:
        raise JobError(no_space_message(folder, need) + "; free some space or choose another runs folder.")


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC, however the writer wrapped it (torch.save and safetensors raise their own errors)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc)
        if "No space left" in text or "StorageFull" in text or "os error 28" in text or "file write failed" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def drop_partial_checkpoints(run_dir: Path) -> None:
    """Checkpoints cut short (no trainer_state.json yet): useless for --resume, and on a full disk their removal
    is what lets the job record its failure."""
    folder = run_dir / runfolder.CHECKPOINTS
    if folder.is_dir():
        for child in folder.iterdir():
            if child.is_dir() and not (child / "trainer_state.json").is_file():
                shutil.rmtree(child, ignore_errors=True)


def record_failure(reporter: Reporter, message: str) -> None:
    """status.json `failed`; when even that cannot be written the job says so on stderr and exits non-zero
    (its caller re-raises), so the manager sees a dead process instead of a run "running" forever."""
    try:
        reporter.say(f"failed: {message}")
        reporter.update(state="failed", message=message, error=message, finished=time.time())
    except OSError as exc:
        print(f"could not record the failure in {reporter.run_dir}: {exc}", file=sys.stderr, flush=True)


# --- the probe: WER of generated text during training ---------------------------------------------------------
class Probe:
    """A fixed set of test clips, transcribed greedily by the model in training at each epoch end and scored
    with whisper_studio.scoring (generated text, not teacher-forced argmax): the WER beside the loss."""

    def __init__(self, model, processor, features: list, refs: list[str], budgets: list[int], language: Language,
                 task: str, device: str) -> None:
        self.model, self.processor, self.features = model, processor, features
        self.refs, self.budgets, self.language, self.task, self.device = refs, budgets, language, task, device
        self._decoder = None  # built at the first epoch end, then reused (its masks depend only on the tokenizer)

    def run(self) -> dict[str, Any]:
        import numpy as np
        import torch

        from whisper_studio import scoring
        from whisper_studio.inference.decode import DecodeOptions, Decoder

        base = self.model.get_base_model()  # the LoRA layers stay in it: this decodes the adapted model
        if self._decoder is None:
            self._decoder = Decoder(base, self.processor.tokenizer, self.device, "the model in training")
        decoder = self._decoder
        dtype = base.model.encoder.conv1.weight.dtype
        was_training = self.model.training
        self.model.eval()  # no dropout while decoding
        hyps: list[str] = []
        try:
            for start in range(0, len(self.refs), PROBE_BATCH_SIZE):
                batch = np.stack([np.asarray(f) for f in self.features[start:start + PROBE_BATCH_SIZE]])
                budget = max(self.budgets[start:start + PROBE_BATCH_SIZE])
                options = decoder.check(DecodeOptions(language=self.language, task=self.task, max_new_tokens=budget))
                texts, _ = decoder.greedy(torch.from_numpy(batch).to(self.device, dtype), options)
                hyps.extend(texts)
        finally:
            if was_training:
                self.model.train()
        scores = scoring.score(self.refs, hyps, self.language)
        return {"wer": scores.wer, "cer": scores.cer, "wer_normalized": scores.wer_normalized, "n": scores.n}


def make_callback(reporter: Reporter, stop: StopFlag, *, samples_per_step: int, elapsed_before: float,
                   world_size: int, time_limit_s: float | None = None, probe: Probe | None = None,
                   checkpoint_need: int = 0, with_eval_loss: bool = False):
    # jobs.py writes this before it signals the job: a second channel, in case a signal is missed.
    stop_file = reporter.run_dir / runfolder.STOP

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
            self.pending: dict[str, Any] | None = None  # the epoch's probe scores, until on_evaluate adds the loss

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
                requested = any_rank(requested)  # all ranks must stop at the same step or DDP hangs
            if requested and not self.stopped:
                self.stopped = True
                control.should_training_stop = True
                control.should_save = True  # a checkpoint at the stop step, so --resume continues from here
                control.should_log = True
                reporter.say(f"stopping at step {state.global_step}"
                             + (f" (time limit of {fmt_seconds(time_limit_s)} reached)" if self.time_limited else ""))
            if state.global_step >= state.max_steps:
                control.should_log = True  # the last step's loss always reaches metrics.jsonl
            if control.should_save and checkpoint_need and reporter.enabled:
                check_space(reporter.run_dir, checkpoint_need)  # fail with a message, not half a checkpoint
            reporter.update(step=state.global_step, epoch=float(state.epoch or 0.0))
            return control

        def on_epoch_end(self, args, state, control, **kwargs):
            self.pending = None
            epoch = float(state.epoch or 0.0)
            if probe is None or self.stopped or not reporter.enabled or abs(epoch - round(epoch)) > 1e-3:
                # A stop is not delayed by the probe, nor is a run cut short by max_steps mid-epoch probed;
                # other ranks go on and wait at the next step.
                return
            t0 = time.monotonic()
            self.pending = {"type": EvalRecord.TYPE, "step": state.global_step,
                            "epoch": round(float(state.epoch or 0.0), 4), **probe.run()}
            reporter.say(f"probe at step {state.global_step}: WER {self.pending['wer']:.1%}, CER "
                         f"{self.pending['cer']:.1%} on {self.pending['n']} test clips ({time.monotonic() - t0:.1f} s)")
            if not with_eval_loss:  # else on_evaluate writes one record with the loss and these
                reporter.metric(EvalRecord.from_dict(self.pending))
                self.pending = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" not in logs:  # the end-of-training summary (train_runtime, ...) and eval logs
                return
            now = time.monotonic()
            steps = state.global_step - (self.last_log_step or 0)
            dt = now - self.last_log_time
            sps = steps * samples_per_step / dt if dt > 0 and steps > 0 else None
            self.last_log_time, self.last_log_step = now, state.global_step
            record = TrainRecord(
                step=state.global_step,
                epoch=round(float(state.epoch or 0.0), 4),
                loss=float(logs["loss"]),
                learning_rate=float(logs.get("learning_rate", 0.0)),
                elapsed=round(self.elapsed(), 2),
                samples_per_second=round(sps, 3) if sps is not None else None,
            )
            reporter.metric(record)
            reporter.say(
                f"step {state.global_step}/{state.max_steps} epoch {record.epoch:.2f} loss {record.loss:.4f} "
                f"lr {record.learning_rate:.2e}" + (f" {sps:.2f} samples/s" if sps else "")
            )

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            record = EvalRecord.from_dict({"step": state.global_step, "epoch": round(float(state.epoch or 0.0), 4),
                                           **(self.pending or {}), "eval_loss": (metrics or {}).get("eval_loss")})
            self.pending = None
            reporter.metric(record)
            reporter.say(f"evaluation at step {state.global_step}: loss {record.eval_loss}")

    return RunFolderCallback()


def any_rank(flag: bool) -> bool:
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    backend = dist.get_backend()
    device = f"cuda:{torch.cuda.current_device()}" if backend == "nccl" else "cpu"
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def build_trainer(cfg: TrainConfig, model, processor, train_ds, eval_ds, *, run_dir: Path, device: str,
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
        # The per-epoch evaluation is the test loss; the WER comes from the probe (generated text, scoring.py).
        prediction_loss_only=True,
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
        # No processing_class: the Trainer would copy the tokenizer (~3 MB) into every checkpoint; the run
        # folder's config names the model, which has it.
    )
    # Whisper's forward takes **kwargs, so the Trainer assumes it normalizes its loss by num_items_in_batch; it
    # does not (plain mean cross-entropy). Left alone, the Trainer then skips the division by grad_accum and
    # multiplies by the number of processes: gradients (and logged losses) grad_accum x / world_size x too big.
    trainer.model_accepts_loss_kwargs = False
    return trainer


def previous_elapsed(run_dir: Path) -> float:
    """Training seconds already spent by earlier attempts of this run (a resume continues the clock)."""
    train, _ = runfolder.split_records(runfolder.read_metrics(run_dir))
    return max((float(r.elapsed) for r in train if isinstance(r.elapsed, (int, float))), default=0.0)


def fmt_seconds(s: float) -> str:
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec} s" if m else f"{sec} s"
