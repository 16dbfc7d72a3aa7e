"""eSpeak NG through ctypes: it speaks every demo language, honours rate and variants, and is thread-safe."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from whisper_studio import synth
from whisper_studio.errors import AudioError

# One sentence per demo language, about 2-4 s of speech at 175 words per minute.
SAMPLES = {
    "en-us": "The children are reading a new book in the garden.",
    "hi": "मेरी बहन हर सुबह बगीचे में किताब पढ़ती है।",
    "mr": "माझा भाऊ उद्या बाजारात नवी सायकल विकत घेईल.",
    "ta": "என் அக்கா நேற்று நூலகத்தில் ஒரு புதிய புத்தகம் படித்தாள்.",
    "de": "Meine Schwester liest jeden Morgen ein Buch im Garten.",
    "es": "Mi hermano compró una mesa vieja en el mercado.",
    "fr": "Ma sœur lit un livre intéressant dans le jardin.",
    "it": "Mia sorella legge un libro interessante in giardino.",
    "nl": "Mijn zus leest elke ochtend een boek in de tuin.",
    "pt-br": "Meu irmão comprou uma mesa velha no mercado.",
}

pytestmark = pytest.mark.skipif(not synth.available(), reason="eSpeak NG (espeakng-loader) does not load here")


def test_samples_cover_every_demo_voice():
    from whisper_studio import demo

    assert set(demo.BASE_VOICE.values()) == set(SAMPLES)


@pytest.mark.parametrize("voice", list(SAMPLES))
def test_speaks_each_demo_language(voice):
    samples, sr = synth.speak(SAMPLES[voice], voice)
    assert sr == 22050
    assert samples.dtype == np.float32 and samples.ndim == 1
    seconds = samples.size / sr
    assert 1.5 < seconds < 8.0, seconds  # a ~10-word sentence, not a beep and not a runaway
    assert float(np.sqrt(np.mean(samples ** 2))) > 0.02  # audible speech, not silence
    assert float(np.abs(samples).max()) <= 1.0


def test_rate_and_variant_change_the_audio():
    text = SAMPLES["de"]
    slow, sr = synth.speak(text, "de", rate=140)
    fast, _ = synth.speak(text, "de", rate=200)
    assert fast.size < 0.85 * slow.size  # faster speech is shorter
    female, _ = synth.speak(text, "de+f2", rate=140)
    assert female.shape != slow.shape or not np.array_equal(female, slow)


def test_same_input_nearly_same_audio():
    """eSpeak is not bit-exact from call to call (its pitch flutter and breath noise carry state between
    utterances), but the same text, voice and rate give the same speech to within a few percent of its length."""
    a, sr = synth.speak(SAMPLES["mr"], "mr+f2", rate=160)
    b, _ = synth.speak(SAMPLES["mr"], "mr+f2", rate=160)
    assert abs(a.size - b.size) < 0.05 * a.size


def test_thread_safe():
    """The C library has one callback and one voice; without the lock, threads would mix their chunks
    (wrong lengths) or speak with each other's voice and rate."""
    jobs = [(SAMPLES[v], v + ("+f2" if i % 2 else ""), 140 + 30 * (i % 3)) for i, v in enumerate(list(SAMPLES) * 2)]
    expected = [synth.speak(t, v, rate=r)[0].size for t, v, r in jobs]
    results: list = [[] for _ in jobs]

    def work(i):
        for _ in range(3):
            results[i].append(synth.speak(jobs[i][0], jobs[i][1], rate=jobs[i][2])[0].size)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sizes, want in zip(results, expected):
        assert len(sizes) == 3
        for got in sizes:
            # eSpeak itself varies by up to ~3% between identical calls; a lost lock shows as merged chunks
            # (double length) or another thread's rate (140 vs 200 wpm: ~30%).
            assert abs(got - want) < 0.05 * want, (got, want)


def test_bad_input_is_a_user_error():
    with pytest.raises(AudioError, match="no voice"):
        synth.speak("hello", "zz-nope")
    with pytest.raises(AudioError, match="empty"):
        synth.speak("   ", "en")
    with pytest.raises(AudioError, match="rate"):
        synth.speak("hello", "en", rate=20)


def test_voices_for_locales():
    assert synth.voices_for("en")[0] == "en-us"
    assert "en-gb-scotland" in synth.voices_for("en")
    for locale in ("hi", "mr", "ta", "de", "es"):
        assert synth.voices_for(locale)[0] == locale
    assert synth.voices_for("pt")[0] == "pt-br"
    assert "zh-yue" not in synth.voices_for("zh-CN")  # Cantonese is not Mandarin
    assert synth.voices_for("xx") == []
    with_variants = synth.voices_for("mr", variants=True)
    assert "mr+f2" in with_variants and "mr+m3" in with_variants
    for voice in with_variants[:4]:
        assert synth.speak("नमस्कार", voice)[0].size > 0  # every listed name is accepted by eSpeak


def test_library_that_does_not_load(monkeypatch):
    """A missing or broken libespeak-ng is a clear AudioError, and available() says False."""
    import espeakng_loader

    monkeypatch.setattr(synth, "_state", {})
    monkeypatch.setattr(synth, "_load_error", None)
    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak-ng.so")
    assert synth.available() is False
    with pytest.raises(AudioError, match="eSpeak NG .*could not be loaded"):
        synth.speak("hello", "en")
