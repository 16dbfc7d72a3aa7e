"""Marathi sentences (Devanagari), subject-object-verb.

Agreement: the habitual present agrees with the subject's person and (in the singular) gender; the
progressive, the negative present and the future agree with person only; the past of transitive verbs takes
an ergative subject (त्याने, तिने, माझ्या भावाने) and agrees with the object's gender and number.
Adjectives ending in -आ inflect (नवा/नवी/नवे, plural नवे/नव्या/नवी); the others do not.
"""

from __future__ import annotations

import random

# (nominative, ergative or None where the past is not generated, gender m/f/n, person 1s 2s 3s 1p 2p 3p)
SUBJECTS = [
    ("मी", "मी", "m", "1s"), ("मी", "मी", "f", "1s"), ("तू", None, "m", "2s"), ("तू", None, "f", "2s"),
    ("आम्ही", "आम्ही", "m", "1p"), ("तुम्ही", None, "m", "2p"), ("तो", "त्याने", "m", "3s"),
    ("ती", "तिने", "f", "3s"), ("ते", "त्यांनी", "m", "3p"),
    ("माझा भाऊ", "माझ्या भावाने", "m", "3s"), ("माझी बहीण", "माझ्या बहिणीने", "f", "3s"),
    ("आमचा शेजारी", "आमच्या शेजाऱ्याने", "m", "3s"), ("माझा मित्र", "माझ्या मित्राने", "m", "3s"),
    ("माझी मैत्रीण", "माझ्या मैत्रिणीने", "f", "3s"), ("ती मुलगी", "त्या मुलीने", "f", "3s"),
    ("हा मुलगा", "या मुलाने", "m", "3s"), ("मुले", "मुलांनी", "n", "3p"), ("माझे मित्र", "माझ्या मित्रांनी", "m", "3p"),
    ("शेतकरी", "शेतकऱ्यांनी", "m", "3p"),
]
# (singular, plural or None for mass nouns, gender)
NOUNS = {
    "text": [("पुस्तक", "पुस्तके", "n"), ("पत्र", "पत्रे", "n"), ("वर्तमानपत्र", "वर्तमानपत्रे", "n"),
             ("गोष्ट", "गोष्टी", "f"), ("कविता", "कविता", "f"), ("निबंध", "निबंध", "m")],
    "food": [("आंबा", "आंबे", "m"), ("केळे", "केळी", "n"), ("सफरचंद", "सफरचंदे", "n"), ("भाकरी", "भाकरी", "f"),
             ("पोळी", "पोळ्या", "f"), ("लाडू", "लाडू", "m"), ("जेवण", None, "n")],
    "meal": [("जेवण", None, "n"), ("भाजी", None, "f"), ("वरण", None, "n"), ("चहा", None, "m"), ("पोळी", "पोळ्या", "f")],
    "drink": [("चहा", None, "m"), ("पाणी", None, "n"), ("दूध", None, "n"), ("कॉफी", None, "f")],
    "thing": [("पिशवी", "पिशव्या", "f"), ("खुर्ची", "खुर्च्या", "f"), ("घड्याळ", "घड्याळे", "n"),
              ("सायकल", "सायकली", "f"), ("शर्ट", "शर्ट", "m"), ("टेबल", "टेबले", "n"), ("छत्री", "छत्र्या", "f"),
              ("पेटी", "पेट्या", "f"), ("किल्ली", "किल्ल्या", "f")],
    "room": [("खोली", "खोल्या", "f"), ("खिडकी", "खिडक्या", "f"), ("गाडी", "गाड्या", "f"), ("दार", "दारे", "n")],
    "show": [("चित्रपट", "चित्रपट", "m"), ("सामना", "सामने", "m"), ("नाटक", "नाटके", "n")],
    "sound": [("गाणे", "गाणी", "n"), ("गोष्ट", "गोष्टी", "f"), ("बातमी", "बातम्या", "f")],
}
ADJECTIVES = {
    "text": ["नवा", "जुना", "लांब", "छोटा", "चांगला", "मजेदार"],
    "food": ["ताजा", "गोड", "मोठा", "छोटा", "चांगला"],
    "meal": ["गरम", "ताजा", "चांगला", "स्वादिष्ट"],
    "drink": ["गरम", "थंड", "गोड", "ताजा"],
    "thing": ["नवा", "जुना", "मोठा", "छोटा", "लाल", "निळा", "हिरवा", "जड", "स्वस्त", "महाग", "सुंदर"],
    "room": ["नवा", "जुना", "मोठा", "छोटा", "सुंदर"],
    "show": ["नवा", "जुना", "लांब", "चांगला", "मजेदार"],
    "sound": ["नवा", "जुना", "चांगला", "लांब", "सुंदर"],
}
PERSONS = ("1s", "2s", "3s", "1p", "2p", "3p")


