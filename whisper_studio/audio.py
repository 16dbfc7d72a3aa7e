"""Decode any audio input to float32 mono at 16 kHz: soundfile (libsndfile: wav, flac, ogg, mp3) + soxr.

No torchcodec, no ffmpeg: datasets 5 and transformers' pipeline need those for decoding, and they do not load
here (see docs/ARCHITECTURE.md). Every input a user can get wrong raises `AudioError` with a specific message.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import soundfile as sf
import soxr

from whisper_studio.errors import AudioError

SAMPLE_RATE = 16000
log = logging.getLogger(__name__)

# Frames read per block: small enough that a file damaged half-way still gives back its first half.
_BLOCK = 1 << 18


HOP_LENGTH = 160  # samples per log-mel frame (10 ms at 16 kHz)


def blank_after_audio(features, n_samples: Sequence[int]):
    """Set the log-mel frames after each clip's end to 0.0, in place, and return the features.

    This is how OpenAI's own `transcribe()` and faster-whisper present a short clip to the model: the mel of the
    clip, then the 30 s window filled with 0.0. transformers' feature extractor fills it with the mel of
    silence instead (about -1.5 after normalisation). The model was trained with the former, and on eSpeak test
    clips the silence padding cost base ~3 WER points against faster-whisper on the same weights. Training
    features (data.prepare) and inference (transcribe.py) both go through here, so an adapter sees at inference
    what it saw in training. `features` is (batch, mels, frames), numpy or torch."""
    for row, n in enumerate(n_samples):
        features[row, :, int(n) // HOP_LENGTH:] = 0.0
    return features


def _describe(src: Any) -> str:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"the uploaded audio ({len(src)} bytes)"
    return "the audio"


def _open_target(src: Any) -> tuple[Any, str]:
    """A path string or a file-like object soundfile can open, and a name for messages."""
    if isinstance(src, dict):  # a datasets Audio(decode=False) value: {"path": ..., "bytes": ...}
        if src.get("bytes"):
            return io.BytesIO(bytes(src["bytes"])), str(src.get("path") or "the audio")
        if src.get("path"):
            src = src["path"]
        else:
            raise AudioError("The audio entry has neither a path nor bytes.")
    if isinstance(src, (str, os.PathLike)):
        path = Path(src).expanduser()
        if not path.exists():
            raise AudioError(f"Audio file not found: {path}")
        if path.is_dir():
            raise AudioError(f"{path} is a folder, not an audio file.")
        if path.stat().st_size == 0:
            raise AudioError(f"Audio file {path} is empty (0 bytes).")
        return str(path), str(path)
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise AudioError("The uploaded audio is empty (0 bytes).")
        return io.BytesIO(bytes(src)), _describe(src)
    if hasattr(src, "read"):
        data = src.read()
        if isinstance(data, str):
            raise AudioError("The audio stream was opened in text mode; open it in binary mode ('rb').")
        if not data:
            raise AudioError("The audio stream is empty (0 bytes).")
        name = getattr(src, "name", None)
        return io.BytesIO(data), str(name) if isinstance(name, str) else "the audio stream"
    raise AudioError(f"Cannot read audio from a {type(src).__name__}; give a file path, bytes, or (sample_rate, array).")


def _unreadable(name: str, exc: Exception) -> AudioError:
    detail = str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc)
    return AudioError(
        f"{name} is not an audio file soundfile can read ({detail}). Use WAV, FLAC, OGG/Vorbis or MP3."
    )


def _as_array(src: Any) -> tuple[np.ndarray, int] | None:
    """(array, rate) for in-memory audio: gradio's (sr, array), synth's (array, sr), a decoded datasets dict."""
    if isinstance(src, dict) and "array" in src:
        return np.asarray(src["array"]), int(src.get("sampling_rate") or SAMPLE_RATE)
    if isinstance(src, np.ndarray):
        return src, SAMPLE_RATE  # a bare array is taken to be at 16 kHz already (what transcribe passes)
    if isinstance(src, (tuple, list)) and len(src) == 2:
        a, b = src
        if isinstance(b, np.ndarray) and np.isscalar(a):
            return b, int(a)  # gradio Audio(type="numpy"): (sample_rate, data)
        if isinstance(a, np.ndarray) and np.isscalar(b):
            return a, int(b)  # synth.speak: (data, sample_rate)
    return None


def _int_to_float(array: np.ndarray) -> np.ndarray:
    """Integer PCM -> float32 in [-1, 1), scaled by the type's full range (int16 / 32768, ...)."""
    kind = array.dtype.kind
    if kind == "f":
        return array.astype(np.float32, copy=False)
    if kind == "b":
        return array.astype(np.float32)
    if kind == "u":  # unsigned PCM (8-bit WAV convention): midpoint is silence
        half = float(np.iinfo(array.dtype).max // 2 + 1)
        return ((array.astype(np.float64) - half) / half).astype(np.float32)
    if kind == "i":
        return (array.astype(np.float64) / float(-np.iinfo(array.dtype).min)).astype(np.float32)
    raise AudioError(f"Unsupported audio sample type {array.dtype}.")


def _to_mono(array: np.ndarray) -> np.ndarray:
    if array.ndim == 1:
        return array
    if array.ndim != 2:
        raise AudioError(f"Audio must be 1-D (mono) or 2-D (multi-channel); got shape {array.shape}.")
    # soundfile and gradio give (frames, channels); accept (channels, frames) too, which torch-style code uses.
    if array.shape[1] > 8 and array.shape[0] <= 8:
        array = array.T
    return array.mean(axis=1, dtype=np.float32) if array.shape[1] > 1 else array[:, 0]


def to_16k(array: np.ndarray, sr: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Resample float32 mono to `target` Hz (soxr, high quality; a few ms per clip)."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    if int(sr) <= 0:
        raise AudioError(f"Invalid sample rate {sr}.")
    if int(sr) == target or array.size == 0:
        return array
    return soxr.resample(array, int(sr), target, quality="HQ").astype(np.float32, copy=False)


def _check(array: np.ndarray, name: str) -> np.ndarray:
    if array.size == 0:
        raise AudioError(f"{name} has no audio samples (0 frames).")
    if not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise AudioError(f"{name} contains {bad} NaN or infinite sample(s); the file is damaged.")
    return array


def _decode_file(target: Any, name: str) -> tuple[np.ndarray, int]:
    try:
        handle = sf.SoundFile(target)
    except sf.LibsndfileError as exc:
        raise _unreadable(name, exc) from None
    except (RuntimeError, TypeError, ValueError) as exc:
        raise _unreadable(name, exc) from None
    blocks: list[np.ndarray] = []
    with handle:
        rate, expected = handle.samplerate, handle.frames
        while True:
            try:
                block = handle.read(_BLOCK, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                if blocks:  # damaged part-way: keep what decoded, as players do
                    log.warning("%s: decoding stopped early (%s); using the first part", name, exc)
                    break
                raise AudioError(f"{name} is truncated or damaged: nothing could be decoded ({exc}).") from None
            if len(block) == 0:
                break
            blocks.append(block)
    if not blocks:
        if expected > 0:
            raise AudioError(f"{name} is truncated or damaged: its header promises {expected} frames but none decode.")
        raise AudioError(f"{name} has no audio samples (0 frames).")
    data = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    if 0 < expected < 2**62 and len(data) < 0.9 * expected:
        log.warning("%s: header says %.2f s, decoded %.2f s (truncated file?)", name, expected / rate, len(data) / rate)
    return data, rate


def load_audio(src: Any, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Any audio input -> float32 mono at `sr` Hz.

    `src`: a path, bytes, a binary file-like object, gradio's `(sample_rate, int16 array)`, synth's
    `(array, sample_rate)`, a datasets audio dict, or a bare array (taken to be at 16 kHz). Silence is valid
    audio (zeros come back; deciding what to do with it is the caller's business).
    """
    in_memory = _as_array(src)
    if in_memory is not None:
        array, rate = in_memory
        name = "the recording"
        if array.dtype == object:
            raise AudioError("The recording is not a numeric array.")
        array = _int_to_float(np.asarray(array))
    else:
        target, name = _open_target(src)
        array, rate = _decode_file(target, name)
    array = _to_mono(array)
    _check(array, name)
    return _check(to_16k(array, rate, sr), name)


def info(src: Any) -> tuple[float, int, int]:
    """(seconds, sample_rate, channels) from the header only."""
    in_memory = _as_array(src)
    if in_memory is not None:
        array, rate = in_memory
        array = np.asarray(array)
        frames = array.shape[0] if array.ndim < 2 or array.shape[1] <= 8 else array.shape[1]
        channels = 1 if array.ndim == 1 else min(array.shape)
        return frames / float(rate), int(rate), int(channels)
    target, name = _open_target(src)
    try:
        with sf.SoundFile(target) as handle:
            rate, frames, channels = handle.samplerate, handle.frames, handle.channels
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise _unreadable(name, exc) from None
    if frames <= 0 or frames >= 2**62:  # unknown length (a stream): decode to measure
        frames = len(_decode_file(_open_target(src)[0], name)[0])
    return frames / float(rate), int(rate), int(channels)


def duration(src: Any) -> float:
    """Length in seconds from the file header (cheap: no decoding for wav/flac/ogg/mp3 with a header)."""
    return info(src)[0]
