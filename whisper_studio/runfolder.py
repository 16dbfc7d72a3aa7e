"""The run folder: the only channel between the UI (or any observer) and a training job.

Every name in a run folder is defined here, and nowhere else:

    RUN_DIR/config.json       TrainConfig as JSON (CONFIG)
    RUN_DIR/status.json       RunStatus, replaced atomically: readers never see half a file (STATUS)
    RUN_DIR/metrics.jsonl     append-only, one TrainRecord or EvalRecord as JSON per line (METRICS)
    RUN_DIR/train.log         the job's stdout and stderr (LOG)
    RUN_DIR/checkpoints/      Trainer checkpoints, for --resume (CHECKPOINTS)
    RUN_DIR/adapter/          the LoRA adapter in standard PEFT format, with a model card README.md (ADAPTER)
    RUN_DIR/eval.json         the last evaluation, written by evaluation.py (EVAL)
    RUN_DIR/.job.json         the launcher's record of the process it started: pid + creation time (JOB)
    RUN_DIR/.stop_requested   written by the launcher before it signals a stop (STOP)
    RUNS_ROOT/.jobs.lock      serialises "is a job live? then launch one" across threads and processes (LOCK)

Units: times are unix seconds (time.time()) unless named otherwise; `elapsed` is training seconds; rates are
samples per second; `wer` is a fraction (0.25 = 25 %), which may exceed 1 when the model inserts words.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from whisper_studio.util import write_json_atomic  # noqa: F401 (re-exported: the run folder's one JSON writer)

STATES = ("queued", "running", "finished", "failed", "stopped")
FINAL_STATES = ("finished", "failed", "stopped")
LIVE_STATES = ("queued", "running")

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
LOG = "train.log"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
EVAL = "eval.json"
JOB = ".job.json"
STOP = ".stop_requested"
LOCK = ".jobs.lock"  # lives in the runs root, next to the run folders
CHECKPOINT_PREFIX = "checkpoint-"  # the Trainer's checkpoint folders: checkpoints/checkpoint-<step>


@dataclass
class RunStatus:
    state: str = "queued"
    pid: int | None = None
    step: int = 0  # optimizer steps done
    total_steps: int | None = None
    epoch: float = 0.0  # fractional epochs done
    started: float | None = None  # unix time
    updated: float | None = None  # unix time
    finished: float | None = None  # unix time
    error: str | None = None
    message: str | None = None  # what the job is doing now ("loading model", "preparing features", ...)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunStatus":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# --- metrics.jsonl records -----------------------------------------------------------------------------------
@dataclass
class _Record:
    TYPE: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Tolerant: fields a writer left out are None, fields this reader does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class TrainRecord(_Record):
    """One logging step of training."""

    TYPE: ClassVar[str] = "train"
    step: int | None = None  # optimizer step
    epoch: float | None = None  # fractional epochs done
    loss: float | None = None  # mean training loss since the previous record
    learning_rate: float | None = None
    elapsed: float | None = None  # seconds of training so far, earlier attempts of a resumed run included
    samples_per_second: float | None = None  # since the previous record; None for the first one


@dataclass
class EvalRecord(_Record):
    """One evaluation during training (--eval-each-epoch)."""

    TYPE: ClassVar[str] = "eval"
    step: int | None = None  # optimizer step
    epoch: float | None = None  # fractional epochs done
    eval_loss: float | None = None  # mean cross-entropy on the test split
    wer: float | None = None  # word error rate as a fraction (0.25 = 25 %); may exceed 1


def split_records(metrics: list[dict[str, Any]]) -> tuple[list[TrainRecord], list[EvalRecord]]:
    """metrics.jsonl lines (read_metrics) -> the train records with a step, and the eval records."""
    train = [TrainRecord.from_dict(m) for m in metrics if m.get("type") == TrainRecord.TYPE and m.get("step") is not None]
    evals = [EvalRecord.from_dict(m) for m in metrics if m.get("type") == EvalRecord.TYPE]
    return train, evals


# --- reading and writing ---------------------------------------------------------------------------------------
def write_status(run_dir: str | os.PathLike, status: RunStatus) -> RunStatus:
    status.updated = time.time()
    write_json_atomic(Path(run_dir) / STATUS, dataclasses.asdict(status))
    return status


def read_status(run_dir: str | os.PathLike) -> RunStatus | None:
    """The last status written, or None when there is none (yet)."""
    data = read_json(Path(run_dir) / STATUS)
    return RunStatus.from_dict(data) if data is not None else None


def read_json(path: str | os.PathLike) -> dict | None:
    """A JSON object file, or None when it is missing, torn or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def append_metric(run_dir: str | os.PathLike, record: "TrainRecord | EvalRecord | dict[str, Any]") -> None:
    """One line per record, written with a single write so a reader sees whole lines only."""
    if isinstance(record, _Record):
        record = record.to_json()
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


# --- checkpoints -----------------------------------------------------------------------------------------------
def last_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete Trainer checkpoint (one cut short by a kill has no trainer_state.json)."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return None
    found = []
    for child in folder.iterdir():
        step = child.name[len(CHECKPOINT_PREFIX):]
        if child.is_dir() and child.name.startswith(CHECKPOINT_PREFIX) and step.isdigit():
            if (child / "trainer_state.json").is_file():
                found.append((int(step), child))
    return max(found)[1] if found else None


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name[len(CHECKPOINT_PREFIX):])
