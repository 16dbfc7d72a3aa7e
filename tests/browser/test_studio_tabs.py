"""The studio's tabs in Chromium at 1280x900: readable results (long tokens wrap), the adapter's language,
downloads, a recording that becomes the data source, and a screenshot of every tab (test-artifacts/)."""

from __future__ import annotations

import json
import re
import time
import zipfile
from io import BytesIO

import pytest

from studio_browser import ARTIFACTS, SPEECH_WAV, TABS, in_viewport, open_tab, pick, wait_for

pytestmark = pytest.mark.browser

LONG_TOKEN = "ऩ" + "x" * 299  # one 300-character "word" with no break opportunity, as a runaway decoder writes


@pytest.fixture(scope="session")
def marathi_run(browser_runs):
    """A finished Marathi run with an adapter folder and a saved evaluation whose base text is one runaway
    300-character token (issue 14.1) and whose adapted text loops (flagged by the audit)."""
    from whisper_studio import runfolder
    from whisper_studio.config import LoraSpec, SourceConfig, TrainConfig
    from whisper_studio.evaluation import EvalResult, UtteranceRow

    run_dir = browser_runs / "20260101-000100-mr-lora"
    run_dir.mkdir()
    cfg = TrainConfig(model="bundled/whisper-base", language="mr", source=SourceConfig(kind="demo", language="mr"),
                      lora=LoraSpec(rank=4, alpha=8), output_dir=str(run_dir), run_name="mr-lora")
    cfg.save(run_dir / runfolder.CONFIG)
    (run_dir / "adapter").mkdir()
    (run_dir / "adapter" / "adapter_config.json").write_text('{"r": 4}', encoding="utf-8")
    (run_dir / "adapter" / "README.md").write_text("# mr-lora\n", encoding="utf-8")
    now = time.time()
    runfolder.write_status(run_dir, runfolder.RunStatus(state="finished", step=6, total_steps=6, started=now - 60,
                                                        finished=now))
    rows = [UtteranceRow(id="a", audio=str(SPEECH_WAV), reference="आज पाऊस पडला", base=f"आज {LONG_TOKEN}",
                         adapted="आज पाऊस पडला", base_wer=1.0, adapted_wer=0.0, delta=-1.0, flags=[]),
            UtteranceRow(id="b", audio=None, reference="मी घरी जातो", base="मी घरी", adapted="मी मी मी मी मी मी",
                         base_wer=0.34, adapted_wer=2.0, delta=1.66, flags=["repeats", "too long"])]
    result = EvalResult(base_wer=2.1, adapted_wer=0.63, base_wer_normalized=1.9, adapted_wer_normalized=0.5, n=2,
                        rows=rows, language="mr", normalizer="script-aware", base_cer=0.9, adapted_cer=0.3)
    (run_dir / "eval.json").write_text(json.dumps(result.to_dict()), encoding="utf-8")
    return run_dir


def choose_run(page, name):
    open_tab(page, "Evaluate")
    page.locator("#run-refresh").click()
    page.locator("#run-select input").click()
    page.get_by_role("option").filter(has_text=name).first.click()


def test_long_token_wraps_and_reference_base_adapted_stay_visible(page, marathi_run):
    choose_run(page, "mr-lora")
    table = page.locator("#eval-table table")
    table.wait_for()
    first = page.locator("#eval-table tbody tr").first
    for cell in ("td.ref", "td.base", "td.adapted"):
        where = in_viewport(page, first.locator(cell))
        assert where["inside"], (cell, where)
    widths = page.evaluate("() => { const t = document.querySelector('#eval-table table');"
                           " return [t.scrollWidth, t.parentElement.clientWidth, document.body.scrollWidth]; }")
    assert widths[0] <= widths[1] + 1 and widths[2] <= 1280, widths
    # WER 2.1 is 210%, the normalizer is named, the audit count is in the summary, flags sort first.
    summary = page.locator("#eval-summary").inner_text()
    assert "210.0%" in summary and "script-aware" in summary and "1 of 2" in summary, summary
    pick(page, "eval-sort", "Flagged", "Flagged (hallucination audit) first")
    wait_for(lambda: page.locator("#eval-table tbody tr").first.inner_text().startswith("2"), 10,
             what="flagged row first")
    assert "repeats" in page.locator("#eval-table tbody tr").first.inner_text()
    assert page.errors == [], page.errors


def test_choosing_an_adapter_sets_its_language_still_changeable(page, marathi_run):
    open_tab(page, "Try it")
    page.locator("#adapter-refresh").click()
    pick(page, "adapter-select", "mr-lora", "mr-lora · finished · whisper-base · mr")
    wait_for(lambda: "(mr)" in page.locator("#try-language input").input_value(), 10, what="Marathi chosen")
    pick(page, "try-language", "Hindi", "Hindi · हिन्दी (hi)")  # still changeable
    assert "(hi)" in page.locator("#try-language input").input_value()
    assert page.errors == [], page.errors


def test_adapter_downloads_as_a_zip(page, marathi_run):
    choose_run(page, "mr-lora")
    page.locator("#share").get_by_text("Download or share the adapter").click()
    page.locator("#download-adapter-btn").click()
    link = page.locator("#download-file a").first
    link.wait_for(timeout=20_000)
    response = page.request.get(link.get_attribute("href"))
    assert response.status == 200
    names = zipfile.ZipFile(BytesIO(response.body())).namelist()
    assert "adapter_config.json" in names and "README.md" in names
    assert page.errors == [], page.errors


def test_record_a_sentence_with_the_microphone_becomes_the_data_source(page):
    open_tab(page, "Record")
    sentence = wait_for(lambda: page.locator("#record-sentence textarea").input_value().strip(), 20, what="a sentence")
    # Sentences never recorded before (the set lives in the shared test cache and keeps what it saved).
    tag = time.strftime("%H%M%S")
    page.locator("#record-text textarea").fill(f"The weather in the hills changed quickly {tag}.\n"
                                               f"Please send the report {tag}.")
    page.locator("#record-next").click()
    wait_for(lambda: "weather" in page.locator("#record-sentence textarea").input_value(), 10, what="pasted sentence")
    page.locator("#record-audio button.record-button").click()
    page.wait_for_timeout(3000)
    page.locator("#record-audio button.stop-button").click()
    page.locator("#record-audio a[data-testid=download-link]").wait_for(timeout=20_000)
    page.locator("#record-save").click()
    wait_for(lambda: "Please send" in page.locator("#record-sentence textarea").input_value(), 20,
             what="the next pasted sentence")
    status = page.locator("#record-status").inner_text()
    assert re.search(r"[1-9]\d* train · \d+ test|\d+ train · [1-9]\d* test", status), status
    open_tab(page, "Data")
    folder = page.locator("#cv-folder textarea").input_value()
    assert "recordings" in folder, folder
    assert sentence  # the panel started with a sentence to read
    assert page.errors == [], page.errors


def test_screenshot_every_tab(page, marathi_run):
    """test-artifacts/tab-<name>.png at 1280x900 (described in the report)."""
    ARTIFACTS.mkdir(exist_ok=True)
    choose_run(page, "mr-lora")
    page.locator("#eval-table table").wait_for()
    for tab in TABS:
        open_tab(page, tab)
        page.wait_for_timeout(1200)
        page.screenshot(path=str(ARTIFACTS / f"tab-{tab.replace(' ', '_')}.png"), full_page=False)
    assert page.errors == [], page.errors
