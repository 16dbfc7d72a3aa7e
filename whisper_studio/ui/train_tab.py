"""Train tab: LoRA settings, what the run will cost, Start/Stop/Kill/Resume, and a live view of the run folder
(loss and probe-WER plots, progress, log tail; ui/train_view.py).

The page never talks to the training process: it starts it through JobManager and then only reads the run
folder (status.json, metrics.jsonl, train.log), so a page reload or an app restart shows the same run again,
with the live run's settings back in the form.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from whisper_studio import hosting, sources
from whisper_studio.ui import common, data_tab, train_view
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
    handler,
)
from whisper_studio.ui.data_tab import DataTab
from whisper_studio.ui.train_view import (  # noqa: F401 (the tab's API, used by tests and the app)
    EVAL_LOSS_COLUMNS,
    LOSS_COLUMNS,
    N_OUTPUTS,
    WER_COLUMNS,
    frames,
    refresh,
    status_line,
)

EIGHT_BIT_CHOICES = [("auto (on for a GPU, off on CPU)", "auto"), ("8-bit", "on"), ("full precision", "off")]
# Form fields of the Train tab that a live run's config.json fills back in after a reload: name -> how to read it.
RESTORED = {
    "model": lambda c: c.model, "rank": lambda c: c.lora.rank, "alpha": lambda c: c.lora.alpha,
    "dropout": lambda c: c.lora.dropout, "targets": lambda c: list(c.lora.target_modules),
    "epochs": lambda c: c.epochs, "learning_rate": lambda c: c.learning_rate, "batch_size": lambda c: c.batch_size,
    "max_train": lambda c: c.max_train_samples, "warmup_steps": lambda c: c.warmup_steps,
    "in8bit": lambda c: _eight_bit_choice(c.load_in_8bit), "precision": lambda c: c.precision,
    "run_name": lambda c: c.run_name or "", "final_eval_clips": lambda c: c.final_eval_clips,
    "language": lambda c: c.language, "kind": lambda c: c.source.kind,
}


def model_choices() -> list[tuple[str, str]]:
    """Bundled and hub models from the catalog, plus local folders named in WHISPER_STUDIO_EXTRA_MODELS."""
    from whisper_studio.models import catalog

    out = [(info.label, info.id) for info in catalog()]
    for path in filter(None, (os.environ.get(EXTRA_MODELS_ENV) or "").split(os.pathsep)):
        out.append((f"{Path(path).name} (local folder)", path))
    return out


def check_model(model: str | None) -> str:
    """The model a visitor chose, stripped. A listed model (catalog, WHISPER_STUDIO_EXTRA_MODELS) is fine
    anywhere; anything else that names a folder on this server is refused on a Space (hosting's rule for
    visitor-typed paths), since models.resolve would read it."""
    from pathlib import Path

    text = str(model or "").strip()
    if not text:
        raise UserMessage("Choose a model first.")
    if text in {value for _, value in model_choices()}:
        return text
    from whisper_studio.models.hub import is_hub_id

    if not is_hub_id(text) or Path(text).expanduser().exists():
        hosting.refuse_local_path("a model folder")
    return text


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
    to_evaluate: gr.Button | None = None  # "see it on the Evaluate tab" (the app wires the tab switch)


def safe_refresh(watched: str | None, seen: str | None):
    """The timer's and page load's refresh: a run folder that cannot be read right now (half-deleted, a
    hand-edited config) must not raise an error toast every 2 s; it is logged and the view is left as it is."""
    try:
        return refresh(watched, seen)
    except Exception:  # noqa: BLE001 - logged; the next tick tries again
        common.log.warning("could not refresh the run view", exc_info=True)
        return tuple(gr.skip() for _ in range(N_OUTPUTS))


def check_admin(password: str | None) -> None:
    """Training where it is offered at all (not on ZeroGPU), then the one admin rule (hosting.require_admin)."""
    policy = hosting.training_policy()
    if not policy.offered:
        raise UserMessage(policy.reason)
    hosting.require_admin(password, "Starting and stopping training")


# --- the form -> a TrainConfig ------------------------------------------------------------------------------
def _as_int(value, what: str) -> int:
    f = _as_float(value, what, whole=True)
    return int(f)


def _as_float(value, what: str, *, whole: bool = False) -> float:
    """A number typed in the form, or a message naming the field ("abc", "", NaN and infinities refused)."""
    kind = "a whole number" if whole else "a number"
    try:
        f = float(str(value).strip()) if value is not None else float("nan")
    except (TypeError, ValueError):
        raise UserMessage(f"{what} must be {kind} (got {value!r}).") from None
    if f != f or f in (float("inf"), float("-inf")) or (whole and f != int(f)):
        raise UserMessage(f"{what} must be {kind} (got {value!r}).")
    return f


def _eight_bit(value) -> bool | str:
    if isinstance(value, bool):
        return value
    return {"on": True, "off": False}.get(str(value or "auto"), "auto")


def _eight_bit_choice(value) -> str:
    return "auto" if value == "auto" else ("on" if value else "off")


def train_config(values: dict):
    """The Train tab's form values (the Data tab's source fields, then the settings) -> a validated TrainConfig."""
    from whisper_studio.config import LoraSpec

    v = values
    src = data_tab.source_config(v)  # resolves the language once; the config takes its locale
    model = check_model(v.get("model"))
    max_train, final_clips = v.get("max_train"), v.get("final_eval_clips")
    warmup = v.get("warmup_steps")
    return dataclasses.replace(
        TRAIN_DEFAULTS,
        model=model,
        language=src.language,
        source=src,
        lora=LoraSpec(rank=_as_int(v.get("rank"), "LoRA rank"), alpha=_as_float(v.get("alpha"), "LoRA alpha"),
                      dropout=_as_float(v.get("dropout") or 0, "Dropout"),
                      target_modules=tuple(v.get("targets") or ())),
        epochs=_as_float(v.get("epochs"), "Epochs"),
        learning_rate=_as_float(v.get("learning_rate"), "Learning rate"),
        warmup_steps=_as_int(warmup, "Warm-up steps") if warmup not in (None, "") else TRAIN_DEFAULTS.warmup_steps,
        batch_size=_as_int(v.get("batch_size"), "Batch size"),
        max_train_samples=_as_int(max_train, "Max train clips") if max_train else None,
        final_eval_clips=(_as_int(final_clips, "Closing evaluation clips") if final_clips not in (None, "")
                          else TRAIN_DEFAULTS.final_eval_clips),
        load_in_8bit=_eight_bit(v.get("in8bit")),
        precision=v.get("precision") or "auto",
        run_name=(v.get("run_name") or "").strip() or None,
        num_processes=_as_int(v.get("processes") or 1, "Processes"),
    )


def closing_clips(cfg) -> int | None:
    """The closing evaluation's clip count as the job reads it: None means max_test_samples."""
    return cfg.final_eval_clips if cfg.final_eval_clips is not None else cfg.max_test_samples


