"""GPU readiness in one run: 8-bit LoRA on a large-v2-shaped model, the bundled base on demo data, fp16 transcription.

    python bench/gpu_check.py            # on a CUDA machine (bench/gpu_check.sh), well under 8 minutes
    python bench/gpu_check.py --tiny     # anywhere (CPU): tiny shapes and a few steps, the same JSON keys

Prints one JSON object (and writes it with --out):
1. `large_v2`: a random model of Whisper large-v2's shape (whisper_studio.testing.make_random_model), loaded in
   8-bit (bitsandbytes) with LoRA r=32 on q_proj/v_proj, 20 optimizer steps on random 30 s features: samples/s
   and peak GPU memory (torch.cuda.max_memory_allocated), the check behind "large-v2 8-bit LoRA fits 8 GB";
2. `base`: bundled/whisper-base with the same LoRA for 50 steps on the synthetic English demo corpus (loss falls);
3. `transcribe`: the Transcriber in fp16 on `en_1.wav` and on 60 s of `en_long.wav` (the long-form path).
The training loop is a plain one (AdamW, fp16 autocast with a grad scaler on CUDA, fp32 on CPU) so it measures
the model and the 8-bit layers, not the job's bookkeeping. In --tiny mode the large shape is swapped for the
tiny test shape, 8-bit is used only where it is available (CUDA), and the demo data are four synthesized clips.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SR = 16000
EXAMPLES = REPO / "assets" / "examples"
SENTENCES = ["The hogs were fed chopped corn and garbage.", "Help the woman get back to her feet.",
             "The salmon swam upstream toward the mountain.", "We walked along the river and talked."]


@dataclass
class TrainFigures:
    model: str
    shape: str
    load_in_8bit: bool
    lora_rank: int
    target_modules: list[str]
    steps: int
    batch_size: int
    samples_per_s: float
    median_step_s: float
    peak_memory_mib: float | None  # torch.cuda.max_memory_allocated; None on CPU
    first_loss: float
    final_loss: float
    trainable_params: int
    load_s: float


@dataclass
class TranscribeFigures:
    model: str
    inference: str
    short_s: float
    short_text: str
    long_audio_s: float
    long_s: float
    rtf: float
    long_words: int


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _peak_mib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.startswith("cuda") else None


def _reset_peak(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# --- data ----------------------------------------------------------------------------------------------------------
def random_batches(processor, batch_size: int, n_mels: int, seed: int = 0):
    """Random 30 s features and random sentence labels: for a random model only the shapes matter."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    labels = processor.tokenizer(SENTENCES * (batch_size // len(SENTENCES) + 1), padding=True, return_tensors="pt")
    ids = labels.input_ids[:batch_size].masked_fill(labels.attention_mask[:batch_size] == 0, -100)
    while True:
        yield torch.randn((batch_size, n_mels, 3000), generator=gen), ids


def demo_batches(processor, batch_size: int, tiny: bool):
    """Batches of the synthetic English demo corpus (train split); in tiny mode four synthesized clips."""
    import numpy as np

    from whisper_studio import audio, synth

    if tiny:
        clips = [(audio.to_16k(*synth.speak(s, "en-us")), s) for s in SENTENCES]
    else:
        import csv

        from whisper_studio import demo

        folder = demo.build_corpus("en")
        with open(folder / "train.tsv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
        clips = [(audio.load_audio(folder / "clips" / r["path"]), r["sentence"]) for r in rows[:400]]
    rng = np.random.default_rng(0)
    while True:
        pick = rng.choice(len(clips), size=batch_size, replace=len(clips) < batch_size)
        arrays, texts = [clips[i][0] for i in pick], [clips[i][1] for i in pick]
        feats = processor.feature_extractor(arrays, sampling_rate=SR, return_tensors="pt").input_features
        lab = processor.tokenizer(texts, padding=True, return_tensors="pt")
        yield feats, lab.input_ids.masked_fill(lab.attention_mask == 0, -100)


# --- training ------------------------------------------------------------------------------------------------------
def train_lora(model_id: str, shape: str, batches, *, steps: int, batch_size: int, load_in_8bit: bool,
               device: str, warmup: int = 2) -> TrainFigures:
    """`steps` AdamW steps of a fresh LoRA r=32 (q_proj, v_proj) over `model_id`; times all but the first `warmup`."""
    import torch

    from whisper_studio import models
    from whisper_studio.config import LoraSpec

    _reset_peak(device)
    started = time.perf_counter()
    model = models.load_model(model_id, load_in_8bit=load_in_8bit, device=device)
    spec = LoraSpec(rank=32, alpha=64, target_modules=("q_proj", "v_proj"))
    peft_model = models.attach_lora(model, spec, prepare_kbit=load_in_8bit)
    peft_model.train()
    load_s = time.perf_counter() - started
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    cuda = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda") if cuda else None
    feat_dtype = torch.float32
    times, losses = [], []
    for step in range(steps):
        features, labels = next(batches)
        features, labels = features.to(device, feat_dtype), labels.to(device)
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            loss = peft_model(input_features=features, labels=labels).loss
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if cuda:
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - t0)
    timed = times or [float("nan")]
    figures = TrainFigures(
        model=model_id, shape=shape, load_in_8bit=load_in_8bit, lora_rank=spec.rank,
        target_modules=list(spec.target_modules), steps=steps, batch_size=batch_size,
        samples_per_s=round(batch_size * len(timed) / sum(timed), 3), median_step_s=round(statistics.median(timed), 4),
        peak_memory_mib=_peak_mib(device), first_loss=round(losses[0], 4), final_loss=round(losses[-1], 4),
        trainable_params=sum(p.numel() for p in params), load_s=round(load_s, 2))
    del peft_model, model, optimizer
    _reset_peak(device)
    return figures


