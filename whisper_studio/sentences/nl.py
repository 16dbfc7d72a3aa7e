"""Dutch sentences: verb-second order (with the jij inversion: "leest jij" -> "lees jij"), conjugation by
person, perfect with hebben and "gaan +" future with the verb last, de/het articles, adjectives with or
without -e (een groot huis, een grote tafel, het grote huis), geen for negation."""

from __future__ import annotations

import random

from whisper_studio.sentences import capitalize

# (subject, person): 0 ik, 1 jij, 2 hij/zij, 3 wij, 4 jullie, 5 zij (plural)
SUBJECTS = [
    ("ik", 0), ("jij", 1), ("hij", 2), ("zij", 2), ("wij", 3), ("jullie", 4),
    ("mijn broer", 2), ("mijn zus", 2), ("de leraar", 2), ("de dokter", 2), ("onze buurman", 2), ("mijn oma", 2),
    ("de oude boer", 2), ("mijn oom", 2), ("mijn ouders", 5), ("de kinderen", 5), ("mijn vrienden", 5),
    ("de studenten", 5),
]
# (singular, plural, article de/het)
NOUNS = {
    "text": [("boek", "boeken", "het"), ("brief", "brieven", "de"), ("krant", "kranten", "de"),
             ("verhaal", "verhalen", "het"), ("gedicht", "gedichten", "het"), ("bericht", "berichten", "het")],
    "food": [("appel", "appels", "de"), ("taart", "taarten", "de"), ("broodje", "broodjes", "het"),
             ("banaan", "bananen", "de"), ("peer", "peren", "de"), ("koekje", "koekjes", "het")],
    "meal": [("soep", "soepen", "de"), ("vis", "vissen", "de"), ("ei", "eieren", "het"), ("aardappel", "aardappels", "de")],
    "thing": [("tas", "tassen", "de"), ("stoel", "stoelen", "de"), ("lamp", "lampen", "de"), ("fiets", "fietsen", "de"),
              ("overhemd", "overhemden", "het"), ("tafel", "tafels", "de"), ("sleutel", "sleutels", "de"),
              ("horloge", "horloges", "het"), ("koffer", "koffers", "de"), ("schrift", "schriften", "het")],
    "washable": [("auto", "auto's", "de"), ("raam", "ramen", "het"), ("fiets", "fietsen", "de"),
                 ("overhemd", "overhemden", "het")],
    "openable": [("deur", "deuren", "de"), ("raam", "ramen", "het"), ("doos", "dozen", "de"), ("koffer", "koffers", "de")],
    "show": [("film", "films", "de"), ("wedstrijd", "wedstrijden", "de"), ("programma", "programma's", "het")],
}
# (predicative / uninflected, attributive with -e)
_ADJ = {
    "groot": "grote", "klein": "kleine", "oud": "oude", "nieuw": "nieuwe", "rood": "rode", "blauw": "blauwe",
    "groen": "groene", "zwaar": "zware", "goedkoop": "goedkope", "duur": "dure", "mooi": "mooie", "lang": "lange",
    "kort": "korte", "vers": "verse", "zoet": "zoete", "warm": "warme", "lekker": "lekkere", "vies": "vieze",
    "wit": "witte", "grappig": "grappige", "spannend": "spannende", "interessant": "interessante", "zwart": "zwarte",
}
ADJECTIVES = {
    "text": ["lang", "kort", "oud", "nieuw", "interessant", "grappig"],
    "food": ["vers", "zoet", "lekker", "groot", "klein"],
    "meal": ["warm", "lekker", "vers"],
    "thing": ["oud", "nieuw", "klein", "groot", "rood", "blauw", "groen", "zwart", "zwaar", "goedkoop", "duur", "mooi"],
    "washable": ["oud", "nieuw", "vies", "wit", "groot"],
    "openable": ["oud", "nieuw", "groot", "klein", "zwaar"],
    "show": ["lang", "nieuw", "oud", "grappig", "spannend"],
}
# (present ik..zij, infinitive, participle, noun classes)
VERBS = [
    (("lees", "leest", "leest", "lezen", "lezen", "lezen"), "lezen", "gelezen", ["text"]),
    (("schrijf", "schrijft", "schrijft", "schrijven", "schrijven", "schrijven"), "schrijven", "geschreven", ["text"]),
    (("koop", "koopt", "koopt", "kopen", "kopen", "kopen"), "kopen", "gekocht", ["thing", "food"]),
    (("verkoop", "verkoopt", "verkoopt", "verkopen", "verkopen", "verkopen"), "verkopen", "verkocht", ["thing", "food"]),
    (("eet", "eet", "eet", "eten", "eten", "eten"), "eten", "gegeten", ["food", "meal"]),
    (("kook", "kookt", "kookt", "koken", "koken", "koken"), "koken", "gekookt", ["meal"]),
    (("was", "wast", "wast", "wassen", "wassen", "wassen"), "wassen", "gewassen", ["washable"]),
    (("zoek", "zoekt", "zoekt", "zoeken", "zoeken", "zoeken"), "zoeken", "gezocht", ["thing"]),
    (("vind", "vindt", "vindt", "vinden", "vinden", "vinden"), "vinden", "gevonden", ["thing"]),
    (("draag", "draagt", "draagt", "dragen", "dragen", "dragen"), "dragen", "gedragen", ["thing"]),
    (("breng", "brengt", "brengt", "brengen", "brengen", "brengen"), "brengen", "gebracht", ["thing", "food"]),
    (("bekijk", "bekijkt", "bekijkt", "bekijken", "bekijken", "bekijken"), "bekijken", "bekeken", ["show"]),
    (("repareer", "repareert", "repareert", "repareren", "repareren", "repareren"), "repareren", "gerepareerd",
     ["thing", "washable"]),
    (("open", "opent", "opent", "openen", "openen", "openen"), "openen", "geopend", ["openable"]),
    (("stuur", "stuurt", "stuurt", "sturen", "sturen", "sturen"), "sturen", "gestuurd", ["text"]),
]
HEBBEN = ("heb", "hebt", "heeft", "hebben", "hebben", "hebben")
GAAN = ("ga", "gaat", "gaat", "gaan", "gaan", "gaan")
PLACES = ["in de tuin", "thuis", "in de keuken", "op de markt", "in de bibliotheek", "op school", "op kantoor",
          "bij de rivier", "in het park", "op het station", "in het dorp", "in de bus"]
