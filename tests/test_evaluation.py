"""Evaluation: scoring re-exports, word alignment, and a real evaluate_run on the tiny random model with a LoRA adapter.

The tiny model has random weights, so its transcripts are gibberish; what is checked is the machinery: the
base pass really is the base model, the adapted pass really uses the adapter, the numbers in eval.json are
the WER/CER of the rows it contains, the control set, audit, base-transcript cache and history are real, a
broken adapter or an unwritable run folder give messages, and the command line prints what it promises.
"""

from __future__ import annotations

import json
from pathlib import Path

import jiwer
import numpy as np
import pytest

from whisper_studio import evaluation, runfolder, scoring
from whisper_studio.config import SourceConfig, TrainConfig
from whisper_studio.errors import ConfigError, JobError, ModelError
from whisper_studio.evaluation import corpus_wer, normalizer_for, word_errors

# English references with case, punctuation and British spellings, so raw and normalized WER must differ.
SENTENCES = [
    "The colour of the sky is grey.",
    "Mr. Smith organised 20 meetings!",
    "Hello, world.",
    "She analysed the theatre's programme.",
    "Good morning",
]


# --- scoring, no model -----------------------------------------------------------------------------------
def test_word_errors_on_known_strings():
    assert word_errors("the cat sat", "the cat sat") == [("equal", "the", "the"), ("equal", "cat", "cat"), ("equal", "sat", "sat")]
    assert word_errors("the cat sat", "the bat sat") == [("equal", "the", "the"), ("substitute", "cat", "bat"), ("equal", "sat", "sat")]
    assert word_errors("the cat sat down", "the sat down") == [
        ("equal", "the", "the"), ("delete", "cat", None), ("equal", "sat", "sat"), ("equal", "down", "down")]
    assert word_errors("a b", "a x b") == [("equal", "a", "a"), ("insert", None, "x"), ("equal", "b", "b")]
    assert word_errors("", "") == []
    assert word_errors("", "hello there") == [("insert", None, "hello"), ("insert", None, "there")]
    assert word_errors("hello there", "  ") == [("delete", "hello", None), ("delete", "there", None)]
    # raw: case and punctuation are errors; normalized: they are not
    assert [op for op, _, _ in word_errors("Hello, World.", "hello world")] == ["substitute", "substitute"]
    assert [op for op, _, _ in word_errors("Hello, World.", "hello world", normalize=normalizer_for("en")[1])] == ["equal", "equal"]
    # the error count equals jiwer's edit count, so marked errors and the WER always agree
    ref, hyp = "one two three four five six", "one too three five six seven eight"
    ops = word_errors(ref, hyp)
    out = jiwer.process_words(ref, hyp)
    assert sum(op != "equal" for op, _, _ in ops) == out.substitutions + out.deletions + out.insertions


def test_normalizers():
    """evaluation's normalizers are scoring's (one module): Whisper's English one for English, the script-aware
    one for every other language. Issue 11 changed the non-English rule on purpose: Whisper's basic normalizer
    split "मराठी भाषा." into the fragments मर ठ भ ष; the script-aware one keeps the vowel signs, so the
    normalized WER counts words."""
    assert evaluation.normalizer_for is scoring.normalizer_for and evaluation.word_errors is scoring.word_errors
    assert evaluation.corpus_wer is scoring.corpus_wer
    name, norm = normalizer_for("en")
    assert name == "whisper-english"
    # the bundled spelling map (british -> american) and Whisper's English rules are in effect
    assert norm("The colour of the theatre, Mr. Smith!") == "the color of the theater mister smith"
    name, norm = normalizer_for("mr")
    assert name == "script-aware"
    assert norm("मराठी भाषा.").split() == ["मराठी", "भाषा"]
    assert normalizer_for("sv-SE")[0] == "script-aware"


def test_corpus_wer_weights_by_words_not_by_clips():
    refs = ["a b c d e f g h i j", "x y"]
    hyps = ["a b c d e f g h i j", "q r"]
    # 2 errors over 12 reference words; a mean of per-clip rates would say (0 + 1) / 2 = 0.5
    assert corpus_wer(refs, hyps) == pytest.approx(2 / 12)


