"""A consistent read-only copy of the database, for readers while the daemon writes.

DuckDB lets no other process open a file that one process has open read-write, and the
lock is a POSIX advisory lock that this process would lose if it opened and closed the
file by another path (docs/design.md). So the writer publishes a snapshot, a copy made
by a child process (``cp``) and renamed into place atomically. A reader holding the old
snapshot keeps a consistent view; a new reader sees the new one.

What the writer waits for: only the CHECKPOINT. Under the store's lock (no batch in
between) the publisher checkpoints, notes the file's size, and lets go; the copy is taken
while the writer goes on. Why that copy is whole:

* between two checkpoints DuckDB writes committed data to its WAL, and new row groups
  of large appends ("optimistic writes") only into blocks that the last checkpoint does
  not use (free-list blocks, or past the end of the file). The blocks the checkpoint
  refers to, and its header, stay as they are until the next checkpoint writes a new
  header: that is what makes the file plus WAL recoverable after a crash at any moment.
  So a byte copy of the file, however long it takes, holds the last checkpoint whole,
  as long as no checkpoint wrote a header meanwhile;
* the copy is cut back to the size the file had at the checkpoint (what was appended
  since is unreferenced), and the two database headers (bytes 4,096-12,287, written in
  turn by each checkpoint) of the live file are read again after the copy, by a child
  process as well: if they differ from the copy's, a checkpoint (DuckDB's automatic one
  when the WAL passes ``checkpoint_threshold``, or a close) landed during the copy, the
  copy is thrown away and taken again; after ``UNLOCKED_TRIES`` such misses the copy is
  made under the lock, as it always was before;
* the snapshot is the last checkpoint, without the WAL: it holds every batch committed
  before the publish and none after (tests/storage/test_snapshot.py publishes while
  another thread writes, plain batches and optimistic appends, and checks every snapshot
  for whole batches and recounts).

How the copy is made, picked by measurement (bench/snapshot.py, median of 3 publishes
each after one new hour of 2,000 mentions; 2026-12-07, 2 shared cores, load 9-18):

=====================  ================  ===============  ==============  =============
database               before: publish,  now, ext4 copy:  now, XFS        bytes written
                       all of it under   publish /        reflink:        (copy; reflink)
                       the lock          writer blocked   publish /
                                                          writer blocked
=====================  ================  ===============  ==============  =============
1M mentions, 108 MB    318 ms            374 / 78 ms      95 / 46 ms      110; 1.6 MB
10M mentions, 994 MB   3,550 ms          4,685 / 223 ms   60 / 50 ms      995; 1.5 MB
=====================  ================  ===============  ==============  =============

So: ``cp --reflink=always`` (FICLONE) where the filesystem shares extents (XFS, btrfs):
flat from 1M to 10M, almost nothing written, the writer blocked for the checkpoint only;
elsewhere (ext4) a full copy (``cp``, which lets the kernel copy), whose time and bytes
grow with the file but which the writer no longer waits for (blocked 16x less at 10M).
What the writer still waits for is the checkpoint of what was written since the last
publish (20-60 ms on a quieter machine, at 1M as at 10M). Whether a directory's
filesystem can reflink is learnt by the first publish and remembered for the process.
Not done: exporting only what changed (Parquet per cycle) would make the readers' side
a union of files with its own consistency rules; copying the WAL too, instead of
checkpointing, would spare the writer the checkpoint but make every reader replay it.

``publish_snapshot`` returns a ``Publication``: how long the writer was blocked, the
whole publish, the bytes written (checkpoint and copy, from Linux's per-task I/O
counts), the method and the attempts; the same is logged at DEBUG.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storage.errors import StorageError
from storage.store import Store

log = logging.getLogger("listener.snapshot")

# DuckDB's main header (4 KiB) and its two database headers, one written by each
# checkpoint in turn (the other holding the previous one): the bytes to compare.
HEADERS_END = 3 * 4096
# Unlocked copies that a concurrent checkpoint may spoil before one is made under the lock.
UNLOCKED_TRIES = 2
METHODS = ("reflink", "copy")

# Directories whose filesystem did or did not clone (cp --reflink=always), learnt once.
_reflink_works: dict[Path, bool] = {}
# One publish at a time per process: they share the partial file's name, and two at
# once would only copy the same thing twice.
_publishing = threading.Lock()


@dataclass(frozen=True, slots=True)
class Publication:
    """What one publish cost. ``blocked_seconds``: the writer's lock held (checkpoint,
    and the copy too when it had to be made under the lock); ``bytes_written``: by the
    checkpoint and the copy, None where the kernel does not count per-task I/O."""

    path: Path
    method: str
    seconds: float
    blocked_seconds: float
    checkpoint_bytes: int | None
    copy_bytes: int | None
    attempts: int
    size: int

    @property
    def bytes_written(self) -> int | None:
        if self.checkpoint_bytes is None or self.copy_bytes is None:
            return None
        return self.checkpoint_bytes + self.copy_bytes


def snapshot_path(database: Path) -> Path:
    """Where the snapshot of ``database`` lives: beside it, ``NAME.snapshot.duckdb``."""
    return database.with_name(database.stem + ".snapshot" + database.suffix)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_partials(target: Path) -> None:
    """Copies left by a killed writer. Each writer copies to a name of its own, so a
    ``cp`` that outlived its killed daemon never writes into the next daemon's copy."""
    for partial in target.parent.glob(target.name + ".*.partial"):
        pid = partial.name[len(target.name) + 1:-len(".partial")]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            partial.unlink(missing_ok=True)


