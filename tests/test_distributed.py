"""The training entry under torch's own launcher (2 CPU processes, gloo) and as a SageMaker entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from whisper_studio import runfolder

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _env(**extra) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_torchrun_two_cpu_processes_train_and_save_one_adapter(tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "whisper_studio", "train", "--model", str(tiny_model_dir), "--language", "en", "--source", "demo",
           "--max-train-samples", "8", "--batch-size", "2", "--max-steps", "2", "--no-eval", "--out", str(run)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # Both ranks trained the same number of steps; each step saw both ranks' batches (2 x 2 samples).
    assert "rank 0/2 on cpu: trained 2 steps" in out and "rank 1/2 on cpu: trained 2 steps" in out
    assert "2 steps, 4 samples per step" in out
    status = runfolder.read_status(run)
    assert status.state == "finished" and status.step == 2
    # Rank 0 alone wrote the run folder: one adapter, one line per logged step.
    assert (run / "adapter" / "adapter_config.json").is_file()
    assert [m["step"] for m in runfolder.read_metrics(run) if m.get("type") == "train"] == [1, 2]


def test_sagemaker_entry_reads_channels_and_fills_model_dir(tiny_model_dir, tmp_path):
    from whisper_studio import demo

    channel = demo.build_corpus("en")  # a Common Voice <locale> folder, as an S3 channel would hold it
    model_dir, output_dir = tmp_path / "opt-ml-model", tmp_path / "opt-ml-output"
    env = _env(SM_MODEL_DIR=str(model_dir), SM_OUTPUT_DATA_DIR=str(output_dir), SM_CHANNEL_TRAIN=str(channel),
               SM_NUM_GPUS="0")
    # Hyperparameters as SageMaker passes them: snake_case names, booleans as strings.
    cmd = [sys.executable, str(REPO / "examples" / "sagemaker" / "entry.py"), "--model", str(tiny_model_dir),
           "--language", "en", "--max_train_samples", "4", "--batch_size", "2", "--max_steps", "1",
           "--load_in_8bit", "False", "--no-eval"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (model_dir / "adapter_config.json").is_file() and (model_dir / "adapter_model.safetensors").is_file()
    config = json.loads((output_dir / "config.json").read_text())
    assert config["source"] == {**config["source"], "kind": "cv-folder", "path": str(channel)}
    assert config["load_in_8bit"] is False
    assert json.loads((output_dir / "status.json").read_text())["state"] == "finished"
