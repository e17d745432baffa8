"""A consistent read-only copy of the database, for readers while the daemon writes.

DuckDB lets no other process open a file that one process has open read-write, and the
lock is a POSIX advisory lock that this process would lose if it opened and closed the
file by another path (docs/design.md). So the writer publishes a snapshot: under the store's
lock (no write in between) it checkpoints, copies the file from a child process
(``cp``), and renames the copy into place atomically. A reader holding the old snapshot
keeps a consistent view; a new reader sees the new one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from storage.errors import StorageError
from storage.store import Store


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


def publish_snapshot(store: Store) -> Path:
    target = snapshot_path(store.path)
    _remove_stale_partials(target)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    with store.native() as db:  # holds the store's lock: no batch lands mid-copy
        db.execute("CHECKPOINT")
        done = subprocess.run(["cp", str(store.path), str(partial)], capture_output=True, text=True)
        if done.returncode != 0:
            raise StorageError(f"could not copy {store.path} to {partial}: {done.stderr.strip()}")
    os.replace(partial, target)
    return target
