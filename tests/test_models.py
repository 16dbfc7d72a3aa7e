"""models/: catalog, bundled conversion (cached, sha-checked, atomic), hub/offline rules, 8-bit, LoRA."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from whisper_studio import models
from whisper_studio.config import LoraSpec
from whisper_studio.errors import ModelError, OfflineError

REPO = Path(__file__).resolve().parent.parent
SENTENCE = "We walked along the river and talked about our plans for the summer."


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _speech(text: str = SENTENCE, voice: str = "en-us") -> np.ndarray:
    from whisper_studio import audio, synth

    array, sr = synth.speak(text, voice)
    return audio.to_16k(array, sr)


# --- catalog and ids ----------------------------------------------------------------------------------------------
def test_catalog_lists_bundled_first_and_english_only_variants():
    cat = models.catalog()
    ids = [m.id for m in cat]
    assert ids[:2] == ["bundled/whisper-base", "bundled/whisper-tiny.en"]
    assert all(m.bundled for m in cat[:2]) and not any(m.bundled for m in cat[2:])
    for size in ("tiny", "base", "small", "medium", "large", "large-v2", "large-v3", "large-v3-turbo"):
        assert f"openai/whisper-{size}" in ids
    for size in ("tiny", "base", "small", "medium"):
        assert f"openai/whisper-{size}.en" in ids
    assert "openai/whisper-large.en" not in ids
    by_id = {m.id: m for m in cat}
    assert not by_id["openai/whisper-small.en"].multilingual and by_id["openai/whisper-small"].multilingual
    assert not by_id["bundled/whisper-tiny.en"].multilingual and by_id["bundled/whisper-base"].multilingual
    assert len(ids) == len(set(ids))


def test_unknown_ids_name_close_matches(tmp_path):
    with pytest.raises(ModelError, match="openai/whisper-small"):
        models.resolve("whisper-smal")
    with pytest.raises(ModelError, match="bundled/whisper-base"):
        models.resolve("bundled/whisper-huge")
    with pytest.raises(ModelError, match="No model folder"):
        models.resolve(str(tmp_path / "nowhere" / "model"))
    with pytest.raises(ModelError, match="no config.json"):
        models.resolve(str(tmp_path))
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelError, match="adapter, not a model"):
        models.resolve(str(tmp_path))


def test_hub_id_offline_fails_fast_naming_bundled(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty HF cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.perf_counter()
    with pytest.raises(OfflineError) as err:
        models.resolve("openai/whisper-small")
    assert time.perf_counter() - t < 5
    assert "bundled/whisper-base" in str(err.value)
    # Not flagged offline, but the hub does not answer (a closed local port): still fast, still OfflineError.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)  # util.hub_offline reads every HF flag
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    t = time.perf_counter()
    with pytest.raises(OfflineError, match="bundled"):
        models.resolve("openai/whisper-medium.en")
    assert time.perf_counter() - t < 5


# --- bundled conversion ----------------------------------------------------------------------------------------
def _marker(folder: Path) -> dict:
    return json.loads((folder / models.MARKER_NAME).read_text())


_CONVERT = textwrap.dedent(
    """
    import time
    from whisper_studio import models
    t = time.perf_counter()
    print(models.resolve("bundled/whisper-tiny.en"), round(time.perf_counter() - t, 2))
    """
)


def test_tiny_en_conversion_is_concurrent_safe_cached_checked_and_atomic(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("WHISPER_STUDIO_CACHE", str(cache))
    root = cache / "models"
    # What a killed conversion leaves: a temp folder, and a final-named folder without a marker.
    stale_tmp = root / ".tmp-whisper-tiny.en-99999-deadbeef"
    stale_tmp.mkdir(parents=True)
    (stale_tmp / "model.safetensors").write_bytes(b"half")
    half = root / "whisper-tiny.en"
    half.mkdir()
    (half / "config.json").write_text('{"model_type": "whisper"}')

    # Two processes convert at once: the lock makes one convert and the other reuse its folder.
    env = {**os.environ, "WHISPER_STUDIO_CACHE": str(cache), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _CONVERT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert {Path(o[0].split()[0]) for o in outs} == {half}

    folder = models.resolve("bundled/whisper-tiny.en")
    assert folder == half
    assert not stale_tmp.exists() and not list(root.glob(".tmp-*")) and not list(root.glob(".old-*"))
    marker = _marker(folder)
    assert marker["sha256"] == models.ct2._sha256_files(models.bundled_source_files("whisper-tiny.en"))
    config = json.loads((folder / "config.json").read_text())
    gen = json.loads((folder / "generation_config.json").read_text())
    assert config["vocab_size"] == 51864 and config["d_model"] == 384 and config["num_mel_bins"] == 80
    assert gen["is_multilingual"] is False and "lang_to_id" not in gen
    assert gen["max_initial_timestamp_index"] == 50 and gen["alignment_heads"]

    processor = models.load_processor("bundled/whisper-tiny.en")
    tok = processor.tokenizer
    assert len(tok) == config["vocab_size"]  # the 1501 timestamp tokens were added
    assert tok.convert_tokens_to_ids("<|0.00|>") == gen["no_timestamps_token_id"] + 1
    assert tok.convert_tokens_to_ids("<|endoftext|>") == gen["eos_token_id"] == 50256  # English-only ids
    assert gen["decoder_start_token_id"] == tok.convert_tokens_to_ids("<|startoftranscript|>")

    # Second use: the cached folder, no rewrite.
    weights = folder / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    t = time.perf_counter()
    assert models.resolve("bundled/whisper-tiny.en") == folder
    assert time.perf_counter() - t < 0.5
    assert weights.stat().st_mtime_ns == mtime

    # Marker whose file stats changed but sha still matches (e.g. a reinstall of the same package): kept.
    data = _marker(folder)
    data["files"] = []
    (folder / models.MARKER_NAME).write_text(json.dumps(data))
    models.resolve("bundled/whisper-tiny.en")
    assert weights.stat().st_mtime_ns == mtime
    # Marker from other source bytes: reconverted.
    data["sha256"] = "0" * 64
    (folder / models.MARKER_NAME).write_text(json.dumps(data))
    models.resolve("bundled/whisper-tiny.en")
    assert _marker(folder)["sha256"] == marker["sha256"]
    assert (folder / "model.safetensors").stat().st_mtime_ns != mtime
    assert models.load_model(str(folder)).config.vocab_size == 51864


@pytest.mark.slow
def test_base_conversion_parameters_and_generation_config():
    model = models.load_model("bundled/whisper-base")
    assert models.count_parameters(model) == 72_593_920  # the official whisper-base count
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    processor = models.load_processor("bundled/whisper-base")
    tok = processor.tokenizer
    gen = model.generation_config
    assert len(tok) == model.config.vocab_size == 51865
    assert processor.feature_extractor.feature_size == model.config.num_mel_bins == 80
    assert gen.is_multilingual and len(gen.lang_to_id) == 99
    for token, token_id in gen.lang_to_id.items():
        assert tok.convert_ids_to_tokens(token_id) == token
    assert gen.task_to_id == {"transcribe": tok.convert_tokens_to_ids("<|transcribe|>"), "translate": tok.convert_tokens_to_ids("<|translate|>")}
    assert gen.no_timestamps_token_id == tok.convert_tokens_to_ids("<|notimestamps|>")
    assert gen.prev_sot_token_id == tok.convert_tokens_to_ids("<|startofprev|>")
    assert tok.decode([gen.no_timestamps_token_id + 1, 2425, 1002, gen.no_timestamps_token_id + 37], decode_with_timestamps=True).startswith("<|0.00|>")


def _ct2_reference(name: str, features: torch.Tensor, prompt: list[int]):
    import ctranslate2

    ct = ctranslate2.models.Whisper(str(models.bundled_ct2_dir(name)), device="cpu", compute_type="float32", intra_threads=1)
    storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features.numpy()))
    return ct.generate(storage, [prompt], beam_size=1, return_logits_vocab=True, max_length=448)[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["whisper-tiny.en", "whisper-base"])
def test_conversion_matches_faster_whisper_on_identical_features(name):
    """Same features in, same greedy token ids out as CTranslate2 (faster-whisper's engine); logits close."""
    model_id = f"bundled/{name}"
    model = models.load_model(model_id)
    processor = models.load_processor(model_id)
    tok = processor.tokenizer
    features = processor.feature_extractor(_speech(), sampling_rate=16000, return_tensors="pt").input_features
    multilingual = model.generation_config.is_multilingual
    prompt_tokens = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"] if multilingual else ["<|startoftranscript|>", "<|notimestamps|>"]
    prompt = tok.convert_tokens_to_ids(prompt_tokens)
    with torch.inference_mode():
        ours = model.generate(features, **({"language": "en", "task": "transcribe"} if multilingual else {}))[0].tolist()
    ref = _ct2_reference(name, features, prompt)
    generated = [t for t in ours if t not in prompt and t != tok.eos_token_id]
    assert generated == ref.sequences_ids[0]
    assert len(generated) > 5
    with torch.inference_mode():
        logits = model(input_features=features, decoder_input_ids=torch.tensor([prompt + ref.sequences_ids[0]])).logits[0]
    worst = 0.0
    for step, theirs in enumerate(ref.logits[0]):  # first (only) hypothesis
        theirs = np.asarray(theirs, dtype=np.float32).reshape(-1)
        mine = logits[len(prompt) - 1 + step].numpy()
        live = theirs > -1e30  # CTranslate2 reports suppressed tokens as -FLT_MAX
        worst = max(worst, float(np.abs(theirs[live] - mine[live]).max()))
    assert worst < 1e-3, worst


# --- random models, mel bins, 8-bit, LoRA ----------------------------------------------------------------------
def test_random_tiny_model_loads_with_real_tokenizer(tiny_model_dir):
    model = models.load_model(str(tiny_model_dir))
    processor = models.load_processor(str(tiny_model_dir))
    assert model.config.d_model == 64 and model.config.encoder_layers == 2
    assert len(processor.tokenizer) == model.config.vocab_size == 51865
    assert model.generation_config.lang_to_id["<|mr|>"] == processor.tokenizer.convert_tokens_to_ids("<|mr|>")
    assert all(layer < model.config.decoder_layers for layer, _ in model.generation_config.alignment_heads)


def test_feature_extractor_follows_model_mel_bins(tiny_model_dir, tmp_path):
    folder = tmp_path / "m128"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["num_mel_bins"] = 128  # as large-v3: whatever preprocessor file ships, the model decides
    (folder / "config.json").write_text(json.dumps(config))
    assert models.load_processor(str(folder)).feature_extractor.feature_size == 128
    assert models.load_processor(str(tiny_model_dir)).feature_extractor.feature_size == 80


def _batch(model, n=2):
    features = torch.randn(n, model.config.num_mel_bins, 3000)
    labels = torch.tensor([[50258, 50259, 50359, 50363, 400, 401, 50257]] * n)
    return features, labels


def test_8bit_load_and_lora_training_step(tiny_model_dir):
    import bitsandbytes as bnb

    model = models.load_model(str(tiny_model_dir), load_in_8bit=True, device="cpu")
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in model.modules())
    peft_model = models.attach_lora(model, LoraSpec(rank=4, alpha=8), prepare_kbit=True)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert {n.split(".")[-4] for n in trainable if n.endswith("lora_A.default.weight")} == {"q_proj", "v_proj"}
    peft_model.train()
    features, labels = _batch(model)
    loss = peft_model(input_features=features, labels=labels).loss
    loss.backward()
    # B starts at zero, so the first step's gradient reaches B (A's gradient is B-weighted, hence zero).
    grads = {n: p.grad for n, p in peft_model.named_parameters() if "lora_B" in n}
    assert all(g is not None and float(g.abs().sum()) > 0 for g in grads.values()), [n for n, g in grads.items() if g is None or not g.any()]
    assert any("encoder" in n for n in grads) and any("decoder" in n for n in grads)


