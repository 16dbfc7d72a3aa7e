"""Train tab: LoRA settings, Start/Stop, and a live view of the run folder (loss plot, progress, log tail).

The page never talks to the training process: it starts it through JobManager and then only reads the run
folder (status.json, metrics.jsonl, train.log), so a page reload or an app restart shows the same run again.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from whisper_studio import hosting
from whisper_studio.runfolder import split_records
from whisper_studio.ui import common, data_tab
from whisper_studio.ui.common import (
    DEFAULT_LANGUAGE,
    EIGHT_BIT_INFO,
    EXTRA_MODELS_ENV,
    PLOT_CLASS,
    REFRESH_SECONDS,
    TRAIN_DEFAULTS,
    Form,
    UserMessage,
    empty_frame,
    esc,
    fmt_duration,
    handler,
)
from whisper_studio.ui.data_tab import DataTab

N_OUTPUTS = 10  # len(refresh(...))
LOSS_COLUMNS = {"step": "int64", "loss": "float64"}
EVAL_LOSS_COLUMNS = {"step": "int64", "eval loss": "float64"}
WER_COLUMNS = {"step": "int64", "WER %": "float64"}


def model_choices() -> list[tuple[str, str]]:
    """Bundled and hub models from the catalog, plus local folders named in WHISPER_STUDIO_EXTRA_MODELS."""
    from whisper_studio.models import catalog

    out = [(info.label, info.id) for info in catalog()]
    for path in filter(None, (os.environ.get(EXTRA_MODELS_ENV) or "").split(os.pathsep)):
        out.append((f"{Path(path).name} (local folder)", path))
    return out


def data_summary(values: dict, labels: dict[str, str] | None = None) -> str:
    """One line on the Train tab saying what Start will train on (chosen on the Data tab). `values` are the
    Data tab's form values; `labels` maps source kinds to the radio's labels."""
    from whisper_studio.languages import resolve

    language, kind = values.get("language"), values.get("kind") or "demo"
    try:
        lang = resolve(language).label
    except Exception:  # noqa: BLE001 - an unknown value is reported by Start itself
        lang = str(language)
    where = (labels or {}).get(kind, kind)
    try:
        src = data_tab.source_config(values)
        detail = src.dataset_id or src.path
    except Exception:  # noqa: BLE001 - a missing folder or id: Start says what is missing
        detail = None
    extra = f" · `{esc(detail)}`" if detail else ""
    return f"Trains on **{esc(lang)}** · {esc(where)}{extra} _(change on the Data tab)_"


@dataclass
class TrainTab:
    watched: gr.State
    seen: gr.State
    outputs: list  # what `refresh` fills; the app's load event fills them too
    run_state: gr.State  # "<run>:<state>": changes when a run starts or ends


# --- Reading a run folder ------------------------------------------------------------------------------------
def _pick_run(watched: str | None):
    """The run to show: the live one if any (whoever started it), else the one this page watched, else the
    newest on disk."""
    mgr = common.job_manager()
    active = mgr.active()
    if active is not None:
        return active
    if watched:
        try:
            return mgr.get(watched)
        except Exception:  # deleted meanwhile: fall back to the newest
            pass
    runs = mgr.list_runs()
    return runs[0] if runs else None


def status_line(info, metrics: list[dict]) -> str:
    """'step x of y · elapsed · ETA · samples/s' (numbers from jobs.progress, which reads the run folder)."""
    from whisper_studio import jobs

    p = jobs.progress(info, metrics)
    state = p["state"]
    icon = {"running": "🟢", "queued": "⏳", "finished": "✅", "failed": "❌", "stopped": "⏹"}.get(state, "•")
    parts = [f"step {p['step'] or 0} of {p['total'] or '?'}", f"elapsed {fmt_duration(p['elapsed'])}"]
    if p["alive"]:
        parts.append(f"ETA {fmt_duration(p['eta'])}")
    sps = p["samples_per_second"]
    parts.append(f"{sps:.2f} samples/s" if isinstance(sps, (int, float)) else "– samples/s")
    if p["loss"] is not None:
        parts.append(f"loss {p['loss']:.3f}")
    name = info.name if info.name == info.run_id else f"{info.name} ({info.run_id})"
    line = f"{icon} **{esc(name)}** — {esc(state)} · " + " · ".join(parts)
    if p["message"] and p["alive"]:
        line += f"  \n_{esc(p['message'])}_"
    if state == "failed" and p["error"]:
        line += f"  \n**Error:** {esc(p['error'])}"
    return line


def frames(metrics: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """metrics.jsonl lines -> the loss, eval-loss and WER (percent) plots' frames."""
    train_records, evals = split_records(metrics)
    train = [(int(r.step), float(r.loss)) for r in train_records if r.loss is not None]
    eloss = [(int(r.step), float(r.eval_loss)) for r in evals if r.eval_loss is not None and r.step is not None]
    wer = [(int(r.step), float(r.wer) * 100) for r in evals if r.wer is not None and r.step is not None]
    return (_frame(train, LOSS_COLUMNS), _frame(eloss, EVAL_LOSS_COLUMNS), _frame(wer, WER_COLUMNS))


