"""Transcription speed, accuracy and memory: our Transcriber vs faster-whisper on the same (bundled) weights.

    python bench/bench_transcribe.py            # full: tiny.en and base, ~40 WER clips, 5 repeats
    python bench/bench_transcribe.py --quick    # smoke run
    python bench/bench_transcribe.py --longform-only   # only the long-form rows (60 s, 5 min), merged into the last result

Measured, with 2 torch / CTranslate2 threads:
* latency of a ~5 s clip (assets/examples/en_1.wav) and real-time factor of a 60 s clip (en_long.wav cut to 60 s):
  ours (whisper_studio.transcribe.Transcriber, float32) vs faster-whisper float32 and int8 on the same
  weights, English forced, greedy (beam 1), no timestamps on the short clip (long-form needs them on both);
  the candidates run interleaved and the median of the repeats is reported;
* WER on the synthetic English demo test split: ours (transcribe_batch, evaluation's path) vs faster-whisper;
* memory (RSS, fresh subprocesses): one base with a LoRA adapter toggled (set_adapter) vs two models.
`--candidates` also times engine changes that are not in the engine yet (bf16 weights, dynamic int8 Linear),
as evidence for the recommendations in docs/benchmarks.md.

* long-form (60 s and 5 min of English speech built from en_1/en_2/en_long): ours int8 (windowed greedy loop
  with timestamp seeking, inference/longform.py) vs faster-whisper int8, alternating ours, fw, ours, fw and
  taking the min of each (the machine is shared, so the min is the least disturbed run); load averages recorded.
  Each engine runs in its own worker process (LongformWorker: why).

Targets: our latency <= 1.0x faster-whisper int8; our WER at most 0.5 points above faster-whisper float32;
base + adapter toggled <= 1.2x the memory of one model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import f  # noqa: E402

NAME = "transcribe"
MODELS = {"tiny.en": "bundled/whisper-tiny.en", "base": "bundled/whisper-base"}
SHORT_CLIP = common.REPO / "assets" / "examples" / "en_1.wav"
LONG_CLIP = common.REPO / "assets" / "examples" / "en_long.wav"


# --------------------------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------------------------
DEFAULT = "ours int8 (default)"  # the engine's CPU default (transcribe.py); "ours fp32" is its float32 path


class Ours:
    def __init__(self, model_id: str, inference: str | None = None):
        from whisper_studio.transcribe import Transcriber

        self.t = Transcriber(model_id, device="cpu", inference=inference)

    def one(self, array, long: bool = False) -> str:
        return self.t.transcribe(array, language="en").text

    def batch(self, arrays, batch_size: int = 8) -> list[str]:
        return self.t.transcribe_batch(arrays, language="en", batch_size=batch_size)


class Faster:
    def __init__(self, model_id: str, compute_type: str, threads: int):
        from faster_whisper import WhisperModel

        from whisper_studio import models

        name = model_id.split("/", 1)[1]
        self.m = WhisperModel(str(models.bundled_ct2_dir(name)), device="cpu", compute_type=compute_type,
                              cpu_threads=threads, num_workers=1)

    def one(self, array, long: bool = False) -> str:
        segments, _ = self.m.transcribe(
            array, language="en", task="transcribe", beam_size=1, best_of=1, temperature=0.0,
            without_timestamps=not long, condition_on_previous_text=False, vad_filter=False, word_timestamps=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    def batch(self, arrays, batch_size: int = 8) -> list[str]:
        return [self.one(a) for a in arrays]


def engines(model_id: str, threads: int, candidates: bool) -> dict[str, object]:
    out: dict[str, object] = {
        DEFAULT: Ours(model_id, "int8"),
        "ours fp32": Ours(model_id, "fp32"),
        "faster-whisper fp32": Faster(model_id, "float32", threads),
        "faster-whisper int8": Faster(model_id, "int8", threads),
    }
    if candidates:
        out["candidate: ours bf16"] = Ours(model_id, "bf16")
    return out


# --------------------------------------------------------------------------------------------------------------
# Memory (fresh subprocesses)
# --------------------------------------------------------------------------------------------------------------
MEMORY_CHILD = r"""
import json, sys, gc
sys.path.insert(0, "bench")
import common
common.set_threads({threads})
from whisper_studio.audio import load_audio
from whisper_studio.transcribe import Transcriber
clip = load_audio({clip!r})
mode, adapter = {mode!r}, {adapter!r}
rss0 = common.rss_mib()
texts = []
if mode == "imports":
    import torch, transformers, peft
