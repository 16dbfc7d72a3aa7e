"""Data tab: choose a Common Voice language and a source, load it, see its size and hear a few clips."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from whisper_studio.ui.common import DEFAULT_LANGUAGE, SAMPLES_SHOWN, esc, handler, progress_callback, servable

SOURCE_CHOICES = [
    ("Demo — synthetic eSpeak NG speech", "demo"),
    ("Common Voice via the Mozilla Data Collective", "mdc"),
    ("Local Common Voice folder", "cv-folder"),
    ("Hugging Face dataset", "hub"),
]

# The training job reads MDC_API_KEY from its environment; a key typed in the page is put in ours only while the
# job is launched (it inherits a copy), under this lock, and never written to disk, logged or sent back.


@dataclass
class DataTab:
    language: gr.Dropdown
    source: gr.Radio
    mdc_key: gr.Textbox
    mdc_id: gr.Textbox
    folder: gr.Textbox
    hub_id: gr.Textbox
    hub_config: gr.Textbox
    hub_audio: gr.Textbox
    hub_text: gr.Textbox

    @property
    def source_inputs(self) -> list:
        """The components that together describe the source; the Train tab takes them as inputs too."""
        return [self.language, self.source, self.mdc_id, self.folder, self.hub_id, self.hub_config,
                self.hub_audio, self.hub_text]


def source_config(language, kind, mdc_id, folder, hub_id, hub_config, hub_audio, hub_text):
    """Page values -> SourceConfig (validated; ConfigError names what is missing)."""
    from whisper_studio.config import SourceConfig
    from whisper_studio.languages import resolve

    locale = resolve(language).locale
    kind = kind or "demo"
    strip = lambda v: (v or "").strip() or None  # noqa: E731
    if kind == "mdc":
        return SourceConfig(kind="mdc", language=locale, dataset_id=strip(mdc_id))
    if kind == "cv-folder":
        return SourceConfig(kind="cv-folder", language=locale, path=strip(folder))
    if kind == "hub":
        return SourceConfig(kind="hub", language=locale, dataset_id=strip(hub_id), hub_config=strip(hub_config),
                            audio_column=strip(hub_audio) or "audio", text_column=strip(hub_text) or "sentence")
    return SourceConfig(kind="demo", language=locale)


@handler("Loading the data")
def load_data(language, kind, mdc_key, mdc_id, folder, hub_id, hub_config, hub_audio, hub_text,
              progress=gr.Progress()):
    """Load the source and show its size and a few samples. A wrong key, folder or id is the usual outcome of a
    first try, so its message stays in the page (status line) as well as in a toast."""
    from whisper_studio.errors import StudioError

    try:
        return _load(language, kind, mdc_key, mdc_id, folder, hub_id, hub_config, hub_audio, hub_text, progress)
    except StudioError as exc:
        gr.Warning(str(exc), title="Could not load the data")
        hidden = [gr.update(value=None, visible=False)] * SAMPLES_SHOWN
        blank = [gr.update(value="", visible=False)] * SAMPLES_SHOWN
        return [f"❌ **Could not load the data.** {esc(exc)}", [], *hidden, *blank]


def _load(language, kind, mdc_key, mdc_id, folder, hub_id, hub_config, hub_audio, hub_text, progress):
    from whisper_studio import data
    from whisper_studio.paths import cache_dir

    src = source_config(language, kind, mdc_id, folder, hub_id, hub_config, hub_audio, hub_text)
    progress(0, desc="Reading the source")
    report = data.LoadReport()
    # The key goes to this one call only; it is never returned to the page, logged or saved.
    dsd = data.load_source(src, progress=progress_callback(progress, "Loading"),
                           api_key=(mdc_key or "").strip() or None, report=report)
    progress(0.95, desc="Measuring clips")
    summary = data.summarize(dsd)
    table = [[split, int(v["clips"]), round(float(v["hours"]), 3)] for split, v in summary.items()]
    split = "train" if "train" in dsd else next(iter(dsd))
    rows = data.sample_rows(dsd, split, SAMPLES_SHOWN)
    for row in rows:  # clips in a local Common Voice folder lie outside what the server may serve
        row["path"] = servable(row["path"], cache_dir() / "ui-samples")
    players, texts = [], []
    for i in range(SAMPLES_SHOWN):
        if i < len(rows):
            players.append(gr.update(value=rows[i]["path"], visible=True, label=f"Sample {i + 1} ({split})"))
            texts.append(gr.update(value=rows[i].get("sentence", ""), visible=True))
        else:
            players.append(gr.update(value=None, visible=False))
            texts.append(gr.update(value="", visible=False))
    total = sum(int(v["clips"]) for v in summary.values())
    hours = sum(float(v["hours"]) for v in summary.values())
    lines = [f"✅ Loaded the **{esc(dict((v, k) for k, v in SOURCE_CHOICES)[src.kind])}** source for "
             f"**{esc(src.language)}**: {total} clips, {hours:.2f} hours."]
    if report.synthetic:
        lines.append("Synthetic eSpeak NG speech: it shows the mechanism; it does not teach real accents.")
    for split_name, n in (report.missing_clips or {}).items():
        if n:
            lines.append(f"⚠️ {n} {esc(split_name)} rows skipped: their clip file is missing.")
    lines += [esc(note) for note in report.notes]
    return ["  \n".join(lines), table, *players, *texts]


def _visibility(kind):
    return (gr.update(visible=kind == "mdc"), gr.update(visible=kind == "cv-folder"), gr.update(visible=kind == "hub"))


def build() -> DataTab:
    from whisper_studio.languages import choices

    gr.Markdown("Pick a **Common Voice language** and where its clips come from, then **Load** to check them. "
                "The Train tab trains on what is chosen here.")
    with gr.Row():
        language = gr.Dropdown(choices(), value=DEFAULT_LANGUAGE, label="Language (Common Voice locale)",
                               filterable=True, elem_id="language", scale=1,
                               info="Type to search by English name, native name or code.")
        source = gr.Radio(SOURCE_CHOICES, value="demo", label="Source", elem_id="source", scale=2)
    with gr.Group(visible=False) as mdc_box:
        with gr.Row():
            mdc_key = gr.Textbox(label="Mozilla Data Collective API key", type="password", elem_id="mdc-key",
                                 placeholder="leave empty to use MDC_API_KEY from the environment",
                                 info="Used for this download only; never stored or shown.")
            mdc_id = gr.Textbox(label="MDC dataset id", elem_id="mdc-id",
                                placeholder="the Common Voice dataset id on datacollective.mozillafoundation.org")
    with gr.Group(visible=False) as folder_box:
        folder = gr.Textbox(label="Common Voice release folder", elem_id="cv-folder",
                            placeholder="/data/cv-corpus-17.0-2024-03-15/mr  (holds train.tsv, test.tsv, clips/)")
    with gr.Group(visible=False) as hub_box:
        with gr.Row():
            hub_id = gr.Textbox(label="Hugging Face dataset id", elem_id="hub-id", scale=2,
                                placeholder="user/dataset (parquet or audiofolder)")
            hub_config = gr.Textbox(label="Configuration", placeholder="optional", scale=1)
            hub_audio = gr.Textbox(label="Audio column", value="audio", scale=1)
            hub_text = gr.Textbox(label="Text column", value="sentence", scale=1)
    load_btn = gr.Button("Load", variant="primary", elem_id="load-btn")
    status = gr.Markdown(elem_id="data-status")
    with gr.Row():
        with gr.Column(scale=1):
            table = gr.Dataframe(headers=["split", "clips", "hours"], datatype=["str", "number", "number"],
                                 label="Clips and hours per split", interactive=False, elem_id="split-table")
        with gr.Column(scale=2):
            players, texts = [], []
            for i in range(SAMPLES_SHOWN):
                with gr.Row(equal_height=True):
                    players.append(gr.Audio(label=f"Sample {i + 1}", interactive=False, visible=False, scale=1,
                                            elem_id=f"sample-audio-{i}"))
                    texts.append(gr.Textbox(label="Sentence", interactive=False, visible=False, scale=2,
                                            elem_id=f"sample-text-{i}"))
    tab = DataTab(language, source, mdc_key, mdc_id, folder, hub_id, hub_config, hub_audio, hub_text)
    source.change(_visibility, source, [mdc_box, folder_box, hub_box], queue=False, show_progress="hidden")
    load_btn.click(load_data, [language, source, mdc_key, mdc_id, folder, hub_id, hub_config, hub_audio, hub_text],
                   [status, table, *players, *texts], concurrency_id="data", concurrency_limit=2)
    return tab
