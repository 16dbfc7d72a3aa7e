"""Typed configuration of a fine-tuning run, validated on construction and saved as config.json.

Each field's `metadata` is its command-line option (the transformers/peft style): `flag`, `help`, and for
switches `switch` (the value the flag sets). options.py walks it to build the train parser, the TrainConfig
from parsed flags and the headless command preview, so an option is written once, here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from whisper_studio.errors import ConfigError
from whisper_studio.util import write_json_atomic

Task = Literal["transcribe", "translate"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
LoraBias = Literal["none", "all", "lora_only"]
TASKS = get_args(Task)
PRECISIONS = get_args(Precision)
LORA_BIASES = get_args(LoraBias)
# Linear layers of a Whisper encoder/decoder layer that LoRA can wrap.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
# `load_in_8bit` on the command line: --8bit auto|on|off (and the older --no-8bit).
EIGHT_BIT_VALUES = {"auto": "auto", "on": True, "off": False}
# What "auto" avoids on a CPU (bundled base, LoRA r=32, 2 cores, measured): bitsandbytes' int8 matmuls are
# slower there than fp32 and the extra int8 copies make the process larger.
CPU_8BIT_MEASURED = "1.02 vs 1.27 samples/s, 3465 vs 3017 MiB measured"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def opt(flag: str, help: str | None = None, **extra: Any) -> dict[str, Any]:
    """A field's command-line option, as `metadata=`."""
    return {"flag": flag, "help": help, **extra}


@dataclass
class SourceConfig:
    """Where the audio and sentences come from."""

    # A str, not a Literal: the kinds are whatever the sources registry holds (checked in __post_init__).
    kind: str = field(default="demo", metadata=opt("--source", "data source kind", choices="source_kinds"))
    language: str = "mr"  # Common Voice locale; always the run's language (no flag of its own)
    path: str | None = field(default=None, metadata=opt("--path", "cv-folder: the Common Voice release folder"))
    dataset_id: str | None = field(default=None, metadata=opt("--dataset-id", "mdc / hub: the dataset id"))
    audio_column: str = field(default="audio", metadata=opt("--audio-column", "hub: the audio column (audio)"))
    text_column: str = field(default="sentence",
                             metadata=opt("--text-column", "hub: the transcript column (sentence)"))
    hub_config: str | None = field(default=None, metadata=opt("--hub-config", "hub: the dataset configuration name"))

    def __post_init__(self) -> None:
        if not self.language:
            raise ConfigError("A data source needs a language (a Common Voice locale such as 'mr').")
        from whisper_studio import sources  # lazily: the registry's modules import this one

        sources.get(self.kind).check(self)


@dataclass
class LoraSpec:
    """LoRA adapter shape; defaults are the recipe's (r=32, alpha=64, q_proj+v_proj, dropout 0.05, bias none)."""

    rank: int = field(default=32, metadata=opt("--rank", "LoRA rank (32)"))
    alpha: float | None = field(default=64.0, metadata=opt("--alpha", "LoRA alpha (64)"))
    dropout: float = field(default=0.05, metadata=opt("--dropout", "LoRA dropout (0.05)"))
    target_modules: tuple[str, ...] = field(
        default=("q_proj", "v_proj"),
        metadata=opt("--target-modules", f"LoRA target modules among {', '.join(LORA_TARGETS)} (q_proj v_proj); "
                     "commas work too", nargs="+", metavar="MODULE"))
    bias: LoraBias = field(default="none", metadata=opt("--lora-bias", "LoRA bias (none)"))

    def __post_init__(self) -> None:
        self.target_modules = tuple(self.target_modules)
        if isinstance(self.alpha, int) and not isinstance(self.alpha, bool):
            self.alpha = float(self.alpha)
        if not _is_whole(self.rank) or self.rank < 1:
            raise ConfigError(f"LoRA rank must be a whole number of at least 1 (got {self.rank!r}).")
        if self.alpha is None:
            raise ConfigError("LoRA alpha is missing; the recipe uses alpha = 2 x rank (64 for rank 32).")
        if not isinstance(self.alpha, (int, float)) or self.alpha <= 0:
            raise ConfigError(f"LoRA alpha must be a positive number (got {self.alpha!r}).")
        if not _is_number(self.dropout) or not 0 <= self.dropout < 1:
            raise ConfigError(f"LoRA dropout must be in [0, 1) (got {self.dropout!r}).")
        if not self.target_modules:
            raise ConfigError("LoRA needs at least one target module, e.g. q_proj and v_proj.")
        unknown = [m for m in self.target_modules if m not in LORA_TARGETS]
        if unknown:
            raise ConfigError(f"Unknown LoRA target module(s) {', '.join(unknown)}; Whisper has {', '.join(LORA_TARGETS)}.")
        if self.bias not in LORA_BIASES:
            raise ConfigError(f"LoRA bias must be one of {', '.join(LORA_BIASES)} (got {self.bias!r}).")

    def check_width(self, d_model: int, model: str = "the model") -> None:
        """The rank must not exceed the width of the layers it adapts (d_model for every Whisper target): a
        larger rank adds nothing and, at 1e9, would try to allocate hundreds of GB. Called with the model's
        config before anything is loaded."""
        if self.rank > d_model:
            raise ConfigError(f"LoRA rank {self.rank} is larger than {model}'s width ({d_model}); "
                              f"choose a rank of at most {d_model} (the recipe uses 32).")


