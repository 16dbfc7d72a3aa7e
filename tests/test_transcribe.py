"""transcribe.py and inference/: real transcription with the bundled models, long-form, adapters, edge cases, the CLI."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from whisper_studio import cli, models, transcribe
from whisper_studio.config import LoraSpec
from whisper_studio.errors import AudioError, ConfigError, LanguageError, ModelError
from whisper_studio.inference.int8 import int8_linear_class
from whisper_studio.transcribe import Transcriber

SR = 16000


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _speech(text: str, voice: str = "en-us") -> np.ndarray:
    from whisper_studio import audio, synth

    array, sr = synth.speak(text, voice)
    return audio.to_16k(array, sr)


def _words(text: str) -> list[str]:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})(text).split()


def _wer(ref: str, hyp: str) -> float:
    import jiwer

    return jiwer.wer(" ".join(_words(ref)), " ".join(_words(hyp)))


@pytest.fixture(scope="module")
def tiny_en() -> Transcriber:
    return Transcriber("bundled/whisper-tiny.en", device="cpu")


# --- real models ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_base_transcribes_english_speech():
    text = "We walked along the river and talked about our plans for the summer."
    tr = transcribe.get_transcriber("bundled/whisper-base")
    result = tr.transcribe(_speech(text), language="en")
    assert _wer(text, result.text) <= 0.2, result.text
    assert result.language == "en" and result.model == "bundled/whisper-base" and result.adapter is None
    assert 2 < result.audio_seconds < 10 and result.seconds > 0
    # Detected language when none is given, and the same words.
    detected = tr.transcribe(_speech(text))
    assert detected.language == "en"
    assert _wer(text, detected.text) <= 0.2, detected.text


def test_tiny_en_transcribes_paths_and_batches(tiny_en, tmp_path):
    texts = ["The hogs were fed chopped corn and garbage.", "Help the woman get back to her feet."]
    clips = [_speech(t) for t in texts]
    path = tmp_path / "clip.wav"
    sf.write(path, clips[0], SR)
    single = [tiny_en.transcribe(str(path)).text, tiny_en.transcribe(clips[1]).text]
    for ref, hyp in zip(texts, single):
        assert _wer(ref, hyp) <= 0.25, hyp
    batched = tiny_en.transcribe_batch([path, clips[1], np.zeros(SR, np.float32)], language="en", batch_size=2)
    assert batched[:2] == single and batched[2] == ""


def test_long_audio_is_transcribed_whole(tiny_en):
    """~70 s of speech: words from after the first 30 s window, and from the very end, come out."""
    filler = _speech("The hogs were fed chopped corn and garbage. Help the woman get back to her feet.")
    gap = np.zeros(SR // 2, np.float32)
    parts = []
    while sum(p.size for p in parts) < 60 * SR:
        parts += [filler, gap]
    ending = _speech("Finally the salmon swam upstream toward the mountain.")
    long = np.concatenate(parts + [ending])
    assert long.size / SR > 65
    text = tiny_en.transcribe(long, language="en").text
    words = _words(text)
    assert {"salmon", "mountain"} <= set(words), text[-300:]
    # Every repetition of the filler is there: nothing cut at 30 s.
    assert words.count("hogs") >= len(parts) // 2 - 1, text


# --- edge cases ---------------------------------------------------------------------------------------------------
def test_silence_short_and_empty_audio(tiny_en, tmp_path):
    assert tiny_en.transcribe(np.zeros(3 * SR, np.float32)).text == ""
    with pytest.raises(AudioError):
        tiny_en.transcribe(np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="too short"):
        tiny_en.transcribe((np.random.default_rng(0).standard_normal(SR // 50) * 0.1).astype(np.float32))
    with pytest.raises(AudioError):
        tiny_en.transcribe(str(tmp_path / "missing.wav"))
    assert tiny_en.transcribe_batch([np.zeros(10, np.float32), np.zeros(SR, np.float32)]) == ["", ""]


def test_english_only_model_refuses_other_languages_and_translation(tiny_en):
    clip = np.zeros(SR, np.float32)
    assert tiny_en.transcribe(clip, language="en").language == "en"
    with pytest.raises(LanguageError, match="English-only"):
        tiny_en.transcribe(clip, language="mr")
    with pytest.raises(ModelError, match="cannot translate"):
        tiny_en.transcribe(clip, task="translate")


def test_language_codes_resolve_or_fail_clearly(tiny_model_dir):
    tr = Transcriber(str(tiny_model_dir), device="cpu")
    options = tr.options("sv-SE", "transcribe")
    assert (tr.decoder.generate_kwargs(options), options.code) == ({"task": "transcribe", "language": "sv"}, "sv")
    assert tr.options("Marathi", "translate").code == "mr"
    assert tr.options("la", "transcribe").code == "la"  # a Whisper language Common Voice lacks
    with pytest.raises(LanguageError):
        tr.transcribe(np.zeros(SR, np.float32), language="klingon-XX")


# --- adapters -----------------------------------------------------------------------------------------------------
def _adapter(base_dir: Path, out: Path, seed: int) -> Path:
    model = models.load_model(str(base_dir))
    peft_model = models.attach_lora(model, LoraSpec(rank=4, alpha=8), prepare_kbit=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # non-zero B: the adapter really changes the model
                p.copy_(torch.randn(p.shape, generator=gen) * 2.0)
    peft_model.save_pretrained(str(out))
    return out


def _noise() -> np.ndarray:
    return (np.random.default_rng(1).standard_normal(2 * SR) * 0.1).astype(np.float32)


def test_adapters_switch_over_one_base(tiny_model_dir, tmp_path):
    a = _adapter(tiny_model_dir, tmp_path / "a", seed=1)
    b = _adapter(tiny_model_dir, tmp_path / "b", seed=2)
    tr = Transcriber(str(tiny_model_dir), device="cpu")
    audio = _noise()
    base_before = tr.transcribe(audio, language="en", max_new_tokens=12).text
    base_only, none = tr.transcribe_both(audio, language="en", max_new_tokens=12)
    assert none is None and base_only.text == base_before
    with pytest.raises(ModelError, match="No adapter"):
        tr.transcribe(audio, language="en", adapted=True, max_new_tokens=12)

    tr.set_adapter(a)
    base, adapted_a = tr.transcribe_both(audio, language="en", max_new_tokens=12)
    assert base.text == base_before  # adapter disabled: exactly the base model
    assert adapted_a.adapter == str(a.resolve()) and base.adapter is None
    assert adapted_a.text != base_before
    tr.set_adapter(b)
    text_b = tr.transcribe(audio, language="en", adapted=True, max_new_tokens=12).text
    assert text_b != adapted_a.text
    tr.set_adapter(a)  # already loaded: switched, not reloaded
    assert tr.transcribe(audio, language="en", adapted=True, max_new_tokens=12).text == adapted_a.text
    assert len(tr.adapters) == 2
    assert tr.transcribe_batch([audio], language="en", adapted=True, max_new_tokens=12) == [adapted_a.text]
    assert tr.transcribe_batch([audio], language="en", adapted=False, max_new_tokens=12) == [base_before]
    tr.set_adapter(None)
    assert tr.transcribe_both(audio, language="en", max_new_tokens=12)[1] is None
    # Retrained into the same folder: the stale copy in memory is replaced on the next set_adapter.
    _adapter(tiny_model_dir, a, seed=7)
    later = time.time() + 5
    os.utime(a / "adapter_model.safetensors", (later, later))
    tr.set_adapter(a)
    retrained = tr.transcribe(audio, language="en", adapted=True, max_new_tokens=12).text
    fresh = Transcriber(str(tiny_model_dir), device="cpu")
    fresh.set_adapter(a)
    assert retrained == fresh.transcribe(audio, language="en", adapted=True, max_new_tokens=12).text
    assert retrained != adapted_a.text
    assert tr.transcribe(audio, language="en", max_new_tokens=12).text == base_before


def test_session_keeps_its_adapter_until_the_block_ends(tiny_model_dir, tmp_path):
    """evaluation's guarantee: inside a session no other caller can switch the adapter between passes."""
    import threading

    a = _adapter(tiny_model_dir, tmp_path / "a", seed=1)
    tr = Transcriber(str(tiny_model_dir), device="cpu")
    switched = threading.Event()

    def other_caller():
        tr.set_adapter(None)
        switched.set()

    with tr.session(a) as session:
        thread = threading.Thread(target=other_caller)
        thread.start()
        assert not switched.wait(0.3)  # blocked on the session's lock
        assert session.adapter == str(a.resolve())
        session.transcribe_batch([_noise()], language="en", adapted=True, max_new_tokens=4)
    thread.join(10)
    assert switched.is_set() and tr.adapter is None


