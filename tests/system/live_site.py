"""A live view to test against: a config and database on disk (three brands over nine
days, a hostile thread, a 1 MB post, runs and alerts) and `listener serve` on it in a
child process on 127.0.0.1 (tests/listener/test_serve.py, the browser tests)."""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from analysis.sentiment import Score, VaderScorer
from connectors.base import Mention
from storage.labels import LabelRequest, apply_label
from storage.rollup import rollup_pending
from storage.store import Store, to_db_time
from tests.timing import HANG_GUARD

AS_OF = datetime(2026, 11, 10, 12, 30, tzinfo=timezone.utc)
HOSTILE = ("<script>alert(1)</script><img src=x onerror=alert(2)> terrible awful horrible service "
           "\u0645\u0631\u062d\u0628\u0627 \u202eevil\u202c \U0001F620\U0001F525 ctrl:\x00\x07\x1b[31m end")
HOSTILE_ID = "hostile-1"
BIG_TEXT = "Globex is great. " + "x" * (1 << 20)
BRANDS = ("Acme", "Globex & Co", "Initech")

POSITIVE = ["love {b}, great stuff", "{b} is excellent, thank you", "happy with {b} today, wonderful"]
NEGATIVE = ["{b} is terrible, awful support", "hate the new {b} app, broken again", "{b} made me angry, bad"]
NEUTRAL = ["bought {b} on tuesday", "{b} store opens at nine", "does {b} ship to Norway"]

CONFIG = """
[database]
path = "listener.duckdb"

[[brands]]
name = "Acme"
terms = ["acme"]
competitors = ["Globex & Co"]

[[brands]]
name = "Globex & Co"
terms = ["globex"]

[[brands]]
name = "Initech"
terms = ["initech"]
"""


def _mentions(rng: random.Random, brand: str, source: str) -> list[Mention]:
    out = []
    start = AS_OF - timedelta(days=9)
    n = 0
    for hour in range(9 * 24):
        for _ in range(rng.randint(0, 5)):
            n += 1
            at = start + timedelta(hours=hour, seconds=rng.randint(0, 3599))
            if at >= AS_OF:
                continue
            bucket = rng.random()
            pool = POSITIVE if bucket < 0.45 else NEGATIVE if bucket < 0.75 else NEUTRAL
            thread = f"{brand[:2]}-{source}-{hour}-{rng.randint(0, 1)}"
            out.append(Mention(
                source=source, id=f"{brand[:2]}{source}{n}", brand=brand, created_at=at,
                text=rng.choice(pool).format(b=brand), author=f"u{rng.randint(1, 50)}",
                url=f"https://social.example/{source}/{n}", conversation_id=thread,
                metrics={"likes": rng.randint(0, 9), "reposts": 0, "replies": rng.randint(0, 3)},
            ))
    return out


def save_mentions(store: Store, mentions: list[Mention], scores: list[Score | None], source: str, brand: str) -> None:
    store.save_batch(mentions, scores, source=source, brand=brand, checkpoint=None, scorer="vader",
                     scorer_version="test", now=AS_OF)


