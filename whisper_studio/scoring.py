"""How transcripts are scored: the one definition evaluation, the training probe, the UI and bench all use.

    normalizer_for(language)         -> Normalizer (callable; `name, fn = normalizer_for(x)` still works)
    score(refs, hyps, language)      -> Scores: orthographic WER, normalized WER, CER, the headline metric
    corpus_wer / corpus_cer / utterance_wer / utterance_cer   fractions (1.0 = 100%; may exceed 1)
    word_errors(ref, hyp)            -> [(op, ref_word, hyp_word)] for marking errors in the UI
    audit(ref, hyp, language)        -> Audit: repeated n-grams, insertions, empty output, length ratio, flags
    percent(fraction) / points(delta) the one place a fraction becomes text
    BaseTranscriptCache              base-model transcripts reused across evaluations

Why a script-aware normalizer and not Whisper's BasicTextNormalizer for non-English text: the basic one
replaces every combining mark (Unicode M*) by a space, so Devanagari, Tamil, Bengali ... words fall apart at
their vowel signs and viramas (मराठी -> "मर ठ"; whisper_normalizer #25, openai/whisper PR #2849) and the
"normalized" WER counts fragments, not words. Ours removes punctuation and symbols only and keeps the marks.

No torch here; transformers is imported only when the English normalizer is first needed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import jiwer

from whisper_studio.languages import Language

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parent / "resources"

WHISPER_ENGLISH = "whisper-english"
SCRIPT_AWARE = "script-aware"

# Whisper codes of languages written without spaces between words: a "word" there is a whole phrase, so the
# character error rate is the number that means something (and the one practitioners report).
SPACELESS_WHISPER_CODES = frozenset({"zh", "ja", "th", "lo", "my", "yue", "km", "bo"})


# --- language ---------------------------------------------------------------------------------------------
def _whisper_code(language: str | Language | None) -> str | None:
    """The Whisper code, resolved once; an unknown code keeps its primary subtag (scoring never refuses)."""
    if language is None:
        return None
    if isinstance(language, Language):
        return language.whisper
    from whisper_studio.errors import LanguageError
    from whisper_studio.languages import resolve

    try:
        return resolve(language).whisper
    except LanguageError:  # reported by whoever decodes with it; scoring falls back to the script-aware rules
        return str(language).split("-")[0].strip().lower() or None


def is_spaceless(language: str | Language | None) -> bool:
    return _whisper_code(language) in SPACELESS_WHISPER_CODES


def headline_metric(language: str | Language | None) -> str:
    """"cer" for languages written without spaces, "wer" for the rest."""
    return "cer" if is_spaceless(language) else "wer"


# --- normalizers ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Normalizer:
    name: str
    function: Callable[[str], str]

    def __call__(self, text: str) -> str:
        return self.function(text)

    # `name, fn = normalizer_for(x)` and `normalizer_for(x)[1]` were the old (name, function) tuple's API.
    def __iter__(self) -> Iterator[Any]:
        return iter((self.name, self.function))

    def __getitem__(self, index: int) -> Any:
        return (self.name, self.function)[index]


# Zero-width space and BOM separate words in Thai, Khmer, Lao, Burmese text but are not whitespace to
# str.split(); ZWJ/ZWNJ are orthographic (Persian, Malayalam chillus) and stay.
_SPACE_LIKE = {"\u200b", "\ufeff"}


def script_aware_normalize(text: str) -> str:
    """NFC, casefold, every Unicode punctuation (P*) and symbol (S*) character -> a space (danda । and
    double danda ॥ are Po), combining marks (M*: matras, viramas, nuktas, harakat) KEPT, whitespace collapsed."""
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text or "").casefold())
    chars = [
        " " if ch in _SPACE_LIKE or unicodedata.category(ch)[0] in "PS" else ch
        for ch in text
    ]
    return " ".join("".join(chars).split())


@functools.lru_cache(maxsize=None)
def _english_normalizer() -> Callable[[str], str]:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    # transformers ships the normalizer but not Whisper's British->American spelling map; ours is a copy.
    mapping = json.loads((RESOURCES / "english.json").read_text(encoding="utf-8"))
    return EnglishTextNormalizer(mapping)


def normalizer_for(language: str | Language | None) -> Normalizer:
    """Whisper's English normalizer for English; the script-aware one for every other (or unknown) language."""
    if _whisper_code(language) == "en":
        return Normalizer(WHISPER_ENGLISH, _english_normalizer())
    return Normalizer(SCRIPT_AWARE, script_aware_normalize)


