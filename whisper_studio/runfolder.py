"""The run folder: the only channel between the UI (or any observer) and a training job.

    RUN_DIR/config.json      TrainConfig as JSON
    RUN_DIR/status.json      RunStatus, replaced atomically (readers never see half a file)
    RUN_DIR/metrics.jsonl    append-only, one JSON object per line ({"type": "train"|"eval", ...})
    RUN_DIR/train.log        the job's log
    RUN_DIR/checkpoints/     Trainer checkpoints (for --resume)
    RUN_DIR/adapter/         the LoRA adapter in standard PEFT format, with a model card README.md
    RUN_DIR/eval.json        the last evaluation (evaluation.py)
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATES = ("queued", "running", "finished", "failed", "stopped")
FINAL_STATES = ("finished", "failed", "stopped")

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
LOG = "train.log"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
EVAL = "eval.json"


@dataclass
class RunStatus:
    state: str = "queued"
    pid: int | None = None
    step: int = 0
    total_steps: int | None = None
    epoch: float = 0.0
    started: float | None = None  # unix time
    updated: float | None = None
    finished: float | None = None
    error: str | None = None
    message: str | None = None  # what the job is doing now ("loading model", "preparing features", ...)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunStatus":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON through a temporary file in the same folder and rename it over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_status(run_dir: str | os.PathLike, status: RunStatus) -> RunStatus:
    status.updated = time.time()
    write_json_atomic(Path(run_dir) / STATUS, dataclasses.asdict(status))
    return status


def read_status(run_dir: str | os.PathLike) -> RunStatus | None:
    """The last status written, or None when there is none (yet)."""
    try:
        data = json.loads((Path(run_dir) / STATUS).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return RunStatus.from_dict(data)


def append_metric(run_dir: str | os.PathLike, record: dict[str, Any]) -> None:
    """One line per record, written with a single write so a reader sees whole lines only."""
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with open(Path(run_dir) / METRICS, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete metric lines; a line still being written (no newline yet) is skipped."""
    try:
        text = (Path(run_dir) / METRICS).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def tail_log(run_dir: str | os.PathLike, lines: int = 40) -> str:
    path = Path(run_dir) / LOG
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
