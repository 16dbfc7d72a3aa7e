"""The synthetic demo corpus: Common Voice layout, disjoint splits, determinism, caching; the sentence
grammars; the bundled example clips."""

from __future__ import annotations

import csv
import json
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_studio import demo, sentences, synth
from whisper_studio.errors import DataSourceError

needs_espeak = pytest.mark.skipif(not synth.available(), reason="eSpeak NG (espeakng-loader) does not load here")
SMALL = {"n_train": 10, "n_dev": 3, "n_test": 5}
CV_COLUMNS = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes", "age",
              "gender", "accents", "variant", "locale", "segment"]


def read_tsv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def read_tsv_plain(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def words(text: str) -> list[str]:
    return sentences.sentence_key(text).split()


# --- sentence grammars -------------------------------------------------------------------------------------

@pytest.mark.parametrize("locale", demo.DEMO_LANGUAGES)
def test_grammar_is_varied_deterministic_and_bounded(locale):
    many = sentences.generate(locale, 2000)
    assert len({sentences.sentence_key(s) for s in many}) == 2000  # >= 300 asked; 2000 distinct shows headroom
    assert sentences.generate(locale, 300) == many[:300]  # deterministic, and a prefix of a longer run
    assert sentences.generate(locale, 50, seed=1) != many[:50]
    vocabulary = Counter(w for s in many for w in words(s))
    # A bounded vocabulary (so it recurs across splits) that is still more than a handful of words.
    assert 150 <= len(vocabulary) <= 900, len(vocabulary)
    lengths = [len(words(s)) for s in many]
    assert 3 <= min(lengths) and max(lengths) <= 20 and np.mean(lengths) >= 5
    assert not any('"' in s or "\t" in s or "  " in s for s in many)  # safe in an unquoted TSV


@pytest.mark.parametrize("locale,script", [("hi", (0x0900, 0x097F)), ("mr", (0x0900, 0x097F)), ("ta", (0x0B80, 0x0BFF))])
def test_native_script(locale, script):
    for s in sentences.generate(locale, 200):
        letters = [c for c in s if c.isalpha()]
        assert letters and all(script[0] <= ord(c) <= script[1] for c in letters), s


@pytest.mark.parametrize("locale", demo.DEMO_LANGUAGES)
def test_default_splits_are_disjoint_and_share_vocabulary(locale):
    split = demo.split_sentences(locale, demo.DEFAULT_SIZES)
    keys = {name: {sentences.sentence_key(s) for s in texts} for name, texts in split.items()}
    assert {n: len(k) for n, k in keys.items()} == demo.DEFAULT_SIZES
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["dev"] and not keys["dev"] & keys["test"]
    # What fine-tuning can learn from train: nearly every word of a test sentence occurs in train.
    train_words = {w for s in split["train"] for w in words(s)}
    test_tokens = [w for s in split["test"] for w in words(s)]
    covered = sum(w in train_words for w in test_tokens) / len(test_tokens)
    assert covered >= 0.95, covered


def test_english_agreement():
    for s in sentences.generate("en", 1500):
        assert not re.search(r"\ba [aeiou]", s, re.I), s  # an apple, not a apple
        assert not re.search(r"\b(I|you|we|they) (is|does|reads|eats|buys)\b", s), s
        assert not re.search(r"\b(he|she) (are|do|am)\b", s), s
        assert not re.search(r"\b(not|any) \w* ?some\b", s), s


def test_french_elision_and_portuguese_numbers():
    for s in sentences.generate("fr", 1500):
        assert not re.search(r"\b(je|ne|le|la|que) [aeiouyéèêâh]", s, re.I), s  # j'achète, n'a, l'orange, qu'il
        assert not re.search(r"\bun (chaise|lampe|table|pomme|orange)\b|\bune (sac|livre|vélo|film)\b", s), s
    from whisper_studio.sentences import pt

    feminine = {n[1] for nouns in pt.NOUNS.values() for n in nouns if n[2] == "f"}
    for s in sentences.generate("pt", 1500):
        toks = s.rstrip(".?").split()
        for a, b in zip(toks, toks[1:]):
            if a == "dois":
                assert b not in feminine, s  # duas cadeiras


def test_dutch_adjective_endings_and_inversion():
    from whisper_studio.sentences import nl

    het = {n[0] for nouns in nl.NOUNS.values() for n in nouns if n[2] == "het"}
    de_words = {n[0] for nouns in nl.NOUNS.values() for n in nouns if n[2] == "de"}
    for s in sentences.generate("nl", 1500):
        toks = s.rstrip(".?").split()
        for a, b, c in zip(toks, toks[1:], toks[2:]):
            if a.lower() in ("een", "geen") and c in het:
                assert b in nl._ADJ, s  # een groot huis: the bare form before a het-noun
            if a.lower() in ("een", "geen") and c in de_words:
                assert b in nl._ADJ.values(), s  # een grote tafel
            if a.lower() in ("de", "het") and c in het | de_words:
                assert b in nl._ADJ.values(), s
        assert not re.search(r"\b(leest|hebt|gaat|schrijft|koopt) jij\b", s, re.I), s  # lees jij, heb jij
        assert not re.search(r"\bhet (brief|krant|tafel|fiets)\b|\bde (boek|raam|ei|horloge)\b", s, re.I), s


def test_german_articles_agree_with_gender():
    from whisper_studio.sentences import de

    gender = {n[0]: n[2] for nouns in de.NOUNS.values() for n in nouns}
    masc = {n for n, g in gender.items() if g == "m"}
    for s in sentences.generate("de", 1500):
        toks = s.rstrip(".?").split()
        for i, t in enumerate(toks[:-1]):
            noun = toks[i + 1] if toks[i + 1] in gender else (toks[i + 2] if i + 2 < len(toks) and toks[i + 2] in gender else None)
            if noun is None:
                continue
            if t in ("einen", "keinen", "meinen", "den"):
                assert noun in masc, s
            if t in ("eine", "keine", "meine") and noun in gender:
                assert gender[noun] == "f", s
    # Adjective endings by article and gender (accusative).
    import random

    rng = random.Random(0)
    seen = {de._object(rng, "thing", det="ein") for _ in range(300)}
    assert "einen alten Tisch" in seen or "einen alten Stuhl" in seen or any(x.startswith("einen ") and "en " in x for x in seen)
    assert not any(re.match(r"ein (alte|neue|kleine|große) ", x) for x in seen)  # ein + adjective needs -es (neuter)


def test_hindi_and_marathi_inflection():
    from whisper_studio.sentences import hi, mr

    khana = next(v for v in hi.VERBS if v[0] == "खा")
    assert [hi._perfective(khana, g, p) for g, p in [("m", False), ("f", False), ("m", True), ("f", True)]] == \
        ["खाया", "खाई", "खाए", "खाईं"]
    kar = next(v for v in hi.VERBS if v[0] == "साफ़ कर")
    assert hi._perfective(kar, "f", False) == "साफ़ की" and hi._perfective(kar, "m", True) == "साफ़ किए"
    padh = next(v for v in hi.VERBS if v[0] == "पढ़")
    assert hi._future(padh, "m", "1s") == "पढ़ूँगा" and hi._future(padh, "f", "3p") == "पढ़ेंगी"
    assert hi._future(khana, "m", "2") == "खाओगे"
    assert hi._adj("नया", "f", False) == "नई" and hi._adj("पुराना", "m", True) == "पुराने" and hi._adj("लाल", "f", True) == "लाल"
    assert [mr._adj("नवा", g, p) for g, p in [("m", False), ("f", False), ("n", False), ("f", True), ("n", True)]] == \
        ["नवा", "नवी", "नवे", "नव्या", "नवी"]
    vach = mr.VERBS[0]
    assert vach["future"]["3p"] == "वाचतील" and vach["future"]["1s"] == "वाचेन"
    # The ergative past agrees with the object: a neuter book, a feminine story.
    for s in sentences.generate("mr", 1500):
        if s.split()[1] in ("त्याने", "तिने") or s.split()[0] in ("त्याने", "तिने"):
            assert not re.search(r"(पुस्तक|पत्र) (वाचला|वाचली|लिहिला|लिहिली)\b", s), s


def test_tamil_endings():
    from whisper_studio.sentences import ta

    assert ta._question("படிக்கிறாய்") == "படிக்கிறாயா"
    ending = dict(ta.SUBJECTS)
    for s in sentences.generate("ta", 1500):
        first = s.split()[0]
        if first in ("நான்", "நாங்கள்", "அவள்") and not s.endswith("தில்லை."):
            verb = s.rstrip(".?").split()[-1]
            assert verb.endswith(ending[first]) or verb.endswith(ending[first][:-1] + "ா"), s


# --- the corpus --------------------------------------------------------------------------------------------

@needs_espeak
def test_corpus_layout_columns_and_audio(tmp_path):
    calls = []
    folder = demo.build_corpus("mr", tmp_path, progress=lambda f, m: calls.append((f, m)), **SMALL)
    assert folder == tmp_path / "mr"
    for name in ("train.tsv", "dev.tsv", "test.tsv", "validated.tsv", "clip_durations.tsv", "SYNTHETIC", "clips"):
        assert (folder / name).exists(), name
    assert "eSpeak NG" in (folder / "SYNTHETIC").read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".mr.*"))  # the temporary build folder is gone
    splits = {s: read_tsv(folder / f"{s}.tsv") for s in ("train", "dev", "test", "validated")}
    assert {s: len(r) for s, r in splits.items()} == {"train": 10, "dev": 3, "test": 5, "validated": 18}
    with open(folder / "train.tsv", encoding="utf-8") as f:
        assert f.readline().rstrip("\n").split("\t") == CV_COLUMNS
    assert [r["path"] for r in splits["validated"]] == [r["path"] for s in ("train", "dev", "test") for r in splits[s]]
    durations = dict(r.values() for r in read_tsv_plain(folder / "clip_durations.tsv"))
    for row in splits["validated"]:
        m = re.fullmatch(r"espeak-(mr(\+[mf]\d)?)-r(\d+)", row["client_id"])
        assert m and 140 <= int(m.group(3)) <= 200, row["client_id"]
        assert row["locale"] == "mr" and row["sentence"] and len(row["sentence_id"]) == 64
        assert row["gender"] == ("female_feminine" if "+f" in row["client_id"] else "male_masculine")
        assert (folder / "clips" / row["path"]).is_file() and row["path"].endswith(".mp3")
    clip = splits["test"][0]["path"]
    audio, sr = sf.read(folder / "clips" / clip, dtype="float32")
    assert sr == 22050 and audio.ndim == 1
    assert abs(len(audio) / sr * 1000 - int(durations[clip])) < 60  # the MP3 decodes to the length written
    assert float(np.sqrt(np.mean(audio ** 2))) > 0.02
    assert 1.0 < len(audio) / sr < 12.0
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@needs_espeak
def test_corpus_is_deterministic_and_cached(tmp_path, monkeypatch):
    a = demo.build_corpus("de", tmp_path / "a", **SMALL)
    b = demo.build_corpus("de", tmp_path / "b", **SMALL)
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    # Audio is not bit-exact (eSpeak carries pitch-flutter state between utterances, up to ~3% of a clip's
    # length) but the same clip is the same speech.
    da, db = (dict(r.values() for r in read_tsv_plain(x / "clip_durations.tsv")) for x in (a, b))
    assert da.keys() == db.keys() and all(abs(int(da[k]) - int(db[k])) <= 0.04 * int(da[k]) for k in da)
    marker = (a / "demo.json").stat().st_mtime_ns
    t = time.perf_counter()
    assert demo.build_corpus("de", tmp_path / "a", **SMALL) == a
    assert time.perf_counter() - t < 0.5
    assert (a / "demo.json").stat().st_mtime_ns == marker  # not rebuilt
    # An edited grammar (another fingerprint) rebuilds in place, even without a version bump.
    monkeypatch.setattr(demo, "_grammar_fingerprint", lambda locale: "edited")
    assert demo.build_corpus("de", tmp_path / "a", **SMALL) == a
    assert (a / "demo.json").stat().st_mtime_ns != marker
    assert json.loads((a / "demo.json").read_text())["build"]["grammar"] == "edited"
    # Other settings for the same root replace the earlier demo build.
    bigger = demo.build_corpus("de", tmp_path / "a", n_train=12, n_dev=0, n_test=4)
    assert bigger == a and len(read_tsv(a / "train.tsv")) == 12 and len(read_tsv(a / "dev.tsv")) == 0


