"""Tamil sentences (Tamil script), subject-object-verb.

Verbs agree with the subject's person, number, gender and politeness through their ending (படிக்கிறேன்,
படிக்கிறாள், படிக்கிறார்கள்); each verb gives its present, past and future stems, which end in a consonant
with the inherent vowel so a vowel-sign ending attaches to it. Attributive adjectives do not inflect.
"""

from __future__ import annotations

import random

# (subject, ending): the personal ending of the verb. Tamil multiplies verb forms (tense x person x
# question): fewer persons keep the number of distinct words small enough to recur between the splits.
SUBJECTS = [
    ("நான்", "ேன்"), ("நீ", "ாய்"), ("அவன்", "ான்"), ("அவள்", "ாள்"), ("நாங்கள்", "ோம்"), ("அவர்கள்", "ார்கள்"), ("என் தம்பி", "ான்"), ("என் அண்ணன்", "ான்"),
    ("என் தங்கை", "ாள்"), ("என் அக்கா", "ாள்"), ("எங்கள் ஆசிரியர்", "ார்"), ("அந்த மருத்துவர்", "ார்"),
    ("என் நண்பர்கள்", "ார்கள்"), ("குழந்தைகள்", "ார்கள்"), ("அந்த விவசாயி", "ார்"), ("என் பாட்டி", "ார்"),
]
# (singular, plural or None for mass nouns)
NOUNS = {
    "text": [("புத்தகம்", "புத்தகங்கள்"), ("கடிதம்", "கடிதங்கள்"), ("செய்தித்தாள்", "செய்தித்தாள்கள்"),
             ("கதை", "கதைகள்"), ("கவிதை", "கவிதைகள்")],
    "food": [("மாம்பழம்", "மாம்பழங்கள்"), ("வாழைப்பழம்", "வாழைப்பழங்கள்"), ("ஆப்பிள்", "ஆப்பிள்கள்"),
             ("இட்லி", "இட்லிகள்"), ("தோசை", "தோசைகள்"), ("சாதம்", None)],
    "meal": [("சாதம்", None), ("சாம்பார்", None), ("உணவு", None), ("தோசை", "தோசைகள்"), ("இட்லி", "இட்லிகள்")],
    "drink": [("தேநீர்", None), ("காபி", None), ("தண்ணீர்", None), ("பால்", None), ("பழச்சாறு", None)],
    "thing": [("பை", "பைகள்"), ("நாற்காலி", "நாற்காலிகள்"), ("கடிகாரம்", "கடிகாரங்கள்"),
              ("மிதிவண்டி", "மிதிவண்டிகள்"), ("சட்டை", "சட்டைகள்"), ("மேசை", "மேசைகள்"), ("குடை", "குடைகள்"),
              ("பெட்டி", "பெட்டிகள்"), ("சாவி", "சாவிகள்")],
    "door": [("கதவு", "கதவுகள்"), ("ஜன்னல்", "ஜன்னல்கள்"), ("பெட்டி", "பெட்டிகள்")],
    "show": [("திரைப்படம்", "திரைப்படங்கள்"), ("நாடகம்", "நாடகங்கள்"), ("போட்டி", "போட்டிகள்")],
    "sound": [("பாடல்", "பாடல்கள்"), ("கதை", "கதைகள்"), ("செய்தி", "செய்திகள்")],
}
ADJECTIVES = {
    "text": ["புதிய", "பழைய", "நீண்ட", "சிறிய", "நல்ல", "சுவாரசியமான"],
    "food": ["இனிப்பான", "பெரிய", "சிறிய", "நல்ல", "சுவையான"],
    "meal": ["சூடான", "சுவையான", "நல்ல"],
    "drink": ["சூடான", "குளிர்ந்த", "இனிப்பான"],
    "thing": ["புதிய", "பழைய", "பெரிய", "சிறிய", "சிவப்பு", "நீல", "அழகான", "மலிவான", "கனமான"],
    "door": ["புதிய", "பழைய", "பெரிய", "சிறிய"],
    "show": ["புதிய", "பழைய", "நீண்ட", "நல்ல", "சுவாரசியமான"],
    "sound": ["புதிய", "பழைய", "நல்ல", "அழகான", "நீண்ட"],
}
# (present stem, past stem, future stem, noun classes); the future stem + "தில்லை" is the habitual negative
VERBS = [
    ("படிக்கிற", "படித்த", "படிப்ப", ["text"]),
    ("எழுதுகிற", "எழுதின", "எழுதுவ", ["text"]),
    ("சாப்பிடுகிற", "சாப்பிட்ட", "சாப்பிடுவ", ["food"]),
    ("குடிக்கிற", "குடித்த", "குடிப்ப", ["drink"]),
    ("சமைக்கிற", "சமைத்த", "சமைப்ப", ["meal"]),
    ("வாங்குகிற", "வாங்கின", "வாங்குவ", ["thing", "food"]),
    ("விற்கிற", "விற்ற", "விற்ப", ["thing", "food"]),
    ("கொண்டு வருகிற", "கொண்டு வந்த", "கொண்டு வருவ", ["thing", "food"]),
    ("பார்க்கிற", "பார்த்த", "பார்ப்ப", ["show"]),
    ("தேடுகிற", "தேடின", "தேடுவ", ["thing"]),
    ("திறக்கிற", "திறந்த", "திறப்ப", ["door"]),
    ("கேட்கிற", "கேட்ட", "கேட்ப", ["sound"]),
    ("அனுப்புகிற", "அனுப்பின", "அனுப்புவ", ["text"]),
]
PLACES = ["வீட்டில்", "பள்ளியில்", "நூலகத்தில்", "சந்தையில்", "தோட்டத்தில்", "சமையலறையில்", "அலுவலகத்தில்",
          "கடற்கரையில்", "பூங்காவில்", "கிராமத்தில்", "பேருந்தில்", "ரயில் நிலையத்தில்"]
