"""recordings.RecordingSet: the Record panel's engine builds a Common Voice-layout folder that is a source."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from whisper_studio import data
from whisper_studio.errors import AudioError, DataSourceError
from whisper_studio.recordings import RecordingSet, split_text


def voice(seconds=0.8, sr=48000, freq=180.0):
    t = np.arange(int(seconds * sr)) / sr
    return sr, (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)  # gradio's microphone value


def test_record_sentences_then_load_as_a_cv_folder(tmp_path):
    rec = RecordingSet(tmp_path / "mine", "en", text="The cat sat. The dog ran!\nBirds sing\n\n")
    assert rec.counts().clips == 0
    seen = []
    for i in range(3):
        sentence = rec.next_sentence()
        assert sentence not in seen  # never proposes a sentence already recorded
        seen.append(sentence)
        clip = rec.add(voice(freq=150 + 40 * i), sentence)
        assert clip.parent == tmp_path / "mine" / "clips"
        info = sf.info(clip)
        assert (info.samplerate, info.channels, info.format) == (16000, 1, "WAV")
    with pytest.raises(DataSourceError, match="Every sentence of the text is recorded"):
        rec.next_sentence()
    assert seen == ["The cat sat.", "The dog ran!", "Birds sing"]
    rec.add(voice(freq=300), "The dog ran!")  # a second take of a test sentence goes to test too
    counts = rec.counts()
    assert (counts.train_clips, counts.test_clips) == (2, 2) and counts.test_sentences == 1
    assert counts.seconds == pytest.approx(3.2, abs=0.05)
    src = rec.source_config()
    assert src.kind == "cv-folder"
    dsd = data.load_source(src)
    train, test = set(dsd["train"]["sentence"]), set(dsd["test"]["sentence"])
    assert train == {"The cat sat.", "Birds sing"} and test == {"The dog ran!"}


def test_demo_sentences_and_bad_input(tmp_path):
    rec = RecordingSet(tmp_path / "mr-set", "Marathi")
    first = rec.next_sentence()
    assert first and rec.next_sentence() == first
    rec.add(voice(), first)
    assert rec.next_sentence() != first
    with pytest.raises(DataSourceError, match="empty"):
        rec.add(voice(), "   ")
    with pytest.raises(AudioError, match="silent"):
        rec.add((16000, np.zeros(16000, np.int16)), "x")
    with pytest.raises(AudioError, match="0.10 s long"):
        rec.add(voice(0.1), "x")
    assert rec.counts().clips == 1  # nothing written by the refused ones
    assert len(list((tmp_path / "mr-set" / "clips").iterdir())) == 1
    with pytest.raises(DataSourceError, match="paste the text"):
        RecordingSet(tmp_path / "sw", "sw").next_sentence()


def test_concurrent_adds_keep_every_row(tmp_path):
    rec = RecordingSet(tmp_path / "c", "en", text="\n".join(f"line {i}" for i in range(8)))
    errors = []

    def add(i):
        try:
            RecordingSet(tmp_path / "c", "en").add(voice(freq=120 + 10 * i), f"line {i}")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and rec.counts().clips == 8 and rec.counts().test_sentences >= 1


def test_split_text():
    assert split_text("One. Two!  Three?\n\nचार। पाच") == ["One.", "Two!", "Three?", "चार।", "पाच"]
