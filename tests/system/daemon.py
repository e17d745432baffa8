"""The daemon as a test runs it: `listener run` in a subprocess, its log read line by
line, and the wait for the snapshot it publishes (the system suites share these)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from tests.timing import HANG_GUARD, wait_until

STARTED: list[Daemon] = []
"""Every daemon started through this class, for tests/system/conftest.py's _no_daemon_left."""


class Daemon:
    """`listener run` in a subprocess, its stderr read line by line."""

    def __init__(self, directory: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "listener.cli", "--config", str(directory / "listener.toml"), "run"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=directory,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()  # None: stderr ended, the daemon is gone
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        STARTED.append(self)

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, count: int = 1, timeout: float = HANG_GUARD) -> list[str]:
        deadline = time.monotonic() + timeout
        while sum(text in line for line in self.log) < count:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"daemon did not log {text!r} x{count} in {timeout}s:\n{''.join(self.log)}")
            if line is None:  # a daemon that died at start-up fails the test now, not after the hang guard
                self.lines.put(None)
                raise AssertionError(f"daemon exited ({self.proc.wait()}) before logging {text!r} x{count}:\n"
                                     f"{''.join(self.log)}")
            self.log.append(line)
        return [line for line in self.log if text in line]

    def stop(self, timeout: float = HANG_GUARD) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)  # it ends at the end of stderr: every line is queued
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None:
                self.log.append(line)
        return code


def logged_at(line: str) -> float:
    """The epoch time of a daemon log line (logging's local-time stamp)."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def wait_for_snapshot(folder: Path, lines: list[str]) -> None:
    """Until the daemon in ``folder`` has published a snapshot after the last of
    ``lines`` was logged (it copies the file after a job's line, when no other job is in
    flight), however long that takes on a loaded machine."""
    last = max(logged_at(line) for line in lines)
    snapshot = folder / "listener.snapshot.duckdb"
    wait_until(lambda: snapshot.exists() and snapshot.stat().st_mtime >= last
               and not list(folder.glob(snapshot.name + ".*.partial")), "a snapshot published after the cycle")
