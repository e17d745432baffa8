"""Crash safety (issue 7): the daemon is killed with SIGKILL at 25 points of collection,
the hourly stage, the label inbox and snapshot publishing, and restarted each time with
the same config; at the end the database holds exactly what the fake servers served.

Two sources on 127.0.0.1 (the fake X API through tweepy, the fake Algolia HN API through
requests) and two brands. Kill points are deterministic events, not random timing:

* the fake servers count the requests of each daemon life and kill when the Nth one
  arrives, hold requests in flight (to kill with fetches open, or to leave the hourly
  stage alone on the database), or kill a fixed delay after the Nth answer left;
* an inotify watch on the database folder kills on file events: the database being
  created, a WAL write (a commit in progress), a write to the main file (a checkpoint),
  the snapshot's ``.partial`` copy created or closed, the label inbox taken;
* the daemon's stderr: kill right after a given log line (or a delay after it).

After every kill the files are inspected before the restart (the database and the
snapshot opened read-only, which replays the WAL without writing it; the hourly check
runs on a copy): nothing stored twice, nothing not served, a score row exactly for the
scoreable mentions, every hour not pending rolled up as a full recomputation gives it.
At the end the daemon runs clean until a run finds nothing new, and the final state is
compared with what the fakes served.
"""

from __future__ import annotations

import ctypes
import fnmatch
import logging
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from analysis.sentiment import VaderScorer, covers
from connectors.base import utc_now
from storage.errors import DatabaseLockedError, StorageError
from storage.migrations import LATEST_VERSION, current_version
from storage.rollup import rollup_pending, rollup_rebuild
from storage.store import STORAGE_COMPATIBILITY, Store
from tests.conftest import TWO_BRANDS
from tests.fakes.hn_api import PATH as HN_PATH
from tests.fakes.hn_api import FakeAlgolia, comment, story
from tests.fakes.http import FakeServer, Reply, Request
from tests.fakes.x_api import COUNTS, SEARCH, FakeXApi, id_time, tweet
from tests.system.daemon import wait_for_snapshot
from tests.timing import HANG_GUARD, PEER_TIMEOUT

DB = "listener.duckdb"
WAL = DB + ".wal"
SNAPSHOT = "listener.snapshot.duckdb"
PARTIAL = SNAPSHOT + ".*.partial"  # NAME.snapshot.duckdb.PID.partial
APPLYING = "listener.labels-inbox.jsonl.applying"
BRANDS = {"Brewly": "brewly", "Beanhaus": "beanhaus"}

CONFIG = TWO_BRANDS + """
[sources.x]
base_url = "{x_url}"
every_minutes = 60
history_days = 4
max_pages_per_run = 8
max_posts_per_run = 5000
monthly_post_budget = 0
timeout_seconds = {timeout}

[sources.hackernews]
base_url = "{hn_url}"
every_minutes = 60
history_days = 3
hits_per_page = 100
window_hours = 3
max_requests_per_run = 500
timeout_seconds = {timeout}

[hourly]
# Half an hour away: the cron run never fires during the test, only the start-up one.
minute = {minute}
"""

# -- the corpus the fakes serve ----------------------------------------------------------

MOODS = ["love", "really like", "enjoy", "hate", "can't stand", "am disappointed by", "tried", "noticed",
         "read about"]
NOUNS = ["espresso", "grinder", "cold brew", "latte", "beans", "flat white", "filter roast", "mug"]


def _who(brands: tuple[str, ...], rng: random.Random) -> str:
    return " and ".join(brands) if brands else rng.choice(["the corner cafe", "Kaffeehaus Nord"])


def _pick_brands(rng: random.Random) -> tuple[str, ...]:
    roll = rng.random()
    if roll < 0.4:
        return ("Brewly",)
    if roll < 0.8:
        return ("Beanhaus",)
    if roll < 0.9:
        return ("Brewly", "Beanhaus")
    return ()