def test_get_transcriber_keeps_one_model(tiny_model_dir):
    first = transcribe.get_transcriber(str(tiny_model_dir))
    assert transcribe.get_transcriber(str(tiny_model_dir)) is first
    other = transcribe.get_transcriber("bundled/whisper-tiny.en")
    assert other is not first and transcribe._current is other
    transcribe.release_transcriber()
    assert transcribe._current is None


# --- command line ------------------------------------------------------------------------------------------------
def test_cli_json_lines_and_missing_files(tiny_model_dir, tmp_path, capsys):
    wav = tmp_path / "one.wav"
    sf.write(wav, _noise(), SR)
    adapter = _adapter(tiny_model_dir, tmp_path / "adapter", seed=3)
    rc = cli.main(["transcribe", str(wav), str(tmp_path / "nope.wav"), "--model", str(tiny_model_dir),
                   "--adapter", str(adapter), "--language", "en", "--json", "--max-new-tokens", "8"])
    out, err = capsys.readouterr()
    assert rc != 0 and "nope.wav" in err
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(rows) == 1
    row = rows[0]
    assert row["path"] == str(wav) and row["model"] == str(tiny_model_dir)
    assert {"text", "seconds", "adapted_text", "language"} <= set(row) and row["language"] == "en"
    rc = cli.main(["transcribe", str(wav), "--model", str(tiny_model_dir), "--language", "en", "--max-new-tokens", "8"])
    out, _ = capsys.readouterr()
    assert rc == 0 and out.startswith(f"{wav}: ")