@dataclass
class TrainConfig:
    """Everything a training run needs; config.json in the run folder is this, as JSON."""

    # `always`: shown in the command preview even at its default (what a reader recognises the run by).
    model: str = field(default="bundled/whisper-base",
                       metadata=opt("--model", "bundled/whisper-base, a hub id or a local folder", always=True))
    language: str = field(default="mr", metadata=opt("--language", "Common Voice locale, e.g. mr", always=True))
    source: SourceConfig = field(default_factory=SourceConfig)
    lora: LoraSpec = field(default_factory=LoraSpec)
    task: Task = field(default="transcribe", metadata=opt("--task", "transcribe, or translate into English"))
    epochs: float = field(default=3.0, metadata=opt("--epochs", "passes over the training clips (3)"))
    learning_rate: float = field(default=1e-3, metadata=opt("--learning-rate", "peak learning rate (0.001)"))
    warmup_steps: int = field(default=10, metadata=opt("--warmup-steps", "linear warm-up, in optimizer steps (10)"))
    batch_size: int = field(default=8, metadata=opt("--batch-size", "clips per step and process (8)"))
    grad_accum: int = field(default=1, metadata=opt("--grad-accum", "batches per optimizer step (1)"))
    # auto: 8-bit on a CUDA GPU (it saves memory there), full precision on a CPU (where 8-bit is slower and
    # larger); resolve_8bit says which and why, and the job writes that into train.log and status.
    load_in_8bit: bool | Literal["auto"] = field(default="auto", metadata=opt(
        "--8bit", "load the base in 8-bit: auto (on for CUDA, off on CPU) | on | off", values=EIGHT_BIT_VALUES,
        aliases={"--no-8bit": False}))
    # auto: bf16 autocast where the hardware has fast bf16 (AMX CPUs, Ampere+ GPUs), fp32 otherwise.
    precision: Precision = field(default="auto", metadata=opt(
        "--precision", "auto (bf16 where the hardware is fast at it) | fp32 | bf16 | fp16"))
    max_train_samples: int | None = field(default=None, metadata=opt(
        "--max-train-samples", "at most this many training clips (a seeded random subset)"))
    max_test_samples: int | None = field(default=None, metadata=opt(
        "--max-test-samples", "at most this many test clips for evaluation"))
    seed: int = field(default=42, metadata=opt("--seed", "random seed (42)"))
    logging_steps: int = field(default=1, metadata=opt("--logging-steps", "a metrics line every N steps (1)"))
    eval_each_epoch: bool = field(default=False, metadata=opt(
        "--eval-each-epoch", "evaluate the loss on the test split each epoch", switch=True))
    # The WER beside the loss: greedy transcripts of a fixed set of test clips by the model in training, at
    # each epoch end (generated text, not teacher-forced argmax).
    probe_clips: int = field(default=16, metadata=opt(
        "--probe-clips", "test clips transcribed at each epoch end for a WER during training (16; 0 = off)"))
    # The closing base-vs-adapted evaluation's clip count: None = max_test_samples (else the whole test
    # split), 0 = skip it.
    final_eval_clips: int | None = field(default=None, metadata=opt(
        "--final-eval-clips", "test clips of the closing base-vs-adapted evaluation (default: max test "
        "samples; 0 = skip it)"))
    # Data-parallel training processes, one per GPU; more than one launches the job through torchrun (the
    # command preview says so with its torchrun prefix, not a flag).
    num_processes: int = 1
    output_dir: str | None = None  # the run folder; the job manager fills it in (--out on the command line)
    run_name: str | None = field(default=None, metadata=opt("--run-name", "names the run folder"))

    def __post_init__(self) -> None:
        if isinstance(self.source, dict):
            self.source = SourceConfig(**self.source)
        if isinstance(self.lora, dict):
            self.lora = LoraSpec(**self.lora)
        if not self.model or not str(self.model).strip():
            raise ConfigError("Choose a model (for example bundled/whisper-base).")
        if not self.language:
            raise ConfigError("Choose a language (a Common Voice locale such as 'mr').")
        if self.source.language != self.language:
            # One language per run: the labels' language token and the data must agree.
            self.source = dataclasses.replace(self.source, language=self.language)
        if self.task not in TASKS:
            raise ConfigError(f"Task must be one of {', '.join(TASKS)} (got {self.task!r}).")
        if not _is_number(self.epochs) or not math.isfinite(self.epochs) or self.epochs <= 0:
            raise ConfigError(f"Epochs must be a positive, finite number (got {self.epochs!r}).")
        if not _is_number(self.learning_rate) or not 0 < self.learning_rate < 1:  # nan fails the comparison too
            raise ConfigError(f"Learning rate must be a number between 0 and 1, such as 0.001 (got {self.learning_rate!r}).")
        if isinstance(self.load_in_8bit, str) and self.load_in_8bit.strip().lower() in EIGHT_BIT_VALUES:
            self.load_in_8bit = EIGHT_BIT_VALUES[self.load_in_8bit.strip().lower()]  # "on"/"off" as the CLI says it
        if not (isinstance(self.load_in_8bit, bool) or self.load_in_8bit == "auto"):
            raise ConfigError(f"8-bit loading must be auto, on (true) or off (false) (got {self.load_in_8bit!r}).")
        if not _is_whole(self.warmup_steps) or self.warmup_steps < 0:
            raise ConfigError(f"Warm-up steps must be a whole number of at least 0 (got {self.warmup_steps!r}).")
        if not _is_whole(self.batch_size) or self.batch_size < 1:
            raise ConfigError(f"Batch size must be a whole number of at least 1 (got {self.batch_size!r}).")
        if not _is_whole(self.grad_accum) or self.grad_accum < 1:
            raise ConfigError(f"Gradient accumulation must be a whole number of at least 1 (got {self.grad_accum!r}).")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"Precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r}).")
        for name in ("max_train_samples", "max_test_samples"):
            value = getattr(self, name)
            if value is not None and (not _is_whole(value) or value < 1):
                raise ConfigError(f"{name.replace('_', ' ').capitalize()} must be a whole number of at least 1 or empty (got {value!r}).")
        if self.max_train_samples is not None and self.batch_size > self.max_train_samples:
            raise ConfigError(
                f"Batch size {self.batch_size} is larger than the {self.max_train_samples} training clips; "
                "lower the batch size or use more clips."
            )
        if not isinstance(self.num_processes, int) or self.num_processes < 1:
            raise ConfigError(f"Processes must be a whole number of at least 1 (got {self.num_processes!r}).")
        if not _is_whole(self.logging_steps) or self.logging_steps < 1:
            raise ConfigError(f"Logging steps must be a whole number of at least 1 (got {self.logging_steps!r}).")
        if not _is_whole(self.probe_clips) or self.probe_clips < 0:
            raise ConfigError(f"Probe clips must be a whole number of at least 0 (got {self.probe_clips!r}).")
        if self.final_eval_clips is not None and (not _is_whole(self.final_eval_clips) or self.final_eval_clips < 0):
            raise ConfigError(f"Final evaluation clips must be a whole number of at least 0 or empty "
                              f"(got {self.final_eval_clips!r}).")

    def check_data_size(self, n_train: int) -> None:
        """Called once the data is loaded: the batch must fit in the data."""
        if n_train < 1:
            raise ConfigError("The training split has no usable clips.")
        if self.batch_size > n_train:
            raise ConfigError(
                f"Batch size {self.batch_size} is larger than the {n_train} training clips; lower the batch size."
            )

    # --- JSON -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["lora"]["target_modules"] = list(self.lora.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown setting(s) in the run configuration: {', '.join(unknown)}.")
        data = dict(data)
        if isinstance(data.get("source"), dict):
            data["source"] = _build(SourceConfig, data["source"], "source")
        if isinstance(data.get("lora"), dict):
            data["lora"] = _build(LoraSpec, data["lora"], "lora")
        return cls(**data)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"No run configuration at {path}.") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} does not hold a run configuration.")
        return cls.from_dict(data)


