"""Shared helpers for the benchmark scripts: machine description, timing, memory, results and docs sections.

Every benchmark writes ``bench/results/<name>.json`` (its figures plus the machine they were measured on) and
regenerates its own section of ``docs/benchmarks.md`` between ``<!-- BEGIN name -->`` / ``<!-- END name -->``
markers, so the scripts can run one at a time or all together (``bench/run_all.py``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DOCS = REPO / "docs" / "benchmarks.md"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_THREADS = 2
MAX_QUIET_LOAD = 2.5  # 1-minute load average under which the machine counts as quiet enough to measure


# --------------------------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The CPU features that matter for these benchmarks (bf16 / int8 matrix units)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")
                return [f for f in wanted if f in flags]
    except OSError:
        pass
    return []


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _version(module: str) -> str | None:
    try:
        from importlib import metadata

        return metadata.version(module)
    except Exception:  # noqa: BLE001
        return None


def machine_info(threads: int | None = None) -> dict[str, Any]:
    import torch

    mem_gib = None
    try:
        import psutil

        mem_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # noqa: BLE001
        pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "memory_gib": mem_gib,
        "threads": threads if threads is not None else torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "peft": _version("peft"),
        "bitsandbytes": _version("bitsandbytes"),
        "ctranslate2": _version("ctranslate2"),
        "faster_whisper": _version("faster-whisper"),
        "load_average": load_average(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def set_threads(n: int = DEFAULT_THREADS) -> None:
    """Pin torch (and the OpenMP/MKL pools of anything imported later) to n threads."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    import torch

    torch.set_num_threads(n)