# --- precision (int8 / bf16 / fp32) and the greedy loop -------------------------------------------------------------
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def _example(name: str) -> tuple[np.ndarray, str]:
    from whisper_studio import audio

    known = {e["file"]: e["text"] for e in json.loads((EXAMPLES / "examples.json").read_text(encoding="utf-8"))}
    return audio.load_audio(EXAMPLES / name), known[name]


def test_inference_mode_resolution(monkeypatch):
    monkeypatch.delenv(transcribe.INFERENCE_ENV, raising=False)
    assert transcribe.inference_mode() == transcribe.CPU_DEFAULT_INFERENCE == "int8"
    assert transcribe.inference_mode(device="cuda") == "fp16"
    assert transcribe.inference_mode(dtype=torch.float32) == "fp32"
    assert transcribe.inference_mode(dtype=torch.bfloat16) == "bf16"
    assert transcribe.inference_mode("BF16") == "bf16"
    monkeypatch.setenv(transcribe.INFERENCE_ENV, "fp32")
    assert transcribe.inference_mode() == "fp32"
    assert transcribe.inference_mode("int8") == "int8"  # an explicit choice beats the environment
    monkeypatch.setenv(transcribe.INFERENCE_ENV, "auto")
    assert transcribe.inference_mode() == "int8"
    monkeypatch.setenv(transcribe.INFERENCE_ENV, "int4")
    with pytest.raises(ConfigError, match=transcribe.INFERENCE_ENV):
        transcribe.inference_mode()
    with pytest.raises(ConfigError, match="CPU-only"):
        transcribe.inference_mode("int8", device="cuda")
    with pytest.raises(ConfigError, match="GPU"):
        transcribe.inference_mode("fp16")


