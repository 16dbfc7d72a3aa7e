"""Data tab: choose a Common Voice language and a source, load it, see its size and hear a few clips.

The Source radio, the input groups and the form's keys all come from the sources registry
(whisper_studio.sources.REGISTRY): a new source gets its radio entry and its text boxes without a change here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import gradio as gr

from whisper_studio import hosting, sources
from whisper_studio.ui.common import (DEFAULT_LANGUAGE, SAMPLES_SHOWN, Form, esc, handler, progress_callback,
                                      servable)

DEFAULT_KIND = "demo"
# A hub dataset id: NAME or OWNER/NAME. Anything else given as a "hub id" is a path on the server.
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")


@dataclass
class DataTab:
    """The tab's inputs. `form` keys: "language", "kind", then every source's inputs by their `Input.key`
    ("mdc_key", "mdc_id", "folder", "hub_id", "hub_config", "hub_audio", "hub_text" for the built-in ones),
    then "admin_password" (a secret, like "mdc_key"); the Train tab extends it with its own fields."""

    form: Form
    groups: dict[str, Any]  # source kind -> its input group (sources with inputs only)

    @property
    def language(self) -> gr.Dropdown:
        return self.form["language"]

    @property
    def source(self) -> gr.Radio:
        return self.form["kind"]


def source_choices() -> list[tuple[str, str]]:
    """(label, kind) per registered source, in the registry's order."""
    return [(source.label, source.kind) for source in sources.REGISTRY.values()]


def source_config(values: Mapping[str, Any]):
    """The form's values -> SourceConfig (validated; ConfigError names what is missing). Only the chosen
    source's inputs are read; a blank one takes SourceConfig's default."""
    from whisper_studio.config import SourceConfig
    from whisper_studio.languages import resolve

    lang = resolve(values.get("language"))
    source = sources.get(values.get("kind") or DEFAULT_KIND)
    given = {}
    for item in source.ui_inputs():
        text = str(values.get(item.key) or "").strip()
        if item.field is not None and text:
            given[item.field] = text
    src = SourceConfig(kind=source.kind, language=lang.locale, **given)
    # Visitors of a Space may not name the server's files, for loading here or for training; the one folder
    # the app itself keeps (the Record tab's recordings) stays usable, behind the admin password.
    local = local_path_of(src)
    if local is not None and not _is_recordings_folder(local, lang.locale):
        hosting.refuse_local_path("a Common Voice folder" if src.path else "a dataset folder")
    return src


def _is_recordings_folder(path: str, locale: str) -> bool:
    from whisper_studio.ui.record_tab import recordings_root  # lazily: record_tab imports this module

    try:
        return Path(path).expanduser().resolve() == recordings_root(locale).resolve()
    except (OSError, RuntimeError):
        return False


def local_path_of(src) -> str | None:
    """The server path a source config names, if any: a folder source's path, or a hub "id" that is a path
    (the hub source reads a local folder when one exists under that name)."""
    if src.path:
        return src.path
    text = (src.dataset_id or "").strip()
    if src.kind == "hub" and text:
        if not HUB_ID.match(text) or ".." in text or Path(text).expanduser().exists():
            return text
    return None


@handler("Loading the data")
def load_data(values: Mapping[str, Any], progress=gr.Progress()):
    """Load the source and show its size and a few samples. A wrong key, folder or id is the usual outcome of a
    first try, so its message stays in the page (status line) as well as in a toast."""
    from whisper_studio.errors import StudioError

    try:
        return _load(values, progress)
    except StudioError as exc:
        gr.Warning(str(exc), title="Could not load the data")
        hidden = [gr.update(value=None, visible=False)] * SAMPLES_SHOWN
        blank = [gr.update(value="", visible=False)] * SAMPLES_SHOWN
        return [f"❌ **Could not load the data.** {esc(exc)}", [], *hidden, *blank]


