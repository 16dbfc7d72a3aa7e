"""languages.py: Common Voice locale <-> Whisper token mapping, lookup by any name, helpful errors."""

from __future__ import annotations

import pytest

from whisper_studio import languages as L
from whisper_studio.errors import LanguageError


def test_table_matches_transformers():
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    # our copy of Whisper's table must be transformers' exactly (order included: token ids depend on it)
    assert list(L.WHISPER_LANGUAGE_NAMES.items()) == list(LANGUAGES.items())
    locales = [lang.locale for lang in L.LANGUAGES]
    assert len(locales) == len(set(locales))
    for lang in L.LANGUAGES:
        assert lang.whisper in LANGUAGES, lang
        assert lang.native and lang.english


@pytest.mark.parametrize(
    "code, locale, whisper",
    [
        ("mr", "mr", "mr"),
        ("sv-SE", "sv-SE", "sv"),
        ("sv", "sv-SE", "sv"),
        ("SV_se", "sv-SE", "sv"),
        ("Swedish", "sv-SE", "sv"),
        ("svenska", "sv-SE", "sv"),
        ("zh-CN", "zh-CN", "zh"),
        ("zh-tw", "zh-TW", "zh"),
        ("zh-HK", "zh-HK", "zh"),
        ("zh", "zh-CN", "zh"),
        ("Chinese", "zh-CN", "zh"),
        ("yue", "yue", "yue"),
        ("cantonese", "yue", "yue"),
        ("nb-NO", "nb-NO", "no"),
        ("no", "nb-NO", "no"),
        ("Norwegian", "nb-NO", "no"),
        ("nn-NO", "nn-NO", "nn"),
        ("nynorsk", "nn-NO", "nn"),
        ("hy-AM", "hy-AM", "hy"),
        ("armenian", "hy-AM", "hy"),
        ("pa-IN", "pa-IN", "pa"),
        ("ਪੰਜਾਬੀ", "pa-IN", "pa"),
        ("ne-NP", "ne-NP", "ne"),
        ("Marathi", "mr", "mr"),
        ("मराठी", "mr", "mr"),
        ("  MARATHI ", "mr", "mr"),
        ("Marathi · मराठी (mr)", "mr", "mr"),
        ("es", "es", "es"),
        ("pt", "pt", "pt"),
        ("haitian creole", "ht", "ht"),
    ],
)
def test_resolve(code, locale, whisper):
    lang = L.resolve(code)
    assert (lang.locale, lang.whisper) == (locale, whisper)


@pytest.mark.parametrize("code", ["ga-IE", "fy-NL", "rm-sursilv", "rm-vallader", "eo", "kab", "Irish"])
def test_locales_whisper_cannot_learn_are_refused(code):
    with pytest.raises(LanguageError, match="Unknown language"):
        L.resolve(code)


def test_close_matches_are_suggested():
    with pytest.raises(LanguageError) as err:
        L.resolve("Marathii")
    assert "Marathi · मराठी (mr)" in str(err.value)
    with pytest.raises(LanguageError) as err:
        L.resolve("sv-SW")
    assert "(sv-SE)" in str(err.value)
    with pytest.raises(LanguageError, match="No language"):
        L.resolve("  ")


def test_whisper_knows_but_common_voice_lacks():
    with pytest.raises(LanguageError, match="Common Voice has no such locale"):
        L.resolve("latin")


def test_choices_sorted_labels_round_trip():
    items = L.choices()
    assert len(items) == len(L.LANGUAGES)
    names = [L.resolve(locale).english.casefold() for _, locale in items]
    assert names == sorted(names)
    assert ("Marathi · मराठी (mr)", "mr") in items
    assert ("English (en)", "en") in items
    for label, locale in items:
        assert L.resolve(label).locale == locale


def test_whisper_name_is_accepted_by_the_tokenizer(tokenizer):
    assert L.whisper_name("sv-SE") == "swedish"
    assert L.whisper_name("zh-HK") == "chinese"
    assert L.whisper_name("nb-NO") == "norwegian"
    tokenizer.set_prefix_tokens(language=L.whisper_name("hy-AM"), task="transcribe")
    assert tokenizer.convert_ids_to_tokens(tokenizer.prefix_tokens)[:2] == ["<|startoftranscript|>", "<|hy|>"]


def test_check_tokenizer_refuses_missing_token(tokenizer):
    assert tokenizer.convert_ids_to_tokens(L.check_tokenizer("mr", tokenizer)) == "<|mr|>"
    # whisper-base predates <|yue|>; transformers would silently use <|translate|>'s id
    with pytest.raises(LanguageError, match="large-v3"):
        L.check_tokenizer("yue", tokenizer)


@pytest.fixture(scope="module")
def tokenizer():
    from test_data import load_test_processor

    return load_test_processor().tokenizer
