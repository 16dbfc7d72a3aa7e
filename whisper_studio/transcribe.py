"""Transcription with one base model in memory and LoRA adapters switched on and off over it.

`Transcriber` holds a single base Whisper; adapters load onto it by name (peft) and base outputs are taken
with the adapter disabled, so comparing base and adapted never needs two copies of the model. Audio longer
than 30 s is transcribed whole with transformers' sequential long-form generation (timestamps on).

Speed on CPU. Clips of up to 30 s (the common case, and evaluation's) skip `generate()`: a plain greedy loop
(encoder once, decoder steps with a KV cache, the suppress-token masks precomputed) gives the same tokens without
generate's per-step logits processors, and language detection reuses the encoder output instead of running the
encoder twice. Precision is chosen per Transcriber (`inference=`) or process-wide with the environment variable
`WHISPER_STUDIO_INFERENCE`:

* ``int8`` (CPU default): every Linear layer of the encoder and decoder, and the vocabulary projection, hold
  int8 weights (one scale per output channel) and run with dynamically quantized int8 activations (fbgemm/oneDNN,
  VNNI where the CPU has it; one scale per token where inputs have outliers), like faster-whisper's int8 mode. Convolutions, layer norms, attention and the
  embeddings stay float32; LoRA adapters stay float32 on top of the int8 layers (peft wraps them like any Linear).
* ``bf16``: the whole model in bfloat16 (fast on CPUs with AVX512-BF16/AMX; halves memory).
* ``fp32``: float32 weights, same tokens as transformers' generate().
* ``fp16``: GPU default (float16, Whisper's own choice); not offered on CPU.

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
from whisper_studio.audio import blank_after_audio
from whisper_studio.errors import AudioError, ConfigError, LanguageError, ModelError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
CHUNK_SAMPLES = 30 * SAMPLE_RATE  # Whisper's window; longer audio goes through long-form generation
MIN_SECONDS = 0.1  # shorter than this is not a recording; report it instead of letting Whisper guess
# Peak below -60 dBFS: digital silence or a muted microphone. Whisper hallucinates on such input ("you",
# "Thank you."), so it gets an empty transcript without running the model.
SILENCE_PEAK = 1e-3
TASKS = ("transcribe", "translate")
MAX_ADAPTERS = 4  # adapters kept loaded at once (each is a few MB); least recently used ones are dropped
INFERENCE_ENV = "WHISPER_STUDIO_INFERENCE"
INFERENCE_MODES = ("int8", "bf16", "fp32", "fp16")
CPU_DEFAULT_INFERENCE = "int8"  # measured: fastest on CPU, WER within 0.5 points of float32 (docs/benchmarks.md)


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


# --- precision -----------------------------------------------------------------------------------------------------
_DTYPE_MODES = {"float32": "fp32", "fp32": "fp32", "bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "fp16": "fp16",
                "half": "fp16", "int8": "int8", "qint8": "int8"}


def inference_mode(inference: str | None = None, dtype: Any = None, device: str = "cpu") -> str:
    """The precision a Transcriber runs in: `inference`, else `dtype`, else $WHISPER_STUDIO_INFERENCE, else the
    device's default (int8 on CPU, fp16 on GPU)."""
    gpu = str(device).startswith("cuda")
    source = "inference"
    value = inference
    if value is None and dtype is not None:
        value, source = str(dtype).replace("torch.", ""), "dtype"
    if value is None:
        env = os.environ.get(INFERENCE_ENV, "").strip()
        if env and env.lower() != "auto":
            value, source = env, INFERENCE_ENV
    if value is None or str(value).strip().lower() == "auto":
        return "fp16" if gpu else CPU_DEFAULT_INFERENCE
    mode = _DTYPE_MODES.get(str(value).strip().lower())
    if mode is None:
        raise ConfigError(f"Unknown inference precision {value!r} ({source}); choose one of {', '.join(INFERENCE_MODES)}.")
    if mode == "int8" and gpu:
        raise ConfigError("int8 inference is CPU-only; on a GPU use fp16 (the default) or bf16.")
    if mode == "fp16" and not gpu:
        raise ConfigError("fp16 inference needs a GPU; on CPU use int8 (the default), bf16 or fp32.")
    return mode


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


