"""Model ids -> loaded Whisper models. Every other module gets its models through here, so the rules live once.

    ids.py       which models exist (bundled, OpenAI hub), ModelInfo, DEFAULT_MODEL, "did you mean" suggestions
    hub.py       hub ids -> the Hugging Face cache or a download; OfflineError at once when the hub is unusable
    ct2.py       bundled CTranslate2 files -> a transformers folder (converted once, sha-checked, atomic)
    loading.py   resolve(id) -> folder; load_processor, load_model (8-bit optional), default_device
    lora.py      attach_lora, load_adapter, adapter_base_model

Nothing here imports torch or transformers at import time: the UI imports these names cheaply.
"""

from __future__ import annotations

from whisper_studio.models.ids import BUNDLED_PREFIX, DEFAULT_MODEL, ModelInfo, bundled_ids, catalog
from whisper_studio.models.ct2 import MARKER_NAME, bundled_ct2_dir, bundled_source_files, convert_ct2, ensure_bundled
from whisper_studio.models.loading import count_parameters, default_device, load_model, load_processor, num_mel_bins, resolve
from whisper_studio.models.lora import adapter_base_model, attach_lora, check_adapter_dir, load_adapter


__all__ = [
    "BUNDLED_PREFIX", "DEFAULT_MODEL", "MARKER_NAME", "ModelInfo", "adapter_base_model", "attach_lora", "bundled_ct2_dir",
    "bundled_ids", "bundled_source_files", "catalog", "check_adapter_dir", "convert_ct2", "count_parameters",
    "default_device", "ensure_bundled", "load_adapter", "load_model", "load_processor", "num_mel_bins", "resolve",
]
