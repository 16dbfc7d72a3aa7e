"""The one scoring module: metrics, normalizers, headline choice, hallucination audit, formatting, cache."""

from __future__ import annotations

import unicodedata

import jiwer
import pytest

from whisper_studio import scoring
from whisper_studio.languages import resolve
from whisper_studio.scoring import (
    BaseTranscriptCache,
    audit,
    audit_summary,
    corpus_cer,
    corpus_wer,
    headline_metric,
    normalizer_for,
    percent,
    points,
    repeated_ngrams,
    score,
    utterance_cer,
    utterance_wer,
    word_errors,
)

MARATHI = "मराठी भाषा महाराष्ट्राची राजभाषा आहे।"  # matras, a virama (ष्ट्र), a danda
HINDI = "मैं हिंदी में बात कर रहा हूँ॥"  # anusvara, chandrabindu, matras, a double danda


def _marks(text: str) -> list[str]:
    return [ch for ch in unicodedata.normalize("NFC", text) if unicodedata.category(ch).startswith("M")]


# --- formatting -------------------------------------------------------------------------------------------
def test_percent_is_always_a_hundred_times_the_fraction():
    assert percent(2.1) == "210.0%"  # the demo's Marathi base scores above 200%: no "2.1%" heuristic
    assert percent(2.12) == "212.0%"
    assert percent(0.361) == "36.1%"
    assert percent(1.5) == "150.0%"
    assert percent(0.0) == "0.0%"
    assert percent(0.12345, digits=2) == "12.35%"
    assert percent(None) == "—"
    assert percent(float("nan")) == "—"


def test_points():
    assert points(-0.052) == "−5.2 pts"
    assert points(0.03) == "+3.0 pts"
    assert points(0.0) == "0.0 pts"
    assert points(-0.0001) == "0.0 pts"
    assert points(None) == "—"


# --- normalizers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sentence, words", [(MARATHI, 5), (HINDI, 7)])
def test_script_aware_normalizer_keeps_devanagari_words_and_marks(sentence, words):
    norm = normalizer_for("mr" if sentence is MARATHI else "hi")
    assert norm.name == "script-aware"
    out = norm(sentence)
    assert len(out.split()) == words == len(sentence.split())
    assert _marks(out) == _marks(sentence)  # every matra, virama, anusvara, chandrabindu kept, in order
    assert "्" in _marks(MARATHI)  # the virama is really in the test sentence
    assert "।" not in out and "॥" not in out  # dandas are punctuation

    # Whisper's basic normalizer, the one replaced: it splits the words and drops the marks, so this test
    # would fail on it.
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    basic = BasicTextNormalizer()(sentence)
    assert len(basic.split()) != words
    assert _marks(basic) != _marks(sentence)


def test_script_aware_normalizer_rules():
    norm = normalizer_for("de")
    assert norm("Grüße,  Welt!  ") == "grüsse welt"  # casefold, punctuation -> space, whitespace collapsed
    assert norm("a+b=c €5 «quoted»") == "a b c 5 quoted"  # symbols (S*) go too
    assert norm("आहे।पुढे") == "आहे पुढे"  # a danda between words separates them
    assert norm("e\u0301") == "\u00e9"  # NFC: decomposed and precomposed spell the same word
    assert norm("كَتَبَ.") == "كَتَبَ"  # Arabic harakat are combining marks: kept
    assert norm("") == ""
    # unknown codes fall back to the script-aware rules rather than failing
    assert normalizer_for("xx-unknown").name == "script-aware"
    assert normalizer_for(None).name == "script-aware"


def test_english_normalizer_for_english():
    for language in ("en", resolve("en"), "English"):
        norm = normalizer_for(language)
        assert norm.name == "whisper-english"
        # the bundled spelling map (british -> american) and Whisper's English rules are in effect
        assert norm("The colour of the theatre, Mr. Smith!") == "the color of the theater mister smith"


def test_normalizer_keeps_the_old_tuple_api():
    name, fn = normalizer_for("en")
    assert name == "whisper-english" and fn("Mr.") == "mister"
    assert normalizer_for("mr")[0] == "script-aware"
    assert normalizer_for("mr")[1]("आहे।") == "आहे"


