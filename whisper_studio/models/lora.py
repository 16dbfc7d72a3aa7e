"""LoRA on Whisper: a fresh trainable adapter (the 8-bit recipe), a saved one loaded, its recorded base model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from whisper_studio.errors import ModelError

if TYPE_CHECKING:
    from peft import PeftModel

    from whisper_studio.config import LoraSpec


def _make_inputs_require_grad(module, inputs, output):
    output.requires_grad_(True)


def attach_lora(model, spec: "LoraSpec", *, prepare_kbit: bool, gradient_checkpointing: bool = False) -> "PeftModel":
    """Wrap `model` with a fresh trainable LoRA adapter shaped by `spec` (the Whisper 8-bit recipe).

    prepare_kbit: run peft's `prepare_model_for_kbit_training` (freeze, layer norms in fp32) - for 8-bit models.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if prepare_kbit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable()
    # All base weights are frozen, so nothing upstream of the first LoRA layer requires grad; with gradient
    # checkpointing that would cut the graph. Making the first conv's output require grad keeps it whole.
    if getattr(model, "_studio_grad_hook", None) is None:
        model._studio_grad_hook = model.model.encoder.conv1.register_forward_hook(_make_inputs_require_grad)
    config = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        bias=spec.bias,
    )
    return get_peft_model(model, config)


def check_adapter_dir(adapter_dir: str | os.PathLike) -> Path:
    path = Path(adapter_dir).expanduser()
    if not path.is_dir():
        raise ModelError(f"No adapter folder at {path}.")
    if not (path / "adapter_config.json").is_file():
        if (path / "adapter").is_dir() and (path / "adapter" / "adapter_config.json").is_file():
            return (path / "adapter").resolve()  # a run folder: its adapter/ subfolder
        raise ModelError(f"{path} is not a LoRA adapter folder (it has no adapter_config.json).")
    return path.resolve()


def load_adapter(model, adapter_dir: str | os.PathLike, *, adapter_name: str = "default", is_trainable: bool = False) -> "PeftModel":
    """Load a saved LoRA adapter onto `model` (a base model, or a PeftModel that gets one more named adapter)."""
    from peft import PeftModel

    path = check_adapter_dir(adapter_dir)
    try:
        if isinstance(model, PeftModel):
            model.load_adapter(str(path), adapter_name=adapter_name, is_trainable=is_trainable)
            return model
        return PeftModel.from_pretrained(model, str(path), adapter_name=adapter_name, is_trainable=is_trainable)
    except RuntimeError as exc:
        if "size mismatch" in str(exc):
            raise ModelError(f"The adapter in {path} was trained on a different base model (its weight shapes do not fit).") from None
        raise
    except ValueError as exc:
        raise ModelError(f"The adapter in {path} cannot be loaded: {exc}") from None


def adapter_base_model(adapter_dir: str | os.PathLike) -> str | None:
    """The base model id an adapter was trained on, as recorded in its adapter_config.json."""
    path = check_adapter_dir(adapter_dir)
    try:
        return json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, json.JSONDecodeError):
        return None
