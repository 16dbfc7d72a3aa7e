"""Precision of a Transcriber's base model, and the whole int8 path (CPU).

Precision is chosen per Transcriber (`inference=`) or process-wide with $WHISPER_STUDIO_INFERENCE:

* ``int8`` (CPU default): every Linear layer of the encoder and decoder, and the vocabulary projection, hold
  int8 weights (one scale per output channel) and run with dynamically quantized int8 activations (fbgemm/oneDNN,
  VNNI where the CPU has it; one scale per token where inputs have outliers), like faster-whisper's int8 mode.
  Convolutions, layer norms, attention and the embeddings stay float32; LoRA adapters stay float32 on top of the
  int8 layers (peft wraps them like any Linear).
* ``bf16``: the whole model in bfloat16 (fast on CPUs with AVX512-BF16/AMX; halves memory).
* ``fp32``: float32 weights, same tokens as transformers' generate().
* ``fp16``: GPU default (float16, Whisper's own choice); not offered on CPU.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path
from typing import Any

from whisper_studio import models
from whisper_studio.errors import ConfigError

log = logging.getLogger(__name__)

INFERENCE_ENV = "WHISPER_STUDIO_INFERENCE"
INFERENCE_MODES = ("int8", "bf16", "fp32", "fp16")
CPU_DEFAULT_INFERENCE = "int8"  # measured: fastest on CPU, WER within 0.5 points of float32 (docs/benchmarks.md)

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


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


_int8_cls = None


def int8_linear_class():
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

    cls = int8_linear_class()
    flags = cpu_flags()
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


def release_freed_memory() -> None:
    """Give freed heap back to the OS (glibc keeps it otherwise, and RSS would count the dropped float32 weights)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def torch_dtype(mode: str):
    """The dtype of the weights (and of the features fed to the encoder); int8 keeps float32 around its matmuls."""
    import torch

    return {"fp32": torch.float32, "int8": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def load_base(model_id: str, mode: str, device: str):
    """The base model in precision `mode` -> (model, the mode it actually runs in). A torch build without a
    quantized engine falls back from int8 to float32 (with a warning) rather than failing."""
    model = models.load_model(model_id, dtype=torch_dtype(mode), device=device)
    if mode != "int8":
        return model, mode
    try:
        quantize_int8(model)
        release_freed_memory()  # the float32 Linear weights just dropped
        return model, mode
    except (RuntimeError, NotImplementedError) as exc:
        log.warning("int8 inference is not available here (%s); using float32", exc)
        return models.load_model(model_id, dtype=torch_dtype("fp32"), device=device), "fp32"