_int8_cls = None


def _int8_linear_class():
    """nn.Linear with int8 weights and dynamically quantized int8 activations (defined lazily: torch is heavy)."""
    global _int8_cls
    if _int8_cls is not None:
        return _int8_cls
    import warnings

    import torch

    class Int8Linear(torch.nn.Linear):
        """int8 weights with one scale per output channel; activations quantized to int8 on the fly, one scale per
        row (per token) when `rowwise`, like CTranslate2's int8 mode. fbgemm/oneDNN's dynamic linear takes one range for the
        whole input, which costs accuracy on the encoder's 1500 rows (a few outlier tokens set it), so each row is
        first scaled to max |x| = 1 and two rows holding +1 and -1 pin the range to [-1, 1]; the rows' scales are
        multiplied back afterwards. That also makes a row's result independent of the other rows in the batch.

        A subclass of nn.Linear so peft wraps it with LoRA layers like any Linear; `weight` is dequantized on demand
        (peft reads it when it attaches an adapter), and the empty int8 `qweight` buffer tells peft the device."""

        def __init__(self, linear: torch.nn.Linear, reduce_range: bool, rowwise: bool = True):
            torch.nn.Module.__init__(self)
            self.rowwise = rowwise
            self.in_features, self.out_features = linear.in_features, linear.out_features
            w = linear.weight.detach().float()
            scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
            with warnings.catch_warnings():  # torch marks its quantized-tensor constructors as deprecated
                warnings.simplefilter("ignore")
                q = torch.quantize_per_channel(w, scale, torch.zeros(w.shape[0], dtype=torch.long), 0, torch.qint8)
                bias = None if linear.bias is None else linear.bias.detach().float().contiguous()
                self._packed = torch.ops.quantized.linear_prepack(q, None if rowwise else bias)
            self.register_buffer("qweight", torch.empty(0, dtype=torch.int8, device=w.device), persistent=False)
            self.register_buffer("_bias", bias if rowwise else None, persistent=False)
            self.register_parameter("bias", None)
            self.reduce_range = reduce_range
            self.register_buffer("_pins", torch.zeros(2, self.in_features, device=w.device), persistent=False)
            self._pins[0, 0], self._pins[1, 0] = 1.0, -1.0

        def forward(self, x):
            shape = x.shape
            x = x.reshape(-1, self.in_features)
            if x.dtype != torch.float32:
                x = x.float()
            if not self.rowwise:  # one range per item (its 1500 rows): cheaper, for well-scaled (layer-normed) inputs
                if len(shape) == 3 and shape[0] > 1:
                    x = x.reshape(shape)
                    out = torch.cat([torch.ops.quantized.linear_dynamic(x[i], self._packed, self.reduce_range) for i in range(shape[0])])
                else:
                    out = torch.ops.quantized.linear_dynamic(x, self._packed, self.reduce_range)
                return out.reshape(*shape[:-1], self.out_features)
            rows = x.shape[0]
            scale = torch.linalg.vector_norm(x, float("inf"), dim=1, keepdim=True).clamp_min_(1e-12)  # max |x| per row
            xn = torch.empty(rows + 2, self.in_features, dtype=torch.float32, device=x.device)
            torch.div(x, scale, out=xn[:rows])
            xn[rows:] = self._pins
            out = torch.ops.quantized.linear_dynamic(xn, self._packed, self.reduce_range)[:rows]
            out = out * scale if self._bias is None else torch.addcmul(self._bias, out, scale)
            return out.reshape(*shape[:-1], self.out_features)

        @property
        def weight(self):
            """The dequantized weight (float32, computed on each access: peft reads it once per adapter load)."""
            return self._packed.unpack()[0].dequantize()

        def __setattr__(self, name, value):
            if name == "weight":  # re-tying the vocabulary projection to the embeddings would undo the int8 copy
                return
            super().__setattr__(name, value)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8"

    _int8_cls = Int8Linear
    return Int8Linear


