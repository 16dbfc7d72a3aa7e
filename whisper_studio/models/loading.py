"""Model ids -> a local folder (resolve), and that folder -> a processor or a WhisperForConditionalGeneration.

* ``bundled/<name>``: the converted CTranslate2 model (``ct2.ensure_bundled``).
* A local folder holding a transformers Whisper checkpoint: used as it is.
* A hub id (``openai/whisper-small``): the Hugging Face cache, or a download when the hub answers (``hub``).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whisper_studio.errors import ModelError
from whisper_studio.models.ids import BUNDLED, BUNDLED_PREFIX, bundled_ids, check_whisper_folder, suggestions
from whisper_studio.models.ct2 import ensure_bundled
from whisper_studio.models.hub import is_hub_id, resolve_hub

if TYPE_CHECKING:  # torch and transformers are imported lazily: the UI imports this package's names cheaply
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor


def resolve(model_id: str | os.PathLike) -> Path:
    """A local transformers folder for `model_id` (bundled: converted once; hub: the HF cache; folder: itself)."""
    text = str(model_id).strip()
    if not text:
        raise ModelError("No model given; choose one such as " + ", ".join(bundled_ids()) + ".")
    if text.startswith(BUNDLED_PREFIX):
        name = text[len(BUNDLED_PREFIX):]
        if name not in BUNDLED:
            raise ModelError(f"There is no bundled model {text!r}. Bundled models: {', '.join(bundled_ids())}.")
        return ensure_bundled(name)
    path = Path(text).expanduser()
    if path.is_dir():
        check_whisper_folder(path)
        return path.resolve()
    if _looks_like_path(text):
        raise ModelError(f"No model folder at {text}." + suggestions(text))
    if is_hub_id(text):
        return resolve_hub(text)
    raise ModelError(f"Unknown model {text!r}." + suggestions(text))


def _looks_like_path(text: str) -> bool:
    # Hub ids have exactly one "/"; anything rooted, relative, deeper or with backslashes is meant as a folder.
    return text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1



def num_mel_bins(folder: Path) -> int:
    return int(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("num_mel_bins", 80))


def load_processor(model_id: str | os.PathLike) -> "WhisperProcessor":
    """The model's processor; its feature extractor always matches the model's mel bins (80 or 128)."""
    folder = resolve(model_id)
    return _load_processor_cached(str(folder), _folder_stamp(folder))


def _folder_stamp(folder: Path) -> float:
    try:
        return max((folder / n).stat().st_mtime for n in ("config.json", "tokenizer.json", "preprocessor_config.json") if (folder / n).exists())
    except ValueError:
        return 0.0


_processor_cache: dict[tuple[str, float], Any] = {}
_processor_cache_lock = threading.Lock()


def _load_processor_cached(folder: str, stamp: float) -> "WhisperProcessor":
    import copy

    with _processor_cache_lock:
        hit = _processor_cache.get((folder, stamp))
    if hit is None:
        from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

        n_mels = num_mel_bins(Path(folder))
        try:
            tok = WhisperTokenizer.from_pretrained(folder)
        except Exception as exc:
            raise ModelError(f"The tokenizer in {folder} cannot be loaded: {exc}") from None
        try:
            fe = WhisperFeatureExtractor.from_pretrained(folder)
        except Exception:  # no preprocessor_config.json: Whisper's standard front end
            fe = None
        if fe is None or fe.feature_size != n_mels:
            # The mel count is a property of the model, not of whatever preprocessor file came with it.
            fe = WhisperFeatureExtractor(feature_size=n_mels)
        hit = WhisperProcessor(feature_extractor=fe, tokenizer=tok)
        with _processor_cache_lock:
            _processor_cache[(folder, stamp)] = hit
    # Callers may set prefix tokens on the tokenizer; give each its own copy of the cached one.
    return copy.deepcopy(hit)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(
    model_id: str | os.PathLike,
    *,
    load_in_8bit: bool = False,
    dtype: "torch.dtype | str | None" = None,
    device: "str | torch.device | None" = None,
) -> "WhisperForConditionalGeneration":
    """WhisperForConditionalGeneration from `model_id`, in eval mode, float32 unless `dtype` says otherwise.

    `load_in_8bit` quantizes the linear layers with bitsandbytes (LLM.int8), on CPU or GPU.
    """
    import torch
    from transformers import WhisperForConditionalGeneration

    folder = resolve(model_id)
    device = str(device or default_device())
    if isinstance(dtype, str):
        dtype = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
                 "fp16": torch.float16, "float16": torch.float16}.get(dtype, dtype)
    dtype = dtype or torch.float32  # never "auto": fp16 checkpoints would otherwise run in fp16 on CPU
    kwargs: dict[str, Any] = {"dtype": dtype}
    if load_in_8bit:
        try:
            from transformers import BitsAndBytesConfig
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ModelError("8-bit loading needs the bitsandbytes package (pip install bitsandbytes).") from None
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = {"": device if device != "cuda" else "cuda:0"}
    try:
        model = WhisperForConditionalGeneration.from_pretrained(str(folder), **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"The model in {folder} cannot be loaded: {exc}") from None
    if not load_in_8bit:
        model = model.to(device)
    model.eval()
    return model


def count_parameters(model) -> int:
    """Distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
