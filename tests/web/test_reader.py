"""The view's reader (storage.live.LiveReader) never stands in the way of the daemon:
while a request reads, another process can open the database read-write (what
`listener run` does first), whether a snapshot exists or not; and what it reads is the
database's current content, the daemon's snapshot while the daemon holds the file."""

from __future__ import annotations

import subprocess
import threading
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from connectors.base import Mention
from storage.errors import DatabaseLockedError
from storage.live import LiveReader, writer_holds
from storage.snapshot import publish_snapshot
from storage.store import Store
from tests.timing import HANG_GUARD

T = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)

# What the daemon does first: open the database read-write (and hold it).
OPEN_READ_WRITE = "import sys; from storage.store import Store; Store.open(sys.argv[1]).close(); print('opened')"


def _open_elsewhere(database: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", OPEN_READ_WRITE, str(database)], capture_output=True, text=True,
                          timeout=HANG_GUARD, cwd=Path(__file__).resolve().parents[2])


def _add(store: Store, n: int) -> None:
    batch = [Mention(source="test", id=f"m{n}-{i}", brand="Acme", created_at=T, text="love acme",
                     conversation_id=f"c{n}-{i}") for i in range(3)]
    store.save_batch(batch, [None] * 3, source="test", brand="Acme", checkpoint=None, now=T, scorer="vader",
                     scorer_version="test")


def _count(reader: LiveReader) -> tuple[str, int]:
    with reader.reading() as reading, reading.store.native() as db:
        return reading.kind, db.execute("SELECT count(*) FROM mentions").fetchone()[0]


@pytest.mark.parametrize("with_snapshot", [False, True], ids=["no snapshot", "stale snapshot"])
def test_the_daemon_can_start_while_a_request_reads(tmp_path, with_snapshot):
    database = tmp_path / "listener.duckdb"
    with Store.open(database) as store:
        _add(store, 1)
        if with_snapshot:
            publish_snapshot(store)
    if with_snapshot:  # then 'listener pull' wrote: the snapshot is stale, the database is read
        with Store.open(database) as store:
            _add(store, 2)
    reader = LiveReader(database)
    try:
        with reader.reading() as reading:  # a request in progress
            assert reading.kind == "database"
            started = _open_elsewhere(database)
            assert started.returncode == 0 and "opened" in started.stdout, started.stderr[-800:]
        assert _count(reader) == ("database", 6 if with_snapshot else 3)
        # the database changes: the next request sees it (a new copy), the one after reuses it
        with Store.open(database) as store:
            _add(store, 3)
        copies = reader.copies
        assert _count(reader) == ("database", 9 if with_snapshot else 6)
        assert _count(reader) == ("database", 9 if with_snapshot else 6)
        assert reader.copies == copies + 1
    finally:
        reader.close()
    assert not list(tmp_path.glob("*.view-*")), "the reader's copy was left behind"


# The daemon, in another process (POSIX locks are per process): it stores 3 mentions,
# publishes its snapshot, stores 3 more, and holds the database until its stdin closes.
DAEMON = """
import sys
from datetime import datetime, timezone
from connectors.base import Mention
from storage.snapshot import publish_snapshot
from storage.store import Store
T = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
def add(store, n):
    batch = [Mention(source="test", id=f"m{n}-{i}", brand="Acme", created_at=T, text="x", conversation_id=f"c{n}-{i}")
             for i in range(3)]
    store.save_batch(batch, [None] * 3, source="test", brand="Acme", checkpoint=None, now=T, scorer="vader",
                     scorer_version="test")
with Store.open(sys.argv[1]) as store:
    add(store, 1)
    print("holding", flush=True)
    sys.stdin.readline()
    publish_snapshot(store)
    add(store, 2)
    print("published", flush=True)
    sys.stdin.readline()
"""


def test_while_the_daemon_holds_the_database_its_snapshot_is_read(tmp_path):
    database = tmp_path / "listener.duckdb"
    reader = LiveReader(database)
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON, str(database)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert daemon.stdout.readline().strip() == "holding"
        assert writer_holds(database)
        with pytest.raises(DatabaseLockedError, match="not published a snapshot"):
            _count(reader)
        daemon.stdin.write("\n")
        daemon.stdin.flush()
        assert daemon.stdout.readline().strip() == "published"
        assert _count(reader) == ("snapshot", 3)  # the later 3 are not in the snapshot yet
        daemon.stdin.close()
        assert daemon.wait(timeout=HANG_GUARD) == 0
        assert not writer_holds(database)
        assert _count(reader) == ("database", 6)  # the daemon stopped: the newer database
    finally:
        if daemon.poll() is None:
            daemon.kill()
        reader.close()


# Another process opens the database read-write and holds it (publishing nothing) until
# its stdin closes: 'listener run' starting after 'listener pull' wrote.
HOLD = "import sys; from storage.store import Store; s = Store.open(sys.argv[1]); print('holding', flush=True); " \
       "sys.stdin.readline(); s.close()"


def test_a_writer_taking_the_file_does_not_send_the_view_back_to_an_older_snapshot(tmp_path):
    """The view served a copy newer than the snapshot (a pull wrote after it); then a
    writer holds the file: the snapshot is older than what was just shown, so the copy
    is kept rather than counts going back."""
    database = tmp_path / "listener.duckdb"
    with Store.open(database) as store:
        _add(store, 1)
        publish_snapshot(store)
    with Store.open(database) as store:
        _add(store, 2)
    reader = LiveReader(database)
    assert _count(reader) == ("database", 6)  # nobody holds the file: a copy, newer than the snapshot
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(database)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert writer_holds(database)
        assert _count(reader) == ("database", 6)
    finally:
        holder.stdin.close()
        holder.wait(timeout=HANG_GUARD)
        reader.close()


def test_a_killed_view_s_copy_is_removed_by_the_next(tmp_path):
    database = tmp_path / "listener.duckdb"
    Store.open(database).close()
    stale = tmp_path / "listener.view-999999999.duckdb"
    stale.write_bytes(b"x")
    LiveReader(database).close()
    assert not stale.exists()


def test_requests_read_at_the_same_time_and_a_new_snapshot_waits_for_them(tmp_path):
    """Each request reads on its own connection: a second request reads while the first
    is in the middle of its own (once every request waited for one lock). A snapshot
    published meanwhile is opened once the requests reading the old one are done: the
    first request keeps reading one state, the next one reads the new snapshot."""
    database = tmp_path / "listener.duckdb"
    with Store.open(database) as store:
        _add(store, 1)
        publish_snapshot(store)
    reader = LiveReader(database)
    second_read, new_count = threading.Event(), []

    def second_request() -> None:
        assert _count(reader) == ("snapshot", 3)
        second_read.set()

    def third_request() -> None:
        new_count.append(_count(reader))

    try:
        with reader.reading() as first, first.store.native() as db:
            assert db.execute("SELECT count(*) FROM mentions").fetchone()[0] == 3
            other = threading.Thread(target=second_request)
            other.start()
            assert second_read.wait(HANG_GUARD), "the second request waited for the first to finish"
            other.join(HANG_GUARD)
            with Store.open(database) as store:  # the daemon publishes a newer snapshot
                _add(store, 2)
                publish_snapshot(store)
            third = threading.Thread(target=third_request)
            third.start()
            assert db.execute("SELECT count(*) FROM mentions").fetchone()[0] == 3  # still its own state
        third.join(HANG_GUARD)
        assert new_count == [("snapshot", 6)]
        assert reader.opened == 2
    finally:
        reader.close()
