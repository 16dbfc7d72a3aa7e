"""Shared UI helpers: error translation, defaults, run listings, progress adapters.

Nothing here imports torch or transformers; engine modules are imported inside functions so the app's first
page is served before any heavy library is loaded.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import inspect
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from whisper_studio.config import TrainConfig
from whisper_studio.errors import StudioError

log = logging.getLogger("whisper_studio.ui")

# --- Defaults: small enough that a demo fine-tune on CPU finishes in minutes. One place, on purpose. ----------
DEFAULT_LANGUAGE = "mr"
DEFAULT_MODEL = "bundled/whisper-base"
# The engine's recipe with smaller numbers: 160 clips x 2 epochs at batch 8 = 40 steps, ~10 min on 2 free CPU
# cores with the bundled base; the job's closing base-vs-adapted evaluation on 40 clips takes a couple of minutes.
TRAIN_DEFAULTS = dataclasses.replace(TrainConfig(), model=DEFAULT_MODEL, language=DEFAULT_LANGUAGE, epochs=2.0,
                                     max_train_samples=160, max_test_samples=40)
EVAL_DEFAULT_MAX_CLIPS = 40
SAMPLES_SHOWN = 4
# How often the Train tab re-reads the run folder (seconds). Each tick reads status.json, metrics.jsonl and the
# tail of train.log: a few kB.
REFRESH_SECONDS = 2.0
# Extra local model folders for the model dropdown (os.pathsep-separated), e.g. a tiny random model in tests.
EXTRA_MODELS_ENV = "WHISPER_STUDIO_EXTRA_MODELS"

EIGHT_BIT_INFO = (
    "Frozen base weights as 8-bit integers (bitsandbytes LLM.int8); only the LoRA adapter trains. On a GPU it "
    "is what lets big models fit (large-v2: ~1.6 GB of weights instead of ~6 GB). On CPU it is no faster and "
    "uses more memory than float32 (5 GB vs 4 GB for base)."
)


class UserMessage(Exception):
    """Internal: a message for the page that is not an engine error (e.g. 'choose a run first')."""


def _to_gradio_error(exc: BaseException, what: str) -> gr.Error:
    # print_exception=False: an expected error is the user's to read, not a traceback on the server console;
    # a real bug is logged once below, with its traceback.
    if isinstance(exc, (StudioError, UserMessage)):
        return gr.Error(str(exc), title=what, print_exception=False)
    # A real bug: keep the traceback in the server log, show one short line in the page.
    log.exception("unexpected error in %s", what)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text[:200]
    return gr.Error(f"{type(exc).__name__}: {text} (details in the app log)", title=f"{what} failed",
                    print_exception=False)


def handler(what: str) -> Callable[[Callable], Callable]:
    """Wrap an event handler so StudioError becomes a gr.Error with its message and anything else is logged
    and shown as one short line. `functools.wraps` keeps the signature visible to Gradio (gr.Progress
    defaults are found through `inspect.signature`, which follows `__wrapped__`)."""

    def decorate(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                try:
                    yield from fn(*args, **kwargs)
                except gr.Error:
                    raise
                except Exception as exc:  # noqa: BLE001 - translated for the page
                    raise _to_gradio_error(exc, what) from exc

            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - translated for the page
                raise _to_gradio_error(exc, what) from exc

        return wrapper

    return decorate


def progress_callback(progress: gr.Progress | None, desc: str = "") -> Callable[..., None]:
    """Adapt a gr.Progress to the engine's progress callbacks, which report either a fraction,
    `(done, total)`, or either of those with a message (positional or `desc=`/`message=`)."""

    def report(*args: Any, **kwargs: Any) -> None:
        if progress is None:
            return
        message = kwargs.get("desc") or kwargs.get("message") or desc
        numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        texts = [a for a in args if isinstance(a, str)]
        if texts:
            message = texts[0]
        if "done" in kwargs or "total" in kwargs:
            numbers = [kwargs.get("done", 0), kwargs.get("total") or 0]
        if len(numbers) >= 2 and numbers[1]:
            fraction = numbers[0] / numbers[1]
            message = f"{message} ({int(numbers[0])}/{int(numbers[1])})" if message else None
        elif numbers:
            fraction = float(numbers[0])
        else:
            fraction = None
        try:
            progress(fraction if fraction is None else max(0.0, min(1.0, fraction)), desc=message or None)
        except Exception:  # progress is decoration; never let it break the work
            log.debug("progress update failed", exc_info=True)

    return report


# --- Forms: named inputs --------------------------------------------------------------------------------------
class Form:
    """Named components for one event: handlers get one dict of named values, not N positional arguments.

        form = Form(language=language_dropdown, kind=source_radio, ...)
        button.click(handler_fn, inputs=form.inputs, ...)      # def handler_fn(*args): v = form.values(args)

    A Form can extend another (`Form(data_form, model=model_dropdown)`), so the Train tab reuses the Data tab's
    source fields without knowing their order.
    """

    def __init__(self, *parents: "Form", **components: Any) -> None:
        self.components: dict[str, Any] = {}
        for parent in parents:
            self.components.update(parent.components)
        self.components.update(components)

    @property
    def inputs(self) -> list:
        return list(self.components.values())

    def values(self, args: tuple | list) -> dict[str, Any]:
        """Positional event values (in `inputs` order) -> {name: value}; extra trailing args are ignored."""
        return dict(zip(self.components, args))

    def __getitem__(self, name: str) -> Any:
        return self.components[name]

    def event(self, fn: Callable, *, progress: bool = False) -> Callable:
        """`fn(values)` (or `fn(values, progress=...)`) as a Gradio event function over `self.inputs`.

        Gradio injects gr.Progress only into a positional parameter (its scan stops at `*args`), so the event
        function gets an explicit signature: one positional parameter per input, then `progress`.
        """
        n = len(self.components)

        def event(*args):
            if progress:
                return fn(self.values(args[:n]), progress=args[n] if len(args) > n else None)
            return fn(self.values(args[:n]))

        params = [inspect.Parameter(f"input_{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(n)]
        if progress:
            params.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
        event.__signature__ = inspect.Signature(params)
        return event


# --- Runs ------------------------------------------------------------------------------------------------
def job_manager():
    from whisper_studio.jobs import JobManager

    return JobManager()


def list_runs() -> list:
    """All runs on disk, newest first (RunInfo objects); [] when the runs folder cannot be read."""
    try:
        return job_manager().list_runs()
    except StudioError:
        return []


def run_label(info) -> str:
    """'name · state · model · language' for dropdowns."""
    cfg = info.config
    bits = [info.name, info.state]
    if cfg is not None:
        bits += [Path(str(cfg.model).rstrip("/")).name, cfg.language]
    return " · ".join(bits)


def has_adapter(info) -> bool:
    return bool(info.has_adapter)


def adapter_run_choices() -> list[tuple[str, str]]:
    return [(run_label(r), r.run_id) for r in list_runs() if has_adapter(r)]


def find_run(run_id: str):
    for info in list_runs():
        if info.run_id == run_id:
            return info
    raise UserMessage(f"Run {run_id!r} is not in the runs folder any more; refresh the list.")


# --- Files the page may play ---------------------------------------------------------------------------------
# The server serves ONE folder (launch_kwargs' allowed_paths): copies of clips that decoded as audio. Never the
# cache (gated archives, extracted corpora, converted models) or the runs folder (configs, logs, adapters).
SERVED_FOLDER = "served"
MAX_SERVED_BYTES = 64 * 1024 * 1024  # a long clip is a few MB; anything bigger is not a sample to play


def served_dir() -> Path:
    """The only folder whose files the app serves: `<cache>/served`."""
    from whisper_studio.paths import cache_dir

    path = cache_dir() / SERVED_FOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def servable(path: str | Path) -> str:
    """The served copy of the audio clip at `path` (a dataset sample, an evaluation clip): the file is copied
    into `served_dir()` only after it decodes as audio, under a name taken from its content. Anything else (a
    text file, /proc, a folder, a link to a secret) raises AudioError and is never served."""
    import hashlib

    from whisper_studio import audio
    from whisper_studio.errors import AudioError

    # 1. A regular file of a sane size, links resolved (a link into the served folder is no shortcut).
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise AudioError(f"{Path(path).name} is not an audio file on this server; it cannot be played.")
    size = resolved.stat().st_size
    if size > MAX_SERVED_BYTES:
        raise AudioError(f"{resolved.name} is {size / 2**20:.0f} MB; clips over {MAX_SERVED_BYTES / 2**20:.0f} MB are not played.")
    # 2. Read once and decode those very bytes (the header alone is not enough: a WAV header on a text file
    #    passes it), so what is copied is what was checked, even if the file changes meanwhile.
    data = resolved.read_bytes()
    try:
        audio.load_audio(data)
    except AudioError:
        raise AudioError(f"{resolved.name} does not decode as audio; it is not played.") from None
    # 3. Stored under its content hash: the same clip once, and a name that reveals nothing of its origin.
    suffix = resolved.suffix.lower() if re.fullmatch(r"\.[a-z0-9]{1,5}", resolved.suffix.lower()) else ".audio"
    target = served_dir() / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
    if not target.exists():
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return str(target)


# --- Plots -------------------------------------------------------------------------------------------------
# Gradio's native plots take each axis' type from the first value they get: an empty frame with object
# columns makes a numeric axis nominal for good (loss 10.9 drawn below 10.8). So empty frames are typed.
PLOT_CLASS = "studio-plot"
PLOT_CSS = """
/* Gradio 6 clips the first character of 5-character y-axis labels (10.92 reads as 0.92): let them show. */
.studio-plot svg, .studio-plot .vega-embed { overflow: visible !important; }
.studio-plot .vega-embed { padding-left: 14px; }
"""


def empty_frame(**columns: str):
    """An empty DataFrame with typed columns, e.g. empty_frame(step="int64", loss="float64")."""
    import pandas as pd

    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


# --- Formatting ------------------------------------------------------------------------------------------
def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def esc(text: Any) -> str:
    return html.escape("" if text is None else str(text))

