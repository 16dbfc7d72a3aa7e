"""English sentences: subject-verb agreement, tense, a/an, countable vs mass nouns."""

from __future__ import annotations

import random

from whisper_studio.sentences import capitalize

# (text, person): 1s, 2, 3s, 1p, 3p
SUBJECTS = [
    ("I", "1s"), ("you", "2"), ("we", "1p"), ("they", "3p"), ("he", "3s"), ("she", "3s"),
    ("my brother", "3s"), ("my sister", "3s"), ("the teacher", "3s"), ("our neighbour", "3s"),
    ("the old farmer", "3s"), ("the young doctor", "3s"), ("my grandmother", "3s"), ("my uncle", "3s"),
    ("the children", "3p"), ("my friends", "3p"), ("the students", "3p"), ("my parents", "3p"),
]

# Nouns by class: (singular, plural or None for mass nouns)
NOUNS = {
    "text": [("book", "books"), ("letter", "letters"), ("newspaper", "newspapers"), ("story", "stories"),
             ("poem", "poems"), ("message", "messages"), ("report", "reports")],
    "food": [("apple", "apples"), ("sandwich", "sandwiches"), ("orange", "oranges"), ("cake", "cakes"),
             ("soup", None), ("bread", None), ("rice", None), ("banana", "bananas")],
    "drink": [("tea", None), ("coffee", None), ("milk", None), ("juice", None), ("water", None)],
    "thing": [("bag", "bags"), ("chair", "chairs"), ("lamp", "lamps"), ("bicycle", "bicycles"),
              ("shirt", "shirts"), ("table", "tables"), ("key", "keys"), ("watch", "watches"),
              ("suitcase", "suitcases"), ("umbrella", "umbrellas"), ("box", "boxes")],
    "room": [("kitchen", "kitchens"), ("window", "windows"), ("car", "cars"), ("room", "rooms"), ("door", "doors")],
    "meal": [("soup", None), ("rice", None), ("fish", None), ("egg", "eggs"), ("potato", "potatoes")],
    "fixable": [("lamp", "lamps"), ("bicycle", "bicycles"), ("watch", "watches"), ("chair", "chairs"),
                ("table", "tables"), ("umbrella", "umbrellas"), ("door", "doors"), ("window", "windows"), ("car", "cars")],
    "openable": [("door", "doors"), ("window", "windows"), ("box", "boxes"), ("suitcase", "suitcases"),
                 ("bag", "bags"), ("letter", "letters")],
    "show": [("film", "films"), ("match", "matches"), ("play", "plays")],
    "song": [("song", "songs"), ("story", "stories"), ("news", None)],
}
ADJECTIVES = {
    "text": ["long", "short", "old", "new", "interesting", "funny", "sad"],
    "food": ["fresh", "sweet", "hot", "cold", "delicious", "small", "big"],
    "drink": ["hot", "cold", "fresh", "sweet"],
    "thing": ["old", "new", "small", "big", "red", "blue", "green", "heavy", "cheap", "expensive", "beautiful"],
    "room": ["old", "new", "small", "big", "dirty", "white"],
    "meal": ["hot", "fresh", "delicious", "cold"],
    "fixable": ["old", "new", "broken", "small", "heavy", "red", "blue"],
    "openable": ["old", "new", "small", "big", "heavy", "red", "blue"],
    "show": ["long", "new", "old", "funny", "exciting"],
    "song": ["old", "new", "sad", "beautiful", "long"],
}
# (base, third person singular, past, -ing, noun classes)
VERBS = [
    ("read", "reads", "read", "reading", ["text"]),
    ("write", "writes", "wrote", "writing", ["text"]),
    ("eat", "eats", "ate", "eating", ["food"]),
    ("drink", "drinks", "drank", "drinking", ["drink"]),
    ("cook", "cooks", "cooked", "cooking", ["meal"]),
    ("buy", "buys", "bought", "buying", ["thing", "food"]),
    ("sell", "sells", "sold", "selling", ["thing", "food"]),
    ("carry", "carries", "carried", "carrying", ["thing"]),
    ("find", "finds", "found", "finding", ["thing"]),
    ("look for", "looks for", "looked for", "looking for", ["thing"]),
    ("bring", "brings", "brought", "bringing", ["thing", "food", "drink"]),
    ("clean", "cleans", "cleaned", "cleaning", ["room", "thing"]),
    ("paint", "paints", "painted", "painting", ["room"]),
    ("fix", "fixes", "fixed", "fixing", ["fixable"]),
    ("watch", "watches", "watched", "watching", ["show"]),
    ("send", "sends", "sent", "sending", ["text"]),
    ("listen to", "listens to", "listened to", "listening to", ["song"]),
    ("open", "opens", "opened", "opening", ["openable"]),
]
PLACES = ["in the garden", "at home", "in the kitchen", "at the market", "in the library", "at school",
          "in the office", "near the river", "in the park", "at the station", "in the village", "on the bus"]
