"""Exceptions raised by ``listener``.

    ListenerError            a command could not do its work (exit 1)
    └── ConfigError          the configuration or the command line is wrong (exit 2);
        │                    carries every problem found, each naming its key
        └── UnknownNameError a --brand, --campaign, --source... that names nothing known

What the CLI and the daemon do with these and with connectors', storage's and inputs'
errors (retry, park, fail, which exit code) is decided in one place: listener.policy.
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


class UnknownNameError(ConfigError):
    """A name given on the command line that matches nothing known: a usage error (exit 2)
    in every command alike. The message names the value and lists the known ones, e.g.
    ``--brand: no brand named 'Nope' (brands: Beanhaus, Brewly)``."""

    def __init__(self, option: str, noun: str, value: str, known: Sequence[str], hint: str = "") -> None:
        listed = ", ".join(known) if known else "none"
        message = f"{option}: no {noun} named {value!r} ({noun}s: {listed})"
        if hint and not known:
            message += f"; {hint}"
        self.option, self.value, self.known = option, value, tuple(known)
        self.problems = [message]
        self.source = "command line"
        # One line, not ConfigError's list: there is one problem, on the command line.
        ListenerError.__init__(self, message)
