"""German sentences: verb-second order, conjugation by person, Perfekt and Futur, accusative articles and
adjective endings by gender (ein/kein/mein, der, plural without article)."""

from __future__ import annotations

import random

from whisper_studio.sentences import capitalize

# (nominative, person): persons index the conjugation tables: 0 ich, 1 du, 2 er/sie/es, 3 wir, 4 ihr, 5 sie
SUBJECTS = [
    ("ich", 0), ("du", 1), ("er", 2), ("sie", 2), ("wir", 3), ("ihr", 4),
    ("mein Bruder", 2), ("meine Schwester", 2), ("der Lehrer", 2), ("die Ärztin", 2), ("unser Nachbar", 2),
    ("das Kind", 2), ("meine Großmutter", 2), ("der alte Bauer", 2), ("mein Onkel", 2),
    ("meine Eltern", 5), ("die Kinder", 5), ("unsere Freunde", 5), ("die Studenten", 5),
]
# (noun, plural, gender)
NOUNS = {
    "text": [("Buch", "Bücher", "n"), ("Brief", "Briefe", "m"), ("Zeitung", "Zeitungen", "f"),
             ("Geschichte", "Geschichten", "f"), ("Gedicht", "Gedichte", "n"), ("Nachricht", "Nachrichten", "f")],
    "food": [("Apfel", "Äpfel", "m"), ("Suppe", "Suppen", "f"), ("Kuchen", "Kuchen", "m"), ("Brot", "Brote", "n"),
             ("Salat", "Salate", "m"), ("Banane", "Bananen", "f"), ("Birne", "Birnen", "f")],
    "thing": [("Tasche", "Taschen", "f"), ("Stuhl", "Stühle", "m"), ("Lampe", "Lampen", "f"),
              ("Fahrrad", "Fahrräder", "n"), ("Hemd", "Hemden", "n"), ("Tisch", "Tische", "m"),
              ("Schlüssel", "Schlüssel", "m"), ("Uhr", "Uhren", "f"), ("Koffer", "Koffer", "m"),
              ("Regenschirm", "Regenschirme", "m")],
    "room": [("Küche", "Küchen", "f"), ("Fenster", "Fenster", "n"), ("Auto", "Autos", "n"),
             ("Zimmer", "Zimmer", "n"), ("Tür", "Türen", "f")],
    "meal": [("Suppe", "Suppen", "f"), ("Kartoffel", "Kartoffeln", "f"), ("Ei", "Eier", "n"), ("Fisch", "Fische", "m")],
    "show": [("Film", "Filme", "m"), ("Spiel", "Spiele", "n"), ("Sendung", "Sendungen", "f")],
}
# Adjective stems (endings added by case/gender/article)
ADJECTIVES = {
    "text": ["lang", "kurz", "alt", "neu", "interessant", "lustig", "traurig"],
    "food": ["frisch", "süß", "warm", "klein", "groß", "lecker"],
    "thing": ["alt", "neu", "klein", "groß", "rot", "blau", "grün", "schwer", "billig", "schön"],
    "room": ["alt", "neu", "klein", "groß", "schmutzig", "weiß"],
    "show": ["lang", "neu", "alt", "lustig", "spannend"],
    "meal": ["warm", "frisch", "lecker", "klein", "groß"],
}
# (present forms ich..sie, infinitive, Partizip II, noun classes); all take "haben" in the Perfekt
VERBS = [
    (("lese", "liest", "liest", "lesen", "lest", "lesen"), "lesen", "gelesen", ["text"]),
    (("schreibe", "schreibst", "schreibt", "schreiben", "schreibt", "schreiben"), "schreiben", "geschrieben", ["text"]),
    (("kaufe", "kaufst", "kauft", "kaufen", "kauft", "kaufen"), "kaufen", "gekauft", ["thing", "food"]),
    (("verkaufe", "verkaufst", "verkauft", "verkaufen", "verkauft", "verkaufen"), "verkaufen", "verkauft", ["thing", "food"]),
    (("esse", "isst", "isst", "essen", "esst", "essen"), "essen", "gegessen", ["food"]),
    (("koche", "kochst", "kocht", "kochen", "kocht", "kochen"), "kochen", "gekocht", ["meal"]),
    (("putze", "putzt", "putzt", "putzen", "putzt", "putzen"), "putzen", "geputzt", ["room"]),
    (("suche", "suchst", "sucht", "suchen", "sucht", "suchen"), "suchen", "gesucht", ["thing"]),
    (("finde", "findest", "findet", "finden", "findet", "finden"), "finden", "gefunden", ["thing"]),
    (("trage", "trägst", "trägt", "tragen", "tragt", "tragen"), "tragen", "getragen", ["thing"]),
    (("bringe", "bringst", "bringt", "bringen", "bringt", "bringen"), "bringen", "gebracht", ["thing", "food"]),
    (("sehe", "siehst", "sieht", "sehen", "seht", "sehen"), "sehen", "gesehen", ["show"]),
    (("repariere", "reparierst", "repariert", "reparieren", "repariert", "reparieren"), "reparieren", "repariert", ["thing", "room"]),
    (("öffne", "öffnest", "öffnet", "öffnen", "öffnet", "öffnen"), "öffnen", "geöffnet", ["room"]),
    (("schicke", "schickst", "schickt", "schicken", "schickt", "schicken"), "schicken", "geschickt", ["text"]),
    (("brauche", "brauchst", "braucht", "brauchen", "braucht", "brauchen"), "brauchen", "gebraucht", ["thing"]),
]
HABEN = ("habe", "hast", "hat", "haben", "habt", "haben")
WERDEN = ("werde", "wirst", "wird", "werden", "werdet", "werden")
PLACES = ["im Garten", "zu Hause", "in der Küche", "auf dem Markt", "in der Bibliothek", "in der Schule",
          "im Büro", "am Fluss", "im Park", "am Bahnhof", "im Dorf", "im Bus"]