def thread_env(n: int = DEFAULT_THREADS) -> dict[str, str]:
    """Environment for a subprocess that should use n threads."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n), TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def check_quiet(max_load: float = MAX_QUIET_LOAD, *, wait_s: float = 0.0) -> float:
    """The 1-minute load average, after waiting up to wait_s for it to drop under max_load; warns if it did not."""
    deadline = time.monotonic() + wait_s
    while True:
        load = os.getloadavg()[0]
        if load < max_load or time.monotonic() >= deadline:
            break
        time.sleep(5)
    if load >= max_load:
        print(f"warning: load average {load:.2f} >= {max_load}: timings are not representative", file=sys.stderr)
    return load


# --------------------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------------------
def median(xs: Iterable[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time several candidates round-robin (a, b, c, a, b, c, ...) so load changes hit them all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            dt, _ = timed(fn)
            times[name].append(dt)
    return times


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# --------------------------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------------------------
def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mib() -> float:
    """Peak resident set of this process so far (ru_maxrss is KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(cmd: list[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
              stdout=None, stderr=None, timeout: float | None = None) -> dict[str, Any]:
    """Run cmd, wait for it with wait4 and return its exit code, wall time and peak RSS (that process tree's
    ru_maxrss: the largest of the child and the descendants it waited for)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=stdout, stderr=stderr)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": proc.returncode, "wall_s": time.perf_counter() - t0, "peak_rss_mib": usage.ru_maxrss / 1024}


def run_python_json(code: str, *, threads: int = DEFAULT_THREADS, timeout: float = 900) -> dict[str, Any]:
    """Run `code` in a fresh interpreter; it must print one JSON object as its last stdout line."""
    proc = subprocess.run([sys.executable, "-c", code], env=thread_env(threads), cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    if not lines:
        raise RuntimeError(f"child printed no JSON:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


# --------------------------------------------------------------------------------------------------------------
# Shared fixtures
# --------------------------------------------------------------------------------------------------------------
def make_random_adapter(model_id: str, out_dir: str | Path, *, rank: int = 32, alpha: int = 64,
                        target_modules=("q_proj", "v_proj"), b_std: float = 0.002, seed: int = 0) -> Path:
    """A LoRA adapter with random A and small random B (so adapted output differs from the base but stays
    sensible), in PEFT format. Deterministic for a seed."""
    import torch
    from peft import LoraConfig, get_peft_model

    from whisper_studio import models

    out_dir = Path(out_dir)
    if (out_dir / "adapter_config.json").is_file() and (out_dir / "adapter_model.safetensors").is_file():
        return out_dir
    torch.manual_seed(seed)
    base = models.load_model(model_id)
    cfg = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(target_modules), lora_dropout=0.0, bias="none")
    peft_model = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, b_std)
    peft_model.peft_config["default"].base_model_name_or_path = model_id
    peft_model.save_pretrained(str(out_dir))
    return out_dir


def wer(refs: list[str], hyps: list[str], normalize: Callable[[str], str] | None = None) -> float:
    """Corpus WER in percent (jiwer), optionally after a text normalizer."""
    import jiwer

    if normalize is not None:
        refs = [normalize(r) for r in refs]
        hyps = [normalize(h) for h in hyps]
    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    return 100.0 * jiwer.wer([r for r, _ in pairs], [h if h.strip() else "<empty>" for _, h in pairs])


def demo_rows(locale: str, split: str, n: int) -> list[dict[str, Any]]:
    """The first n rows (path, sentence) of a demo corpus split (built and cached on first use)."""
    import csv

    from whisper_studio import demo

    folder = demo.build_corpus(locale)
    rows = []
    with open(folder / f"{split}.tsv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            rows.append({"path": str(folder / "clips" / row["path"]), "sentence": row["sentence"]})
            if len(rows) >= n:
                break
    return rows


# --------------------------------------------------------------------------------------------------------------
# Results and docs
# --------------------------------------------------------------------------------------------------------------
def target(name: str, value: float | None, limit: float, op: str, unit: str = "") -> dict[str, Any]:
    """A target check: value `op` limit (op: '<=' or '>=')."""
    met = None if value is None else (value <= limit if op == "<=" else value >= limit)
    return {"name": name, "value": None if value is None else round(value, 4), "limit": limit, "op": op,
            "unit": unit, "met": met}


def fmt_target(t: dict[str, Any]) -> str:
    mark = {True: "**met**", False: "**missed**", None: "not measured"}[t["met"]]
    val = "n/a" if t["value"] is None else f"{t['value']:.3g}{t['unit']}"
    return f"| {t['name']} | {val} | {t['op']} {t['limit']:g}{t['unit']} | {mark} |"


def targets_table(targets: list[dict[str, Any]]) -> str:
    return "\n".join(["| target | measured | required | |", "| --- | --- | --- | --- |"] + [fmt_target(t) for t in targets])


def machine_line(m: dict[str, Any]) -> str:
    load = ", ".join(f"{x:g}" for x in m.get("load_average", []))
    return (f"Machine: {m.get('cpu')} ({m.get('cores')} cores; {', '.join(m.get('cpu_flags') or [])}), "
            f"{m.get('threads')} torch threads, torch {m.get('torch')}, transformers {m.get('transformers')}, "
            f"peft {m.get('peft')}, bitsandbytes {m.get('bitsandbytes')}, ctranslate2 {m.get('ctranslate2')}; "
            f"load average {load} at {m.get('date')}.")


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_result(name: str) -> dict[str, Any] | None:
    try:
        return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


SECTION_ORDER = ("transcribe", "train", "eval", "startup")
DOC_HEAD = """# Benchmarks

Generated by `python bench/run_all.py` (each `bench/bench_*.py` also rewrites its own section). Figures are
medians of repeated runs; every ratio compares candidates measured side by side in the same run (interleaved),
so a change in machine load affects both sides. Raw figures: `bench/results/*.json`.

The demo corpus is synthetic eSpeak NG speech: its WER shows that paths agree, not real-world accuracy.
"""


def update_docs(name: str, markdown: str) -> Path:
    """Replace (or add) the section `name` of docs/benchmarks.md, keeping the others."""
    text = DOCS.read_text(encoding="utf-8") if DOCS.is_file() else DOC_HEAD
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        # Insert in the canonical order: before the first section that should come after this one.
        later = SECTION_ORDER[SECTION_ORDER.index(name) + 1:] if name in SECTION_ORDER else ()
        pos = min((text.find(f"<!-- BEGIN {n} -->") for n in later if f"<!-- BEGIN {n} -->" in text), default=-1)
        text = (text[:pos] + block + "\n\n" + text[pos:]) if pos >= 0 else text.rstrip() + "\n\n" + block + "\n"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text, encoding="utf-8")
    return DOCS


def f(x: float | None, digits: int = 3) -> str:
    """A number for a table cell."""
    if x is None:
        return "n/a"
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def refresh_docs() -> Path:
    """Rebuild docs/benchmarks.md from every results file (summary of targets, one section per benchmark)."""
    import run_all  # bench/ is on sys.path for the scripts

    return run_all.rebuild_docs()


def bench_main(name: str, parse, run, argv=None) -> int:
    """What every bench script's `main` does: run, save the result (smoke runs apart), refresh the docs."""
    import json

    args = parse(argv)
    res = run(args)
    path = write_result(name + ("_quick" if args.quick else ""), res)
    if not args.no_docs and not args.quick:  # smoke figures never reach the docs
        refresh_docs()
    print(json.dumps(res["targets"], indent=1))
    print(f"wrote {path}")
    return 0