def _collapse(text: str | None) -> str:
    """Orthographic text: as written, only runs of whitespace made one space."""
    return " ".join((text or "").split())


# --- metrics ----------------------------------------------------------------------------------------------
# Every rate is (substitutions + deletions + insertions) / reference units, as jiwer computes it; a reference
# with no units counts as one (jiwer's rule), so an empty reference gives 0.0 for an empty hypothesis and the
# number of inserted units otherwise, never a ZeroDivisionError.
def corpus_wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER: all errors over all reference words (not a mean of per-clip rates, which would let a
    two-word clip weigh as much as a forty-word one)."""
    if not refs:
        return 0.0
    return float(jiwer.process_words(list(refs), list(hyps)).wer)


def corpus_cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus CER: character edits over reference characters (spaces count), on the texts as given."""
    if not refs:
        return 0.0
    return float(jiwer.cer(list(refs), list(hyps)))


def utterance_wer(ref: str, hyp: str) -> float:
    return float(jiwer.process_words(ref or "", hyp or "").wer)


def utterance_cer(ref: str, hyp: str) -> float:
    return float(jiwer.cer(ref or "", hyp or ""))


def word_errors(ref: str, hyp: str, *, normalize: Callable[[str], str] | None = None) -> list[tuple[str, str | None, str | None]]:
    """The word alignment of `hyp` against `ref`: (op, ref_word, hyp_word) with op one of equal, substitute,
    delete (hyp_word None) or insert (ref_word None), in reading order. `normalize` is applied to both
    first (e.g. `normalizer_for("en")`)."""
    if normalize is not None:
        ref, hyp = normalize(ref), normalize(hyp)
    if not ref.split() and not hyp.split():
        return []
    out = jiwer.process_words(ref, hyp)
    ref_words, hyp_words = out.references[0], out.hypotheses[0]
    ops: list[tuple[str, str | None, str | None]] = []
    for chunk in out.alignments[0]:
        r = ref_words[chunk.ref_start_idx:chunk.ref_end_idx]
        h = hyp_words[chunk.hyp_start_idx:chunk.hyp_end_idx]
        if chunk.type in ("equal", "substitute"):
            ops.extend((chunk.type, a, b) for a, b in zip(r, h))
        elif chunk.type == "delete":
            ops.extend(("delete", a, None) for a in r)
        elif chunk.type == "insert":
            ops.extend(("insert", None, b) for b in h)
        else:  # a jiwer version with a new op type: fail loudly rather than mark errors wrongly
            raise ValueError(f"unknown alignment op {chunk.type!r}")
    return ops


@dataclass(frozen=True)
class Scores:
    wer: float  # orthographic: text as written, only whitespace collapsed
    wer_normalized: float  # after `normalizer`
    cer: float  # after `normalizer`; spaces removed first for spaceless languages (they carry no meaning there)
    normalizer: str
    headline: str  # "wer" or "cer": the number to show first
    n: int
    ref_words: int  # words in the references as written (the orthographic WER's denominator)

    @property
    def headline_value(self) -> float:
        return self.cer if self.headline == "cer" else self.wer_normalized