TIMES = {
    "habit": ["elke ochtend", "elke avond", "op zondag", "na de lunch", "twee keer per week", "in de middag",
              "vaak", "soms"],
    "past": ["gisteren", "vorige week", "vanochtend", "twee dagen geleden", "op zaterdag", "vorige maand"],
    "future": ["morgen", "volgende week", "vanavond", "op vrijdag", "binnenkort", "overmorgen"],
}
NUMBERS = ["twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen", "tien", "elf", "twaalf", "twintig"]


def _inverted(forms: tuple, person: int) -> str:
    """The verb before its subject: jij loses the -t (lees jij, heb jij, ga jij)."""
    return forms[0] if person == 1 else forms[person]


def _np(rng: random.Random, cls: str, det: str | None = None) -> str:
    noun, plural_form, article = rng.choice(NOUNS[cls])
    adj = rng.choice(ADJECTIVES[cls]) if rng.random() < 0.6 else None
    det = det or rng.choices(["een", "def", "mijn", "num"], weights=[45, 25, 15, 15])[0]
    if det == "num":
        return f"{rng.choice(NUMBERS)} {_ADJ[adj] + ' ' if adj else ''}{plural_form}"
    if det in ("een", "geen"):  # een/geen + het-noun: no -e (een groot huis)
        form = (adj if article == "het" else _ADJ[adj]) if adj else None
        return f"{det} {form + ' ' if form else ''}{noun}"
    lead = article if det == "def" else "mijn"
    return f"{lead} {_ADJ[adj] + ' ' if adj else ''}{noun}"


def sentence(rng: random.Random) -> str:
    subj, p = rng.choice(SUBJECTS)
    verb = rng.choice(VERBS)
    cls = rng.choice(verb[3])
    place = rng.choice(PLACES)
    kind = rng.choices(["present", "present_inv", "perfect", "future", "negative", "question", "there", "predicate"],
                       weights=[14, 10, 16, 12, 8, 8, 8, 7])[0]
    if kind == "present":
        text = f"{subj} {verb[0][p]} {rng.choice(TIMES['habit'])} {_np(rng, cls)} {place}."
    elif kind == "present_inv":
        text = f"{rng.choice(TIMES['habit'])} {_inverted(verb[0], p)} {subj} {_np(rng, cls)} {place}."
    elif kind == "perfect":
        when = rng.choice(TIMES["past"])
        if rng.random() < 0.5:
            text = f"{when} {_inverted(HEBBEN, p)} {subj} {_np(rng, cls)} {place} {verb[2]}."
        else:
            text = f"{subj} {HEBBEN[p]} {when} {_np(rng, cls)} {place} {verb[2]}."
    elif kind == "future":
        text = f"{subj} {GAAN[p]} {rng.choice(TIMES['future'])} {_np(rng, cls)} {place} {verb[1]}."
    elif kind == "negative":
        text = f"{subj} {verb[0][p]} {rng.choice(TIMES['habit'])} {_np(rng, cls, det='geen')} {place}."
    elif kind == "question":
        text = f"{_inverted(verb[0], p)} {subj} {rng.choice(TIMES['habit'])} {_np(rng, cls)} {place}?"
    elif kind == "there":
        cls = rng.choice(["thing", "food", "text"])
        noun, plural_form, _ = rng.choice(NOUNS[cls])
        text = f"er zijn {rng.choice(NUMBERS)} {_ADJ[rng.choice(ADJECTIVES[cls])]} {plural_form} {place}."
    else:
        cls = rng.choice(["thing", "text", "food", "show"])
        noun, plural_form, article = rng.choice(NOUNS[cls])
        adj = rng.choice(ADJECTIVES[cls])
        degree = rng.choice(["erg", "heel", "nogal", "te"])
        if rng.random() < 0.35:
            text = f"de {plural_form} {place} zijn {degree} {adj}."
        else:
            text = f"{article} {noun} {place} is {degree} {adj}."
    return capitalize(text)
