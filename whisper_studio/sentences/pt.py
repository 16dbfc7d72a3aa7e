"""Brazilian Portuguese sentences: conjugation by person (você takes the third person), present, preterite and
the "ir +" future; articles, adjectives and dois/duas agreeing in gender and number."""

from __future__ import annotations

import random

from whisper_studio.sentences import capitalize

# (subject, person): index into the conjugation tables 0 eu, 1 você/ele/ela, 2 nós, 3 eles/elas
SUBJECTS = [
    ("eu", 0), ("você", 1), ("ele", 1), ("ela", 1), ("nós", 2), ("eles", 3), ("elas", 3),
    ("meu irmão", 1), ("minha irmã", 1), ("o professor", 1), ("a médica", 1), ("nosso vizinho", 1),
    ("minha avó", 1), ("o velho fazendeiro", 1), ("meu tio", 1),
    ("meus pais", 3), ("as crianças", 3), ("meus amigos", 3), ("os estudantes", 3),
]
# (singular, plural, gender)
NOUNS = {
    "text": [("livro", "livros", "m"), ("carta", "cartas", "f"), ("jornal", "jornais", "m"),
             ("história", "histórias", "f"), ("poema", "poemas", "m"), ("mensagem", "mensagens", "f"),
             ("revista", "revistas", "f")],
    "food": [("maçã", "maçãs", "f"), ("bolo", "bolos", "m"), ("pão", "pães", "m"), ("salada", "saladas", "f"),
             ("banana", "bananas", "f"), ("laranja", "laranjas", "f")],
    "meal": [("sopa", "sopas", "f"), ("peixe", "peixes", "m"), ("ovo", "ovos", "m"), ("batata", "batatas", "f")],
    "drink": [("café", "cafés", "m"), ("chá", "chás", "m"), ("suco", "sucos", "m")],
    "thing": [("bolsa", "bolsas", "f"), ("cadeira", "cadeiras", "f"), ("lâmpada", "lâmpadas", "f"),
              ("bicicleta", "bicicletas", "f"), ("camisa", "camisas", "f"), ("mesa", "mesas", "f"),
              ("chave", "chaves", "f"), ("relógio", "relógios", "m"), ("mala", "malas", "f"),
              ("caderno", "cadernos", "m"), ("chapéu", "chapéus", "m")],
    "room": [("cozinha", "cozinhas", "f"), ("janela", "janelas", "f"), ("carro", "carros", "m"),
             ("quarto", "quartos", "m"), ("porta", "portas", "f")],
    "show": [("filme", "filmes", "m"), ("jogo", "jogos", "m"), ("programa", "programas", "m")],
    "sound": [("música", "músicas", "f"), ("notícia", "notícias", "f"), ("história", "histórias", "f")],
}


def _o(stem: str) -> tuple[str, str, str, str]:
    return (stem + "o", stem + "a", stem + "os", stem + "as")


def _same(word: str, plural: str) -> tuple[str, str, str, str]:
    return (word, word, plural, plural)


