"""French sentences: conjugation by person (présent, passé composé with avoir, futur proche), elision
(j', n', l', qu'), articles and adjectives agreeing in gender and number, ne ... pas."""

from __future__ import annotations

import random

from whisper_studio.sentences import capitalize

# (subject, person): 0 je, 1 tu, 2 il/elle, 3 nous, 4 vous, 5 ils/elles
SUBJECTS = [
    ("je", 0), ("tu", 1), ("il", 2), ("elle", 2), ("nous", 3), ("vous", 4), ("ils", 5), ("elles", 5),
    ("mon frère", 2), ("ma sœur", 2), ("le professeur", 2), ("notre voisin", 2), ("ma grand-mère", 2),
    ("le vieux fermier", 2), ("mon oncle", 2), ("mes parents", 5), ("les enfants", 5), ("mes amis", 5),
    ("les étudiants", 5),
]
# (singular, plural, gender); every noun starts with a consonant sound except where noted by the l' rule
NOUNS = {
    "text": [("livre", "livres", "m"), ("lettre", "lettres", "f"), ("journal", "journaux", "m"),
             ("histoire", "histoires", "f"), ("poème", "poèmes", "m"), ("message", "messages", "m"),
             ("magazine", "magazines", "m")],
    "food": [("pomme", "pommes", "f"), ("gâteau", "gâteaux", "m"), ("baguette", "baguettes", "f"),
             ("salade", "salades", "f"), ("banane", "bananes", "f"), ("orange", "oranges", "f")],
    "meal": [("soupe", "soupes", "f"), ("poisson", "poissons", "m"), ("omelette", "omelettes", "f"),
             ("tarte", "tartes", "f")],
    "thing": [("sac", "sacs", "m"), ("chaise", "chaises", "f"), ("lampe", "lampes", "f"), ("vélo", "vélos", "m"),
              ("chemise", "chemises", "f"), ("table", "tables", "f"), ("clé", "clés", "f"), ("montre", "montres", "f"),
              ("valise", "valises", "f"), ("parapluie", "parapluies", "m"), ("cahier", "cahiers", "m")],
    "room": [("cuisine", "cuisines", "f"), ("fenêtre", "fenêtres", "f"), ("voiture", "voitures", "f"),
             ("chambre", "chambres", "f"), ("porte", "portes", "f")],
    "show": [("film", "films", "m"), ("match", "matchs", "m"), ("émission", "émissions", "f")],
    "sound": [("chanson", "chansons", "f"), ("histoire", "histoires", "f"), ("émission", "émissions", "f")],
}


def _reg(m: str, f: str | None = None, mp: str | None = None, fp: str | None = None) -> tuple[str, str, str, str]:
    f = f or m + "e"
    return (m, f, mp or m + "s", fp or f + "s")


