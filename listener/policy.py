"""One error policy: what the CLI and the daemon do with each error, decided here once.

    error                                 action          exit code  the daemon       a command
    ────────────────────────────────────  ──────────────  ─────────  ───────────────  ─────────────────────
    connectors AuthError                  park source     1          drops the        skips the source's
                                                                     source's pulls   other brands
    connectors QueryError                 park query      2          drops this       goes on with the
                                                                     (source, brand)  other brands
    connectors ConnectorError (the rest:  retry           1          next scheduled   goes on with the
      RetryableError, FatalError, ...)                               run resumes      other brands
    storage StorageError                  fail            its own    logs it; next    stops: exit 1, or 2
                                                                     run tries again  (DatabaseFileError)
    listener ListenerError                fail            its own    as above         stops: exit 1, or 2
                                                                                      (ConfigError, ...)
    inputs InputFileError,                fail            2          -                stops: exit 2
      ImportFormatError

"Retry" means the next run, from the saved cursor: within a run the connector already
retried with capped backoff and jitter (connectors.retry), so the caller does not retry
again at once. "Park" lasts until the configuration or the credentials are fixed and
the daemon restarted. A command that pulls several (source, brand) pairs goes on past a
failed one and exits with the highest exit code among its failures: 2 when the config
must change (a brand query the platform cannot express), else 1.

A query the platform cannot express is a configuration error, so ``listener pull``
exits 2 for it, as the daemon always treated it ("stopped until the config is fixed");
it used to exit 1 like a network failure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from connectors.errors import AuthError, ConnectorError, QueryError
from inputs.mentions import ImportFormatError
from inputs.spend import InputFileError
from listener.errors import ListenerError
from storage.errors import StorageError


class Action(enum.Enum):
    RETRY = "retry at the next run"
    PARK_SOURCE = "park the source"
    PARK_QUERY = "park the brand's query on this source"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Treatment:
    """What to do with an error. ``exit_code`` None: the error's own (``exit_code``
    attribute: ListenerError, StorageError and their subclasses say which)."""

    action: Action
    exit_code: int | None = 1


POLICY: tuple[tuple[type[Exception], Treatment], ...] = (
    # Most specific first: the first class the error is an instance of decides.
    (AuthError, Treatment(Action.PARK_SOURCE, 1)),
    (QueryError, Treatment(Action.PARK_QUERY, 2)),
    (ConnectorError, Treatment(Action.RETRY, 1)),
    (StorageError, Treatment(Action.FAIL, None)),
    (ListenerError, Treatment(Action.FAIL, None)),
    (InputFileError, Treatment(Action.FAIL, 2)),
    (ImportFormatError, Treatment(Action.FAIL, 2)),
)
PARKED_EXIT_CODE = dict(POLICY)[AuthError].exit_code or 1
"""A command's exit code for a source parked at start or during its run."""
HANDLED: tuple[type[Exception], ...] = tuple(kind for kind, _ in POLICY)
"""The errors the policy knows; anything else is a bug, shown with its traceback."""


def treatment(error: Exception) -> Treatment | None:
    """The policy's treatment of ``error``, or None for an error it does not know."""
    for kind, treated in POLICY:
        if isinstance(error, kind):
            return treated
    return None


def exit_code(error: Exception) -> int:
    """The process exit code ``error`` means (1 for one the policy does not know)."""
    treated = treatment(error)
    if treated is None:
        return 1
    return treated.exit_code if treated.exit_code is not None else int(getattr(error, "exit_code", 1))
