"""bench/gpu_check.py in --tiny mode (CPU): the whole check runs and prints one JSON object with every key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_gpu_check_tiny_prints_one_json(tmp_path):
    out = tmp_path / "check.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--tiny", "--device", "cpu",
                           "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=REPO,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1  # one JSON object, nothing else on stdout
    result = json.loads(lines[0])
    assert result == json.loads(out.read_text(encoding="utf-8"))
    assert {"device", "gpu", "tiny", "torch", "large_v2", "base", "transcribe", "total_s"} <= set(result)
    assert result["device"] == "cpu" and result["tiny"] is True
    train_keys = {"model", "shape", "load_in_8bit", "lora_rank", "target_modules", "steps", "batch_size",
                  "samples_per_s", "median_step_s", "peak_memory_mib", "first_loss", "final_loss",
                  "trainable_params", "load_s"}
    for part in ("large_v2", "base"):
        figures = result[part]
        assert train_keys <= set(figures), part
        assert figures["lora_rank"] == 32 and figures["target_modules"] == ["q_proj", "v_proj"]
        assert figures["samples_per_s"] > 0 and figures["trainable_params"] > 0
        assert figures["peak_memory_mib"] is None  # CPU: no CUDA peak to report
    assert "fits_8gb" in result["large_v2"]
    tr = result["transcribe"]
    assert {"model", "inference", "short_s", "short_text", "long_audio_s", "long_s", "rtf", "long_words"} <= set(tr)
    assert tr["long_audio_s"] > 30 and tr["long_words"] > 20 and tr["short_text"]
