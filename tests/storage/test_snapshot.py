"""storage.snapshot: the copy is whole while the writer goes on writing, the writer waits
only for the checkpoint, a checkpoint landing during the copy is caught, and the
reflink path works on a filesystem that clones (a loop-mounted XFS or btrfs image, made
here when the machine allows it) while the full copy is tested everywhere.

Real DuckDB files, a real writer thread; the ``between`` seam of publish_snapshot
only says when the writer thread is asked to write, and the waits on that thread are
hang guards, never timings."""

import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from analysis.sentiment import VaderScorer
from bench.snapshot import cloning_filesystem
from storage.snapshot import publish_snapshot, snapshot_path
from storage.store import Store
from tests.conftest import T0, mention

HANG_GUARD = 120  # seconds; only a stuck writer (the lock still held) ever waits this long
BIG = 200_000  # rows of one bulk batch: more than a DuckDB row group, so written to the file before commit
SMALL = 300  # mentions of one save_batch
SCORER = VaderScorer()


class Writer:
    """A writer thread, as the daemon's jobs are: every batch commits through the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.bulk_batches = 0
        self.mention_batches = 0
        with store.native() as db:
            db.execute("CREATE TABLE bulk (i BIGINT, batch INTEGER)")

    def bulk(self, checkpoint: bool = False) -> None:
        with self.store.native() as db:
            db.execute(f"INSERT INTO bulk SELECT range, {self.bulk_batches} FROM range({BIG})")
        self.bulk_batches += 1
        if checkpoint:
            with self.store.native() as db:
                db.execute("CHECKPOINT")

    def mentions(self) -> None:
        b = self.mention_batches
        batch = [mention(f"{b}-{i}", f"Acme post {i} of batch {b} is great", T0 + timedelta(minutes=b, seconds=i))
                 for i in range(SMALL)]
        self.store.save_batch(batch, SCORER.score([m.text for m in batch]), source="test",
                              brand="Acme", checkpoint={"batch": b}, scorer=SCORER.name,
                              scorer_version=SCORER.version, now=T0)
        self.mention_batches += 1

    def on_thread(self, work) -> None:
        """Run ``work`` on another thread and wait for it: it can only finish if the
        publisher does not hold the store's lock."""
        errors = []
        thread = threading.Thread(target=lambda: _catch(work, errors), daemon=True)
        thread.start()
        thread.join(HANG_GUARD)
        assert not thread.is_alive(), "the writer was blocked: the publisher held the store's lock"
        assert not errors, errors


def _catch(work, errors: list) -> None:
    try:
        work()
    except Exception as exc:  # reported by the waiting test
        errors.append(exc)