def _load(values: Mapping[str, Any], progress):
    from whisper_studio import data
    from whisper_studio.errors import AudioError
    from whisper_studio.languages import resolve

    src = source_config(values)
    if local_path_of(src) is not None:  # reads the server's files: the same rule as training
        hosting.require_admin(values.get("admin_password"), "Loading a folder on the server")
    progress(0, desc="Reading the source")
    report = data.LoadReport()
    # The key goes to this one call only; it is never returned to the page, logged or saved.
    dsd = data.load_source(src, progress=progress_callback(progress, "Loading"),
                           api_key=(values.get("mdc_key") or "").strip() or None, report=report)
    progress(0.95, desc="Measuring clips")
    summary = data.summarize(dsd)
    table = [[split, int(v["clips"]), round(float(v["hours"]), 3)] for split, v in summary.items()]
    split = "train" if "train" in dsd else next(iter(dsd))
    rows, unplayable = [], []
    for row in data.sample_rows(dsd, split, SAMPLES_SHOWN):
        try:  # the page gets a copy in the one served folder, and only of a file that decodes as audio
            rows.append({**row, "path": servable(row["path"])})
        except AudioError as exc:
            unplayable.append(str(exc))
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
    length = (f"{hours:.2f} hours" if hours >= 0.1 else f"{hours * 60:.1f} minutes" if hours >= 1 / 60
              else f"{hours * 3600:.0f} seconds")
    lines = [f"✅ Loaded the **{esc(sources.get(src.kind).label)}** source for "
             f"**{esc(resolve(src.language).english)}**: {total} clips, {length}."]
    # One synthetic-speech note: the source's own when it gives one.
    if report.synthetic and not any("synthetic" in note.lower() for note in report.notes):
        lines.append("Synthetic eSpeak NG speech: it shows the mechanism; it does not teach real accents.")
    for split_name, n in (report.missing_clips or {}).items():
        if n:
            lines.append(f"⚠️ {n} {esc(split_name)} rows skipped: their clip file is missing.")
    lines += [esc(note) for note in report.notes]
    lines += [f"⚠️ A sample was not shown: {esc(reason)}" for reason in unplayable]
    return ["  \n".join(lines), table, *players, *texts]


def _input_box(item: sources.Input) -> gr.Textbox:
    return gr.Textbox(label=item.label, value=item.value, placeholder=item.placeholder or None, info=item.info,
                      elem_id=item.elem_id, scale=item.scale, type="password" if item.secret else "text")


def build() -> DataTab:
    from whisper_studio.languages import choices

    gr.Markdown("Pick a **Common Voice language** and where its clips come from, then **Load** to check them. "
                "The Train tab trains on what is chosen here.")
    with gr.Row():
        language = gr.Dropdown(choices(), value=DEFAULT_LANGUAGE, label="Language (Common Voice locale)",
                               filterable=True, elem_id="language", scale=1,
                               info="Type to search by English name, native name or code.")
        source = gr.Radio(source_choices(), value=DEFAULT_KIND, label="Source", elem_id="source", scale=2)
    # One group of text boxes per source that has inputs, shown while that source is chosen.
    inputs, groups = {}, {}
    for kind, src in sources.REGISTRY.items():
        items = src.ui_inputs()
        if not items:
            continue
        with gr.Group(visible=kind == DEFAULT_KIND) as groups[kind]:
            with gr.Row():
                for item in items:
                    inputs[item.key] = _input_box(item)
    # Loading a folder on the server needs the admin password where one is set (on a Space only the Record
    # tab's folder can be loaded at all); shown only where it can unlock something.
    policy = hosting.training_policy()
    admin_password = gr.Textbox(label="Admin password", type="password", elem_id="data-admin-password",
                                visible=policy.offered and policy.needs_password,
                                info="needed to load a folder on this server (e.g. your recordings)")
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
    # "admin_password" last: the Train tab's Form replaces it with its own box of the same key.
    form = Form(language=language, kind=source, **inputs, admin_password=admin_password)
    tab = DataTab(form, groups)
    kinds = list(groups)
    source.change(lambda kind: [gr.update(visible=kind == k) for k in kinds], source, list(groups.values()),
                  queue=False, show_progress="hidden")
    load_btn.click(form.event(load_data, progress=True), form.inputs, [status, table, *players, *texts],
                   concurrency_id="data", concurrency_limit=2, api_name="load_data")
    return tab
