"""Command-line flags generated from the config dataclasses (:mod:`signanon.config`).

Each :func:`~signanon.config.setting` field becomes one flag whose default is ``None`` ("not
given"), so the dataclass keeps the only default and the help text shows it. After parsing,
:func:`config_from_args` applies the flags that were given to the config's defaults, and
:func:`given_settings` tells which were given (to refuse the flags of another method).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Iterable

from ..config import Setting, settings_of, with_settings
from ..errors import InputError


def add_command(
    subparsers, name: str, summary: str, description: str, epilog: str | None = None, *, quiet: bool = True
):
    """Register one sub-command: ``summary`` in ``signanon --help``'s list, ``description`` and
    ``epilog`` (examples) in its own ``--help``, printed as written (line breaks kept).
    ``quiet``: give it ``-q/--quiet`` (no progress bar, no final message)."""
    parser = subparsers.add_parser(
        name, help=summary, description=description, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    if quiet:
        parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no final message")
    return parser


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, str):
        return repr(value) if " " in value or not value else value
    return str(value)


def _value_type(setting: Setting):
    """The argparse ``type`` of a setting: from its default, else from its annotation."""
    default = setting.default
    if isinstance(default, bool):
        return bool
    for kind in (int, float):
        if type(default) is kind:
            return kind
    annotation = str(setting.field.type)
    if default is None:
        if "bool" in annotation:
            return bool
        if "int" in annotation and "str" not in annotation:
            return int
        if "float" in annotation and "str" not in annotation:
            return float
    return str


def add_settings(container, config: Any, *, exclude: Iterable[str] = ()) -> list[Setting]:
    """Add one flag per command-line setting of ``config`` (class or instance) to ``container``
    (a parser or an argument group); returns the settings added."""
    added = []
    skip = set(exclude)
    for s in settings_of(config):
        if not s.info.cli or s.name in skip:
            continue
        kind = _value_type(s)
        kwargs: dict[str, Any] = dict(dest=s.dest, default=None)
        help_text = s.info.help or s.name
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = kind
            kwargs["metavar"] = s.info.metavar or s.path[-1].upper()
        if s.info.choices is not None:
            kwargs["choices"] = list(s.info.choices)
            kwargs.pop("metavar", None)
        if "default:" not in help_text:
            help_text = f"{help_text} (default: {_show(s.default)})"
        kwargs["help"] = help_text.replace("%", "%%")
        container.add_argument(s.flag, **kwargs)
        added.append(s)
    return added


def given_settings(args: argparse.Namespace, settings: Iterable[Setting]) -> dict[Setting, Any]:
    """The settings whose flag was given on the command line, with their values."""
    return {s: getattr(args, s.dest) for s in settings if getattr(args, s.dest, None) is not None}


def config_from_args(config: Any, args: argparse.Namespace, settings: Iterable[Setting] | None = None) -> Any:
    """``config`` (a class: its defaults; or an instance) with every given flag applied.

    An invalid value (the config's own check, or a float flag given as nan or inf) becomes a
    one-line :class:`InputError`.
    """
    base = config() if isinstance(config, type) else config
    chosen = settings if settings is not None else list(settings_of(base))
    values = {}
    for s, value in given_settings(args, chosen).items():
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, float) and not math.isfinite(value):
            # nan passes every range check (each comparison with it is false): a privacy margin of
            # nan would switch its gate off
            raise InputError(f"{s.flag} must be a finite number, got {value}")
        values[s.path] = value
    try:
        return with_settings(base, values)
    except (TypeError, ValueError, InputError) as err:
        raise InputError(_in_flags(str(err), given_settings(args, chosen))) from None


def _in_flags(message: str, given: Iterable[Setting]) -> str:
    """``message`` with the field it opens with named by the flag the user typed
    (``verify.every must be ...`` -> ``--verify-every must be ...``). Only a field that was given
    on the command line, and only as the message's first word, where the configs' checks name it."""
    first, sep, rest = message.partition(" ")
    given = list(given)
    named = [s for s in given if s.name == first] or [s for s in given if first.rsplit(".", 1)[-1] == s.path[-1]]
    if not sep or len({s.flag for s in named}) != 1:  # none, or two flags it could be: leave it
        return message
    return f"{named[0].flag} {rest}"


def flag_of(config: Any, name: str) -> str:
    """The command-line flag of the setting called ``name`` (dotted path) in ``config``."""
    for s in settings_of(config):
        if s.name == name:
            return s.flag
    raise KeyError(name)


__all__ = ["add_command", "add_settings", "config_from_args", "flag_of", "given_settings"]
