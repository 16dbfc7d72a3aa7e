"""Hindi sentences (Devanagari), subject-object-verb.

Agreement: habitual and progressive verbs and the future agree with the subject's gender, number and
person; the perfective past of transitive verbs takes the ergative ने and agrees with the object instead.
Adjectives ending in -आ inflect with the noun (अच्छा/अच्छी/अच्छे); the others do not.
"""

from __future__ import annotations

import random

# (nominative, ergative, gender m/f, person): person 1s (मैं), 2 (तुम), 3s, 1p (हम), 3p
SUBJECTS = [
    ("मैं", "मैंने", "m", "1s"), ("मैं", "मैंने", "f", "1s"), ("तुम", "तुमने", "m", "2"), ("तुम", "तुमने", "f", "2"),
    ("हम", "हमने", "m", "1p"), ("वह", "उसने", "m", "3s"), ("वह", "उसने", "f", "3s"), ("वे", "उन्होंने", "m", "3p"),
    ("मेरा भाई", "मेरे भाई ने", "m", "3s"), ("मेरी बहन", "मेरी बहन ने", "f", "3s"),
    ("हमारा पड़ोसी", "हमारे पड़ोसी ने", "m", "3s"), ("मेरा दोस्त", "मेरे दोस्त ने", "m", "3s"),
    ("मेरी सहेली", "मेरी सहेली ने", "f", "3s"), ("वह लड़की", "उस लड़की ने", "f", "3s"),
    ("यह लड़का", "इस लड़के ने", "m", "3s"), ("छोटा बच्चा", "छोटे बच्चे ने", "m", "3s"),
    ("बच्चे", "बच्चों ने", "m", "3p"), ("मेरे दोस्त", "मेरे दोस्तों ने", "m", "3p"),
    ("लड़कियाँ", "लड़कियों ने", "f", "3p"), ("किसान", "किसानों ने", "m", "3p"),
]
# (singular, plural or None for mass nouns, gender)
NOUNS = {
    "text": [("किताब", "किताबें", "f"), ("चिट्ठी", "चिट्ठियाँ", "f"), ("अख़बार", "अख़बार", "m"),
             ("कहानी", "कहानियाँ", "f"), ("कविता", "कविताएँ", "f"), ("पत्र", "पत्र", "m")],
    "food": [("आम", "आम", "m"), ("रोटी", "रोटियाँ", "f"), ("केला", "केले", "m"), ("सेब", "सेब", "m"),
             ("मिठाई", "मिठाइयाँ", "f"), ("खाना", None, "m")],
    "meal": [("खाना", None, "m"), ("दाल", None, "f"), ("सब्ज़ी", None, "f"), ("चाय", None, "f"), ("रोटी", "रोटियाँ", "f")],
    "drink": [("चाय", None, "f"), ("पानी", None, "m"), ("दूध", None, "m"), ("कॉफ़ी", None, "f")],
    "thing": [("थैला", "थैले", "m"), ("कुर्सी", "कुर्सियाँ", "f"), ("घड़ी", "घड़ियाँ", "f"),
              ("साइकिल", "साइकिलें", "f"), ("कमीज़", "कमीज़ें", "f"), ("मेज़", "मेज़ें", "f"),
              ("छाता", "छाते", "m"), ("बक्सा", "बक्से", "m"), ("चाबी", "चाबियाँ", "f")],
    "room": [("कमरा", "कमरे", "m"), ("खिड़की", "खिड़कियाँ", "f"), ("गाड़ी", "गाड़ियाँ", "f"), ("दरवाज़ा", "दरवाज़े", "m")],
    "show": [("फ़िल्म", "फ़िल्में", "f"), ("मैच", "मैच", "m"), ("नाटक", "नाटक", "m")],
    "sound": [("गाना", "गाने", "m"), ("कहानी", "कहानियाँ", "f"), ("ख़बर", "ख़बरें", "f")],
}
# Inflecting adjectives are given in the masculine singular (-आ); the rest are invariant.
ADJECTIVES = {
    "text": ["नया", "पुराना", "लंबा", "छोटा", "अच्छा", "दिलचस्प"],
    "food": ["ताज़ा", "मीठा", "बड़ा", "छोटा", "अच्छा"],
    "meal": ["गरम", "ताज़ा", "अच्छा", "स्वादिष्ट"],
    "drink": ["गरम", "ठंडा", "मीठा", "ताज़ा"],
    "thing": ["नया", "पुराना", "बड़ा", "छोटा", "लाल", "नीला", "हरा", "भारी", "सस्ता", "महँगा", "सुंदर"],
    "room": ["नया", "पुराना", "बड़ा", "छोटा", "गंदा", "सुंदर"],
    "show": ["नया", "पुराना", "लंबा", "अच्छा", "दिलचस्प"],
    "sound": ["नया", "पुराना", "अच्छा", "लंबा", "सुंदर"],
}
# stem, future stem, whether that stem ends in a vowel, perfective stem (+ा/ी/े/ीं), noun classes
VERBS = [
    ("पढ़", "पढ़", False, "पढ़", ["text"]),
    ("लिख", "लिख", False, "लिख", ["text"]),
    ("खा", "खा", True, "खाय", ["food"]),
    ("पी", "पि", True, "पिय", ["drink"]),
    ("बना", "बना", True, "बनाय", ["meal"]),
    ("ख़रीद", "ख़रीद", False, "ख़रीद", ["thing", "food"]),
    ("बेच", "बेच", False, "बेच", ["thing", "food"]),
    ("देख", "देख", False, "देख", ["show"]),
    ("ढूँढ", "ढूँढ", False, "ढूँढ", ["thing"]),
    ("साफ़ कर", "साफ़ कर", False, "साफ़ किय", ["room"]),
    ("खोल", "खोल", False, "खोल", ["room"]),
    ("सुन", "सुन", False, "सुन", ["sound"]),
    ("भेज", "भेज", False, "भेज", ["text"]),
]
# Perfective endings by object gender/number. Stems ending in य take ा (खाया) but ई/ए for the others
# (खाई, खाए, not खायी): handled in _perfective.
PLACES = ["बगीचे में", "घर पर", "रसोई में", "बाज़ार में", "पुस्तकालय में", "स्कूल में", "दफ़्तर में",
          "नदी के किनारे", "पार्क में", "स्टेशन पर", "गाँव में", "बस में"]
