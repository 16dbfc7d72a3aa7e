"""The run folder: the only channel between the UI (or any observer) and a training job.

Every name in a run folder is defined here, and nowhere else:

    RUN_DIR/config.json       TrainConfig as JSON (CONFIG)
    RUN_DIR/status.json       RunStatus, replaced atomically: readers never see half a file (STATUS)
    RUN_DIR/metrics.jsonl     append-only, one TrainRecord or EvalRecord as JSON per line (METRICS)
    RUN_DIR/train.log         the job's stdout and stderr (LOG)
    RUN_DIR/checkpoints/      Trainer checkpoints, for --resume (CHECKPOINTS)
    RUN_DIR/adapter/          the LoRA adapter in standard PEFT format, with a model card README.md (ADAPTER)
    RUN_DIR/eval.json         the last evaluation, written by evaluation.py (EVAL)
    RUN_DIR/.job.json         the launcher's record of the process it started: pid, creation time, process
                              group (JOB, a JobRecord)
    RUN_DIR/.stop_requested   written by the launcher before it signals a stop: the request's unix time (STOP)
    RUN_DIR/.lock             held by whoever writes status.json (job or manager): one writer at a time (LOCK,
                              run_lock)
    RUNS_ROOT/.jobs.lock      serialises "is a job live? then launch one" across threads and processes (ROOT_LOCK)

Reading never writes and never raises on a malformed file: `read_status`/`read_json` give None, `load_status`
/`load_json` raise `Unreadable(reason)` for a listing that shows the reason, `read_metrics` skips bad lines.

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

from whisper_studio import util
from whisper_studio.util import write_json_atomic  # noqa: F401 (re-exported: the run folder's one JSON writer)

# "stopping": written by the manager when Stop was asked and the job has not ended yet. "unreadable": never
# written; what a listing shows for a run folder whose files are malformed.
STATES = ("queued", "running", "stopping", "finished", "failed", "stopped")
FINAL_STATES = ("finished", "failed", "stopped")
LIVE_STATES = ("queued", "running", "stopping")
UNREADABLE = "unreadable"

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
LOG = "train.log"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
EVAL = "eval.json"
JOB = ".job.json"
STOP = ".stop_requested"
LOCK = ".lock"  # inside the run folder: run_lock()
EVALS = "evals"  # one JSON file per evaluation, kept (evaluation.list_evals); eval.json is the latest
ROOT_LOCK = ".jobs.lock"  # lives in the runs root, next to the run folders
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
        """Strict about types (a reader does arithmetic on them): Unreadable names the first bad field."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name, value in values.items():
            kind = _STATUS_TYPES[name]
            if value is None and name not in ("state", "step", "epoch"):
                continue
            if not _is(value, kind):
                raise Unreadable(f"{STATUS}: `{name}` is not {_KIND_WORDS[kind]} ({str(value)[:40]!r})")
        if "state" in values and values["state"] not in STATES:
            raise Unreadable(f"{STATUS}: unknown state {str(values['state'])[:40]!r}")
        return cls(**values)


class Unreadable(ValueError):
    """A run-folder file that exists but cannot be understood; str() is the reason, for people."""


_STATUS_TYPES = {"state": str, "pid": int, "step": int, "total_steps": int, "epoch": float, "started": float,
                 "updated": float, "finished": float, "error": str, "message": str}
_KIND_WORDS = {str: "text", int: "a whole number", float: "a number"}


def _is(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False  # JSON true is not a step count
    if kind is float:
        return isinstance(value, (int, float)) and value == value  # NaN is no time
    return isinstance(value, kind)


@dataclass
class JobRecord:
    """RUN_DIR/.job.json: the launcher's record of the process it started (the pid-reuse check needs the
    exact creation time; the process group is what Stop signals, so ranks of a multi-process job stop too)."""

    pid: int
    create_time: float | None = None
    pgid: int | None = None
    argv: list[str] = dataclasses.field(default_factory=list)
    started: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobRecord":
        if not _is(data.get("pid"), int):
            raise Unreadable(f"{JOB}: no pid")
        known = {f.name for f in dataclasses.fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        for name in ("create_time", "started"):
            if getattr(record, name) is not None and not _is(getattr(record, name), float):
                setattr(record, name, None)
        if record.pgid is not None and not _is(record.pgid, int):
            record.pgid = None
        return record


def write_job(run_dir: str | os.PathLike, record: JobRecord) -> None:
    write_json_atomic(Path(run_dir) / JOB, dataclasses.asdict(record))


def read_job(run_dir: str | os.PathLike) -> JobRecord | None:
    data = read_json(Path(run_dir) / JOB)
    try:
        return JobRecord.from_dict(data) if data is not None else None
    except Unreadable:
        return None


def run_lock(run_dir: str | os.PathLike):
    """The run folder's writer lock: hold it while writing status.json (job and manager alike)."""
    return util.file_lock(Path(run_dir) / LOCK)


# --- metrics.jsonl records -----------------------------------------------------------------------------------
@dataclass
class _Record:
    TYPE: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Tolerant: fields a writer left out, or wrote as a non-number, are None; unknown fields are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (v if _is(v, float) else None) for k, v in data.items() if k in known})


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
    """One evaluation during training: the probe set's scores on generated text at each epoch end, and the test
    loss with --eval-each-epoch. Rates are fractions (0.25 = 25 %) and may exceed 1 (insertions)."""

    TYPE: ClassVar[str] = "eval"
    step: int | None = None  # optimizer step
    epoch: float | None = None  # fractional epochs done
    eval_loss: float | None = None  # mean cross-entropy on the test split (teacher-forced)
    wer: float | None = None  # orthographic word error rate of greedy transcripts (scoring.score)
    cer: float | None = None  # character error rate on normalized text
    wer_normalized: float | None = None  # WER after scoring.normalizer_for(language)
    n: int | None = None  # probe clips scored