def _written_bytes() -> int | None:
    """This process's bytes written to storage so far (dirtied pages, counted when written)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _run(command: list[str]) -> tuple[int, bytes, bytes, int]:
    """(exit code, stdout, stderr, bytes the child wrote) of a child process. Its own
    resource usage (wait4), so other children of this process never count."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    proc.stdout.close(), proc.stderr.close()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out, err, usage.ru_oublock * 512


def _copy(source: Path, partial: Path, method: str | None) -> tuple[str, int]:
    """Copy ``source`` to ``partial`` in a child process; (method used, bytes it wrote)."""
    directory = source.parent.resolve()
    if method == "reflink" or (method is None and _reflink_works.get(directory, True)):
        code, _, err, written = _run(["cp", "--reflink=always", str(source), str(partial)])
        if code == 0:
            _reflink_works[directory] = True
            return "reflink", written
        if method == "reflink":
            raise StorageError(f"could not clone {source} to {partial} (reflink): {err.decode().strip()}")
        _reflink_works[directory] = False
        log.debug("no reflink in %s (%s): full copies", directory, err.decode().strip())
    # Where cloning failed, cp's default (auto) lets the kernel copy (copy_file_range);
    # --reflink=never only forces a real copy where the filesystem could clone.
    never = method == "copy" and _reflink_works.get(directory, True)
    code, _, err, written = _run(["cp", "--reflink=never" if never else "--reflink=auto", str(source), str(partial)])
    if code != 0:
        raise StorageError(f"could not copy {source} to {partial}: {err.decode().strip()}")
    return "copy", written


def _live_headers(database: Path) -> bytes:
    # Read by a child: opening and closing the file here would drop DuckDB's lock.
    code, out, err, _ = _run(["head", "-c", str(HEADERS_END), str(database)])
    if code != 0:
        raise StorageError(f"could not read the headers of {database}: {err.decode().strip()}")
    return out


def _cut(partial: Path, size: int) -> bytes:
    """Cut the copy back to the checkpoint's size; its headers."""
    with partial.open("r+b") as handle:
        handle.truncate(size)
        return handle.read(HEADERS_END)


def publish_snapshot(store: Store, *, method: str | None = None,
                     between: Callable[[str], None] | None = None) -> Publication:
    """Publish a snapshot of ``store``'s last committed state (see the module docstring).

    ``method``: "reflink" or "copy" to force one (None: reflink where the filesystem
    can). ``between``: called with "checkpointed" (the lock let go, the copy not begun)
    and "copied" (the copy made, not yet checked): lets a test write in between."""
    if method not in (None, *METHODS):
        raise ValueError(f"method must be one of {METHODS} or None, not {method!r}")
    target = snapshot_path(store.path)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    with _publishing:
        started = time.perf_counter()
        _remove_stale_partials(target)
        blocked, checkpoint_bytes, copy_bytes, used = 0.0, 0, 0, "copy"
        counted = _written_bytes() is not None
        try:
            for attempt in range(1, UNLOCKED_TRIES + 2):
                locked = attempt > UNLOCKED_TRIES
                with store.native() as db:  # the store's lock: no batch lands during the checkpoint
                    held = time.perf_counter()
                    before = _written_bytes()
                    db.execute("CHECKPOINT")
                    after = _written_bytes()
                    size = store.path.stat().st_size  # stat, not open: the lock stays
                    if locked:  # a checkpoint spoilt every unlocked copy: copy as the writer waits
                        used, written = _copy(store.path, partial, method)
                        copy_bytes += written
                        _cut(partial, size)
                    blocked += time.perf_counter() - held
                if before is not None and after is not None:
                    checkpoint_bytes += after - before
                if locked:
                    break
                if between:
                    between("checkpointed")
                used, written = _copy(store.path, partial, method)
                copy_bytes += written
                if between:
                    between("copied")
                if _cut(partial, size) == _live_headers(store.path):
                    break
                log.debug("a checkpoint landed during the snapshot copy (attempt %d): copying again", attempt)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    done = Publication(
        path=target, method=used, seconds=time.perf_counter() - started, blocked_seconds=blocked,
        checkpoint_bytes=checkpoint_bytes if counted else None, copy_bytes=copy_bytes if counted else None,
        attempts=attempt, size=size)
    log.debug("published %s by %s in %.1f ms (writer blocked %.1f ms, %s bytes written, %d attempt(s))",
              target.name, done.method, done.seconds * 1000, done.blocked_seconds * 1000, done.bytes_written,
              done.attempts)
    return done