# (masculine singular, feminine singular, masculine plural, feminine plural)
_ADJ = {
    "velho": _o("velh"), "novo": _o("nov"), "pequeno": _o("pequen"), "vermelho": _o("vermelh"),
    "branco": _o("branc"), "barato": _o("barat"), "caro": _o("car"), "bonito": _o("bonit"), "longo": _o("long"),
    "curto": _o("curt"), "fresco": _o("fresc"), "gostoso": _o("gostos"), "sujo": _o("suj"),
    "divertido": _o("divertid"), "pesado": _o("pesad"), "gelado": _o("gelad"),
    "grande": _same("grande", "grandes"), "verde": _same("verde", "verdes"),
    "interessante": _same("interessante", "interessantes"), "azul": _same("azul", "azuis"),
    "quente": _same("quente", "quentes"), "doce": _same("doce", "doces"), "triste": _same("triste", "tristes"),
}
ADJECTIVES = {
    "text": ["longo", "curto", "velho", "novo", "interessante", "divertido", "triste"],
    "food": ["fresco", "doce", "gostoso", "grande", "pequeno"],
    "meal": ["quente", "fresco", "gostoso", "grande"],
    "drink": ["quente", "gelado", "doce", "fresco"],
    "thing": ["velho", "novo", "pequeno", "grande", "vermelho", "azul", "verde", "branco", "barato", "caro",
              "bonito", "pesado"],
    "room": ["velho", "novo", "pequeno", "grande", "sujo", "branco"],
    "show": ["longo", "novo", "velho", "divertido", "interessante"],
    "sound": ["novo", "velho", "bonito", "triste", "longo"],
}
# (present eu/ele/nós/eles, preterite eu/ele/nós/eles, infinitive, noun classes)
VERBS = [
    (("leio", "lê", "lemos", "leem"), ("li", "leu", "lemos", "leram"), "ler", ["text"]),
    (("escrevo", "escreve", "escrevemos", "escrevem"), ("escrevi", "escreveu", "escrevemos", "escreveram"),
     "escrever", ["text"]),
    (("compro", "compra", "compramos", "compram"), ("comprei", "comprou", "compramos", "compraram"),
     "comprar", ["thing", "food"]),
    (("vendo", "vende", "vendemos", "vendem"), ("vendi", "vendeu", "vendemos", "venderam"), "vender", ["thing", "food"]),
    (("como", "come", "comemos", "comem"), ("comi", "comeu", "comemos", "comeram"), "comer", ["food", "meal"]),
    (("bebo", "bebe", "bebemos", "bebem"), ("bebi", "bebeu", "bebemos", "beberam"), "beber", ["drink"]),
    (("cozinho", "cozinha", "cozinhamos", "cozinham"), ("cozinhei", "cozinhou", "cozinhamos", "cozinharam"),
     "cozinhar", ["meal"]),
    (("limpo", "limpa", "limpamos", "limpam"), ("limpei", "limpou", "limpamos", "limparam"), "limpar", ["room"]),
    (("procuro", "procura", "procuramos", "procuram"), ("procurei", "procurou", "procuramos", "procuraram"),
     "procurar", ["thing"]),
    (("encontro", "encontra", "encontramos", "encontram"), ("encontrei", "encontrou", "encontramos", "encontraram"),
     "encontrar", ["thing"]),
    (("trago", "traz", "trazemos", "trazem"), ("trouxe", "trouxe", "trouxemos", "trouxeram"), "trazer",
     ["thing", "food", "drink"]),
    (("vejo", "vê", "vemos", "veem"), ("vi", "viu", "vimos", "viram"), "ver", ["show"]),
    (("abro", "abre", "abrimos", "abrem"), ("abri", "abriu", "abrimos", "abriram"), "abrir", ["room"]),
    (("conserto", "conserta", "consertamos", "consertam"), ("consertei", "consertou", "consertamos", "consertaram"),
     "consertar", ["thing", "room"]),
    (("levo", "leva", "levamos", "levam"), ("levei", "levou", "levamos", "levaram"), "levar", ["thing"]),
    (("envio", "envia", "enviamos", "enviam"), ("enviei", "enviou", "enviamos", "enviaram"), "enviar", ["text"]),
    (("ouço", "ouve", "ouvimos", "ouvem"), ("ouvi", "ouviu", "ouvimos", "ouviram"), "ouvir", ["sound"]),
]
IR = ("vou", "vai", "vamos", "vão")
PLACES = ["no jardim", "em casa", "na cozinha", "no mercado", "na biblioteca", "na escola", "no escritório",
          "perto do rio", "no parque", "na estação", "na cidade", "no ônibus"]