def split_records(metrics: list[dict[str, Any]]) -> tuple[list[TrainRecord], list[EvalRecord]]:
    """metrics.jsonl lines (read_metrics) -> the train records with a step, and the eval records."""
    train = [TrainRecord.from_dict(m) for m in metrics if m.get("type") == TrainRecord.TYPE]
    evals = [EvalRecord.from_dict(m) for m in metrics if m.get("type") == EvalRecord.TYPE]
    return [r for r in train if r.step is not None], evals


# --- reading and writing ---------------------------------------------------------------------------------------
def write_status(run_dir: str | os.PathLike, status: RunStatus) -> RunStatus:
    status.updated = time.time()
    write_json_atomic(Path(run_dir) / STATUS, dataclasses.asdict(status))
    return status


def read_status(run_dir: str | os.PathLike) -> RunStatus | None:
    """The last status written, or None when there is none (yet) or it is malformed."""
    try:
        return load_status(run_dir)
    except Unreadable:
        return None


def load_status(run_dir: str | os.PathLike) -> RunStatus | None:
    """The last status written, None when there is none; Unreadable(reason) when it is malformed."""
    data = load_json(Path(run_dir) / STATUS)
    return RunStatus.from_dict(data) if data is not None else None


def read_json(path: str | os.PathLike) -> dict | None:
    """A JSON object file, or None when it is missing, torn, not UTF-8 or not an object."""
    try:
        return load_json(path)
    except Unreadable:
        return None


def load_json(path: str | os.PathLike) -> dict | None:
    """A JSON object file, None when it is missing; Unreadable(reason) when it cannot be read as one."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Unreadable(f"{path.name}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Unreadable(f"{path.name} is not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:  # json.JSONDecodeError; RecursionError is not expected from a run's own file
        raise Unreadable(f"{path.name} is not valid JSON ({'empty' if not raw.strip() else exc.msg})") from None
    if not isinstance(data, dict):
        raise Unreadable(f"{path.name} holds a JSON {type(data).__name__}, not an object")
    return data


def append_metric(run_dir: str | os.PathLike, record: "TrainRecord | EvalRecord | dict[str, Any]") -> None:
    """One line per record, written with a single write so a reader sees whole lines only."""
    if isinstance(record, _Record):
        record = record.to_json()
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with open(Path(run_dir) / METRICS, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()


def drop_metrics_after(run_dir: str | os.PathLike, step: int) -> None:
    """Rewrite metrics.jsonl (atomically) without the records past `step` (and any torn last line): the steps
    a killed attempt logged after its last checkpoint are trained again by the resume. The one exception to
    append-only, made by the job itself before it appends again."""
    path = Path(run_dir) / METRICS
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    except FileNotFoundError:
        return
    kept = []
    for line in lines:
        try:
            record = json.loads(line) if line.endswith("\n") else None
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and not (isinstance(record.get("step"), int) and record["step"] > step):
            kept.append(line)
    if len(kept) != len(lines):
        util.write_atomic(path, "".join(kept))


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete metric lines that are JSON objects; a line still being written (no newline yet), a line
    that is not UTF-8 or not JSON (a torn write of an earlier attempt) is skipped."""
    try:
        raw = (Path(run_dir) / METRICS).read_bytes()
    except OSError:
        return []
    records = []
    for line in raw.split(b"\n")[:-1]:  # the last piece has no newline: still being written (or empty)
        try:
            record = json.loads(line.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError both
            continue
        if isinstance(record, dict):
            records.append(record)
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