def _regular(stem: str, past: str | None = None, classes=()):
    """A consonant-final stem: वाचतो, वाचत आहे, वाचेन/वाचशील/वाचेल/वाचू/वाचाल/वाचतील, वाचला."""
    future = dict(zip(PERSONS, (stem + "ेन", stem + "शील", stem + "ेल", stem + "ू", stem + "ाल", stem + "तील")))
    return {"pres": stem, "future": future, "past": past or stem + "ल", "classes": list(classes)}


def _irregular(pres: str, future: tuple, past: str, classes):
    return {"pres": pres, "future": dict(zip(PERSONS, future)), "past": past, "classes": list(classes)}


VERBS = [
    _regular("वाच", classes=["text"]),
    _irregular("लिहि", ("लिहीन", "लिहिशील", "लिहील", "लिहू", "लिहाल", "लिहितील"), "लिहिल", ["text"]),
    _irregular("खा", ("खाईन", "खाशील", "खाईल", "खाऊ", "खाल", "खातील"), "खाल्ल", ["food"]),
    _irregular("पि", ("पिईन", "पिशील", "पिईल", "पिऊ", "प्याल", "पितील"), "प्यायल", ["drink"]),
    _regular("तयार कर", "तयार केल", ["meal"]),
    _irregular("विकत घे", ("विकत घेईन", "विकत घेशील", "विकत घेईल", "विकत घेऊ", "विकत घ्याल", "विकत घेतील"),
               "विकत घेतल", ["thing", "food"]),
    _regular("विक", classes=["thing", "food"]),
    _regular("आण", classes=["thing", "food"]),
    _regular("बघ", "बघितल", ["show"]),
    _regular("शोध", classes=["thing"]),
    _regular("स्वच्छ कर", "स्वच्छ केल", ["room"]),
    _regular("उघड", classes=["room"]),
    _regular("ऐक", classes=["sound"]),
    _regular("पाठव", classes=["text"]),
]
HABIT = {("1s", "m"): "तो", ("1s", "f"): "ते", ("2s", "m"): "तोस", ("2s", "f"): "तेस", ("3s", "m"): "तो",
         ("3s", "f"): "ते", ("3s", "n"): "ते", "1p": "तो", "2p": "ता", "3p": "तात"}
PROGRESSIVE = {"1s": "त आहे", "2s": "त आहेस", "3s": "त आहे", "1p": "त आहोत", "2p": "त आहात", "3p": "त आहेत"}
NEGATIVE = {"1s": "त नाही", "2s": "त नाहीस", "3s": "त नाही", "1p": "त नाही", "2p": "त नाही", "3p": "त नाहीत"}
# Past participle endings by the object's (gender, plural)
PAST = {("m", False): "ा", ("f", False): "ी", ("n", False): "े", ("m", True): "े", ("f", True): "्या", ("n", True): "ी"}

PLACES = ["बागेत", "घरी", "स्वयंपाकघरात", "बाजारात", "ग्रंथालयात", "शाळेत", "कार्यालयात", "नदीकाठी",
          "उद्यानात", "स्टेशनवर", "गावात", "बसमध्ये"]
