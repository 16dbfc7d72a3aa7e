"""Typed configuration of a fine-tuning run, validated on construction and saved as config.json."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisper_studio.errors import ConfigError

SOURCE_KINDS = ("demo", "cv-folder", "mdc", "hub")
TASKS = ("transcribe", "translate")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Linear layers of a Whisper encoder/decoder layer that LoRA can wrap.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
LORA_BIASES = ("none", "all", "lora_only")


@dataclass
class SourceConfig:
    """Where the audio and sentences come from."""

    kind: str = "demo"
    language: str = "mr"  # Common Voice locale
    path: str | None = None  # cv-folder: the release folder (or its <locale> subfolder)
    dataset_id: str | None = None  # mdc: dataset id; hub: repo id
    audio_column: str = "audio"  # hub only
    text_column: str = "sentence"  # hub only
    hub_config: str | None = None  # hub only: the dataset configuration name

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"Unknown data source {self.kind!r}; choose one of {', '.join(SOURCE_KINDS)}.")
        if not self.language:
            raise ConfigError("A data source needs a language (a Common Voice locale such as 'mr').")
        if self.kind == "cv-folder" and not self.path:
            raise ConfigError("The local Common Voice source needs the path of a release folder (cv-corpus-*/<locale>).")
        if self.kind in ("mdc", "hub") and not self.dataset_id:
            what = "a Mozilla Data Collective dataset id" if self.kind == "mdc" else "a Hugging Face dataset id"
            raise ConfigError(f"The {self.kind} source needs {what}.")


@dataclass
class LoraSpec:
    """LoRA adapter shape; defaults are the recipe's (r=32, alpha=64, q_proj+v_proj, dropout 0.05, bias none)."""

    rank: int = 32
    alpha: int | None = 64
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    bias: str = "none"

    def __post_init__(self) -> None:
        self.target_modules = tuple(self.target_modules)
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

    model: str = "bundled/whisper-base"
    language: str = "mr"
    source: SourceConfig = field(default_factory=SourceConfig)
    lora: LoraSpec = field(default_factory=LoraSpec)
    task: str = "transcribe"
    epochs: float = 3.0
    learning_rate: float = 1e-3
    warmup_steps: int = 10
    batch_size: int = 8
    grad_accum: int = 1
    load_in_8bit: bool = True
    # auto: bf16 autocast where the hardware has fast bf16 (AMX CPUs, Ampere+ GPUs), fp32 otherwise.
    precision: str = "auto"
    max_train_samples: int | None = None
    max_test_samples: int | None = None
    seed: int = 42
    logging_steps: int = 1
    eval_each_epoch: bool = False
    # Data-parallel training processes, one per GPU; more than one launches the job through torchrun.
    num_processes: int = 1
    output_dir: str | None = None  # the run folder; the job manager fills it in
    run_name: str | None = None

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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

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
