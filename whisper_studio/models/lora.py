"""LoRA on Whisper: a fresh trainable adapter (the 8-bit recipe), a saved one loaded, its recorded base model."""

from __future__ import annotations

import json
import os
import struct
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


WEIGHTS = "adapter_model.safetensors"
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


def check_adapter_weights(adapter_dir: Path) -> None:
    """ModelError naming the file when the adapter's weights are missing, truncated or not safetensors at all.

    Checked before peft opens the file: peft and safetensors report a 0-byte, cut-off or garbage file as a raw
    `SafetensorError` traceback ("invalid header", "incomplete metadata"), and a run killed while saving leaves
    exactly such a file. The format: an 8-byte little-endian header length N, N bytes of JSON mapping each
    tensor to its `data_offsets` [begin, end) in the data that follows; every end must lie inside the file."""
    path = adapter_dir / WEIGHTS
    if not path.is_file():
        if (adapter_dir / "adapter_model.bin").is_file():
            return  # the older pickle format: torch reports its own errors clearly enough
        raise ModelError(f"{adapter_dir} has an adapter_config.json but no adapter weights ({WEIGHTS}).")
    size = path.stat().st_size
    redo = "; the run was probably interrupted while saving it. Retrain, or resume the run from a checkpoint."

    def broken(why: str) -> ModelError:
        return ModelError(f"The adapter weights {path} are unusable: {why}{redo}")

    if size < 8:
        raise broken(f"the file is {size} bytes long")
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len < 2 or header_len > min(MAX_HEADER_BYTES, size - 8):
            raise broken("it is not a safetensors file (bad header length)" if header_len > size - 8 or header_len < 2
                         else "its header is too large")
        try:
            header = json.loads(f.read(header_len).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise broken("it is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise broken("it is not a safetensors file (its header is not a JSON object)")
    data_size = size - 8 - header_len
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if not tensors:
        raise broken("it holds no tensors")
    for name, info in tensors.items():
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise broken(f"the entry for {name!r} in its header is malformed")
        if offsets[1] > data_size:
            raise broken(f"it is truncated ({size} bytes; tensor {name!r} ends at byte {8 + header_len + offsets[1]})")


def load_adapter(model, adapter_dir: str | os.PathLike, *, adapter_name: str = "default", is_trainable: bool = False) -> "PeftModel":
    """Load a saved LoRA adapter onto `model` (a base model, or a PeftModel that gets one more named adapter)."""
    from peft import PeftModel

    path = check_adapter_dir(adapter_dir)
    check_adapter_weights(path)
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
    except Exception as exc:
        # A file that passed the header check but safetensors still refuses (e.g. a dtype it does not know).
        if type(exc).__name__ == "SafetensorError":
            raise ModelError(f"The adapter weights in {path} cannot be read: {exc}") from None
        raise


def adapter_base_model(adapter_dir: str | os.PathLike) -> str | None:
    """The base model id an adapter was trained on, as recorded in its adapter_config.json."""
    path = check_adapter_dir(adapter_dir)
    try:
        return json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, json.JSONDecodeError):
        return None
