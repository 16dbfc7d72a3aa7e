"""inference/longform.py: audio over 30 s in 30 s windows with timestamp seeking, through our own greedy loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from whisper_studio import models
from whisper_studio.audio import load_audio
from whisper_studio.config import LoraSpec
from whisper_studio.inference.longform import WINDOW_FRAMES, seek_step
from whisper_studio.transcribe import Transcriber

SR = 16000
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _words(text: str) -> list[str]:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})(text).split()


@pytest.fixture(scope="module")
def speech_60s() -> np.ndarray:
    """60 s of English speech: the two short English examples, then the long one, cut at 60 s."""
    parts = [load_audio(EXAMPLES / name) for name in ("en_1.wav", "en_2.wav", "en_long.wav")]
    gap = np.zeros(SR // 4, np.float32)
    joined = np.concatenate([parts[0], gap, parts[1], gap, parts[2]])[: 60 * SR]
    assert joined.size == 60 * SR
    return np.ascontiguousarray(joined, dtype=np.float32)


@pytest.fixture(scope="module")
def base_int8() -> Transcriber:
    return Transcriber("bundled/whisper-base", device="cpu", inference="int8")


# --- the seek rule -------------------------------------------------------------------------------------------------
def test_seek_follows_the_last_complete_timestamp_pair():
    tb = 1000  # timestamp tokens are >= tb; tb + k is k * 0.02 s
    # <0.00> a b <2.00><2.00> c d <4.00><4.00> e (cut by the window's end): resume at 4.00 s, drop "e".
    seq = [tb, 1, 2, tb + 100, tb + 100, 3, 4, tb + 200, tb + 200, 5]
    step = seek_step(seq, tb, WINDOW_FRAMES)
    assert step.advance == 400 and step.tokens == seq[:-1]
    # Ending on a single timestamp: speech ended inside the window, so the whole window is done.
    seq = [tb, 1, 2, tb + 100, tb + 100, 3, tb + 250]
    assert seek_step(seq, tb, WINDOW_FRAMES).advance == WINDOW_FRAMES
    # No pair at all (or nothing decoded): the whole window, every token kept.
    assert seek_step([tb, 1, 2], tb, 1234).advance == 1234
    assert seek_step([], tb, WINDOW_FRAMES).tokens == []


# --- same text as transformers' long-form generate() -------------------------------------------------------------------
def test_windowed_long_form_matches_generate_on_60s_of_speech(base_int8, speech_60s):
    """The bundled base on the int8 path: our windowed loop gives generate()'s long-form text, window by window."""
    calls: list[tuple[float, float]] = []
    ours = base_int8.transcribe(speech_60s, language="en", progress=lambda done, total: calls.append((done, total)))
    base_int8.fast_decode = False
    try:
        reference = base_int8.transcribe(speech_60s, language="en")
    finally:
        base_int8.fast_decode = True
    assert ours.text == reference.text
    assert len(_words(ours.text)) > 120, ours.text
    # Progress: before the first window and after each, ending at the whole audio; the seeks come from timestamps
    # (not whole 30 s steps), so the windows really were cut at segment boundaries.
    assert calls[0] == (0.0, 60.0) and calls[-1] == (60.0, 60.0) and len(calls) >= 4
    done = [d for d, _ in calls]
    assert done == sorted(done) and any(0 < d < 30 for d in done)


def test_windows_of_several_recordings_batch_side_by_side(speech_60s):
    """transcribe_batch decodes long recordings' windows together: the same text as one at a time."""
    tr = Transcriber("bundled/whisper-tiny.en", device="cpu", inference="int8")
    other = np.ascontiguousarray(speech_60s[5 * SR: 45 * SR])
    alone = [tr.transcribe(a, language="en").text for a in (speech_60s, other)]
    assert tr.transcribe_batch([speech_60s, other], language="en", batch_size=2) == alone
    assert all(len(_words(t)) > 60 for t in alone)


def test_language_detected_on_the_first_window_and_token_cap(tiny_model_dir):
    """A random multilingual model: language detected once per recording, max_new_tokens per window."""
    noise = (np.random.default_rng(0).standard_normal(40 * SR) * 0.1).astype(np.float32)
    tr = Transcriber(str(tiny_model_dir), device="cpu", inference="fp32")
    result = tr.transcribe(noise, max_new_tokens=6)
    assert result.language in tr.decoder.id_to_lang.values()
    tr.fast_decode = False
    reference = tr.transcribe(noise, language=result.language, max_new_tokens=6)
    tr.fast_decode = True
    assert tr.transcribe(noise, language=result.language, max_new_tokens=6).text == reference.text


# --- 12.3: an adapted model still segments long audio -----------------------------------------------------------------
def _random_adapter(base: str, out: Path) -> Path:
    """A LoRA of the shape training makes (r=32, q/v) with small random B: output changes, stays speech-like."""
    model = models.load_model(base)
    peft_model = models.attach_lora(model, LoraSpec(rank=32, alpha=64), prepare_kbit=False)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.002)
    peft_model.save_pretrained(str(out))
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert set(config["target_modules"]) >= {"q_proj", "v_proj"}
    return out


def test_adapted_model_transcribes_60s_whole(base_int8, speech_60s, tmp_path):
    adapter = _random_adapter("bundled/whisper-base", tmp_path / "adapter")
    base_int8.set_adapter(adapter)
    try:
        calls: list[tuple[float, float]] = []
        base, adapted = base_int8.transcribe_both(speech_60s, language="en",
                                                  progress=lambda done, total: calls.append((done, total)))
    finally:
        base_int8.set_adapter(None)
    assert adapted is not None and adapted.adapter == str(adapter.resolve())
    assert adapted.text != base.text  # the adapter is really on
    # Whole audio: both passes reached the end (progress over two passes), and the adapted text is as long as
    # the base's and ends with the base's last words (the last window was decoded).
    assert calls[-1] == (120.0, 120.0) and (60.0, 120.0) in calls
    base_words, adapted_words = _words(base.text), _words(adapted.text)
    assert len(adapted_words) >= 0.8 * len(base_words) > 100, adapted.text
    assert set(base_words[-6:]) & set(adapted_words[-10:]), (base.text[-200:], adapted.text[-200:])
    # The adapted pass also seeked on timestamps (segments), not in blind 30 s steps.
    assert any(60 < done < 90 for done, _ in calls), calls