def build_database(directory: Path) -> dict:
    """A config and database on disk: three brands over 9 days from two sources, threads
    rolled up, a manual label, a hostile thread, a 1 MB post, pull runs and alerts;
    plus what `listener mood --json` says about it."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "listener.toml"
    config.write_text(CONFIG, encoding="utf-8")
    database = directory / "listener.duckdb"
    rng = random.Random(20261110)
    scorer = VaderScorer()
    with Store.open(database) as store:
        for brand in BRANDS:
            for source in ("mastodon", "reddit"):
                batch = sorted(_mentions(rng, brand, source), key=lambda m: m.created_at)
                save_mentions(store, batch, scorer.score([m.text for m in batch]), source, brand)
        hostile = Mention(source="mastodon", id=HOSTILE_ID, brand="Acme", created_at=AS_OF - timedelta(hours=2),
                          text=HOSTILE, author="<b>mallory</b>", url="javascript:alert(3)",
                          conversation_id="hostile-thread", metrics={"likes": 50, "reposts": 9, "replies": 9})
        save_mentions(store, [hostile], [Score(-0.99, 0.0, 0.1, 0.9, "negative")], "mastodon", "Acme")
        big = Mention(source="reddit", id="big-1", brand="Globex & Co", created_at=AS_OF - timedelta(hours=3),
                      text=BIG_TEXT, url="https://social.example/reddit/big", conversation_id="big-thread")
        save_mentions(store, [big], [Score(0.99, 0.9, 0.1, 0.0, "positive")], "reddit", "Globex & Co")
        apply_label(store, LabelRequest(id="Acmastodon1", label="negative", source="mastodon", brand="Acme"), AS_OF)
        rollup_pending(store)
        ok = store.start_run("pull", now=AS_OF - timedelta(minutes=20), source="mastodon", brand="Acme")
        store.finish_run(ok, now=AS_OF - timedelta(minutes=19), status="ok", fetched=5, new=5)
        bad = store.start_run("pull", now=AS_OF - timedelta(minutes=10), source="reddit", brand="Acme")
        store.finish_run(bad, now=AS_OF - timedelta(minutes=10), status="failed",
                         error="<b>RetryableError</b>: 503 from the platform")
        with store.native() as db:
            db.execute(
                "INSERT INTO alerts (brand, metric, direction, hour, detected_at, value, baseline, statistic, "
                "control_limit, mentions, summary) VALUES "
                "('Acme', 'mood', 'dip', $h, $h, -40.0, 10.0, 4.5, 3.0, 12, $s), "
                "('Initech', 'volume', 'spike', $old, $old, 80.0, 20.0, 5.0, 3.0, 80, 'old and open'), "
                "('Initech', 'volume', 'spike', $h, $h, 80.0, 20.0, 5.0, 3.0, 80, 'closed one')",
                {"h": to_db_time(AS_OF - timedelta(hours=3)), "old": to_db_time(AS_OF - timedelta(days=8)),
                 "s": "NSS fell <script>alert(4)</script>"},
            )
            db.execute("UPDATE alerts SET closed_at = $t WHERE summary = 'closed one'", {"t": to_db_time(AS_OF)})
    mood = listener_cli("--config", str(config), "mood", "--json", "--as-of", AS_OF.isoformat())
    assert mood.returncode == 0, mood.stderr
    return {"config": config, "database": database, "mood": json.loads(mood.stdout)}


def listener_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    return subprocess.run([sys.executable, "-m", "listener.cli", *args], capture_output=True, text=True, env=env,
                          timeout=HANG_GUARD, check=False)


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def http_request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
                 host: str | None = None, timeout: float = HANG_GUARD) -> Response:
    """One request over its own connection to 127.0.0.1:``port``, every header under the
    caller's control (``host``: the Host header, this address by default)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{port}" if host is None else host)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Response(response.status, response.reason, response.getheaders(), response.read())
    finally:
        conn.close()


class Server:
    """`listener serve` in a child process on a free port; its stderr is collected."""

    def __init__(self, config: Path, *args: str, token: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
        if token is not None:
            env["LISTENER_SERVE_TOKEN"] = token
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "listener.commands_serve", "--config", str(config), "--port", "0",
             "--as-of", AS_OF.isoformat(), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        first = self.proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", first)
        if not match:
            self.proc.kill()
            raise AssertionError(f"the server did not start: {first}{self.proc.stderr.read()}")
        self.port = int(match.group(1))
        self.log: list[str] = [first]
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line)

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
                host: str | None = None) -> tuple[int, dict, str]:
        response = http_request(self.port, method, path, headers, body, host)
        return response.status, {k.lower(): v for k, v in response.headers}, response.body.decode("utf-8", "replace")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=HANG_GUARD)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
