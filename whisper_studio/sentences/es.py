"""Spanish sentences: conjugation by person (present, preterite, "ir a" future), articles and adjectives
agreeing in gender and number."""

from __future__ import annotations

import random

from whisper_studio.sentences import capitalize

# (subject, person): index into the conjugation tables 0 yo, 1 tú, 2 él/ella, 3 nosotros, 4 ellos
SUBJECTS = [
    ("yo", 0), ("tú", 1), ("él", 2), ("ella", 2), ("nosotros", 3), ("ellos", 4), ("ellas", 4),
    ("mi hermano", 2), ("mi hermana", 2), ("el profesor", 2), ("la doctora", 2), ("nuestro vecino", 2),
    ("mi abuela", 2), ("el viejo campesino", 2), ("mi tío", 2),
    ("mis padres", 4), ("los niños", 4), ("mis amigos", 4), ("los estudiantes", 4),
]
# (singular, plural, gender)
NOUNS = {
    "text": [("libro", "libros", "m"), ("carta", "cartas", "f"), ("periódico", "periódicos", "m"),
             ("historia", "historias", "f"), ("poema", "poemas", "m"), ("mensaje", "mensajes", "m"),
             ("revista", "revistas", "f")],
    "food": [("manzana", "manzanas", "f"), ("pastel", "pasteles", "m"), ("pan", "panes", "m"),
             ("ensalada", "ensaladas", "f"), ("plátano", "plátanos", "m"), ("naranja", "naranjas", "f")],
    "meal": [("sopa", "sopas", "f"), ("pescado", "pescados", "m"), ("huevo", "huevos", "m"), ("papa", "papas", "f")],
    "thing": [("bolsa", "bolsas", "f"), ("silla", "sillas", "f"), ("lámpara", "lámparas", "f"),
              ("bicicleta", "bicicletas", "f"), ("camisa", "camisas", "f"), ("mesa", "mesas", "f"),
              ("llave", "llaves", "f"), ("reloj", "relojes", "m"), ("maleta", "maletas", "f"),
              ("sombrero", "sombreros", "m"), ("cuaderno", "cuadernos", "m")],
    "room": [("cocina", "cocinas", "f"), ("ventana", "ventanas", "f"), ("coche", "coches", "m"),
             ("habitación", "habitaciones", "f"), ("puerta", "puertas", "f")],
    "show": [("película", "películas", "f"), ("partido", "partidos", "m"), ("programa", "programas", "m")],
}
# (masculine singular, feminine singular, masculine plural, feminine plural)
_ADJ = {
    "viejo": ("viejo", "vieja", "viejos", "viejas"), "nuevo": ("nuevo", "nueva", "nuevos", "nuevas"),
    "pequeño": ("pequeño", "pequeña", "pequeños", "pequeñas"), "rojo": ("rojo", "roja", "rojos", "rojas"),
    "blanco": ("blanco", "blanca", "blancos", "blancas"), "barato": ("barato", "barata", "baratos", "baratas"),
    "caro": ("caro", "cara", "caros", "caras"), "bonito": ("bonito", "bonita", "bonitos", "bonitas"),
    "largo": ("largo", "larga", "largos", "largas"), "corto": ("corto", "corta", "cortos", "cortas"),
    "fresco": ("fresco", "fresca", "frescos", "frescas"), "rico": ("rico", "rica", "ricos", "ricas"),
    "sucio": ("sucio", "sucia", "sucios", "sucias"), "divertido": ("divertido", "divertida", "divertidos", "divertidas"),
    "grande": ("grande", "grande", "grandes", "grandes"), "verde": ("verde", "verde", "verdes", "verdes"),
    "interesante": ("interesante", "interesante", "interesantes", "interesantes"),
    "azul": ("azul", "azul", "azules", "azules"), "caliente": ("caliente", "caliente", "calientes", "calientes"),
    "dulce": ("dulce", "dulce", "dulces", "dulces"), "triste": ("triste", "triste", "tristes", "tristes"),
}
ADJECTIVES = {
    "text": ["largo", "corto", "viejo", "nuevo", "interesante", "divertido", "triste"],
    "food": ["fresco", "dulce", "rico", "grande", "pequeño"],
    "meal": ["caliente", "fresco", "rico", "grande"],
    "thing": ["viejo", "nuevo", "pequeño", "grande", "rojo", "azul", "verde", "blanco", "barato", "caro", "bonito"],
    "room": ["viejo", "nuevo", "pequeño", "grande", "sucio", "blanco"],
    "show": ["largo", "nuevo", "viejo", "divertido", "interesante"],
}
# (present yo..ellos, preterite yo..ellos, infinitive, noun classes)
VERBS = [
    (("leo", "lees", "lee", "leemos", "leen"), ("leí", "leíste", "leyó", "leímos", "leyeron"), "leer", ["text"]),
    (("escribo", "escribes", "escribe", "escribimos", "escriben"),
     ("escribí", "escribiste", "escribió", "escribimos", "escribieron"), "escribir", ["text"]),
    (("compro", "compras", "compra", "compramos", "compran"),
     ("compré", "compraste", "compró", "compramos", "compraron"), "comprar", ["thing", "food"]),
    (("vendo", "vendes", "vende", "vendemos", "venden"), ("vendí", "vendiste", "vendió", "vendimos", "vendieron"),
     "vender", ["thing", "food"]),
    (("como", "comes", "come", "comemos", "comen"), ("comí", "comiste", "comió", "comimos", "comieron"), "comer", ["food", "meal"]),
    (("cocino", "cocinas", "cocina", "cocinamos", "cocinan"),
     ("cociné", "cocinaste", "cocinó", "cocinamos", "cocinaron"), "cocinar", ["meal"]),
    (("limpio", "limpias", "limpia", "limpiamos", "limpian"),
     ("limpié", "limpiaste", "limpió", "limpiamos", "limpiaron"), "limpiar", ["room"]),
    (("busco", "buscas", "busca", "buscamos", "buscan"), ("busqué", "buscaste", "buscó", "buscamos", "buscaron"),
     "buscar", ["thing"]),
    (("encuentro", "encuentras", "encuentra", "encontramos", "encuentran"),
     ("encontré", "encontraste", "encontró", "encontramos", "encontraron"), "encontrar", ["thing"]),
    (("traigo", "traes", "trae", "traemos", "traen"), ("traje", "trajiste", "trajo", "trajimos", "trajeron"),
     "traer", ["thing", "food"]),
    (("veo", "ves", "ve", "vemos", "ven"), ("vi", "viste", "vio", "vimos", "vieron"), "ver", ["show"]),
    (("abro", "abres", "abre", "abrimos", "abren"), ("abrí", "abriste", "abrió", "abrimos", "abrieron"), "abrir", ["room"]),
    (("arreglo", "arreglas", "arregla", "arreglamos", "arreglan"),
     ("arreglé", "arreglaste", "arregló", "arreglamos", "arreglaron"), "arreglar", ["thing", "room"]),
    (("llevo", "llevas", "lleva", "llevamos", "llevan"), ("llevé", "llevaste", "llevó", "llevamos", "llevaron"),
     "llevar", ["thing"]),
    (("necesito", "necesitas", "necesita", "necesitamos", "necesitan"),
     ("necesité", "necesitaste", "necesitó", "necesitamos", "necesitaron"), "necesitar", ["thing"]),
    (("envío", "envías", "envía", "enviamos", "envían"), ("envié", "enviaste", "envió", "enviamos", "enviaron"),
     "enviar", ["text"]),
]
IR = ("voy", "vas", "va", "vamos", "van")
PLACES = ["en el jardín", "en casa", "en la cocina", "en el mercado", "en la biblioteca", "en la escuela",
          "en la oficina", "cerca del río", "en el parque", "en la estación", "en el pueblo", "en el autobús"]