def _frame(rows: list[tuple], columns: dict[str, str]) -> pd.DataFrame:
    if not rows:
        return empty_frame(**columns)
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


def refresh(watched: str | None, seen: str | None):
    """One tick: read the shown run's folder. Plots are only re-sent when a metrics line was added, so the
    chart does not flicker every 2 s. Returns values for [watched, seen, status, loss, eval loss, wer, log,
    command, stop button, run state]; the run state ("<run>:<state>") changes when a run starts or ends, which
    makes the other tabs re-list their runs."""
    from whisper_studio import jobs

    info = _pick_run(watched)
    if info is None:
        return (None, None, "No runs yet. Choose the data on the **Data** tab, then press **Start**.",
                empty_frame(**LOSS_COLUMNS), gr.update(visible=False), gr.update(visible=False),
                "", "", gr.update(interactive=False), None)
    metrics = jobs.read_metrics(info.run_dir)
    key = f"{info.run_id}:{len(metrics)}"
    if key == seen:
        loss = eloss = wer = gr.skip()
    else:
        loss_df, eloss_df, wer_df = frames(metrics)
        loss = loss_df
        eloss = gr.update(value=eloss_df, visible=not eloss_df.empty)
        wer = gr.update(value=wer_df, visible=not wer_df.empty)
    try:
        command = jobs.command_line(info.config) if info.config is not None else ""
    except Exception:  # noqa: BLE001 - an old or hand-edited config: show the rest anyway
        command = ""
    alive = bool(getattr(info, "alive", False)) and info.state in ("queued", "running")
    return (info.run_id, key, status_line(info, metrics), loss, eloss, wer, jobs.tail_log(info.run_dir, 40),
            command, gr.update(interactive=alive), f"{info.run_id}:{info.state}")


def safe_refresh(watched: str | None, seen: str | None):
    """The timer's and page load's refresh: a run folder that cannot be read right now (half-deleted, a
    hand-edited config) must not raise an error toast every 2 s; it is logged and the view is left as it is."""
    try:
        return refresh(watched, seen)
    except Exception:  # noqa: BLE001 - logged; the next tick tries again
        common.log.warning("could not refresh the run view", exc_info=True)
        return tuple(gr.skip() for _ in range(N_OUTPUTS))


def check_admin(password: str | None) -> None:
    """On a public Space, starting or stopping training (the owner's hardware) needs the admin password."""
    policy = hosting.training_policy()
    if not policy.offered:
        raise UserMessage(policy.reason)
    if policy.needs_password and not hosting.check_password(password):
        raise UserMessage(
            "Wrong or missing admin password: starting and stopping training on this deployment needs the password "
            f"kept in its {hosting.ADMIN_PASSWORD_ENV} secret."
        )