@needs_espeak
def test_default_cache_location_and_version(tmp_path, monkeypatch):
    monkeypatch.setenv("WHISPER_STUDIO_CACHE", str(tmp_path / "cache"))
    folder = demo.build_corpus("es", **SMALL)
    assert folder.parent.parent == tmp_path / "cache" / "demo" and folder.name == "es"
    assert folder.parent.name.startswith(f"v{demo.DEMO_VERSION}")
    assert demo.build_corpus("es", **SMALL) == folder
    assert demo.corpus_dir("es").parent.name == f"v{demo.DEMO_VERSION}"  # default sizes: plain version folder
    monkeypatch.setattr(demo, "DEMO_VERSION", demo.DEMO_VERSION + 1)
    newer = demo.build_corpus("es", **SMALL)
    assert newer != folder and newer.parent.name.startswith(f"v{demo.DEMO_VERSION}")
    assert folder.exists()  # the older version's folder is left alone


def test_unknown_locale_lists_demo_languages(tmp_path):
    with pytest.raises(DataSourceError) as err:
        demo.build_corpus("xx-YY", tmp_path)
    message = str(err.value)
    assert "xx-YY" in message and all(code in message for code in demo.DEMO_LANGUAGES)


def test_does_not_overwrite_a_folder_it_did_not_build(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "train.tsv").write_text("mine\n")
    with pytest.raises(DataSourceError, match="not a Whisper Studio demo corpus"):
        demo.build_corpus("en", tmp_path, **SMALL)
    assert (tmp_path / "en" / "train.tsv").read_text() == "mine\n"


