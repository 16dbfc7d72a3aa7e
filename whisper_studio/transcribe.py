"""Transcription with one base model in memory and LoRA adapters switched on and off over it.

`Transcriber` is the facade over whisper_studio/inference/: it holds a single base Whisper in the chosen
precision (inference/int8.py), adapters loaded onto it by folder (inference/adapters.py; base outputs are taken
with the adapter disabled, so comparing base and adapted never needs two copies of the model) and the decoder
(inference/decode.py: a greedy loop for clips of up to 30 s). Audio longer than 30 s is transcribed whole by
inference/longform.py: sequential 30 s windows through the same greedy loop with timestamp tokens on, the last
complete timestamp pair of each window deciding where the next one starts (OpenAI's transcribe(), greedy).
`fast_decode = False` sends everything through transformers' generate() instead (the reference the tests compare
with).

A language request (a Common Voice locale, a Whisper code or name, None/"auto" to detect) is resolved once per
call into a `languages.Language` (decode.resolve_language) and passed down as `DecodeOptions`.

The command line is whisper_studio/cli/transcribe.py.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from whisper_studio import models
from whisper_studio.audio import blank_after_audio
from whisper_studio.errors import AudioError, ConfigError
from whisper_studio.inference.adapters import AdapterCache
from whisper_studio.inference.decode import TASKS, Decoder, DecodeOptions, resolve_language
from whisper_studio.inference.longform import LongForm
from whisper_studio.inference.int8 import CPU_DEFAULT_INFERENCE, INFERENCE_ENV, INFERENCE_MODES, inference_mode, load_base, torch_dtype
from whisper_studio.languages import Language

# Precision names and TASKS are re-exported: the CLI, the UI and the tests know them as transcribe.*.
__all__ = ["Transcript", "Transcriber", "get_transcriber", "release_transcriber", "inference_mode", "TASKS",
           "INFERENCE_ENV", "INFERENCE_MODES", "CPU_DEFAULT_INFERENCE", "SAMPLE_RATE", "CHUNK_SAMPLES", "MIN_SECONDS",
           "SILENCE_PEAK"]

SAMPLE_RATE = 16000
CHUNK_SAMPLES = 30 * SAMPLE_RATE  # Whisper's window; longer audio goes through long-form generation
MIN_SECONDS = 0.1  # shorter than this is not a recording; report it instead of letting Whisper guess
# Peak below -60 dBFS: digital silence or a muted microphone. Whisper hallucinates on such input ("you",
# "Thank you."), so it gets an empty transcript without running the model.
SILENCE_PEAK = 1e-3
Progress = Callable[[float, float], None]  # progress(done_s, total_s), called once per 30 s window on long audio


@dataclass
class Transcript:
    text: str
    seconds: float  # wall-clock time this transcription took
    model: str
    adapter: str | None  # the adapter folder used, None for the base model
    language: str | None  # the Whisper language code used (given or detected); None when nothing was decoded
    audio_seconds: float = 0.0  # length of the input audio

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load(audio: Any) -> np.ndarray:
    """Any supported input -> float32 mono 16 kHz (a bare array is taken to be 16 kHz already)."""
    from whisper_studio.audio import load_audio

    return np.ascontiguousarray(load_audio(audio, sr=SAMPLE_RATE), dtype=np.float32)


def _silent(array: np.ndarray) -> bool:
    return array.size == 0 or float(np.max(np.abs(array))) < SILENCE_PEAK


def _check_length(array: np.ndarray) -> None:
    if array.size < MIN_SECONDS * SAMPLE_RATE:
        raise AudioError(
            f"The audio is too short to transcribe ({array.size / SAMPLE_RATE:.2f} s); "
            f"record at least {MIN_SECONDS:g} s."
        )


class Transcriber:
    """One base model in memory; adapters switched over it. Thread-safe (calls are serialised).

    inference: "int8" | "bf16" | "fp32" (CPU) or "fp16" | "bf16" | "fp32" (GPU); default: `dtype` if given, else
    $WHISPER_STUDIO_INFERENCE, else int8 on CPU and fp16 on GPU (see inference/int8.py).
    """

    def __init__(self, model_id: str = models.DEFAULT_MODEL, *, device: str | None = None, dtype=None,
                 inference: str | None = None):
        self.model_id = str(model_id).strip()
        self.device = str(device or models.default_device())
        self.base, self.inference = load_base(self.model_id, inference_mode(inference, dtype, self.device), self.device)
        self.dtype = torch_dtype(self.inference)  # of the features fed to the encoder
        self.processor = models.load_processor(self.model_id)
        self.tokenizer = self.processor.tokenizer
        self.decoder = Decoder(self.base, self.tokenizer, self.device, self.model_id)
        self.multilingual = self.decoder.multilingual
        self.lora = AdapterCache(self.base, self.model_id)
        # Our greedy loops (up to 30 s, and windowed long-form); False: transformers' generate() for everything.
        self.fast_decode = True
        # Long-form: the previous window's text as the next window's prompt (off, as in the generate() reference).
        self.condition_on_previous = False
        self._longform: LongForm | None = None

    @property
    def longform(self) -> LongForm:
        if self._longform is None:
            self._longform = LongForm(self.decoder)
        return self._longform

    # --- adapters -------------------------------------------------------------------------------------------
    @property
    def model(self):
        """The model adapters are loaded into: the base itself, or the PeftModel wrapping it."""
        return self.lora.model

    @property
    def adapter(self) -> str | None:
        """The folder of the active adapter (used for `adapted=True`)."""
        return self.lora.active

    @property
    def adapters(self) -> list[str]:
        return self.lora.folders

    def set_adapter(self, adapter_dir) -> str | None:
        """Make `adapter_dir` the adapter used for `adapted=True` (None: no adapter). Returns its folder."""
        return self.lora.set(adapter_dir)

    @contextlib.contextmanager
    def session(self, adapter_dir) -> Iterator["Transcriber"]:
        """`with transcriber.session(adapter_dir) as t:` the adapter stays `adapter_dir` for every pass inside
        (base and adapted): no other caller of this process-wide transcriber can switch it in between."""
        with self.lora.session(adapter_dir):
            yield self

    # --- language and task ------------------------------------------------------------------------------------
    def options(self, language: str | Language | None = None, task: str = "transcribe",
                max_new_tokens: int | None = None) -> DecodeOptions:
        """A request resolved once (the language into a Language) and checked against this model."""
        return self.decoder.check(DecodeOptions(resolve_language(language), task, max_new_tokens))

    # --- transcription ----------------------------------------------------------------------------------------
    def _features(self, arrays: Sequence[np.ndarray], long_form: bool):
        fe = self.processor.feature_extractor
        if long_form:
            # Whole audio, not cut at 30 s: unpadded features plus a mask; generate() walks through them.
            feats = fe(list(arrays), sampling_rate=SAMPLE_RATE, return_tensors="pt", truncation=False,
                       padding="longest", return_attention_mask=True)
            if feats.input_features.shape[-1] < fe.nb_max_frames:  # all clips shorter than one window
                feats = fe(list(arrays), sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True)
            return feats.input_features.to(self.device, self.dtype), feats.attention_mask.to(self.device)
        feats = fe(list(arrays), sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True)
        features = blank_after_audio(feats.input_features, [len(a) for a in arrays])
        return features.to(self.device, self.dtype), feats.attention_mask.to(self.device)


    def _run(self, model, arrays: Sequence[np.ndarray], options: DecodeOptions) -> list[str]:
        """transformers' generate() (long-form, and the reference path)."""
        import torch

        long_form = any(a.size > CHUNK_SAMPLES for a in arrays)
        features, mask = self._features(arrays, long_form)
        kwargs = self.decoder.generate_kwargs(options)
        if long_form:
            kwargs.update(attention_mask=mask, return_timestamps=True, condition_on_prev_tokens=False)
        elif len(arrays) > 1:
            # Whisper ignores the mask on 30 s windows; passing it only stops generate() warning about batches.
            kwargs.update(attention_mask=mask)
        with torch.inference_mode():
            out = model.generate(features, **kwargs)
        sequences = out["sequences"] if isinstance(out, dict) else out
        texts = self.tokenizer.batch_decode(sequences, skip_special_tokens=True)
        return [t.strip() for t in texts]

    def _greedy(self, arrays: Sequence[np.ndarray], options: DecodeOptions) -> tuple[list[str], list[str | None]]:
        return self.decoder.greedy(self._features(arrays, long_form=False)[0], options)

    def _windowed(self, arrays: Sequence[np.ndarray], options: DecodeOptions, progress: Progress | None = None,
                  batch_size: int = 8) -> tuple[list[str], list[str | None]]:
        """Long-form through our own loop: features of each whole recording, then 30 s windows with seeking."""
        features, mask = self._features(arrays, long_form=True)
        # One recording: all its frames (as generate() does); several: each one's own length from the mask.
        frames = [features.shape[-1]] if len(arrays) == 1 else mask.sum(-1).tolist()
        return self.longform.transcribe(features, frames, options, progress=progress, batch_size=batch_size,
                                        condition_on_previous=self.condition_on_previous)

    def _one(self, array: np.ndarray, options: DecodeOptions, adapted: bool, progress: Progress | None = None) -> Transcript:
        started = time.perf_counter()
        code = options.code
        duration = array.size / SAMPLE_RATE
        if _silent(array):
            if progress is not None:
                progress(duration, duration)
            return Transcript("", time.perf_counter() - started, self.model_id, self.adapter if adapted else None, code, duration)
        with self.lora.lock, self.lora.mode(adapted) as model:
            if self.fast_decode and array.size <= CHUNK_SAMPLES:
                texts, codes = self._greedy([array], options)
                text, code = texts[0], codes[0]
                if progress is not None:
                    progress(duration, duration)
            elif self.fast_decode:
                texts, codes = self._windowed([array], options, progress)
                text, code = texts[0], codes[0]
            else:
                if code is None:
                    # Detect once ourselves (one encoder pass on the first 30 s) so the transcript can report it.
                    import torch

                    with torch.inference_mode():
                        features, _ = self._features([array[:CHUNK_SAMPLES]], long_form=False)
                        code = self.decoder.detect(model, features)
                    options = self.options(code, options.task, options.max_new_tokens)
                text = self._run(model, [array], options)[0]
        return Transcript(text, time.perf_counter() - started, self.model_id, self.adapter if adapted else None, code, duration)

    def transcribe(
        self, audio: Any, *, language: str | Language | None = None, task: str = "transcribe", adapted: bool = False,
        max_new_tokens: int | None = None, progress: Progress | None = None,
    ) -> Transcript:
        """Transcribe (or translate) one recording: an array at 16 kHz, a path, bytes, or (array, rate).

        max_new_tokens: cap on generated tokens per 30 s window (default: the model's 448-token limit).
        progress: `progress(done_s, total_s)`, audio seconds decoded so far and in all: before the first and after
        every 30 s window of long audio (once, at the end, for a clip of up to 30 s).
        """
        array = _load(audio)
        _check_length(array)
        return self._one(array, self.options(language, task, max_new_tokens), adapted, progress)

    def transcribe_both(
        self, audio: Any, *, language: str | Language | None = None, task: str = "transcribe",
        max_new_tokens: int | None = None, progress: Progress | None = None,
    ) -> tuple[Transcript, Transcript | None]:
        """Base and adapted transcripts of the same audio (adapted is None without an adapter).

        The language is detected once, with the base model, and used for both so they are comparable.
        progress(done_s, total_s) as in `transcribe`, over both passes (total_s = twice the audio with an adapter).
        """
        array = _load(audio)
        _check_length(array)
        options = self.options(language, task, max_new_tokens)
        with self.lora.lock:  # the adapter cannot change between the two passes
            passes = 1 if self.adapter is None else 2
            duration = array.size / SAMPLE_RATE

            def pass_progress(index: int) -> Progress | None:
                if progress is None:
                    return None
                return lambda done, total: progress(index * duration + done, passes * duration)

            base = self._one(array, options, adapted=False, progress=pass_progress(0))
            if self.adapter is None:
                return base, None
            if options.language is None and base.language:
                options = self.options(base.language, task, max_new_tokens)
            return base, self._one(array, options, adapted=True, progress=pass_progress(1))

    def transcribe_batch(
        self,
        arrays: Sequence[Any],
        *,
        language: str | Language | None = None,
        task: str = "transcribe",
        adapted: bool = False,
        batch_size: int = 8,
        max_new_tokens: int | None = None,
    ) -> list[str]:
        """Greedy transcripts of many recordings, `batch_size` at a time (evaluation's path).

        Silent or too-short items give "" rather than failing the whole batch. With language None, each item's
        language is detected.
        """
        if batch_size < 1:
            raise ConfigError(f"Batch size must be at least 1 (got {batch_size}).")
        options = self.options(language, task, max_new_tokens)
        loaded = [_load(a) for a in arrays]
        results = [""] * len(loaded)
        todo = [i for i, a in enumerate(loaded) if a.size >= MIN_SECONDS * SAMPLE_RATE and not _silent(a)]
        # Short clips and long ones run separately (different generation modes), each sorted by length so a
        # long-form batch does not pad every clip to the longest recording.
        short = [i for i in todo if loaded[i].size <= CHUNK_SAMPLES]
        long = sorted((i for i in todo if loaded[i].size > CHUNK_SAMPLES), key=lambda i: loaded[i].size)
        with self.lora.lock, self.lora.mode(adapted) as model:
            for group in (short, long):
                for start in range(0, len(group), batch_size):
                    idx = group[start:start + batch_size]
                    chunk = [loaded[i] for i in idx]
                    if group is short and self.fast_decode:
                        texts = self._greedy(chunk, options)[0]
                    elif self.fast_decode:  # long recordings: their windows batched side by side
                        texts = self._windowed(chunk, options, batch_size=batch_size)[0]
                    else:
                        texts = self._run(model, chunk, options)
                    for i, text in zip(idx, texts):
                        results[i] = text
        return results


# --- the process-wide transcriber -------------------------------------------------------------------------------
_current: Transcriber | None = None
_current_lock = threading.Lock()


def get_transcriber(model_id: str = models.DEFAULT_MODEL, *, device: str | None = None, inference: str | None = None) -> Transcriber:
    """The process's Transcriber for `model_id`; switching models frees the previous one first (one base in memory).

    inference: precision (see Transcriber); None keeps the current one's, or takes the default for a new one.
    """
    global _current
    model_id = str(model_id).strip()
    with _current_lock:
        if (_current is not None and _current.model_id == model_id and (device is None or _current.device == str(device))
                and (inference is None or _current.inference == inference_mode(inference, None, _current.device))):
            return _current
        release_transcriber(_locked=True)
        _current = Transcriber(model_id, device=device, inference=inference)
        return _current


def release_transcriber(*, _locked: bool = False) -> None:
    """Drop the cached Transcriber (e.g. before training on the same GPU)."""
    global _current
    with contextlib.nullcontext() if _locked else _current_lock:
        if _current is None:
            return
        device = _current.device
        _current = None
        gc.collect()
        if device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