@dataclass
class Corpus:
    """Everything the fakes serve, and which (source, id, brand) keys it must end up as."""

    x: FakeXApi
    hn: FakeAlgolia
    expected: set[tuple[str, str, str]] = field(default_factory=set)
    x_posts: int = 0
    hn_hits: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def add_x(self, count: int, start: datetime, end: datetime) -> None:
        step = (end - start) / count
        roots: list[str] = []
        for i in range(count):
            n = self.x_posts = self.x_posts + 1
            at = start + step * i
            brands = _pick_brands(self.rng)
            german = self.rng.random() < 0.1
            who = _who(brands, self.rng)
            if german:
                text, lang = f"Ich mag den {who} Kaffee heute wirklich sehr, Bestellung {n}", "de"
            else:
                text, lang = f"I {self.rng.choice(MOODS)} the {who} {self.rng.choice(NOUNS)} today, order {n}", "en"
            reply_to = roots[-1] if roots and n % 5 == 0 else None
            post = tweet(at, text, author_id=str(1 + n % 4), sequence=n % 4096, lang=lang,
                         conversation_id=reply_to, replied_to=reply_to,
                         likes=self.rng.randrange(5), retweets=self.rng.randrange(3), replies=self.rng.randrange(3))
            self.x.add(post)
            if reply_to is None:
                roots.append(post["id"])
            self.expected |= {("x", post["id"], b) for b in brands}
            if n % 40 == 0 and brands:
                # A copy-paste of the same words 20 minutes later (the link is not a word):
                # both are stored, exactly one carries the mood (near-duplicates).
                copy = tweet(min(at + timedelta(minutes=20), end), text + f" https://t.co/c{n}", author_id="9",
                             sequence=(n + 2048) % 4096, lang=lang)
                self.x.add(copy)
                self.expected |= {("x", copy["id"], b) for b in brands}

    def add_hn(self, count: int, start: datetime, end: datetime) -> None:
        step = (end - start) / count
        stories: list[int] = []
        for i in range(count):
            n = self.hn_hits = self.hn_hits + 1
            object_id = 50_000 + n
            at = int((start + step * i).timestamp())
            if n % 13 == 0:
                # Algolia matches word prefixes; the local re-check wants the word: rejected.
                self.hn.add(story(object_id, at, f"Brewlyfan club meets downtown again, number {n}"))
                continue
            brands = _pick_brands(self.rng)
            who = _who(brands, self.rng)
            if not stories or n % 3 == 0:
                self.hn.add(story(object_id, at, f"Show HN: a {who} {self.rng.choice(NOUNS)} tracker, number {n}",
                                  points=self.rng.randrange(50), comments=self.rng.randrange(9)))
                stories.append(object_id)
            else:
                self.hn.add(comment(object_id, at, f"<p>I {self.rng.choice(MOODS)} the {who} "
                                                   f"{self.rng.choice(NOUNS)} at work, cup {n}</p>",
                                    story_id=stories[-1]))
            self.expected |= {("hackernews", str(object_id), b) for b in brands}


# -- watching the database folder --------------------------------------------------------

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100
_libc = ctypes.CDLL(None, use_errno=True)


class FolderWatch:
    """inotify on one folder: ``callback(name, mask)`` for each file event, on a thread."""

    def __init__(self, folder: Path, callback: Callable[[str, int], None]) -> None:
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
        if _libc.inotify_add_watch(self.fd, str(folder).encode(), mask) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self.callback = callback
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            data = os.read(self.fd, 65536)
            offset = 0
            while offset < len(data):
                _wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16: offset + 16 + length].rstrip(b"\0").decode()
                offset += 16 + length
                self.callback(name, mask)

    def close(self) -> None:
        self.stopping = True
        self.thread.join()
        os.close(self.fd)


# -- kill points -------------------------------------------------------------------------


def _brand_of(source: str, request: Request) -> str | None:
    query = (request.query.get("query") or [""])[-1].casefold()
    return next((b for b, term in BRANDS.items() if term in query), None)


class KillPoint:
    """One daemon life ended by SIGKILL at a chosen moment. Hooks run on the fake servers'
    threads (``on_request``), the folder watch (``on_file``) and the stderr reader
    (``on_line``); ``hold`` says which requests wait in the fake until the kill."""

    stage = ""
    name = ""

    def hold(self, source: str, brand: str | None, request: Request) -> bool:
        return False

    def on_request(self, life: Life, source: str, brand: str | None, request: Request, n: int) -> None:
        pass

    def on_answer(self, life: Life, source: str, brand: str | None, request: Request, n: int) -> None:
        pass

    def on_file(self, life: Life, name: str, mask: int) -> None:
        pass

    def on_line(self, life: Life, line: str) -> None:
        pass

    def during(self, life: Life) -> None:
        """Runs on the test's thread while the daemon lives (e.g. queue labels)."""


class OnFile(KillPoint):
    def __init__(self, stage: str, name: str, file: str, mask: int, *, nth: int = 1, after_line: str | None = None,
                 hold: Callable[[str, str | None], bool] | None = None) -> None:
        self.stage, self.name, self.file, self.mask, self.nth = stage, name, file, mask, nth
        self.after_line = after_line
        self._hold = hold
        self.seen = 0

    def hold(self, source: str, brand: str | None, request: Request) -> bool:
        return self._hold is not None and self._hold(source, brand)

    def on_file(self, life: Life, name: str, mask: int) -> None:
        if not fnmatch.fnmatch(name, self.file) or not mask & self.mask:
            return
        if self.after_line is not None and not life.logged(self.after_line):
            return
        self.seen += 1
        if self.seen == self.nth:
            life.kill(f"{name} event {mask:#x}")


class OnRequest(KillPoint):
    """Kill when the nth request (of ``source``, optionally one brand / path / param) arrives."""

    def __init__(self, stage: str, name: str, source: str, nth: int, *, brand: str | None = None,
                 path: str | None = None, param: str | None = None, hold_other: bool = False) -> None:
        self.stage, self.name, self.source, self.nth = stage, name, source, nth
        self.brand, self.path, self.param, self.hold_other = brand, path, param, hold_other
        self.seen = 0

    def hold(self, source: str, brand: str | None, request: Request) -> bool:
        # The other source waits at its first request, so only this one writes.
        return self.hold_other and source != self.source

    def _matches(self, source: str, brand: str | None, request: Request) -> bool:
        return (source == self.source and (self.brand is None or brand == self.brand)
                and (self.path is None or request.path.endswith(self.path))
                and (self.param is None or self.param in request.query))

    def on_request(self, life: Life, source: str, brand: str | None, request: Request, n: int) -> None:
        if self._matches(source, brand, request):
            self.seen += 1
            if self.seen == self.nth:
                life.kill(f"{source} request {self.nth} ({request.path.rsplit('/', 1)[-1]}) arrived")