# --- example clips -----------------------------------------------------------------------------------------

def test_example_clips():
    entries = demo.examples()
    files = {e["file"] for e in entries}
    assert {"en_1.wav", "en_2.wav", "hi_1.wav", "mr_1.wav", "es_1.wav", "de_1.wav", "en_long.wav"} <= files
    total = 0
    for e in entries:
        info = sf.info(e["path"])
        assert info.samplerate == 16000 and info.channels == 1 and e["synthetic"] is True and e["text"]
        if e["file"] == "en_long.wav":
            assert 60 <= info.duration <= 80
        else:
            assert 3 <= info.duration <= 8, e["file"]
        total += Path(e["path"]).stat().st_size
    assert total < 5 * 1024 * 1024
    raw = json.loads((demo.EXAMPLES_DIR / "examples.json").read_text(encoding="utf-8"))
    assert all(set(r) >= {"file", "language", "text", "synthetic"} for r in raw)
    # Not taken from the demo test split (the examples must not leak into an evaluation).
    for e in entries:
        if e["language"] in demo.DEMO_LANGUAGES:
            test = {sentences.sentence_key(s) for s in demo.split_sentences(e["language"], demo.DEFAULT_SIZES)["test"]}
            assert sentences.sentence_key(e["text"]) not in test


def test_stale_temp_folders_of_a_killed_build_are_removed_on_the_next_build(tmp_path):
    # what a build killed half-way leaves beside the target (issue 13.5), however recent
    stale = tmp_path / ".it.tmp-deadbeef"
    (stale / "clips").mkdir(parents=True)
    (stale / "clips" / "half.mp3").write_bytes(b"\0" * 100)
    old = tmp_path / ".it.old-cafef00d"
    old.mkdir()
    other = tmp_path / ".de.tmp-12345678"  # another language's build: not ours to remove
    other.mkdir()
    folder = demo.build_corpus("it", tmp_path, **SMALL)
    assert (folder / "train.tsv").is_file()
    assert not stale.exists() and not old.exists() and other.exists()