# --- metrics ----------------------------------------------------------------------------------------------
def test_corpus_wer_weights_by_words_not_by_clips():
    refs = ["a b c d e f g h i j", "x y"]
    hyps = ["a b c d e f g h i j", "q r"]
    assert corpus_wer(refs, hyps) == pytest.approx(2 / 12)
    assert corpus_wer([], []) == 0.0


def test_wer_may_exceed_one():
    assert utterance_wer("a b", "x y z w v") == pytest.approx(5 / 2)
    assert corpus_wer(["a b"], ["x y z w v"]) == pytest.approx(2.5)


def test_cer_for_a_chinese_pair():
    assert corpus_cer(["今天天气很好"], ["今天天气不好"]) == pytest.approx(1 / 6)
    assert utterance_cer("今天天气很好", "今天天气不好") == pytest.approx(1 / 6)
    assert corpus_cer([], []) == 0.0


def test_headline_metric():
    for code in ("zh-CN", "zh-TW", "ja", "th", "yue"):
        assert headline_metric(code) == "cer", code
    for code in ("mr", "en", "hi", "sv-SE"):
        assert headline_metric(code) == "wer", code
    assert headline_metric(resolve("ja")) == "cer"


def test_score_chinese_headline_is_cer_on_normalized_text():
    s = score(["今天天气很好。"], ["今天，天气不好"], "zh-CN")
    assert s.headline == "cer" and s.normalizer == "script-aware"
    # punctuation removed and (spaceless language) spaces dropped before CER: one character differs
    assert s.cer == pytest.approx(1 / 6)
    assert s.headline_value == s.cer
    assert s.n == 1


def test_score_orthographic_vs_normalized():
    refs = ["Hello, World.", "the  cat sat"]
    hyps = ["hello world", "the cat sat"]
    s = score(refs, hyps, "en")
    assert s.wer == pytest.approx(2 / 5)  # case and punctuation count as written; double space does not
    assert s.wer_normalized == 0.0
    assert s.cer == 0.0
    assert s.normalizer == "whisper-english" and s.headline == "wer"
    assert (s.n, s.ref_words) == (2, 5)
    assert s.wer == pytest.approx(jiwer.wer(["Hello, World.", "the cat sat"], hyps))


def test_score_devanagari_normalized_counts_words():
    s = score([MARATHI], ["मराठी भाषा महाराष्ट्राची राजभाषा आहे"], "mr")
    assert s.wer == pytest.approx(1 / 5)  # "आहे।" vs "आहे" as written
    assert s.wer_normalized == 0.0


def test_score_empty_inputs():
    s = score([], [], "mr")
    assert (s.wer, s.wer_normalized, s.cer, s.n, s.ref_words) == (0.0, 0.0, 0.0, 0, 0)
    # a reference that normalizes to nothing ("..." ) is no ZeroDivisionError
    s = score(["..."], ["..."], "mr")
    assert s.wer_normalized == 0.0 and s.cer == 0.0
    s = score(["…"], ["hello there"], "de")
    assert s.wer_normalized == pytest.approx(2.0)
    with pytest.raises(ValueError):
        score(["a"], [], "en")


def test_word_errors_same_as_before():
    assert word_errors("a b", "a x b") == [("equal", "a", "a"), ("insert", None, "x"), ("equal", "b", "b")]
    assert word_errors("", "") == []
    assert word_errors("hello there", "  ") == [("delete", "hello", None), ("delete", "there", None)]
    assert [op for op, _, _ in word_errors("Hello, World.", "hello world", normalize=normalizer_for("en"))] == ["equal", "equal"]


# --- hallucination audit ----------------------------------------------------------------------------------
def test_repeated_ngrams_definition():
    assert repeated_ngrams("the the the the".split()) == 3
    assert repeated_ngrams("a b a b a b".split()) == 2
    assert repeated_ngrams("thank you very much thank you very much thank you very much".split()) == 2
    assert repeated_ngrams("very very good".split()) == 0
    assert repeated_ngrams([]) == 0


def test_audit_flags_a_loop():
    a = audit("the cat sat on the mat", "the cat sat on the mat the the the the the the the the", "en")
    assert "repeats" in a.flags and a.flagged
    assert a.repeated_ngrams == 7  # eight copies of "the": seven beyond the first
    assert a.insertions == 8 and a.insertion_rate == pytest.approx(8 / 6)
    assert "insertions" in a.flags and "too long" in a.flags


