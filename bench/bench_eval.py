"""Evaluation speed: base and adapted WER on a test split, our batched path vs a one-clip-at-a-time loop.

    python bench/bench_eval.py             # bundled base, 40 clips of the English demo test split, random adapter
    python bench/bench_eval.py --quick

Candidates (same process, models loaded once beforehand, runs interleaved, median of the repeats):
* ours: `evaluation.evaluate_model` (Transcriber.transcribe_batch, batch 8, one base with the adapter toggled);
* loop (recipe-style): for every clip, log-mel features then `model.generate(language, task)`, once with the
  adapter disabled (base) and once enabled (adapted), plain transformers + peft, float32;
* ours batch 1: evaluate_model with batch_size=1 (separates what batching buys from the rest);
* candidate: ours with bf16 weights (`Transcriber(dtype=torch.bfloat16)`), not the engine default.
clips/s counts each clip once although it is transcribed twice (base and adapted). The adapter is a random
LoRA r=32 on q/v with small B, so adapted transcripts stay close to the base ones (realistic lengths).

Target: ours >= 3x the one-clip loop.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import f  # noqa: E402

NAME = "eval"
MODEL = "bundled/whisper-base"


class Loop:
    """The recipe's way: one clip at a time through model.generate, base with the adapter disabled."""

    def __init__(self, model_id: str, adapter_dir: Path, language: str):
        from peft import PeftModel

        from whisper_studio import models

        self.processor = models.load_processor(model_id)
        base = models.load_model(model_id)
        self.model = PeftModel.from_pretrained(base, str(adapter_dir))
        self.model.eval()
        self.language = language

    def generate(self, array) -> str:
        import torch

        feats = self.processor.feature_extractor(array, sampling_rate=16000, return_tensors="pt").input_features
        with torch.inference_mode():
            ids = self.model.generate(input_features=feats, language=self.language, task="transcribe")
        return self.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)[0].strip()

    def evaluate(self, rows) -> dict:
        from whisper_studio.audio import load_audio

        base, adapted = [], []
        for r in rows:
            array = load_audio(r["audio"])
            with self.model.disable_adapter():
                base.append(self.generate(array))
            adapted.append(self.generate(array))
        return {"base": base, "adapted": adapted}


def run(args) -> dict:
    common.set_threads(args.threads)
    import torch

    from whisper_studio import evaluation
    from whisper_studio.transcribe import Transcriber

    load0 = common.check_quiet()
    rows = [{"audio": r["path"], "sentence": r["sentence"], "id": str(i)}
            for i, r in enumerate(common.demo_rows(args.language, "test", args.clips))]
    refs = [r["sentence"] for r in rows]
    tmp = tempfile.TemporaryDirectory()
    adapter = common.make_random_adapter(MODEL, Path(tmp.name) / "adapter")
    print("[eval] loading models", flush=True)
    loop = Loop(MODEL, adapter, args.language)
    ours = Transcriber(MODEL, device="cpu")
    cands = {
        f"ours (evaluate_model, batch {args.batch_size})":
            lambda: evaluation.evaluate_model(MODEL, adapter, rows, args.language, batch_size=args.batch_size, transcriber=ours),
        "loop, one clip at a time (recipe-style)": lambda: loop.evaluate(rows),
        "ours, batch 1 (evaluate_model, one clip at a time)": lambda: evaluation.evaluate_model(
            MODEL, adapter, rows, args.language, batch_size=1, transcriber=ours),
    }
    if args.candidates:
        ours_bf16 = Transcriber(MODEL, device="cpu", dtype=torch.bfloat16)
        cands[f"candidate: ours bf16 weights, batch {args.batch_size}"] = lambda: evaluation.evaluate_model(
            MODEL, adapter, rows, args.language, batch_size=args.batch_size, transcriber=ours_bf16)
    outputs = {}

    def wrap(name, fn):
        def go():
            outputs[name] = fn()
        return go

    print(f"[eval] {len(rows)} clips x{args.repeats}", flush=True)
    times = common.interleaved({k: wrap(k, fn) for k, fn in cands.items()}, args.repeats, warmup=0)
    _, normalize = evaluation.normalizer_for(args.language)
    res: dict = {"machine": common.machine_info(args.threads), "load_at_start": round(load0, 2),
                 "settings": {"model": MODEL, "language": args.language, "clips": len(rows), "batch_size": args.batch_size,
                              "repeats": args.repeats, "threads": args.threads, "quick": args.quick,
                              "adapter": "random LoRA r=32 alpha=64 q_proj/v_proj, B ~ N(0, 0.002)"},
                 "candidates": {}}
    for name, ts in times.items():
        out = outputs[name]
        if isinstance(out, dict):
            base, adapted = out["base"], out["adapted"]
        else:
            base, adapted = [r.base for r in out.rows], [r.adapted for r in out.rows]
        sec = common.median(ts)
        res["candidates"][name] = {"seconds": sec, "all_seconds": ts, "clips_per_second": len(rows) / sec,
                                   "base_wer": common.wer(refs, base, normalize),
                                   "adapted_wer": common.wer(refs, adapted, normalize)}
    names = list(cands)
    ours_cps = res["candidates"][names[0]]["clips_per_second"]
    loop_cps = res["candidates"][names[1]]["clips_per_second"]
    for c in res["candidates"].values():
        c["vs_loop"] = common.ratio(c["clips_per_second"], loop_cps)
    res["load_at_end"] = round(common.load_average()[0], 2)
    res["targets"] = [common.target("ours batched / one-clip loop (clips/s)", common.ratio(ours_cps, loop_cps), 3.0, ">=", "x")]
    tmp.cleanup()
    return res


def render(res: dict) -> str:
    s = res["settings"]
    lines = ["## Evaluation", "",
             f"Base and adapted transcripts of the first {s['clips']} clips of the synthetic `{s['language']}` demo test "
             f"split with {s['model']} and a {s['adapter']}; models loaded beforehand, candidates interleaved, median of "
             f"{s['repeats']}. clips/s counts each clip once (it is transcribed twice). WER is Whisper-normalized (%).", "",
             "| candidate | seconds | clips/s | vs loop | base WER | adapted WER |", "| --- | --- | --- | --- | --- | --- |"]
    for name, c in res["candidates"].items():
        lines.append(f"| {name} | {f(c['seconds'])} | {f(c['clips_per_second'])} | {f(c['vs_loop'])}x | "
                     f"{f(c['base_wer'])} | {f(c['adapted_wer'])} |")
    lines += ["", "### Targets", "", common.targets_table(res["targets"]), "", common.machine_line(res["machine"]),
              f"Load average at start {res['load_at_start']}, at end {res['load_at_end']}."]
    return "\n".join(lines)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--language", default="en")
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=common.DEFAULT_THREADS)
    p.add_argument("--candidates", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--no-docs", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.clips, args.repeats, args.batch_size = 4, 1, 2
    return args


def main(argv=None) -> int:
    return common.bench_main(NAME, parse, run, argv)


if __name__ == "__main__":
    sys.exit(main())