class AfterAnswer(OnRequest):
    """Kill ``delay`` seconds after the nth answer left (between fetch and save), or at the
    first WAL write after it (``on_wal``: a commit in progress)."""

    def __init__(self, stage: str, name: str, source: str, nth: int, *, delay: float = 0.0, on_wal: bool = False,
                 brand: str | None = None, hold_other: bool = False, hold_brand: str | None = None) -> None:
        super().__init__(stage, name, source, nth, brand=brand, hold_other=hold_other)
        self.delay, self.on_wal, self.hold_brand = delay, on_wal, hold_brand
        self.wal_at_answer: int | None = None

    def hold(self, source: str, brand: str | None, request: Request) -> bool:
        return super().hold(source, brand, request) or (source == self.source and brand == self.hold_brand)

    def on_request(self, life: Life, source: str, brand: str | None, request: Request, n: int) -> None:
        pass

    def on_answer(self, life: Life, source: str, brand: str | None, request: Request, n: int) -> None:
        if self._matches(source, brand, request):
            self.seen += 1
            if self.seen == self.nth:
                # Events of commits made before the answer may still be queued: only a
                # WAL larger than now is a later commit.
                self.wal_at_answer = _size(life.folder / WAL)
                if not self.on_wal:
                    life.kill_after(self.delay, f"{self.delay * 1000:.0f} ms after {source} answer {self.nth}")

    def on_file(self, life: Life, name: str, mask: int) -> None:
        if (self.on_wal and self.wal_at_answer is not None and name == WAL and mask & IN_MODIFY
                and _size(life.folder / WAL) > self.wal_at_answer):
            life.kill(f"WAL write after {self.source} answer {self.nth}")


class AllHeld(KillPoint):
    """Every pull waits in a fake with its request open; kill when all four do."""

    def __init__(self, stage: str, name: str) -> None:
        self.stage, self.name = stage, name
        self.waiting: set[tuple[str, str | None]] = set()
        self.lock = threading.Lock()

    def hold(self, source: str, brand: str | None, request: Request) -> bool:
        return True

    def on_request(self, life: Life, source: str, brand: str | None, request: Request, n: int) -> None:
        with self.lock:
            self.waiting.add((source, brand))
            if len(self.waiting) == 4:
                life.kill("all four pulls waiting on the fakes")


class AfterLine(KillPoint):
    def __init__(self, stage: str, name: str, text: str, *, delay: float = 0.0,
                 hold: Callable[[str, str | None], bool] | None = None) -> None:
        self.stage, self.name, self.text, self.delay = stage, name, text, delay
        self._hold = hold

    def hold(self, source: str, brand: str | None, request: Request) -> bool:
        return self._hold is not None and self._hold(source, brand)

    def on_line(self, life: Life, line: str) -> None:
        if self.text in line:
            life.kill_after(self.delay, f"{self.delay * 1000:.0f} ms after log line {self.text!r}")


def _rollup_alone(source: str, brand: str | None) -> bool:
    """Rollup lives: everything but the Hacker News pull of Brewly waits in the fakes, so
    when that pull ends the hourly stage takes its worker and is the only writer."""
    return not (source == "hackernews" and brand == "Brewly")


HN_BREWLY_DONE = "pull source=hackernews brand=Brewly status=ok"


class InRollup(KillPoint):
    """Kill inside the start-up hourly stage. Its first WAL write after the HN pull's line
    is its ``runs`` row (start_run's commit); the rollup follows. ``delay``: seconds after
    that write; ``commit``: at the next WAL write at least ``gap`` seconds later (the
    rollup's own commit being written; start_run's writes come within a millisecond)."""

    def __init__(self, stage: str, name: str, *, delay: float | Callable[[], float] = 0.0, commit: bool = False,
                 gap: float = 0.005) -> None:
        self.stage, self.name, self.delay, self.commit, self.gap = stage, name, delay, commit, gap
        self.wal_at_line: int | None = None
        self.wal_at_start: int | None = None
        self.started_at = 0.0

    def hold(self, source: str, brand: str | None, request: Request) -> bool:
        return _rollup_alone(source, brand)

    def on_line(self, life: Life, line: str) -> None:
        if HN_BREWLY_DONE in line:
            # The pull's own last commit came before its line: only growth past this is later.
            self.wal_at_line = _size(life.folder / WAL)
        elif "hourly hours=" in line and not life.fired.is_set():
            # On a loaded machine the folder watch can read the stage's WAL writes late, and
            # the kernel merges unread IN_MODIFY events into one: the point was passed unseen.
            # Kill now (the rollup then counts as committed) rather than wait for a moment
            # that has gone; other lives still land inside it (the "rolled back" check below).
            life.kill("right after the hourly stage (its WAL writes were seen too late)")

    def on_file(self, life: Life, name: str, mask: int) -> None:
        if name != WAL or not mask & IN_MODIFY or self.wal_at_line is None:
            return
        size = _size(life.folder / WAL)
        if self.wal_at_start is None:
            if size <= self.wal_at_line:
                return
            self.wal_at_start, self.started_at = size, time.monotonic()
            if not self.commit:
                delay = self.delay() if callable(self.delay) else self.delay
                life.kill_after(delay, f"{delay * 1000:.0f} ms into the hourly stage")
        elif self.commit and size > self.wal_at_start and time.monotonic() - self.started_at >= self.gap:
            life.kill(f"the hourly stage's commit being written to the WAL "
                      f"({(time.monotonic() - self.started_at) * 1000:.0f} ms in)")