@handler("Starting the training")
def start_training(values: dict):
    """Start a run from the Train tab's form values (the Data tab's source fields, then the settings below)."""
    from whisper_studio.config import LoraSpec
    from whisper_studio.data import mdc_key_in_env

    v = values
    check_admin(v.get("admin_password"))
    src = data_tab.source_config(v)  # resolves the language once; the config takes its locale
    if not v.get("model"):
        raise UserMessage("Choose a model first.")
    epochs, lr, max_train = v.get("epochs"), v.get("learning_rate"), v.get("max_train")
    cfg = dataclasses.replace(
        TRAIN_DEFAULTS,
        model=str(v["model"]).strip(),
        language=src.language,
        source=src,
        lora=LoraSpec(rank=_as_int(v.get("rank"), "LoRA rank"), alpha=v.get("alpha"),
                      dropout=float(v.get("dropout") or 0), target_modules=tuple(v.get("targets") or ())),
        epochs=float(epochs) if epochs is not None else 0,
        learning_rate=float(lr) if lr is not None else 0,
        batch_size=_as_int(v.get("batch_size"), "Batch size"),
        max_train_samples=_as_int(max_train, "Max train clips") if max_train else None,
        load_in_8bit=bool(v.get("in8bit")),
        precision=v.get("precision") or "auto",
        run_name=(v.get("run_name") or "").strip() or None,
        num_processes=_as_int(v.get("processes") or 1, "Processes"),
    )
    # The job inherits the environment, so an MDC key typed in the page reaches it without being written down.
    with mdc_key_in_env(v.get("mdc_key")):
        info = common.job_manager().start(cfg)
    gr.Info(f"Started run {info.run_id}.")
    return refresh(info.run_id, None)