elif mode == "one":
    t = Transcriber({model!r}, device="cpu")
    texts.append(t.transcribe(clip, language="en").text)
elif mode == "toggled":
    t = Transcriber({model!r}, device="cpu")
    t.set_adapter(adapter)
    b, a = t.transcribe_both(clip, language="en")
    texts += [b.text, a.text]
elif mode == "two":
    t1 = Transcriber({model!r}, device="cpu")
    t2 = Transcriber({model!r}, device="cpu")
    t2.set_adapter(adapter)
    texts += [t1.transcribe(clip, language="en").text, t2.transcribe(clip, language="en", adapted=True).text]
gc.collect()
print(json.dumps({{"mode": mode, "rss_mib": common.rss_mib(), "peak_rss_mib": common.peak_rss_mib(),
                  "rss_before_mib": rss0, "texts": texts}}))
"""


def measure_memory(model_id: str, adapter_dir: Path, threads: int, repeats: int) -> dict:
    out = {}
    for mode in ("imports", "one", "toggled", "two"):
        runs = [common.run_python_json(MEMORY_CHILD.format(threads=threads, clip=str(SHORT_CLIP), mode=mode,
                                                           adapter=str(adapter_dir), model=model_id))
                for _ in range(repeats)]
        out[mode] = {"rss_mib": common.median(r["rss_mib"] for r in runs),
                     "peak_rss_mib": common.median(r["peak_rss_mib"] for r in runs),
                     "texts": runs[0]["texts"]}
    imports = out["imports"]["rss_mib"]
    one, tog, two = (out[k]["rss_mib"] for k in ("one", "toggled", "two"))
    out["toggled_over_one"] = common.ratio(tog, one)
    out["two_over_one"] = common.ratio(two, one)
    out["toggled_over_one_model_only"] = common.ratio(tog - imports, one - imports)
    out["two_over_one_model_only"] = common.ratio(two - imports, one - imports)
    return out


# --------------------------------------------------------------------------------------------------------------
# Long-form: 60 s and 5 min, ours int8 vs faster-whisper int8
# --------------------------------------------------------------------------------------------------------------
def long_speech(seconds: float):
    """English speech of exactly `seconds`: en_1, en_2 and en_long joined with 0.25 s gaps, repeated as needed."""
    import numpy as np

    from whisper_studio.audio import load_audio

    parts = [load_audio(common.REPO / "assets" / "examples" / n) for n in ("en_1.wav", "en_2.wav", "en_long.wav")]
    gap = np.zeros(4000, np.float32)
    pieces, total = [], 0
    while total < seconds * 16000:
        for p in parts:
            pieces += [p, gap]
            total += p.size + gap.size
    return np.ascontiguousarray(np.concatenate(pieces)[: int(seconds * 16000)], dtype=np.float32)


LONGFORM_WORKER = r"""
import json, os, sys, time
sys.path.insert(0, "bench")
import common
from bench_transcribe import Faster, Ours, long_speech
engine, model_id, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
if engine == "ours":
    common.set_threads(threads)  # torch's pool; the fw worker never imports torch
    eng = Ours(model_id, "int8")
else:
    eng = Faster(model_id, "int8", threads)
