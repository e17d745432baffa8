"""Exceptions raised by ``listener``.

    ListenerError            a command could not do its work (exit 1)
    └── ConfigError          the configuration or the command line is wrong (exit 2);
                             carries every problem found, each naming its key
"""

from __future__ import annotations

from collections.abc import Sequence


class ListenerError(Exception):
    """A runtime failure; the CLI prints it as ``Error: ...`` and exits 1."""

    exit_code = 1


class ConfigError(ListenerError):
    """Invalid configuration; ``problems`` lists each as ``"key: what is wrong"``."""

    exit_code = 2

    def __init__(self, problems: Sequence[str], source: str = "configuration") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(f"{source} has {len(self.problems)} {noun}:\n{lines}")