TIMES = {
    "present": ["தினமும் காலையில்", "ஒவ்வொரு மாலையும்", "ஞாயிற்றுக்கிழமைகளில்", "மதியம்", "அடிக்கடி",
                "சில நேரங்களில்", "இப்போது", "இன்று"],
    "past": ["நேற்று", "கடந்த வாரம்", "இன்று காலை", "இரண்டு நாட்களுக்கு முன்பு", "சனிக்கிழமை", "கடந்த மாதம்"],
    "future": ["நாளை", "அடுத்த வாரம்", "இன்று இரவு", "வெள்ளிக்கிழமை", "விரைவில்", "நாளை மறுநாள்"],
}
NUMBERS = ["இரண்டு", "மூன்று", "நான்கு", "ஐந்து", "ஆறு", "ஏழு", "எட்டு", "ஒன்பது", "பத்து", "பன்னிரண்டு", "இருபது"]
# Predicate adjectives (nominalised): "இந்த பை மிகவும் பழையது"
PREDICATES = ["பழையது", "புதியது", "பெரியது", "சிறியது", "அழகானது", "கனமானது", "மலிவானது"]


def _object(rng: random.Random, cls: str) -> str:
    noun, plural = rng.choice(NOUNS[cls])
    adj = rng.choice(ADJECTIVES[cls]) if rng.random() < 0.6 else None
    if plural and rng.random() < 0.2:
        return f"{rng.choice(NUMBERS)} {adj + ' ' if adj else ''}{plural}"
    prefix = "ஒரு " if plural and rng.random() < 0.3 else ""
    return f"{prefix}{adj + ' ' if adj else ''}{noun}"


def _demonstrative(word: str, noun: str) -> str:
    """இந்த/அந்த double a following hard consonant in writing: அந்தப் பை, இந்தக் கதவு."""
    if word in ("இந்த", "அந்த") and noun[0] in "கசதப":
        return f"{word}{noun[0]}்"
    return word


def _question(verb: str) -> str:
    """Yes/no question: the clitic -ஆ replaces the final pulli (படிக்கிறாய் -> படிக்கிறாயா)."""
    assert verb.endswith("்")
    return verb[:-1] + "ா"


def sentence(rng: random.Random) -> str:
    subj, ending = rng.choice(SUBJECTS)
    verb = rng.choice(VERBS)
    cls = rng.choice(verb[3])
    obj = _object(rng, cls)
    place = rng.choice(PLACES)
    kind = rng.choices(["present", "past", "future", "negative", "question", "there", "predicate"],
                       weights=[18, 18, 16, 8, 10, 8, 6])[0]
    if kind == "present":
        text = f"{subj} {rng.choice(TIMES['present'])} {place} {obj} {verb[0]}{ending}."
    elif kind == "past":
        when = rng.choice(TIMES["past"])
        first, second = (when, subj) if rng.random() < 0.5 else (subj, when)
        text = f"{first} {second} {place} {obj} {verb[1]}{ending}."
    elif kind == "future":
        text = f"{subj} {rng.choice(TIMES['future'])} {place} {obj} {verb[2]}{ending}."
    elif kind == "negative":  # habitual negative, the same for every person: படிப்பதில்லை
        text = f"{subj} {rng.choice(TIMES['present'][:6])} {obj} {verb[2]}தில்லை."
    elif kind == "question":  # present tense only, for the same reason
        text = f"{subj} {rng.choice(TIMES['present'])} {place} {obj} {_question(verb[0] + ending)}?"
    elif kind == "there":  # non-human plural: இருக்கின்றன
        cls = rng.choice(["thing", "food", "text"])
        noun, plural = rng.choice([n for n in NOUNS[cls] if n[1]])
        text = f"{place} {rng.choice(NUMBERS)} {rng.choice(ADJECTIVES[cls])} {plural} இருக்கின்றன."
    else:
        cls = rng.choice(["thing", "door"])
        noun, _ = rng.choice(NOUNS[cls])
        owner = rng.choice(["இந்த", "அந்த", "என்", "எங்கள்"])
        text = f"{_demonstrative(owner, noun)} {noun} மிகவும் {rng.choice(PREDICATES)}."
    return text
