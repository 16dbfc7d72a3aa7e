"""The source recipe, literally: Whisper + 8-bit (bitsandbytes) + LoRA r=32 on q/v, plain Seq2SeqTrainer.

This is the reference that bench_train.py compares our training job against. It follows the widely used
"int8 Whisper + PEFT LoRA" notebook step by step and uses none of Whisper Studio's machinery (no run folder,
no feature cache, no precision choice, no callbacks beyond a step timer):

* data: the demo corpus's train.tsv read with `datasets`, audio decoded and resampled to 16 kHz, features and
  labels computed with `datasets.map(prepare_dataset)` (the notebook's function);
* model: `WhisperForConditionalGeneration.from_pretrained(..., quantization_config=BitsAndBytesConfig(load_in_8bit=True))`,
  `forced_decoder_ids = None`, `suppress_tokens = []`, `prepare_model_for_kbit_training(model)` (its defaults,
  which include gradient checkpointing), the conv1 `make_inputs_require_grad` hook, `LoraConfig(r=32,
  lora_alpha=64, target_modules=["q_proj", "v_proj"], lora_dropout=0.05, bias="none")`;
* training: `Seq2SeqTrainingArguments` as in the notebook (lr 1e-3, warmup 50, remove_unused_columns=False,
  label_names=["labels"]); the notebook's `fp16=True` needs a GPU, so on a CPU it runs in the default fp32.

    python bench/recipe_reference.py --model-dir DIR --language mr --clips 64 --batch-size 4 --max-steps 10 --out OUT

DIR is a transformers Whisper folder (bench_train.py passes the converted bundled base). Writes OUT/steps.json:
the monotonic time at the end of every optimizer step, plus settings.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass
class DataCollatorSpeechSeq2SeqWithPadding:  # the notebook's collator, verbatim in substance
    processor: Any

    def __call__(self, features):
        input_features = [{"input_features": feature["input_features"]} for feature in features]
        batch = self.processor.feature_extractor.pad(input_features, return_tensors="pt")
        label_features = [{"input_ids": feature["labels"]} for feature in features]
        labels_batch = self.processor.tokenizer.pad(label_features, return_tensors="pt")
        labels = labels_batch["input_ids"].masked_fill(labels_batch.attention_mask.ne(1), -100)
        if (labels[:, 0] == self.processor.tokenizer.bos_token_id).all().cpu().item():
            labels = labels[:, 1:]
        batch["labels"] = labels
        return batch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--corpus", required=True, help="a Common Voice style folder (train.tsv, clips/)")
    p.add_argument("--language", default="marathi", help="Whisper language name or code for the tokenizer prefix")
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()

    import datasets
    import soundfile as sf
    import soxr
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (BitsAndBytesConfig, Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback,
                              WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor,
                              WhisperTokenizer)

    # --- data: Common Voice train split -> features with datasets.map -----------------------------------------
    corpus = Path(args.corpus)
    with open(corpus / "train.tsv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    ds = datasets.Dataset.from_dict({"path": [str(corpus / "clips" / r["path"]) for r in rows],
                                     "sentence": [r["sentence"] for r in rows]})
    ds = ds.shuffle(seed=args.seed).select(range(min(args.clips, len(ds))))

    feature_extractor = WhisperFeatureExtractor.from_pretrained(args.model_dir)
    tokenizer = WhisperTokenizer.from_pretrained(args.model_dir, language=args.language, task="transcribe")
    processor = WhisperProcessor.from_pretrained(args.model_dir, language=args.language, task="transcribe")

    def prepare_dataset(batch):
        # The notebook's cast_column(Audio(sampling_rate=16000)) decodes and resamples; done here by hand
        # because datasets' own audio decoding needs torchcodec.
        data, sr = sf.read(batch["path"], dtype="float32", always_2d=True)
        array = soxr.resample(data.mean(axis=1), sr, 16000) if sr != 16000 else data.mean(axis=1)
        batch["input_features"] = feature_extractor(array, sampling_rate=16000).input_features[0]
        batch["labels"] = tokenizer(batch["sentence"]).input_ids
        return batch

    t_data = time.monotonic()
    ds = ds.map(prepare_dataset, remove_columns=ds.column_names, num_proc=1)
    data_seconds = time.monotonic() - t_data
    data_collator = DataCollatorSpeechSeq2SeqWithPadding(processor=processor)

    # --- model: 8-bit base, k-bit preparation, LoRA ------------------------------------------------------------
    t_model = time.monotonic()
    model = WhisperForConditionalGeneration.from_pretrained(
        args.model_dir, quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map="auto")
    model.config.forced_decoder_ids = None
    model.config.suppress_tokens = []
    model = prepare_model_for_kbit_training(model)

    def make_inputs_require_grad(module, input, output):
        output.requires_grad_(True)

    model.model.encoder.conv1.register_forward_hook(make_inputs_require_grad)
    config = LoraConfig(r=32, lora_alpha=64, target_modules=["q_proj", "v_proj"], lora_dropout=0.05, bias="none")
    model = get_peft_model(model, config)
    model.print_trainable_parameters()
    model_seconds = time.monotonic() - t_model

    # --- training ---------------------------------------------------------------------------------------------
    step_times: list[float] = []

    class StepTimer(TrainerCallback):  # measurement only
        def on_train_begin(self, args_, state, control, **kwargs):
            step_times.append(time.monotonic())

        def on_step_end(self, args_, state, control, **kwargs):
            step_times.append(time.monotonic())

    training_args = Seq2SeqTrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
        warmup_steps=50,
        max_steps=args.max_steps,
        eval_strategy="no",
        per_device_eval_batch_size=args.batch_size,
        generation_max_length=128,
        logging_steps=25,
        remove_unused_columns=False,
        label_names=["labels"],
        report_to="none",
        seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Seq2SeqTrainer(args=training_args, model=model, train_dataset=ds, data_collator=data_collator,
                             processing_class=processor.feature_extractor, callbacks=[StepTimer()])
    model.config.use_cache = False
    t_train = time.monotonic()
    result = trainer.train()
    train_seconds = time.monotonic() - t_train
    model.save_pretrained(str(out / "adapter"))
    (out / "steps.json").write_text(json.dumps({
        "step_end_times": step_times, "batch_size": args.batch_size, "max_steps": args.max_steps,
        "clips": len(ds), "data_seconds": data_seconds, "model_seconds": model_seconds,
        "train_seconds": train_seconds, "total_seconds": time.monotonic() - t_start,
        "train_loss": float(result.training_loss),
        "gradient_checkpointing": bool(getattr(model.get_base_model(), "is_gradient_checkpointing", False)),
        "pid": os.getpid(),
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