@pytest.mark.parametrize("mode", ["int8", "bf16", "fp32"])
def test_every_precision_transcribes_the_english_example(mode):
    array, text = _example("en_1.wav")
    tr = Transcriber("bundled/whisper-tiny.en", device="cpu", inference=mode)
    assert tr.inference == mode
    if mode == "int8":
        assert isinstance(tr.base.proj_out, int8_linear_class())
    assert tr.base.model.encoder.conv1.weight.dtype == (torch.bfloat16 if mode == "bf16" else torch.float32)
    result = tr.transcribe(array, language="en")
    assert _wer(text, result.text) <= 0.2, result.text
    # Batched and alone: the same words (int8 quantizes each item's activations on their own).
    other, _ = _example("en_2.wav")
    assert tr.transcribe_batch([array, other], language="en", batch_size=2)[0] == result.text


def test_greedy_loop_matches_generate(tiny_model_dir):
    """fp32: the greedy loop gives generate()'s transcripts, with the language given or detected."""
    array, _ = _example("en_1.wav")
    clips = [array, _noise()]
    tr = Transcriber("bundled/whisper-tiny.en", device="cpu", inference="fp32")
    fast = [tr.transcribe(c, language="en").text for c in clips]
    tr.fast_decode = False
    assert [tr.transcribe(c, language="en").text for c in clips] == fast
    rand = Transcriber(str(tiny_model_dir), device="cpu", inference="fp32")
    fast = [(r.text, r.language) for r in (rand.transcribe(c, max_new_tokens=10) for c in clips)]
    fast_batch = rand.transcribe_batch(clips, max_new_tokens=10)
    rand.fast_decode = False
    assert [(r.text, r.language) for r in (rand.transcribe(c, max_new_tokens=10) for c in clips)] == fast
    assert fast_batch == [t for t, _ in fast]


@pytest.mark.parametrize("mode", ["int8", "bf16"])
def test_adapters_toggle_on_the_fast_paths(tiny_model_dir, tmp_path, mode):
    adapter = _adapter(tiny_model_dir, tmp_path / "a", seed=1)
    tr = Transcriber(str(tiny_model_dir), device="cpu", inference=mode)
    audio = _noise()
    base_before = tr.transcribe(audio, language="en", max_new_tokens=12).text
    tr.set_adapter(adapter)
    lora = [m for n, m in tr.model.named_modules() if n.endswith("q_proj") and hasattr(m, "lora_A")]
    assert lora and all(m.lora_A[next(iter(m.lora_A))].weight.dtype == torch.float32 for m in lora)
    if mode == "int8":
        assert all(isinstance(m.base_layer, int8_linear_class()) for m in lora)
    base, adapted = tr.transcribe_both(audio, language="en", max_new_tokens=12)
    assert base.text == base_before and adapted.text != base_before
    assert tr.transcribe_batch([audio], language="en", adapted=True, max_new_tokens=12) == [adapted.text]
    tr.set_adapter(None)
    tr.lora.drop(str(adapter.resolve()))  # all adapters gone: the bare (still int8 / bf16) base again
    assert tr.model is tr.base
    assert tr.transcribe(audio, language="en", max_new_tokens=12).text == base_before


def test_long_audio_on_the_int8_path():
    """Over 30 s goes through our windowed loop on the quantized model; nothing is cut at 30 s."""
    array, _ = _example("en_long.wav")
    array = array[: 45 * SR]
    tr = Transcriber("bundled/whisper-tiny.en", device="cpu", inference="int8")
    text = tr.transcribe(array, language="en").text
    assert len(_words(text)) > 60, text


def test_short_clip_features_are_those_faster_whisper_and_openai_use():
    """Frames after a short clip are 0.0 (OpenAI's transcribe() and faster-whisper), not the mel of silence."""
    import numpy as np
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    from whisper_studio.audio import load_audio
    from whisper_studio.transcribe import Transcriber

    audio = load_audio(EXAMPLES / "en_1.wav")
    ours, _ = Transcriber("bundled/whisper-tiny.en", inference="fp32")._features([audio], long_form=False)
    frames = len(audio) // 160
    reference = pad_or_trim(FeatureExtractor(feature_size=80)(audio)[:, :frames])
    assert ours.shape == (1, 80, 3000)
    assert np.abs(ours[0].numpy() - reference).max() < 1e-4
    assert float(ours[0, :, frames:].abs().max()) == 0.0
