"""Evaluate tab: WER and CER of base vs adapted on held-out clips, every utterance to read and hear, the
evaluation history of runs on the same data side by side, and the run's adapter to download or push.

The per-utterance table is HTML so each row can carry its own <audio> player and the word errors can be
marked inline (rendering: ui/evaluate_view.py); clips are served only as copies in the one served folder
(common.servable).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import gradio as gr

from whisper_studio import hosting
from whisper_studio.ui import common
from whisper_studio.ui.common import EVAL_DEFAULT_MAX_CLIPS, PLOT_CLASS, UserMessage, empty_frame, esc, handler
from whisper_studio.ui.evaluate_view import (  # noqa: F401 (marked/table_rows/render_table: the tab's API)
    CSS,
    SORTS,
    WER_COLUMNS,
    WER_ORDER,
    compare_table,
    marked,
    render_table,
    summary,
    table_rows,
    wer_frame,
)


def _outputs(result, run_name: str, sort: str):
    rows = table_rows(list(getattr(result, "rows", None) or []))
    return wer_frame(result), summary(result, run_name), rows, render_table(rows, sort)


# --- Handlers -----------------------------------------------------------------------------------------------
def run_choices() -> list[tuple[str, str]]:
    """Runs that have an adapter to compare (finished, or stopped after saving one)."""
    return common.adapter_run_choices()


@handler("Listing runs")
def refresh_runs(current):
    choices = run_choices()
    ids = [v for _, v in choices]
    value = current if current in ids else (ids[0] if ids else None)
    return gr.update(choices=choices, value=value)


@handler("Reading the last evaluation")
def show_saved(run_id, sort):
    """A run's eval.json from disk, if it has one, so results survive reloads and restarts."""
    empty = (empty_frame(**WER_COLUMNS), "", [], render_table([], sort))
    if not run_id:
        return empty
    from whisper_studio.evaluation import load_eval

    info = common.find_run(run_id)
    result = load_eval(info.run_dir)
    if result is None:
        return (*empty[:1], f"**{esc(info.name)}** has not been evaluated yet.", [], render_table([], sort))
    return _outputs(result, info.name, sort)


def clip_progress(progress, clock=time.monotonic):
    """evaluation's `progress(done, total, message)` -> the page's bar with "clips done/total · ETA"
    (evaluation.Eta: the pace after the first batch, so model loading does not count in it)."""
    from whisper_studio.evaluation import Eta

    eta = Eta(clock)

    def report(done, total=None, message=""):
        if isinstance(total, str) or not total:  # (fraction, message): loading, before the first batch
            progress(min(1.0, float(done)), desc=str(message or total or "Loading"))
            return
        text = f"{message or 'Transcribing'}: {int(done)}/{int(total)} clips"
        left = eta(int(done), int(total))
        if left is not None:
            text += f" · ETA {common.fmt_duration(left)}"
        progress(done / total if total else 0.0, desc=text)

    return report


@hosting.gpu(duration=120)
def _evaluate_on_gpu(run_dir, max_samples, report):
    """The GPU-bound part, on its own so that ZeroGPU lends a GPU for exactly this call."""
    from whisper_studio.evaluation import evaluate_run

    return evaluate_run(run_dir, max_samples=max_samples, progress=report)


@handler("Evaluating")
def evaluate(run_id, max_clips, sort, progress=gr.Progress()):
    if not run_id:
        raise UserMessage("Choose a run with an adapter first (train one on the Train tab).")
    info = common.find_run(run_id)
    if info.alive:
        raise UserMessage(f"Run {info.name} is still training; evaluate it when it has finished.")
    n = int(max_clips) if max_clips else None
    progress(0, desc="Loading the model and the clips")
    result = _evaluate_on_gpu(info.run_dir, n, clip_progress(progress))
    return _outputs(result, info.name, sort)