# After the noun: (masculine singular, feminine singular, masculine plural, feminine plural)
_ADJ = {
    "rouge": _reg("rouge", "rouge"), "bleu": _reg("bleu"), "vert": _reg("vert"), "lourd": _reg("lourd"),
    "neuf": _reg("neuf", "neuve"), "ancien": _reg("ancien", "ancienne"), "intéressant": _reg("intéressant"),
    "drôle": _reg("drôle", "drôle"), "triste": _reg("triste", "triste"), "frais": ("frais", "fraîche", "frais", "fraîches"),
    "sucré": _reg("sucré"), "chaud": _reg("chaud"), "délicieux": ("délicieux", "délicieuse", "délicieux", "délicieuses"),
    "sale": _reg("sale", "sale"), "blanc": _reg("blanc", "blanche"), "cher": _reg("cher", "chère"),
    "court": _reg("court"), "noir": _reg("noir"),
}
ADJECTIVES = {
    "text": ["ancien", "intéressant", "drôle", "triste", "court"],
    "food": ["frais", "sucré", "délicieux"],
    "meal": ["chaud", "délicieux", "frais"],
    "thing": ["rouge", "bleu", "vert", "noir", "blanc", "lourd", "neuf", "ancien", "cher"],
    "room": ["neuf", "ancien", "sale", "blanc"],
    "show": ["intéressant", "drôle", "triste", "court"],
    "sound": ["ancien", "triste", "drôle"],
}
# (present je..ils, past participle, infinitive, noun classes)
VERBS = [
    (("lis", "lis", "lit", "lisons", "lisez", "lisent"), "lu", "lire", ["text"]),
    (("écris", "écris", "écrit", "écrivons", "écrivez", "écrivent"), "écrit", "écrire", ["text"]),
    (("achète", "achètes", "achète", "achetons", "achetez", "achètent"), "acheté", "acheter", ["thing", "food"]),
    (("vends", "vends", "vend", "vendons", "vendez", "vendent"), "vendu", "vendre", ["thing", "food"]),
    (("mange", "manges", "mange", "mangeons", "mangez", "mangent"), "mangé", "manger", ["food", "meal"]),
    (("prépare", "prépares", "prépare", "préparons", "préparez", "préparent"), "préparé", "préparer", ["meal"]),
    (("nettoie", "nettoies", "nettoie", "nettoyons", "nettoyez", "nettoient"), "nettoyé", "nettoyer", ["room"]),
    (("cherche", "cherches", "cherche", "cherchons", "cherchez", "cherchent"), "cherché", "chercher", ["thing"]),
    (("trouve", "trouves", "trouve", "trouvons", "trouvez", "trouvent"), "trouvé", "trouver", ["thing"]),
    (("apporte", "apportes", "apporte", "apportons", "apportez", "apportent"), "apporté", "apporter", ["thing", "food"]),
    (("regarde", "regardes", "regarde", "regardons", "regardez", "regardent"), "regardé", "regarder", ["show"]),
    (("répare", "répares", "répare", "réparons", "réparez", "réparent"), "réparé", "réparer", ["thing", "room"]),
    (("ouvre", "ouvres", "ouvre", "ouvrons", "ouvrez", "ouvrent"), "ouvert", "ouvrir", ["room"]),
    (("envoie", "envoies", "envoie", "envoyons", "envoyez", "envoient"), "envoyé", "envoyer", ["text"]),
    (("écoute", "écoutes", "écoute", "écoutons", "écoutez", "écoutent"), "écouté", "écouter", ["sound"]),
]
AVOIR = ("ai", "as", "a", "avons", "avez", "ont")
ALLER = ("vais", "vas", "va", "allons", "allez", "vont")
PLACES = ["dans le jardin", "à la maison", "dans la cuisine", "au marché", "à la bibliothèque", "à l'école",
          "au bureau", "près de la rivière", "dans le parc", "à la gare", "au village", "dans le bus"]
TIMES = {
    "habit": ["tous les matins", "tous les soirs", "le dimanche", "après le déjeuner", "deux fois par semaine",
              "l'après-midi", "souvent", "parfois"],
    "past": ["hier", "la semaine dernière", "ce matin", "il y a deux jours", "samedi", "le mois dernier"],
    "future": ["demain", "la semaine prochaine", "ce soir", "vendredi", "bientôt", "lundi"],
}
NUMBERS = ["deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze", "vingt"]
PRICES = ["cinq", "dix", "quinze", "vingt", "trente", "quarante", "cinquante", "cent"]
_VOWELS = "aeiouyéèêâàîôûœh"  # no h aspiré among the words used


def _elide(word: str, following: str) -> str:
    """je/ne/le/la/que + vowel -> j'/n'/l'/qu' (written without a space)."""
    if following[:1].lower() in _VOWELS and word in ("je", "ne", "le", "la", "que"):
        return word[0] + "'" if word != "que" else "qu'"
    return word + " "


def _adj(adj: str, gender: str, plural: bool) -> str:
    return _ADJ[adj][(2 if plural else 0) + (1 if gender == "f" else 0)]


