"""What every data source shares: the `Source` base class, the `LoadReport`, the columns and the row builders.

Every source yields the same columns: `audio` (`Audio(decode=False)`: a `{"path", "bytes"}` dict, never decoded
by datasets, since datasets 5 decodes through torchcodec, which does not load here), `sentence`, `locale`,
`split` and `id`. Decoding is ours: `whisper_studio.audio.load_audio` (soundfile + soxr).

Light on purpose: config.py validates through the registry and the UI builds its radios from it, so nothing
here imports datasets or torch at module level.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from whisper_studio.errors import ConfigError, DataSourceError

if TYPE_CHECKING:  # pragma: no cover
    from whisper_studio.config import SourceConfig
    from whisper_studio.languages import Language

log = logging.getLogger("whisper_studio.data")

Progress = Callable[[float, str], None] | None

COLUMNS = ("audio", "sentence", "locale", "split", "id")
SYNTHETIC_MARK = "SYNTHETIC"  # demo corpora carry this file (docs/ARCHITECTURE.md)


def report_progress(progress: Progress, fraction: float, message: str) -> None:
    if progress is not None:
        try:
            progress(max(0.0, min(1.0, fraction)), message)
        except Exception:  # a UI progress bar must never break data loading
            log.debug("progress callback failed", exc_info=True)


def scaled(progress: Progress, start: float, span: float) -> Progress:
    """A progress callback for one stage of a load, mapped onto [start, start + span] of the whole."""
    if progress is None:
        return None
    return lambda fraction, message: report_progress(progress, start + span * fraction, message)


@dataclass
class LoadReport:
    """What `load_source` found, besides the rows: filled into the `report` argument when given."""

    kind: str = ""
    root: str | None = None  # the locale folder read, for folder sources
    synthetic: bool = False
    missing_clips: dict[str, int] = field(default_factory=dict)  # split -> rows skipped, clip file absent
    skipped_empty: dict[str, int] = field(default_factory=dict)  # split -> rows skipped, blank sentence
    skipped_corrupt: dict[str, int] = field(default_factory=dict)  # split -> clips that did not decode
    notes: list[str] = field(default_factory=list)

    def skipped_lines(self) -> list[str]:
        """One line per split and reason, for the CLI, the Data tab and the job summary."""
        out = []
        for what, counts in (("listed clips missing", self.missing_clips), ("empty sentences", self.skipped_empty),
                             ("unreadable clips", self.skipped_corrupt)):
            out += [f"{split}: {n} row(s) skipped ({what})" for split, n in counts.items() if n]
        return out


def check_inside(folder: str | os.PathLike, path: str | os.PathLike, *, where: str = "") -> Path:
    """The file a dataset's metadata names, resolved (symlinks followed) and proven to lie inside `folder`.

    Why: metadata is user data. A metadata.csv listing /etc/passwd or /proc/self/environ, or `../../x`, or a
    symlink out of the folder, would otherwise be read (and served as a "sample") like any clip. Absolute paths
    are refused outright: dataset metadata names files relative to its own folder. `where` names the row in
    the message ("metadata.csv line 3").
    """
    root = Path(folder).resolve()
    text = os.fspath(path)
    at = f" ({where})" if where else ""
    if not text or "\0" in text:
        raise DataSourceError(f"An empty or invalid file name in the dataset metadata{at}.")
    if Path(text).is_absolute():
        raise DataSourceError(
            f"The dataset metadata names {text!r}{at}: an absolute path. Files must be named relative to the "
            f"dataset folder {root}; refusing to read it."
        )
    resolved = (root / text).resolve()
    if not resolved.is_relative_to(root):
        raise DataSourceError(
            f"The dataset metadata names {text!r}{at}, which lies outside the dataset folder {root}; "
            "refusing to read it."
        )
    return resolved


@dataclass(frozen=True)
class Input:
    """One text box of a source on the Data tab. `key` names it in the tab's Form (unique across sources);
    `field` is the SourceConfig field it fills (None: passed to `load` only, e.g. the MDC API key)."""

    key: str
    field: str | None
    label: str
    placeholder: str = ""
    value: str = ""
    info: str | None = None
    elem_id: str | None = None
    secret: bool = False
    scale: int = 1


class Source:
    """A place audio and sentences come from. One subclass per file in whisper_studio/sources/, one line in
    the registry (sources/__init__.py): the registry feeds config validation, the CLI's `--source` choices,
    the Data/Train tabs' radios and input groups, the model card and the command preview."""

    kind: str = ""  # SourceConfig.kind and the CLI value
    label: str = ""  # the Data tab radio's label
    fields: tuple[str, ...] = ()  # SourceConfig fields it uses besides language
    required: tuple[str, ...] = ()  # of those, the ones that must be set
    inputs: tuple[Input, ...] = ()  # its Data tab text boxes (default: one per field)

    def check(self, src: "SourceConfig") -> None:
        """ConfigError naming what is missing."""
        for name in self.required:
            if not getattr(src, name, None):
                raise ConfigError(f"The {self.label or self.kind} source needs {name.replace('_', ' ')}.")

    def load(self, src: "SourceConfig", language: "Language", splits: tuple[str, ...], progress: Progress,
             report: LoadReport, *, api_key: str | None = None):
        """-> datasets.DatasetDict(split -> Dataset[COLUMNS])."""
        raise NotImplementedError

    def describe(self, src: "SourceConfig") -> str:
        """One line for the model card and summaries."""
        detail = " ".join(str(getattr(src, name)) for name in self.fields if getattr(src, name, None))
        return f"{self.label or self.kind}" + (f" ({detail})" if detail else "")

    def ui_inputs(self) -> tuple[Input, ...]:
        if self.inputs:
            return self.inputs
        return tuple(Input(key=f"{self.kind}-{name}", field=name, label=name.replace("_", " ").capitalize())
                     for name in self.fields)

    def __repr__(self) -> str:
        return f"<Source {self.kind}>"


# --- Building a DatasetDict -----------------------------------------------------------------------------------
def empty_rows() -> dict[str, list]:
    return {name: [] for name in COLUMNS}


def make_dataset(rows: dict[str, list]):
    """Rows with audio as path strings or {path, bytes} dicts -> a Dataset with `Audio(decode=False)`.

    Built from plain strings/structs and cast afterwards: `Dataset.from_dict` with an `Audio` feature would
    encode through torchcodec.
    """
    import datasets

    ds = datasets.Dataset.from_dict(rows)
    return ds.cast_column("audio", datasets.Audio(decode=False))

