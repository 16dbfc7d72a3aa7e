"""The Whisper Studio browser UI: one Gradio Blocks app, one module per tab.

`build_app()` returns the Blocks; `launch_kwargs()` the arguments `launch()` needs (the CSS, and the one folder
whose files the page may fetch: `common.served_dir()`, copies of clips that decoded as audio — never the cache or
the runs folder as a whole, which hold gated archives, configs and logs)."""

from __future__ import annotations

import gradio as gr

from whisper_studio.ui import data_tab, evaluate_tab, record_tab, train_tab, try_tab
from whisper_studio.ui.common import PLOT_CSS, served_dir

TITLE = "Whisper Studio"
TAB_IDS = {"Data": "data", "Record": "record", "Train": "train", "Evaluate": "evaluate", "Try it": "try"}

CSS = evaluate_tab.CSS + PLOT_CSS + """
#train-status { min-height: 3em; }
footer { display: none !important; }
"""


def build_app() -> gr.Blocks:
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f"## 🎙️ {TITLE}  \nFine-tune Whisper on a Common Voice language with LoRA on an 8-bit base, "
                    "then judge the result by ear and by number.")
        with gr.Tabs() as tabs:
            with gr.Tab("Data", id="data"):
                data = data_tab.build()
            with gr.Tab("Record", id="record"):
                record_tab.build(data)
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
        # A reload stays on the tab the user was on; a finished run's button opens its result on Evaluate.
        train_tab.remember_tab(demo, tabs, TAB_IDS, train)
        train.to_evaluate.click(lambda run: (gr.Tabs(selected="evaluate"), run), train.watched, [tabs, run_select],
                                queue=False, show_progress="hidden")
    return demo


def launch_kwargs() -> dict:
    return {
        "allowed_paths": [str(served_dir())],
        "css": CSS,
        "ssr_mode": False,  # server-side rendering needs Node and slows the first page
        "footer_links": [],
    }
