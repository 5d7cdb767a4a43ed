"""Settings declared once: every config dataclass field that a user may set carries its help text.

A field declared with :func:`setting` is a user-facing option. Its default and help live only here;
the command line (:mod:`signanon.cli.options`), batch and the web page read them from the dataclass,
so a default is never repeated in argparse::

    @dataclass(frozen=True)
    class SamplingConfig:
        steps: int = setting(20, "DDIM steps of the full schedule", metavar="N")

``flag``: the command-line name without dashes (default: the field name with ``_`` -> ``-``);
``choices``: allowed values; ``cli=False`` keeps a field out of the command line (a setting for the
Python API only). Nested config dataclasses are walked (:func:`settings_of`).
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

_KEY = "signanon.setting"


@dataclass(frozen=True)
class SettingInfo:
    help: str
    flag: str | None = None
    metavar: str | None = None
    choices: Sequence[Any] | None = None
    cli: bool = True


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    default_factory: Any = dataclasses.MISSING,
    flag: str | None = None,
    metavar: str | None = None,
    choices: Sequence[Any] | None = None,
    cli: bool = True,
) -> Any:
    """A dataclass field that is a user-facing setting (see the module doc)."""
    meta = {_KEY: SettingInfo(help, flag, metavar, tuple(choices) if choices is not None else None, cli)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Setting:
    """One user-facing setting of a config tree: ``path`` from the root (e.g. ("sampling", "steps"))."""

    path: tuple[str, ...]
    field: dataclasses.Field
    info: SettingInfo
    default: Any

    @property
    def name(self) -> str:
        """The dotted name used in library messages, e.g. ``sampling.steps``."""
        return ".".join(self.path)

    @property
    def flag(self) -> str:
        return "--" + (self.info.flag or self.path[-1].replace("_", "-"))

    @property
    def dest(self) -> str:
        return "setting__" + "__".join(self.path)


def settings_of(config_cls_or_obj: Any, prefix: tuple[str, ...] = ()) -> Iterator[Setting]:
    """Every :func:`setting` field of a config dataclass (class or instance), nested configs included,
    in declaration order; ``default`` is the value on the given instance (or the class default)."""
    obj = config_cls_or_obj if not isinstance(config_cls_or_obj, type) else _default_instance(config_cls_or_obj)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        info = f.metadata.get(_KEY)
        if info is not None:
            yield Setting(prefix + (f.name,), f, info, value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            yield from settings_of(value, prefix + (f.name,))


def _default_instance(cls: type) -> Any:
    return cls()


def with_settings(config: Any, values: dict[tuple[str, ...], Any]) -> Any:
    """A copy of ``config`` with the settings at the given paths replaced (nested configs rebuilt)."""
    if not values:
        return config
    here: dict[str, Any] = {}
    nested: dict[str, dict[tuple[str, ...], Any]] = {}
    for path, value in values.items():
        if len(path) == 1:
            here[path[0]] = value
        else:
            nested.setdefault(path[0], {})[path[1:]] = value
    for name, sub in nested.items():
        here[name] = with_settings(getattr(config, name), sub)
    return dataclasses.replace(config, **here)


PROCESSES_PER_CPU = 4  # more local worker processes than this per CPU only add memory (~70-600 MB each)


def check_local_processes(count: int, hint: str = "") -> None:
    """Refuse (one-line InputError) more worker processes than this machine can usefully run:
    PROCESSES_PER_CPU per CPU, at least 8. A thousand processes asked for by mistake exhausted
    memory and hung the run instead of failing it. ``hint`` ends the message (e.g. where more run)."""
    from .errors import InputError

    limit = max(8, PROCESSES_PER_CPU * (os.cpu_count() or 1))
    if count > limit:
        raise InputError(f"--workers {count} is more processes than this machine can run "
                         f"(at most {limit}: {PROCESSES_PER_CPU} per CPU{hint})")


def check_whole_number(name: str, value: Any, low: int) -> None:
    """Refuse (one-line InputError) a ``value`` of the setting ``name`` that is not a whole number
    (a float, a string, nan, a bool) or is under ``low``: such values failed deep in a run, or ran
    unchecked."""
    from .errors import InputError

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"{name} must be a whole number, at least {low}, got {value!r}")
