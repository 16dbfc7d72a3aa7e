"""Try it tab: record or upload speech, read the base and the adapted transcript side by side."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from whisper_studio import hosting
from whisper_studio.ui import common
from whisper_studio.ui.common import DEFAULT_MODEL, UserMessage, handler
from whisper_studio.ui.train_tab import check_model, model_choices

EXAMPLES_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "examples"
NO_ADAPTER = ""


def adapter_choices() -> list[tuple[str, str]]:
    return [("None — base model only", NO_ADAPTER), *common.adapter_run_choices()]


def language_choices() -> list[tuple[str, str]]:
    from whisper_studio.languages import choices

    return [("Auto-detect", "auto"), *choices()]


def examples() -> list[list[str]]:
    """[[wav path, locale, reference sentence], ...] from assets/examples/examples.json (missing file: none)."""
    try:
        items = json.loads((EXAMPLES_DIR / "examples.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    out = []
    for item in items:
        path = EXAMPLES_DIR / str(item.get("file", ""))
        if path.is_file():
            out.append([str(path), item.get("language") or "auto", item.get("text") or ""])
    return out


@handler("Listing adapters")
def refresh_adapters(current):
    choices = adapter_choices()
    ids = [v for _, v in choices]
    return gr.update(choices=choices, value=current if current in ids else NO_ADAPTER)


@handler("Choosing the adapter")
def adapter_changed(run_id, model):
    """An adapter only fits the base it was trained on: show (and use) that base; and it was trained for one
    language, which becomes the Language choice (still changeable: try it on another language too)."""
    if not run_id:
        return gr.update(interactive=True), gr.skip()
    info = common.find_run(run_id)
    if info.config is None:
        raise UserMessage(f"Run {run_id} has no readable config.json, so its base model is unknown.")
    return gr.update(value=info.config.model, interactive=False), gr.update(value=info.config.language)


def _user_file_name(path: str | None) -> str:
    """The name of the file the user gave: Gradio keeps it as the last part of its upload path."""
    return Path(str(path or "")).name or "the recording"


def _decode(audio_path: str):
    """The upload, decoded; an error names the user's file, not the server's temporary copy of it."""
    from whisper_studio.audio import load_audio
    from whisper_studio.errors import AudioError

    try:
        return load_audio(audio_path)
    except AudioError as exc:
        name = _user_file_name(audio_path)
        text = str(exc).replace(str(audio_path), name).replace(str(Path(audio_path).parent) + "/", "")
        raise UserMessage(text if name in text else f"{name}: {text}") from None


@handler("Reading the upload")
def check_upload(audio_path):
    """At upload time: a file that is not audio is reported now, not when Transcribe is pressed."""
    if audio_path:
        _decode(audio_path)


@hosting.gpu(duration=60)
def _transcribe_both(audio, model: str, adapter_dir: str | None, language: str | None, report=None):
    """The GPU-bound part, on its own so that ZeroGPU lends a GPU for exactly this call. The session holds the
    adapter for both passes (no other request can switch it in between)."""
    from whisper_studio.transcribe import get_transcriber

    t = get_transcriber(model)
    with t.session(adapter_dir):
        return t.transcribe_both(audio, language=language, task="transcribe", progress=report)


@handler("Transcribing")
def transcribe(audio_path, run_id, model, language, progress=gr.Progress()):
    if not audio_path:
        raise UserMessage("Record something with the microphone or upload a file first.")
    adapter_dir, adapter_name = None, None
    if run_id:
        info = common.find_run(run_id)
        if not info.has_adapter:
            raise UserMessage(f"Run {info.name} has no adapter (yet).")
        model = info.config.model
        adapter_dir = str(Path(info.run_dir) / "adapter")
        adapter_name = info.name
    else:
        model = check_model(model or DEFAULT_MODEL)  # a visitor-typed server folder is refused on a Space
    progress(0.1, desc="Decoding the audio")
    audio = _decode(audio_path)  # the whole recording: the transcriber does long-form itself
    progress(0.3, desc=f"Loading {model} and transcribing")
    lang = None if not language or language == "auto" else language

    def report(done_s: float, total_s: float) -> None:  # long files: seconds of audio done, both passes
        if total_s:
            progress(0.3 + 0.7 * min(1.0, done_s / total_s), desc=f"Transcribing: {done_s:.0f} of {total_s:.0f} s")

    base, adapted = _transcribe_both(audio, model, adapter_dir, lang, report)
    seconds = base.audio_seconds or len(audio) / 16000
    base_label = f"Base ({Path(model.rstrip('/')).name}) · {base.seconds:.2f} s for {seconds:.1f} s of audio"
    if adapted is None:
        adapted_out = gr.update(value="", label="Adapted · no adapter chosen")
    else:
        adapted_out = gr.update(value=adapted.text, label=f"Adapted ({adapter_name}) · {adapted.seconds:.2f} s")
    detected = base.language if lang is None and base.language else None
    if detected:
        base_label += f" · detected {_language_name(detected)}"
    return gr.update(value=base.text, label=base_label), adapted_out


def _language_name(code: str) -> str:
    from whisper_studio.ui.evaluate_view import language_name

    return language_name(code)


def build() -> tuple[gr.Dropdown, callable]:
    with gr.Row():
        with gr.Column(scale=1):
            audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Speech", elem_id="mic-audio")
            with gr.Row():
                adapter = gr.Dropdown(adapter_choices(), value=NO_ADAPTER, label="Adapter (a training run)",
                                      elem_id="adapter-select", scale=2)
                refresh = gr.Button("↻", elem_id="adapter-refresh", scale=0, min_width=50)
            with gr.Row():
                model = gr.Dropdown(model_choices(), value=DEFAULT_MODEL, label="Base model", elem_id="try-model",
                                    allow_custom_value=True, scale=1)
                language = gr.Dropdown(language_choices(), value="auto", label="Language", elem_id="try-language",
                                       filterable=True, scale=1)
            go = gr.Button("Transcribe", variant="primary", elem_id="transcribe-btn")
        with gr.Column(scale=1):
            base_text = gr.Textbox(label="Base", lines=6, interactive=False, elem_id="base-text")
            adapted_text = gr.Textbox(label="Adapted", lines=6, interactive=False, elem_id="adapted-text")
    ex = examples()
    if ex:
        reference = gr.Textbox(label="Reference sentence (what the example clip says)", interactive=False,
                               elem_id="try-reference")
        gr.Examples(ex, [audio, language, reference], label="Example clips (synthetic eSpeak NG speech)")
        # The sentence describes the example clip only: the user's own upload or recording (or Clear) empties it.
        for event in (audio.upload, audio.stop_recording, audio.clear):
            event(lambda: "", None, reference, queue=False, show_progress="hidden")
    refresh.click(refresh_adapters, adapter, adapter, queue=False)
    adapter.change(adapter_changed, [adapter, model], [model, language], queue=False, show_progress="hidden")
    audio.upload(check_upload, audio, None, show_progress="hidden")
    go.click(transcribe, [audio, adapter, model, language], [base_text, adapted_text],
             concurrency_id="model", concurrency_limit=1)
    return adapter, refresh_adapters