TIMES = {
    "habit": ["रोज सकाळी", "रोज संध्याकाळी", "रविवारी", "दुपारी", "नेहमी", "कधी कधी", "आठवड्यातून दोनदा"],
    "now": ["आता", "सध्या", "आज"],
    "past": ["काल", "मागच्या आठवड्यात", "आज सकाळी", "दोन दिवसांपूर्वी", "शनिवारी", "मागच्या महिन्यात"],
    "future": ["उद्या", "पुढच्या आठवड्यात", "आज रात्री", "शुक्रवारी", "लवकरच", "परवा"],
}
NUMBERS = ["दोन", "तीन", "चार", "पाच", "सहा", "सात", "आठ", "नऊ", "दहा", "बारा", "वीस"]


def _adj(adj: str, gender: str, plural: bool) -> str:
    if not adj.endswith("ा"):
        return adj
    return adj[:-1] + PAST[(gender, plural)]  # the same endings as the past participle: नवा नवी नवे / नवे नव्या नवी


def _habit(person: str, gender: str) -> str:
    return HABIT[(person, gender)] if person in ("1s", "2s", "3s") else HABIT[person]


def _object(rng: random.Random, cls: str):
    """(text, gender, plural) of an unmarked object noun phrase."""
    noun, plural_form, gender = rng.choice(NOUNS[cls])
    adj = rng.choice(ADJECTIVES[cls]) if rng.random() < 0.6 else None
    if plural_form and rng.random() < 0.2:
        return f"{rng.choice(NUMBERS)} {_adj(adj, gender, True) + ' ' if adj else ''}{plural_form}", gender, True
    prefix = "एक " if plural_form and rng.random() < 0.25 else ""
    return f"{prefix}{_adj(adj, gender, False) + ' ' if adj else ''}{noun}", gender, False


def sentence(rng: random.Random) -> str:
    kind = rng.choices(["habit", "progressive", "future", "past", "negative", "question", "there", "predicate"],
                       weights=[16, 12, 14, 16, 8, 8, 8, 8])[0]
    subjects = [s for s in SUBJECTS if s[1]] if kind == "past" else SUBJECTS
    subj, erg, gender, person = rng.choice(subjects)
    verb = rng.choice(VERBS)
    cls = rng.choice(verb["classes"])
    place = rng.choice(PLACES)
    obj, og, oplural = _object(rng, cls)
    pres = verb["pres"]
    if kind == "habit":
        text = f"{subj} {rng.choice(TIMES['habit'])} {place} {obj} {pres}{_habit(person, gender)}."
    elif kind == "progressive":
        text = f"{subj} {rng.choice(TIMES['now'])} {place} {obj} {pres}{PROGRESSIVE[person]}."
    elif kind == "future":
        text = f"{subj} {rng.choice(TIMES['future'])} {place} {obj} {verb['future'][person]}."
    elif kind == "past":  # ergative subject; the verb agrees with the object
        when = rng.choice(TIMES["past"])
        first, second = (when, erg) if rng.random() < 0.5 else (erg, when)
        text = f"{first} {second} {place} {obj} {verb['past']}{PAST[(og, oplural)]}."
    elif kind == "negative":
        text = f"{subj} {rng.choice(TIMES['habit'])} {obj} {pres}{NEGATIVE[person]}."
    elif kind == "question":  # a yes/no question ends in का
        text = f"{subj} {rng.choice(TIMES['habit'])} {place} {obj} {pres}{_habit(person, gender)} का?"
    elif kind == "there":
        cls = rng.choice(["thing", "food", "text"])
        noun, plural_form, g = rng.choice([n for n in NOUNS[cls] if n[1]])
        text = f"{place} {rng.choice(NUMBERS)} {_adj(rng.choice(ADJECTIVES[cls]), g, True)} {plural_form} आहेत."
    else:  # possessive + predicate adjective, both agreeing with the noun
        cls = rng.choice(["thing", "text", "room", "show"])
        noun, _, g = rng.choice(NOUNS[cls])
        owner = rng.choice(["माझा", "आमचा", "त्याचा", "तुझा"])
        degree = rng.choice(["खूप", "फार", "अगदी"])
        text = f"{_adj(owner, g, False)} {noun} {degree} {_adj(rng.choice(ADJECTIVES[cls]), g, False)} आहे."
    return text