def _object(rng: random.Random, cls: str, definite_only: bool = False) -> str:
    noun, plural_form, gender = rng.choice(NOUNS[cls])
    adj = rng.choice(ADJECTIVES[cls]) if rng.random() < 0.6 else None
    det = rng.choice(["le", "mon"]) if definite_only else rng.choices(["un", "le", "mon", "num"], weights=[45, 25, 15, 15])[0]
    plural = det == "num" or (det in ("le", "mon") and rng.random() < 0.3)
    head = plural_form if plural else noun
    tail = f" {_adj(adj, gender, plural)}" if adj else ""
    if det == "num":
        return f"{rng.choice(NUMBERS)} {head}{tail}"
    if det == "le":
        article = "les " if plural else _elide("le" if gender == "m" else "la", head)
        return f"{article}{head}{tail}"
    if det == "mon":  # mon also before a feminine noun that starts with a vowel (mon histoire)
        article = "mes" if plural else ("ma" if gender == "f" and head[0] not in _VOWELS else "mon")
        return f"{article} {head}{tail}"
    return f"{'une' if gender == 'f' else 'un'} {head}{tail}"


def _subject_verb(subj: str, verb: str) -> str:
    return f"{_elide(subj, verb)}{verb}" if subj == "je" else f"{subj} {verb}"


def sentence(rng: random.Random) -> str:
    subj, p = rng.choice(SUBJECTS)
    verb = rng.choice(VERBS)
    cls = rng.choice(verb[3])
    obj = _object(rng, cls)
    place = rng.choice([x for x in PLACES if not (cls == "room" and x == "dans la cuisine")])
    kind = rng.choices(["present", "past", "future", "negative", "question", "there", "price", "predicate"],
                       weights=[16, 16, 14, 10, 8, 8, 5, 7])[0]
    if kind == "present":
        text = f"{_subject_verb(subj, verb[0][p])} {obj} {place} {rng.choice(TIMES['habit'])}."
    elif kind == "past":
        clause = f"{_subject_verb(subj, AVOIR[p])} {verb[1]} {obj} {place}"
        when = rng.choice(TIMES["past"])
        text = f"{when}, {clause}." if rng.random() < 0.5 else f"{clause} {when}."
    elif kind == "future":
        text = f"{_subject_verb(subj, ALLER[p])} {verb[2]} {obj} {place} {rng.choice(TIMES['future'])}."
    elif kind == "negative":  # definite objects only: after pas, un/une/des would become de
        obj = _object(rng, cls, definite_only=True)
        if rng.random() < 0.5:
            text = f"{subj} {_elide('ne', verb[0][p])}{verb[0][p]} pas {obj} {place}."
        else:
            text = f"{subj} {_elide('ne', AVOIR[p])}{AVOIR[p]} pas {verb[1]} {obj} {place}."
    elif kind == "question":
        text = f"est-ce {_elide('que', subj)}{_subject_verb(subj, verb[0][p])} {obj} {place} {rng.choice(TIMES['habit'])} ?"
    elif kind == "there":
        cls = rng.choice(["thing", "food", "text"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        text = f"il y a {rng.choice(NUMBERS)} {plural_form} {_adj(rng.choice(ADJECTIVES[cls]), gender, True)} {place}."
    elif kind == "price":
        cls = rng.choice(["thing", "food"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        participle = rng.choice(["acheté", "vendu"])
        text = (f"{_subject_verb(subj, AVOIR[p])} {participle} {rng.choice(NUMBERS)} {plural_form} pour "
                f"{rng.choice(PRICES)} euros {rng.choice(TIMES['past'])}.")
    else:
        cls = rng.choice(["thing", "text", "food", "show"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        adj = rng.choice(ADJECTIVES[cls])
        degree = rng.choice(["très", "assez", "trop"])
        if rng.random() < 0.35:
            text = f"les {plural_form} qui sont {place} sont {degree} {_adj(adj, gender, True)}."
        else:
            article = _elide("le" if gender == "m" else "la", noun)
            text = f"{article}{noun} qui est {place} est {degree} {_adj(adj, gender, False)}."
    return capitalize(text)