def _save_adapter(base_dir: Path, out: Path, seed: int, targets=("q_proj", "v_proj")) -> Path:
    """A LoRA adapter whose B matrices are non-zero (a fresh one is an identity: B starts at zero)."""
    model = models.load_model(str(base_dir))
    peft_model = models.attach_lora(model, LoraSpec(rank=4, alpha=8, target_modules=targets), prepare_kbit=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    peft_model.save_pretrained(str(out))
    return out


def test_load_adapter_changes_outputs_and_rejects_wrong_base(tiny_model_dir, tmp_path):
    adapter = _save_adapter(tiny_model_dir, tmp_path / "adapter", seed=1)
    features, labels = _batch(models.load_model(str(tiny_model_dir)), n=1)
    base = models.load_model(str(tiny_model_dir))
    with torch.inference_mode():
        base_logits = base(input_features=features, labels=labels).logits
    adapted = models.load_adapter(models.load_model(str(tiny_model_dir)), adapter)
    with torch.inference_mode():
        on = adapted(input_features=features, labels=labels).logits
        with adapted.disable_adapter():
            off = adapted(input_features=features, labels=labels).logits
    assert not torch.allclose(on, base_logits, atol=1e-3)
    assert torch.allclose(off, base_logits, atol=1e-5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a LoRA adapter"):
        models.load_adapter(base, tmp_path / "empty")
    # An adapter made for another shape of model does not load silently.
    wide = tmp_path / "wide"
    shutil.copytree(tiny_model_dir, wide)
    cfg = json.loads((wide / "config.json").read_text())
    cfg.update(d_model=128, encoder_ffn_dim=256, decoder_ffn_dim=256)
    (wide / "config.json").write_text(json.dumps(cfg))
    (wide / "model.safetensors").unlink()
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    WhisperForConditionalGeneration(WhisperConfig.from_pretrained(str(wide))).save_pretrained(str(wide))
    with pytest.raises(ModelError, match="different base model"):
        models.load_adapter(models.load_model(str(wide)), adapter)