# --- the real thing on the tiny model ---------------------------------------------------------------------
def _write_cv_folder(root: Path) -> Path:
    """A Common Voice-layout folder (en/test.tsv + clips/) with short synthetic clips."""
    import soundfile as sf

    locale_dir = root / "en"
    clips = locale_dir / "clips"
    clips.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\tsegment"]
    for i, sentence in enumerate(SENTENCES):
        t = np.arange(int(16000 * (0.6 + 0.2 * i))) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (180 + 40 * i) * t) + 0.02 * rng.standard_normal(t.size)
        name = f"clip_{i}.wav"
        sf.write(clips / name, wave.astype(np.float32), 16000)
        lines.append(f"test\t{name}\t{sentence}\t2\t0\t\t\t\ten\t")
    (locale_dir / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (locale_dir / "train.tsv").write_text(lines[0] + "\n" + lines[1] + "\n", encoding="utf-8")
    return locale_dir


def _write_adapter(model_dir: Path, out: Path) -> Path:
    """A LoRA adapter made with peft directly, with large random weights so it visibly changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(str(model_dir))
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2.0)
    peft_model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Decode on one thread. On a shared, loaded CPU, torch's thread pool spins against the other processes:
    measured here, a vocabulary-sized torch.isin (run at every decoding step) took 118 ms on 2 threads and
    6 ms on 1."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def short_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny random model, decoding at most 12 tokens. Random weights never emit end-of-text, so every
    transcript would run to Whisper's 448-token limit (about a minute per batch on a shared CPU)."""
    import shutil

    out = tmp_path_factory.mktemp("short-model") / "tiny-short"
    shutil.copytree(tiny_model_dir, out)
    gen_path = out / "generation_config.json"
    gen = json.loads(gen_path.read_text(encoding="utf-8"))
    gen["max_length"] = 16  # 4 prompt tokens + 12
    gen_path.write_text(json.dumps(gen), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def eval_run(short_model_dir, tmp_path_factory):
    """A finished run folder: config.json (tiny model, cv-folder source), adapter/, status finished."""
    tiny_model_dir = short_model_dir
    root = tmp_path_factory.mktemp("eval")
    locale_dir = _write_cv_folder(root / "cv")
    run_dir = root / "runs" / "20260101-000000-en-tiny"
    run_dir.mkdir(parents=True)
    cfg = TrainConfig(model=str(tiny_model_dir), language="en", load_in_8bit=False, batch_size=1,
                      source=SourceConfig(kind="cv-folder", language="en", path=str(locale_dir)), output_dir=str(run_dir))
    cfg.save(run_dir / runfolder.CONFIG)
    runfolder.write_status(run_dir, runfolder.RunStatus(state="finished"))
    _write_adapter(tiny_model_dir, run_dir / runfolder.ADAPTER)
    return run_dir


SUMMARY_KEYS = {"base_wer", "adapted_wer", "base_wer_normalized", "adapted_wer_normalized", "base_cer", "adapted_cer",
                "n", "normalizer", "headline", "flagged", "control"}


def test_evaluate_run_writes_rows_whose_wer_matches_jiwer(eval_run):
    seen = []
    result = evaluation.evaluate_run(eval_run, batch_size=2, progress=lambda d, t, m: seen.append((d, t, m)),
                                     control=False, base_cache=False)
    assert result.n == len(SENTENCES) == len(result.rows)
    assert [r.reference for r in result.rows] == SENTENCES
    assert all(r.audio and Path(r.audio).is_file() for r in result.rows)
    assert {r.id for r in result.rows} == {f"clip_{i}" for i in range(len(SENTENCES))}
    assert result.normalizer == "whisper-english" and result.headline == "wer"
    # clips done / total, once per batch of 2: 2, 4, 5 of 5
    counted = [(d, t) for d, t, _ in seen if t]
    assert [d for d, _ in counted] == sorted(d for d, _ in counted) and counted[-1] == (5, 5)
    assert [d for d, t, m in seen if m.startswith("transcribed")] == [2, 4, 5]

    saved = json.loads((eval_run / runfolder.EVAL).read_text(encoding="utf-8"))
    assert set(saved["summary"]) == SUMMARY_KEYS
    rows = saved["rows"]
    assert len(rows) == len(SENTENCES)
    for key in ("id", "audio", "reference", "base", "adapted", "base_wer", "adapted_wer", "delta", "base_cer",
                "adapted_cer", "audit", "flags"):
        assert all(key in r for r in rows), key
    refs = [r["reference"] for r in rows]
    # corpus numbers recomputed from the saved rows with jiwer directly
    assert saved["base_wer"] == pytest.approx(jiwer.wer(refs, [r["base"] for r in rows]))
    assert saved["adapted_wer"] == pytest.approx(jiwer.wer(refs, [r["adapted"] for r in rows]))
    norm = normalizer_for("en")[1]
    refs_n = [norm(x) for x in refs]
    assert saved["base_wer_normalized"] == pytest.approx(jiwer.wer(refs_n, [norm(r["base"]) for r in rows]))
    assert saved["adapted_wer_normalized"] == pytest.approx(jiwer.wer(refs_n, [norm(r["adapted"]) for r in rows]))
    assert saved["base_cer"] == pytest.approx(jiwer.cer(refs_n, [norm(r["base"]) for r in rows]))
    assert saved["adapted_cer"] == pytest.approx(jiwer.cer(refs_n, [norm(r["adapted"]) for r in rows]))
    for r in rows:
        assert r["base_wer"] == pytest.approx(jiwer.wer(r["reference"], r["base"]))
        assert r["adapted_wer"] == pytest.approx(jiwer.wer(r["reference"], r["adapted"]))
        assert r["delta"] == pytest.approx(r["adapted_wer"] - r["base_wer"])
        assert r["reference_normalized"] == norm(r["reference"])
        assert r["adapted_cer"] == pytest.approx(jiwer.cer(norm(r["reference"]), norm(r["adapted"])))
        # the audit of each transcript, and the row's flags are the adapted one's
        expected = scoring.audit(r["reference"], r["adapted"], "en")
        assert r["audit"]["adapted"]["insertions"] == expected.insertions
        assert r["flags"] == list(expected.flags) == r["audit"]["adapted"]["flags"]
        assert r["audit"]["base"]["flags"] == list(scoring.audit(r["reference"], r["base"], "en").flags)
    summary = saved["audit_summary"]["adapted"]
    assert summary["n"] == 5 and summary["flagged"] == sum(bool(r["flags"]) for r in rows)
    assert saved["summary"]["flagged"]["adapted"] == summary["flagged"]
    assert saved["control"] is None and saved["settings"]["control"]["enabled"] is False
    # the adapter (large random LoRA weights) changes the output: the adapted pass is not the base pass
    assert any(r["base"] != r["adapted"] for r in rows)
    loaded = evaluation.load_eval(eval_run)
    assert loaded.summary() == result.summary() and loaded.rows[0] == result.rows[0]


def test_base_pass_is_the_plain_base_model(eval_run, short_model_dir):
    """The base column must be the model without the adapter (adapter disabled), not a second adapted pass."""
    from whisper_studio.audio import load_audio
    from whisper_studio.transcribe import Transcriber

    result = evaluation.evaluate_run(eval_run, max_samples=2, batch_size=2, control=False, base_cache=False)
    assert result.n == 2
    plain = Transcriber(str(short_model_dir))  # a separate instance that never saw an adapter
    arrays = [load_audio(r.audio) for r in result.rows]
    budget = evaluation.token_budget(max(len(a) for a in arrays) / 16000)  # the same length budget
    expected = plain.transcribe_batch(arrays, language="en", task="transcribe", adapted=False, batch_size=2,
                                      max_new_tokens=budget)
    assert [r.base for r in result.rows] == [t.strip() for t in expected]


def test_control_set_scores_both_models_in_another_language(eval_run):
    """The forgetting check: an English run gets a German control set (demo corpus), scored base and adapted."""
    result = evaluation.evaluate_run(eval_run, max_samples=1, batch_size=2, control_clips=2, base_cache=False,
                                     save=False)
    control = result.control
    assert control is not None and control.language == "de" and control.n == 2
    assert control.normalizer == "script-aware" and "demo" in control.source
    for value in (control.base_wer, control.adapted_wer, control.base_cer, control.adapted_cer):
        assert isinstance(value, float) and value >= 0
    text = evaluation.control_text(control)
    assert text.startswith("German control: ") and text.count("%") == 2 and "→" in text
    assert f"German control: {scoring.percent(control.base_wer_normalized)}" in text
    assert evaluation.format_summary(result).count("German control") == 1
    assert result.to_dict()["summary"]["control"]["language"] == "de"
    with pytest.raises(ConfigError, match="another language"):
        evaluation.evaluate_run(eval_run, max_samples=1, control_language="en", save=False)


def test_second_evaluation_reuses_the_base_transcripts(eval_run, tmp_path, monkeypatch):
    """Base transcripts are cached per (model, clips, language, task, decoding): the second evaluation runs no
    base pass at all (counted on the transcriber), and gives the same base column."""
    from whisper_studio.transcribe import get_transcriber

    cache = scoring.BaseTranscriptCache(tmp_path / "base-cache")
    first = evaluation.evaluate_run(eval_run, max_samples=3, batch_size=2, control=False, base_cache=cache, save=False)
    assert (cache.hits, cache.misses) == (0, 1) and first.settings["base_cached"] is False

    transcriber = get_transcriber(TrainConfig.load(eval_run / runfolder.CONFIG).model)
    passes = []
    real = transcriber.transcribe_batch

    def counting(arrays, **kwargs):
        passes.append("adapted" if kwargs.get("adapted") else "base")
        return real(arrays, **kwargs)

    monkeypatch.setattr(transcriber, "transcribe_batch", counting)
    second = evaluation.evaluate_run(eval_run, max_samples=3, batch_size=2, control=False, base_cache=cache, save=False)
    assert (cache.hits, cache.misses) == (1, 1) and second.settings["base_cached"] is True
    assert passes == ["adapted", "adapted"]  # two batches, no base pass
    assert [r.base for r in second.rows] == [r.base for r in first.rows]
    assert [r.adapted for r in second.rows] == [r.adapted for r in first.rows]
    assert "reused from the cache" in evaluation.format_summary(second)

    # other clips (another count) or other decoding (batch size sets the token budget) are a miss
    evaluation.evaluate_run(eval_run, max_samples=2, batch_size=2, control=False, base_cache=cache, save=False)
    evaluation.evaluate_run(eval_run, max_samples=3, batch_size=3, control=False, base_cache=cache, save=False)
    assert (cache.hits, cache.misses) == (1, 3)


def test_every_evaluation_is_kept(eval_run, tmp_path):
    import shutil

    run_dir = tmp_path / eval_run.name
    shutil.copytree(eval_run, run_dir)
    shutil.rmtree(run_dir / evaluation.EVALS_DIR, ignore_errors=True)
    first = evaluation.evaluate_run(run_dir, max_samples=3, batch_size=3, control=False, base_cache=False)
    second = evaluation.evaluate_run(run_dir, max_samples=1, batch_size=3, control=False, base_cache=False)
    files = sorted((run_dir / evaluation.EVALS_DIR).glob("*.json"))
    assert len(files) == 2
    history = evaluation.list_evals(run_dir)
    assert [r.n for r in history] == [3, 1] and history[0].created < history[1].created
    assert history[0].summary() == first.summary()
    assert evaluation.load_eval(run_dir).created == second.created  # eval.json is the latest
    settings = history[0].settings
    assert settings["split"] == "test" and settings["clips"] == 3 and settings["max_samples"] == 3
    assert settings["model"] == first.model and settings["decoding"]["batch_size"] == 3 and settings["seconds"] > 0
    # a malformed file in the history is skipped by the listing; a malformed eval.json is a clear error
    (run_dir / evaluation.EVALS_DIR / "00000000-000000-000.json").write_bytes(b"\xff\xfe not json")
    assert [r.n for r in evaluation.list_evals(run_dir)] == [3, 1]
    (run_dir / runfolder.EVAL).write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(JobError, match="unreadable"):
        evaluation.load_eval(run_dir)


def test_cli_json_prints_exactly_one_object(eval_run, capsys):
    from whisper_studio.cli import main

    assert main(["evaluate", str(eval_run), "--max-samples", "3", "--batch-size", "3", "--control-clips", "2",
                 "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # the whole of stdout is one JSON object
    assert set(data) == SUMMARY_KEYS
    assert data["n"] == 3 and data["normalizer"] == "whisper-english" and data["headline"] == "wer"
    assert all(isinstance(data[k], float) for k in ("base_wer", "adapted_wer", "base_cer", "adapted_cer"))
    assert data["control"]["language"] == "de" and data["control"]["n"] == 2
    assert isinstance(data["control"]["adapted_cer"], float) and isinstance(data["flagged"]["adapted"], int)
    assert "clips 3/5" in captured.err  # 3 test clips + 2 control clips, counted together

    assert main(["evaluate", str(eval_run), "--max-samples", "1", "--no-control"]) == 0
    table = capsys.readouterr().out
    assert "base" in table and "adapted" in table and "normalized" in table and "CER" in table
    assert "eval.json" in table and "hallucination flags" in table and "control" not in table


@pytest.fixture()
def run_copy(eval_run, tmp_path) -> Path:
    import shutil

    run_dir = tmp_path / eval_run.name
    shutil.copytree(eval_run, run_dir)
    return run_dir


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_corrupt_adapter_weights_are_a_clear_error(run_copy, short_model_dir, damage, capsys):
    weights = run_copy / runfolder.ADAPTER / "adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"\x07" * 4096}[damage])
    why = {"empty": "0 bytes long", "truncated": "truncated", "garbage": "not a safetensors file"}[damage]
    with pytest.raises(ModelError, match=why):
        evaluation.evaluate_run(run_copy, control=False, base_cache=False)
    from whisper_studio.cli import main

    assert main(["evaluate", str(run_copy), "--json"]) == 2
    err = capsys.readouterr()
    assert err.out == "" and "adapter_model.safetensors" in err.err and "Traceback" not in err.err
    # the same check guards every loader (transcribe --adapter, the Try tab): the model stays usable after
    from whisper_studio.transcribe import Transcriber

    transcriber = Transcriber(str(short_model_dir))
    with pytest.raises(ModelError, match=why):
        transcriber.set_adapter(run_copy / runfolder.ADAPTER)
    assert transcriber.adapter is None
    assert transcriber.transcribe_batch([np.zeros(1600, dtype=np.float32)], language="en") == [""]


def test_unwritable_run_folder_prints_the_result_then_says_so(run_copy, monkeypatch, capsys):
    """A read-only runs folder: the finished numbers are printed first, then the error; exit 2."""
    import errno

    from whisper_studio.evaluation import results

    def read_only(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    history = run_copy / evaluation.EVALS_DIR
    before = sorted(history.glob("*.json")) if history.is_dir() else []
    monkeypatch.setattr(results, "write_json_atomic", read_only)
    from whisper_studio.cli import main

    assert main(["evaluate", str(run_copy), "--max-samples", "2", "--no-control", "--json"]) == 2
    err = capsys.readouterr()
    data = json.loads(err.out)
    assert data["n"] == 2 and isinstance(data["adapted_wer"], float)
    assert "could not be saved" in err.err and "Read-only file system" in err.err
    assert scoring.percent(data["base_wer_normalized"]) in err.err  # the message carries the numbers too
    assert (sorted(history.glob("*.json")) if history.is_dir() else []) == before
    with pytest.raises(evaluation.ResultNotSaved, match="could not be saved") as info:
        evaluation.evaluate_run(run_copy, max_samples=1, control=False, base_cache=False)
    assert info.value.result.n == 1  # the UI can still show it


def test_run_without_adapter_is_a_clear_error(tmp_path, capsys):
    run_dir = tmp_path / "20260101-000000-no-adapter"
    run_dir.mkdir()
    TrainConfig(language="en", output_dir=str(run_dir)).save(run_dir / runfolder.CONFIG)
    runfolder.write_status(run_dir, runfolder.RunStatus(state="failed", error="out of memory"))
    with pytest.raises(JobError, match="no adapter.*failed.*out of memory"):
        evaluation.evaluate_run(run_dir)
    from whisper_studio.cli import main

    assert main(["evaluate", str(run_dir), "--json"]) == 2
    err = capsys.readouterr()
    assert err.out == "" and "no adapter" in err.err
    with pytest.raises(JobError, match="No run folder"):
        evaluation.evaluate_run(tmp_path / "missing")


def test_evaluate_model_core_without_adapter_skips_undecodable_clips(eval_run, tmp_path):
    """The reusable core on plain rows: base only (adapter None), and a broken clip is skipped and reported,
    not fatal, while the corpus WER covers exactly the scored rows."""
    clips = sorted((Path(TrainConfig.load(eval_run).source.path) / "clips").glob("*.wav"))[:2]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    rows = [{"audio": {"path": str(clips[0]), "bytes": None}, "sentence": "Hello there.", "id": "a"},
            {"audio": str(broken), "sentence": "never heard", "id": "bad"},
            {"audio": {"path": None, "bytes": clips[1].read_bytes()}, "sentence": "General Kenobi!", "id": "b"}]
    model = TrainConfig.load(eval_run).model
    result = evaluation.evaluate_model(model, None, rows, "en", batch_size=3)
    assert result.n == 2 and [r.id for r in result.rows] == ["a", "b"]
    assert [s["id"] for s in result.skipped] == ["bad"] and result.skipped[0]["error"]
    assert result.adapted_wer is None and all(r.adapted is None and r.delta is None for r in result.rows)
    assert result.rows[1].audio is None  # in-memory bytes have no path to play
    assert result.base_wer == pytest.approx(jiwer.wer(["Hello there.", "General Kenobi!"], [r.base for r in result.rows]))


def test_token_budget_covers_fast_speech_and_ends_runaways():
    from whisper_studio.evaluation import token_budget

    # 18 tokens/s (the densest demo script) over a 5 s clip must fit; a 30 s clip stays within Whisper's 448.
    assert token_budget(5) >= 18 * 5
    assert token_budget(4) < 200
    assert token_budget(30) <= 440
