"""Fast tests of the Evaluate and Try it tabs: handlers called directly against real run folders (no browser)."""

from __future__ import annotations

import json
import os

import gradio as gr
import pytest


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = __import__("pathlib").Path(REPO) / "assets" / "examples"


from helpers import make_run, no_progress as _no_progress


def test_word_errors_marked_and_sorting(tmp_path):
    from whisper_studio.ui.evaluate_tab import marked, render_table, table_rows

    html, errors = marked("the cat sat on the mat", "the bat on the mat today")
    assert errors == 3
    assert 'class="ws-sub" title="reference: cat">bat<' in html
    assert 'class="ws-del" title="missing">sat<' in html and 'class="ws-ins" title="inserted">today<' in html
    clip = tmp_path / "a.wav"  # a real clip: only files that decode as audio are served
    clip.write_bytes((EXAMPLES / "en_1.wav").read_bytes())
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
    model, language = try_tab.adapter_changed("20260101-000000-tiny", "bundled/whisper-base")
    assert model == gr.update(value="/models/tiny", interactive=False)
    assert language == gr.update(value="en")  # the run's language (still changeable)
    with pytest.raises(gr.Error, match="Record something"):
        try_tab.transcribe(None, "", "bundled/whisper-base", "auto", progress=_no_progress)


def test_examples_come_from_assets():
    from whisper_studio.ui.try_tab import EXAMPLES_DIR, examples

    listed = json.loads((EXAMPLES_DIR / "examples.json").read_text(encoding="utf-8"))
    ex = examples()
    assert len(ex) == len(listed) and all(os.path.isfile(p) for p, _, _ in ex)
    assert ex[0][1] == listed[0]["language"] and ex[0][2] == listed[0]["text"]  # the reference sentence shown


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


def _result(**changes):
    from whisper_studio.evaluation import EvalResult, UtteranceRow

    rows = [UtteranceRow(id="1", audio=None, reference="a b", base="a a a a a a", adapted="a b", base_wer=2.5,
                         adapted_wer=0.0, delta=-2.5, flags=[]),
            UtteranceRow(id="2", audio=None, reference="c d", base="x y", adapted="c c c c c c c c", base_wer=1.0,
                         adapted_wer=3.5, delta=2.5, flags=["repeats", "too long"])]
    values = dict(base_wer=2.1, adapted_wer=0.63, base_wer_normalized=1.9, adapted_wer_normalized=0.5, n=2, rows=rows,
                  language="mr", normalizer="script-aware")
    return EvalResult(**{**values, **changes})


def test_wer_above_150_percent_is_shown_as_100_times_the_fraction():
    """Issue 11: a WER of 2.1 is 210%, never '2.1%' (the old `v*100 if v <= 1.5 else v`)."""
    from whisper_studio.ui.evaluate_view import summary, wer_frame

    result = _result()
    text = summary(result, "run")
    assert "210.0%" in text and "63.0%" in text and "2.1%" not in text
    assert list(wer_frame(result)["WER %"]) == [210.0, 63.0, 190.0, 50.0]
    assert "| **WER (orthographic)** | **210.0%** | **63.0%** | **−147.0 pts** |" in text
    assert "| WER (normalized) | 190.0% | 50.0% | −140.0 pts |" in text
    assert "script-aware" in text and "vowel signs" in text and "exceed 100%" in text
    assert "Marathi" in text and "1 of 2 adapted transcripts flagged" in text


def test_summary_shows_cer_and_the_control_row():
    from whisper_studio.evaluation.results import ControlResult
    from whisper_studio.ui.evaluate_view import summary

    # The headline of a control row is its normalized WER (as the CLI's evaluation.control_text), not the
    # orthographic one: they differ here so the test tells them apart.
    control = ControlResult(language="en", n=20, base_wer=0.09, adapted_wer=0.12, base_cer=0.03, adapted_cer=0.031,
                            source="bundled fixtures", base_wer_normalized=0.061, adapted_wer_normalized=0.064)
    text = summary(_result(base_cer=0.8, adapted_cer=0.2, control=control), "run")
    assert "| CER | 80.0% | 20.0% | −60.0 pts |" in text
    assert "English control: 6.1% → 6.4% (+0.3 pts, 20 clips)" in text


def test_flags_column_sorts_flagged_first_and_long_tokens_wrap():
    from whisper_studio.ui.evaluate_view import CSS, render_table, table_rows

    rows = table_rows(_result().rows)
    html = render_table(rows, "flags")
    assert html.index('<span class="flag">repeats</span>') < html.index("<td>1</td>")
    assert "<th>flags</th>" in html
    assert "overflow-wrap: anywhere" in CSS and "word-break: break-word" in CSS and "table-layout: fixed" in CSS