def _secrets(values: dict) -> dict[str, str] | None:
    """The MDC key typed on the Data tab, for the job's stdin only (never os.environ, a file or the page)."""
    key = (values.get("mdc_key") or "").strip()
    return {"mdc_api_key": key} if key else None


def _release_ui_model() -> None:
    """Free the Try it / Evaluate model before a job trains: both take the default device (a GPU when there is
    one), where the UI's resident model would take the memory the job needs. Not loaded yet: nothing to do."""
    if "whisper_studio.transcribe" in sys.modules:
        from whisper_studio import transcribe

        transcribe.release_transcriber()


# --- handlers ---------------------------------------------------------------------------------------------
@handler("Starting the training")
def start_training(values: dict):
    """Start a run from the Train tab's form values."""
    check_admin(values.get("admin_password"))
    cfg = train_config(values)
    info = common.job_manager().start(cfg, secrets=_secrets(values))
    _release_ui_model()
    gr.Info(f"Started run {info.run_id}.")
    return refresh(info.run_id, None)


def _current_run(mgr, watched):
    active = mgr.active()
    run_id = active.run_id if active is not None else watched
    if not run_id:
        raise UserMessage("No run is going on.")
    return run_id


@handler("Stopping the training")
def stop_training(watched, admin_password=None):
    """Ask the job to stop: it saves its adapter at the end of the current step (the state reads "stopping")."""
    check_admin(admin_password)
    mgr = common.job_manager()
    info = mgr.stop(_current_run(mgr, watched))
    gr.Info(f"Run {info.run_id} is {'stopping: it saves its adapter first' if info.state == 'stopping' else info.state}.")
    return refresh(info.run_id, None)


@handler("Killing the training")
def kill_training(watched, admin_password=None):
    """End the job at once (SIGKILL of its process group): steps since the last checkpoint are lost."""
    check_admin(admin_password)
    mgr = common.job_manager()
    info = mgr.stop(_current_run(mgr, watched), kill=True)
    gr.Info(f"Run {info.run_id} was killed.")
    return refresh(info.run_id, None)


