"""Export a run's LoRA adapter as a standalone model.

    python -m whisper_studio export RUN_DIR --merged OUT          plain transformers folder (adapter merged)
    python -m whisper_studio export RUN_DIR --ctranslate2 OUT     CTranslate2 folder for faster-whisper
    (both flags together: the CTranslate2 model is converted from the merged one)

The merge is done on a full-precision base: an 8-bit base cannot absorb the LoRA deltas without rounding them
away (and bitsandbytes layers do not save as plain weights). The merged folder holds the weights, the
processor (tokenizer + feature extractor) and a generation config whose default language and task are the
run's, so `pipeline("automatic-speech-recognition", OUT)` transcribes in the trained language with no extra
arguments (pass `language=` to override).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from whisper_studio import languages, runfolder
from whisper_studio.config import TrainConfig
from whisper_studio.errors import ConfigError, JobError, ModelError
from whisper_studio.languages import Language
from whisper_studio.models.ct2 import publish_folder

CT2_QUANTIZATIONS = ("float32", "float16", "bfloat16", "int8", "int8_float16", "int8_float32", "int8_bfloat16",
                     "int16")
# Files faster-whisper reads next to model.bin: the tokenizer (else it tries the hub) and the mel settings.
CT2_COPY_FILES = ("tokenizer.json", "preprocessor_config.json")


def resolve_run_dir(run: str | os.PathLike) -> Path:
    """A run folder given as a path or as a run id under the runs folder."""
    from whisper_studio.paths import runs_dir

    path = Path(run).expanduser()
    if not path.is_dir() and not path.is_absolute():
        candidate = runs_dir() / str(run)
        if candidate.is_dir():
            path = candidate
    if not path.is_dir():
        raise JobError(f"No run folder at {run}.")
    if not (path / runfolder.CONFIG).is_file():
        raise JobError(f"{path} is not a run folder (it has no {runfolder.CONFIG}).")
    if not (path / runfolder.ADAPTER / "adapter_config.json").is_file():
        status = runfolder.read_status(path)
        state = status.state if status else "unknown"
        raise JobError(f"Run {path.name} has no adapter to export (state: {state}); an adapter is saved when a run "
                       "finishes or is stopped.")
    return path.resolve()


def _prepare_target(out: Path, force: bool) -> None:
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"{out} exists and is a file; choose a folder for the export.")
        if any(out.iterdir()) and not force:
            raise ConfigError(f"{out} already exists and is not empty; choose another folder or pass --force.")
    out.parent.mkdir(parents=True, exist_ok=True)


def export_merged(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *, force: bool = False) -> Path:
    """Merge the run's adapter into its base (full precision) and save a standalone transformers folder."""
    import torch

    from whisper_studio import models

    # 1. The run: its config names the base model; its adapter/ holds the LoRA weights.
    run = resolve_run_dir(run_dir)
    cfg = TrainConfig.load(run / runfolder.CONFIG)
    language = languages.resolve(cfg.language)
    out = Path(out_dir).expanduser().resolve()
    _prepare_target(out, force)

    # 2. The base in float32 on the CPU, NOT 8-bit: merging must add the deltas to real weights.
    base = models.load_model(cfg.model, load_in_8bit=False, dtype=torch.float32, device="cpu")
    processor = models.load_processor(cfg.model)

    # 3. Adapter on, then folded into the weights (W + B·A·alpha/r); the PEFT wrappers go away.
    peft_model = models.load_adapter(base, run / runfolder.ADAPTER)
    merged = peft_model.merge_and_unload()

    # 4. Generation defaults: the run's language and task, no legacy forced ids.
    gen = merged.generation_config
    gen.language = language.whisper
    gen.task = cfg.task
    gen.forced_decoder_ids = None
    merged.config.forced_decoder_ids = None
    merged.config.use_cache = True

    # 5. Save into a private folder beside OUT, then rename it into place.
    tmp = out.with_name(f".tmp-{out.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        merged.save_pretrained(str(tmp))
        # A processor loaded for training may carry language/task prefix tokens; a fresh copy keeps defaults.
        processor.save_pretrained(str(tmp))
        # transformers 5 folds the feature extractor into processor_config.json; CTranslate2/faster-whisper
        # (and older transformers) read preprocessor_config.json for the mel settings.
        processor.feature_extractor.save_pretrained(str(tmp))
        _write_card(tmp, run, cfg, language)
        (tmp / "whisper_studio_export.json").write_text(json.dumps({
            "run": str(run), "base_model": cfg.model, "language": cfg.language, "task": cfg.task,
            "format": "transformers", "created": time.time()}, indent=2) + "\n", encoding="utf-8")
        publish_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def export_ctranslate2(merged_dir: str | os.PathLike, out_dir: str | os.PathLike, *, quantization: str = "float16",
                       force: bool = False) -> Path:
    """Convert a merged transformers folder to CTranslate2 (what faster-whisper loads)."""
    if quantization not in CT2_QUANTIZATIONS:
        raise ConfigError(f"Unknown CTranslate2 quantization {quantization!r}; choose one of {', '.join(CT2_QUANTIZATIONS)}.")
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        raise ModelError("The CTranslate2 export needs the ctranslate2 package (pip install ctranslate2).") from None
    src = Path(merged_dir)
    if not (src / "config.json").is_file():
        raise ModelError(f"{src} is not a transformers model folder (no config.json).")
    out = Path(out_dir).expanduser().resolve()
    _prepare_target(out, force)
    copy = [name for name in CT2_COPY_FILES if (src / name).is_file()]
    if "tokenizer.json" not in copy:
        raise ModelError(f"{src} has no tokenizer.json; faster-whisper needs it next to the converted model.")
    tmp = out.with_name(f".tmp-{out.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        TransformersConverter(str(src), copy_files=copy).convert(str(tmp), quantization=quantization, force=True)
        if (src / "README.md").is_file():
            card = (src / "README.md").read_text(encoding="utf-8")
            (tmp / "README.md").write_text(card.replace("format: transformers", f"format: ctranslate2 ({quantization})"),
                                           encoding="utf-8")
        publish_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def export_run(run_dir: str | os.PathLike, *, merged: str | os.PathLike | None = None,
               ctranslate2: str | os.PathLike | None = None, quantization: str = "float16",
               force: bool = False) -> dict[str, Path]:
    """The CLI's work: --merged and/or --ctranslate2 (the latter via a temporary merge when no --merged)."""
    if merged is None and ctranslate2 is None:
        raise ConfigError("Nothing to export: give --merged OUT and/or --ctranslate2 OUT.")
    done: dict[str, Path] = {}
    if merged is not None:
        done["merged"] = export_merged(run_dir, merged, force=force)
    if ctranslate2 is not None:
        if "merged" in done:
            done["ctranslate2"] = export_ctranslate2(done["merged"], ctranslate2, quantization=quantization, force=force)
        else:
            with tempfile.TemporaryDirectory(prefix="whisper-studio-merge-") as tmp:
                merged_tmp = export_merged(run_dir, Path(tmp) / "merged")
                done["ctranslate2"] = export_ctranslate2(merged_tmp, ctranslate2, quantization=quantization, force=force)
    return done


def _write_card(folder: Path, run: Path, cfg: TrainConfig, language: Language) -> None:
    """The adapter's model card, re-headed for a merged model (the training facts and WER still apply)."""
    adapter_card = run / runfolder.ADAPTER / "README.md"
    body = adapter_card.read_text(encoding="utf-8") if adapter_card.is_file() else ""
    if body.startswith("---"):
        end = body.find("\n---", 3)
        body = body[end + 4:].lstrip("\n") if end != -1 else body
    code = language.whisper
    header = "\n".join([
        "---",
        f"base_model: {cfg.model}",
        "library_name: transformers",
        f"language: [{code}]",
        "pipeline_tag: automatic-speech-recognition",
        "tags: [whisper, lora-merged, whisper-studio]",
        "---",
        "",
        f"Whisper with the LoRA adapter of run `{run.name}` merged into its weights (format: transformers). "
        f"Generation defaults to language `{code}` and task `{cfg.task}`.",
        "",
    ])
    (folder / "README.md").write_text(header + body, encoding="utf-8")
