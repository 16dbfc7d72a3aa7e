"""Issue 14.2 in Chromium at 1280x900: every evaluation started from the Evaluate tab shows "N/M clips" (M = the
requested clips plus the control clips) and an ETA while it runs, and the result afterwards.

The run's model is the tiny random model: it never emits end-of-text, so every clip decodes to its token budget
and a few clips take long enough (seconds per batch of 8) to watch the progress move.
"""

from __future__ import annotations

import re
import time

import pytest

from studio_browser import ARTIFACTS, open_tab, wait_for

pytestmark = pytest.mark.browser

CLIPS = 6  # one batch of the run's test split; the control set (16 clips, 2 batches) follows
BATCH = 8  # evaluate_run's default batch size (the Evaluate tab does not change it)
CLIPS_RE = re.compile(r"(\d+)/(\d+) clips")
ETA_RE = re.compile(r"ETA \d+:\d\d")
# Gradio 6 renders gr.Progress(desc=...) on every output of the event, in its status tracker:
# .progress-level-inner holds "<desc> - 27.3%", .progress-text the elapsed time.
OUTPUT_IDS = ("wer-plot", "eval-summary", "eval-table")
PROGRESS_JS = """ids => ids.flatMap(id => Array.from(document.querySelectorAll(
    `#${id} [data-testid="status-tracker"] .progress-level-inner`)).map(e => e.innerText.replace(/\\s+/g, ' ').trim()))
    .filter(Boolean)"""


@pytest.fixture(scope="session")
def tiny_adapter_run(browser_runs, tiny_model_dir):
    """A finished English run on the tiny random model (demo corpus) with a real, untrained LoRA adapter."""
    from whisper_studio import runfolder
    from whisper_studio.config import LoraSpec, SourceConfig, TrainConfig
    from whisper_studio.models import attach_lora, load_model

    run_dir = browser_runs / "20260101-000200-tiny-lora"
    run_dir.mkdir()
    spec = LoraSpec(rank=4, alpha=8)
    cfg = TrainConfig(model=str(tiny_model_dir), language="en", source=SourceConfig(kind="demo", language="en"),
                      lora=spec, output_dir=str(run_dir), run_name="tiny-lora", load_in_8bit=False)
    cfg.save(run_dir)
    attach_lora(load_model(str(tiny_model_dir)), spec, prepare_kbit=False).save_pretrained(str(run_dir / "adapter"))
    now = time.time()
    runfolder.write_status(run_dir, runfolder.RunStatus(state="finished", step=1, total_steps=1, started=now - 5,
                                                        finished=now))
    return run_dir


def test_evaluation_shows_clips_done_of_total_and_eta_then_the_result(page, tiny_adapter_run):
    from whisper_studio.evaluation import load_eval

    open_tab(page, "Evaluate")
    page.locator("#run-refresh").click()
    page.locator("#run-select input").click()
    page.get_by_role("option").filter(has_text="tiny-lora").first.click()
    wait_for(lambda: "not been evaluated yet" in page.locator("#eval-summary").inner_text(), 20,
             what="the chosen run's summary")
    page.locator("#eval-max input").fill(str(CLIPS))
    summary = page.locator("#eval-summary")

    def result_shown() -> bool:
        return "held-out clips" in summary.inner_text()

    t0 = time.monotonic()
    page.locator("#eval-btn").click()
    seen: list[tuple[float, str]] = []  # (seconds since the click, progress text), each distinct text once
    shot = False
    deadline = t0 + 150
    while not result_shown():
        assert time.monotonic() < deadline, f"no result {deadline - t0:.0f} s after Evaluate; progress seen: {seen}"
        for text in page.evaluate(PROGRESS_JS, list(OUTPUT_IDS)):
            if not any(text == s for _, s in seen):
                seen.append((round(time.monotonic() - t0, 1), text))
            if not shot and ETA_RE.search(text):
                page.screenshot(path=str(ARTIFACTS / "eval-progress.png"))
                shot = True
        page.wait_for_timeout(100)  # poll interval
    elapsed = time.monotonic() - t0
    print(f"\nresult {elapsed:.1f} s after Evaluate; progress seen: " + "".join(f"\n  {t:5.1f} s  {s}" for t, s in seen))

    # The result: the summary and one table row per requested clip.
    assert f"on {CLIPS} held-out clips" in summary.inner_text(), summary.inner_text()
    wait_for(lambda: page.locator("#eval-table tbody tr").count() == CLIPS, 10, what=f"{CLIPS} table rows")
    # The progress is gone once the result is there.
    wait_for(lambda: not page.evaluate(PROGRESS_JS, list(OUTPUT_IDS)), 10, what="the progress to clear")

    # What the evaluation counted: the requested clips plus the control clips, if the control set ran.
    result = load_eval(tiny_adapter_run)
    assert result is not None and result.n == CLIPS
    total = CLIPS + (result.control.n if result.control is not None else 0)
    counts = [(int(m.group(1)), int(m.group(2)), text) for _, text in seen for m in CLIPS_RE.finditer(text)]
    assert counts, f"no 'N/M clips' progress before the result: {seen}"
    assert {m for _, m, _ in counts} == {total}, (total, counts)
    done = [n for n, _, _ in counts]
    assert done == sorted(done) and all(0 <= n <= total for n in done), counts
    assert any(0 < n < total for n in done), f"no progress between 0 and {total} clips: {counts}"
    if total > BATCH:  # more than one batch: after the first one, the time left is estimated
        assert any(ETA_RE.search(text) for n, _, text in counts if 0 < n < total), counts
    assert page.errors == [], page.errors