TIMES = {
    "habit": ["todas las mañanas", "todas las tardes", "los domingos", "después del almuerzo",
              "dos veces por semana", "por la noche", "a menudo", "a veces"],
    "past": ["ayer", "la semana pasada", "esta mañana", "hace dos días", "el sábado", "el mes pasado"],
    "future": ["mañana", "la próxima semana", "esta noche", "el viernes", "pronto", "el lunes"],
}
NUMBERS = ["dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez", "once", "doce", "veinte"]
PRICES = ["cinco", "diez", "quince", "veinte", "treinta", "cuarenta", "cincuenta", "cien"]
_INDEF = {"m": "un", "f": "una"}
_DEF = {("m", False): "el", ("f", False): "la", ("m", True): "los", ("f", True): "las"}
_MY = {False: "mi", True: "mis"}


def _adj(adj: str, gender: str, plural: bool) -> str:
    return _ADJ[adj][(2 if plural else 0) + (1 if gender == "f" else 0)]


def _object(rng: random.Random, cls: str) -> str:
    noun, plural_form, gender = rng.choice(NOUNS[cls])
    adj = rng.choice(ADJECTIVES[cls]) if rng.random() < 0.6 else None
    det = rng.choices(["un", "el", "mi", "num"], weights=[45, 25, 15, 15])[0]
    plural = det == "num" or (det == "el" and rng.random() < 0.3)
    head = plural_form if plural else noun
    tail = f" {_adj(adj, gender, plural)}" if adj else ""
    if det == "num":
        return f"{rng.choice(NUMBERS)} {head}{tail}"
    if det == "el":
        return f"{_DEF[(gender, plural)]} {head}{tail}"
    if det == "mi":
        return f"{_MY[plural]} {head}{tail}"
    return f"{_INDEF[gender]} {head}{tail}"


