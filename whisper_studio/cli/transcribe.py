"""`python -m whisper_studio transcribe FILE... [--model ID] [--adapter DIR] [--language CODE] [--json]`"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from whisper_studio import models
from whisper_studio.errors import AudioError
from whisper_studio.inference.decode import resolve_language
from whisper_studio.transcribe import INFERENCE_ENV, INFERENCE_MODES, TASKS, Transcriber


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
    p.add_argument("--inference", choices=list(INFERENCE_MODES), default=None,
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
    language = resolve_language(args.language)  # once, and before the model loads: a typo fails fast
    transcriber = Transcriber(args.model, device=args.device, inference=args.inference)
    if args.adapter:
        transcriber.set_adapter(args.adapter)
    failed = bool(missing)
    for f in present:
        try:
            base, adapted = transcriber.transcribe_both(f, language=language, task=args.task, max_new_tokens=args.max_new_tokens)
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
