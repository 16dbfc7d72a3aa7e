"""The adapter's model card (adapter/README.md): what it was trained from, on what, how, and how well.

Written through `huggingface_hub.ModelCard`, so the YAML header is the hub's own metadata format (base_model,
library_name, language, pipeline_tag, tags) and the card can be pushed as it is.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from whisper_studio.config import TrainConfig
from whisper_studio.languages import Language

FILENAME = "README.md"


def describe_source(cfg: TrainConfig) -> str:
    """One line saying where the training data came from, in the source's own words."""
    from whisper_studio import sources

    return sources.get(cfg.source.kind).describe(cfg.source)


def write_model_card(adapter_dir: Path, cfg: TrainConfig, language: Language, summary: dict[str, Any]) -> Path:
    """README.md next to the adapter. `summary` holds what the job measured (train_clips, steps, *_wer as
    fractions, train_seconds, ...); anything missing reads as '?' or 'not evaluated'."""
    from huggingface_hub import ModelCard, ModelCardData

    from whisper_studio.trainer import fmt_seconds

    src = cfg.source
    synthetic = src.kind == "demo"
    data = ModelCardData(
        base_model=cfg.model,
        library_name="peft",
        language=[language.whisper],
        pipeline_tag="automatic-speech-recognition",
        tags=["whisper", "lora", "peft", "whisper-studio"] + (["synthetic-data"] if synthetic else []),
    )

    def pct(key: str) -> str:
        value = summary.get(key)
        return f"{value:.1%}" if isinstance(value, (int, float)) and not math.isnan(value) else "not evaluated"

    lora = cfg.lora
    alpha = f"{lora.alpha:g}" if isinstance(lora.alpha, float) else lora.alpha
    precision = summary.get("precision", cfg.precision)
    in_8bit = summary.get("load_in_8bit", cfg.load_in_8bit is True)  # what the job chose ("auto" resolved)
    body = [
        f"# Whisper LoRA adapter: {language.english} ({cfg.language})",
        "",
        f"A LoRA adapter for `{cfg.model}` trained with Whisper Studio"
        + (" on a base loaded in 8-bit (bitsandbytes)" if in_8bit else "") + ".",
        "Load it with `PeftModel.from_pretrained(WhisperForConditionalGeneration.from_pretrained(BASE), "
        "'adapter')`; generate with `language=\"" + language.whisper + f"\", task=\"{cfg.task}\"`.",
        "",
        "## Data",
        f"- Source: {describe_source(cfg)}",
        f"- Training clips: {summary.get('train_clips', '?')}"
        + (f" (at most {cfg.max_train_samples} requested)" if cfg.max_train_samples else ""),
        f"- Test clips evaluated: {summary.get('eval_clips', 'none')}",
        *(["- Clips skipped: " + ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in summary["skipped"].items())]
          if summary.get("skipped") else []),
        "",
        "## Training",
        "| setting | value |",
        "| --- | --- |",
        f"| LoRA rank / alpha / dropout | {lora.rank} / {alpha} / {lora.dropout} |",
        f"| target modules | {', '.join(lora.target_modules)} |",
        f"| bias | {lora.bias} |",
        f"| epochs | {cfg.epochs} (done: {summary.get('epochs_done', 0):.2f}) |",
        f"| steps | {summary.get('steps', '?')} |",
        f"| batch size x grad accum x processes | {cfg.batch_size} x {cfg.grad_accum} x {summary.get('world_size', 1)} |",
        f"| learning rate / warm-up steps | {cfg.learning_rate} / {cfg.warmup_steps} |",
        f"| precision | {precision}{' autocast' if precision == 'bf16' and 'precision' in summary else ''}"
        f"{', base in 8-bit' if in_8bit else ''} |",
        f"| device | {summary.get('device', '?')} |",
        f"| training time | {fmt_seconds(summary['train_seconds']) if 'train_seconds' in summary else '?'} |",
        f"| throughput | {summary.get('samples_per_second') or '?'} samples/s |",
        f"| final training loss | {summary.get('train_loss', float('nan')):.4f} |",
        f"| trainable parameters | {summary.get('trainable_params', 0):,} of {summary.get('total_params', 0):,} |",
        f"| seed | {cfg.seed} |",
        "",
        "## Evaluation (test split, greedy decoding)",
        "| | base | adapted |",
        "| --- | --- | --- |",
        f"| WER | {pct('base_wer')} | {pct('adapted_wer')} |",
        f"| WER, normalized text | {pct('base_wer_normalized')} | {pct('adapted_wer_normalized')} |",
        "",
    ]
    if synthetic:
        body += ["The training data is synthetic (eSpeak NG). The adapter learns that voice; it shows the "
                 "mechanism and does not improve accuracy on real speech.", ""]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))
    adapter_dir.mkdir(parents=True, exist_ok=True)
    path = adapter_dir / FILENAME
    card.save(path)
    return path
