"""The one walker over TrainConfig's option metadata (config.py): parser, config from flags, command preview.

A field with `metadata={"flag": ..., "help": ...}` is a command-line option of `train`. Its type comes from the
annotation: `Literal[...]` gives argparse choices, `int`/`float`/`str` (or `X | None`) the converter, a `switch`
makes a store_true flag that sets the field to that value, `nargs` a list. `values` maps the words the flag
takes to field values (`--8bit auto|on|off`), and `aliases` adds switches that set one value (`--no-8bit` sets
load_in_8bit to False; the command preview prefers an alias where one says the value). Nested dataclasses (source, lora) are walked under their field name, so `lora.rank` is `--rank`.

Flags default to None, so a flag overrides a --config file only when it is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from whisper_studio.config import TrainConfig

# CLI-only: the run folder is `--out`, not a TrainConfig flag (the job manager fills output_dir in itself).
OUT_FLAG = "--out"


@dataclass(frozen=True)
class Option:
    """One TrainConfig field that is a command-line option."""

    path: str  # dotted field path in TrainConfig, e.g. "lora.rank"
    flag: str  # e.g. "--rank"
    help: str | None
    type: Any  # the converter argparse uses (int, float, str); None for switches
    choices: tuple | None
    switch: Any = None  # for store_true flags: the value the flag sets
    nargs: str | None = None
    metavar: str | None = None
    always: bool = False  # shown in the command preview even at its default
    values: tuple[tuple[str, Any], ...] = ()  # (word on the command line, field value) pairs
    aliases: tuple[tuple[str, Any], ...] = ()  # (switch flag, field value it sets) pairs

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def get(self, cfg: Any) -> Any:
        for key in self.path.split("."):
            cfg = getattr(cfg, key)
        return cfg


def source_kinds() -> tuple[str, ...]:
    """The `--source` choices: the sources registry's kinds."""
    from whisper_studio import sources

    return sources.kinds()


_DYNAMIC_CHOICES = {"source_kinds": source_kinds}


def options(cls: type = TrainConfig, prefix: str = "") -> list[Option]:
    """Every option of `cls` and its nested dataclasses, in field order."""
    hints = typing.get_type_hints(cls)
    out: list[Option] = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            out.extend(options(hint, f"{prefix}{f.name}."))
            continue
        meta = f.metadata
        if "flag" not in meta:
            continue
        base = _strip_optional(hint)
        choices = meta.get("choices")
        if isinstance(choices, str):
            choices = _DYNAMIC_CHOICES[choices]()
        if typing.get_origin(base) is Literal:
            choices = typing.get_args(base)
            base = type(choices[0])
        if typing.get_origin(base) is tuple:
            base = typing.get_args(base)[0]
        switch = meta.get("switch")
        values = tuple(meta.get("values", {}).items())
        if values:
            base, choices = str, tuple(word for word, _ in values)
        out.append(Option(
            path=prefix + f.name, flag=meta["flag"], help=meta.get("help"),
            type=None if switch is not None else base, choices=tuple(choices) if choices else None,
            switch=switch, nargs=meta.get("nargs"), metavar=meta.get("metavar"), always=bool(meta.get("always")),
            values=values, aliases=tuple(meta.get("aliases", {}).items()),
        ))
    return out


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


# --- the parser ------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every TrainConfig option to `parser` (all defaulting to None / False)."""
    for o in options():
        if o.switch is not None:
            parser.add_argument(o.flag, dest=o.dest, action="store_true", help=o.help)
            continue
        kwargs: dict[str, Any] = {"dest": o.dest, "help": o.help, "type": o.type}
        if o.choices:
            kwargs["choices"] = o.choices
        if o.nargs:
            kwargs["nargs"] = o.nargs
        if o.metavar:
            kwargs["metavar"] = o.metavar
        parser.add_argument(o.flag, **kwargs)
        for alias, value in o.aliases:
            word = next(w for w, v in o.values if v is value or v == value) if o.values else value
            parser.add_argument(alias, dest=o.dest, action="store_const", const=word,
                                help=f"same as {o.flag} {word}")


def apply_args(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Write the options given in `args` into `data` (TrainConfig.to_dict() shape) and return it."""
    for o in options():
        value = getattr(args, o.dest, None)
        if o.switch is not None:
            if value:
                _set_path(data, o.path, o.switch)
            continue
        if value is None or (o.nargs and not value):
            continue
        if o.nargs:  # lists take separate words, commas within a word too
            value = [part for item in value for part in str(item).replace(",", " ").split()]
        if o.values:
            value = dict(o.values)[value]
        _set_path(data, o.path, value)
    return data


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        data = data.setdefault(key, {})
    data[keys[-1]] = value


# --- the headless command preview -------------------------------------------------------------------------------
def command_args(cfg: TrainConfig, *, include_out: bool = False) -> list[str]:
    """The `train` flags that make `cfg` (only values different from the default, plus the `always` ones)."""
    default = TrainConfig()
    parts: list[str] = []
    for o in options():
        value = o.get(cfg)
        if not o.always and value == o.get(default):
            continue
        if o.switch is not None:
            if value == o.switch:
                parts.append(o.flag)
            continue
        if value is None:
            continue
        alias = next((a for a, v in o.aliases if v is value), None)
        if alias is not None:
            parts.append(alias)
            continue
        parts.append(o.flag)
        if o.values:
            parts.append(next(w for w, v in o.values if v is value or (type(v) is type(value) and v == value)))
        elif o.nargs:
            parts.extend(str(v) for v in value)
        else:
            parts.append(_fmt(value))
    if include_out and cfg.output_dir:
        parts += [OUT_FLAG, cfg.output_dir]
    return parts


def command_line(cfg: TrainConfig, *, python: str = "python", include_out: bool = False) -> str:
    if cfg.num_processes > 1:
        head = ["torchrun", "--standalone", f"--nproc_per_node={cfg.num_processes}", "-m", "whisper_studio", "train"]
    else:
        head = [python, "-m", "whisper_studio", "train"]
    return " ".join(shlex.quote(p) for p in head + command_args(cfg, include_out=include_out))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e6:
            return str(int(value)) if value >= 1 else repr(value)
        return f"{value:g}"
    return str(value)
