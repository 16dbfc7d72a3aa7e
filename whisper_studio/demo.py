"""A small synthetic corpus in the Common Voice release layout, spoken by eSpeak NG (cached).

It lets every part of the app (data loading, training, evaluation) run offline and in minutes. The speech is
robotic and labelled synthetic everywhere (a `SYNTHETIC` file, `client_id` = `espeak-<voice>-r<rate>`).
Sentences come from this project's own grammars (`whisper_studio.sentences`): the vocabulary is bounded and
recurs across splits while whole sentences never do, so a LoRA adapter trained on `train` can measurably lower
WER on `test` without having seen its sentences.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np

from whisper_studio import paths, synth
from whisper_studio.errors import DataSourceError

Progress = Callable[[float, str], None] | None

SAMPLE_RATE_EXAMPLES = 16000
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"


def _to_16k(samples: np.ndarray, sr: int) -> np.ndarray:
    import soxr

    return soxr.resample(samples, sr, SAMPLE_RATE_EXAMPLES).astype(np.float32)


def _pad(samples: np.ndarray, sr: int, seconds: float) -> np.ndarray:
    """Silence either side: eSpeak starts and stops speaking on the first and last sample."""
    pad = np.zeros(int(sr * seconds), dtype=np.float32)
    return np.concatenate([pad, samples, pad])


def write_examples(out_dir: Path | str = EXAMPLES_DIR) -> list[dict]:
    """Synthesise the example clips (16 kHz mono 16-bit WAV) and `examples.json` into `out_dir`."""
    import soundfile as sf

    from whisper_studio.sentences.examples import EXAMPLES, LONG_EN

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for stem, (locale, voice, rate, text) in EXAMPLES.items():
        samples, sr = synth.speak(text, voice, rate=rate)
        audio = _to_16k(_pad(samples, sr, 0.3), sr)
        sf.write(out / f"{stem}.wav", audio, SAMPLE_RATE_EXAMPLES, subtype="PCM_16")
        entries.append({"file": f"{stem}.wav", "language": locale, "text": text, "voice": voice,
                        "seconds": round(len(audio) / SAMPLE_RATE_EXAMPLES, 2), "synthetic": True})
    stem, voice, rate, gap, sentences = LONG_EN
    parts = []
    for sentence in sentences:
        samples, sr = synth.speak(sentence, voice, rate=rate)
        parts += [_to_16k(samples, sr), np.zeros(int(SAMPLE_RATE_EXAMPLES * gap), dtype=np.float32)]
    audio = np.concatenate([np.zeros(int(SAMPLE_RATE_EXAMPLES * 0.3), dtype=np.float32)] + parts)
    sf.write(out / f"{stem}.wav", audio, SAMPLE_RATE_EXAMPLES, subtype="PCM_16")
    entries.append({"file": f"{stem}.wav", "language": "en", "text": " ".join(sentences), "voice": voice,
                    "seconds": round(len(audio) / SAMPLE_RATE_EXAMPLES, 2), "synthetic": True})
    (out / "examples.json").write_text(json.dumps(entries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return entries
