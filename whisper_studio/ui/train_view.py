"""What the Train tab shows, read from the run folder: the status line, the plots' frames, the log tail, the
buttons' states and, before Start, what a run will cost. Pure functions of a RunInfo and its metrics, so they
are tested without a browser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from whisper_studio.runfolder import split_records
from whisper_studio.scoring import percent
from whisper_studio.ui import common
from whisper_studio.ui.common import empty_frame, esc, fmt_duration

LOSS_COLUMNS = {"step": "int64", "loss": "float64"}
EVAL_LOSS_COLUMNS = {"step": "int64", "eval loss": "float64"}
WER_COLUMNS = {"step": "int64", "WER %": "float64"}
LOG_LINES = 12  # the log box shows this many lines whole, so its tail ("finished", the WER line) is never hidden

# Before any run has been measured on this machine: the bundled base, fp32, batch 8, on 2 free CPU cores
# trains at ~1.0-1.3 samples/s (issue 12, 4); the closing evaluation decodes each clip twice (base, adapted),
# ~6 s per clip there. A measured run replaces both.
DEFAULT_SAMPLES_PER_SECOND = 1.0
DEFAULT_EVAL_SECONDS_PER_CLIP = 6.0
ICONS = {"running": "🟢", "queued": "⏳", "stopping": "⏳", "finished": "✅", "failed": "❌", "stopped": "⏹"}


# --- the run's view -------------------------------------------------------------------------------------
def pick_run(watched: str | None):
    """The run to show: the live one if any (whoever started it), else the one this page watched, else the
    newest on disk."""
    mgr = common.job_manager()
    active = mgr.active()
    if active is not None:
        return active
    if watched:
        try:
            return mgr.get(watched)
        except Exception:  # noqa: BLE001 - deleted meanwhile: fall back to the newest
            pass
    runs = mgr.list_runs()
    return runs[0] if runs else None


def saved_result(run_dir) -> str | None:
    """'WER 212.0% → 63.0% on 40 clips' from the run's eval.json (read as JSON: no model library is loaded)."""
    from whisper_studio import runfolder

    try:
        data = runfolder.read_json(run_dir / runfolder.EVAL)
    except Exception:  # noqa: BLE001 - an unreadable eval.json: the Evaluate tab says why
        return None
    if not isinstance(data, dict) or data.get("base_wer") is None:
        return None
    metric = "cer" if data.get("headline") == "cer" and data.get("base_cer") is not None else "wer"
    return (f"{metric.upper()} {percent(data.get(f'base_{metric}'))} → {percent(data.get(f'adapted_{metric}'))} "
            f"on {data.get('n', '?')} clips")


def has_checkpoint(info) -> bool:
    from whisper_studio import runfolder

    return runfolder.last_checkpoint(info.run_dir) is not None


def status_line(info, metrics: list[dict]) -> str:
    """'step x of y · elapsed · ETA · samples/s' (numbers from jobs.progress, which reads the run folder), then
    what the job is doing, the result of a finished run, or why a run ended."""
    from whisper_studio import jobs

    p = jobs.progress(info, metrics)
    state = p["state"]
    parts = [f"step {p['step'] or 0} of {p['total'] or '?'}", f"elapsed {fmt_duration(p['elapsed'])}"]
    if p["alive"] and state != "stopping":
        parts.append(f"ETA {fmt_duration(p['eta'])}")
    sps = p["samples_per_second"]
    parts.append(f"{sps:.2f} samples/s" if isinstance(sps, (int, float)) else "– samples/s")
    if p["loss"] is not None:
        parts.append(f"loss {p['loss']:.3f}")
    if p.get("wer") is not None:
        parts.append(f"probe WER {percent(p['wer'])}")
    name = info.name if info.name == info.run_id else f"{info.name} ({info.run_id})"
    shown = "stopping…" if state == "stopping" else state
    line = f"{ICONS.get(state, '•')} **{esc(name)}** — {esc(shown)} · " + " · ".join(parts)
    if state == "stopping":
        line += ("  \n_Saving the adapter at the end of this step; **Kill now** ends it at once "
                 "(losing the steps since the last checkpoint)._")
    elif p["message"] and p["alive"]:
        line += f"  \n_{esc(p['message'])}_"
    if state == "finished":
        result = saved_result(info.run_dir)
        line += f"  \n**Result:** {esc(result)} — details on the **Evaluate** tab" if result else \
            "  \nNo closing evaluation: score it on the **Evaluate** tab."
    if state == "failed" and p["error"]:
        line += f"  \n**Error:** {esc(p['error'])}"
    if state in ("stopped", "failed") and not info.has_adapter:
        line += ("  \nA checkpoint was saved: **Resume** continues from it." if has_checkpoint(info)
                 else "  \nNothing saved yet: the run stopped before its first checkpoint.")
    return line