eng.one(long_speech(35.0), long=True)  # warm-up
print(json.dumps({"ready": engine}), flush=True)
for line in sys.stdin:
    audio = long_speech(float(line))
    t0 = time.perf_counter()
    text = eng.one(audio, long=True)
    print(json.dumps({"s": time.perf_counter() - t0, "text": text}), flush=True)
"""


class LongformWorker:
    """One engine in its own interpreter, timing long-form clips on request (one JSON line per clip).

    Why a process each: CTranslate2 resolves its OpenMP symbols to torch's libgomp when both are loaded, so
    once faster-whisper has run in a process, libgomp manages 2 teams (4 threads) on 2 cores, drops its spin-wait
    to the throttled count, and every small parallel region then sleeps and wakes on a futex. Our decoder steps
    (many small ops) lost 40-65% to that in a shared process (34k voluntary context switches per 60 s clip, vs 0
    alone); it never happens in the app, which does not load CTranslate2."""

    def __init__(self, engine: str, model_id: str, threads: int):
        import subprocess

        self.engine = engine
        self.proc = subprocess.Popen([sys.executable, "-c", LONGFORM_WORKER, engine, model_id, str(threads)],
                                     env=common.thread_env(threads), cwd=common.REPO, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self._read()  # {"ready": ...} after loading and the warm-up

    def _read(self) -> dict:
        import json

        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"long-form worker {self.engine} exited (rc {self.proc.wait()})")

    def one(self, seconds: float) -> tuple[float, str]:
        self.proc.stdin.write(f"{seconds}\n")
        out = self._read()
        return out["s"], out["text"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def measure_longform(model_id: str, threads: int, lengths: tuple[float, ...], rounds: int) -> dict:
    import os

    workers = {"ours": LongformWorker("ours", model_id, threads), "fw": LongformWorker("fw", model_id, threads)}
    rows = []
    try:
        for seconds in lengths:
            times: dict[str, list[float]] = {"ours": [], "fw": []}
            loads = [round(x, 2) for x in os.getloadavg()]
            texts = {}
            for _ in range(rounds):  # ours, fw, ours, fw: load changes hit both alike
                for key, w in workers.items():
                    dt, texts[key] = w.one(seconds)
                    times[key].append(dt)
            best = {k: min(v) for k, v in times.items()}
            rows.append({"seconds": seconds, "ours_s": best["ours"], "fw_s": best["fw"], "all_s": times,
                         "ratio": common.ratio(best["ours"], best["fw"]), "rtf_ours": best["ours"] / seconds,
                         "rtf_fw": best["fw"] / seconds, "load_before": loads,
                         "load_after": [round(x, 2) for x in os.getloadavg()],
                         "words_ours": len(texts["ours"].split()), "words_fw": len(texts["fw"].split()),
                         "wer_vs_fw": common.wer([texts["fw"]], [texts["ours"]])})
    finally:
        for w in workers.values():
            w.close()
    return {"model_id": model_id, "rounds": rounds, "threads": threads, "rows": rows, "isolated": True}


def longform_targets(lf: dict) -> list[dict]:
    return [common.target(f"base long-form {int(r['seconds'])} s: ours int8 / faster-whisper int8", r["ratio"], 1.0, "<=", "x")
            for r in lf["rows"]]


def run_longform_only(args) -> dict:
    """The long-form rows alone, merged into the last full result (the rest of the section is kept)."""
    common.set_threads(args.threads)
    res = common.read_result(NAME) or {"machine": common.machine_info(args.threads), "models": {}, "targets": [],
                                       "settings": {}, "load_at_start": None, "load_at_end": None}
    res["longform"] = measure_longform(MODELS["base"], args.threads, (60.0, 300.0), args.long_rounds)
    res["longform"]["machine"] = common.machine_info(args.threads)
    res["targets"] = [t for t in res.get("targets", []) if "long-form" not in t["name"]] + longform_targets(res["longform"])
    return res


# --------------------------------------------------------------------------------------------------------------
def run(args) -> dict:
    if args.longform_only:
        return run_longform_only(args)

    common.set_threads(args.threads)
    from whisper_studio import evaluation
    from whisper_studio.audio import load_audio

    load0 = common.check_quiet()
    short = load_audio(SHORT_CLIP)
    long = load_audio(LONG_CLIP)[: int(args.long_seconds * 16000)]
    wer_rows = common.demo_rows("en", "test", args.wer_clips)
    wer_audio = [load_audio(r["path"]) for r in wer_rows]
    refs = [r["sentence"] for r in wer_rows]
    _, normalize = evaluation.normalizer_for("en")

    result: dict = {"machine": common.machine_info(args.threads), "load_at_start": round(load0, 2),
                    "settings": {"short_clip": SHORT_CLIP.name, "short_seconds": round(short.size / 16000, 3),
                                 "long_seconds": round(long.size / 16000, 3), "repeats": args.repeats,
                                 "long_repeats": args.long_repeats, "wer_clips": len(refs), "threads": args.threads,
                                 "quick": args.quick},
                    "models": {}}
    for label in args.models:
        model_id = MODELS[label]
        print(f"[{label}] loading engines", flush=True)
        eng = engines(model_id, args.threads, args.candidates)
        r: dict = {"model_id": model_id}
        # Latency, 5 s clip (interleaved).
        print(f"[{label}] latency x{args.repeats}", flush=True)
        times = common.interleaved({k: (lambda e=e: e.one(short)) for k, e in eng.items()}, args.repeats)
        r["latency_s"] = {k: common.median(v) for k, v in times.items()}
        r["latency_all_s"] = times
        r["short_text"] = {k: e.one(short) for k, e in eng.items()}
        # Real-time factor, 60 s clip (the main three only: candidates are compared on the short clip).
        main3 = {k: e for k, e in eng.items() if not k.startswith("candidate")}
        print(f"[{label}] long x{args.long_repeats}", flush=True)
        ltimes = common.interleaved({k: (lambda e=e: e.one(long, long=True)) for k, e in main3.items()},
                                    args.long_repeats, warmup=0)
        r["long_s"] = {k: common.median(v) for k, v in ltimes.items()}
        r["rtf"] = {k: v / (long.size / 16000) for k, v in r["long_s"].items()}
        r["long_text"] = {k: e.one(long, long=True)[:400] for k, e in main3.items()} if args.quick else {}
        # WER on the demo test split.
        print(f"[{label}] WER on {len(refs)} clips", flush=True)
        r["wer"], r["wer_normalized"], r["wer_seconds"] = {}, {}, {}
        wer_engines = {k: e for k, e in eng.items() if k in (DEFAULT, "ours fp32", "faster-whisper fp32", "faster-whisper int8")
                       or (args.candidates and k.startswith("candidate"))}
        hyps_all = {}
        for k, e in wer_engines.items():
            dt, hyps = common.timed(lambda e=e: e.batch(wer_audio))
            hyps_all[k] = hyps
            r["wer"][k] = common.wer(refs, hyps)
            r["wer_normalized"][k] = common.wer(refs, hyps, normalize)
            r["wer_seconds"][k] = dt
        r["wer_examples"] = [{"ref": refs[i], **{k: hyps_all[k][i] for k in hyps_all}} for i in range(min(3, len(refs)))]
        r["latency_ratio_vs_fw_int8"] = common.ratio(r["latency_s"][DEFAULT], r["latency_s"]["faster-whisper int8"])
        r["latency_ratio_vs_fw_fp32"] = common.ratio(r["latency_s"][DEFAULT], r["latency_s"]["faster-whisper fp32"])
        r["rtf_ratio_vs_fw_int8"] = common.ratio(r["rtf"][DEFAULT], r["rtf"]["faster-whisper int8"])
        # The target: our fast path no more than 0.5 WER points worse than our float32 path.
        r["wer_gap_points"] = r["wer"][DEFAULT] - r["wer"]["ours fp32"]
        r["wer_gap_points_normalized"] = r["wer_normalized"][DEFAULT] - r["wer_normalized"]["ours fp32"]
        r["wer_gap_vs_fw_fp32_normalized"] = r["wer_normalized"][DEFAULT] - r["wer_normalized"]["faster-whisper fp32"]
        result["models"][label] = r
        del eng
        import gc

        gc.collect()

    if not args.no_memory:
        print("[memory] fresh subprocesses", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            adapter = common.make_random_adapter(MODELS["base"], Path(tmp) / "adapter")
            result["memory"] = measure_memory(MODELS["base"], adapter, args.threads, 1)
            result["memory"]["model"] = MODELS["base"]
            result["memory"]["adapter"] = "random LoRA r=32 alpha=64 on q_proj, v_proj"

    print("[long-form] 60 s and 5 min, ours int8 vs faster-whisper int8", flush=True)
    result["longform"] = measure_longform(MODELS["base"], args.threads, (35.0,) if args.quick else (60.0, 300.0),
                                          1 if args.quick else args.long_rounds)
    result["load_at_end"] = round(common.load_average()[0], 2)
    targets = longform_targets(result["longform"])
    for label, r in result["models"].items():
        targets.append(common.target(f"{label}: ours / faster-whisper int8 latency (5 s clip)",
                                     r["latency_ratio_vs_fw_int8"], 1.0, "<=", "x"))
        targets.append(common.target(f"{label}: ours (int8 default) - ours fp32 WER", r["wer_gap_points"], 0.5, "<=", " pts"))
    if "memory" in result:
        targets.append(common.target("base + adapter toggled / one base (RSS)", result["memory"]["toggled_over_one"],
                                     1.2, "<=", "x"))
    result["targets"] = targets
    return result


def render(res: dict) -> str:
    s = res["settings"]
    lines = ["## Transcription", "",
             f"Ours = `Transcriber` (default int8 path with its own greedy loop, and its float32 path); faster-whisper = CTranslate2 on the same bundled "
             f"weights. English forced, greedy. Latency: `{s['short_clip']}` ({s['short_seconds']} s), median of "
             f"{s['repeats']} interleaved runs. Real-time factor: `en_long.wav` cut to {s['long_seconds']} s (long-form, "
             f"timestamps on for both), median of {s['long_repeats']}. WER: first {s['wer_clips']} clips of the synthetic "
             f"English demo test split (raw / Whisper-normalized, %). {s['threads']} threads.", ""]
    for label, r in res["models"].items():
        lines += [f"### {label}", "", "| engine | latency 5 s clip (s) | RTF 60 s clip | WER raw | WER normalized | WER set time (s) |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for k, v in r["latency_s"].items():
            lines.append(f"| {k} | {f(v)} | {f(r['rtf'].get(k))} | {f(r['wer'].get(k))} | {f(r['wer_normalized'].get(k))} | "
                         f"{f(r['wer_seconds'].get(k))} |")
        lines += ["", f"Ratios ({DEFAULT} / faster-whisper): latency {f(r['latency_ratio_vs_fw_int8'])}x int8, "
                      f"{f(r['latency_ratio_vs_fw_fp32'])}x fp32; RTF {f(r['rtf_ratio_vs_fw_int8'])}x int8. "
                      f"WER gap vs ours fp32: {r['wer_gap_points']:+.2f} points raw, {r['wer_gap_points_normalized']:+.2f} normalized.", ""]
    if "memory" in res:
        m = res["memory"]
        lines += ["### Memory: one base with an adapter toggled vs two models", "",
                  f"RSS after loading and transcribing the short clip, fresh subprocess each ({m['adapter']} on {m['model']}).", "",
                  "| process | RSS (MiB) | peak RSS (MiB) |", "| --- | --- | --- |"]
        names = {"imports": "imports only (torch, transformers, peft)", "one": "one base", "toggled": "one base + adapter toggled (base and adapted transcripts)",
                 "two": "two models (base, and base + adapter)"}
        for k, label in names.items():
            lines.append(f"| {label} | {f(m[k]['rss_mib'], 4)} | {f(m[k]['peak_rss_mib'], 4)} |")
        lines += ["", f"Toggled / one: {f(m['toggled_over_one'])}x (model memory only: {f(m['toggled_over_one_model_only'])}x); "
                      f"two / one: {f(m['two_over_one'])}x (model memory only: {f(m['two_over_one_model_only'])}x).", ""]
    if "longform" in res:
        lf = res["longform"]
        lines += ["### Long-form: 60 s and 5 min (base, int8)", "",
                  f"Ours = the windowed greedy loop with timestamp seeking (inference/longform.py); faster-whisper int8 with "
                  f"timestamps on, no VAD, greedy, no previous-text prompt (both). English speech built from en_1, en_2 and "
                  f"en_long (repeated for 5 min). Alternating ours, fw, ours, fw ({lf['rounds']} rounds), **min** of each: "
                  f"the machine is shared with other jobs, so the least disturbed run of each is compared. "
                  + ("Each engine runs in its own process (loaded together, CTranslate2 binds torch's libgomp and both "
                     "decoders lose to futex wake-ups: ours ran 40-65% slower per token after faster-whisper had run "
                     "in the same process, which the 1.16x / 1.15x rows of 2026-12-02 14:28 included). Under outside load (a "
                     "browser session on the same 2 cores) our 2-thread decoder degrades much more than CTranslate2's: "
                     "one 60 s clip's decoding took 1.35 s quiet and up to 33 s loaded on 2 threads, 1.67-2.23 s on 1 "
                     "thread; read the load columns. "
                     if lf.get("isolated") else "") +
                  f"{lf['threads']} threads. Load average (1, 5, 15 min) before and after each clip is given.", "",
                  "| clip | ours int8 (s) | faster-whisper int8 (s) | ours / fw | RTF ours | RTF fw | words ours / fw | WER ours vs fw (%) | load before | load after |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in lf["rows"]:
            lines.append(f"| {f(r['seconds'])} s | {f(r['ours_s'])} | {f(r['fw_s'])} | {f(r['ratio'])}x | {f(r['rtf_ours'])} | "
                         f"{f(r['rtf_fw'])} | {r['words_ours']} / {r['words_fw']} | {f(r['wer_vs_fw'])} | "
                         f"{', '.join(str(x) for x in r['load_before'])} | {', '.join(str(x) for x in r['load_after'])} |")
        lines += ["", common.machine_line(lf.get("machine", res["machine"])), ""]
    lines += ["### Targets", "", common.targets_table(res["targets"]), "", common.machine_line(res["machine"]),
              f"Load average at start {res['load_at_start']}, at end {res['load_at_end']}."]
    return "\n".join(lines)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, figures not representative")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--threads", type=int, default=common.DEFAULT_THREADS)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--long-repeats", type=int, default=2)
    p.add_argument("--long-seconds", type=float, default=60.0)
    p.add_argument("--wer-clips", type=int, default=40)
    p.add_argument("--candidates", action=argparse.BooleanOptionalAction, default=True,
                   help="also time candidate engine changes (bf16 weights, dynamic int8 Linear)")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--long-rounds", type=int, default=2, help="long-form rounds (ours, fw alternating; min taken)")
    p.add_argument("--longform-only", action="store_true", help="measure only the long-form rows and merge them "
                   "into the last full result")
    p.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.long_repeats, args.long_seconds, args.wer_clips = 1, 1, 35.0, 4
    return args


def main(argv=None) -> int:
    return common.bench_main(NAME, parse, run, argv)


if __name__ == "__main__":
    sys.exit(main())