@handler("Pushing to the hub")
def push(run_id, repo_id, token, merged, public, admin_password=None):
    """Share the chosen run's adapter (or the merged model) on the hub. The token is the one typed here (never
    the server's environment), used once, never echoed; on a public Space the admin password is needed too."""
    from whisper_studio.sharing import push_run

    hosting.require_admin(admin_password)
    if not run_id:
        raise UserMessage("Choose a run with an adapter first.")
    info = common.find_run(run_id)
    url = push_run(info.run_dir, (repo_id or "").strip(), token=(token or "").strip() or None, merged=bool(merged),
                   private=not public, allow_env_token=False)
    return f"Pushed {'the merged model' if merged else 'the adapter'} of **{esc(info.name)}** to {esc(url)}"


def _zip_folder(folder: Path, target: Path) -> Path:
    """folder -> target (.zip), written atomically; reused while it is newer than every file in folder."""
    newest = max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)
    if target.is_file() and target.stat().st_mtime >= newest:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.{time.monotonic_ns()}")
    archive = Path(shutil.make_archive(str(tmp), "zip", root_dir=folder))
    os.replace(archive, target)
    return target


def _download_dir(run_id: str) -> Path:
    return common.served_dir() / "downloads" / run_id


@handler("Preparing the download")
def download_adapter(run_id):
    """The run's adapter folder (PEFT format + model card) as one zip the browser downloads."""
    if not run_id:
        raise UserMessage("Choose a run with an adapter first.")
    info = common.find_run(run_id)
    if not info.has_adapter:
        raise UserMessage(f"Run {info.name} has no adapter (yet).")
    from whisper_studio import runfolder

    return str(_zip_folder(Path(info.run_dir) / runfolder.ADAPTER, _download_dir(info.run_id) / f"{info.run_id}-adapter.zip"))


@handler("Preparing the merged model")
def download_merged(run_id, admin_password=None, progress=gr.Progress()):
    """The adapter merged into its base: a plain transformers model folder, zipped (minutes and ~2x the base's
    size on disk, so on a public Space it needs the admin password)."""
    hosting.require_admin(admin_password)
    if not run_id:
        raise UserMessage("Choose a run with an adapter first.")
    info = common.find_run(run_id)
    if not info.has_adapter:
        raise UserMessage(f"Run {info.name} has no adapter (yet).")
    from whisper_studio.export import export_merged

    target = _download_dir(info.run_id) / f"{info.run_id}-merged.zip"
    adapter_time = (Path(info.run_dir) / "adapter" / "adapter_config.json").stat().st_mtime
    if target.is_file() and target.stat().st_mtime >= adapter_time:
        return str(target)
    progress(0.1, desc="Merging the adapter into the base model")
    work = target.parent / f".merged-{os.getpid()}-{time.monotonic_ns()}"
    try:
        export_merged(info.run_dir, work / "model")
        progress(0.8, desc="Zipping")
        return str(_zip_folder(work / "model", target))
    finally:
        shutil.rmtree(work, ignore_errors=True)


@handler("Comparing evaluations")
def compare(run_ids):
    """Every saved evaluation of the chosen runs, grouped by the data they scored."""
    from whisper_studio.evaluation import list_evals

    entries = []
    for run_id in run_ids or []:
        info = common.find_run(run_id)
        for result in list_evals(info.run_dir):
            entries.append((info.name, info.config, result))
    return compare_table(entries)


def compare_choices(current):
    choices = run_choices()
    ids = [v for _, v in choices]
    return gr.update(choices=choices, value=[current] if current in ids else [])


def resort(rows, sort):
    return render_table(rows or [], sort)


