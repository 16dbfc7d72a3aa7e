"""Fast tests of the Evaluate and Try it tabs: handlers called directly against real run folders (no browser)."""

from __future__ import annotations

import json
import os

import gradio as gr
import pytest


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


from uiutil import make_run, no_progress as _no_progress


def test_word_errors_marked_and_sorting(tmp_path):
    from whisper_studio.ui.evaluate_tab import marked, render_table, table_rows

    html, errors = marked("the cat sat on the mat", "the bat on the mat today")
    assert errors == 3
    assert 'class="ws-sub" title="reference: cat">bat<' in html
    assert 'class="ws-del" title="missing">sat<' in html and 'class="ws-ins" title="inserted">today<' in html
    clip = tmp_path / "a.wav"
    clip.write_bytes(b"RIFF")
    rows = table_rows([
        {"reference": "one two three", "base": "one two three", "adapted": "one too tree", "audio_path": str(clip)},
        {"reference": "four five six", "base": "for fife sicks", "adapted": "four five six"},
    ])
    better = render_table(rows, "better")
    assert better.index(">fife<") < better.index(">too<")  # the improved row first
    worse = render_table(rows, "worse")
    assert worse.index(">too<") < worse.index(">fife<")
    assert 'src="gradio_api/file=' in better and better.count("<audio") == 1


def test_saved_evaluation_is_shown_from_disk(runs_root):
    from whisper_studio.ui import evaluate_tab

    run_dir = make_run(runs_root, "20260101-000000-done", state="finished", adapter=True)
    from whisper_studio.evaluation import EvalResult, UtteranceRow

    rows = [UtteranceRow(id="1", audio=None, reference="a b", base="a c", adapted="a b", base_wer=0.5,
                         adapted_wer=0.0, delta=-0.5),
            UtteranceRow(id="2", audio=None, reference="c d", base="x y", adapted="c y", base_wer=1.0,
                         adapted_wer=0.5, delta=-0.5)]
    result = EvalResult(base_wer=0.5, adapted_wer=0.25, base_wer_normalized=0.4, adapted_wer_normalized=0.2, n=2,
                        rows=rows)
    (run_dir / "eval.json").write_text(json.dumps(result.to_dict()), encoding="utf-8")
    update = evaluate_tab.refresh_runs(None)
    assert update["value"] == "20260101-000000-done"
    frame, summary, rows, html = evaluate_tab.show_saved("20260101-000000-done", "order")
    assert list(frame["WER %"]) == [50.0, 25.0, 40.0, 20.0] and list(frame["WER of"]) == ["base", "adapted", "base (norm.)", "adapted (norm.)"]
    assert "50.0% → adapted 25.0%" in summary and len(rows) == 2 and "<table>" in html


def test_evaluate_refuses_a_running_run(runs_root):
    from whisper_studio.ui import evaluate_tab

    make_run(runs_root, "20260101-000100-live", pid=os.getpid(), adapter=True)
    with pytest.raises(gr.Error, match="still training"):
        evaluate_tab.evaluate("20260101-000100-live", 5, "order", progress=_no_progress)
    with pytest.raises(gr.Error, match="Choose a run"):
        evaluate_tab.evaluate(None, 5, "order", progress=_no_progress)


def test_adapter_choice_pins_its_base_model(runs_root):
    from whisper_studio.ui import try_tab

    make_run(runs_root, "20260101-000000-tiny", state="finished", adapter=True, model="/models/tiny")
    make_run(runs_root, "20260101-000100-noadapter", state="failed")
    choices = try_tab.adapter_choices()
    assert [v for _, v in choices] == ["", "20260101-000000-tiny"]
    assert try_tab.adapter_changed("20260101-000000-tiny", "bundled/whisper-base") == gr.update(
        value="/models/tiny", interactive=False)
    with pytest.raises(gr.Error, match="Record something"):
        try_tab.transcribe(None, "", "bundled/whisper-base", "auto", progress=_no_progress)


def test_examples_come_from_assets():
    from whisper_studio.ui.try_tab import EXAMPLES_DIR, examples

    listed = json.loads((EXAMPLES_DIR / "examples.json").read_text(encoding="utf-8"))
    ex = examples()
    assert len(ex) == len(listed) and all(os.path.isfile(p) for p, _ in ex)
    assert ex[0][1] == listed[0]["language"]


def test_push_from_the_evaluate_tab_gives_clear_messages_and_never_echoes_the_token(runs_root, monkeypatch):
    from whisper_studio.ui import evaluate_tab

    make_run(runs_root, "20260101-000300-shared", state="finished", adapter=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(gr.Error, match="Choose a run"):
        evaluate_tab.push("", "me/x", "hf_tok", False, False)
    with pytest.raises(gr.Error, match="OWNER/NAME"):
        evaluate_tab.push("20260101-000300-shared", "no slash", "hf_tok", False, False)
    with pytest.raises(gr.Error, match="needs the network") as err:
        evaluate_tab.push("20260101-000300-shared", "me/whisper-mr", "hf_secret_tok", False, False)
    assert "hf_secret_tok" not in err.value.message
    with gr.Blocks() as page:
        evaluate_tab.build()
    props = {c["props"].get("elem_id"): c["props"] for c in page.get_config_file()["components"]}
    assert props["push-token"]["type"] == "password"
