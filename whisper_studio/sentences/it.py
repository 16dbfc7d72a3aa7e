"""Italian sentences: conjugation by person (presente, passato prossimo with avere, futuro semplice),
articles, possessives and adjectives agreeing in gender and number.

Every noun starts with a plain consonant, so the articles are il/la/i/le and un/una (no lo/l'/gli cases).
"""

from __future__ import annotations

import random

from whisper_studio.sentences import capitalize

# (subject, person): 0 io, 1 tu, 2 lui/lei, 3 noi, 4 voi, 5 loro
SUBJECTS = [
    ("io", 0), ("tu", 1), ("lui", 2), ("lei", 2), ("noi", 3), ("voi", 4), ("loro", 5),
    ("mio fratello", 2), ("mia sorella", 2), ("il professore", 2), ("la dottoressa", 2), ("il nostro vicino", 2),
    ("mia nonna", 2), ("il vecchio contadino", 2), ("mio zio", 2),
    ("i miei genitori", 5), ("i bambini", 5), ("i miei amici", 5), ("gli studenti", 5),
]
# (singular, plural, gender)
NOUNS = {
    "text": [("libro", "libri", "m"), ("lettera", "lettere", "f"), ("giornale", "giornali", "m"),
             ("storia", "storie", "f"), ("poesia", "poesie", "f"), ("messaggio", "messaggi", "m"),
             ("rivista", "riviste", "f")],
    "food": [("mela", "mele", "f"), ("torta", "torte", "f"), ("panino", "panini", "m"), ("banana", "banane", "f"),
             ("pera", "pere", "f"), ("biscotto", "biscotti", "m")],
    "meal": [("minestra", "minestre", "f"), ("pesce", "pesci", "m"), ("pollo", "polli", "m"), ("patata", "patate", "f")],
    "thing": [("borsa", "borse", "f"), ("sedia", "sedie", "f"), ("lampada", "lampade", "f"),
              ("bicicletta", "biciclette", "f"), ("camicia", "camicie", "f"), ("tavolo", "tavoli", "m"),
              ("chiave", "chiavi", "f"), ("valigia", "valigie", "f"), ("cappello", "cappelli", "m"),
              ("quaderno", "quaderni", "m")],
    "room": [("cucina", "cucine", "f"), ("finestra", "finestre", "f"), ("macchina", "macchine", "f"),
             ("camera", "camere", "f"), ("porta", "porte", "f")],
    "show": [("film", "film", "m"), ("partita", "partite", "f"), ("programma", "programmi", "m")],
    "sound": [("canzone", "canzoni", "f"), ("notizia", "notizie", "f"), ("storia", "storie", "f")],
}


def _o(stem: str, plural_stem: str | None = None) -> tuple[str, str, str, str]:
    p = plural_stem or stem
    return (stem + "o", stem + "a", p + "i", p + "e")


def _e(stem: str) -> tuple[str, str, str, str]:
    return (stem + "e", stem + "e", stem + "i", stem + "i")


# (masculine singular, feminine singular, masculine plural, feminine plural)
_ADJ = {
    "vecchio": ("vecchio", "vecchia", "vecchi", "vecchie"), "nuovo": _o("nuov"), "piccolo": _o("piccol"),
    "rosso": _o("ross"), "bianco": ("bianco", "bianca", "bianchi", "bianche"),
    "economico": ("economico", "economica", "economici", "economiche"), "caro": _o("car"),
    "lungo": ("lungo", "lunga", "lunghi", "lunghe"), "corto": _o("cort"),
    "fresco": ("fresco", "fresca", "freschi", "fresche"), "buono": _o("buon"),
    "sporco": ("sporco", "sporca", "sporchi", "sporche"), "caldo": _o("cald"), "nero": _o("ner"),
    "divertente": _e("divertent"), "grande": _e("grand"), "verde": _e("verd"), "interessante": _e("interessant"),
    "dolce": _e("dolc"), "triste": _e("trist"), "pesante": _e("pesant"),
}
ADJECTIVES = {
    "text": ["lungo", "corto", "vecchio", "nuovo", "interessante", "divertente", "triste"],
    "food": ["fresco", "dolce", "buono", "grande", "piccolo"],
    "meal": ["caldo", "fresco", "buono"],
    "thing": ["vecchio", "nuovo", "piccolo", "grande", "rosso", "nero", "verde", "bianco", "economico", "caro", "pesante"],
    "room": ["vecchio", "nuovo", "piccolo", "grande", "sporco", "bianco"],
    "show": ["lungo", "nuovo", "vecchio", "divertente", "interessante"],
    "sound": ["nuovo", "vecchio", "triste", "lungo"],
}
# (present io..loro, past participle, future stem, noun classes); future endings are regular
VERBS = [
    (("leggo", "leggi", "legge", "leggiamo", "leggete", "leggono"), "letto", "legger", ["text"]),
    (("scrivo", "scrivi", "scrive", "scriviamo", "scrivete", "scrivono"), "scritto", "scriver", ["text"]),
    (("compro", "compri", "compra", "compriamo", "comprate", "comprano"), "comprato", "comprer", ["thing", "food"]),
    (("vendo", "vendi", "vende", "vendiamo", "vendete", "vendono"), "venduto", "vender", ["thing", "food"]),
    (("mangio", "mangi", "mangia", "mangiamo", "mangiate", "mangiano"), "mangiato", "manger", ["food", "meal"]),
    (("cucino", "cucini", "cucina", "cuciniamo", "cucinate", "cucinano"), "cucinato", "cuciner", ["meal"]),
    (("pulisco", "pulisci", "pulisce", "puliamo", "pulite", "puliscono"), "pulito", "pulir", ["room"]),
    (("cerco", "cerchi", "cerca", "cerchiamo", "cercate", "cercano"), "cercato", "cercher", ["thing"]),
    (("trovo", "trovi", "trova", "troviamo", "trovate", "trovano"), "trovato", "trover", ["thing"]),
    (("porto", "porti", "porta", "portiamo", "portate", "portano"), "portato", "porter", ["thing", "food"]),
    (("guardo", "guardi", "guarda", "guardiamo", "guardate", "guardano"), "guardato", "guarder", ["show"]),
    (("riparo", "ripari", "ripara", "ripariamo", "riparate", "riparano"), "riparato", "riparer", ["thing", "room"]),
    (("apro", "apri", "apre", "apriamo", "aprite", "aprono"), "aperto", "aprir", ["room"]),
    (("spedisco", "spedisci", "spedisce", "spediamo", "spedite", "spediscono"), "spedito", "spedir", ["text"]),
    (("ascolto", "ascolti", "ascolta", "ascoltiamo", "ascoltate", "ascoltano"), "ascoltato", "ascolter", ["sound"]),
]
AVERE = ("ho", "hai", "ha", "abbiamo", "avete", "hanno")
FUTURE = ("ò", "ai", "à", "emo", "ete", "anno")
PLACES = ["in giardino", "a casa", "in cucina", "al mercato", "in biblioteca", "a scuola", "in ufficio",
          "vicino al fiume", "nel parco", "alla stazione", "in paese", "sull'autobus"]