def build() -> tuple[gr.Dropdown, callable]:
    with gr.Row(equal_height=True):
        run = gr.Dropdown([], label="Run (with an adapter)", elem_id="run-select", scale=3, allow_custom_value=False)
        refresh = gr.Button("↻ Refresh", elem_id="run-refresh", scale=0, min_width=100, size="sm")
        max_clips = gr.Number(EVAL_DEFAULT_MAX_CLIPS, label="Max clips", precision=0, minimum=1, scale=1,
                              elem_id="eval-max")
        go = gr.Button("Evaluate", variant="primary", elem_id="eval-btn", scale=1)
    with gr.Row():
        with gr.Column(scale=2):
            # No `color=`: a colored native plot that starts empty draws nothing (bars or lines) in Gradio 6.
            wer_plot = gr.BarPlot(empty_frame(**WER_COLUMNS), x="WER of", y="WER %", sort=WER_ORDER, y_lim=[0, None],
                                  title="Word error rate, % (lower is better)", elem_id="wer-plot",
                                  elem_classes=PLOT_CLASS, height=260, y_axis_format=".0f",
                                  caption="norm.: after the normalizer named beside the chart")
        with gr.Column(scale=3):
            info = gr.Markdown(elem_id="eval-summary")
            sort = gr.Dropdown(SORTS, value="order", label="Sort utterances", elem_id="eval-sort")
    rows = gr.State([])
    table = gr.HTML(render_table([], "order"), elem_id="eval-table")

    with gr.Accordion("History: evaluations of several runs side by side", open=False, elem_id="compare"):
        with gr.Row(equal_height=True):
            compare_runs = gr.Dropdown([], multiselect=True, label="Runs", elem_id="compare-runs", scale=4)
            compare_btn = gr.Button("Compare", elem_id="compare-btn", scale=1)
        compare_out = gr.Markdown(elem_id="eval-compare")

    admin_needed = hosting.on_spaces() or bool(os.environ.get(hosting.ADMIN_PASSWORD_ENV))
    with gr.Accordion("Download or share the adapter", open=False, elem_id="share"):
        admin_password = gr.Textbox(label="Admin password", type="password", elem_id="eval-admin-password",
                                    visible=admin_needed, info="pushing and merging on this deployment need it")
        with gr.Row():
            dl_adapter = gr.Button("⬇ Adapter (zip)", elem_id="download-adapter-btn", scale=1)
            dl_merged = gr.Button("⬇ Merged model (zip)", elem_id="download-merged-btn", scale=1)
            download_file = gr.File(label="Download", interactive=False, elem_id="download-file", scale=2)
        with gr.Row():
            repo_id = gr.Textbox(label="Repository", placeholder="you/whisper-base-mr-lora", elem_id="push-repo",
                                 scale=2)
            token = gr.Textbox(label="Write token", type="password", placeholder="hf_…, needs write access",
                               elem_id="push-token", scale=2)
            merged = gr.Checkbox(label="Merged full model", value=False, elem_id="push-merged", scale=1)
            public = gr.Checkbox(label="Public", value=False, elem_id="push-public", scale=1)
            push_btn = gr.Button("Push", elem_id="push-btn", scale=1)
        push_result = gr.Markdown(elem_id="push-result")

    outs = [wer_plot, info, rows, table]
    # Refresh re-lists the runs and re-reads the chosen run's eval.json (an evaluation run from the command line
    # since, or one that finished while the page was open, appears without re-choosing the run).
    refresh.click(refresh_runs, run, run, queue=False).then(show_saved, [run, sort], outs, show_progress="hidden")
    run.change(show_saved, [run, sort], outs, show_progress="hidden")
    run.change(compare_choices, run, compare_runs, queue=False, show_progress="hidden")
    go.click(evaluate, [run, max_clips, sort], outs, concurrency_id="model", concurrency_limit=1,
             api_name="evaluate_run")
    compare_btn.click(compare, compare_runs, compare_out)
    dl_adapter.click(download_adapter, run, download_file, api_name="download_adapter")
    dl_merged.click(download_merged, [run, admin_password], download_file, concurrency_id="model",
                    concurrency_limit=1, api_name="download_merged")
    push_btn.click(push, [run, repo_id, token, merged, public, admin_password], push_result, concurrency_id="model",
                   concurrency_limit=1, api_name="push_run")
    sort.change(resort, [rows, sort], table, queue=False, show_progress="hidden")
    return run, refresh_runs
