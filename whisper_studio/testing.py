"""Random-weight Whisper models with a real tokenizer, for tests and benchmarks (never used by the app)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from whisper_studio.errors import ModelError
from whisper_studio.models import DEFAULT_MODEL, load_processor, resolve

if TYPE_CHECKING:
    import torch

# d_model, encoder layers, decoder layers, heads, ffn, mel bins
SHAPES: dict[str, tuple[int, int, int, int, int, int]] = {
    "tiny-test": (64, 2, 2, 4, 256, 80),
    "tiny": (384, 4, 4, 6, 1536, 80),
    "base": (512, 6, 6, 8, 2048, 80),
    "small": (768, 12, 12, 12, 3072, 80),
    "medium": (1024, 24, 24, 16, 4096, 80),
    "large": (1280, 32, 32, 20, 5120, 80),
    "large-v2": (1280, 32, 32, 20, 5120, 80),
    "large-v3": (1280, 32, 32, 20, 5120, 128),
    "large-v3-turbo": (1280, 32, 4, 20, 5120, 128),
}


def make_random_model(
    out_dir: str | os.PathLike,
    *,
    shape: str = "tiny-test",
    tokenizer_from: str = DEFAULT_MODEL,
    seed: int = 0,
    dtype: "torch.dtype | None" = None,
) -> Path:
    """A randomly initialised Whisper of `shape` with a real tokenizer/processor/generation config.

    Saved as a normal folder (`load_model(str(path))` loads it). Weights are float32, except for shapes of
    small and up, saved as float16 to keep a 1.5B-parameter folder at 3 GB (load_model casts on load).
    """
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    if shape not in SHAPES:
        raise ModelError(f"Unknown model shape {shape!r}; choose one of {', '.join(SHAPES)}.")
    d_model, enc, dec, heads, ffn, n_mels = SHAPES[shape]
    out = Path(out_dir)
    src = resolve(tokenizer_from)
    tok = load_processor(str(src)).tokenizer
    src_config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    gen = GenerationConfig.from_pretrained(str(src))
    config = WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=enc,
        decoder_layers=dec,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_source_positions=1500,  # 30 s of audio: fixed by the feature extractor, whatever the size
        max_target_positions=448,
        pad_token_id=src_config.get("pad_token_id"),
        bos_token_id=src_config.get("bos_token_id"),
        eos_token_id=src_config.get("eos_token_id"),
        decoder_start_token_id=src_config.get("decoder_start_token_id"),
        suppress_tokens=src_config.get("suppress_tokens"),
        begin_suppress_tokens=src_config.get("begin_suppress_tokens"),
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    # Alignment heads must exist in this shape: use the last decoder layer's heads.
    gen.alignment_heads = [[dec - 1, h] for h in range(min(heads, 4))]
    model.generation_config = gen
    if dtype is None:
        dtype = torch.float32 if shape in ("tiny-test", "tiny", "base") else torch.float16
    model = model.to(dtype)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=n_mels), tokenizer=tok).save_pretrained(str(out))
    return out
