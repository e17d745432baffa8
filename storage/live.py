"""Read path of the live mood view (``listener serve``): where it reads, and its queries.

Where: while the daemon runs, nothing else may open the database (docs/design.md), and a
process holding it, even read-only and only for one request, stops the daemon from
starting ("in use by another process"). So the view never opens the database itself:

* while a writer (the daemon) holds it, the view reads the daemon's snapshot
  (storage.snapshot), kept open and re-opened when a new one is published (its file
  identity changes); with no snapshot yet, requests wait (DatabaseLockedError);
* otherwise it reads the snapshot when the database has not been written since, and
  else a private copy of the database (and its WAL) it makes itself, beside it, with
  ``cp``: the copy is kept when the database's size and mtime (and its WAL's) are the
  same before and after, so no write landed in between, and re-made only when the
  database changes. Whether a writer holds the file is asked with fcntl(F_GETLK), which
  takes no lock.
Only where the copy cannot be written (a read-only directory) does the view open the
database read-only, for one request, as before. It never opens anything read-write.

The mood windows are not here: the view calls ``Pipeline.mood`` (storage.queries.
label_counts), the code path of ``listener mood``, so the numbers are the same.

Windows are half-open [start, end) in tz-aware UTC, converted to the naive UTC the
database stores. Every query reads a bounded time range, so that rows kept in time order
let DuckDB skip the rest of a 10M-mention table (bench/live_view.py measures them).
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb

from storage.errors import DatabaseLockedError, StorageError
from storage.labels import inbox_path
from storage.queries import LABEL_COUNT_COLUMNS, LABELLED_MENTIONS_OF_BRAND, HourCounts
from storage.snapshot import _alive, snapshot_path
from storage.store import Store, from_db_time, to_db_time, translate_error

# The view's queries are short scans; on the 10M-mention bench a 7-day window took
# 133 ms on DuckDB's one writer thread (Store.open's setting) and 85 ms on two.
READER_THREADS = 2
# Requests read at the same time on one instance (LiveReader), each sorting and grouping
# its own window: under the writer's 128 MB (storage.store.MEMORY_LIMIT), 20 clients at
# once on the 10M-mention bench failed with "out of memory". The view reads a file that
# is not written, so spilling is all this bounds.
READER_MEMORY = "1GB"
# Freshness reads the latest mention per source in this window first (a full scan of
# 10M rows took 35-65 ms); a source quiet for longer falls back to the hourly table.
RECENT_DAYS = 7


@dataclass(frozen=True, slots=True)
class Reading:
    """An open database for one request, and what it is."""

    store: Store
    kind: str  # "snapshot" | "database"
    published_at: datetime | None  # the snapshot's publication time (file mtime)
    # What was opened (the snapshot's or the copy's identity): the same value, the same
    # content, so answers may be cached under it; None for a one-off open of the database.
    version: tuple | None = None


class RequestStore(Store):
    """One request's own DuckDB connection (``duplicate()``: DuckDB's cursor) on the
    database instance the reader keeps open, so requests run their queries at the same
    time instead of one after another behind one Store's lock (20 clients at once waited
    up to 3.4 s for it on the 10M-mention bench). Read-only like the instance it comes
    from; ``native()`` is a read transaction on this connection (one state for a
    function's several queries, as Store.native gives), joined when nested. Used by one
    request's thread only."""

    def __init__(self, opened: Store, connection: duckdb.DuckDBPyConnection) -> None:
        super().__init__(opened.engine, opened.path, opened.version)
        self._connection = connection
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        raise StorageError(f"{self.path}: the live view only reads")
        yield  # pragma: no cover

    def in_transaction(self) -> bool:
        return self._depth > 0

    @contextmanager
    def native(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._depth:
            yield self._connection
            return
        self._depth = 1
        try:
            self._connection.begin()
            try:
                yield self._connection
            finally:
                self._connection.rollback()
        except duckdb.Error as exc:
            raise translate_error(exc, self.path) from exc
        finally:
            self._depth = 0

    def close(self) -> None:
        self._connection.close()


class LiveReader:
    """Opens what the live view reads, read-only; see the module docstring.

    Requests read at the same time, each with its own connection (RequestStore) on the
    one database instance kept open. DuckDB keeps one instance per path in a process,
    so a file replaced on disk (a new snapshot, a new copy) would keep being read from
    the old instance until that is closed: the reader therefore waits until the
    requests reading the old one are done (new requests wait meanwhile), closes it, and
    opens the new one. Choosing what to read (a few stat calls) happens under one lock;
    the queries do not. A request takes one reading at a time: one taken inside another
    would wait for itself when a new snapshot is to be opened."""

    def __init__(self, database: Path, threads: int = READER_THREADS) -> None:
        self.database = Path(database)
        self.snapshot = snapshot_path(self.database)
        self.copy = self.database.with_name(f"{self.database.stem}.view-{os.getpid()}{self.database.suffix}")
        self.threads = threads
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when the last reading of self._store ends
        self._users = 0  # requests reading self._store now
        self._store: Store | None = None
        self._root: Any = None  # self._store's native connection, which requests' connections duplicate
        self._identity: tuple | None = None  # of the file (or files) self._store was opened from
        self.opened = 0  # how many times a snapshot or copy was (re)opened, for tests and logs
        self.copies = 0  # how many copies of the database were made
        _remove_stale_copies(self.database)

    def _tune(self, store: Store) -> Store:
        with store.native() as db:
            db.execute(f"SET threads = {int(self.threads)}")
            db.execute(f"SET memory_limit = '{READER_MEMORY}'")
        return store

    def _wal(self, path: Path) -> Path:
        return path.with_name(path.name + ".wal")

    def _database_identity(self) -> tuple:
        return (_identity(self.database), _identity(self._wal(self.database)))

    def files(self) -> tuple:
        """The identities of every file the reader chooses what to read from (the
        snapshot, the database, its WAL): while none changes, it reads what it read."""
        return (_identity(self.snapshot), *self._database_identity())

    def _database_written_after(self, snapshot: tuple[int, int, int, int]) -> bool:
        """Whether the database (or its WAL) changed after the snapshot was published:
        the daemon mid-cycle, or a writer such as 'listener pull' after the daemon
        stopped, when the snapshot would show old data for good."""
        written = self._database_identity()
        return any(w is not None and w[2] > snapshot[2] for w in written)

    @contextmanager
    def reading(self) -> Iterator[Reading]:
        """What to read for one request, read-only (the module docstring), on the
        request's own connection. Raises storage.errors.DatabaseLockedError when the
        daemon holds the database and has not published a snapshot yet, StorageError
        when there is no database."""
        with self._lock:
            snapshot = _identity(self.snapshot)
            writer = writer_holds(self.database)
            if snapshot is not None and writer and self._copy_newer_than(snapshot):
                # A writer holds the file again, but the copy served last holds later data
                # than the snapshot: serving the snapshot would make counts go back.
                chosen: tuple | None = self._open(self.copy, self._identity, "database", None)
            elif snapshot is not None and (writer or not self._database_written_after(snapshot)):
                chosen = self._open(self.snapshot, ("snapshot", snapshot), "snapshot",
                                    datetime.fromtimestamp(snapshot[2] / 1e9, timezone.utc))
            elif writer:
                raise DatabaseLockedError(f"{self.database} is held by another process (the daemon?) and it has "
                                          f"not published a snapshot ({self.snapshot.name}) yet")
            else:
                copied = self._copied()
                chosen = None if copied is None else self._open(self.copy, copied, "database", None)
            if chosen is None:
                # The copy could not be written beside the database: one request's
                # read-only open, under the lock (as every request once was).
                database = self._tune(Store.open(self.database, read_only=True))
                try:
                    yield Reading(database, "database", None)
                finally:
                    database.close()
                return
            kind, published = chosen
            own, version = RequestStore(self._store, self._root.duplicate()), self._identity
            self._users += 1
        try:
            yield Reading(own, kind, published, version)
        finally:
            own.close()
            with self._lock:
                self._users -= 1
                if not self._users:
                    self._idle.notify_all()

    def _copy_newer_than(self, snapshot: tuple[int, int, int, int]) -> bool:
        """Under the lock: whether the store open now is a copy of the database (or WAL)
        written after ``snapshot`` was published."""
        if self._store is None or self._identity is None or self._identity[0] != "copy":
            return False
        return any(w is not None and w[2] > snapshot[2] for w in self._identity[1])

    def _current(self, identity: tuple) -> bool:
        return self._store is not None and identity == self._identity

    def _open(self, path: Path, identity: tuple, kind: str, published: datetime | None) -> tuple:
        """Under the lock: self._store opened on ``path`` (of ``identity``), once the
        requests still reading an older one are done (or another request opened it)."""
        self._idle.wait_for(lambda: self._current(identity) or not self._users)
        if not self._current(identity):
            self._close_store()
            self._store = self._tune(Store.open(path, read_only=True))
            with self._store.native() as db:
                self._root = db
            self._identity = identity
            self.opened += 1
            self._idle.notify_all()
        return kind, published

    def _copied(self) -> tuple | None:
        """Under the lock: the identity of an up-to-date private copy of the database
        (made now, once no request reads the old one, if the database changed since),
        or None when none can be written. Raises DatabaseLockedError when writes kept
        landing while it was copied."""
        while True:
            source = self._database_identity()
            if source[0] is None:
                raise StorageError(f"no database at {self.database}")
            if self._current(("copy", source)):
                return ("copy", source)
            if not self._users:
                break
            self._idle.wait()
        for _ in range(3):
            self._close_store()
            try:
                done = _copy_files(self.database, self.copy)
            except OSError:
                return None
            after = self._database_identity()
            if done == source == after:
                self.copies += 1
                return ("copy", source)
            source = after  # a write landed meanwhile: copy again
        raise DatabaseLockedError(f"{self.database} kept changing while the view copied it; retrying shortly")

    def _close_store(self) -> None:
        """Under the lock: close self._store once no request reads it (waiting for them)."""
        self._idle.wait_for(lambda: not self._users)
        if self._store is not None:
            self._store.close()
        self._store, self._root, self._identity = None, None, None

    def close(self) -> None:
        with self._lock:
            self._close_store()
            for path in (self.copy, self._wal(self.copy)):
                path.unlink(missing_ok=True)


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    """What changes when a file is replaced or written: device, inode, mtime, size."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _copy_files(database: Path, copy: Path) -> tuple:
    """Copy the database and its WAL (when there is one: a read-only open replays it) to
    ``copy`` with ``cp`` (sparse files stay sparse), each through a partial name renamed
    into place; returns the identities of the originals as they were before copying.
    OSError when the copy cannot be written."""
    wal, copy_wal = database.with_name(database.name + ".wal"), copy.with_name(copy.name + ".wal")

    before = (_identity(database), _identity(wal))
    for original, target in ((database, copy), (wal, copy_wal)):
        if not original.exists():
            target.unlink(missing_ok=True)
            continue
        partial = target.with_name(target.name + ".partial")
        done = subprocess.run(["cp", "--sparse=auto", str(original), str(partial)], capture_output=True, text=True)
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            raise OSError(done.stderr.strip() or f"cp {original} failed")
        os.replace(partial, target)
    return before


def _remove_stale_copies(database: Path) -> None:
    """Copies left by a view that was killed (its process is gone)."""
    prefix = f"{database.stem}.view-"
    for path in database.parent.glob(f"{prefix}*{database.suffix}*"):
        pid = path.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


# struct flock on Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid (pid_t), padded.
_FLOCK = "hhqqi4x"


def writer_holds(path: Path) -> bool:
    """Whether another process holds a write lock on ``path`` (DuckDB's read-write open
    does), asked with fcntl(F_GETLK): a question, not a lock, so it never stands in the
    way of a daemon starting. False when there is no such file. Locks of this process
    are not seen, and closing the descriptor drops this process's own POSIX locks on the
    file: call it only where this process does not have the database open (the view)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, IsADirectoryError):
        return False
    try:
        query = struct.pack(_FLOCK, fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        return struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK
    finally:
        os.close(fd)


# -- queries ------------------------------------------------------------------------------


def hourly_counts(store: Store, brand: str, start: datetime, end: datetime) -> list[HourCounts]:
    """Per-hour counts of ``brand`` in [start, end), hours with mentions only. The same
    rules as ``label_counts`` (manual label over VADER's, duplicates and unscored left
    out of labels), read from mentions so the current hour is there before the hourly
    stage has run."""
    lo, hi = to_db_time(start), to_db_time(end)
    with store.native() as db:
        rows = db.execute(
            f"SELECT date_trunc('hour', m.created_at) AS hour, {LABEL_COUNT_COLUMNS} "
            f"{LABELLED_MENTIONS_OF_BRAND} GROUP BY 1 ORDER BY 1",
            {"brand": brand, "lo": lo, "hi": hi},
        ).fetchall()
    return [HourCounts(*r[1:], hour=from_db_time(r[0])) for r in rows]


def mention_volume(store: Store, brands: Sequence[str], start: datetime, end: datetime) -> dict[str, int]:
    """Mentions (volume: everything stored but the brand's own posts, which are no
    mentions of it) of each of ``brands`` in [start, end); 0 for a brand without any."""
    with store.native() as db:
        rows = db.execute(
            "SELECT brand, count(*) FROM mentions WHERE created_at >= $lo AND created_at < $hi "
            "AND list_contains($brands, brand) AND own IS NOT TRUE GROUP BY brand",
            {"lo": to_db_time(start), "hi": to_db_time(end), "brands": list(brands)},
        ).fetchall()
    found = dict(rows)
    return {brand: found.get(brand, 0) for brand in brands}


_CONVERSATION_COLUMNS = (
    "source", "conversation_id", "first_at", "last_at", "mentions", "scored", "positive", "neutral",
    "negative", "engagement", "score", "label", "url", "title", "voices", "authors", "nss", "nss_se",
)


def _records(names: Sequence[str], rows: list[tuple]) -> list[dict[str, Any]]:
    out = []
    for values in rows:
        out.append({name: from_db_time(v) if isinstance(v, datetime) else v for name, v in zip(names, values)})
    return out


def active_conversations(
    store: Store, brand: str, start: datetime, end: datetime, limit: int = 5
) -> dict[str, list[dict[str, Any]]]:
    """The most negative and the most positive scored threads of ``brand`` active in
    [start, end) (a stored mention in the window, as far as the hourly stage has seen),
    by their NSS over people (storage.rollup), each with its opening mention's key and
    effective label, so the view can offer to correct it. Of threads with the same NSS,
    the one more people spoke in comes first, then the one with more engagement."""
    lo, hi = to_db_time(start), to_db_time(end)
    columns = ", ".join(_CONVERSATION_COLUMNS)
    result: dict[str, list[dict[str, Any]]] = {}
    with store.native() as db:
        for key, order in (("most_negative", "nss ASC"), ("most_positive", "nss DESC")):
            rows = db.execute(
                f"SELECT {columns} FROM conversations "
                "WHERE brand = $brand AND last_at >= $lo AND first_at < $hi AND nss IS NOT NULL "
                f"ORDER BY {order}, voices DESC, engagement DESC, mentions DESC, source, conversation_id "
                "LIMIT $limit",
                {"brand": brand, "lo": lo, "hi": hi, "limit": limit},
            ).fetchall()
            result[key] = _records(_CONVERSATION_COLUMNS, rows)
        threads = result["most_negative"] + result["most_positive"]
        openers = _opening_mentions(db, brand, threads)
    for thread in threads:
        thread["opening"] = openers.get((thread["source"], thread["conversation_id"]))
    return result


def _opening_mentions(db: Any, brand: str, threads: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The first stored mention of each thread (the one the conversation's url and
    title come from): its creation time is the thread's first_at, which lets DuckDB read
    one row group per thread instead of scanning the brand's history."""
    if not threads:
        return {}
    parts, params = [], {"brand": brand}
    for n, thread in enumerate(threads):
        parts.append(
            f"SELECT m.source, m.conversation_id, m.id, m.created_at, m.scorer_label, m.scorer, m.manual_label "
            f"FROM mood_mentions($t{n}, $t{n} + INTERVAL 1 MICROSECOND) m "
            f"WHERE m.brand = $brand AND m.source = $s{n} AND m.conversation_id = $c{n}"
        )
        params.update({f"t{n}": to_db_time(thread["first_at"]), f"s{n}": thread["source"],
                       f"c{n}": thread["conversation_id"]})
    rows = db.execute(" UNION ALL ".join(parts) + " ORDER BY 1, 2, 3", params).fetchall()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for source, conversation, mention_id, created, scored, scorer, manual in rows:
        # Two posts opening a thread in the same microsecond: the first id, deterministically.
        found.setdefault((source, conversation), {
            "source": source, "id": mention_id, "created_at": from_db_time(created),
            "scorer_label": scored, "scorer": scorer, "manual_label": manual, "label": manual or scored,
        })
    return found


_ALERT_COLUMNS = ("alert_id", "brand", "metric", "direction", "hour", "detected_at", "value", "baseline",
                  "statistic", "control_limit", "mentions", "summary", "explanation", "acknowledged_at")


def open_alerts(store: Store, now: datetime, days: int = 7, limit: int = 200) -> list[dict[str, Any]]:
    """Alerts not closed whose hour lies in the ``days`` before ``now``, newest first."""
    with store.native() as db:
        rows = db.execute(
            f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts "
            "WHERE closed_at IS NULL AND hour >= $lo AND hour <= $hi "
            "ORDER BY hour DESC, alert_id DESC LIMIT $limit",
            {"lo": to_db_time(now - timedelta(days=days)), "hi": to_db_time(now), "limit": limit},
        ).fetchall()
    return _records(_ALERT_COLUMNS, rows)


def source_freshness(store: Store, now: datetime) -> list[dict[str, Any]]:
    """Per source: its latest mention, its last successful pull and its last failed one
    (with the error), as of ``now``. A source without a mention in the last RECENT_DAYS
    days gets its latest hour from the hourly table (``latest_mention_exact`` false)."""
    hi, recent = to_db_time(now), to_db_time(now - timedelta(days=RECENT_DAYS))
    with store.native() as db:
        latest = dict(db.execute(
            "SELECT source, max(created_at) FROM mentions WHERE created_at >= $lo AND created_at < $hi GROUP BY source",
            {"lo": recent, "hi": hi},
        ).fetchall())
        older = dict(db.execute(
            "SELECT source, max(hour) FROM hourly_mood WHERE hour < $lo GROUP BY source", {"lo": recent}
        ).fetchall())
        runs = db.execute(
            """
            SELECT source,
                   max(finished_at) FILTER (WHERE status = 'ok'),
                   max(started_at) FILTER (WHERE status = 'failed'),
                   arg_max(error, started_at) FILTER (WHERE status = 'failed'),
                   count(*) FILTER (WHERE status = 'failed' AND started_at >= $day)
            FROM runs WHERE kind = 'pull' AND source IS NOT NULL AND started_at <= $hi
            GROUP BY source
            """,
            {"hi": hi, "day": to_db_time(now - timedelta(hours=24))},
        ).fetchall()
    by_run = {r[0]: r[1:] for r in runs}
    out = []
    for source in sorted(set(latest) | set(older) | set(by_run)):
        last_ok, last_failed, error, failures = by_run.get(source, (None, None, None, 0))
        exact = source in latest
        out.append({
            "source": source,
            "latest_mention": from_db_time(latest[source] if exact else older.get(source)),
            "latest_mention_exact": exact,
            "last_ok_pull": from_db_time(last_ok),
            "last_failed_pull": from_db_time(last_failed),
            "last_error": error,
            "failures_24h": failures,
        })
    return out


def known_brands(store: Store, now: datetime) -> list[str]:
    """Brands with stored mentions, for a view without configured brands: those the
    hourly stage has seen, and any with mentions in the last RECENT_DAYS days (not yet
    rolled up). Avoids a DISTINCT over every mention."""
    with store.native() as db:
        rows = db.execute(
            "SELECT brand FROM hourly_mood UNION "
            "SELECT DISTINCT brand FROM mentions WHERE created_at >= $lo AND created_at < $hi ORDER BY 1",
            {"lo": to_db_time(now - timedelta(days=RECENT_DAYS)), "hi": to_db_time(now)},
        ).fetchall()
    return [r[0] for r in rows]


def queued_label_count(database: Path, limit_bytes: int = 4 << 20) -> int:
    """Labels waiting in the database's inbox for the daemon (storage.labels), counted
    as lines; a huge inbox is counted up to ``limit_bytes``."""
    inbox = inbox_path(Path(database))
    count = 0
    for path in (inbox, inbox.with_name(inbox.name + ".applying")):
        try:
            with open(path, "rb") as handle:
                count += sum(1 for line in handle.read(limit_bytes).splitlines() if line.strip())
        except (FileNotFoundError, IsADirectoryError):  # a directory there is reported by the hourly stage
            continue
    return count
