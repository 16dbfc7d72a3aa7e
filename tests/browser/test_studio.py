"""Whisper Studio in a real (headless) Chromium: tabs, a live tiny training run, the microphone."""

from __future__ import annotations

import json
import re
import time

import pytest

from studio_browser import SPEECH_WAV, TABS, open_tab, pick, wait_for

pytestmark = pytest.mark.browser

LINE = '#loss-plot path[aria-roledescription="line mark"]'


def set_number(page, elem_id, value):
    box = page.locator(f"#{elem_id} input")
    box.fill(str(value))
    box.press("Tab")  # Gradio reads a Number on blur


def status_text(page):
    return page.locator("#train-status").inner_text()


def drawn_line(page) -> dict:
    """The loss line as drawn: point count from its path, and its computed stroke (the LinePlot pitfall: points
    in the DOM but no stroke gives a blank chart)."""
    return page.evaluate(
        """(sel) => {
            const p = document.querySelector(sel);
            if (!p) return {points: 0, stroke: null, width: 0};
            const d = p.getAttribute('d') || '';
            const cs = getComputedStyle(p);
            return {points: (d.match(/[ML]/g) || []).length, stroke: p.getAttribute('stroke') || cs.stroke,
                    opacity: cs.strokeOpacity, width: parseFloat(cs.strokeWidth || '0'), d: d.slice(0, 80)};
        }""",
        LINE,
    )


def test_every_tab_opens_without_page_errors(page, studio):
    expect = {"Data": "#source", "Record": "#record-audio", "Train": "#loss-plot", "Evaluate": "#wer-plot",
              "Try it": "#mic-audio"}
    for tab in TABS:
        open_tab(page, tab)
        page.wait_for_selector(expect[tab], state="visible")
        page.wait_for_timeout(300)
    assert page.errors == [], page.errors
    # The key field masks what is typed.
    open_tab(page, "Data")
    page.get_by_label("Common Voice via the Mozilla Data Collective").check()
    assert page.locator("#mdc-key input").get_attribute("type") == "password"


def test_wrong_folder_is_a_message_in_the_page(page):
    page.get_by_label("Local Common Voice folder").check()
    page.locator("#cv-folder textarea").fill("/nonexistent/cv-corpus/en")
    page.locator("#load-btn").click()
    toast = page.locator('[data-testid="toast-text"]').first
    toast.wait_for()
    assert "/nonexistent/cv-corpus/en" in toast.inner_text()
    assert "/nonexistent/cv-corpus/en" in page.locator("#data-status").inner_text()  # stays after the toast
    assert "Traceback" not in page.content()


def test_tiny_training_draws_live_loss_survives_reload_and_stops(page, studio, tiny_model_dir):
    # Data tab: English demo corpus (synthetic speech), chosen by typing into the searchable dropdown.
    pick(page, "language", "Engl", "English (en)")
    # Train tab: the tiny random model (offered through WHISPER_STUDIO_EXTRA_MODELS), a few small steps.
    open_tab(page, "Train")
    # The Data tab's choice is what trains (the line follows the choice through an event: wait for it).
    wait_for(lambda: "English (en)" in page.locator("#train-data").inner_text(), 15, what="English on the Train tab")
    pick(page, "model", tiny_model_dir.name, f"{tiny_model_dir.name} (local folder)")
    set_number(page, "lora-rank", 4)
    set_number(page, "lora-alpha", 8)
    set_number(page, "epochs", 3)
    set_number(page, "batch-size", 4)
    set_number(page, "max-train", 16)
    page.get_by_label("full precision").check()  # CPU: 8-bit is slower, and this test is about the page
    page.locator("#start-btn").click()
    wait_for(lambda: "tiny" in status_text(page) and re.search(r"running|queued", status_text(page)), 30,
             what="the new run in the status")
    command = page.locator("#train-command textarea").input_value()
    assert "whisper_studio train" in command and "--language en" in command and "--no-8bit" in command

    # The loss line gains points and is really drawn.
    first = wait_for(lambda: (lambda l: l if l["points"] >= 2 else None)(drawn_line(page)), 150, 1.0,
                     "two loss points")
    assert first["stroke"] not in (None, "", "none", "transparent") and first["width"] > 0, first
    assert first["opacity"] not in ("0",), first
    status = status_text(page)
    assert re.search(r"step \d+ of \d+", status) and "elapsed" in status and "samples/s" in status, status
    assert "step" in page.locator("#train-log textarea").input_value()
    run_id = re.search(r"\d{8}-\d{6}-[\w.-]+", status).group(0)

    # A second Start while it runs: told which run is busy, nothing else happens.
    page.locator("#start-btn").click()
    toast = page.locator('[data-testid="toast-text"]').filter(has_text="already running").first
    toast.wait_for(timeout=15_000)
    assert "tiny" in toast.inner_text()

    # Reload: the live run is shown again, with its plot, read from disk.
    # Reload (issue 14.7): the Train tab stays open, the form shows the live run's settings, not the defaults.
    page.reload()
    page.wait_for_selector("#language")
    wait_for(lambda: page.get_by_role("tab", name="Train").get_attribute("aria-selected") == "true", 15,
             what="the Train tab re-selected after reload")
    wait_for(lambda: run_id in status_text(page), 15, what="the live run after reload")
    wait_for(lambda: page.locator("#epochs input").input_value() == "3", 15, what="epochs restored")
    assert page.locator("#batch-size input").input_value() == "4"
    assert page.locator("#max-train input").input_value() == "16"
    assert page.locator("#lora-rank input").input_value() == "4"
    assert tiny_model_dir.name in page.locator("#model input").input_value()
    assert "English" in page.locator("#language input").input_value()
    wait_for(lambda: drawn_line(page)["points"] >= 2, 15, what="the plot after reload")
    # The log box shows its tail: nothing hidden below the visible lines.
    hidden_below = page.evaluate("() => { const t = document.querySelector('#train-log textarea');"
                                 " return t.scrollHeight - t.clientHeight - t.scrollTop; }")
    assert hidden_below <= 2, hidden_below

    # Stop: the job ends and the page says so.
    stop = page.locator("#stop-btn")
    wait_for(lambda: stop.is_enabled(), 10, what="Stop enabled")
    t0 = time.monotonic()
    stop.click()
    # Stop returns at once: "stopping…" with a Kill now button while the job saves its adapter.
    wait_for(lambda: re.search(r"stopping…|stopped|finished", status_text(page)), 10, 0.1, "stop acknowledged")
    print(f"\nStop -> acknowledged in {time.monotonic() - t0:.1f} s: {status_text(page).splitlines()[0]}")
    if "stopping…" in status_text(page):
        assert page.locator("#kill-btn").is_visible()
    wait_for(lambda: re.search(r"stopped|finished", status_text(page)), 60, 0.2, "the stopped state")
    print(f"\nStop -> stopped shown in {time.monotonic() - t0:.1f} s")
    # The stopped run saved its adapter, and the Evaluate tab lists it without a manual refresh.
    open_tab(page, "Evaluate")
    page.locator("#run-select input").click()
    page.get_by_role("option").filter(has_text=run_id).first.wait_for(timeout=10_000)
    page.keyboard.press("Escape")
    assert page.errors == [], page.errors


