"""`python -m whisper_studio evaluate RUN_DIR [--split test] [--max-samples N] [--batch-size B] [--json]`"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from whisper_studio.evaluation import evaluate_run, format_summary


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="WER of the base model vs a run's adapter",
        description="Transcribe a split of the run's data with the base model and with the run's adapter, "
        "and report raw and normalized WER; per-utterance rows go to RUN_DIR/eval.json.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (or a run id under the runs folder)")
    p.add_argument("--split", default="test", help="data split to evaluate on (default: test)")
    p.add_argument("--max-samples", type=int, default=None, help="evaluate at most N clips (default: the run's max test samples)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per decoding batch (default: 8)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object with the five summary numbers")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir).expanduser()
    if not run_dir.is_dir() and "/" not in args.run_dir:
        from whisper_studio.paths import runs_dir

        if (runs_dir() / args.run_dir).is_dir():
            run_dir = runs_dir() / args.run_dir

    def show(fraction: float, message: str) -> None:
        print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)

    # Everything but the final answer goes to stderr, so `--json` output is one parseable object even if a
    # library prints while loading.
    with contextlib.redirect_stdout(sys.stderr):
        result = evaluate_run(run_dir, split=args.split, max_samples=args.max_samples, batch_size=args.batch_size, progress=show)
    if args.json:
        print(json.dumps(result.summary()))
    else:
        print(format_summary(result, run_dir))
    return 0