TIMES = {
    "habit": ["हर सुबह", "हर शाम", "रविवार को", "दोपहर को", "रोज़", "कभी-कभी", "हफ़्ते में दो बार"],
    "now": ["अभी", "इस समय", "आज"],
    "past": ["कल", "पिछले हफ़्ते", "आज सुबह", "दो दिन पहले", "शनिवार को", "पिछले महीने"],
    "future": ["कल", "अगले हफ़्ते", "आज रात", "शुक्रवार को", "जल्दी ही", "परसों"],
}
NUMBERS = ["दो", "तीन", "चार", "पाँच", "छह", "सात", "आठ", "नौ", "दस", "बारह", "बीस"]
PRICES = ["दस", "बीस", "पचास", "सौ", "दो सौ", "पाँच सौ"]
AUX = {"1s": "हूँ", "2": "हो", "3s": "है", "1p": "हैं", "3p": "हैं"}


def _adj(adj: str, gender: str, plural: bool) -> str:
    if adj == "नया":  # नई / नए are the usual spellings (not नयी / नये)
        return "नई" if gender == "f" else ("नए" if plural else "नया")
    if not adj.endswith("ा"):
        return adj
    if gender == "f":
        return adj[:-1] + "ी"
    return adj[:-1] + ("े" if plural else "ा")


def _agree(gender: str, person: str) -> str:
    """The -ता/-ती/-ते style ending for a subject: तुम, हम and plurals take the plural masculine."""
    if gender == "f":
        return "ी"
    return "े" if person in ("2", "1p", "3p") else "ा"


def _future(verb, gender: str, person: str) -> str:
    stem, vowel = verb[1], verb[2]
    g = "ी" if gender == "f" else ("े" if person in ("2", "1p", "3p") else "ा")
    if vowel:
        core = {"1s": "ऊँ", "2": "ओ", "3s": "ए", "1p": "एँ", "3p": "एँ"}[person]
    else:
        core = {"1s": "ूँ", "2": "ो", "3s": "े", "1p": "ें", "3p": "ें"}[person]
    return f"{stem}{core}ग{g}"