def quantize_int8(model) -> int:
    """Swap the Linear layers of a Whisper model's encoder and decoder, and its vocabulary projection, for int8
    ones, in place (before any adapter is attached). Returns how many were swapped."""
    import torch

    cls = _int8_linear_class()
    flags = _cpu_flags()
    # Without VNNI, u8 x s8 products are summed in 16 bits and can saturate: quantize activations to 7 bits there.
    reduce_range = not (flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
    count = 0
    for stack in (model.model.encoder, model.model.decoder):
        encoder = stack is model.model.encoder
        for parent in list(stack.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is torch.nn.Linear:
                    # Per-row activation scales where inputs have outlier tokens (after attention, after GELU) and
                    # in the decoder (a few rows: cheap, and batch-invariant); one range per clip for the encoder's
                    # layer-normed inputs (q/k/v, fc1), which saves passes over its 1500 rows.
                    rowwise = not encoder or name in ("out_proj", "fc2")
                    setattr(parent, name, cls(child, reduce_range, rowwise))
                    count += 1
    if type(model.proj_out) is torch.nn.Linear:
        # Untied from the token embeddings (which stay float32): the projection is the decoder's largest matmul.
        model.proj_out = cls(model.proj_out, reduce_range)
        count += 1
    return count


def _release_freed_memory() -> None:
    """Give freed heap back to the OS (glibc keeps it otherwise, and RSS would count the dropped float32 weights)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


class Transcriber:
    """One base model in memory; adapters switched over it. Thread-safe (calls are serialised).

    inference: "int8" | "bf16" | "fp32" (CPU) or "fp16" | "bf16" | "fp32" (GPU); default: `dtype` if given, else
    $WHISPER_STUDIO_INFERENCE, else int8 on CPU and fp16 on GPU.
    """

    def __init__(self, model_id: str = models.DEFAULT_MODEL, *, device: str | None = None, dtype=None,
                 inference: str | None = None):
        import torch

        self.model_id = str(model_id).strip()
        self.device = str(device or models.default_device())
        self.inference = inference_mode(inference, dtype, self.device)
        # The dtype of the weights (and of the features fed to the encoder); int8 keeps float32 around its matmuls.
        dtype = {"fp32": torch.float32, "int8": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.inference]
        self.dtype = dtype
        self.base = models.load_model(self.model_id, dtype=dtype, device=self.device)
        if self.inference == "int8":
            try:
                quantize_int8(self.base)
                _release_freed_memory()  # the float32 Linear weights just dropped
            except (RuntimeError, NotImplementedError) as exc:  # a torch build without a quantized engine
                log.warning("int8 inference is not available here (%s); using float32", exc)
                self.inference = "fp32"
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
        # The greedy loop for clips of up to 30 s (False: transformers' generate() for everything, the reference).
        self.fast_decode = True
        self._setup_greedy(gen)

    def _setup_greedy(self, gen) -> None:
        import torch

        config = self.base.config
        self._sot = int(gen.decoder_start_token_id)
        eos = gen.eos_token_id
        self._eot = int(eos[0] if isinstance(eos, (list, tuple)) else eos)
        self._no_timestamps = getattr(gen, "no_timestamps_token_id", None)
        self._task_to_id = dict(getattr(gen, "task_to_id", None) or {})
        self._max_positions = int(config.max_target_positions)
        vocab = int(config.vocab_size)
        suppress = torch.zeros(vocab, dtype=torch.float32)
        ids = [t for t in (getattr(gen, "suppress_tokens", None) or []) if 0 <= t < vocab]
        suppress[ids] = float("-inf")
        begin = suppress.clone()
        ids = [t for t in (getattr(gen, "begin_suppress_tokens", None) or []) if 0 <= t < vocab]
        begin[ids] = float("-inf")
        self._suppress = suppress.to(self.device)
        self._suppress_begin = begin.to(self.device)
        lang_mask = torch.full((vocab,), float("-inf"))
        lang_mask[[i for i in self._lang_to_id.values() if 0 <= i < vocab]] = 0.0
        self._lang_mask = lang_mask.to(self.device)

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
        features = blank_after_audio(feats.input_features, [len(a) for a in arrays])
        return features.to(self.device, self.dtype), feats.attention_mask.to(self.device)

    def _detect(self, model, features) -> str:
        lang_ids = model.detect_language(input_features=features[:, :, :3000])
        return self._id_to_lang.get(int(lang_ids[0]), "en")

    # The greedy loop (clips of up to 30 s) ---------------------------------------------------------------------
    def _prompt(self, code: str | None, task: str) -> list[int]:
        """The decoder prompt generate() builds: <|sot|> [<|lang|> <|task|>] <|notimestamps|>."""
        ids = [self._sot]
        if self.multilingual:
            ids.append(self._lang_to_id[f"<|{code}|>"])
            task_id = self._task_to_id.get(task)
            if task_id is None:
                task_id = self.tokenizer.convert_tokens_to_ids(f"<|{task}|>")
            ids.append(int(task_id))
        if self._no_timestamps is not None:
            ids.append(int(self._no_timestamps))
        return ids

    def _logits(self, hidden):
        """Float32 logits (batch, vocab) of the last position of `hidden` (batch, positions, d_model)."""
        return self.base.proj_out(hidden[:, -1:]).float()[:, 0]

    def _greedy(self, arrays: Sequence[np.ndarray], code: str | None, task: str, max_new_tokens: int | None) -> tuple[list[str], list[str | None]]:
        """Greedy transcripts of clips of up to 30 s, and the language of each (detected when `code` is None on a
        multilingual model). Runs the base (with whatever adapter state the caller set up) module by module."""
        import torch

        base = self.base
        features, _ = self._features(arrays, long_form=False)
        batch = len(arrays)
        with torch.inference_mode():
            enc = base.model.encoder(features).last_hidden_state
            decoder = base.model.decoder
            codes: list[str | None]
            if self.multilingual and code is None:
                sot = torch.full((batch, 1), self._sot, dtype=torch.long, device=self.device)
                hidden = decoder(input_ids=sot, encoder_hidden_states=enc, use_cache=False).last_hidden_state
                lang_ids = (self._logits(hidden) + self._lang_mask).argmax(-1).tolist()
                codes = [self._id_to_lang.get(int(i), "en") for i in lang_ids]
            else:
                codes = [code if self.multilingual else "en"] * batch
            prompt = torch.tensor([self._prompt(c, task) for c in codes], dtype=torch.long, device=self.device)
            limit = self._max_positions - prompt.shape[1]
            if max_new_tokens is not None:
                limit = min(limit, int(max_new_tokens))
            tokens = torch.full((batch, max(limit, 0)), self._eot, dtype=torch.long, device=self.device)
            done = torch.zeros(batch, dtype=torch.bool, device=self.device)
            cache, ids, mask = None, prompt, self._suppress_begin
            for step in range(limit):
                out = decoder(input_ids=ids, encoder_hidden_states=enc, cache=cache, use_cache=True)
                cache = out.cache
                nxt = (self._logits(out.last_hidden_state) + mask).argmax(-1)
                nxt = torch.where(done, self._eot, nxt)
                tokens[:, step] = nxt
                done |= nxt == self._eot
                if bool(done.all()):
                    break
                ids, mask = nxt[:, None], self._suppress
        texts = self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        return [t.strip() for t in texts], codes

    def _run(self, model, arrays: Sequence[np.ndarray], gen_kwargs: dict[str, Any]) -> list[str]:
        """transformers' generate() (long-form, and the reference path)."""
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
            if self.fast_decode and array.size <= CHUNK_SAMPLES:
                texts, codes = self._greedy([array], code, task, max_new_tokens)
                text, code = texts[0], codes[0]
            else:
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
        gen_kwargs, code = self._generate_kwargs(language, task, max_new_tokens)
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
                    chunk = [loaded[i] for i in idx]
                    if group is short and self.fast_decode:
                        texts = self._greedy(chunk, code, task, max_new_tokens)[0]
                    else:
                        texts = self._run(model, chunk, gen_kwargs)
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
    p.add_argument("--inference", choices=[m for m in INFERENCE_MODES], default=None,
                   help=f"precision: int8 (CPU default), bf16, fp32, fp16 (GPU default); also ${INFERENCE_ENV}")
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
    transcriber = Transcriber(args.model, device=args.device, inference=getattr(args, "inference", None))
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