def score(refs: Sequence[str], hyps: Sequence[str], language: str | Language | None) -> Scores:
    """Score `hyps` against `refs` (same length, same order) the one way everything reports it."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    normalize = normalizer_for(language)
    headline = headline_metric(language)
    refs_o, hyps_o = [_collapse(r) for r in refs], [_collapse(h) for h in hyps]
    refs_n, hyps_n = [normalize(r) for r in refs], [normalize(h) for h in hyps]
    if headline == "cer":
        refs_c, hyps_c = ["".join(r.split()) for r in refs_n], ["".join(h.split()) for h in hyps_n]
    else:
        refs_c, hyps_c = refs_n, hyps_n
    return Scores(
        wer=corpus_wer(refs_o, hyps_o),
        wer_normalized=corpus_wer(refs_n, hyps_n),
        cer=corpus_cer(refs_c, hyps_c),
        normalizer=normalize.name,
        headline=headline,
        n=len(refs),
        ref_words=sum(len(r.split()) for r in refs_o),
    )


# --- hallucination audit ----------------------------------------------------------------------------------
MAX_NGRAM = 4  # loops of 1- to 4-unit phrases ("the the the", "thank you thank you thank you")
MIN_LOOP_COPIES = 3  # back-to-back copies that make a loop; two ("very very", "no no") are ordinary speech
INSERTION_RATE_FLAG = 0.2  # "insertions": inserted units >= 20% of the reference's ...
INSERTIONS_FLAG_MIN = 2  # ... and at least 2 of them (one extra word in a five-word clip is not a hallucination)
TOO_LONG_RATIO = 1.5  # "too long": the hypothesis has more than 1.5x the reference's units ...
TOO_LONG_EXCESS_MIN = 3  # ... and at least 3 more (a 2-word clip read as 4 words is not a runaway)
FLAGS = ("repeats", "insertions", "empty", "too long")


def repeated_ngrams(tokens: Sequence[str]) -> int:
    """The number of extra back-to-back copies of 1- to MAX_NGRAM-grams, counted where a phrase occurs at
    least MIN_LOOP_COPIES times in a row.

    Scan left to right; at each position take the n (1..MAX_NGRAM) whose run of k consecutive identical
    n-grams covers the most tokens (k * n; ties go to the smaller n). If k >= MIN_LOOP_COPIES add k - 1 and
    jump past the run, otherwise move one token on. "the the the the" -> 3; "a b a b a b" -> 2;
    "very very good" -> 0."""
    total, i, size = 0, 0, len(tokens)
    while i < size:
        best_k, best_n = 1, 1
        for n in range(1, MAX_NGRAM + 1):
            gram = tuple(tokens[i:i + n])
            if len(gram) < n:
                break
            k = 1
            while tuple(tokens[i + k * n:i + (k + 1) * n]) == gram:
                k += 1
            if k * n > best_k * best_n and k >= MIN_LOOP_COPIES:
                best_k, best_n = k, n
        if best_k >= MIN_LOOP_COPIES:
            total += best_k - 1
            i += best_k * best_n
        else:
            i += 1
    return total


@dataclass(frozen=True)
class Audit:
    """One utterance's hallucination signs, on normalized text. Units are words, or characters (spaces
    dropped) for languages written without spaces. A reference with no units counts as one unit in the
    rates, so an empty reference with a hypothesis of three words gives insertion_rate 3.0, not an error."""

    repeated_ngrams: int  # repeated_ngrams(hyp) beyond the reference's own (a reference may say "no no no")
    insertions: int  # inserted units in the jiwer alignment of hyp against ref
    insertion_rate: float  # insertions / reference units
    empty: bool  # the hypothesis is blank while the reference is not
    length_ratio: float  # hypothesis units / reference units
    flags: tuple[str, ...]  # a subset of FLAGS, in FLAGS order

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


def _units(text: str, spaceless: bool) -> list[str]:
    return list("".join(text.split())) if spaceless else text.split()


def audit(ref: str, hyp: str, language: str | Language | None = None) -> Audit:
    """Audit one hypothesis against its reference (thresholds: the module constants above)."""
    # 1. Normalize, so punctuation and case neither hide a loop ("The, the, the") nor invent insertions.
    normalize = normalizer_for(language)
    spaceless = is_spaceless(language)
    ref_units, hyp_units = _units(normalize(ref or ""), spaceless), _units(normalize(hyp or ""), spaceless)
    # 2. Insertions from the alignment (units joined by spaces, so jiwer aligns them one by one).
    if ref_units or hyp_units:
        insertions = int(jiwer.process_words(" ".join(ref_units), " ".join(hyp_units)).insertions)
    else:
        insertions = 0
    denominator = max(len(ref_units), 1)
    repeats = max(0, repeated_ngrams(hyp_units) - repeated_ngrams(ref_units))
    insertion_rate = insertions / denominator
    length_ratio = len(hyp_units) / denominator
    empty = not hyp_units and bool(ref_units)
    # 3. Flags.
    raised = {
        "repeats": repeats > 0,
        "insertions": insertions >= INSERTIONS_FLAG_MIN and insertion_rate >= INSERTION_RATE_FLAG,
        "empty": empty,
        "too long": length_ratio > TOO_LONG_RATIO and len(hyp_units) - len(ref_units) >= TOO_LONG_EXCESS_MIN,
    }
    return Audit(
        repeated_ngrams=repeats,
        insertions=insertions,
        insertion_rate=insertion_rate,
        empty=empty,
        length_ratio=length_ratio,
        flags=tuple(name for name in FLAGS if raised[name]),
    )


def audit_summary(audits: Iterable[Audit]) -> dict[str, Any]:
    """{"n", "flagged", "share_flagged", "flags": {flag: count for every flag in FLAGS}, "mean_length_ratio"}."""
    items = list(audits)
    counts = {name: sum(name in a.flags for a in items) for name in FLAGS}
    flagged = sum(a.flagged for a in items)
    return {
        "n": len(items),
        "flagged": flagged,
        "share_flagged": flagged / len(items) if items else 0.0,
        "flags": counts,
        "mean_length_ratio": sum(a.length_ratio for a in items) / len(items) if items else None,
    }


# --- text -------------------------------------------------------------------------------------------------
MISSING = "—"
MINUS = "−"  # U+2212, so a negative number lines up with a positive one in proportional fonts


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent(fraction: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: 0.361 -> "36.1%", 2.1 -> "210.0%", None -> "—". Always 100 * value."""
    if _missing(fraction):
        return MISSING
    text = f"{100 * float(fraction):.{digits}f}%"
    return MINUS + text[1:] if text.startswith("-") else text