TIMES = {
    "habit": ["every morning", "every evening", "on Sundays", "after lunch", "twice a week", "in the afternoon",
              "every day", "on weekends"],
    "past": ["yesterday", "last week", "this morning", "two days ago", "last Saturday", "last month", "on Monday"],
    "future": ["tomorrow", "next week", "tonight", "on Friday", "next month", "after dinner", "soon"],
    "now": ["right now", "at the moment", "today"],
}
NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "twenty"]
PRICES = ["five", "ten", "fifteen", "twenty", "thirty", "forty", "fifty", "a hundred"]


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _object(rng: random.Random, cls: str) -> str:
    """A noun phrase: a/an (+ adjective) + noun, 'the' + noun, 'some' + mass noun, or a number + plural."""
    noun, plural = rng.choice(NOUNS[cls])
    adj = rng.choice(ADJECTIVES[cls]) if rng.random() < 0.6 else None
    if (plural is None and adj in ("small", "big")) or noun == "news":  # not "some big rice", "the long news"
        adj = None
    head = f"{adj} {noun}" if adj else noun
    r = rng.random()
    if plural is None:  # mass noun: no a/an, no numbers
        return f"the {head}" if r < 0.4 else (f"some {head}" if r < 0.8 else f"a cup of {head}" if cls == "drink" else f"some {head}")
    if r < 0.45:
        return _a(head)
    if r < 0.75:
        return f"the {head}"
    if r < 0.9:
        return f"{rng.choice(NUMBERS)} {adj + ' ' if adj else ''}{plural}"
    return f"my {head}"


def _present(verb, person):
    return verb[1] if person == "3s" else verb[0]


def _be(person):
    return {"1s": "am", "3s": "is"}.get(person, "are")


def _do(person):
    return "does" if person == "3s" else "do"


def sentence(rng: random.Random) -> str:
    subj, person = rng.choice(SUBJECTS)
    kind = rng.choices(["present", "past", "future", "progressive", "negative", "question", "past_question",
                        "there", "price", "predicate"], weights=[14, 14, 12, 10, 8, 7, 6, 8, 5, 6])[0]
    # "is finding" is not idiomatic: find has no progressive.
    verb = rng.choice([v for v in VERBS if not (kind == "progressive" and v[0] == "find")])
    obj = _object(rng, rng.choice(verb[4]))
    if kind in ("negative", "question", "past_question"):
        obj = obj.replace("some ", "any ")  # "did not buy any soup", "do you drink any milk"
    # Not "paint the kitchen in the kitchen".
    place = rng.choice([p for p in PLACES if p.split()[-1] not in obj])
    if kind == "present":
        text = f"{subj} {_present(verb, person)} {obj} {place} {rng.choice(TIMES['habit'])}."
    elif kind == "past":
        if rng.random() < 0.5:
            text = f"{capitalize(rng.choice(TIMES['past']))}, {subj} {verb[2]} {obj} {place}."
        else:
            text = f"{subj} {verb[2]} {obj} {place} {rng.choice(TIMES['past'])}."
    elif kind == "future":
        text = f"{subj} will {verb[0]} {obj} {place} {rng.choice(TIMES['future'])}."
    elif kind == "progressive":
        text = f"{subj} {_be(person)} {verb[3]} {obj} {place} {rng.choice(TIMES['now'])}."
    elif kind == "negative":
        neg = rng.choice([f"{_do(person)} not {verb[0]}", f"did not {verb[0]}", f"will not {verb[0]}"])
        text = f"{subj} {neg} {obj} {place}."
    elif kind == "question":
        text = f"{_do(person)} {subj} {verb[0]} {obj} {place} {rng.choice(TIMES['habit'])}?"
    elif kind == "past_question":
        text = f"did {subj} {verb[0]} {obj} {place} {rng.choice(TIMES['past'])}?"
    elif kind == "there":
        cls = rng.choice(["thing", "food", "text"])
        noun, plural = rng.choice([n for n in NOUNS[cls] if n[1]])
        adj = rng.choice(ADJECTIVES[cls])
        if rng.random() < 0.25:
            text = f"there is {_a(adj + ' ' + noun)} {place}."
        else:
            text = f"there are {rng.choice(NUMBERS)} {adj} {plural} {place}."
    elif kind == "price":
        cls = rng.choice(["thing", "food"])
        noun, plural = rng.choice([n for n in NOUNS[cls] if n[1]])
        count = rng.choice(NUMBERS)
        text = f"{subj} {rng.choice(['bought', 'sold'])} {count} {plural} for {rng.choice(PRICES)} dollars {rng.choice(TIMES['past'])}."
    else:  # predicate adjective
        cls = rng.choice(["thing", "text", "food", "fixable"])
        noun, plural = rng.choice(NOUNS[cls])
        adj = rng.choice(ADJECTIVES[cls])
        degree = rng.choice(["very", "quite", "too", "not very"])
        if plural and rng.random() < 0.4:
            text = f"the {plural} {place} are {degree} {adj}."
        else:
            text = f"the {noun} {place} is {degree} {adj}."
    return capitalize(text)
