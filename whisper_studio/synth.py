"""Text to speech with eSpeak NG, driven through ctypes.

PyPI `espeakng-loader` ships libespeak-ng and its voice data but no synthesis API, so this module calls the
C API directly. The library keeps global state (one current voice, one callback, one set of parameters), so
every call into it holds `_LOCK`, and it is initialised once per process.

The speech is robotic. It is used for the synthetic demo corpus and the example clips, always labelled
synthetic; fine-tuning on it shows the mechanism and does not improve accuracy on real voices.
eSpeak NG is GPL-3; it is loaded at run time from the user's installed espeakng-loader package.
"""

from __future__ import annotations

import ctypes
import threading
import unicodedata

import numpy as np

from whisper_studio.errors import AudioError

# espeak_AUDIO_OUTPUT: synthesise in the calling thread and hand samples to the callback (no sound device).
AUDIO_OUTPUT_SYNCHRONOUS = 2
# espeak_PARAMETER
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
# espeak_Synth flags / position type
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
EE_OK = 0

# Variants eSpeak ships under espeak-ng-data/voices/!v that stay intelligible (many others are effects).
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m7")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")

# A Common Voice locale -> the eSpeak voices that speak it, preferred first. Locales not listed here fall
# back to eSpeak's own list (an exact identifier match, then a same-language match).
_PREFERRED = {
    "en": ("en-us", "en", "en-gb-x-rp"),
    "pt": ("pt-br", "pt"),
    "es": ("es", "es-419"),
    "fr": ("fr", "fr-be"),
    "zh-CN": ("cmn",),
    "yue": ("yue",),
    "nb-NO": ("nb",),
    "sv-SE": ("sv",),
    "hy-AM": ("hy",),
    "ga-IE": ("ga",),
    "ne-NP": ("ne",),
    "pa-IN": ("pa",),
}


class _Voice(ctypes.Structure):
    # espeak_VOICE from speak_lib.h; `languages` is a run of (priority byte, NUL-terminated name), then 0.
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


# int callback(short *wav, int numsamples, espeak_EVENT *events); return 0 to continue.
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_LOCK = threading.RLock()
_state: dict = {}  # lib, sample_rate, callback (kept referenced so ctypes does not free it), chunks
_load_error: str | None = None


def _load() -> dict:
    """Load and initialise the library once; raise AudioError (with the reason) if it cannot be."""
    global _load_error
    with _LOCK:
        if _state:
            return _state
        if _load_error is not None:
            raise AudioError(_load_error)
        try:
            import espeakng_loader

            lib_path = espeakng_loader.get_library_path()
            data_path = espeakng_loader.get_data_path()
            lib = ctypes.CDLL(lib_path)
        except ImportError:
            _load_error = "Speech synthesis needs the espeakng-loader package: pip install espeakng-loader"
            raise AudioError(_load_error) from None
        except (OSError, RuntimeError) as exc:
            _load_error = f"eSpeak NG (from espeakng-loader) could not be loaded: {exc}"
            raise AudioError(_load_error) from None

        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]

        sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if sample_rate <= 0:
            _load_error = f"eSpeak NG failed to initialise with its voice data at {data_path} (code {sample_rate})"
            raise AudioError(_load_error)

        chunks: list[np.ndarray] = []

        def on_samples(wav, numsamples, _events):
            if numsamples > 0 and wav:
                chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
            return 0

        callback = _CALLBACK(on_samples)
        lib.espeak_SetSynthCallback(callback)
        _state.update(lib=lib, sample_rate=sample_rate, callback=callback, chunks=chunks)
        return _state


def available() -> bool:
    """True when eSpeak NG loads and initialises here."""
    try:
        _load()
    except AudioError:
        return False
    return True


def sample_rate() -> int:
    """The rate `speak` returns (22050 Hz for the bundled voices)."""
    return _load()["sample_rate"]


