"""Waiting in tests without depending on the machine's speed (issue 11: the suite passes
on 2 cores at a load average of 8).

A test waits for an event or a condition, never for a fixed time; every wait is bounded
only by ``HANG_GUARD``, which fires on a real hang and never because the machine is
slow. Speed is measured by the scripts in bench/, not asserted here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

HANG_GUARD = 1800.0
"""Seconds any wait in a test may last before the test counts as hung: subprocesses,
daemon log lines, thread joins, queues, HTTP clients talking to local fakes, browsers.
Half an hour: a loaded 2-core machine is slower by a factor, never by this much."""

PEER_TIMEOUT = 300.0
"""The request timeout given to a client of ours talking to a fake on 127.0.0.1 (a
connector, the alerts' webhook and e-mail), where a timeout would fail the test: five
minutes, the most every such setting accepts (Reddit's and the alerts' are capped at
300 s). A test whose subject is the timeout itself sets its own, short one and a fake
that answers after twice as long."""

POLL = 0.02
"""Seconds between two checks of a polled condition."""


def wait_until(condition: Callable[[], object], what: str | Callable[[], str], guard: float = HANG_GUARD) -> object:
    """Poll ``condition`` until it returns something true and return that; after
    ``guard`` seconds (a hang) raise an AssertionError naming ``what`` (a callable is
    asked then, to describe the state at the failure)."""
    deadline = time.monotonic() + guard
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what() if callable(what) else what}: not so after {guard:.0f} s (a hang)")
        time.sleep(POLL)
