"""Finding connectors through the ``listener.connectors`` entry point group.

Each entry point names a module that provides:

* ``SETTINGS``: ``{key: (type, default, "one-line doc")}``, the keys its
  ``[sources.NAME]`` table accepts besides the common ``enabled`` and
  ``every_minutes``. Keys ending in ``_env`` name environment variables that hold
  secrets; the secret itself never appears in a config file.
* ``create(settings, clock) -> Connector``.

Built-in connectors register exactly as a third-party package would.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from types import ModuleType

GROUP = "listener.connectors"


@cache
def available() -> dict[str, ModuleType]:
    """Every registered connector module, by source name."""
    found: dict[str, ModuleType] = {}
    for entry in entry_points(group=GROUP):
        found[entry.name] = entry.load()
    return found


def connector_module(name: str) -> ModuleType:
    modules = available()
    if name not in modules:
        known = ", ".join(sorted(modules)) or "none"
        raise KeyError(f"no connector named {name!r} is installed (installed: {known})")
    return modules[name]