# --- transcription -------------------------------------------------------------------------------------------------
def transcribe_check(model_id: str, device: str, inference: str, long_seconds: float) -> TranscribeFigures:
    from whisper_studio.audio import load_audio
    from whisper_studio.transcribe import Transcriber

    tr = Transcriber(model_id, device=device, inference=inference)
    short = load_audio(EXAMPLES / "en_1.wav")
    long = load_audio(EXAMPLES / "en_long.wav")[: int(long_seconds * SR)]
    tr.transcribe(short, language="en")  # warm-up (kernels, caches)
    t0 = time.perf_counter()
    short_text = tr.transcribe(short, language="en").text
    short_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    long_text = tr.transcribe(long, language="en").text
    long_s = time.perf_counter() - t0
    return TranscribeFigures(model=model_id, inference=tr.inference, short_s=round(short_s, 3), short_text=short_text,
                             long_audio_s=round(long.size / SR, 2), long_s=round(long_s, 3),
                             rtf=round(long_s / (long.size / SR), 4), long_words=len(long_text.split()))


# --- the whole check -----------------------------------------------------------------------------------------------
def run(args) -> dict[str, Any]:
    import torch

    from whisper_studio import models
    from whisper_studio.testing import make_random_model

    started = time.perf_counter()
    device = args.device or _device()
    cuda = device.startswith("cuda")
    # 8-bit is the point of the large check; bitsandbytes' 8-bit layers need CUDA, so on CPU (--tiny) it is off.
    eight = cuda
    large_shape = "tiny-test" if args.tiny else "large-v2"
    large_steps, base_steps = (3, 3) if args.tiny else (20, 50)
    batch = 2 if args.tiny else args.batch_size
    result: dict[str, Any] = {
        "device": device, "gpu": torch.cuda.get_device_name(0) if cuda else None, "tiny": bool(args.tiny),
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "gpu_memory_mib": round(torch.cuda.get_device_properties(0).total_memory / 2**20) if cuda else None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        print(f"[gpu_check] random {large_shape} model", file=sys.stderr, flush=True)
        large_dir = make_random_model(Path(tmp) / large_shape, shape=large_shape)
        processor = models.load_processor(str(large_dir))
        n_mels = int(json.loads((large_dir / "config.json").read_text())["num_mel_bins"])
        print(f"[gpu_check] {large_shape}: 8-bit={eight} LoRA r=32, {large_steps} steps", file=sys.stderr, flush=True)
        large = train_lora(str(large_dir), large_shape, random_batches(processor, batch, n_mels), steps=large_steps,
                           batch_size=batch, load_in_8bit=eight, device=device)
    result["large_v2"] = asdict(large)
    result["large_v2"]["fits_8gb"] = None if large.peak_memory_mib is None else large.peak_memory_mib < 8 * 1024
    base_id = "bundled/whisper-tiny.en" if args.tiny else "bundled/whisper-base"
    print(f"[gpu_check] {base_id}: {base_steps} steps on demo data", file=sys.stderr, flush=True)
    processor = models.load_processor(base_id)
    result["base"] = asdict(train_lora(base_id, base_id, demo_batches(processor, batch, args.tiny), steps=base_steps,
                                       batch_size=batch, load_in_8bit=eight, device=device))
    inference = "fp16" if cuda else "fp32"
    print(f"[gpu_check] transcribe {base_id} in {inference}", file=sys.stderr, flush=True)
    result["transcribe"] = asdict(transcribe_check(base_id, device, inference, 35.0 if args.tiny else 60.0))
    result["total_s"] = round(time.perf_counter() - started, 1)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="tiny shapes and a few steps (runs on CPU; for the test)")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per step (default 8; --tiny uses 2)")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    result = run(args)
    text = json.dumps(result, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
