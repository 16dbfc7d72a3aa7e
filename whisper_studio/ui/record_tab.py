"""Record tab: build a dataset of your own voice in the app.

It shows a sentence (from text you paste, else the demo sentences of the language), you record it with the
microphone (or upload a file), and Save adds clip + sentence to a Common Voice-layout folder kept by
`recordings.RecordingSet` (train and test disjoint by sentence). That folder becomes the Data tab's source,
so the Train tab trains on it.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from whisper_studio import hosting
from whisper_studio.ui.common import DEFAULT_LANGUAGE, UserMessage, esc, handler
from whisper_studio.ui.data_tab import DataTab

SOURCE_KIND = "cv-folder"  # what RecordingSet.source_config() describes
FOLDER_KEY = "folder"  # the Data tab's input for a Common Voice folder


def recordings_root(language: str) -> Path:
    """One recording folder per language under the cache: it outlives runs and app restarts."""
    from whisper_studio.languages import resolve
    from whisper_studio.paths import cache_dir

    return cache_dir() / "recordings" / resolve(language).locale


def recording_set(language: str, pasted: str | None = None):
    """The language's set; pasted text (one sentence per line) replaces the demo sentences as prompts."""
    from whisper_studio import recordings

    return recordings.RecordingSet(recordings_root(language), language, text=(pasted or "").strip() or None)


def next_sentence(language: str, pasted: str | None) -> str:
    """The next sentence not recorded yet: from the pasted text, else the demo sentences of the language."""
    return recording_set(language, pasted).next_sentence()


def status(language: str) -> str:
    rs = recording_set(language)
    c = rs.counts()
    return (f"**{esc(rs.language.english)}** recordings: {c.train_clips} train · {c.test_clips} test clips "
            f"({c.seconds:.0f} s), in `{esc(rs.root)}`. The Data tab's source is this folder after each save.")


@handler("Choosing a sentence")
def show_sentence(language, pasted):
    return next_sentence(language, pasted), status(language)


@handler("Choosing a sentence")
def language_changed(language, pasted):
    """The language was changed (on the Data tab, usually): a language without built-in sentences is no error
    there; this tab's status line says what to do, and the sentence box is cleared."""
    from whisper_studio.errors import StudioError

    try:
        return next_sentence(language, pasted), status(language)
    except StudioError as exc:
        return "", f"⚠️ {esc(exc)}"


@handler("Saving the recording")
def save(language, pasted, sentence, audio_path, admin_password=None):
    """Add the clip to the set, show the next sentence and the counts, and make the set the Data tab's source."""
    hosting.require_admin(admin_password)
    sentence = (sentence or "").strip()
    if not sentence:
        raise UserMessage("There is no sentence to record: paste some text or press **Next sentence**.")
    if not audio_path:
        raise UserMessage("Record the sentence with the microphone (or upload a file) first.")
    rs = recording_set(language, pasted)
    try:
        rs.add(audio_path, sentence)
    except Exception as exc:
        from whisper_studio.errors import StudioError

        if isinstance(exc, StudioError):  # name the user's file, not the server's temporary copy
            name = Path(str(audio_path)).name
            raise UserMessage(str(exc).replace(str(audio_path), name)) from None
        raise
    src = rs.source_config()
    gr.Info(f"Saved. The Data tab now trains on {src.path}.")
    return (next_sentence(language, pasted), status(language), gr.update(value=None),
            gr.update(value=src.kind), gr.update(value=str(src.path)))


def build(data: DataTab) -> None:
    gr.Markdown("Record your own sentences: each saved clip goes into a Common Voice-style folder (train and test "
                "kept apart by sentence), which becomes the **Data** tab's source.")
    with gr.Row():
        with gr.Column(scale=1):
            pasted = gr.Textbox(label="Your sentences (one per line; empty: the demo sentences of the language)",
                                lines=5, elem_id="record-text")
            next_btn = gr.Button("Next sentence", elem_id="record-next")
        with gr.Column(scale=1):
            sentence = gr.Textbox(initial_sentence, label="Read this aloud", interactive=True,
                                  elem_id="record-sentence", lines=2)
            audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Recording",
                             elem_id="record-audio")
            admin_password = gr.Textbox(label="Admin password", type="password", elem_id="record-admin-password",
                                        visible=hosting.on_spaces() or bool(os.environ.get(hosting.ADMIN_PASSWORD_ENV)))
            save_btn = gr.Button("Save and next", variant="primary", elem_id="record-save")
    info = gr.Markdown(lambda: _safe_status(DEFAULT_LANGUAGE), elem_id="record-status")
    language = data.language
    next_btn.click(show_sentence, [language, pasted], [sentence, info])
    language.change(language_changed, [language, pasted], [sentence, info], show_progress="hidden")
    save_btn.click(save, [language, pasted, sentence, audio, admin_password],
                   [sentence, info, audio, data.source, data.form[FOLDER_KEY]],
                   concurrency_id="recordings", concurrency_limit=1, api_name="save_recording")


def _safe_status(language: str) -> str:
    try:
        return status(language)
    except Exception:  # noqa: BLE001 - the counts appear after the first save
        return ""


def initial_sentence() -> str:
    try:
        return next_sentence(DEFAULT_LANGUAGE, None)
    except Exception:  # noqa: BLE001 - the panel then starts empty; Next sentence says what is wrong
        return ""