def check_run_limits(*, max_steps: int | None = None, save_steps: int | None = None,
                     time_limit_s: float | None = None) -> None:
    """The job's own limits (flags of `train`, not saved in config.json), refused before anything starts."""
    if max_steps is not None and (not _is_whole(max_steps) or max_steps < 1):
        raise ConfigError(f"Max steps must be a whole number of at least 1 (got {max_steps!r}).")
    if save_steps is not None and (not _is_whole(save_steps) or save_steps < 1):
        raise ConfigError(f"Save steps must be a whole number of at least 1 (got {save_steps!r}).")
    if time_limit_s is not None and (not _is_number(time_limit_s) or not math.isfinite(time_limit_s)
                                     or time_limit_s < 0):
        raise ConfigError(f"The time limit must be a number of seconds of at least 0 (got {time_limit_s!r}).")


def resolve_8bit(value: bool | str, device: str) -> tuple[bool, str]:
    """Whether to load the base in 8-bit on `device`, and the reason in words (train.log, status, the UI)."""
    if value is True:
        return True, "base in 8-bit, as asked"
    if value is False:
        return False, "base in full precision, as asked"
    if value != "auto":
        raise ConfigError(f"8-bit loading must be auto, on or off (got {value!r}).")
    if not str(device).startswith("cuda"):
        return False, f"base in full precision: auto chose it on CPU, where 8-bit is slower and larger ({CPU_8BIT_MEASURED})"
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        return False, "base in full precision: auto found no bitsandbytes for 8-bit on this GPU"
    return True, "base in 8-bit: auto chose it on a CUDA GPU, where it cuts the base's memory"


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


def _build(cls, data: dict[str, Any], where: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"Unknown setting(s) under {where!r}: {', '.join(unknown)}.")
    return cls(**data)
