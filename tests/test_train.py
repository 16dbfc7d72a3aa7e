"""The training job end to end on a random tiny Whisper (real tokenizer) and a few eSpeak clips.

Every run here goes through the real path: cv-folder source -> prepare -> 8-bit base -> LoRA -> Seq2SeqTrainer
-> run folder. Runs are a handful of steps; the one that must be interrupted runs long enough to be caught.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from whisper_studio import runfolder
from whisper_studio.config import SourceConfig, TrainConfig
from whisper_studio.errors import ConfigError, JobError

REPO = Path(__file__).resolve().parent.parent

SENTENCES = [
    "the cat sat on the mat", "open the door please", "it is raining today", "we like green tea",
    "turn the light off", "my name is sam", "the bus is late again", "read me a story",
]


@pytest.fixture(scope="module")
def cv_en(tmp_path_factory) -> Path:
    """A small Common Voice style folder (en/train.tsv, test.tsv, clips/*.wav) of eSpeak speech."""
    import soundfile as sf

    from whisper_studio import synth

    if not synth.available():
        pytest.skip("eSpeak NG (espeakng-loader) is not available")
    root = tmp_path_factory.mktemp("cv")
    loc = root / "en"
    (loc / "clips").mkdir(parents=True)
    for split, idx in (("train", range(0, 6)), ("test", range(6, 8))):
        lines = ["client_id\tpath\tsentence\tup_votes\tdown_votes\tlocale"]
        for i in idx:
            samples, sr = synth.speak(SENTENCES[i], "en")
            name = f"synthetic_{i}.wav"
            sf.write(loc / "clips" / name, samples, sr)
            lines.append(f"espeak-en\t{name}\t{SENTENCES[i]}\t2\t0\ten")
        (loc / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _cfg(model: Path, data: Path, **overrides) -> TrainConfig:
    fields = dict(
        model=str(model), language="en", source=SourceConfig(kind="cv-folder", language="en", path=str(data)),
        epochs=1.0, batch_size=2, grad_accum=1, learning_rate=1e-3, warmup_steps=0, max_train_samples=4,
        max_test_samples=2, load_in_8bit=True, precision="fp32", logging_steps=1, seed=0,
        probe_clips=0,  # the per-epoch probe decodes to its token budget on a random model: only where tested
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def _train_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in runfolder.read_metrics(run_dir) if r["type"] == "train"]


def _lora_b_norm(adapter_dir: Path) -> float:
    from safetensors.torch import load_file

    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    b = [t for name, t in weights.items() if "lora_B" in name]
    assert b, "no LoRA B matrices in the adapter"
    return float(sum(t.float().norm() for t in b))


def test_two_step_8bit_run_leaves_adapter_and_run_folder(tiny_model_dir, cv_en, tmp_path, monkeypatch):
    from peft import PeftModel
    from transformers import WhisperForConditionalGeneration

    from whisper_studio import models
    from whisper_studio.train import run_training

    loaded = []
    real_load = models.load_model

    def spy(*args, **kwargs):
        model = real_load(*args, **kwargs)
        loaded.append(model)
        return model

    monkeypatch.setattr(models, "load_model", spy)
    run_dir = tmp_path / "run"
    cfg = _cfg(tiny_model_dir, cv_en, precision="auto")  # auto: bf16 autocast on this CPU when it has AVX512-BF16
    status = run_training(cfg, run_dir, evaluate=False)

    # The base really was 8-bit (bitsandbytes Int8 layers) during training.
    import bitsandbytes as bnb

    assert loaded and any(isinstance(m, bnb.nn.Linear8bitLt) for m in loaded[0].modules())
    assert status.state == "finished", status.error
    disk = runfolder.read_status(run_dir)
    assert disk.state == "finished" and disk.step == 2 and disk.total_steps == 2 and disk.pid == os.getpid()
    assert disk.error is None and disk.finished >= disk.started

    back = TrainConfig.load(run_dir / runfolder.CONFIG)
    assert back.to_dict() == {**cfg.to_dict(), "output_dir": str(run_dir.resolve())}

    lines = (run_dir / runfolder.METRICS).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    train = [r for r in records if r["type"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    for r in train:
        assert set(r) >= {"step", "epoch", "loss", "learning_rate", "elapsed", "samples_per_second"}
        assert r["loss"] > 0 and r["samples_per_second"] > 0
    assert train[1]["elapsed"] > train[0]["elapsed"] and train[1]["epoch"] == pytest.approx(1.0)

    # Standard PEFT format: loads on a plain full-precision base; training moved the LoRA B matrices off zero.
    adapter = run_dir / runfolder.ADAPTER
    base = WhisperForConditionalGeneration.from_pretrained(str(tiny_model_dir))
    peft_model = PeftModel.from_pretrained(base, str(adapter))
    assert sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n) > 0
    assert _lora_b_norm(adapter) > 0
    card = (adapter / "README.md").read_text(encoding="utf-8")
    for fact in ("library_name: peft", str(tiny_model_dir), "| LoRA rank / alpha / dropout | 32 / 64 / 0.05 |",
                 "q_proj, v_proj", "Training clips: 4", "base in 8-bit"):
        assert fact in card
    assert (run_dir / runfolder.CHECKPOINTS / "checkpoint-2" / "trainer_state.json").is_file()


def test_failure_is_recorded_then_resume_continues_from_checkpoint(tiny_model_dir, cv_en, tmp_path, monkeypatch):
    from whisper_studio.train import FAIL_AT_STEP_ENV, run_training

    run_dir = tmp_path / "run"
    # 4 steps of 2 clips, each step 2 micro-batches of 1 (gradient accumulation)
    cfg = _cfg(tiny_model_dir, cv_en, epochs=2.0, batch_size=1, grad_accum=2)
    monkeypatch.setenv(FAIL_AT_STEP_ENV, "2")
    with pytest.raises(RuntimeError, match="injected failure at step 2"):
        run_training(cfg, run_dir, evaluate=False, save_steps=1)
    failed = runfolder.read_status(run_dir)
    assert failed.state == "failed" and "injected failure at step 2" in failed.error
    assert _train_steps(run_dir) == [1]  # step 2 failed before it was logged or saved
    # A random model's loss is about ln(vocabulary) per token; accumulation must average micro-batches, not add
    # them (transformers skips that division for models it believes normalize their own loss).
    first = runfolder.read_metrics(run_dir)[0]["loss"]
    vocab = json.loads((Path(tiny_model_dir) / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    assert first < 1.1 * math.log(vocab)
    assert not (run_dir / runfolder.ADAPTER).exists()

    monkeypatch.delenv(FAIL_AT_STEP_ENV)
    status = run_training(TrainConfig.load(run_dir / runfolder.CONFIG), run_dir, resume=True, evaluate=False, save_steps=1)
    assert status.state == "finished", status.error
    assert status.step == 4 and status.total_steps == 4 and status.error is None
    # Steps continue from the checkpoint (checkpoint-1): 2, 3, 4 appended after the first attempt's 1.
    assert _train_steps(run_dir) == [1, 2, 3, 4]
    elapsed = [r["elapsed"] for r in runfolder.read_metrics(run_dir) if r["type"] == "train"]
    assert elapsed == sorted(elapsed)  # the clock continues too
    assert (run_dir / runfolder.ADAPTER / "adapter_model.safetensors").is_file()


def test_time_limit_ends_training_early_but_finishes_the_run(tiny_model_dir, cv_en, tmp_path):
    from whisper_studio.train import run_training

    run_dir = tmp_path / "run"
    status = run_training(_cfg(tiny_model_dir, cv_en, epochs=3.0), run_dir, evaluate=False, time_limit_s=0.0)
    # A time limit is not a stop: the run finishes (adapter saved) after the first step, out of 6.
    assert status.state == "finished" and "time limit" in status.message
    assert status.step == 1 and status.total_steps == 6 and _train_steps(run_dir) == [1]
    assert (run_dir / runfolder.ADAPTER / "adapter_model.safetensors").is_file()
    assert "| steps | 1 |" in (run_dir / runfolder.ADAPTER / "README.md").read_text(encoding="utf-8")


def test_sigterm_stops_at_a_step_with_adapter_and_checkpoint(tiny_model_dir, cv_en, tmp_path):
    """As jobs.py runs it: a subprocess with --config, output to train.log, SIGTERM from outside."""
    run_dir = tmp_path / "run"
    cfg = _cfg(tiny_model_dir, cv_en, epochs=50.0, output_dir=str(run_dir))  # 100 steps: far longer than we wait
    cfg_file = tmp_path / "config.json"
    cfg.save(cfg_file)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run_dir.mkdir()
    with open(run_dir / runfolder.LOG, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "whisper_studio", "train", "--config", str(cfg_file), "--no-eval"],
                                cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = runfolder.read_status(run_dir)
            if status and status.step >= 1:
                break
            assert proc.poll() is None, runfolder.tail_log(run_dir)
            time.sleep(0.1)
        else:
            pytest.fail("the job did not reach step 1 in time:\n" + runfolder.tail_log(run_dir))
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    log_text = runfolder.tail_log(run_dir, 200)
    assert rc == 0, log_text
    status = runfolder.read_status(run_dir)
    assert status.state == "stopped", log_text
    assert 1 <= status.step < status.total_steps == 100
    assert "stopping at step" in log_text and "received SIGTERM" in log_text
    assert (run_dir / runfolder.ADAPTER / "adapter_config.json").is_file()
    assert (run_dir / runfolder.CHECKPOINTS / f"checkpoint-{status.step}" / "trainer_state.json").is_file()
    assert max(_train_steps(run_dir)) == status.step


def test_bad_data_path_fails_with_its_message(tiny_model_dir, tmp_path):
    from whisper_studio.cli import main

    run_dir = tmp_path / "run"
    missing = tmp_path / "no-such-release"
    rc = main(["train", "--model", str(tiny_model_dir), "--language", "en", "--source", "cv-folder",
               "--path", str(missing), "--batch-size", "2", "--no-eval", "--out", str(run_dir)])
    assert rc == 2  # a user error: message, no traceback
    status = runfolder.read_status(run_dir)
    assert status.state == "failed" and status.error == f"Folder not found: {missing}"


def test_cli_flags_override_config_file(tmp_path, monkeypatch):
    from whisper_studio.cli import build_parser
    from whisper_studio.cli.train import config_from_args

    monkeypatch.setenv("WHISPER_STUDIO_RUNS", str(tmp_path / "runs"))
    base = TrainConfig(language="mr", epochs=3.0, batch_size=8)
    base.save(tmp_path / "c.json")
    args = build_parser().parse_args([
        "train", "--config", str(tmp_path / "c.json"), "--language", "hi", "--epochs", "1.5", "--rank", "8",
        "--alpha", "16", "--target-modules", "q_proj,k_proj", "v_proj", "--no-8bit", "--precision", "fp32",
        "--max-train-samples", "64", "--out", str(tmp_path / "r")])
    cfg, run_dir = config_from_args(args)
    assert run_dir == tmp_path / "r"
    assert (cfg.language, cfg.source.language, cfg.epochs, cfg.batch_size) == ("hi", "hi", 1.5, 8)
    assert (cfg.lora.rank, cfg.lora.alpha, cfg.lora.target_modules) == (8, 16, ("q_proj", "k_proj", "v_proj"))
    assert cfg.load_in_8bit is False and cfg.precision == "fp32" and cfg.max_train_samples == 64
    # No --out and no output_dir: a new folder under the runs root.
    cfg2, run2 = config_from_args(build_parser().parse_args(["train", "--language", "en"]))
    assert run2.parent == (tmp_path / "runs").resolve() and cfg2.language == "en"
    with pytest.raises(ConfigError, match="LoRA rank"):
        config_from_args(build_parser().parse_args(["train", "--rank", "0"]))


def test_resume_needs_a_checkpoint(tmp_path):
    from whisper_studio.cli import main
    from whisper_studio.train import run_training

    cfg = TrainConfig(language="en", batch_size=2)
    with pytest.raises(JobError, match="no checkpoint to resume from"):
        run_training(cfg, tmp_path / "empty", resume=True)
    assert main(["train", "--resume", str(tmp_path / "nothing-here")]) == 2


def test_precision_resolution():
    from whisper_studio.train import cpu_has_fast_bf16, resolve_precision

    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_fast_bf16() else "fp32")
    assert resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(ConfigError, match="fp16 mixed precision needs a GPU"):
        resolve_precision("fp16", "cpu")