def test_microphone_recording_is_transcribed_base_and_adapted(page, base_adapter_run):
    expected = json.loads((SPEECH_WAV.parent / "examples.json").read_text())[0]
    assert expected["file"] == SPEECH_WAV.name
    open_tab(page, "Try it")
    page.locator("#adapter-refresh").click()  # the run was made after the page loaded
    page.locator("#mic-audio button.record-button").click()
    page.wait_for_timeout(int(expected["seconds"] * 1000) + 1500)  # the fake microphone loops the file
    page.locator("#mic-audio button.stop-button").click()
    page.locator("#mic-audio a[data-testid=download-link]").wait_for(timeout=20_000)
    pick(page, "adapter-select", "base-lora", "base-lora · finished · whisper-base · en")
    page.locator("#transcribe-btn").click()
    base = wait_for(lambda: page.locator("#base-text textarea").input_value().strip(), 120, 1.0, "base text")
    adapted = wait_for(lambda: page.locator("#adapted-text textarea").input_value().strip(), 30, 0.5,
                       "adapted text")
    words = set(re.findall(r"[a-z]+", expected["text"].lower()))
    for text in (base, adapted):
        heard = set(re.findall(r"[a-z]+", text.lower()))
        assert len(words & heard) >= len(words) // 2, (text, expected["text"])  # real speech, not a beep
    assert re.search(r"\d+\.\d+ s", page.locator("#base-text").inner_text())  # the time it took is shown
    assert page.errors == [], page.errors


def test_saved_evaluation_shows_bars_marked_words_and_playable_clips(page, base_adapter_run):
    """eval.json on disk -> bar chart, word-error table and audio players whose clips the server really serves."""
    from whisper_studio.evaluation import EvalResult, UtteranceRow

    rows = [UtteranceRow(id="a", audio=str(SPEECH_WAV), reference="the cat sat on the mat",
                         base="the bat on the mat today", adapted="the cat sat on the mat", base_wer=0.5,
                         adapted_wer=0.0, delta=-0.5),
            UtteranceRow(id="b", audio=None, reference="one two three", base="one two three",
                         adapted="one too three", base_wer=0.0, adapted_wer=1 / 3, delta=1 / 3)]
    result = EvalResult(base_wer=0.33, adapted_wer=0.11, base_wer_normalized=0.3, adapted_wer_normalized=0.1, n=2,
                        rows=rows)
    (base_adapter_run / "eval.json").write_text(json.dumps(result.to_dict()), encoding="utf-8")
    open_tab(page, "Evaluate")
    page.locator("#run-refresh").click()
    pick(page, "run-select", "base-lora", "base-lora · finished · whisper-base · en")
    page.locator("#eval-table table").wait_for()
    table = page.locator("#eval-table")
    assert table.locator("tbody .ws-sub").first.inner_text() == "bat"
    assert table.locator("tbody .ws-del").first.inner_text() == "sat"
    assert table.locator("tbody .ws-ins").first.inner_text() == "today"
    wait_for(lambda: page.locator("#wer-plot g.mark-rect path").count() == 4, 10, what="four WER bars")
    src = table.locator("audio").first.get_attribute("src")
    response = page.request.get(studio_url(page) + src)
    assert response.status == 200 and response.body()[:4] == b"RIFF", (src, response.status)
    # Sorting: the row the adapter made worse comes first when asked for.
    pick(page, "eval-sort", "worse", "Adapted got worse first")
    wait_for(lambda: table.locator("tbody tr").first.inner_text().startswith("2"), 10, what="worse-first order")
    assert page.errors == [], page.errors


def studio_url(page) -> str:
    return page.url.split("?")[0].rstrip("/") + "/"
