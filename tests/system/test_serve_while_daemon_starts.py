"""A view being polled never keeps the daemon from starting (issue 14: "a view being
polled keeps the daemon from starting: in use by another process"). A real `listener
serve` is asked for pages without pause while a real `listener run` starts on the same
database: the daemon starts and works, every answer is a page or "waiting for the
daemon" (503), and once the daemon has published its snapshot the view reads it.

The deterministic check of the cause (another process opens the database read-write
while a request reads) is tests/web/test_reader.py; this is the whole story end to end."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from storage.store import Store
from tests.system.live_site import Server
from tests.timing import HANG_GUARD, wait_until

CONFIG = """
[database]
path = "listener.duckdb"

[[brands]]
name = "Brewly"
terms = ["brewly"]

[sources.demo]
every_minutes = 60
seed = 3
history_days = 2
"""


class Poller(threading.Thread):
    """Asks the server for pages one after another until told to stop."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server, self.statuses, self.kinds = server, [], []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for path in ("/", "/stream", "/api/live.json"):
                status, _, body = self.server.request("GET", path)
                self.statuses.append(status)
                if path == "/api/live.json" and status == 200:
                    self.kinds.append(json.loads(body)["data"]["kind"])


def test_the_daemon_starts_while_the_view_is_polled(tmp_path: Path):
    (tmp_path / "listener.toml").write_text(CONFIG, encoding="utf-8")
    Store.open(tmp_path / "listener.duckdb").close()
    server = Server(tmp_path / "listener.toml")
    poller = Poller(server)
    daemon = None
    try:
        poller.start()
        wait_until(lambda: len(poller.statuses) >= 6, "the view answering")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
        daemon = subprocess.Popen([sys.executable, "-m", "listener.cli", "--config", str(tmp_path / "listener.toml"),
                                   "run"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                                  cwd=tmp_path)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in daemon.stderr], daemon=True).start()
        log: list[str] = []

        def logged(text: str) -> bool:
            while not lines.empty():
                log.append(lines.get())
            return any(text in line for line in log) or daemon.poll() is not None

        wait_until(lambda: logged("status=ok"), "the daemon's first pull")
        assert daemon.poll() is None, "the daemon did not start:\n" + "".join(log)
        assert not any("in use by another process" in line for line in log), "".join(log)
        wait_until(lambda: "snapshot" in poller.kinds, "the view reading the daemon's snapshot")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=HANG_GUARD) == 0, "".join(log)
    finally:
        poller.stop.set()
        poller.join(HANG_GUARD)
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        assert server.stop() == 0
    assert set(poller.statuses) <= {200, 503}, sorted(set(poller.statuses))
    assert 200 in poller.statuses
