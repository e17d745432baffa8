"""Fixtures of the system suites (tests/system/): they start the daemon, the CLI, servers
and browsers as processes; their helpers are tests/system/daemon.py, chromium.py and
live_site.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.system.daemon import STARTED


@pytest.fixture(autouse=True)
def _no_daemon_left() -> Iterator[None]:
    """A test that failed before stopping its daemon leaves none running: on a loaded
    machine it would idle on for the rest of the suite, holding memory and waking up."""
    yield
    while STARTED:
        daemon = STARTED.pop()
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