class LabelInbox(KillPoint):
    """Every pull waits in the fakes while ``listener label`` queues labels (the daemon
    holds the database); then Hacker News' Brewly pull goes on, ends, and the hourly stage
    on its worker takes the inbox first: kill when the inbox is renamed for applying."""

    def __init__(self, stage: str, name: str, labels: Callable[[], list[tuple[str, str, str]]]) -> None:
        self.stage, self.name, self.labels = stage, name, labels
        self.queued = threading.Event()

    def hold(self, source: str, brand: str | None, request: Request) -> bool:
        return _rollup_alone(source, brand) or not self.queued.is_set()

    def on_file(self, life: Life, name: str, mask: int) -> None:
        if name == APPLYING and mask & IN_MOVED_TO:
            life.kill("the label inbox renamed for applying")

    def during(self, life: Life) -> None:
        life.wait_for_line("listening:")
        queue_labels(life.folder, self.labels())
        self.queued.set()


class StalePublish(KillPoint):
    """X waits in its fake until the snapshot is over 15 s old; its first batch then
    publishes between batches, with jobs in flight: kill when that copy begins."""

    def __init__(self, stage: str, name: str) -> None:
        self.stage, self.name = stage, name
        self.released = threading.Event()

    def hold(self, source: str, brand: str | None, request: Request) -> bool:
        return source == "x" and not self.released.is_set()

    def on_file(self, life: Life, name: str, mask: int) -> None:
        if fnmatch.fnmatch(name, PARTIAL) and mask & IN_CREATE and self.released.is_set():
            life.kill("the between-batches snapshot copy began")

    def during(self, life: Life) -> None:
        life.wait_for_line("listening:")
        listening = time.monotonic()
        time.sleep(max(0.0, listening + 16 - time.monotonic()))  # MAX_SNAPSHOT_AGE_SECONDS is 15
        self.released.set()


# -- one daemon life ---------------------------------------------------------------------


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def daemon_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    return env | {"X_BEARER_TOKEN": "test-token"}


def cli(folder: Path, *args: str, timeout: float = HANG_GUARD) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "listener.cli", "--config", str(folder / "listener.toml"), *args],
                          capture_output=True, text=True, env=daemon_env(), cwd=folder, timeout=timeout, check=False)


def queue_labels(folder: Path, labels: list[tuple[str, str, str]]) -> None:
    """``listener label`` for each (source, id, label), in parallel, while the daemon runs."""
    procs = [subprocess.Popen([sys.executable, "-m", "listener.cli", "--config", str(folder / "listener.toml"),
                               "label", mention_id, label, "--source", source, "--by", "crash-test"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=daemon_env(), cwd=folder)
             for source, mention_id, label in labels]
    for proc in procs:
        out, err = proc.communicate(timeout=HANG_GUARD)
        assert proc.returncode == 0, err
        assert "queued" in out, out


class Life:
    """One run of ``listener run`` as a subprocess, armed with a kill point (or none)."""

    def __init__(self, folder: Path, point: KillPoint | None) -> None:
        self.folder = folder
        self.point = point
        self.lines: list[str] = []
        self.lines_changed = threading.Condition()
        self.fired = threading.Event()
        self.where = ""
        self.killed_at = 0.0
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "listener.cli", "--config", str(folder / "listener.toml"), "run"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=daemon_env(), cwd=folder,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # hooks ------------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.lines_changed:
                self.lines.append(line)
                self.lines_changed.notify_all()
            if self.point is not None and not self.fired.is_set():
                self.point.on_line(self, line)

    def logged(self, text: str, count: int = 1) -> bool:
        return sum(text in line for line in list(self.lines)) >= count

    def wait_for_line(self, text: str, count: int = 1, timeout: float = HANG_GUARD) -> None:
        deadline = time.monotonic() + timeout
        with self.lines_changed:
            while not self.logged(text, count):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"the daemon did not log {text!r} x{count}:\n{''.join(self.lines)}")
                self.lines_changed.wait(min(left, 0.2))

    def kill(self, where: str) -> None:
        with self._lock:
            if self.fired.is_set() or self.proc.returncode is not None:
                return
            self.proc.send_signal(signal.SIGKILL)
            self.killed_at = time.monotonic()
            self.where = where
            self.fired.set()

    def kill_after(self, delay: float, where: str) -> None:
        if delay <= 0:
            self.kill(where)
            return
        timer = threading.Timer(delay, self.kill, args=(where,))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def tamper(self, source: str) -> Callable[[Request, Callable[[], Reply]], Reply]:
        def tamper(request: Request, answer: Callable[[], Reply]) -> Reply:
            point = self.point
            if point is None or self.fired.is_set():
                return answer()
            brand = _brand_of(source, request)
            with self._lock:
                self.counts[source] += 1
                n = self.counts[source]
            point.on_request(self, source, brand, request, n)
            if self.fired.is_set():
                return Reply(503, {"error": "killed"})
            deadline = time.monotonic() + HANG_GUARD  # a kill point that never comes is reported
            while point.hold(source, brand, request) and not self.fired.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
            if self.fired.is_set():
                return Reply(503, {"error": "killed"})
            reply = answer()
            point.on_answer(self, source, brand, request, n)
            return reply

        return tamper

    def on_file(self, name: str, mask: int) -> None:
        if self.point is not None and not self.fired.is_set():
            self.point.on_file(self, name, mask)

    # ends -------------------------------------------------------------------------------

    def wait_killed(self, timeout: float = HANG_GUARD) -> None:
        assert self.point is not None
        self.point.during(self)
        deadline = time.monotonic() + timeout
        while not self.fired.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill("timeout")
                self.proc.wait()
                self._reader.join(timeout=HANG_GUARD)
                raise AssertionError(f"kill point {self.point.name!r} was never reached (exit code "
                                     f"{self.proc.returncode}); the daemon logged:\n" + "".join(self.lines))
        self.proc.wait(timeout=HANG_GUARD)
        for timer in self._timers:
            timer.cancel()
        self._reader.join(timeout=HANG_GUARD)
        assert self.proc.returncode == -signal.SIGKILL, (self.proc.returncode, "".join(self.lines))

    def stop(self, timeout: float = HANG_GUARD) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=HANG_GUARD)
        return code


