"""The Whisper Studio browser UI: one Gradio Blocks app, one module per tab.

`build_app()` returns the Blocks; `launch_kwargs()` the arguments `launch()` needs (the CSS, and the folders
whose files the page may play: the cache, holding dataset clips, and the runs folder)."""

from __future__ import annotations

import gradio as gr

from whisper_studio.ui import data_tab, evaluate_tab, train_tab, try_tab
from whisper_studio.ui.common import PLOT_CSS

TITLE = "Whisper Studio"

CSS = evaluate_tab.CSS + PLOT_CSS + """
#train-status { min-height: 3em; }
footer { display: none !important; }
"""


def build_app() -> gr.Blocks:
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f"## 🎙️ {TITLE}  \nFine-tune Whisper on a Common Voice language with LoRA on an 8-bit base, "
                    "then judge the result by ear and by number.")
        with gr.Tabs():
            with gr.Tab("Data", id="data"):
                data = data_tab.build()
            with gr.Tab("Train", id="train"):
                train = train_tab.build(data)
            with gr.Tab("Evaluate", id="evaluate"):
                run_select, refresh_runs = evaluate_tab.build()
            with gr.Tab("Try it", id="try"):
                adapter_select, refresh_adapters = try_tab.build()
        # Everything below reads the disk, so a reload or an app restart shows the live (or latest) run, and
        # runs finished since the page was built appear in the dropdowns.
        demo.load(train_tab.safe_refresh, [train.watched, train.seen], train.outputs, show_progress="hidden")
        demo.load(refresh_runs, run_select, run_select, show_progress="hidden")
        demo.load(refresh_adapters, adapter_select, adapter_select, show_progress="hidden")
        # A run that starts or ends (finished: it has an adapter now) is listed on Evaluate and Try it at once.
        train.run_state.change(refresh_runs, run_select, run_select, show_progress="hidden")
        train.run_state.change(refresh_adapters, adapter_select, adapter_select, show_progress="hidden")
    return demo


def launch_kwargs() -> dict:
    from whisper_studio.paths import cache_dir, runs_dir

    return {
        "allowed_paths": [str(cache_dir()), str(runs_dir())],
        "css": CSS,
        "ssr_mode": False,  # server-side rendering needs Node and slows the first page
        "footer_links": [],
    }
