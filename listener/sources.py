"""Opening the configured sources' connectors, shared by ``listener pull`` and the daemon
(through ``Pipeline.start_sources``, which records each source that cannot start).

A source whose connector cannot be created (missing or rejected credentials, a bad
query for that platform) is *parked*: it is reported once, with what to fix, and the
other sources go on. A setting out of the connector's range is a config error
(``invalid``): the caller records it and stops with exit code 2.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from connectors.base import Clock, Connector
from connectors.errors import ConnectorError, redact, register_secret
from connectors.registry import connector_module
from listener.config import Settings, SourceSettings
from listener.errors import ConfigError

log = logging.getLogger("listener.runs")


@dataclass
class OpenSources:
    connectors: dict[str, Connector] = field(default_factory=dict)
    parked: dict[str, str] = field(default_factory=dict)
    """source name -> why it is parked"""
    invalid: dict[str, str] = field(default_factory=dict)
    """source name -> which of its settings the connector refused"""

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

    def raise_if_invalid(self) -> None:
        """ConfigError (exit 2) naming every source whose settings its connector refused."""
        if self.invalid:
            self.close()
            raise ConfigError([f"sources.{name}: {why}" for name, why in self.invalid.items()], "configuration")


def _register_secrets(source: SourceSettings) -> None:
    """The source's credentials (the variables its ``*_env`` settings name) and the query
    strings of its URLs (a feed's may hold a token) never reach an error message."""
    for key, value in source.options.items():
        if key.endswith("_env") and isinstance(value, str) and value:
            register_secret(os.environ.get(value, ""))
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, str) and item.startswith(("http://", "https://")):
                query = urlsplit(item).query
                register_secret(query)
                for _name, part in parse_qsl(query):
                    register_secret(part)


def open_sources(settings: Settings, clock: Clock, only: SourceSettings | None = None) -> OpenSources:
    """Each enabled source's connector (or ``only``'s); none of its failures raises: see
    ``OpenSources.parked`` and ``invalid``."""
    opened = OpenSources()
    for source in [only] if only else settings.enabled_sources:
        _register_secrets(source)
        try:
            opened.connectors[source.name] = connector_module(source.name).create(source.options, clock)
        except ConnectorError as exc:
            opened.park(source.name, str(exc))
        except ValueError as exc:
            # A connector checks its own settings' ranges: that is a config error (exit 2).
            opened.invalid[source.name] = redact(str(exc))  # it may quote a feed URL's token
    return opened