def _perfective(verb, gender: str, plural: bool) -> str:
    stem = verb[3]
    if stem.endswith("य"):  # खाया / खाई / खाए / खाईं; किया / की / किए / कीं; पिया / पी / पिए / पीं
        base = stem[:-1]
        if base.endswith("ि"):  # किय, पिय
            base = base[:-1]
            return base + ("ीं" if plural else "ी") if gender == "f" else base + ("िए" if plural else "िया")
        return base + ("ईं" if plural else "ई") if gender == "f" else base + ("ए" if plural else "या")
    if gender == "f":
        return stem + ("ीं" if plural else "ी")
    return stem + ("े" if plural else "ा")


def _object(rng: random.Random, cls: str, allow_number: bool = True):
    """(text, gender, plural) of an unmarked object noun phrase."""
    noun, plural_form, gender = rng.choice(NOUNS[cls])
    adj = rng.choice(ADJECTIVES[cls]) if rng.random() < 0.6 else None
    if plural_form and allow_number and rng.random() < 0.2:
        return f"{rng.choice(NUMBERS)} {_adj(adj, gender, True) + ' ' if adj else ''}{plural_form}", gender, True
    prefix = "एक " if plural_form and rng.random() < 0.3 else ""
    return f"{prefix}{_adj(adj, gender, False) + ' ' if adj else ''}{noun}", gender, False


def sentence(rng: random.Random) -> str:
    subj, erg, gender, person = rng.choice(SUBJECTS)
    verb = rng.choice(VERBS)
    cls = rng.choice(verb[4])
    place = rng.choice(PLACES)
    kind = rng.choices(["habit", "progressive", "future", "past", "negative", "question", "there", "predicate"],
                       weights=[16, 12, 14, 16, 8, 8, 8, 8])[0]
    obj, og, oplural = _object(rng, cls)
    stem = verb[0]
    if kind == "habit":
        text = f"{subj} {rng.choice(TIMES['habit'])} {place} {obj} {stem}त{_agree(gender, person)} {AUX[person]}।"
    elif kind == "progressive":
        text = f"{subj} {rng.choice(TIMES['now'])} {place} {obj} {stem} रह{_agree(gender, person)} {AUX[person]}।"
    elif kind == "future":
        text = f"{subj} {rng.choice(TIMES['future'])} {place} {obj} {_future(verb, gender, person)}।"
    elif kind == "past":  # ergative: the verb agrees with the object
        when = rng.choice(TIMES["past"])
        first, second = (when, erg) if rng.random() < 0.5 else (erg, when)
        text = f"{first} {second} {place} {obj} {_perfective(verb, og, oplural)}।"
    elif kind == "negative":  # the habitual negative drops the auxiliary; a feminine plural then nasalises
        ending = _agree(gender, person)
        if gender == "f" and person in ("1p", "3p"):
            ending = "ीं"
        text = f"{subj} {rng.choice(TIMES['habit'])} {obj} नहीं {stem}त{ending}।"
    elif kind == "question":
        text = f"क्या {subj} {rng.choice(TIMES['habit'])} {place} {obj} {stem}त{_agree(gender, person)} {AUX[person]}?"
    elif kind == "there":
        cls = rng.choice(["thing", "food", "text"])
        noun, plural_form, g = rng.choice([n for n in NOUNS[cls] if n[1]])
        adj = _adj(rng.choice(ADJECTIVES[cls]), g, True)
        text = f"{place} {rng.choice(NUMBERS)} {adj} {plural_form} हैं।"
    else:  # possessive + predicate adjective, both agreeing with the noun
        cls = rng.choice(["thing", "text", "room", "show"])
        noun, _, g = rng.choice(NOUNS[cls])
        owner = rng.choice(["मेरा", "हमारा", "उसका", "तुम्हारा"])
        degree = rng.choice(["बहुत", "काफ़ी", "बेहद"])
        text = f"{_adj(owner, g, False)} {noun} {degree} {_adj(rng.choice(ADJECTIVES[cls]), g, False)} है।"
    return text