# -- inspecting the files ----------------------------------------------------------------


@dataclass
class Facts:
    mentions: set[tuple[str, str, str]]
    pending: int
    running: int
    labels: set[tuple[str, str, str, str]]
    hourly: dict[tuple, tuple]
    conversations: dict[tuple, tuple]


def schema_version(path: Path) -> int:
    with Store.open(path, read_only=True) as store, store.transaction() as conn:
        return current_version(conn)


def read_facts(path: Path, expected: set[tuple[str, str, str]], what: str) -> Facts:
    """Open ``path`` read-only (the WAL is replayed in memory, nothing is written) and
    check what must hold at every instant: each mention once and served by a fake, a
    score row exactly for the scoreable ones, one mood-carrying copy per near-duplicate
    group, no score or label without its mention."""
    with Store.open(path, read_only=True) as store, store.native() as db:
        rows = db.execute("SELECT source, id, brand, duplicate, lang, text_hash FROM mentions").fetchall()
        scores = db.execute("SELECT source, id, brand FROM scores").fetchall()
        pending = db.execute("SELECT count(*) FROM pending_hours").fetchone()[0]
        running = db.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0]
        labels = set(db.execute("SELECT source, id, brand, label FROM labels").fetchall())
        hourly = {r[:3]: r for r in db.execute("SELECT * FROM hourly_mood").fetchall()}
        conversations = {r[:3]: r for r in db.execute("SELECT * FROM conversations").fetchall()}
    keys = [r[:3] for r in rows]
    assert len(keys) == len(set(keys)), f"{what}: {len(keys) - len(set(keys))} mentions stored twice"
    assert set(keys) <= expected, f"{what}: mentions no fake served: {sorted(set(keys) - expected)[:5]}"
    assert len(scores) == len(set(scores)), f"{what}: a mention scored twice"
    assert set(scores) <= set(keys), f"{what}: scores without their mention: {sorted(set(scores) - set(keys))[:5]}"
    should = {r[:3] for r in rows if not r[3] and covers(VaderScorer.languages, r[4])}
    assert set(scores) == should, (f"{what}: {len(should - set(scores))} scoreable mentions without a score, "
                                   f"{len(set(scores) - should)} scores that should not be")
    groups: dict[tuple[str, int], list[bool]] = {}
    for r in rows:
        if r[5] is not None:
            groups.setdefault((r[2], r[5]), []).append(r[3])
    bad = [k for k, flags in groups.items() if flags.count(False) != 1]
    assert not bad, f"{what}: near-duplicate groups without exactly one original: {bad[:3]}"
    assert {label[:3] for label in labels} <= set(keys), f"{what}: a label without its mention"
    return Facts(set(keys), pending, running, labels, hourly, conversations)