TIMES = {
    "habit": ["ogni mattina", "ogni sera", "la domenica", "dopo pranzo", "due volte alla settimana",
              "il pomeriggio", "spesso", "a volte"],
    "past": ["ieri", "la settimana scorsa", "stamattina", "due giorni fa", "sabato", "il mese scorso"],
    "future": ["domani", "la settimana prossima", "stasera", "venerdì", "presto", "lunedì"],
}
NUMBERS = ["due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove", "dieci", "undici", "dodici", "venti"]
PRICES = ["cinque", "dieci", "quindici", "venti", "trenta", "quaranta", "cinquanta", "cento"]
_DEF = {("m", False): "il", ("f", False): "la", ("m", True): "i", ("f", True): "le"}
_MY = {("m", False): "il mio", ("f", False): "la mia", ("m", True): "i miei", ("f", True): "le mie"}


def _adj(adj: str, gender: str, plural: bool) -> str:
    return _ADJ[adj][(2 if plural else 0) + (1 if gender == "f" else 0)]


def _object(rng: random.Random, cls: str) -> str:
    noun, plural_form, gender = rng.choice(NOUNS[cls])
    adj = rng.choice(ADJECTIVES[cls]) if rng.random() < 0.6 else None
    det = rng.choices(["un", "il", "mio", "num"], weights=[45, 25, 15, 15])[0]
    plural = det == "num" or (det in ("il", "mio") and rng.random() < 0.3)
    head = plural_form if plural else noun
    tail = f" {_adj(adj, gender, plural)}" if adj else ""
    if det == "num":
        return f"{rng.choice(NUMBERS)} {head}{tail}"
    if det == "il":
        return f"{_DEF[(gender, plural)]} {head}{tail}"
    if det == "mio":
        return f"{_MY[(gender, plural)]} {head}{tail}"
    return f"{'una' if gender == 'f' else 'un'} {head}{tail}"


def sentence(rng: random.Random) -> str:
    subj, p = rng.choice(SUBJECTS)
    verb = rng.choice(VERBS)
    cls = rng.choice(verb[3])
    obj = _object(rng, cls)
    place = rng.choice([x for x in PLACES if not (cls == "room" and x == "in cucina")])
    kind = rng.choices(["present", "past", "future", "negative", "question", "there", "price", "predicate"],
                       weights=[16, 16, 14, 10, 8, 8, 5, 7])[0]
    if kind == "present":
        text = f"{subj} {verb[0][p]} {obj} {place} {rng.choice(TIMES['habit'])}."
    elif kind == "past":
        when = rng.choice(TIMES["past"])
        clause = f"{subj} {AVERE[p]} {verb[1]} {obj} {place}"
        text = f"{when} {clause}." if rng.random() < 0.5 else f"{clause} {when}."
    elif kind == "future":
        text = f"{subj} {verb[2]}{FUTURE[p]} {obj} {place} {rng.choice(TIMES['future'])}."
    elif kind == "negative":
        form = verb[0][p] if rng.random() < 0.5 else f"{AVERE[p]} {verb[1]}"
        text = f"{subj} non {form} {obj} {place}."
    elif kind == "question":  # yes/no questions keep statement order
        text = f"{subj} {verb[0][p]} {obj} {place} {rng.choice(TIMES['habit'])}?"
    elif kind == "there":
        cls = rng.choice(["thing", "food", "text"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        text = f"{place} ci sono {rng.choice(NUMBERS)} {plural_form} {_adj(rng.choice(ADJECTIVES[cls]), gender, True)}."
    elif kind == "price":
        cls = rng.choice(["thing", "food"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        participle = rng.choice(["comprato", "venduto"])
        text = (f"{subj} {AVERE[p]} {participle} {rng.choice(NUMBERS)} {plural_form} per {rng.choice(PRICES)} euro "
                f"{rng.choice(TIMES['past'])}.")
    else:
        cls = rng.choice(["thing", "text", "food", "show"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        adj = rng.choice(ADJECTIVES[cls])
        degree = rng.choice(["molto", "piuttosto", "troppo"])
        if rng.random() < 0.35:
            text = f"{_DEF[(gender, True)]} {plural_form} che sono {place} sono {degree} {_adj(adj, gender, True)}."
        else:
            text = f"{_DEF[(gender, False)]} {noun} che è {place} è {degree} {_adj(adj, gender, False)}."
    return capitalize(text)