def sentence(rng: random.Random) -> str:
    subj, p = rng.choice(SUBJECTS)
    verb = rng.choice(VERBS)
    cls = rng.choice(verb[3])
    obj = _object(rng, cls)
    place = rng.choice([x for x in PLACES if not (cls == "room" and x == "en la cocina")])
    kind = rng.choices(["present", "past", "future", "negative", "question", "there", "price", "predicate"],
                       weights=[16, 16, 14, 10, 8, 8, 5, 7])[0]
    if kind == "present":
        text = f"{subj} {verb[0][p]} {obj} {place} {rng.choice(TIMES['habit'])}."
    elif kind == "past":
        if rng.random() < 0.5:
            text = f"{rng.choice(TIMES['past'])} {subj} {verb[1][p]} {obj} {place}."
        else:
            text = f"{subj} {verb[1][p]} {obj} {place} {rng.choice(TIMES['past'])}."
    elif kind == "future":
        text = f"{subj} {IR[p]} a {verb[2]} {obj} {place} {rng.choice(TIMES['future'])}."
    elif kind == "negative":
        tense = rng.choice([0, 1])
        text = f"{subj} no {verb[tense][p]} {obj} {place}."
    elif kind == "question":
        text = f"¿{capitalize(subj)} {verb[0][p]} {obj} {place} {rng.choice(TIMES['habit'])}?"
    elif kind == "there":
        cls = rng.choice(["thing", "food", "text"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        text = f"{place} hay {rng.choice(NUMBERS)} {plural_form} {_adj(rng.choice(ADJECTIVES[cls]), gender, True)}."
    elif kind == "price":
        cls = rng.choice(["thing", "food"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        sold = rng.choice([VERBS[2], VERBS[3]])  # comprar, vender
        text = f"{subj} {sold[1][p]} {rng.choice(NUMBERS)} {plural_form} por {rng.choice(PRICES)} euros {rng.choice(TIMES['past'])}."
    else:
        cls = rng.choice(["thing", "text", "food", "show"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        adj = rng.choice(ADJECTIVES[cls])
        degree = rng.choice(["muy", "bastante", "demasiado"])
        if rng.random() < 0.35:
            text = f"{_DEF[(gender, True)]} {plural_form} que están {place} son {degree} {_adj(adj, gender, True)}."
        else:
            text = f"{_DEF[(gender, False)]} {noun} que está {place} es {degree} {_adj(adj, gender, False)}."
    return capitalize(text)