TIMES = {
    "habit": ["todas as manhãs", "todas as tardes", "aos domingos", "depois do almoço", "duas vezes por semana",
              "à noite", "muitas vezes", "às vezes"],
    "past": ["ontem", "na semana passada", "hoje de manhã", "há dois dias", "no sábado", "no mês passado"],
    "future": ["amanhã", "na semana que vem", "hoje à noite", "na sexta-feira", "em breve", "na segunda-feira"],
}
NUMBERS = ["dois", "três", "quatro", "cinco", "seis", "sete", "oito", "nove", "dez", "doze", "vinte"]
PRICES = ["cinco", "dez", "quinze", "vinte", "trinta", "quarenta", "cinquenta", "cem"]
_INDEF = {"m": "um", "f": "uma"}
_DEF = {("m", False): "o", ("f", False): "a", ("m", True): "os", ("f", True): "as"}
_MY = {("m", False): "meu", ("f", False): "minha", ("m", True): "meus", ("f", True): "minhas"}


def _adj(adj: str, gender: str, plural: bool) -> str:
    return _ADJ[adj][(2 if plural else 0) + (1 if gender == "f" else 0)]


def _number(rng: random.Random, gender: str) -> str:
    n = rng.choice(NUMBERS)
    return "duas" if n == "dois" and gender == "f" else n


def _object(rng: random.Random, cls: str, definite_only: bool = False) -> str:
    noun, plural_form, gender = rng.choice(NOUNS[cls])
    adj = rng.choice(ADJECTIVES[cls]) if rng.random() < 0.6 else None
    det = rng.choice(["o", "meu"]) if definite_only else rng.choices(["um", "o", "meu", "num"], weights=[45, 25, 15, 15])[0]
    plural = det == "num" or (det == "o" and rng.random() < 0.3)
    head = plural_form if plural else noun
    tail = f" {_adj(adj, gender, plural)}" if adj else ""
    if det == "num":
        return f"{_number(rng, gender)} {head}{tail}"
    if det == "o":
        return f"{_DEF[(gender, plural)]} {head}{tail}"
    if det == "meu":
        return f"{_MY[(gender, plural)]} {head}{tail}"
    return f"{_INDEF[gender]} {head}{tail}"


def sentence(rng: random.Random) -> str:
    subj, p = rng.choice(SUBJECTS)
    verb = rng.choice(VERBS)
    cls = rng.choice(verb[3])
    obj = _object(rng, cls)
    place = rng.choice([x for x in PLACES if not (cls == "room" and x == "na cozinha")])
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
        text = f"{subj} {IR[p]} {verb[2]} {obj} {place} {rng.choice(TIMES['future'])}."
    elif kind == "negative":
        tense = rng.choice([0, 1])
        text = f"{subj} não {verb[tense][p]} {_object(rng, cls, definite_only=True)} {place}."
    elif kind == "question":  # Brazilian yes/no questions keep statement order
        text = f"{subj} {verb[0][p]} {obj} {place} {rng.choice(TIMES['habit'])}?"
    elif kind == "there":
        cls = rng.choice(["thing", "food", "text"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        text = f"{place} há {_number(rng, gender)} {plural_form} {_adj(rng.choice(ADJECTIVES[cls]), gender, True)}."
    elif kind == "price":
        cls = rng.choice(["thing", "food"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        sold = rng.choice([VERBS[2], VERBS[3]])  # comprar, vender
        text = f"{subj} {sold[1][p]} {_number(rng, gender)} {plural_form} por {rng.choice(PRICES)} reais {rng.choice(TIMES['past'])}."
    else:
        cls = rng.choice(["thing", "text", "food", "show"])
        noun, plural_form, gender = rng.choice(NOUNS[cls])
        adj = rng.choice(ADJECTIVES[cls])
        degree = rng.choice(["muito", "bem", "bastante"])
        if rng.random() < 0.35:
            text = f"{_DEF[(gender, True)]} {plural_form} que estão {place} são {degree} {_adj(adj, gender, True)}."
        else:
            text = f"{_DEF[(gender, False)]} {noun} que está {place} é {degree} {_adj(adj, gender, False)}."
    return capitalize(text)
