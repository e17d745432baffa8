"""The snapshot readers use while the daemon writes (storage/snapshot.py)."""

import subprocess
import sys

from storage.snapshot import publish_snapshot, snapshot_path
from storage.store import Store


def test_a_snapshot_copy_left_by_a_dead_writer_is_removed_and_never_reused(tmp_path):
    path = tmp_path / "db.duckdb"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = snapshot_path(path).with_name(f"{snapshot_path(path).name}.{int(dead.stdout)}.partial")
    stale.write_bytes(b"half a copy")
    with Store.open(path) as store:
        target = publish_snapshot(store)
    assert not stale.exists() and not list(tmp_path.glob("*.partial"))
    with Store.open(target, read_only=True):
        pass
