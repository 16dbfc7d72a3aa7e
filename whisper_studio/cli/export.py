"""`python -m whisper_studio export RUN_DIR [--merged OUT] [--ctranslate2 OUT]`: a run's adapter as a standalone model."""

from __future__ import annotations

import argparse

from whisper_studio.export import CT2_QUANTIZATIONS, export_run


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="merge a run's adapter into a standalone model (transformers and/or CTranslate2)",
        description="Merge a run's LoRA adapter into a full-precision copy of its base model and save it as a "
        "plain transformers folder (--merged) and/or a CTranslate2 folder for faster-whisper (--ctranslate2).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (or a run id under the runs folder)")
    p.add_argument("--merged", metavar="OUT", help="write the merged transformers model here")
    p.add_argument("--ctranslate2", metavar="OUT", help="write a CTranslate2 conversion (for faster-whisper) here")
    p.add_argument("--quantization", default="float16", choices=CT2_QUANTIZATIONS,
                   help="CTranslate2 weight type (default float16: half the size; faster-whisper picks the compute type)")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty output folder")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    done = export_run(args.run_dir, merged=args.merged, ctranslate2=args.ctranslate2,
                      quantization=args.quantization, force=args.force)
    for kind, path in done.items():
        print(f"{kind}: {path}")
    return 0