def speak(text: str, voice: str = "en", rate: int = 175, pitch: int = 50) -> tuple[np.ndarray, int]:
    """Synthesise `text`; return (float32 mono samples in [-1, 1], sample rate).

    voice: an eSpeak voice name, optionally with a variant ("mr", "mr+f2", "en-us+m3").
    rate: words per minute (80..450); pitch: 0..99.
    """
    text = unicodedata.normalize("NFC", str(text)).strip()
    if not text:
        raise AudioError("Nothing to say: the text is empty.")
    if not 80 <= int(rate) <= 450:
        raise AudioError(f"Speech rate {rate} is outside eSpeak's 80..450 words per minute.")
    if not 0 <= int(pitch) <= 99:
        raise AudioError(f"Pitch {pitch} is outside eSpeak's 0..99.")
    state = _load()
    lib, chunks = state["lib"], state["chunks"]
    data = text.encode("utf-8") + b"\0"
    with _LOCK:
        if lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
            raise AudioError(f"eSpeak NG has no voice {voice!r}; try one of: {', '.join(voices_for(voice.split('+')[0].split('-')[0])[:8]) or 'en, de, es, hi, mr, ta'}")
        lib.espeak_SetParameter(_RATE, int(rate), 0)
        lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        chunks.clear()
        buf = ctypes.create_string_buffer(data, len(data))
        err = lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        chunks.clear()
    if err != EE_OK:
        raise AudioError(f"eSpeak NG failed to synthesise the text (code {err}).")
    if pcm.size == 0:
        raise AudioError(f"eSpeak NG produced no audio for {text[:40]!r} with voice {voice!r}.")
    return (pcm.astype(np.float32) / 32768.0), state["sample_rate"]


def list_voices() -> list[tuple[str, list[str]]]:
    """Every eSpeak voice as (identifier, [language codes]), e.g. ("gmw/en-US", ["en-us", "en"])."""
    lib = _load()["lib"]
    out = []
    with _LOCK:
        voices = lib.espeak_ListVoices(None)
        i = 0
        while voices[i]:
            v = voices[i].contents
            langs, p = [], v.languages
            while p:
                if ctypes.c_ubyte.from_address(p).value == 0:  # priority byte 0 ends the list
                    break
                name = ctypes.string_at(p + 1)
                langs.append(name.decode())
                p += 1 + len(name) + 1
            out.append(((v.identifier or b"").decode(), langs))
            i += 1
    return out


def voices_for(locale: str, variants: bool = False) -> list[str]:
    """eSpeak voice names for a Common Voice locale, preferred first (empty when eSpeak has none).

    With variants=True each base voice is followed by its male and female variants ("mr", "mr+m1", "mr+f2", ...).
    """
    codes = {lang.lower() for _, langs in list_voices() for lang in langs}
    loc = locale.strip()
    bases = [v for v in _PREFERRED.get(loc, ()) if v in codes]
    low = loc.lower()
    lang = low.split("-")[0]
    for cand in (low, lang):
        if cand in codes and cand not in bases:
            bases.append(cand)
    # Regional voices of the same language after the preferred ones ("en-gb-scotland" for "en"), only for a
    # bare language code: a regional locale ("zh-CN") must not pick up another region's voice ("zh-yue").
    for code in sorted(codes) if "-" not in low else ():
        if code.split("-")[0] == lang and code not in bases:
            bases.append(code)
    if not variants:
        return bases
    out = []
    for base in bases:
        out.append(base)
        out += [f"{base}+{v}" for v in MALE_VARIANTS + FEMALE_VARIANTS]
    return out


if __name__ == "__main__":  # quick manual check: python -m whisper_studio.synth "text" [voice]
    import sys
    import time

    t = time.perf_counter()
    samples, sr = speak(sys.argv[1] if len(sys.argv) > 1 else "Hello from Whisper Studio.", sys.argv[2] if len(sys.argv) > 2 else "en-us")
    print(f"{samples.size / sr:.2f} s of audio at {sr} Hz in {1000 * (time.perf_counter() - t):.1f} ms")