def check_hourly(path: Path, work: Path, what: str) -> float:
    """On a copy: every (brand, source, hour) with mentions is rolled up or pending, a
    rolled-up one is what a full recomputation gives, and the pending rollup brings all
    to it. Returns the seconds the pending rollup took (to aim rollup kills)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    copy = work / "copy.duckdb"
    shutil.copyfile(path, copy)
    if (path.parent / (path.name + ".wal")).exists():
        shutil.copyfile(path.parent / (path.name + ".wal"), work / "copy.duckdb.wal")
    with Store.open(copy) as store:
        with store.native() as db:
            pending = set(db.execute("SELECT brand, source, hour FROM pending_hours").fetchall())
            before = {r[:3]: r for r in db.execute("SELECT * FROM hourly_mood").fetchall()}
            with_mentions = set(db.execute(
                "SELECT DISTINCT brand, source, date_trunc('hour', created_at) FROM mentions").fetchall())
        started = time.perf_counter()
        rollup_pending(store)
        seconds = time.perf_counter() - started
        with store.native() as db:
            caught_up = {r[:3]: r for r in db.execute("SELECT * FROM hourly_mood").fetchall()}
        rollup_rebuild(store)
        with store.native() as db:
            rebuilt = {r[:3]: r for r in db.execute("SELECT * FROM hourly_mood").fetchall()}
    assert with_mentions <= set(before) | pending, f"{what}: hours with mentions neither rolled up nor pending"
    stale = [k for k, row in before.items() if k not in pending and rebuilt.get(k) != row]
    assert not stale, f"{what}: hours not pending whose mood is not what their mentions give: {stale[:3]}"
    assert caught_up == rebuilt, f"{what}: the pending rollup does not reach a full recomputation"
    shutil.rmtree(work, ignore_errors=True)
    return seconds


# -- the test ----------------------------------------------------------------------------


def test_sigkill_at_25_points_then_restart_loses_nothing_and_doubles_nothing(tmp_path):
    began = time.monotonic()
    folder = tmp_path / "db"
    folder.mkdir()
    now = utc_now()
    with FakeXApi(utc_now, rate_limit=100_000) as x_api, FakeServer() as hn_server:
        for user_id in "12349":
            x_api.add_user(user_id, f"user{user_id}")
        x_api.page_size = 50  # short pages: more batches, more points between them
        algolia = FakeAlgolia()
        algolia.install(hn_server)
        corpus = Corpus(x_api, algolia)
        corpus.add_x(560, now - timedelta(hours=70), now - timedelta(hours=1))
        corpus.add_hn(420, now - timedelta(hours=70), now - timedelta(hours=1))
        minute = (now.minute + 30) % 60
        (folder / "listener.toml").write_text(CONFIG.format(x_url=x_api.url, hn_url=hn_server.url, minute=minute,
                                                            timeout=PEER_TIMEOUT))

        state: dict[str, Any] = {"rollup_seconds": 0.05, "facts": None}
        life_box: list[Life | None] = [None]
        served: set[tuple[str, str]] = set()

        def route(source: str) -> Callable[[Request, Callable[[], Reply]], Reply]:
            def tamper(request: Request, answer: Callable[[], Reply]) -> Reply:
                life = life_box[0]
                reply = answer() if life is None else life.tamper(source)(request, answer)
                if reply.status == 200 and isinstance(reply.body, dict) and request.path.endswith((SEARCH, HN_PATH)):
                    items = reply.body.get("data") or reply.body.get("hits") or []
                    served.update((source, str(item.get("id") or item.get("objectID"))) for item in items)
                return reply
            return tamper

        x_api.server.tamper = route("x")
        hn_server.tamper = route("hackernews")
        watch = FolderWatch(folder, lambda name, mask: life_box[0] and life_box[0].on_file(name, mask))

        def labels_to_queue() -> list[tuple[str, str, str]]:
            stored = sorted(state["facts"].mentions)
            x_one = next(k for k in stored if k[0] == "x" and k[2] == "Brewly")
            hn_one = next(k for k in stored if k[0] == "hackernews" and k[2] == "Beanhaus")
            state["labels"] = {(x_one[0], x_one[1], "negative"), (hn_one[0], hn_one[1], "positive")}
            return [(x_one[0], x_one[1], "negative"), (hn_one[0], hn_one[1], "positive")]

        def hold_x(source: str, brand: str | None) -> bool:
            return source == "x"

        def more_data() -> None:
            # New posts, as the platforms index them: X's newer than anything it served
            # before (its cursor is the newest id seen), HN's within the minutes every
            # run reads again (reread_minutes).
            at = utc_now()
            # Post ids carry their millisecond: start after the newest post the fake holds
            # (an earlier call's whole span included), whatever time the lives between took.
            newest = max(int(t["id"]) for t in x_api.tweets)
            x_start = max(at - timedelta(seconds=20), id_time(str(newest)) + timedelta(milliseconds=5))
            x_end = at - timedelta(seconds=1)
            assert x_start < x_end, (x_start, x_end)
            before = len(x_api.tweets)
            corpus.add_x(30, x_start, x_end)
            assert min(int(t["id"]) for t in x_api.tweets[before:]) > newest, "new X posts below a served id"
            corpus.add_hn(20, at - timedelta(minutes=5), at - timedelta(seconds=1))

        points: list[tuple[KillPoint, Callable[[], None] | None]] = [
            # start-up
            (OnFile("start-up", "the database file being created (first start)", DB, IN_CREATE), None),
            (OnFile("snapshot", "start-up snapshot: the .partial copy begins", PARTIAL, IN_CREATE), None),
            (OnFile("snapshot", "start-up snapshot: copied, not yet renamed", PARTIAL, IN_CLOSE_WRITE), None),
            (AfterLine("start-up", "right after 'listening:' (jobs starting)", "listening:"), None),
            # collection: Hacker News (X waits at its first request, HN is the only writer)
            (OnRequest("collection", "X: first search request in flight, HN running", "x", 1), None),
            (OnRequest("collection", "HN: request 3 in flight (backfill, 2 windows saved)", "hackernews", 3,
                       hold_other=True), None),
            (AfterAnswer("collection", "HN: answer 6 sent, kill at once (before its batch)", "hackernews", 6,
                         hold_other=True), None),
            (AfterAnswer("collection", "HN: answer 9 sent + 20 ms (mapping, scoring, saving)", "hackernews", 9,
                         delay=0.02, hold_other=True), None),
            (AfterAnswer("collection", "HN: first WAL write after answer 12 (a batch commit)", "hackernews", 12,
                         on_wal=True, hold_other=True), None),
            # collection: X (HN waits)
            (AfterAnswer("collection", "X: page 3 sent + 10 ms (pages saved, no cursor yet)", "x", 3, delay=0.01,
                         hold_other=True), more_data),
            (OnRequest("collection", "X: request 7 in flight", "x", 7, hold_other=True), None),
            (AllHeld("collection", "all four pulls with a request open at once"), None),
            (AfterAnswer("collection", "X: first WAL write after the capped run's last page (Brewly page 8)",
                         "x", 8, brand="Brewly", on_wal=True, hold_other=True, hold_brand="Beanhaus"), None),
            (OnRequest("collection", "X: counts request (pull done, cursor saved, recording volume)", "x", 1,
                       path=COUNTS, hold_other=True), None),
            (OnRequest("collection", "X: first gap-filling request (until_id)", "x", 1, param="until_id",
                       hold_other=True), None),
            (AfterLine("collection", "right after an HN pull's 'status=ok' line (cycle end, others running)",
                       "pull source=hackernews"), more_data),
            (OnFile("snapshot", "first write to the main file (checkpoint at start-up)", DB, IN_MODIFY), None),
            # the hourly stage, alone on the database
            (InRollup("rollup", "hourly stage: at its start_run commit"), more_data),
            # New posts before each: a kill that lands only after the rollup committed (a
            # loaded machine) must not leave the next life an hourly stage with nothing to do.
            (InRollup("rollup", "hourly stage: a third of the rollup in",
                      delay=lambda: state["rollup_seconds"] / 3), more_data),
            (InRollup("rollup", "hourly stage: two thirds of the rollup in",
                      delay=lambda: state["rollup_seconds"] * 2 / 3), more_data),
            (InRollup("rollup", "hourly stage: its commit being written to the WAL", commit=True), more_data),
            (AfterLine("rollup", "right after the 'hourly hours=' line", "hourly hours=", hold=_rollup_alone), None),
            # labels queued while the daemon runs; snapshots between batches and after the cycle
            (LabelInbox("labels", "label inbox renamed for applying (hourly stage start)", labels_to_queue), None),
            (StalePublish("snapshot", "snapshot between batches (>15 s old, jobs in flight)"), more_data),
            (OnFile("snapshot", "quiet snapshot after the cycle: the .partial copy begins", PARTIAL, IN_CREATE,
                    after_line="hourly hours="), None),
        ]
        assert len(points) == 25

        record: list[str] = []
        all_lines: list[str] = []
        rollup_outcomes: list[str] = []
        try:
            for number, (point, before) in enumerate(points, start=1):
                if before is not None:
                    before()
                life = Life(folder, point)
                life_box[0] = life
                life.wait_killed()
                life_box[0] = None
                all_lines += life.lines
                seconds = life.killed_at - life.started
                if life.logged("listening:"):
                    # Each start publishes before 'listening:', whatever an earlier kill left.
                    assert _mtime(folder / SNAPSHOT) >= life.started_wall, f"kill {number}: no start-up snapshot"
                pending_before = state["facts"].pending if state["facts"] else 0
                leftovers = sorted(p.name for p in folder.iterdir() if p.name.endswith((".partial", ".applying")))
                if _size(folder / DB) < 3 * 4096:
                    note = f"database file {_size(folder / DB)} bytes (creation cut short)"
                elif schema_version(folder / DB) < LATEST_VERSION:
                    note = f"schema at version {schema_version(folder / DB)} (migrations cut short)"
                else:
                    facts = read_facts(folder / DB, corpus.expected, f"kill {number}")
                    state["facts"] = facts
                    state["rollup_seconds"] = check_hourly(folder / DB, tmp_path / "work", f"kill {number}")
                    if (folder / SNAPSHOT).exists():
                        snap = read_facts(folder / SNAPSHOT, corpus.expected, f"snapshot after kill {number}")
                        assert snap.mentions <= facts.mentions
                        check_hourly(folder / SNAPSHOT, tmp_path / "work", f"snapshot after kill {number}")
                    note = (f"mentions={len(facts.mentions)} pending={facts.pending} running_runs={facts.running}"
                            f" labels={len(facts.labels)} rollup={state['rollup_seconds'] * 1000:.0f}ms")
                    if isinstance(point, AfterLine) and point.text == "hourly hours=":
                        assert facts.pending == 0, "the hourly stage logged its line before its commit was durable"
                    if isinstance(point, InRollup):
                        # Nothing else wrote: the marks are all there (rolled back) or all gone.
                        landed = "rolled back" if facts.pending >= pending_before else "committed"
                        assert landed == "rolled back" or facts.pending == 0
                        rollup_outcomes.append(landed)
                        note += f"; the rollup was {landed}"
                record.append(f"{number:2d} [{point.stage}] {point.name}: killed {seconds:.2f}s after start at "
                              f"{life.where}; {note}; leftovers={leftovers}")

            # At least one kill landed inside the hourly stage before its commit was durable.
            assert "rolled back" in rollup_outcomes, rollup_outcomes

            # Finish cleanly: lives until a whole cycle finds nothing new.
            for attempt in range(6):
                life = Life(folder, None)
                life_box[0] = life
                life.wait_for_line("pull source=", count=4)
                life.wait_for_line("hourly hours=")
                # The quiet publish copies the file after the last job's line was logged.
                wait_for_snapshot(folder, [line for line in life.lines
                                           if "pull source=" in line or "hourly hours=" in line])
                assert life.stop() == 0, "".join(life.lines)
                life_box[0] = None
                all_lines += life.lines
                pulls = [line for line in life.lines if "pull source=" in line]
                record.append(f"clean life {attempt + 1}: " + "; ".join(
                    line.split("INFO ")[-1].split(" fetched")[0] + " new=" + line.split("new=")[1].split()[0]
                    for line in pulls))
                if all("status=ok" in line and " new=0 " in line for line in pulls):
                    break
            else:
                raise AssertionError("the daemon never caught up:\n" + "\n".join(record))
        finally:
            life = life_box[0]
            if life is not None and life.proc.poll() is None:
                life.proc.kill()
            watch.close()
            print("\n" + "\n".join(record))

    problems = [line for line in all_lines if " ERROR " in line or "Traceback" in line or "could not" in line]
    assert not problems, "".join(problems)

    scored = cli(folder, "score")
    assert scored.returncode == 0, scored.stderr
    # The database opens read-write and holds exactly what the fakes served for each brand.
    with Store.open(folder / DB) as store, store.native() as db:
        db.execute("CHECKPOINT")
        count, distinct = db.execute(
            "SELECT count(*), count(DISTINCT (source, id, brand)) FROM mentions").fetchone()
    final = read_facts(folder / DB, corpus.expected, "final database")
    assert {k[:2] for k in corpus.expected} <= served  # the expectation is what the fakes did send
    missing = sorted(corpus.expected - final.mentions)
    assert not missing, f"{len(missing)} served mentions were never stored, e.g. {missing[:8]}"
    assert count == distinct == len(corpus.expected)
    assert final.pending == 0
    assert {(s, i, label) for s, i, _b, label in final.labels} == state["labels"]
    check_hourly(folder / DB, tmp_path / "work", "final database")
    with Store.open(folder / DB) as store:
        before_hourly, before_conversations = final.hourly, final.conversations
        rollup_rebuild(store)
    rebuilt = read_facts(folder / DB, corpus.expected, "after a rebuild")
    assert rebuilt.hourly == before_hourly
    assert rebuilt.conversations == before_conversations
    # The snapshot the last clean life published is whole and current.
    snapshot = read_facts(folder / SNAPSHOT, corpus.expected, "final snapshot")
    assert snapshot.mentions == final.mentions
    assert snapshot.pending == 0 and snapshot.hourly == final.hourly
    assert not [p.name for p in folder.iterdir() if p.name.endswith((".partial", ".applying", ".jsonl"))]
    print(f"{len(points)} kills, {len(final.mentions)} mentions, {time.monotonic() - began:.0f} s")


# -- a kill while the database file is being created ------------------------------------


def _new_database_bytes(folder: Path) -> bytes:
    """The first bytes of a fresh DuckDB file: its three 4 KiB headers."""
    path = folder / "fresh.duckdb"
    duckdb.connect(str(path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}).close()
    return path.read_bytes()[:3 * 4096]


@pytest.mark.parametrize("size", [0, 4096, 8192])
def test_a_database_file_cut_short_while_being_created_is_created_again(tmp_path, caplog, size):
    # A kill during the first start leaves 0, 4096 or 8192 bytes (DuckDB writes its
    # headers one block at a time); DuckDB refuses such a file forever after.
    path = tmp_path / "listener.duckdb"
    path.write_bytes(_new_database_bytes(tmp_path)[:size])
    with caplog.at_level(logging.WARNING), Store.open(path) as store, store.native() as db:
        assert db.execute("SELECT count(*) FROM mentions").fetchone()[0] == 0
    assert "removed an unfinished database file" in caplog.text
    with Store.open(path, read_only=True):
        pass


def test_a_short_file_that_is_no_database_or_that_another_process_holds_is_left_alone(tmp_path):
    notes = tmp_path / "notes.duckdb"
    notes.write_text("my notes, not a database\n")
    with pytest.raises(StorageError, match="not a valid DuckDB database file"):
        Store.open(notes)
    assert notes.read_text() == "my notes, not a database\n"

    # Another process creating the database right now holds DuckDB's lock on it.
    held = tmp_path / "held.duckdb"
    held.write_bytes(_new_database_bytes(tmp_path)[:4096])
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import fcntl, sys, time; f = open(sys.argv[1], 'rb+'); fcntl.lockf(f, fcntl.LOCK_EX); "
                                f"print('locked', flush=True); time.sleep({HANG_GUARD})"), str(held)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(DatabaseLockedError):
            Store.open(held)
        assert held.stat().st_size == 4096
    finally:
        holder.kill()
        holder.wait()