def points(delta: float | None, digits: int = 1) -> str:
    """A difference of two fractions in percentage points: -0.052 -> "−5.2 pts", 0.03 -> "+3.0 pts"."""
    if _missing(delta):
        return MISSING
    value = round(100 * float(delta), digits)
    if value == 0:
        return f"{0:.{digits}f} pts"
    sign = "+" if value > 0 else MINUS
    return f"{sign}{abs(value):.{digits}f} pts"


# --- base-transcript cache --------------------------------------------------------------------------------
class BaseTranscriptCache:
    """The base model's transcripts, kept per (model, data, language, task, decoding settings).

    Re-evaluating a run, or evaluating another run on the same data, then skips the base pass. One JSON file
    per key under cache_dir()/base-transcripts. The cache is an optimisation only: a file that cannot be read
    is a miss and a write that fails (read-only or full disk) is logged and skipped, never an error.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self._root = Path(root) if root is not None else None
        self.hits = 0
        self.misses = 0

    @property
    def root(self) -> Path:
        if self._root is None:
            from whisper_studio import paths

            self._root = paths.cache_dir() / "base-transcripts"
        return self._root

    @staticmethod
    def key(model: str, data: str, language: str | Language, task: str, decoding: Mapping[str, Any]) -> str:
        """sha256 of the model id or folder stamp, the data fingerprint, the language, task and decoding settings."""
        code = _whisper_code(language)  # "mr", "Marathi" and a Language all name one decoder language
        blob = json.dumps([str(model), str(data), code, str(task), dict(decoding)],
                          sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> list[str] | None:
        try:
            texts = json.loads(self._path(key).read_text(encoding="utf-8")).get("texts")
        except (OSError, ValueError, AttributeError):
            texts = None
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self.misses += 1
            return None
        self.hits += 1
        return texts

    def put(self, key: str, texts: Sequence[str]) -> None:
        from whisper_studio.util import write_json_atomic

        try:
            write_json_atomic(self._path(key), {"texts": [str(t) for t in texts]})
        except OSError as exc:
            log.warning("base-transcript cache not written (%s); evaluation goes on without it", exc)
