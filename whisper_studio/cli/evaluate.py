"""`python -m whisper_studio evaluate RUN_DIR [--split test] [--max-samples N] [--batch-size B]
[--control/--no-control] [--control-clips N] [--control-language L] [--json]`"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from whisper_studio.evaluation import CONTROL_CLIPS, evaluate_run, format_summary, save_eval


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="WER of the base model vs a run's adapter",
        description="Transcribe a split of the run's data with the base model and with the run's adapter, and "
        "report raw and normalized WER, CER and hallucination flags, plus a control set in another language "
        "(the forgetting check); per-utterance rows go to RUN_DIR/eval.json, every evaluation to RUN_DIR/evals/.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (or a run id under the runs folder)")
    p.add_argument("--split", default="test", help="data split to evaluate on (default: test)")
    p.add_argument("--max-samples", type=int, default=None, help="evaluate at most N clips (default: the run's max test samples)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per decoding batch (default: 8)")
    p.add_argument("--control", action=argparse.BooleanOptionalAction, default=True,
                   help="also score base and adapter on a control set in another language (default: on)")
    p.add_argument("--control-clips", type=int, default=CONTROL_CLIPS,
                   help=f"clips in the control set (default: {CONTROL_CLIPS})")
    p.add_argument("--control-language", default=None,
                   help="language of the control set (default: en; de for an English run)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object with the summary numbers")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir).expanduser()
    if not run_dir.is_dir() and "/" not in args.run_dir:
        from whisper_studio.paths import runs_dir

        if (runs_dir() / args.run_dir).is_dir():
            run_dir = runs_dir() / args.run_dir

    from whisper_studio.evaluation import Eta

    left_s = Eta()

    def show(done: int, total: int, message: str) -> None:
        clips = f"clips {done}/{total}" if total else "clips -"
        left = left_s(done, total)
        eta = f" · ETA {int(left // 60)}:{int(left % 60):02d}" if left is not None else ""
        print(f"[{clips}{eta}] {message}", file=sys.stderr, flush=True)

    # Everything but the final answer goes to stderr, so `--json` output is one parseable object even if a
    # library prints while loading.
    with contextlib.redirect_stdout(sys.stderr):
        result = evaluate_run(run_dir, split=args.split, max_samples=args.max_samples, batch_size=args.batch_size,
                              progress=show, control=args.control, control_clips=args.control_clips,
                              control_language=args.control_language, save=False)
    # The result is printed before it is written: a read-only or full runs folder must not lose it.
    if args.json:
        print(json.dumps(result.summary()), flush=True)
    else:
        print(format_summary(result, run_dir), flush=True)
    save_eval(run_dir, result)  # ResultNotSaved (a StudioError): "error: ... could not be saved", exit 2
    return 0
