"""The data sources registry: where audio and sentences come from.

`REGISTRY` (kind -> Source, in display order) is the one list every part of the app reads: SourceConfig
validation (`get(kind).check(src)`), the `--source` choices of the CLI, the Data/Train tabs' radios and input
groups, the model card (`describe`) and the command preview. Adding a source = one file in this folder with a
`Source` subclass + one line in `REGISTRY` below.

Light on purpose (config.py imports it to validate, the UI to draw its radios): no datasets or torch here.
"""

from __future__ import annotations

from whisper_studio.errors import ConfigError
from whisper_studio.sources.base import COLUMNS, Input, LoadReport, Progress, Source, check_inside
from whisper_studio.sources.cv_folder import CvFolderSource
from whisper_studio.sources.demo import DemoSource
from whisper_studio.sources.hub import HubSource
from whisper_studio.sources.mdc import MdcSource
from whisper_studio.sources.own import OwnDataSource

REGISTRY: dict[str, Source] = {source.kind: source for source in (
    DemoSource(),
    MdcSource(),
    CvFolderSource(),
    HubSource(),
    OwnDataSource(),
)}


def kinds() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get(kind: str) -> Source:
    """The source of a kind; ConfigError listing the kinds for an unknown one."""
    try:
        return REGISTRY[kind]
    except (KeyError, TypeError):
        raise ConfigError(f"Unknown data source {kind!r}; choose one of {', '.join(REGISTRY)}.") from None


def register(source: Source) -> Source:
    """Add a source (after the built-in ones); returns it. Its kind must be new."""
    if not source.kind:
        raise ConfigError(f"{type(source).__name__} has no kind.")
    if source.kind in REGISTRY and REGISTRY[source.kind] is not source:
        raise ConfigError(f"A data source {source.kind!r} is registered already.")
    REGISTRY[source.kind] = source
    return source


def unregister(kind: str) -> None:
    """Remove a source (tests register a test-only one and remove it after)."""
    REGISTRY.pop(kind, None)


__all__ = ["COLUMNS", "REGISTRY", "Input", "LoadReport", "Progress", "Source", "check_inside", "get", "kinds", "register",
           "unregister"]
