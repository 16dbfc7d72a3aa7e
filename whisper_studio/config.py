"""Typed configuration of a fine-tuning run, validated on construction and saved as config.json.

Each field's `metadata` is its command-line option (the transformers/peft style): `flag`, `help`, and for
switches `switch` (the value the flag sets). options.py walks it to build the train parser, the TrainConfig
from parsed flags and the headless command preview, so an option is written once, here.
"""

from __future__ import annotations

import dataclasses
import json
import os
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
        if not isinstance(self.rank, int) or self.rank < 1:
            raise ConfigError(f"LoRA rank must be a whole number of at least 1 (got {self.rank!r}).")
        if self.alpha is None:
            raise ConfigError("LoRA alpha is missing; the recipe uses alpha = 2 x rank (64 for rank 32).")
        if not isinstance(self.alpha, (int, float)) or self.alpha <= 0:
            raise ConfigError(f"LoRA alpha must be a positive number (got {self.alpha!r}).")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"LoRA dropout must be in [0, 1) (got {self.dropout!r}).")
        if not self.target_modules:
            raise ConfigError("LoRA needs at least one target module, e.g. q_proj and v_proj.")
        unknown = [m for m in self.target_modules if m not in LORA_TARGETS]
        if unknown:
            raise ConfigError(f"Unknown LoRA target module(s) {', '.join(unknown)}; Whisper has {', '.join(LORA_TARGETS)}.")
        if self.bias not in LORA_BIASES:
            raise ConfigError(f"LoRA bias must be one of {', '.join(LORA_BIASES)} (got {self.bias!r}).")


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
    load_in_8bit: bool = field(default=True, metadata=opt(
        "--no-8bit", "load the base in full precision instead of 8-bit", switch=False))
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
        "--eval-each-epoch", "evaluate loss and WER on the test split each epoch", switch=True))
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
        if not isinstance(self.epochs, (int, float)) or self.epochs <= 0:
            raise ConfigError(f"Epochs must be a positive number (got {self.epochs!r}).")
        if not isinstance(self.learning_rate, (int, float)) or not 0 < self.learning_rate < 1:
            raise ConfigError(f"Learning rate must be between 0 and 1 (got {self.learning_rate!r}).")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ConfigError(f"Warm-up steps must be a whole number of at least 0 (got {self.warmup_steps!r}).")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"Batch size must be a whole number of at least 1 (got {self.batch_size!r}).")
        if not isinstance(self.grad_accum, int) or self.grad_accum < 1:
            raise ConfigError(f"Gradient accumulation must be a whole number of at least 1 (got {self.grad_accum!r}).")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"Precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r}).")
        for name in ("max_train_samples", "max_test_samples"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name.replace('_', ' ').capitalize()} must be a whole number of at least 1 or empty (got {value!r}).")
        if self.max_train_samples is not None and self.batch_size > self.max_train_samples:
            raise ConfigError(
                f"Batch size {self.batch_size} is larger than the {self.max_train_samples} training clips; "
                "lower the batch size or use more clips."
            )
        if not isinstance(self.num_processes, int) or self.num_processes < 1:
            raise ConfigError(f"Processes must be a whole number of at least 1 (got {self.num_processes!r}).")
        if not isinstance(self.logging_steps, int) or self.logging_steps < 1:
            raise ConfigError(f"Logging steps must be a whole number of at least 1 (got {self.logging_steps!r}).")

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


def _build(cls, data: dict[str, Any], where: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"Unknown setting(s) under {where!r}: {', '.join(unknown)}.")
    return cls(**data)