def check(path: Path, bulk_batches: int, mention_batches: int) -> None:
    """The snapshot holds exactly the first batches, each whole, and its counts agree
    with a recount that reads every row."""
    with Store.open(path, read_only=True) as snap, snap.native() as db:
        per_batch = dict(db.execute("SELECT batch, count(*) FROM bulk GROUP BY batch").fetchall())
        assert per_batch == {b: BIG for b in range(bulk_batches)}
        rows, recount, total = db.execute("SELECT count(*), count(i), sum(i) FROM bulk").fetchone()
        assert rows == recount == BIG * bulk_batches
        assert total == (bulk_batches * BIG * (BIG - 1) // 2 if bulk_batches else None)
        mentions = dict(db.execute(
            "SELECT split_part(id, '-', 1)::INTEGER, count(*) FROM mentions GROUP BY 1").fetchall())
        assert mentions == {b: SMALL for b in range(mention_batches)}
        scored = db.execute("SELECT count(*) FROM scores s JOIN mentions m USING (source, id, brand)").fetchone()[0]
        assert scored == db.execute("SELECT count(*) FROM mentions").fetchone()[0] == SMALL * mention_batches
        cursor = db.execute("SELECT count(*) FROM cursors").fetchone()[0]
        assert cursor == (1 if mention_batches else 0)


@pytest.fixture
def writer(tmp_path):
    store = Store.open(tmp_path / "db.duckdb")
    yield Writer(store)
    store.close()


def test_the_writer_writes_while_the_copy_is_taken_and_the_snapshot_holds_the_checkpoint(writer):
    writer.bulk()
    writer.mentions()

    def between(step: str) -> None:
        if step == "checkpointed":  # the copy has not begun: the writer appends to the file
            writer.on_thread(writer.bulk)
            writer.on_thread(writer.mentions)

    first = publish_snapshot(writer.store, method="copy", between=between)
    assert first.method == "copy" and first.attempts == 1
    # How long the writer waited is measured, and it is the checkpoint's part only.
    assert 0 < first.blocked_seconds <= first.seconds
    check(first.path, bulk_batches=1, mention_batches=1)
    # The batches committed during the copy are in the next snapshot, whole.
    second = publish_snapshot(writer.store, method="copy")
    check(second.path, bulk_batches=2, mention_batches=2)
    assert first.size <= second.size
    if first.bytes_written is not None:  # Linux counts each task's writes: the copy wrote the file
        assert first.copy_bytes >= first.size


@pytest.mark.parametrize("spoilt, attempts", [(1, 2), (5, 3)])
def test_a_checkpoint_landing_during_the_copy_is_caught_and_the_copy_taken_again(writer, spoilt, attempts):
    """After the copy, the writer checkpoints new batches: the live file's headers no
    longer match the copy's, so the copy is taken again; when every unlocked copy is
    spoilt, the last is made under the lock."""
    writer.bulk()
    left = [spoilt]

    def between(step: str) -> None:
        if step == "copied" and left[0]:
            left[0] -= 1
            writer.on_thread(lambda: writer.bulk(checkpoint=True))

    published = publish_snapshot(writer.store, method="copy", between=between)
    assert published.attempts == attempts
    check(published.path, bulk_batches=1 + min(spoilt, attempts - 1), mention_batches=0)


def test_snapshots_published_while_a_writer_keeps_writing_are_whole(writer):
    """No interleaving chosen: a thread writes bulk batches (checkpointing often, as
    DuckDB's automatic checkpoint does) and mention batches until told to stop, while
    snapshots are published and checked."""
    with writer.store.native() as db:
        db.execute("SET checkpoint_threshold = '1MB'")
    stop, errors = threading.Event(), []
    committed = threading.Semaphore(0)

    def keep_writing() -> None:
        try:
            while not stop.is_set():
                writer.bulk()
                writer.mentions()
                committed.release()
        except Exception as exc:
            errors.append(exc)
            committed.release()

    thread = threading.Thread(target=keep_writing, daemon=True)
    thread.start()
    try:
        for _ in range(6):
            assert committed.acquire(timeout=HANG_GUARD), "the writer stopped writing"
            assert not errors, errors
            published = publish_snapshot(writer.store, method="copy")
            with Store.open(published.path, read_only=True) as snap, snap.native() as db:
                bulk = db.execute("SELECT count(DISTINCT batch) FROM bulk").fetchone()[0]
                mentions = db.execute("SELECT count(DISTINCT split_part(id, '-', 1)) FROM mentions").fetchone()[0]
            check(published.path, bulk, mentions)
            assert bulk >= 1
    finally:
        stop.set()
        thread.join(HANG_GUARD)
    assert not errors, errors


def test_a_snapshot_copy_left_by_a_dead_writer_is_removed_and_never_reused(tmp_path):
    path = tmp_path / "db.duckdb"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = snapshot_path(path).with_name(f"{snapshot_path(path).name}.{int(dead.stdout)}.partial")
    stale.write_bytes(b"half a copy")
    with Store.open(path) as store:
        target = publish_snapshot(store).path
    assert not stale.exists() and not list(tmp_path.glob("*.partial"))
    with Store.open(target, read_only=True):
        pass


@pytest.fixture
def cloning_dir(tmp_path):
    with cloning_filesystem(tmp_path, 512 * 1_000_000) as (mountpoint, reason):
        if mountpoint is None:
            pytest.skip(reason)
        yield mountpoint


def test_on_a_filesystem_that_clones_the_snapshot_is_a_reflink_and_writes_almost_nothing(cloning_dir):
    store = Store.open(cloning_dir / "db.duckdb")
    try:
        writer = Writer(store)
        writer.bulk()
        writer.mentions()

        def between(step: str) -> None:
            if step == "checkpointed":
                writer.on_thread(writer.bulk)

        published = publish_snapshot(store, between=between)
        assert published.method == "reflink" and published.attempts == 1
        check(published.path, bulk_batches=1, mention_batches=1)
        if published.copy_bytes is not None:  # shared extents: the clone writes metadata only
            assert published.copy_bytes < published.size // 10
        again = publish_snapshot(store)
        assert again.method == "reflink"
        check(again.path, bulk_batches=2, mention_batches=1)
    finally:
        store.close()