def _as_int(value, what: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise UserMessage(f"{what} must be a whole number (got {value!r}).") from None
    if f != int(f):
        raise UserMessage(f"{what} must be a whole number (got {value!r}).")
    return int(f)


@handler("Stopping the training")
def stop_training(watched, admin_password=None):
    check_admin(admin_password)
    mgr = common.job_manager()
    active = mgr.active()
    run_id = active.run_id if active is not None else watched
    if not run_id:
        raise UserMessage("No run is going on.")
    info = mgr.stop(run_id)
    gr.Info(f"Run {info.run_id} is {info.state}.")
    return refresh(info.run_id, None)


def build(data: DataTab) -> TrainTab:
    from whisper_studio.config import LORA_TARGETS, PRECISIONS

    D = TRAIN_DEFAULTS
    watched = gr.State(None)
    seen = gr.State(None)
    policy = hosting.training_policy()
    # Why training is locked or off here (a public Space, ZeroGPU); nothing shown on one's own machine.
    gr.Markdown(f"🔒 {esc(policy.reason)}" if policy.reason else "", visible=bool(policy.reason),
                elem_id="train-policy")
    with gr.Row():
        with gr.Column(scale=2, min_width=360):
            model = gr.Dropdown(model_choices(), value=D.model, label="Model", elem_id="model",
                                allow_custom_value=True, filterable=True,
                                info="Bundled models work offline; a hub id or a local folder can be typed in.")
            with gr.Row():
                rank = gr.Number(D.lora.rank, label="LoRA rank", precision=0, minimum=1,
                                 elem_id="lora-rank", min_width=90)
                alpha = gr.Number(D.lora.alpha, label="LoRA alpha", minimum=1, elem_id="lora-alpha",
                                  min_width=90)
                dropout = gr.Number(D.lora.dropout, label="Dropout", minimum=0, maximum=0.9,
                                    step=0.01, elem_id="lora-dropout", min_width=90)
            targets = gr.CheckboxGroup(list(LORA_TARGETS), value=list(D.lora.target_modules),
                                       label="LoRA target modules", elem_id="lora-targets")
            with gr.Row():
                epochs = gr.Number(D.epochs, label="Epochs", minimum=0.1, elem_id="epochs",
                                   min_width=70)
                lr = gr.Number(D.learning_rate, label="Learning rate", elem_id="learning-rate",
                               min_width=70)
                batch = gr.Number(D.batch_size, label="Batch", precision=0, minimum=1,
                                  elem_id="batch-size", min_width=70)
                max_train = gr.Number(D.max_train_samples, label="Max clips", precision=0,
                                      minimum=1, elem_id="max-train", min_width=70)
            in8bit = gr.Checkbox(D.load_in_8bit, label="Load the base model in 8-bit",
                                 info=EIGHT_BIT_INFO, elem_id="in8bit")
            with gr.Row():
                precision = gr.Dropdown(list(PRECISIONS), value=D.precision, label="Precision",
                                        elem_id="precision", min_width=90,
                                        info="auto: bf16 where the hardware is fast at it")
                run_name = gr.Textbox(label="Run name", placeholder="optional", elem_id="run-name", min_width=90,
                                      info="names the run folder")
        with gr.Column(scale=3, min_width=440):
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="start-btn", interactive=policy.offered)
                stop = gr.Button("Stop", variant="stop", elem_id="stop-btn", interactive=False)
            gpus = hosting.visible_gpus()
            # Data-parallel over the GPUs this machine has (torchrun); offered only where there is a choice.
            processes = gr.Slider(1, max(gpus, 2), value=max(gpus, 1), step=1, label="Processes (one per GPU)",
                                  visible=gpus > 1, elem_id="num-processes",
                                  info=f"{gpus} GPUs visible; more than one runs the job through torchrun")
            admin_password = gr.Textbox(label="Admin password", type="password", elem_id="admin-password",
                                        visible=policy.offered and policy.needs_password,
                                        info="needed to start or stop training on this deployment")
            labels = {value: label for label, value in data.form["kind"].choices}
            summary = functools.partial(data_summary, labels=labels)
            data_line = gr.Markdown(summary({"language": DEFAULT_LANGUAGE, "kind": "demo"}), elem_id="train-data")
            status = gr.Markdown("Loading…", elem_id="train-status")
            # One series per plot and no `color=`: a colored LinePlot that starts empty draws no stroke.
            loss_plot = gr.LinePlot(empty_frame(**LOSS_COLUMNS), x="step", y="loss", title="Training loss",
                                    elem_id="loss-plot", elem_classes=PLOT_CLASS, height=240)
            with gr.Row():
                eloss_plot = gr.LinePlot(empty_frame(**EVAL_LOSS_COLUMNS), x="step", y="eval loss",
                                         title="Eval loss", elem_id="eval-loss-plot", elem_classes=PLOT_CLASS,
                                         height=180, visible=False)
                wer_plot = gr.LinePlot(empty_frame(**WER_COLUMNS), x="step", y="WER %", title="Eval WER",
                                       elem_id="wer-curve", elem_classes=PLOT_CLASS, height=180, visible=False)
            log = gr.Textbox(label="train.log (tail)", lines=8, max_lines=8, interactive=False, autoscroll=True,
                             elem_id="train-log")
            command = gr.Textbox(label="The same run, headless", lines=1, max_lines=3, interactive=False,
                                 buttons=["copy"], elem_id="train-command")

    # The key never travels to a handler that does not need it.
    where = Form(**{name: c for name, c in data.form.components.items() if name != "mdc_key"})
    for trigger in where.inputs:
        trigger.change(where.event(summary), where.inputs, data_line, queue=False,
                       show_progress="hidden")
    run_state = gr.State(None)
    outputs = [watched, seen, status, loss_plot, eloss_plot, wer_plot, log, command, stop, run_state]
    timer = gr.Timer(REFRESH_SECONDS)
    # Ticks only read small files; hidden progress so the panel does not flash every 2 s.
    timer.tick(safe_refresh, [watched, seen], outputs, show_progress="hidden", concurrency_id="train-view",
               concurrency_limit=None)
    form = Form(data.form, model=model, rank=rank, alpha=alpha, dropout=dropout, targets=targets, epochs=epochs,
                learning_rate=lr, batch_size=batch, max_train=max_train, in8bit=in8bit, precision=precision,
                run_name=run_name, admin_password=admin_password, processes=processes)
    start.click(form.event(start_training), form.inputs, outputs,
                concurrency_id="train-control", concurrency_limit=1)
    stop.click(stop_training, [watched, admin_password], outputs, concurrency_id="train-control", concurrency_limit=1)
    return TrainTab(watched, seen, outputs, run_state)