def frames(metrics: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """metrics.jsonl lines -> the loss, eval-loss and probe WER (percent) plots' frames."""
    train_records, evals = split_records(metrics)
    train = [(int(r.step), float(r.loss)) for r in train_records if r.loss is not None]
    eloss = [(int(r.step), float(r.eval_loss)) for r in evals if r.eval_loss is not None and r.step is not None]
    wer = [(int(r.step), 100 * float(r.wer)) for r in evals if r.wer is not None and r.step is not None]
    return (_frame(train, LOSS_COLUMNS), _frame(eloss, EVAL_LOSS_COLUMNS), _frame(wer, WER_COLUMNS))


def _frame(rows: list[tuple], columns: dict[str, str]) -> pd.DataFrame:
    if not rows:
        return empty_frame(**columns)
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


def step_range(info, frame: pd.DataFrame) -> list[float]:
    """x limits from step 0 to the run's last step: the axis ticks are whole steps even with one point
    (vega spreads one point's axis over 1.00-1.05 otherwise)."""
    last = max([info.total_steps or 0, *(frame["step"].tolist() if not frame.empty else [])])
    return [0, max(1, int(last))]


def refresh(watched: str | None, seen: str | None):
    """One tick: read the shown run's folder. Plots are only re-sent when a metrics line was added, so the
    chart does not flicker every 2 s. Returns values for OUTPUT_NAMES; the run state ("<run>:<state>")
    changes when a run starts or ends, which makes the other tabs re-list their runs."""
    from whisper_studio import jobs

    info = pick_run(watched)
    if info is None:
        return (None, None, "No runs yet. Choose the data on the **Data** tab, then press **Start**.",
                empty_frame(**LOSS_COLUMNS), gr.update(visible=False), gr.update(visible=False),
                "", "", gr.update(interactive=False), None, gr.update(visible=False), gr.update(visible=False),
                gr.update(visible=False))
    metrics = jobs.read_metrics(info.run_dir)
    key = f"{info.run_id}:{len(metrics)}:{info.total_steps}"
    if key == seen:
        loss = eloss = wer = gr.skip()
    else:
        loss_df, eloss_df, wer_df = frames(metrics)
        x_lim = step_range(info, loss_df)
        loss = gr.update(value=loss_df, x_lim=x_lim)
        eloss = gr.update(value=eloss_df, visible=not eloss_df.empty, x_lim=x_lim)
        wer = gr.update(value=wer_df, visible=not wer_df.empty, x_lim=x_lim)
    try:
        command = jobs.command_line(info.config) if info.config is not None else ""
    except Exception:  # noqa: BLE001 - an old or hand-edited config: show the rest anyway
        command = ""
    alive = bool(info.alive) and info.state in ("queued", "running", "stopping")
    stopping = info.state == "stopping"
    resumable = info.state in ("stopped", "failed") and not info.alive and has_checkpoint(info)
    return (info.run_id, key, status_line(info, metrics), loss, eloss, wer, jobs.tail_log(info.run_dir, LOG_LINES),
            command, gr.update(interactive=alive and not stopping), f"{info.run_id}:{info.state}",
            gr.update(visible=alive and stopping), gr.update(visible=resumable),
            gr.update(visible=not info.alive and info.has_adapter))


OUTPUT_NAMES = ("watched", "seen", "status", "loss", "eval_loss", "wer", "log", "command", "stop", "run_state",
                "kill", "resume", "to_evaluate")
N_OUTPUTS = len(OUTPUT_NAMES)


# --- before Start: what will it cost? ------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    steps: int
    train_seconds: float
    eval_seconds: float
    samples_per_second: float
    measured_in: str | None  # the run whose speed was measured, None for the default
    warmup_steps: int


def measured_speed(model: str | None) -> tuple[float, str] | None:
    """(samples/s, run name) of the newest run on this machine with a measured rate on the same model, else None
    (a rate measured on another model would mislead: tiny.en trains ~10x faster than base)."""
    from whisper_studio import jobs

    for info in common.list_runs()[:20]:
        if info.config is None or str(info.config.model) != str(model):
            continue
        try:
            train, _ = split_records(jobs.read_metrics(info.run_dir))
        except Exception:  # noqa: BLE001 - an unreadable run does not help the estimate
            continue
        rates = sorted(r.samples_per_second for r in train if r.samples_per_second)
        if rates:  # the median step: the first (warm-up) and last (checkpoint save) steps are outliers
            return float(rates[len(rates) // 2]), info.name
    return None


def estimate(cfg, final_eval_clips: int | None) -> Estimate:
    """Optimizer steps the run will take (from its clip cap) and minutes from the measured speed."""
    clips = cfg.max_train_samples or 0
    per_step = max(1, cfg.batch_size * cfg.grad_accum * max(1, cfg.num_processes))
    steps = math.ceil(math.ceil(clips / per_step) * cfg.epochs) if clips else 0
    measured = measured_speed(cfg.model)
    sps, where = measured if measured else (DEFAULT_SAMPLES_PER_SECOND, None)
    return Estimate(steps=steps, train_seconds=steps * per_step / sps,
                    eval_seconds=(final_eval_clips or 0) * DEFAULT_EVAL_SECONDS_PER_CLIP, samples_per_second=sps,
                    measured_in=where, warmup_steps=cfg.warmup_steps)


def cost_text(est: Estimate, eight_bit_note: str = "") -> str:
    if not est.steps:
        return "Steps depend on the size of the train split (set **Max clips** for an estimate)."
    speed = (f"{est.samples_per_second:.2f} samples/s measured in run {esc(est.measured_in)}" if est.measured_in
             else f"{est.samples_per_second:.2f} samples/s, a guess for 2 CPU cores until a run is measured here")
    text = f"**{est.steps} steps**, about **{fmt_duration(est.train_seconds)}** of training ({speed})"
    if est.eval_seconds:
        text += f" + about {fmt_duration(est.eval_seconds)} for the closing evaluation"
    if eight_bit_note:
        text += f"  \n{esc(eight_bit_note)}"
    if est.warmup_steps >= est.steps:
        text += (f"  \n⚠️ Warm-up is {est.warmup_steps} steps but the run has only {est.steps}: the learning rate "
                 "never reaches its peak. Lower **Warm-up steps** or train longer.")
    return text
