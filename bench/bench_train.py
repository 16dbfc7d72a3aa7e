"""Training throughput and peak memory: our job vs the source recipe followed literally (recipe_reference.py).

    python bench/bench_train.py            # bundled base, demo mr, 64 clips, batch 4, 10 steps (2 warm-up)
    python bench/bench_train.py --quick    # smoke run (3 steps, 8 clips)

Every configuration runs as its own process, one after the other on the same machine:
* recipe: bench/recipe_reference.py (plain Seq2SeqTrainer, peft LoRA r=32 q/v, 8-bit, datasets.map features, fp32);
* ours (default): `python -m whisper_studio train ... --no-eval` with the defaults (8-bit, precision auto);
* ours 8-bit fp32: the recipe's arithmetic through our job (isolates what the job machinery costs);
* ours fast: `--no-8bit --precision bf16`.
samples/s = batch x measured steps / time from the end of the last warm-up step to the end of the last step
(ours: metrics.jsonl `elapsed`, logged every step; recipe: a step-end timer). Peak RSS is the process's
ru_maxrss from wait4.

Targets: our default job >= 0.95x the recipe's samples/s; a fast mode >= 1.5x.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import f  # noqa: E402

NAME = "train"
MODEL = "bundled/whisper-base"

CONFIGS = {  # the last one is optional (--configs): it separates 8-bit from precision
    "recipe (8-bit, fp32, literal)": {"kind": "recipe"},
    "ours default (8-bit, precision auto)": {"kind": "ours", "flags": []},
    "ours 8-bit fp32": {"kind": "ours", "flags": ["--precision", "fp32"]},
    "ours fast (--no-8bit --precision bf16)": {"kind": "ours", "flags": ["--no-8bit", "--precision", "bf16"]},
    "ours --no-8bit fp32": {"kind": "ours", "flags": ["--no-8bit", "--precision", "fp32"]},
}


def throughput(end_times: list[tuple[int, float]], batch: int, warmup: int) -> dict:
    """end_times: (step, monotonic seconds at its end), step 0 = training start."""
    pts = dict(end_times)
    last = max(pts)
    if warmup not in pts or last <= warmup:
        return {"samples_per_second": None, "median_step_s": None, "steps_measured": 0}
    steps = last - warmup
    per_step = [pts[s] - pts[s - 1] for s in range(warmup + 1, last + 1) if s in pts and s - 1 in pts]
    return {"samples_per_second": batch * steps / (pts[last] - pts[warmup]),
            "median_step_s": common.median(per_step), "steps_measured": steps,
            "step_s": [round(x, 3) for x in per_step],
            "samples_per_second_median_step": batch / common.median(per_step) if per_step else None}


def run_ours(flags: list[str], args, work: Path) -> dict:
    run_dir = work / ("ours-" + "-".join(x.strip("-") for x in flags) if flags else work / "ours-default")
    cmd = [sys.executable, "-m", "whisper_studio", "train", "--model", MODEL, "--language", args.language,
           "--source", "demo", "--max-train-samples", str(args.clips), "--batch-size", str(args.batch_size),
           "--grad-accum", "1", "--max-steps", str(args.steps), "--logging-steps", "1", "--no-eval",
           "--out", str(run_dir), *flags]
    with open(work / (run_dir.name + ".out"), "w") as log:
        child = common.run_child(cmd, env=common.thread_env(args.threads), cwd=common.REPO, stdout=log,
                                 stderr=log, timeout=args.timeout)
    if child["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc {child['rc']}):\n{(work / (run_dir.name + '.out')).read_text()[-3000:]}")
    metrics = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    train = [m for m in metrics if m.get("type") == "train"]
    points = [(0, 0.0)] + [(m["step"], m["elapsed"]) for m in train]
    status = json.loads((run_dir / "status.json").read_text())
    out = {"command": " ".join(["python"] + cmd[1:]), "wall_s": child["wall_s"], "peak_rss_mib": child["peak_rss_mib"],
           **throughput(points, args.batch_size, args.warmup), "final_loss": train[-1]["loss"] if train else None,
           "state": status.get("state")}
    import re

    log_text = (work / (run_dir.name + ".out")).read_text(errors="replace")
    if (run_dir / "train.log").is_file():
        log_text += (run_dir / "train.log").read_text(errors="replace")
    m = re.search(r"precision (fp32|bf16|fp16)", log_text)
    if m:
        out["job_precision"] = m.group(1)
    return out


def run_recipe(args, work: Path) -> dict:
    from whisper_studio import demo, models

    model_dir = models.resolve(MODEL)
    corpus = demo.build_corpus(args.language)
    out_dir = work / "recipe"
    cmd = [sys.executable, str(common.REPO / "bench" / "recipe_reference.py"), "--model-dir", str(model_dir),
           "--corpus", str(corpus), "--language", args.recipe_language, "--clips", str(args.clips),
           "--batch-size", str(args.batch_size), "--max-steps", str(args.steps), "--threads", str(args.threads),
           "--out", str(out_dir)]
    with open(work / "recipe.out", "w") as log:
        child = common.run_child(cmd, env=common.thread_env(args.threads), cwd=common.REPO, stdout=log, stderr=log,
                                 timeout=args.timeout)
    if child["rc"] != 0:
        raise RuntimeError(f"recipe failed (rc {child['rc']}):\n{(work / 'recipe.out').read_text()[-3000:]}")
    steps = json.loads((out_dir / "steps.json").read_text())
    t = steps["step_end_times"]
    points = [(i, x - t[0]) for i, x in enumerate(t)]
    return {"command": "python bench/recipe_reference.py " + " ".join(cmd[2:]), "wall_s": child["wall_s"],
            "peak_rss_mib": child["peak_rss_mib"], **throughput(points, args.batch_size, args.warmup),
            "final_loss": steps.get("train_loss"), "data_seconds": steps.get("data_seconds"),
            "gradient_checkpointing": steps.get("gradient_checkpointing")}


def run(args) -> dict:
    load0 = common.check_quiet()
    result = {"machine": common.machine_info(args.threads), "load_at_start": round(load0, 2),
              "settings": {"model": MODEL, "language": args.language, "clips": args.clips, "batch_size": args.batch_size,
                           "steps": args.steps, "warmup_steps": args.warmup, "threads": args.threads, "quick": args.quick},
              "configs": {}}
    # Build the shared inputs first so no run pays for them: the converted model and the demo corpus.
    from whisper_studio import demo, models

    models.resolve(MODEL)
    demo.build_corpus(args.language)
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        for name in args.configs:
            spec = CONFIGS[name]
            print(f"[train] {name}", flush=True)
            r = run_recipe(args, work) if spec["kind"] == "recipe" else run_ours(spec["flags"], args, work)
            r["load_after"] = common.load_average()
            result["configs"][name] = r
            print(f"  {f(r['samples_per_second'])} samples/s, peak {f(r['peak_rss_mib'], 4)} MiB", flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    c = result["configs"]
    recipe = c.get("recipe (8-bit, fp32, literal)", {}).get("samples_per_second")
    for name, r in c.items():
        r["vs_recipe"] = common.ratio(r["samples_per_second"], recipe)
    default = c.get("ours default (8-bit, precision auto)", {}).get("samples_per_second")
    fastest = max((r["samples_per_second"] or 0 for n, r in c.items() if n.startswith("ours")), default=None)
    result["load_at_end"] = round(common.load_average()[0], 2)
    result["targets"] = [
        common.target("our default job / recipe (samples/s)", common.ratio(default, recipe), 0.95, ">=", "x"),
        common.target("our fastest mode / recipe (samples/s)", common.ratio(fastest, recipe), 1.5, ">=", "x"),
    ]
    return result


def render(res: dict) -> str:
    s = res["settings"]
    lines = ["## Training", "",
             f"{s['model']} with LoRA r=32 on q_proj/v_proj, synthetic demo `{s['language']}` ({s['clips']} clips), batch "
             f"{s['batch_size']}, {s['steps']} optimizer steps of which the first {s['warmup_steps']} are warm-up, "
             f"{s['threads']} threads, each configuration in its own process, one after the other. The recipe is "
             "`bench/recipe_reference.py` (the int8 + PEFT notebook followed literally: plain Seq2SeqTrainer, "
             "`prepare_model_for_kbit_training` with its defaults, which turn on gradient checkpointing, fp32 on CPU).", "",
             "| configuration | samples/s | vs recipe | median step (s) | peak RSS (MiB) | process wall (s) | final loss |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in res["configs"].items():
        lines.append(f"| {name} | {f(r['samples_per_second'])} | {f(r.get('vs_recipe'))}x | {f(r['median_step_s'])} | "
                     f"{f(r['peak_rss_mib'], 4)} | {f(r['wall_s'])} | {f(r.get('final_loss'))} |")
    prec = [f"{n}: {r['job_precision']}" for n, r in res["configs"].items() if r.get("job_precision")]
    if prec:
        lines += ["", "Precision the job resolved: " + "; ".join(prec) + "."]
    lines += ["", "### Targets", "", common.targets_table(res["targets"]), "", common.machine_line(res["machine"]),
              f"Load average at start {res['load_at_start']}, at end {res['load_at_end']}."]
    return "\n".join(lines)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--language", default="mr")
    p.add_argument("--recipe-language", default="marathi", help="the same language as the tokenizer names it")
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=common.DEFAULT_THREADS)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS)[:4], metavar="NAME", help="subset of: " + " | ".join(CONFIGS))
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--keep", action="store_true", help="keep the run folders")
    p.add_argument("--no-docs", action="store_true")
    args = p.parse_args(argv)
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        p.error(f"unknown configs {unknown}")
    if args.quick:
        args.clips, args.steps, args.warmup, args.batch_size = 8, 3, 1, 2
    return args


def main(argv=None) -> int:
    return common.bench_main(NAME, parse, run, argv)


if __name__ == "__main__":
    sys.exit(main())
