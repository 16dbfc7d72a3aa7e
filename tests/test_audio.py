"""audio.py: every input a user can hand us decodes to float32 mono 16 kHz, or fails with a specific message."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import soundfile as sf

from whisper_studio.audio import SAMPLE_RATE, duration, load_audio, to_16k
from whisper_studio.errors import AudioError


def tone(seconds=1.0, sr=SAMPLE_RATE, freq=440.0, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_freq(x, sr=SAMPLE_RATE):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[int(np.argmax(spectrum))]


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_subtypes_scale_to_unit_range(tmp_path, subtype):
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, tone(amp=0.5), SAMPLE_RATE, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1 and len(y) == SAMPLE_RATE
    # integer PCM must be scaled by its full range, not left as raw integers
    assert 0.48 < np.abs(y).max() < 0.52
    assert abs(peak_freq(y) - 440) < 3


def test_stereo_441k_is_mixed_down_and_resampled(tmp_path):
    sr = 44100
    left, right = tone(2.0, sr, 440, 0.4), tone(2.0, sr, 440, 0.2)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([left, right], axis=1), sr)
    y = load_audio(path)
    assert abs(len(y) - 2 * SAMPLE_RATE) <= 2
    assert 0.28 < np.abs(y[1000:-1000]).max() < 0.32  # the mean of the channels
    assert abs(peak_freq(y) - 440) < 3
    assert duration(path) == pytest.approx(2.0)


def test_mp3_48k_and_ogg(tmp_path):
    mp3, ogg = tmp_path / "clip.mp3", tmp_path / "clip.ogg"
    sf.write(mp3, tone(3.0, 48000, 300), 48000, format="MP3")
    sf.write(ogg, tone(3.0, 48000, 300), 48000, format="OGG", subtype="VORBIS")
    for path in (mp3, ogg):
        y = load_audio(path)
        assert abs(len(y) / SAMPLE_RATE - 3.0) < 0.1, path
        assert abs(peak_freq(y) - 300) < 5
        assert duration(path) == pytest.approx(3.0, abs=0.1)


def test_bytes_and_file_like(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(0.5, 22050), 22050, subtype="PCM_16")
    data = path.read_bytes()
    a, b, c = load_audio(data), load_audio(io.BytesIO(data)), load_audio(path)
    assert len(a) == 8000 and np.array_equal(a, b) and np.array_equal(a, c)
    assert duration(data) == pytest.approx(0.5)
    assert np.array_equal(load_audio({"path": "ignored.wav", "bytes": data}), a)


def test_gradio_microphone_tuple_int16_stereo():
    sr = 48000
    x = (tone(1.0, sr, 440, 0.5) * 32767).astype(np.int16)
    y = load_audio((sr, np.stack([x, x], axis=1)))
    assert abs(len(y) - SAMPLE_RATE) <= 1
    assert 0.48 < np.abs(y).max() < 0.52
    # synth.speak's (array, sr) order works too
    assert np.allclose(load_audio((tone(1.0, 22050), 22050))[:100], load_audio((22050, tone(1.0, 22050)))[:100])
    assert duration((sr, x)) == pytest.approx(1.0)


def test_silence_is_valid(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(8000, dtype=np.int16), 8000)
    y = load_audio(path)
    assert len(y) == SAMPLE_RATE and not y.any()


def test_missing_and_empty_and_not_audio(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty \(0 bytes\)"):
        load_audio(empty)
    with pytest.raises(AudioError, match="empty"):
        load_audio(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is a text file, renamed\n" * 20)
    with pytest.raises(AudioError, match="not an audio file soundfile can read"):
        load_audio(text)
    with pytest.raises(AudioError, match="not an audio file soundfile can read"):
        duration(text)
    with pytest.raises(AudioError, match="folder"):
        load_audio(tmp_path)


def test_zero_samples(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.int16), 16000)
    assert path.stat().st_size > 0  # a valid header, no frames
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(path)
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio((16000, np.zeros(0, dtype=np.int16)))


def test_nan_and_inf(tmp_path):
    x = tone(0.2)
    x[100] = np.nan
    x[200] = np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, x, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="2 NaN or infinite"):
        load_audio(path)
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio((SAMPLE_RATE, x))


def test_truncated_mp3_decodes_what_is_there(tmp_path):
    full = tmp_path / "full.mp3"
    sf.write(full, tone(4.0, 48000, 300), 48000, format="MP3")
    data = full.read_bytes()
    half = tmp_path / "half.mp3"
    half.write_bytes(data[: len(data) // 2])
    y = load_audio(half)
    assert 1.0 < len(y) / SAMPLE_RATE < 3.0  # about half of the 4 s
    stub = tmp_path / "stub.mp3"
    stub.write_bytes(data[:300])  # a header and nothing decodable
    with pytest.raises(AudioError, match="stub.mp3"):
        load_audio(stub)


def test_ten_minute_file_is_fast(tmp_path):
    sr = 48000
    rng = np.random.default_rng(0)
    path = tmp_path / "long.wav"
    sf.write(path, (rng.standard_normal(600 * sr) * 0.1).astype(np.float32), sr, subtype="PCM_16")
    start = time.perf_counter()
    y = load_audio(path)
    elapsed = time.perf_counter() - start
    assert len(y) == 600 * SAMPLE_RATE
    assert elapsed < 5, f"10 minutes took {elapsed:.1f} s to load"
    start = time.perf_counter()
    assert duration(path) == pytest.approx(600.0)
    assert time.perf_counter() - start < 0.05  # header only


def test_to_16k_identity_and_rate_check():
    x = tone(0.1)
    assert to_16k(x, SAMPLE_RATE) is not None and np.array_equal(to_16k(x, SAMPLE_RATE), x)
    assert len(to_16k(tone(1.0, 8000), 8000)) == SAMPLE_RATE
    with pytest.raises(AudioError, match="sample rate"):
        to_16k(x, 0)
