"""Sentences for the example clips in assets/examples (written for this project; not in any demo split).

Regenerate the clips with `python -m whisper_studio.demo examples`.
"""

# file stem -> (locale, eSpeak voice, rate, text)
EXAMPLES = {
    "en_1": ("en", "en-us", 165, "The weather in the hills changed quickly, so we walked back to the village before dark."),
    "en_2": ("en", "en-us+f2", 160, "Please send the report to my office by Friday morning, and call me if anything is missing."),
    "hi_1": ("hi", "hi", 150, "कल शाम हम सब दोस्त मिलकर नदी के किनारे घूमने गए।"),
    "mr_1": ("mr", "mr+f2", 150, "आज सकाळी मी बाजारात जाऊन ताजी भाजी विकत घेतली."),
    "ta_1": ("ta", "ta", 150, "நேற்று மாலை நாங்கள் கடற்கரையில் நீண்ட நேரம் நடந்தோம்."),
    "es_1": ("es", "es", 160, "Mañana por la tarde vamos a visitar a mi abuela en el pueblo."),
    "de_1": ("de", "de+m3", 160, "Am Wochenende fahren wir mit dem Zug an den See und machen ein Picknick."),
}

# A long English clip (about 70 s) for long-form transcription: sentences separated by pauses.
LONG_EN = (
    "en_long", "en-us", 160, 1.0,
    [
        "Good morning, and welcome to this short recording about the history of a small harbour town.",
        "Three hundred years ago, the town was little more than a row of wooden houses along the water.",
        "Fishing boats left before sunrise and came back in the afternoon with their nets full.",
        "In the summer, traders arrived from the south with salt, cloth and iron tools.",
        "The first stone bridge was built in the spring of seventeen eighty, after a long and cold winter.",
        "A school opened near the market square, and children learned to read and to count.",
        "Later, the railway brought visitors from the city, and the old warehouses became hotels.",
        "Today, about eight thousand people live in the town, and many of them still work near the sea.",
        "On Sunday mornings there is a market where farmers sell bread, cheese, apples and honey.",
        "The lighthouse on the northern rock still shines every night, although no keeper lives there now.",
        "If you visit in the autumn, take a walk along the cliffs and watch the birds over the water.",
        "Thank you for listening, and have a pleasant day.",
    ],
)
