"""One declarative description of a plugin's settings.

A connector (``[sources.NAME]``, connectors.registry) or a scorer type
(``[scorers.NAME]``, analysis.scorers) declares its keys once, as
``SETTINGS = settings_table(Setting(...), ...)``. From that one declaration:

* listener.config validates a config file's table (every problem collected, each
  named ``sources.NAME.key``; exit 2);
* a connector's ``create`` gets its values through :func:`validated`, the same
  checks, so a direct call (tests, a third-party caller) is refused the same way;
* docs/settings_tables.py writes the source pages' settings tables and the
  per-source comments of config.example.toml (a test fails when they drift).

Only what depends on several settings together, or on the world outside (a clock,
a file on disk), stays in the plugin's ``create``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HTTP_SCHEMES = ("http://", "https://")
# A timeout's bounds: requests fails every call on an infinite timeout (and NaN is no number).
TIMEOUT: Mapping[str, float] = MappingProxyType({"above": 0, "max": 3600})
CENTURY_DAYS = 36_500
"""Upper bound of a span setting: a larger one overflows datetime arithmetic."""


@dataclass(frozen=True)
class Setting:
    """One key of a plugin's table.

    ``type`` is one of bool, int, float, str, list (a list of strings). Bounds are
    inclusive (``min``/``max``) or exclusive (``above``); ``choices`` lists the allowed
    values; ``schemes`` the prefixes a URL must start with; ``required`` refuses an empty
    string or list. A key ending in ``_env`` names an environment variable holding a
    secret: its value must be such a name ("" = none, unless required). ``check`` is a
    further test of the one value, returning a problem or None (e.g. each list item)."""

    name: str
    type: type
    default: Any
    doc: str
    min: float | None = None
    max: float | None = None
    above: float | None = None
    choices: tuple[Any, ...] = ()
    schemes: tuple[str, ...] = ()
    required: bool = False
    check: Callable[[Any], str | None] | None = None
    example: Any = None
    """A value shown in config.example.toml and the source pages where the default is no example
    (an empty list of feeds, say); documentation only."""
    shown_default: str = ""
    """How the docs describe a default that depends on the install (it names a version)."""

    @property
    def env_var(self) -> bool:
        return self.name.endswith("_env")

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this key, or None."""
        kind = self.type
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            return f"must be a whole number, got {value!r}"
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"must be a number, got {value!r}"
        if kind is bool and not isinstance(value, bool):
            return f"must be true or false, got {value!r}"
        if kind is list and not (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
            return "must be a list of strings"
        if kind not in (int, float, bool, list) and not isinstance(value, kind):
            return f"must be a {kind.__name__}, got {value!r}"
        if kind in (int, float) and not self._in_range(value):
            return f"must be {self.range_text()}, got {value!r}"
        if self.required and (not value or (isinstance(value, str) and not value.strip())):
            return f"must not be empty, got {value!r}"
        if self.env_var and value and not ENV_NAME.fullmatch(value):
            # "" means "none" (e.g. Mastodon's anonymous access); anything else must be a name.
            return "must name an environment variable (letters, digits, _), not hold a secret"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(map(repr, self.choices))}, got {value!r}"
        if self.schemes and not value.startswith(self.schemes):
            return f"must start with {' or '.join(self.schemes)}, got {value!r}"
        return self.check(value) if self.check else None

    def _in_range(self, value: float) -> bool:
        # Written so NaN fails every bound (each comparison with NaN is false).
        if self.type is float and not math.isfinite(value) and self.max is None:
            return False
        if self.above is not None and not value > self.above:
            return False
        if self.min is not None and not value >= self.min:
            return False
        return self.max is None or value <= self.max

    def range_text(self) -> str:
        """The bounds in words: "a whole number from 1 to 10", "a number above 0 and at most 3600"."""
        noun = "a whole number" if self.type is int else "a number"
        if self.above is not None:
            low = f" above {self.above:g}"
        elif self.min is not None:
            low = f" from {self.min:g}"
        else:
            low = "" if self.type is int or self.max is not None else " (finite)"
        if self.max is None:
            return noun + low + (" up" if self.min is not None and self.above is None else "")
        if self.min is not None and self.above is None:
            return f"{noun}{low} to {self.max:g}"
        return f"{noun}{low}{' and' if low else ''} at most {self.max:g}"


    def accepts(self) -> str:
        """What the key accepts, in words (the source pages' tables)."""
        if self.choices:
            return "one of " + ", ".join(f"`{choice}`" for choice in self.choices)
        if self.type in (int, float):
            return self.range_text()
        if self.type is bool:
            return "true or false"
        if self.type is list:
            return "a non-empty list of strings" if self.required else "a list of strings"
        if self.env_var:
            return "the name of an environment variable" + ("" if self.required else ", or \"\" for none")
        if self.schemes:
            return "a URL starting with " + " or ".join(f"`{scheme}`" for scheme in self.schemes)
        return "non-empty text" if self.required else "text"


def settings_table(*settings: Setting) -> Mapping[str, Setting]:
    """A plugin's ``SETTINGS``: its Settings by key, read-only."""
    return MappingProxyType({s.name: s for s in settings})


def declared_settings(module: Any) -> Mapping[str, Setting]:
    """A plugin module's SETTINGS as Settings. A third-party module written before
    Setting existed may still declare ``{key: (type, default, "doc")}``: that old form is
    read as a Setting with no constraints (kept for compatibility only)."""
    raw: Mapping[str, Any] = getattr(module, "SETTINGS", {})
    return {key: spec if isinstance(spec, Setting) else Setting(key, *spec) for key, spec in raw.items()}


def check_values(declared: Mapping[str, Setting], table: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Every declared key's value (the table's where valid and given, else the default)
    and the problems found, as (key, message) pairs. Keys not declared are the caller's
    to judge (listener.config names them as unknown)."""
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, setting in declared.items():
        if key not in table:
            values[key] = setting.default
            continue
        problem = setting.problem(table[key])
        if problem:
            problems.append((key, problem))
            values[key] = setting.default
        else:
            value = table[key]
            values[key] = tuple(value) if setting.type is list else value
    return values, problems


def validated(source: str, declared: Mapping[str, Setting], table: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``table`` checked against ``declared``, defaults filled in, or one
    ValueError listing every problem (a configuration error: exit 2)."""
    values, problems = check_values(declared, table)
    if problems:
        raise ValueError(f"{source} settings: " + "; ".join(f"{key}: {message}" for key, message in problems))
    return values
