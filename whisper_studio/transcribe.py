"""Transcription with one base model in memory and LoRA adapters switched on and off over it.

`Transcriber` holds a single base Whisper; adapters load onto it by name (peft) and base outputs are taken
with the adapter disabled, so comparing base and adapted never needs two copies of the model. Audio longer
than 30 s is transcribed whole with transformers' sequential long-form generation (timestamps on).

`python -m whisper_studio transcribe FILE... [--model ID] [--adapter DIR] [--language CODE] [--json]`
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from whisper_studio import models
from whisper_studio.errors import AudioError, ConfigError, LanguageError, ModelError, StudioError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
CHUNK_SAMPLES = 30 * SAMPLE_RATE  # Whisper's window; longer audio goes through long-form generation
MIN_SECONDS = 0.1  # shorter than this is not a recording; report it instead of letting Whisper guess
# Peak below -60 dBFS: digital silence or a muted microphone. Whisper hallucinates on such input ("you",
# "Thank you."), so it gets an empty transcript without running the model.
SILENCE_PEAK = 1e-3
TASKS = ("transcribe", "translate")
MAX_ADAPTERS = 4  # adapters kept loaded at once (each is a few MB); least recently used ones are dropped


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


def _adapter_stamp(path: Path) -> int:
    """Changes when the adapter is retrained into the same folder, so a stale copy in memory is reloaded."""
    for name in ("adapter_model.safetensors", "adapter_model.bin"):
        f = path / name
        if f.is_file():
            st = f.stat()
            return st.st_mtime_ns ^ st.st_size
    raise ModelError(f"{path} has an adapter_config.json but no adapter weights (adapter_model.safetensors).")


class Transcriber:
    """One base model in memory; adapters switched over it. Thread-safe (calls are serialised)."""

    def __init__(self, model_id: str = models.DEFAULT_MODEL, *, device: str | None = None, dtype=None):
        import torch

        self.model_id = str(model_id).strip()
        self.device = str(device or models.default_device())
        if dtype is None:
            # float32 on CPU (fp16/bf16 matmuls are slow or inexact there); float16 on GPU, Whisper's own choice.
            dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.dtype = dtype
        self.base = models.load_model(self.model_id, dtype=dtype, device=self.device)
        self.processor = models.load_processor(self.model_id)
        self.tokenizer = self.processor.tokenizer
        gen = self.base.generation_config
        self.multilingual = bool(getattr(gen, "is_multilingual", True)) and bool(getattr(gen, "lang_to_id", None))
        self._lang_to_id: dict[str, int] = dict(getattr(gen, "lang_to_id", None) or {})
        self._id_to_lang = {v: k.strip("<|>") for k, v in self._lang_to_id.items()}
        self.model = self.base  # becomes a PeftModel once an adapter is loaded
        self.adapter: str | None = None  # folder of the active adapter
        self._adapters: OrderedDict[str, tuple[str, int]] = OrderedDict()  # folder -> (peft name, stamp)
        self._lock = threading.RLock()

    # --- adapters -------------------------------------------------------------------------------------------
    def set_adapter(self, adapter_dir: str | os.PathLike | None) -> str | None:
        """Make `adapter_dir` the adapter used for `adapted=True` (None: no adapter). Returns its folder."""
        from peft import PeftModel

        with self._lock:
            if adapter_dir is None or str(adapter_dir).strip() == "":
                self.adapter = None
                return None
            path = models._check_adapter_dir(adapter_dir)
            key, stamp = str(path), _adapter_stamp(path)
            known = self._adapters.get(key)
            if known and known[1] != stamp:  # retrained since it was loaded
                self._drop(key)
                known = None
            if known is None:
                self._warn_base_mismatch(path)
                name = "a" + hashlib.sha1(key.encode()).hexdigest()[:12]
                self.model = models.load_adapter(self.model, path, adapter_name=name)
                self._adapters[key] = (name, stamp)
                while len(self._adapters) > MAX_ADAPTERS:
                    self._drop(next(iter(self._adapters)))
            self._adapters.move_to_end(key)
            assert isinstance(self.model, PeftModel)
            self.model.set_adapter(self._adapters[key][0])
            self.model.eval()
            self.adapter = key
            return key

    def _drop(self, key: str) -> None:
        name, _ = self._adapters.pop(key)
        if self.adapter == key:
            self.adapter = None
        if self._adapters:
            # peft refuses to delete the active adapter; activate another first.
            self.model.set_adapter(next(reversed(self._adapters.values()))[0])
        self.model.delete_adapter(name)
        if not self._adapters:
            self.model = self.model.unload()  # no adapters left: back to the bare base model
        gc.collect()

    def _warn_base_mismatch(self, path: Path) -> None:
        recorded = models.adapter_base_model(path)
        if not recorded:
            return
        ours = {self.model_id, str(models.resolve(self.model_id))}
        if recorded not in ours and Path(recorded).name != Path(self.model_id).name:
            log.warning("adapter %s was trained on %s; loading it on %s", path, recorded, self.model_id)

    @property
    def adapters(self) -> list[str]:
        return list(self._adapters)

    @contextlib.contextmanager
    def _mode(self, adapted: bool):
        """The model to run: the active adapter, or the base with every adapter disabled."""
        if adapted:
            if self.adapter is None:
                raise ModelError("No adapter is loaded; choose a trained run (an adapter folder) first.")
            yield self.model
        elif self.model is self.base:
            yield self.base
        else:
            with self.model.disable_adapter():
                yield self.model

    # --- language and task ------------------------------------------------------------------------------------
    def _language_code(self, language: str | None) -> str | None:
        if language is None or str(language).strip() in ("", "auto"):
            return None
        code = None
        try:
            from whisper_studio import languages

            code = languages.resolve(language).whisper
        except ImportError:
            pass
        except LanguageError:
            code = self._whisper_only_code(language)
            if code is None:
                raise
        if code is None:
            code = self._whisper_only_code(language)
        if code is None:
            raise LanguageError(f"Unknown language {language!r}; give a Common Voice locale or Whisper code such as 'en' or 'mr'.")
        return code

    @staticmethod
    def _whisper_only_code(language: str) -> str | None:
        """A Whisper code or name that Common Voice lacks (e.g. 'la', 'latin') is still fine for transcription."""
        from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

        key = str(language).strip().lower()
        if key in LANGUAGES:
            return key
        return TO_LANGUAGE_CODE.get(key)

    def _generate_kwargs(self, language: str | None, task: str, max_new_tokens: int | None = None) -> tuple[dict[str, Any], str | None]:
        """generate() arguments for a language/task request, and the language code it resolved to."""
        extra: dict[str, Any] = {}
        if max_new_tokens is not None:
            if max_new_tokens < 1:
                raise ConfigError(f"max_new_tokens must be at least 1 (got {max_new_tokens}).")
            extra["max_new_tokens"] = int(max_new_tokens)
        if task not in TASKS:
            raise ConfigError(f"Task must be one of {', '.join(TASKS)} (got {task!r}).")
        code = self._language_code(language)
        if not self.multilingual:
            if task == "translate":
                raise ModelError(f"{self.model_id} is an English-only model; it cannot translate. Choose a multilingual model.")
            if code not in (None, "en"):
                raise LanguageError(f"{self.model_id} is an English-only model; it cannot transcribe {language!r}. Choose a multilingual model.")
            return extra, "en"  # English-only models take no language or task tokens
        if code is not None and f"<|{code}|>" not in self._lang_to_id:
            raise LanguageError(f"{self.model_id} has no <|{code}|> language token.")
        return {**extra, "task": task, **({"language": code} if code else {})}, code

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
        return feats.input_features.to(self.device, self.dtype), feats.attention_mask.to(self.device)

    def _detect(self, model, features) -> str:
        lang_ids = model.detect_language(input_features=features[:, :, :3000])
        return self._id_to_lang.get(int(lang_ids[0]), "en")

    def _run(self, model, arrays: Sequence[np.ndarray], gen_kwargs: dict[str, Any]) -> list[str]:
        import torch

        long_form = any(a.size > CHUNK_SAMPLES for a in arrays)
        features, mask = self._features(arrays, long_form)
        kwargs = dict(gen_kwargs)
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

    def _one(self, array: np.ndarray, *, language: str | None, task: str, adapted: bool, max_new_tokens: int | None = None) -> Transcript:
        started = time.perf_counter()
        gen_kwargs, code = self._generate_kwargs(language, task, max_new_tokens)
        duration = array.size / SAMPLE_RATE
        if _silent(array):
            return Transcript("", time.perf_counter() - started, self.model_id, self.adapter if adapted else None, code, duration)
        with self._lock, self._mode(adapted) as model:
            if self.multilingual and code is None:
                # Detect once ourselves (one encoder pass on the first 30 s) so the transcript can report it.
                import torch

                with torch.inference_mode():
                    features, _ = self._features([array[:CHUNK_SAMPLES]], long_form=False)
                    code = self._detect(model, features)
                gen_kwargs["language"] = code
            text = self._run(model, [array], gen_kwargs)[0]
        return Transcript(text, time.perf_counter() - started, self.model_id, self.adapter if adapted else None, code, duration)

    def transcribe(
        self, audio: Any, *, language: str | None = None, task: str = "transcribe", adapted: bool = False, max_new_tokens: int | None = None
    ) -> Transcript:
        """Transcribe (or translate) one recording: an array at 16 kHz, a path, bytes, or (array, rate).

        max_new_tokens: cap on generated tokens per 30 s window (default: the model's 448-token limit).
        """
        array = _load(audio)
        _check_length(array)
        return self._one(array, language=language, task=task, adapted=adapted, max_new_tokens=max_new_tokens)

    def transcribe_both(
        self, audio: Any, *, language: str | None = None, task: str = "transcribe", max_new_tokens: int | None = None
    ) -> tuple[Transcript, Transcript | None]:
        """Base and adapted transcripts of the same audio (adapted is None without an adapter).

        The language is detected once, with the base model, and used for both so they are comparable.
        """
        array = _load(audio)
        _check_length(array)
        base = self._one(array, language=language, task=task, adapted=False, max_new_tokens=max_new_tokens)
        if self.adapter is None:
            return base, None
        adapted = self._one(array, language=base.language or language, task=task, adapted=True, max_new_tokens=max_new_tokens)
        return base, adapted

    def transcribe_batch(
        self,
        arrays: Sequence[Any],
        *,
        language: str | None = None,
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
        gen_kwargs, _ = self._generate_kwargs(language, task, max_new_tokens)
        loaded = [_load(a) for a in arrays]
        results = [""] * len(loaded)
        todo = [i for i, a in enumerate(loaded) if a.size >= MIN_SECONDS * SAMPLE_RATE and not _silent(a)]
        # Short clips and long ones run separately (different generation modes), each sorted by length so a
        # long-form batch does not pad every clip to the longest recording.
        short = [i for i in todo if loaded[i].size <= CHUNK_SAMPLES]
        long = sorted((i for i in todo if loaded[i].size > CHUNK_SAMPLES), key=lambda i: loaded[i].size)
        with self._lock, self._mode(adapted) as model:
            for group in (short, long):
                for start in range(0, len(group), batch_size):
                    idx = group[start:start + batch_size]
                    for i, text in zip(idx, self._run(model, [loaded[i] for i in idx], gen_kwargs)):
                        results[i] = text
        return results


# --- the process-wide transcriber -------------------------------------------------------------------------------
_current: Transcriber | None = None
_current_lock = threading.Lock()


def get_transcriber(model_id: str = models.DEFAULT_MODEL, *, device: str | None = None) -> Transcriber:
    """The process's Transcriber for `model_id`; switching models frees the previous one first (one base in memory)."""
    global _current
    model_id = str(model_id).strip()
    with _current_lock:
        if _current is not None and _current.model_id == model_id and (device is None or _current.device == str(device)):
            return _current
        release_transcriber(_locked=True)
        _current = Transcriber(model_id, device=device)
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


# --- command line -----------------------------------------------------------------------------------------------
def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "transcribe",
        help="transcribe audio files with a model (and optionally a LoRA adapter)",
        description="Transcribe audio files. Audio longer than 30 s is transcribed whole.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (wav, flac, mp3, ogg, ...)")
    p.add_argument("--model", default=models.DEFAULT_MODEL, help=f"model id or folder (default {models.DEFAULT_MODEL})")
    p.add_argument("--adapter", help="LoRA adapter folder (or a run folder): prints base and adapted transcripts")
    p.add_argument("--language", help="Common Voice locale or Whisper code (default: detect)")
    p.add_argument("--task", choices=TASKS, default="transcribe")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--max-new-tokens", type=int, help="cap on generated tokens per 30 s window")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    if not getattr(args, "verbose", False):
        # Keep stdout/stderr to transcripts and errors: no weight-loading bars or library deprecation notes.
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    missing = [f for f in args.files if not Path(f).is_file()]
    for f in missing:
        print(f"error: {f}: no such file", file=sys.stderr)
    present = [f for f in args.files if f not in missing]
    if not present:
        return 1
    transcriber = Transcriber(args.model, device=args.device)
    if args.adapter:
        transcriber.set_adapter(args.adapter)
    failed = bool(missing)
    for f in present:
        try:
            base, adapted = transcriber.transcribe_both(f, language=args.language, task=args.task, max_new_tokens=args.max_new_tokens)
        except AudioError as exc:  # one bad file does not stop the others
            print(f"error: {f}: {exc}", file=sys.stderr)
            failed = True
            continue
        if args.json:
            row: dict[str, Any] = {
                "path": f,
                "text": base.text,
                "model": base.model,
                "language": base.language,
                "seconds": round(base.seconds, 3),
                "audio_seconds": round(base.audio_seconds, 3),
            }
            if adapted is not None:
                row.update(adapter=adapted.adapter, adapted_text=adapted.text, adapted_seconds=round(adapted.seconds, 3))
            print(json.dumps(row, ensure_ascii=False), flush=True)
        elif adapted is not None:
            print(f"{f}\n  base:    {base.text}\n  adapted: {adapted.text}", flush=True)
        else:
            print(f"{f}: {base.text}", flush=True)
    return 1 if failed else 0