TIMES = {
    "habit": ["jeden Morgen", "jeden Abend", "am Sonntag", "nach dem Mittagessen", "zweimal pro Woche",
              "am Nachmittag", "oft", "manchmal"],
    "past": ["gestern", "letzte Woche", "heute Morgen", "vor zwei Tagen", "am Samstag", "letzten Monat"],
    "future": ["morgen", "nächste Woche", "heute Abend", "am Freitag", "bald", "übermorgen"],
}
NUMBERS = ["zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf", "zwölf", "zwanzig"]
PRICES = ["fünf", "zehn", "fünfzehn", "zwanzig", "dreißig", "vierzig", "fünfzig", "hundert"]

# Accusative: ein-words (ein, kein, mein): article suffix and adjective ending per gender
_EIN_ACC = {"m": ("en", "en"), "f": ("e", "e"), "n": ("", "es")}
# Accusative with the definite article: article and adjective ending
_DEF_ACC = {"m": ("den", "en"), "f": ("die", "e"), "n": ("das", "e")}
_DEF_NOM = {"m": "der", "f": "die", "n": "das"}


def _object(rng: random.Random, cls: str, det: str | None = None) -> str:
    """An accusative noun phrase with agreeing article and adjective."""
    noun, plural, gender = rng.choice(NOUNS[cls])
    adj = rng.choice(ADJECTIVES[cls]) if rng.random() < 0.6 else None
    det = det or rng.choices(["ein", "der", "mein", "num"], weights=[45, 25, 15, 15])[0]
    if det == "num":  # strong plural: "drei alte Bücher"
        return f"{rng.choice(NUMBERS)} {adj + 'e ' if adj else ''}{plural}"
    if det == "der":
        article, ending = _DEF_ACC[gender]
        return f"{article} {adj + ending + ' ' if adj else ''}{noun}"
    art_suffix, ending = _EIN_ACC[gender]
    return f"{det}{art_suffix} {adj + ending + ' ' if adj else ''}{noun}"


def sentence(rng: random.Random) -> str:
    subj, p = rng.choice(SUBJECTS)
    verb = rng.choice(VERBS)
    cls = rng.choice(verb[3])
    place = rng.choice([x for x in PLACES if not (cls == "room" and x == "in der Küche")])
    kind = rng.choices(["present", "present_inv", "perfekt", "futur", "negative", "question", "there", "price",
                        "predicate"], weights=[14, 10, 16, 12, 8, 8, 8, 5, 7])[0]
    if kind == "present":
        text = f"{subj} {verb[0][p]} {rng.choice(TIMES['habit'])} {_object(rng, cls)} {place}."
    elif kind == "present_inv":  # time first, then verb, then subject (verb second)
        text = f"{rng.choice(TIMES['habit'])} {verb[0][p]} {subj} {_object(rng, cls)} {place}."
    elif kind == "perfekt":
        when = rng.choice(TIMES["past"])
        if rng.random() < 0.5:
            text = f"{when} {HABEN[p]} {subj} {_object(rng, cls)} {place} {verb[2]}."
        else:
            text = f"{subj} {HABEN[p]} {when} {_object(rng, cls)} {place} {verb[2]}."
    elif kind == "futur":
        text = f"{subj} {WERDEN[p]} {rng.choice(TIMES['future'])} {_object(rng, cls)} {place} {verb[1]}."
    elif kind == "negative":  # kein- inflects like ein-
        text = f"{subj} {verb[0][p]} {rng.choice(TIMES['habit'])} {_object(rng, cls, det='kein')} {place}."
    elif kind == "question":
        text = f"{verb[0][p]} {subj} {rng.choice(TIMES['habit'])} {_object(rng, cls)} {place}?"
    elif kind == "there":
        cls = rng.choice(["thing", "food", "text"])
        noun, plural, _ = rng.choice(NOUNS[cls])
        text = f"{place} gibt es {rng.choice(NUMBERS)} {rng.choice(ADJECTIVES[cls])}e {plural}."
    elif kind == "price":
        cls = rng.choice(["thing", "food"])
        noun, plural, _ = rng.choice(NOUNS[cls])
        text = (f"{subj} {HABEN[p]} {rng.choice(TIMES['past'])} {rng.choice(NUMBERS)} {plural} "
                f"für {rng.choice(PRICES)} Euro {rng.choice(['gekauft', 'verkauft'])}.")
    else:
        cls = rng.choice(["thing", "text", "food", "show"])
        noun, plural, gender = rng.choice(NOUNS[cls])
        adj = rng.choice(ADJECTIVES[cls])
        degree = rng.choice(["sehr", "ziemlich", "zu", "nicht sehr"])
        if rng.random() < 0.35:
            text = f"die {plural} {place} sind {degree} {adj}."
        else:
            text = f"{_DEF_NOM[gender]} {noun} {place} ist {degree} {adj}."
    return capitalize(text)
