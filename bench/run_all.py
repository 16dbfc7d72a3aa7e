"""Run every benchmark and (re)write docs/benchmarks.md.

    python bench/run_all.py                 # full runs (measure on a quiet machine: load average < 2.5)
    python bench/run_all.py --quick         # smoke runs (tiny sizes; writes results/*_quick.json, not the docs)
    python bench/run_all.py --only train eval
    python bench/run_all.py --docs-only     # rebuild docs/benchmarks.md from bench/results/*.json

Each benchmark runs in its own process (clean memory, its own thread settings). The docs get one section per
benchmark (tables, ratios, targets met/missed with their numbers, the machine and its load) and a summary of
all targets on top.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

BENCHES = {"transcribe": "bench_transcribe", "train": "bench_train", "eval": "bench_eval", "startup": "bench_startup"}


def rebuild_docs() -> Path:
    summary = ["## Targets at a glance", "", "| benchmark | target | measured | required | |", "| --- | --- | --- | --- | --- |"]
    sections = {}
    for name, module in BENCHES.items():
        res, smoke = common.read_result(name), False
        if res is None:  # no full run yet: show the smoke run, marked as such
            res, smoke = common.read_result(name + "_quick"), True
        if res is None:
            continue
        body = importlib.import_module(module).render(res)
        if smoke:
            body = body.replace("\n", "\n\n> **Smoke run only** (`--quick`: tiny sizes, few repeats, see the settings and load "
                                f"below; `bench/results/{name}_quick.json`). Rerun `python bench/run_all.py --only {name}` "
                                "on a quiet machine for representative figures.\n", 1)
        sections[name] = body
        for t in res.get("targets", []):
            summary.append(f"| {name}{' (smoke run)' if smoke else ''} " + common.fmt_target(t))
    machine = None
    for name in BENCHES:
        res = common.read_result(name)
        if res:
            machine = res["machine"]
            break
    head = common.DOC_HEAD.rstrip() + "\n"
    if machine:
        head += "\n" + common.machine_line(machine).replace("; load average", ". Load average of the first result") + "\n"
    text = head + "\n<!-- BEGIN summary -->\n" + "\n".join(summary) + "\n<!-- END summary -->\n"
    for name, body in sections.items():
        text += f"\n<!-- BEGIN {name} -->\n{body.strip()}\n<!-- END {name} -->\n"
    extra = common.DOCS.read_text(encoding="utf-8") if common.DOCS.is_file() else ""
    marker = "<!-- BEGIN notes -->"
    if marker in extra:  # hand-written analysis (profiles, recommendations) is kept as it is
        text += "\n" + extra[extra.index(marker):].rstrip() + "\n"
    common.DOCS.write_text(text, encoding="utf-8")
    return common.DOCS


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", nargs="+", choices=list(BENCHES), default=list(BENCHES))
    p.add_argument("--docs-only", action="store_true")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help=f"wait up to this long for the load average to drop under {common.MAX_QUIET_LOAD}")
    args = p.parse_args(argv)
    failed = []
    if not args.docs_only:
        for name in args.only:
            common.check_quiet(wait_s=args.wait_quiet)
            print(f"=== {name} (load {common.load_average()}) ===", flush=True)
            t0 = time.monotonic()
            cmd = [sys.executable, str(Path(__file__).parent / f"{BENCHES[name]}.py")] + (["--quick"] if args.quick else [])
            rc = subprocess.call(cmd, cwd=common.REPO, env=common.thread_env())
            print(f"=== {name}: rc {rc} in {time.monotonic() - t0:.0f} s ===", flush=True)
            if rc != 0:
                failed.append(name)
    if not args.quick:
        print(f"wrote {rebuild_docs()}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
