"""Common Voice locales <-> Whisper languages.

A Common Voice locale (`mr`, `sv-SE`, `zh-CN`) names the data; a Whisper language code (`mr`, `sv`, `zh`)
names the decoder's language token. This module is the one place that maps one to the other.

Only locales Whisper has a language token for are listed: fine-tuning needs a `<|xx|>` prefix token, and
teaching Whisper a brand new language token is a different (much larger) job than a LoRA adapter.
Deliberately left out because Whisper has no token for them: ga-IE (Irish), fy-NL (Frisian), rm-sursilv and
rm-vallader (Romansh), eo, kab, rw, lg, ckb, kmr, ky, cv, ab, ... (about 40 Common Voice locales).

No import of transformers here: the UI imports this module for its dropdowns.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from whisper_studio.errors import LanguageError


@dataclass(frozen=True)
class Language:
    locale: str  # Common Voice locale, e.g. "sv-SE"
    whisper: str  # Whisper language code, e.g. "sv"
    english: str  # English name, e.g. "Swedish"
    native: str  # the name in its own script, e.g. "Svenska"

    @property
    def label(self) -> str:
        """Dropdown label: "Marathi · मराठी (mr)" (the native name left out where it equals the English one)."""
        if self.native.casefold() == self.english.casefold():
            return f"{self.english} ({self.locale})"
        return f"{self.english} · {self.native} ({self.locale})"

    @property
    def whisper_name(self) -> str:
        """The lower-case language name transformers uses ("swedish"); see `whisper_name()`."""
        return WHISPER_LANGUAGE_NAMES[self.whisper]

    @property
    def token(self) -> str:
        """The decoder prefix token, e.g. "<|sv|>"."""
        return f"<|{self.whisper}|>"


# Whisper's language codes and names, as in transformers.models.whisper.tokenization_whisper.LANGUAGES (copied,
# so that this module stays import-light; tests check the copy against transformers). The order matters to
# the tokenizer (token id = <|startoftranscript|> + 1 + index), not to us.
WHISPER_LANGUAGE_NAMES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian", "ko": "korean",
    "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish", "pl": "polish", "ca": "catalan",
    "nl": "dutch", "ar": "arabic", "sv": "swedish", "it": "italian", "id": "indonesian", "hi": "hindi",
    "fi": "finnish", "vi": "vietnamese", "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay",
    "cs": "czech", "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian", "la": "latin",
    "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak", "te": "telugu", "fa": "persian",
    "lv": "latvian", "bn": "bengali", "sr": "serbian", "az": "azerbaijani", "sl": "slovenian", "kn": "kannada",
    "et": "estonian", "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer", "sn": "shona",
    "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan", "ka": "georgian", "be": "belarusian",
    "tg": "tajik", "sd": "sindhi", "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao",
    "uz": "uzbek", "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
    "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa",
    "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}

# Languages whose token exists only in the large-v3 vocabulary (51866 tokens); older models (tiny..large-v2,
# including the bundled whisper-base) stop at "su". Using one with an older tokenizer silently yields the
# wrong token id, so `check_tokenizer` refuses it.
V3_ONLY = frozenset({"yue"})

LANGUAGES: list[Language] = [
    Language("af", "af", "Afrikaans", "Afrikaans"),
    Language("am", "am", "Amharic", "አማርኛ"),
    Language("ar", "ar", "Arabic", "العربية"),
    Language("as", "as", "Assamese", "অসমীয়া"),
    Language("az", "az", "Azerbaijani", "Azərbaycanca"),
    Language("ba", "ba", "Bashkir", "Башҡортса"),
    Language("be", "be", "Belarusian", "Беларуская"),
    Language("bg", "bg", "Bulgarian", "Български"),
    Language("bn", "bn", "Bengali", "বাংলা"),
    Language("br", "br", "Breton", "Brezhoneg"),
    Language("ca", "ca", "Catalan", "Català"),
    Language("cs", "cs", "Czech", "Čeština"),
    Language("cy", "cy", "Welsh", "Cymraeg"),
    Language("da", "da", "Danish", "Dansk"),
    Language("de", "de", "German", "Deutsch"),
    Language("el", "el", "Greek", "Ελληνικά"),
    Language("en", "en", "English", "English"),
    Language("es", "es", "Spanish", "Español"),
    Language("et", "et", "Estonian", "Eesti"),
    Language("eu", "eu", "Basque", "Euskara"),
    Language("fa", "fa", "Persian", "فارسی"),
    Language("fi", "fi", "Finnish", "Suomi"),
    Language("fr", "fr", "French", "Français"),
    Language("gl", "gl", "Galician", "Galego"),
    Language("ha", "ha", "Hausa", "Harshen Hausa"),
    Language("he", "he", "Hebrew", "עברית"),
    Language("hi", "hi", "Hindi", "हिन्दी"),
    Language("ht", "ht", "Haitian Creole", "Kreyòl ayisyen"),
    Language("hu", "hu", "Hungarian", "Magyar"),
    Language("hy-AM", "hy", "Armenian", "Հայերեն"),
    Language("id", "id", "Indonesian", "Bahasa Indonesia"),
    Language("is", "is", "Icelandic", "Íslenska"),
    Language("it", "it", "Italian", "Italiano"),
    Language("ja", "ja", "Japanese", "日本語"),
    Language("ka", "ka", "Georgian", "ქართული"),
    Language("kk", "kk", "Kazakh", "Қазақша"),
    Language("ko", "ko", "Korean", "한국어"),
    Language("lo", "lo", "Lao", "ລາວ"),
    Language("lt", "lt", "Lithuanian", "Lietuvių"),
    Language("lv", "lv", "Latvian", "Latviešu"),
    Language("mk", "mk", "Macedonian", "Македонски"),
    Language("ml", "ml", "Malayalam", "മലയാളം"),
    Language("mn", "mn", "Mongolian", "Монгол"),
    Language("mr", "mr", "Marathi", "मराठी"),
    Language("ms", "ms", "Malay", "Bahasa Melayu"),
    Language("mt", "mt", "Maltese", "Malti"),
    # Common Voice splits Norwegian by written standard; Whisper's "no" token is Bokmål-dominated and it has a
    # separate "nn" (Nynorsk) token, so each maps to its own.
    Language("nb-NO", "no", "Norwegian Bokmål", "Norsk bokmål"),
    Language("ne-NP", "ne", "Nepali", "नेपाली"),
    Language("nl", "nl", "Dutch", "Nederlands"),
    Language("nn-NO", "nn", "Norwegian Nynorsk", "Norsk nynorsk"),
    Language("oc", "oc", "Occitan", "Occitan"),
    Language("pa-IN", "pa", "Punjabi", "ਪੰਜਾਬੀ"),
    Language("pl", "pl", "Polish", "Polski"),
    Language("ps", "ps", "Pashto", "پښتو"),
    Language("pt", "pt", "Portuguese", "Português"),
    Language("ro", "ro", "Romanian", "Română"),
    Language("ru", "ru", "Russian", "Русский"),
    Language("sd", "sd", "Sindhi", "سنڌي"),
    Language("sk", "sk", "Slovak", "Slovenčina"),
    Language("sl", "sl", "Slovenian", "Slovenščina"),
    Language("sq", "sq", "Albanian", "Shqip"),
    Language("sr", "sr", "Serbian", "Српски"),
    Language("sv-SE", "sv", "Swedish", "Svenska"),
    Language("sw", "sw", "Swahili", "Kiswahili"),
    Language("ta", "ta", "Tamil", "தமிழ்"),
    Language("te", "te", "Telugu", "తెలుగు"),
    Language("tg", "tg", "Tajik", "Тоҷикӣ"),
    Language("th", "th", "Thai", "ไทย"),
    Language("tk", "tk", "Turkmen", "Türkmençe"),
    Language("tr", "tr", "Turkish", "Türkçe"),
    Language("tt", "tt", "Tatar", "Татарча"),
    Language("uk", "uk", "Ukrainian", "Українська"),
    Language("ur", "ur", "Urdu", "اردو"),
    Language("uz", "uz", "Uzbek", "Oʻzbekcha"),
    Language("vi", "vi", "Vietnamese", "Tiếng Việt"),
    Language("yi", "yi", "Yiddish", "ייִדיש"),
    Language("yo", "yo", "Yoruba", "Yorùbá"),
    # Common Voice's own Cantonese locale: Whisper's <|yue|> token exists in large-v3 only (see V3_ONLY).
    Language("yue", "yue", "Cantonese", "粵語"),
    # The three Chinese locales share Whisper's "zh" token. zh-HK is spoken Cantonese written in traditional
    # characters; it maps to "zh" rather than "yue" because every Whisper model has <|zh|> while only large-v3
    # has <|yue|>, and "zh" is what the Whisper fine-tuning recipes used for zh-HK. Choose the `yue` locale
    # (with a large-v3 model) to train Cantonese under its own token.
    Language("zh-CN", "zh", "Chinese (China)", "中文（中国）"),
    Language("zh-HK", "zh", "Chinese (Hong Kong)", "中文（香港）"),
    Language("zh-TW", "zh", "Chinese (Taiwan)", "中文（台灣）"),
]

# Where several locales share a Whisper code or name, the Whisper code resolves to this one.
_PRIMARY_FOR_WHISPER = {"zh": "zh-CN"}
# Other names people type; keys are case-folded.
_ALIASES = {
    "chinese": "zh-CN",
    "mandarin": "zh-CN",
    "norwegian": "nb-NO",
    "bokmål": "nb-NO",
    "bokmal": "nb-NO",
    "nynorsk": "nn-NO",
    "farsi": "fa",
    "panjabi": "pa-IN",
    "castilian": "es",
    "flemish": "nl",
    "haitian": "ht",
    "moldavian": "ro",
}


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", str(text).strip().replace("_", "-")).casefold()


def _build_index() -> dict[str, Language]:
    by_locale = {lang.locale: lang for lang in LANGUAGES}
    index: dict[str, Language] = {}

    def add(name: str, lang: Language) -> None:
        index.setdefault(_key(name), lang)  # first writer wins: locales before codes before names

    for lang in LANGUAGES:
        add(lang.locale, lang)
    for code, locale in _PRIMARY_FOR_WHISPER.items():
        add(code, by_locale[locale])
    for lang in LANGUAGES:
        add(lang.whisper, lang)
        add(lang.locale.split("-")[0], lang)  # "sv" for sv-SE, "hy" for hy-AM
    for name, locale in _ALIASES.items():
        add(name, by_locale[locale])
    for lang in LANGUAGES:
        add(lang.english, lang)
        add(lang.native, lang)
        add(lang.label, lang)  # a dropdown label round-trips
        if sum(1 for other in LANGUAGES if other.whisper == lang.whisper) == 1:
            add(lang.whisper_name, lang)  # "persian", "haitian creole", "myanmar": transformers' names
    return index


_INDEX = _build_index()
_LABEL_CODE = re.compile(r"\(([A-Za-z]{2,3}(?:-[A-Za-z]+)?)\)\s*$")


def resolve(code: str | Language) -> Language:
    """A Common Voice locale, a Whisper code, an English or native name, or a dropdown label -> Language."""
    if isinstance(code, Language):
        return code
    if code is None or not str(code).strip():
        raise LanguageError("No language given; choose one, for example 'mr' (Marathi).")
    key = _key(code)
    if key in _INDEX:
        return _INDEX[key]
    match = _LABEL_CODE.search(str(code))  # "Marathi · मराठी (mr)" with a native name spelled differently
    if match and _key(match.group(1)) in _INDEX:
        return _INDEX[_key(match.group(1))]
    close = difflib.get_close_matches(key, list(_INDEX), n=8, cutoff=0.6)
    suggestions = []
    for name in close:
        label = _INDEX[name].label
        if label not in suggestions:
            suggestions.append(label)
    hint = f" Did you mean: {'; '.join(suggestions[:4])}?" if suggestions else ""
    if key in WHISPER_LANGUAGE_NAMES or key in WHISPER_LANGUAGE_NAMES.values():
        reason = "Whisper knows it, but Common Voice has no such locale."
    else:
        reason = "It is not a Common Voice locale that Whisper supports (Whisper has no token for e.g. Irish, Frisian, Romansh, Esperanto, Kinyarwanda)."
    raise LanguageError(f"Unknown language {str(code)!r}. {reason}{hint}")


def choices() -> list[tuple[str, str]]:
    """(label, locale) pairs for a dropdown, sorted by English name."""
    return [(lang.label, lang.locale) for lang in sorted(LANGUAGES, key=lambda lang: lang.english.casefold())]


def whisper_name(code: str | Language) -> str:
    """The name transformers expects for `tokenizer.set_prefix_tokens(language=...)`, `get_decoder_prompt_ids`
    and `generate(language=...)`: the lower-case English name from its LANGUAGES table ("marathi"). All three
    also accept the code ("mr"); the name is used because it is what the tokenizer stores and shows."""
    return resolve(code).whisper_name


def check_tokenizer(code: str | Language, tokenizer) -> int:
    """The token id of the language's prefix token in this tokenizer; `LanguageError` if the model lacks it.

    transformers computes the language token id by position (<|startoftranscript|> + 1 + index) and never
    checks that it exists, so Cantonese (<|yue|>) on a pre-v3 model silently becomes <|translate|>.
    """
    lang = resolve(code)
    token_id = tokenizer.convert_tokens_to_ids(lang.token)
    unk = getattr(tokenizer, "unk_token_id", None)
    if token_id is None or token_id == unk or tokenizer.convert_ids_to_tokens(token_id) != lang.token:
        extra = " Only Whisper large-v3 models have it." if lang.whisper in V3_ONLY else ""
        alt = " For zh-HK audio, the zh-HK locale trains under <|zh|>, which every Whisper model has." if lang.whisper == "yue" else ""
        raise LanguageError(f"This model's vocabulary has no {lang.token} token for {lang.english}.{extra}{alt}")
    return int(token_id)