@handler("Resuming the training")
def resume_training(watched, admin_password=None, mdc_key=None):
    """Relaunch a stopped or failed run from its last checkpoint."""
    check_admin(admin_password)
    if not watched:
        raise UserMessage("Choose a stopped run to resume first.")
    info = common.job_manager().resume(watched, secrets=_secrets({"mdc_key": mdc_key}))
    _release_ui_model()
    gr.Info(f"Resumed run {info.run_id}.")
    return refresh(info.run_id, None)


def restore_form(run_id: str | None, names: tuple[str, ...]):
    """After a reload (or a run started elsewhere) the form shows the live run's settings, not the defaults.
    Finished runs leave the form as the user set it. The MDC key is never filled in."""
    skip = tuple(gr.skip() for _ in names)
    if not run_id:
        return skip
    try:
        info = common.job_manager().get(run_id)
    except Exception:  # noqa: BLE001 - gone meanwhile
        return skip
    if not info.alive or info.config is None:
        return skip
    cfg = info.config
    source_fields = {item.key: item.field for item in sources.get(cfg.source.kind).ui_inputs() if item.field}
    out = []
    for name in names:
        if name in RESTORED:
            out.append(RESTORED[name](cfg))
        elif name in source_fields:
            out.append(getattr(cfg.source, source_fields[name]) or "")
        else:
            out.append(gr.skip())
    return tuple(out)


def cost(values: dict) -> str:
    """The estimate shown before Start; a form that does not make a valid config says what is wrong."""
    try:
        cfg = train_config(values)
    except Exception as exc:  # noqa: BLE001 - shown in place of the estimate, Start reports it too
        return f"_{esc(exc)}_"
    note = ""
    try:
        from whisper_studio.config import resolve_8bit

        on, why = resolve_8bit(cfg.load_in_8bit, "cuda" if hosting.visible_gpus() else "cpu")
        note = f"8-bit base: {'on' if on else 'off'} ({why})"
    except Exception:  # noqa: BLE001 - the note is decoration
        common.log.debug("8-bit note failed", exc_info=True)
    return train_view.cost_text(train_view.estimate(cfg, closing_clips(cfg)), note)


