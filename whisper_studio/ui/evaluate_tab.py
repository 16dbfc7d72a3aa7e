"""Evaluate tab: WER of base vs adapted on held-out clips, and every utterance to read and hear.

The per-utterance table is HTML so each row can carry its own <audio> player and the word errors can be
marked inline; clips are served through Gradio's file route, which the app allows for the cache and runs
folders only (see ui.launch_kwargs).
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from whisper_studio import hosting
from whisper_studio.ui import common
from whisper_studio.ui.common import (
    EVAL_DEFAULT_MAX_CLIPS,
    PLOT_CLASS,
    UserMessage,
    empty_frame,
    esc,
    handler,
    progress_callback,
)

SORTS = [
    ("Dataset order", "order"),
    ("Adapted got better first", "better"),
    ("Adapted got worse first", "worse"),
    ("Most base errors first", "base"),
    ("Most adapted errors first", "adapted"),
]
WER_ORDER = ["base", "adapted", "base (norm.)", "adapted (norm.)"]
WER_COLUMNS = {"WER of": "str", "WER %": "float64"}

CSS = """
#eval-table table { width: 100%; border-collapse: collapse; font-size: 0.92em; }
#eval-table th, #eval-table td { border-bottom: 1px solid var(--border-color-primary); padding: 6px; vertical-align: top; text-align: left; }
#eval-table audio { width: 210px; height: 32px; }
#eval-table .ws-sub { background: #fde68a; color: #000; border-radius: 3px; padding: 0 2px; }
#eval-table .ws-ins { background: #bfdbfe; color: #000; border-radius: 3px; padding: 0 2px; }
#eval-table .ws-del { background: #fecaca; color: #000; text-decoration: line-through; border-radius: 3px; padding: 0 2px; }
#eval-table .better { color: #15803d; font-weight: 600; }
#eval-table .worse { color: #b91c1c; font-weight: 600; }
#eval-table .legend span { margin-right: 12px; }
"""


# --- Rows -------------------------------------------------------------------------------------------------
def _get(row: Any, *names: str, default=None):
    for name in names:
        value = row.get(name) if isinstance(row, dict) else getattr(row, name, None)
        if value is not None:
            return value
    return default


def _norm_op(op: str) -> str:
    op = str(op).lower()
    if op.startswith(("s", "r")):  # substitute / substitution / replace
        return "sub"
    if op.startswith("i"):
        return "ins"
    if op.startswith("d"):
        return "del"
    return "ok"


def marked(ref: str, hyp: str) -> tuple[str, int]:
    """The hypothesis as HTML with its word errors marked against the reference, and the error count."""
    from whisper_studio.evaluation import word_errors

    out, errors = [], 0
    for op, ref_word, hyp_word in word_errors(ref or "", hyp or ""):
        kind = _norm_op(op)
        if kind == "ok":
            out.append(esc(hyp_word if hyp_word is not None else ref_word))
            continue
        errors += 1
        if kind == "sub":
            out.append(f'<span class="ws-sub" title="reference: {esc(ref_word)}">{esc(hyp_word)}</span>')
        elif kind == "ins":
            out.append(f'<span class="ws-ins" title="inserted">{esc(hyp_word)}</span>')
        else:
            out.append(f'<span class="ws-del" title="missing">{esc(ref_word)}</span>')
    return " ".join(out) or "<i>(empty)</i>", errors


def _audio_url(path: str | None, run_dir: Path | None = None) -> str | None:
    if not path or not isinstance(path, str) or not Path(path).is_file():
        return None
    # Relative URL: works at the server root and behind a path prefix (Spaces, reverse proxies).
    if run_dir is not None:
        path = common.servable(path, run_dir / "eval_clips")
    return "gradio_api/file=" + urllib.parse.quote(str(Path(path).resolve()))


def table_rows(rows: list[Any], run_dir: Path | None = None) -> list[dict]:
    """Engine rows (objects or eval.json dicts) -> what the HTML table needs, computed once per evaluation."""
    out = []
    for i, row in enumerate(rows):
        ref = _get(row, "reference", "ref", "sentence", default="")
        base = _get(row, "base", "base_text", "hyp_base", default="")
        adapted = _get(row, "adapted", "adapted_text", "hyp_adapted", default="")
        base_html, base_err = marked(ref, base)
        adapted_html, adapted_err = marked(ref, adapted)
        out.append({
            "i": i + 1,
            "id": _get(row, "id", default=str(i + 1)),
            "audio": _audio_url(_get(row, "audio_path", "path", "audio"), run_dir),
            "ref": esc(ref),
            "base": base_html,
            "adapted": adapted_html,
            "base_err": base_err,
            "adapted_err": adapted_err,
            "words": max(1, len(str(ref).split())),
        })
    return out


def render_table(rows: list[dict], sort: str) -> str:
    if not rows:
        return "<p>No evaluation yet: choose a run and press <b>Evaluate</b>.</p>"
    key = {
        "better": lambda r: (r["adapted_err"] - r["base_err"], r["i"]),
        "worse": lambda r: (r["base_err"] - r["adapted_err"], r["i"]),
        "base": lambda r: (-r["base_err"], r["i"]),
        "adapted": lambda r: (-r["adapted_err"], r["i"]),
    }.get(sort, lambda r: r["i"])
    body = []
    for r in sorted(rows, key=key):
        delta = r["adapted_err"] - r["base_err"]
        cls, text = ("better", f"{delta:+d}") if delta < 0 else (("worse", f"{delta:+d}") if delta > 0 else ("", "0"))
        audio = f'<audio controls preload="none" src="{esc(r["audio"])}"></audio>' if r["audio"] else "–"
        body.append(
            f"<tr><td>{r['i']}</td><td>{audio}</td><td>{r['ref']}</td>"
            f"<td>{r['base']}<br><small>{r['base_err']} errors</small></td>"
            f"<td>{r['adapted']}<br><small>{r['adapted_err']} errors</small></td>"
            f'<td class="{cls}">{text}</td></tr>'
        )
    legend = ('<div class="legend"><span class="ws-sub">substituted</span><span class="ws-ins">inserted</span>'
              '<span class="ws-del">missing</span> · Δ = adapted errors − base errors (negative: adapted is better)</div>')
    return (f"{legend}<table><thead><tr><th>#</th><th>audio</th><th>reference</th><th>base</th><th>adapted</th>"
            f"<th>Δ</th></tr></thead><tbody>{''.join(body)}</tbody></table>")


def wer_frame(result: Any) -> pd.DataFrame:
    def pct(v):
        v = float(v)
        return round(v * 100 if v <= 1.5 else v, 2)  # fractions from the engine, percent on the chart

    values = zip(WER_ORDER, [_get(result, "base_wer"), _get(result, "adapted_wer"),
                             _get(result, "base_wer_normalized"), _get(result, "adapted_wer_normalized")])
    rows = [(k, pct(v)) for k, v in values if v is not None]
    return pd.DataFrame(rows, columns=list(WER_COLUMNS)).astype(WER_COLUMNS) if rows else empty_frame(**WER_COLUMNS)


def summary(result: Any, run_id: str) -> str:
    f = wer_frame(result).set_index("WER of")["WER %"].to_dict()
    n = _get(result, "n", default=len(_get(result, "rows", default=[]) or []))
    parts = [f"**{esc(run_id)}** on {n} held-out clips"]
    skipped = _get(result, "skipped", default=[]) or []
    if skipped:
        parts.append(f"{len(skipped)} undecodable clips skipped")
    if "base" in f and "adapted" in f:
        parts.append(f"WER base {f['base']:.1f}% → adapted {f['adapted']:.1f}%")
    if "base (norm.)" in f and "adapted (norm.)" in f:
        parts.append(f"normalized {f['base (norm.)']:.1f}% → {f['adapted (norm.)']:.1f}%")
    return " · ".join(parts)


def _outputs(result: Any, run_id: str, sort: str, run_dir: Path | None = None):
    rows = table_rows(_get(result, "rows", default=[]) or [], run_dir)
    return wer_frame(result), summary(result, run_id), rows, render_table(rows, sort)


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
    return _outputs(result, info.name, sort, Path(info.run_dir))


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
    progress(0, desc="Loading the model")
    result = _evaluate_on_gpu(info.run_dir, n, progress_callback(progress, "Transcribing"))
    return _outputs(result, info.name, sort, Path(info.run_dir))


@handler("Pushing to the hub")
def push(run_id, repo_id, token, merged, public):
    """Share the chosen run's adapter (or the merged model) on the hub; the token is used, never echoed."""
    from whisper_studio.sharing import push_run

    if not run_id:
        raise UserMessage("Choose a run with an adapter first.")
    info = common.find_run(run_id)
    url = push_run(info.run_dir, (repo_id or "").strip(), token=(token or "").strip() or None, merged=bool(merged),
                   private=not public)
    return f"Pushed {'the merged model' if merged else 'the adapter'} of **{esc(info.name)}** to {esc(url)}"


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
        with gr.Column(scale=3):
            # No `color=`: a colored native plot that starts empty draws nothing (bars or lines) in Gradio 6.
            wer_plot = gr.BarPlot(empty_frame(**WER_COLUMNS), x="WER of", y="WER %", sort=WER_ORDER, y_lim=[0, None],
                                  title="Word error rate, % (lower is better)", elem_id="wer-plot",
                                  elem_classes=PLOT_CLASS, height=260,
                                  caption="norm.: after Whisper's text normalizer (case, punctuation, spelling)")
        with gr.Column(scale=2):
            info = gr.Markdown(elem_id="eval-summary")
            sort = gr.Dropdown(SORTS, value="order", label="Sort utterances", elem_id="eval-sort")
    rows = gr.State([])
    table = gr.HTML(render_table([], "order"), elem_id="eval-table")

    with gr.Accordion("Share on the Hugging Face hub", open=False, elem_id="share"):
        with gr.Row():
            repo_id = gr.Textbox(label="Repository", placeholder="you/whisper-base-mr-lora", elem_id="push-repo",
                                 scale=2)
            token = gr.Textbox(label="Write token", type="password", placeholder="or set HF_TOKEN",
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
    go.click(evaluate, [run, max_clips, sort], outs, concurrency_id="model", concurrency_limit=1)
    push_btn.click(push, [run, repo_id, token, merged, public], push_result, concurrency_id="model",
                   concurrency_limit=1)
    sort.change(resort, [rows, sort], table, queue=False, show_progress="hidden")
    return run, refresh_runs
