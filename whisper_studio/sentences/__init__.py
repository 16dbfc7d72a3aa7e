"""Sentence generators for the synthetic demo corpus: one module per language, written for this project.

Each language module has `sentence(rng: random.Random) -> str`, built from templates and small word lists
(subjects, verbs with their conjugations, objects with gender and number, places, times, numbers as words,
adjectives) so that words agree. The vocabulary is kept to a few hundred words per language on purpose: it
recurs across the train and test splits while whole sentences do not, which is what lets a LoRA adapter
trained on the synthetic train split lower WER on the synthetic test split.
"""

from __future__ import annotations

import importlib
import random
import re
import unicodedata

# locale -> module name under whisper_studio.sentences
LANGUAGE_MODULES = {"en": "en", "de": "de", "es": "es", "hi": "hi", "mr": "mr", "ta": "ta", "fr": "fr", "it": "it", "nl": "nl", "pt": "pt"}


def sentence_key(text: str) -> str:
    """What makes two sentences 'the same' for split disjointness: case, punctuation and spacing ignored."""
    text = unicodedata.normalize("NFC", text).casefold()
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return re.sub(r"\s+", " ", text).strip()


def generator(locale: str):
    """The `sentence(rng)` function for a locale; KeyError when there is none."""
    module = importlib.import_module(f"{__name__}.{LANGUAGE_MODULES[locale]}")
    return module.sentence


def generate(locale: str, n: int, seed: int = 0) -> list[str]:
    """`n` distinct sentences (distinct by `sentence_key`), deterministic for (locale, seed).

    Raises ValueError if the grammar cannot produce that many (a bug in the grammar, not a user error).
    """
    make = generator(locale)
    rng = random.Random(f"whisper-studio-demo:{locale}:{seed}")  # str seeds hash stably across runs
    seen: set[str] = set()
    out: list[str] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"the {locale} grammar produced only {len(out)} distinct sentences of {n} asked")
        text = make(rng)
        key = sentence_key(text)
        if key not in seen:
            seen.add(key)
            out.append(text)
    return out


def capitalize(text: str) -> str:
    """Upper-case the first letter only (str.capitalize would lower-case the rest, e.g. German nouns)."""
    return text[:1].upper() + text[1:]
