"""Opening the configured sources' connectors, shared by ``listener pull`` and the daemon.

A source whose connector cannot be created (missing or rejected credentials, a bad
query for that platform) is *parked*: it is reported once, with what to fix, and the
other sources go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from connectors.base import Clock, Connector
from connectors.errors import ConnectorError
from connectors.registry import connector_module
from listener.config import Settings, SourceSettings
from listener.errors import ConfigError

log = logging.getLogger("listener")


@dataclass
class OpenSources:
    connectors: dict[str, Connector] = field(default_factory=dict)
    parked: dict[str, str] = field(default_factory=dict)
    """source name -> why it is parked"""

    def park(self, name: str, reason: str) -> None:
        connector = self.connectors.pop(name, None)
        if connector is not None:
            connector.close()
        self.parked[name] = reason
        log.error("source %s parked: %s", name, reason)

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()
        self.connectors.clear()


def open_sources(settings: Settings, clock: Clock, only: SourceSettings | None = None) -> OpenSources:
    opened = OpenSources()
    for source in [only] if only else settings.enabled_sources:
        try:
            opened.connectors[source.name] = connector_module(source.name).create(source.options, clock)
        except ConnectorError as exc:
            opened.park(source.name, str(exc))
        except ValueError as exc:
            # A connector checks its own settings' ranges: that is a config error (exit 2).
            opened.close()
            raise ConfigError([f"sources.{source.name}: {exc}"], "configuration") from exc
    return opened