def remember_tab(demo: gr.Blocks, tabs: gr.Tabs, ids: dict[str, str], train: TrainTab | None = None) -> None:
    """The app's tab choice survives a reload: kept in the browser (localStorage), re-selected on load.
    `ids` maps each tab's label to its id. With `train`, its plots are re-sent once the tab is back: a plot
    that got its data while its tab was being selected is not drawn (Gradio 6.31)."""
    stored = gr.BrowserState(None, storage_key="whisper-studio-tab")

    def chosen(evt: gr.SelectData):
        return ids.get(evt.value, evt.value)

    def restore(tab):
        return gr.Tabs(selected=tab) if tab else gr.skip(), None

    tabs.select(chosen, None, stored, queue=False, show_progress="hidden")
    outputs = [tabs, train.seen] if train is not None else [tabs]
    demo.load(restore if train is not None else (lambda tab: restore(tab)[0]), stored, outputs, queue=False,
              show_progress="hidden")


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
                epochs = gr.Number(D.epochs, label="Epochs", minimum=0.1, elem_id="epochs", min_width=70)
                lr = gr.Number(D.learning_rate, label="Learning rate", elem_id="learning-rate", min_width=70)
                batch = gr.Number(D.batch_size, label="Batch", precision=0, minimum=1, elem_id="batch-size",
                                  min_width=70)
                max_train = gr.Number(D.max_train_samples, label="Max clips", precision=0,
                                      minimum=1, elem_id="max-train", min_width=70)
            with gr.Row():
                warmup = gr.Number(D.warmup_steps, label="Warm-up steps", precision=0, minimum=0,
                                   elem_id="warmup-steps", min_width=90)
                final_clips = gr.Number(closing_clips(D), label="Closing evaluation clips", precision=0,
                                        minimum=0, elem_id="final-eval-clips", min_width=90,
                                        info="base vs adapted after training; 0 skips it")
            in8bit = gr.Radio(EIGHT_BIT_CHOICES, value=_eight_bit_choice(D.load_in_8bit),
                              label="Base model in 8-bit", info=EIGHT_BIT_INFO, elem_id="in8bit")
            with gr.Row():
                precision = gr.Dropdown(list(PRECISIONS), value=D.precision, label="Precision",
                                        elem_id="precision", min_width=90,
                                        info="auto: bf16 where the hardware is fast at it")
                run_name = gr.Textbox(label="Run name", placeholder="optional", elem_id="run-name", min_width=90,
                                      info="names the run folder")
        with gr.Column(scale=3, min_width=440):
            priced_defaults: dict = {}  # filled below, once the form exists; read at each page load
            cost_line = gr.Markdown(lambda: cost(priced_defaults), elem_id="train-cost")
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="start-btn", interactive=policy.offered)
                stop = gr.Button("Stop", variant="stop", elem_id="stop-btn", interactive=False)
                kill = gr.Button("Kill now", variant="stop", elem_id="kill-btn", visible=False)
                resume = gr.Button("Resume", elem_id="resume-btn", visible=False)
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
            to_evaluate = gr.Button("See the result on the Evaluate tab →", size="sm", elem_id="goto-evaluate",
                                    visible=False)
            # One series per plot and no `color=`: a colored LinePlot that starts empty draws no stroke.
            with gr.Row():
                loss_plot = gr.LinePlot(empty_frame(**LOSS_COLUMNS), x="step", y="loss", title="Training loss",
                                        elem_id="loss-plot", elem_classes=PLOT_CLASS, height=220,
                                        x_axis_format="d", y_axis_format=".3~f", x_lim=[0, 1])
                wer_plot = gr.LinePlot(empty_frame(**WER_COLUMNS), x="step", y="WER %",
                                       title="Probe WER, % (16 test clips, generated text)", elem_id="wer-curve",
                                       elem_classes=PLOT_CLASS, height=220, visible=False, x_axis_format="d",
                                       y_axis_format=".1~f", x_lim=[0, 1])
            eloss_plot = gr.LinePlot(empty_frame(**EVAL_LOSS_COLUMNS), x="step", y="eval loss", title="Eval loss",
                                     elem_id="eval-loss-plot", elem_classes=PLOT_CLASS, height=160, visible=False,
                                     x_axis_format="d", y_axis_format=".3~f", x_lim=[0, 1])
            log = gr.Textbox(label="train.log (tail)", lines=train_view.LOG_LINES, max_lines=40, interactive=False,
                             autoscroll=True, elem_id="train-log")
            command = gr.Textbox(label="The same run, headless", lines=1, max_lines=3, interactive=False,
                                 buttons=["copy"], elem_id="train-command")

    # The key never travels to a handler that does not need it.
    # The data summary needs no secret: neither the key nor the password travels to its handler.
    where = Form(**{name: c for name, c in data.form.components.items() if name not in ("mdc_key", "admin_password")})
    for trigger in where.inputs:
        trigger.change(where.event(summary), where.inputs, data_line, queue=False, show_progress="hidden")
    run_state = gr.State(None)
    outputs = [watched, seen, status, loss_plot, eloss_plot, wer_plot, log, command, stop, run_state, kill, resume,
               to_evaluate]
    timer = gr.Timer(REFRESH_SECONDS)
    # Ticks only read small files; hidden progress so the panel does not flash every 2 s.
    timer.tick(safe_refresh, [watched, seen], outputs, show_progress="hidden", concurrency_id="train-view",
               concurrency_limit=None)
    form = Form(data.form, model=model, rank=rank, alpha=alpha, dropout=dropout, targets=targets, epochs=epochs,
                learning_rate=lr, batch_size=batch, max_train=max_train, warmup_steps=warmup,
                final_eval_clips=final_clips, in8bit=in8bit, precision=precision, run_name=run_name,
                admin_password=admin_password, processes=processes)
    start.click(form.event(start_training), form.inputs, outputs, concurrency_id="train-control",
                concurrency_limit=1, api_name="start_training")
    stop.click(stop_training, [watched, admin_password], outputs, concurrency_id="train-control",
               concurrency_limit=1, api_name="stop_training")
    kill.click(kill_training, [watched, admin_password], outputs, concurrency_id="train-control",
               concurrency_limit=1, api_name="kill_training")
    resume.click(resume_training, [watched, admin_password, data.form["mdc_key"]], outputs,
                 concurrency_id="train-control", concurrency_limit=1, api_name="resume_training")
    # The estimate follows every field it depends on; the key and the password are left out of it.
    priced = Form(**{n: c for n, c in form.components.items() if n not in ("mdc_key", "admin_password")})
    priced_defaults.update({n: c.value for n, c in priced.components.items()})
    for trigger in priced.inputs:
        trigger.change(priced.event(cost), priced.inputs, cost_line, show_progress="hidden",
                       concurrency_id="train-view", concurrency_limit=None)
    # A run picked up from disk (page load, a run started elsewhere) fills the form with its settings.
    names = tuple(n for n in form.components if n not in ("mdc_key", "admin_password", "processes"))
    watched.change(functools.partial(restore_form, names=names), watched, [form[n] for n in names],
                   show_progress="hidden")
    return TrainTab(watched, seen, outputs, run_state, to_evaluate)