def test_compare_groups_evaluations_of_the_same_data(runs_root):
    from whisper_studio.ui import evaluate_tab

    a = make_run(runs_root, "20260101-000000-a", state="finished", adapter=True)
    b = make_run(runs_root, "20260101-000100-b", state="finished", adapter=True)
    for run_dir, created, n in ((a, 1000.0, 40), (a, 2000.0, 12), (b, 3000.0, 40)):
        (run_dir / "evals").mkdir(exist_ok=True)
        data = _result(created=created, n=n, language="en").to_dict()
        (run_dir / "evals" / f"{int(created)}.json").write_text(json.dumps(data), encoding="utf-8")
        (run_dir / "eval.json").write_text(json.dumps(data), encoding="utf-8")
    table = evaluate_tab.compare(["20260101-000000-a", "20260101-000100-b"])
    body = [line for line in table.splitlines() if line.startswith("| demo")]
    assert len(body) == 3 and all("English" in line for line in body)  # one data key: side by side
    assert "| 12 |" in table and table.count("| 40 |") == 2 and "210.0% → 63.0%" in table


def test_clip_progress_reports_done_total_and_eta():
    from whisper_studio.ui.evaluate_tab import clip_progress

    seen = []
    clock = iter([0.0, 10.0, 20.0])
    report = clip_progress(lambda fraction, desc=None: seen.append((fraction, desc)), clock=lambda: next(clock))
    report(0.0, "loading the test split")
    report(0, 40, "transcribing")
    report(10, 40, "transcribing")
    report(20, 40, "transcribing")
    assert seen[0] == (0.0, "loading the test split")
    assert seen[1] == (0.0, "transcribing: 0/40 clips")
    # The pace is measured after the first batch (model loading and warm-up excluded): no ETA before the second.
    assert seen[2] == (0.25, "transcribing: 10/40 clips")
    assert seen[3] == (0.5, "transcribing: 20/40 clips · ETA 0:20")


def test_download_adapter_zip_lands_in_the_served_folder(runs_root):
    import zipfile

    from whisper_studio.ui import common, evaluate_tab

    make_run(runs_root, "20260101-000300-done", state="finished", adapter=True)
    path = evaluate_tab.download_adapter("20260101-000300-done")
    assert common.served_dir().resolve() in __import__("pathlib").Path(path).resolve().parents
    assert "adapter_config.json" in zipfile.ZipFile(path).namelist()
    assert evaluate_tab.download_adapter("20260101-000300-done") == path  # reused, not rebuilt
    with pytest.raises(gr.Error, match="no adapter"):
        make_run(runs_root, "20260101-000400-none", state="stopped")
        evaluate_tab.download_adapter("20260101-000400-none")


def test_push_on_a_public_space_needs_the_admin_password_and_never_uses_the_env_token(runs_root, monkeypatch):
    from whisper_studio import hosting
    from whisper_studio.ui import evaluate_tab

    make_run(runs_root, "20260101-000300-shared", state="finished", adapter=True)
    monkeypatch.setenv("SPACE_ID", "alice/whisper-studio")
    monkeypatch.setenv(hosting.ADMIN_PASSWORD_ENV, "s3cret")
    monkeypatch.setenv("HF_TOKEN", "hf_owner_token")
    with pytest.raises(gr.Error, match="admin password"):
        evaluate_tab.push("20260101-000300-shared", "me/x", "", False, False, "guess")
    # With the password but no typed token: the owner's HF_TOKEN is not used.
    with pytest.raises(gr.Error, match="token") as err:
        evaluate_tab.push("20260101-000300-shared", "me/x", "", False, False, "s3cret")
    assert "hf_owner_token" not in err.value.message


def test_upload_error_names_the_users_file(tmp_path):
    from whisper_studio.ui import try_tab

    upload = tmp_path / "gradio-tmp" / "0f3a" / "my interview.wav"
    upload.parent.mkdir(parents=True)
    upload.write_text("not audio", encoding="utf-8")
    with pytest.raises(gr.Error) as err:
        try_tab.check_upload(str(upload))
    assert "my interview.wav" in err.value.message and "gradio-tmp" not in err.value.message


def test_download_merged_model_zip_from_a_tiny_run(runs_root, tiny_model_dir):
    import zipfile

    from whisper_studio.config import LoraSpec
    from whisper_studio.models import attach_lora, load_model
    from whisper_studio.ui import common, evaluate_tab

    run_dir = make_run(runs_root, "20260101-000700-tiny", state="finished", model=str(tiny_model_dir))
    attach_lora(load_model(str(tiny_model_dir)), LoraSpec(rank=2, alpha=4), prepare_kbit=False).save_pretrained(
        str(run_dir / "adapter"))
    path = evaluate_tab.download_merged("20260101-000700-tiny", None, progress=_no_progress)
    assert common.served_dir().resolve() in __import__("pathlib").Path(path).resolve().parents
    names = zipfile.ZipFile(path).namelist()
    assert "config.json" in names and any(n.endswith(".safetensors") for n in names)
    assert not any("adapter_config" in n for n in names)  # a plain model, not an adapter