def test_audit_flags_empty_and_too_long():
    a = audit("the cat sat on the mat", "   ", "en")
    assert a.empty and a.flags == ("empty",) and a.length_ratio == 0.0
    a = audit("hello world", "hello world and then we went to the market", "en")
    assert "too long" in a.flags and "repeats" not in a.flags
    assert a.length_ratio == pytest.approx(9 / 2)


def test_audit_does_not_flag_a_match_or_the_references_own_repeats():
    a = audit("The cat sat on the mat.", "the cat sat on the mat", "en")
    assert not a.flagged and a.flags == ()
    assert (a.repeated_ngrams, a.insertions, a.empty, a.length_ratio) == (0, 0, False, 1.0)
    a = audit("no no no I said", "no no no I said", "en")  # the speaker's own repetition is not a loop
    assert not a.flagged
    assert not audit("hello there friend", "hello there my friend", "en").flagged  # one inserted word


def test_audit_spaceless_counts_characters():
    a = audit("今天天气很好", "今天天气很好很好很好很好", "zh-CN")
    assert a.length_ratio == pytest.approx(12 / 6)
    assert "repeats" in a.flags and "too long" in a.flags
    assert not audit("今天天气很好。", "今天天气很好", "zh-CN").flagged


def test_audit_summary():
    audits = [audit("a b c", "a b c"), audit("a b c", ""), audit("a b c", "a b c d d d d d")]
    summary = audit_summary(audits)
    assert summary["n"] == 3 and summary["flagged"] == 2
    assert summary["share_flagged"] == pytest.approx(2 / 3)
    assert summary["flags"]["empty"] == 1 and summary["flags"]["repeats"] == 1
    assert set(summary["flags"]) == set(scoring.FLAGS)
    assert summary["mean_length_ratio"] == pytest.approx((1 + 0 + 8 / 3) / 3)
    assert audit_summary([]) == {"n": 0, "flagged": 0, "share_flagged": 0.0,
                                 "flags": {f: 0 for f in scoring.FLAGS}, "mean_length_ratio": None}


# --- base-transcript cache --------------------------------------------------------------------------------
def test_base_transcript_cache_hits_and_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("WHISPER_STUDIO_CACHE", str(tmp_path / "cache"))
    cache = BaseTranscriptCache()
    decoding = {"num_beams": 1, "max_new_tokens": 440}
    key = cache.key("openai/whisper-base@abc", "data-fp-1", "mr", "transcribe", decoding)
    assert cache.get(key) is None
    assert (cache.hits, cache.misses) == (0, 1)
    cache.put(key, ["एक", "दोन"])
    assert (tmp_path / "cache" / "base-transcripts" / f"{key}.json").is_file()

    again = BaseTranscriptCache()  # a second evaluation, a new process: the file is what persists
    same = again.key("openai/whisper-base@abc", "data-fp-1", resolve("mr"), "transcribe",
                     {"max_new_tokens": 440, "num_beams": 1})  # dict order does not matter
    assert same == key
    assert again.get(same) == ["एक", "दोन"]
    assert (again.hits, again.misses) == (1, 0)

    other = again.key("openai/whisper-base@abc", "data-fp-1", "mr", "transcribe", {"num_beams": 4, "max_new_tokens": 440})
    assert other != key
    assert again.get(other) is None
    assert (again.hits, again.misses) == (1, 1)
    for changed in (("other-model", "data-fp-1", "mr", "transcribe"), ("openai/whisper-base@abc", "data-fp-2", "mr", "transcribe"),
                    ("openai/whisper-base@abc", "data-fp-1", "hi", "transcribe"), ("openai/whisper-base@abc", "data-fp-1", "mr", "translate")):
        assert again.key(*changed, decoding) != key


def test_base_transcript_cache_survives_an_unwritable_folder(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache = BaseTranscriptCache(blocker / "base-transcripts")
    key = cache.key("m", "d", "en", "transcribe", {})
    cache.put(key, ["hello"])  # logged, not raised
    assert cache.get(key) is None and cache.misses == 1
    assert any("cache" in r.getMessage() for r in caplog.records)


def test_base_transcript_cache_treats_a_corrupt_file_as_a_miss(tmp_path):
    cache = BaseTranscriptCache(tmp_path)
    key = cache.key("m", "d", "en", "transcribe", {})
    (tmp_path / f"{key}.json").write_text("{not json")
    assert cache.get(key) is None and cache.misses == 1
