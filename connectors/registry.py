"""Finding connectors through the ``listener.connectors`` entry point group.

Each entry point names a module that provides:

* ``SETTINGS``: ``{key: Setting}`` (connectors.settings: type, default, doc and
  constraints, declared once), the keys its ``[sources.NAME]`` table accepts besides
  the common ``enabled`` and ``every_minutes``. Keys ending in ``_env`` name
  environment variables that hold secrets; the secret itself never appears in a config
  file. The older ``{key: (type, default, "doc")}`` form is still read, unconstrained.
* ``create(settings, clock) -> Connector``.

Built-in connectors register exactly as a third-party package would.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from types import ModuleType

GROUP = "listener.connectors"


@cache
def installed() -> tuple[str, ...]:
    """The names of the registered connectors, without importing any of them."""
    return tuple(sorted({entry.name for entry in entry_points(group=GROUP)}))


@cache
def connector_module(name: str) -> ModuleType:
    """The connector module registered as ``name``, imported on first use: a command
    imports only the connectors its config names (their client libraries take from 0.05
    to over 1 s each to import, and every command reads the config)."""
    for entry in entry_points(group=GROUP, name=name):
        return entry.load()
    known = ", ".join(installed()) or "none"
    raise KeyError(f"no connector named {name!r} is installed (installed: {known})")


def available() -> dict[str, ModuleType]:
    """Every registered connector module, by source name (imports them all)."""
    return {name: connector_module(name) for name in installed()}
