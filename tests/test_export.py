"""export: a run's adapter merged into a standalone transformers model, and its CTranslate2 conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from whisper_studio import runfolder
from whisper_studio.config import LoraSpec, SourceConfig, TrainConfig
from whisper_studio.errors import ConfigError, JobError


@pytest.fixture(scope="module")
def run_with_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A run folder whose adapter has random (non-zero) LoRA weights, so merging visibly changes the model."""
    from whisper_studio import models

    run = tmp_path_factory.mktemp("export-run") / "run"
    cfg = TrainConfig(model=str(tiny_model_dir), language="en", source=SourceConfig(kind="demo", language="en"),
                      batch_size=2, output_dir=str(run))
    cfg.save(run / runfolder.CONFIG)
    base = models.load_model(str(tiny_model_dir), dtype=torch.float32, device="cpu")
    peft_model = models.attach_lora(base, LoraSpec(rank=8, alpha=16), prepare_kbit=False)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # B starts at zero (adapter = identity); give it weight
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    peft_model.save_pretrained(str(run / runfolder.ADAPTER))
    (run / runfolder.ADAPTER / "README.md").write_text("---\nbase_model: x\n---\n\n# card body\n", encoding="utf-8")
    return run


def _features(seed: int = 0) -> torch.Tensor:
    # Log-mel-like input (the model is random; what matters is that both sides see the same features).
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.uniform(-1.0, 1.0, size=(1, 80, 3000)).astype(np.float32))


PROMPT_TOKENS = ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")


def _greedy(model, features) -> list[int]:
    with torch.no_grad():
        out = model.generate(input_features=features, language="en", task="transcribe", do_sample=False,
                             num_beams=1, max_new_tokens=12)
    return out[0].tolist()


def _next_token_logits(model, features, prompt: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_features=features, decoder_input_ids=torch.tensor([prompt])).logits[0, -1]


def test_merged_loads_with_plain_transformers_and_matches_base_plus_adapter(run_with_adapter, tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from whisper_studio.export import export_merged

    out = export_merged(run_with_adapter, tmp_path / "merged")
    assert (out / "README.md").read_text(encoding="utf-8").count("# card body") == 1
    merged = WhisperForConditionalGeneration.from_pretrained(str(out)).eval()
    processor = WhisperProcessor.from_pretrained(str(out))
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert merged.generation_config.language == "en" and merged.generation_config.task == "transcribe"
    assert processor.feature_extractor.feature_size == merged.config.num_mel_bins
    prompt = processor.tokenizer.convert_tokens_to_ids(list(PROMPT_TOKENS))

    base = WhisperForConditionalGeneration.from_pretrained(str(tiny_model_dir)).eval()
    adapted = PeftModel.from_pretrained(
        WhisperForConditionalGeneration.from_pretrained(str(tiny_model_dir)), str(run_with_adapter / runfolder.ADAPTER)
    ).eval()
    for s in range(3):
        feats = _features(s)
        assert _greedy(merged, feats) == _greedy(adapted, feats)
        m_logits = _next_token_logits(merged, feats, prompt)
        # Same function as base + adapter (up to float rounding) ...
        assert torch.allclose(m_logits, _next_token_logits(adapted, feats, prompt), atol=1e-4)
        # ... and not the base's: the adapter was merged, not dropped.
        assert (m_logits - _next_token_logits(base, feats, prompt)).abs().max() > 1e-2


def test_ctranslate2_export_matches_and_runs_in_faster_whisper(run_with_adapter, tmp_path):
    import ctranslate2
    from faster_whisper import WhisperModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from whisper_studio.export import export_run

    done = export_run(run_with_adapter, merged=tmp_path / "merged", ctranslate2=tmp_path / "ct2", quantization="float32")
    ct2_dir = done["ctranslate2"]
    assert {"model.bin", "tokenizer.json", "preprocessor_config.json"} <= {p.name for p in ct2_dir.iterdir()}

    merged = WhisperForConditionalGeneration.from_pretrained(str(done["merged"])).eval()
    prompt = WhisperProcessor.from_pretrained(str(done["merged"])).tokenizer.convert_tokens_to_ids(list(PROMPT_TOKENS))
    ct2_model = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    for s in range(2):
        feats = _features(s)
        # On identical features, CTranslate2's first-step logits equal transformers' (suppressed tokens aside).
        res = ct2_model.generate(ctranslate2.StorageView.from_array(feats.numpy()), [prompt], beam_size=1,
                                 max_length=len(prompt) + 2, return_logits_vocab=True)
        ct2_logits = np.array(res[0].logits[0][0])
        hf_logits = _next_token_logits(merged, feats, prompt).numpy()
        kept = np.abs(ct2_logits) < 1e30  # CTranslate2 writes suppressed tokens as -inf/-FLT_MAX
        assert kept.sum() > 0.9 * kept.size
        assert np.abs(ct2_logits[kept] - hf_logits[kept]).max() < 1e-3
        assert res[0].sequences_ids[0][0] == int(np.argmax(np.where(kept, hf_logits, -np.inf)))

    # faster-whisper loads the folder offline (tokenizer.json is there) and transcribes audio with it.
    fw = WhisperModel(str(ct2_dir), device="cpu", compute_type="int8")
    audio = (0.1 * np.sin(2 * np.pi * 220 * np.arange(16000 * 2) / 16000)).astype(np.float32)
    segments, info = fw.transcribe(audio, language="en", beam_size=1, without_timestamps=True)
    texts = [seg.text for seg in segments]
    assert info.language == "en" and all(isinstance(t, str) for t in texts)


def test_export_refuses_runs_without_adapter_and_full_targets(run_with_adapter, tmp_path):
    from whisper_studio.cli import main
    from whisper_studio.export import export_merged, export_run

    empty_run = tmp_path / "run-no-adapter"
    TrainConfig(language="en", batch_size=2).save(empty_run / runfolder.CONFIG)
    with pytest.raises(JobError, match="has no adapter to export"):
        export_merged(empty_run, tmp_path / "out")
    with pytest.raises(JobError, match="No run folder"):
        export_merged(tmp_path / "missing", tmp_path / "out")
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        export_merged(run_with_adapter, target)
    assert (target / "keep.txt").read_text() == "x"
    with pytest.raises(ConfigError, match="Nothing to export"):
        export_run(run_with_adapter)
    assert main(["export", str(empty_run), "--merged", str(tmp_path / "o2")]) == 2
