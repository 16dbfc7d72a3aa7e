"""What an evaluation produces and where it is kept: rows, the result, the control row, the run's history.

    RUN_DIR/evals/<created>.json   every evaluation, kept (EVALS_DIR); never overwritten
    RUN_DIR/eval.json              the latest one (runfolder.EVAL), what the UI shows first

Numbers are fractions (1.0 = 100%; WER may exceed 1). Text goes through scoring.percent / scoring.points.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from whisper_studio import runfolder, scoring
from whisper_studio.errors import JobError
from whisper_studio.util import write_json_atomic

log = logging.getLogger(__name__)

EVALS_DIR = runfolder.EVALS  # RUN_DIR/evals/: one file per evaluation


@dataclass
class UtteranceRow:
    id: str
    audio: str | None  # the clip's path (None for in-memory audio)
    reference: str
    base: str
    adapted: str | None  # None when no adapter was evaluated
    base_wer: float
    adapted_wer: float | None
    delta: float | None  # adapted_wer - base_wer: negative means the adapter helped on this clip
    reference_normalized: str = ""
    base_normalized: str = ""
    adapted_normalized: str | None = None
    base_wer_normalized: float = 0.0
    adapted_wer_normalized: float | None = None
    delta_normalized: float | None = None
    base_cer: float = 0.0  # on normalized text (spaces dropped for languages written without them)
    adapted_cer: float | None = None
    # scoring.audit of each transcript: {"base": {...Audit fields...}, "adapted": {...} or None}
    audit: dict[str, Any] = field(default_factory=dict)
    # The flags the table marks: the adapted transcript's (the base's when no adapter was evaluated).
    flags: list[str] = field(default_factory=list)


@dataclass
class ControlResult:
    """The forgetting check: base and adapter on clips of another language the adapter was not trained on."""

    language: str  # Common Voice locale of the control clips
    n: int
    base_wer: float
    adapted_wer: float
    base_cer: float
    adapted_cer: float
    source: str  # where the clips came from, in words
    base_wer_normalized: float = 0.0
    adapted_wer_normalized: float = 0.0
    normalizer: str = ""
    headline: str = "wer"  # "wer" (normalized) or "cer": the number to show
    flagged: int = 0  # adapted transcripts with a hallucination flag

    def headline_values(self) -> tuple[float, float]:
        if self.headline == "cer":
            return self.base_cer, self.adapted_cer
        return self.base_wer_normalized, self.adapted_wer_normalized


@dataclass
class EvalResult:
    base_wer: float  # orthographic: text as written (case and punctuation count)
    adapted_wer: float | None
    base_wer_normalized: float
    adapted_wer_normalized: float | None
    n: int
    rows: list[UtteranceRow]
    model: str = ""
    adapter: str | None = None
    language: str = ""
    task: str = "transcribe"
    split: str | None = None
    normalizer: str = ""
    seconds: float = 0.0
    created: float = field(default_factory=time.time)
    skipped: list[dict[str, str]] = field(default_factory=list)  # clips whose audio could not be decoded
    base_cer: float | None = None
    adapted_cer: float | None = None
    headline: str = "wer"  # "cer" for languages written without spaces
    control: ControlResult | None = None
    # scoring.audit_summary per side: {"base": {...}, "adapted": {...} or None}
    audit_summary: dict[str, Any] = field(default_factory=dict)
    # How it was made: split, clips asked for, batch size, decoding, data fingerprint, control, base cache use.
    settings: dict[str, Any] = field(default_factory=dict)

    def flagged(self, side: str = "adapted") -> int | None:
        summary = self.audit_summary.get(side)
        return summary.get("flagged") if isinstance(summary, Mapping) else None

    def summary(self) -> dict[str, Any]:
        """The headline numbers (what `evaluate --json` prints)."""
        return {
            "base_wer": self.base_wer,
            "adapted_wer": self.adapted_wer,
            "base_wer_normalized": self.base_wer_normalized,
            "adapted_wer_normalized": self.adapted_wer_normalized,
            "base_cer": self.base_cer,
            "adapted_cer": self.adapted_cer,
            "n": self.n,
            "normalizer": self.normalizer,
            "headline": self.headline,
            "flagged": {"base": self.flagged("base"), "adapted": self.flagged("adapted")},
            "control": dataclasses.asdict(self.control) if self.control is not None else None,
        }

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["summary"] = self.summary()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvalResult":
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        row_fields = {f.name for f in dataclasses.fields(UtteranceRow)}
        kwargs["rows"] = [UtteranceRow(**{k: v for k, v in r.items() if k in row_fields}) for r in data.get("rows", [])]
        if isinstance(kwargs.get("control"), Mapping):
            control_fields = {f.name for f in dataclasses.fields(ControlResult)}
            kwargs["control"] = ControlResult(**{k: v for k, v in kwargs["control"].items() if k in control_fields})
        return cls(**kwargs)


class ResultNotSaved(JobError):
    """The evaluation finished but its files could not be written; `result` still holds it."""

    def __init__(self, message: str, result: EvalResult):
        super().__init__(message)
        self.result = result


# --- the run's history ---------------------------------------------------------------------------------------
def _read(path: Path) -> EvalResult:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise ValueError(f"it holds a JSON {type(data).__name__}, not an object")
    return EvalResult.from_dict(data)


def load_eval(run_dir: str | Path) -> EvalResult | None:
    """The run's last evaluation (RUN_DIR/eval.json), or None if it has none."""
    path = Path(run_dir) / runfolder.EVAL
    try:
        return _read(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:  # non-UTF-8, not JSON, a list, fields of the wrong kind
        raise JobError(f"{path} is unreadable ({exc}); evaluate the run again to replace it.") from None


def list_evals(run_dir: str | Path) -> list[EvalResult]:
    """Every evaluation of the run, oldest first (RUN_DIR/evals/); a run evaluated before the history existed
    gives its eval.json. Unreadable files are skipped (logged), never an error: this is a listing."""
    folder = Path(run_dir) / EVALS_DIR
    results = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            results.append(_read(path))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("skipping unreadable evaluation %s (%s)", path, exc)
    if not results:
        try:
            latest = load_eval(run_dir)
        except JobError as exc:
            log.warning("%s", exc)
            latest = None
        results = [latest] if latest is not None else []
    return sorted(results, key=lambda r: r.created)


def history_name(created: float) -> str:
    """`20260101-120000-123`: UTC, sortable, milliseconds so two evaluations in one second do not collide."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(created)) + f"-{int(created * 1000) % 1000:03d}"


def save_eval(run_dir: str | Path, result: EvalResult) -> Path:
    """Keep `result` in RUN_DIR/evals/ and make it RUN_DIR/eval.json; returns the history file.
    ResultNotSaved (with the numbers in its message) when the run folder cannot be written."""
    run_dir = Path(run_dir)
    data = result.to_dict()
    name = history_name(result.created)
    target = run_dir / EVALS_DIR / f"{name}.json"
    n = 2
    while target.exists():
        target, n = run_dir / EVALS_DIR / f"{name}-{n}.json", n + 1
    try:
        write_json_atomic(target, data)
        write_json_atomic(run_dir / runfolder.EVAL, data)
    except OSError as exc:
        raise ResultNotSaved(
            f"The evaluation finished ({headline_text(result)}) but could not be saved in {run_dir}: "
            f"{exc.strerror or exc}. Make the run folder writable (or free some space) and evaluate again.",
            result) from None
    return target


# --- text ------------------------------------------------------------------------------------------------------
def headline_text(result: EvalResult) -> str:
    """`WER base 63.2% -> adapted 41.0% on 40 clips` (CER for languages written without spaces)."""
    if result.headline == "cer":
        name, base, adapted = "CER", result.base_cer, result.adapted_cer
    else:
        name, base, adapted = "WER", result.base_wer_normalized, result.adapted_wer_normalized
    text = f"{name} base {scoring.percent(base)}"
    if adapted is not None:
        text += f" → adapted {scoring.percent(adapted)}"
    return text + f" on {result.n} clips"


def control_text(control: ControlResult) -> str:
    """`English control: 6.1% → 6.4%` (normalized WER, or CER for a language written without spaces)."""
    from whisper_studio.languages import resolve

    try:
        name = resolve(control.language).english
    except Exception:  # a locale this version no longer knows: show the code
        name = control.language
    base, adapted = control.headline_values()
    metric = "" if control.headline == "wer" else " CER"
    return f"{name} control{metric}: {scoring.percent(base)} → {scoring.percent(adapted)}"


def format_summary(result: EvalResult, run_dir: Path | None = None) -> str:
    """The text table `python -m whisper_studio evaluate` prints."""
    pct, pts = scoring.percent, scoring.points
    lines = [
        f"{result.n} clips" + (f" of the {result.split} split" if result.split else "")
        + f", language {result.language}, model {result.model}"
        + (f" ({len(result.skipped)} undecodable clips skipped)" if result.skipped else ""),
        "",
        f"{'':10}{'WER':>12}{'normalized':>14}{'CER':>12}{'flagged':>10}",
    ]

    def line(label, wer, wer_n, cer, flagged) -> str:
        return f"{label:10}{pct(wer):>12}{pct(wer_n):>14}{pct(cer):>12}{'' if flagged is None else flagged:>10}"

    lines.append(line("base", result.base_wer, result.base_wer_normalized, result.base_cer, result.flagged("base")))
    if result.adapted_wer is not None:
        lines.append(line("adapted", result.adapted_wer, result.adapted_wer_normalized, result.adapted_cer,
                          result.flagged("adapted")))

        def change(a, b):
            return pts(a - b) if a is not None and b is not None else scoring.MISSING

        # 12 wide: "−110.5 pts" (a Marathi base far above 100%) still leaves a gap
        lines.append(f"{'change':10}{change(result.adapted_wer, result.base_wer):>12}"
                     f"{change(result.adapted_wer_normalized, result.base_wer_normalized):>14}"
                     f"{change(result.adapted_cer, result.base_cer):>12}")
    lines.append("")
    headline = "CER (written without spaces)" if result.headline == "cer" else "normalized WER"
    lines.append(f"headline: {headline}; normalizer: {result.normalizer}; raw WER counts case and punctuation")
    summary = result.audit_summary.get("adapted") or result.audit_summary.get("base")
    if summary:
        counts = ", ".join(f"{k} {v}" for k, v in summary["flags"].items() if v) or "none"
        side = "adapted" if result.audit_summary.get("adapted") else "base"
        lines.append(f"hallucination flags ({side}): {summary['flagged']} of {summary['n']} clips ({counts})")
    if result.control is not None:
        c = result.control
        lines.append(f"{control_text(c)} ({pts(c.headline_values()[1] - c.headline_values()[0])}; "
                     f"{c.n} clips, {c.source})")
    elif result.settings.get("control_skipped"):
        lines.append(f"control set skipped: {result.settings['control_skipped']}")
    if result.settings.get("base_cached"):
        lines.append("base transcripts: reused from the cache (same model, clips and decoding)")
    if run_dir is not None:
        lines.append(f"per-utterance rows: {Path(run_dir) / runfolder.EVAL}")
    return "\n".join(lines)
