"""Import workers (listener.ingest): what several processes store equals one process, and they die with the import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from tests.timing import HANG_GUARD, wait_until

TEXTS = [f"Acme is {word} number {i}" for i, word in enumerate(["great", "awful", "fine", "not bad", "the worst"] * 300)]


def test_import_with_workers_stores_what_one_process_stores(tmp_path):
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    lines = [json.dumps({"id": str(i), "created_at": (start + timedelta(seconds=i)).isoformat(), "text": text})
             for i, text in enumerate(TEXTS)]
    (tmp_path / "mentions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "listener.toml").write_text('[[brands]]\nname = "Acme"\nterms = ["acme"]\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    results = []
    for workers in ("1", "2"):
        db = tmp_path / f"w{workers}.duckdb"
        proc = subprocess.run([sys.executable, "-m", "listener.cli", "--config", str(tmp_path / "listener.toml"),
                               "--db", str(db), "import", str(tmp_path / "mentions.jsonl"), "--source", "file",
                               "--workers", workers], capture_output=True, text=True, env=env, timeout=HANG_GUARD)
        assert proc.returncode == 0, proc.stderr
        results.append(duckdb.connect(str(db), read_only=True).execute(
            "SELECT id, compound, label FROM scores ORDER BY id").fetchall())
    assert len(results[0]) == len(TEXTS) and results[0] == results[1]


# -- workers die with the parent -------------------------------------------------------

def _proc_stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a live process, from /proc; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rpartition(")")[2].split()  # the command name may hold spaces
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), fields[0], int(fields[19])


def _descendants(root: int) -> dict[int, tuple[int, int]]:
    """Every live descendant of ``root``: pid -> (depth, start time)."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None and stat[1] != "Z":
                children.setdefault(stat[0], []).append((int(entry), stat[2]))
    found: dict[int, tuple[int, int]] = {}
    frontier = [(root, 0)]
    while frontier:
        pid, depth = frontier.pop()
        for child, started in children.get(pid, []):
            found[child] = (depth + 1, started)
            frontier.append((child, depth + 1))
    return found


def _alive(pid: int, started: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[1] != "Z" and stat[2] == started  # same process, not a reused pid


def _commands(processes: dict[int, tuple[int, int]]) -> list[str]:
    """The command lines of those ``processes`` still alive, for the failure message."""
    lines = []
    for pid, (_, started) in processes.items():
        try:
            if _alive(pid, started):
                lines.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")[:100].decode())
        except FileNotFoundError:
            pass
    return lines


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the process tree from /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_import_leaves_no_worker_behind(tmp_path, signum):
    # Enough lines that the import is still running when its workers appear (batches of 5,000).
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with open(tmp_path / "mentions.jsonl", "w", encoding="utf-8") as handle:
        for i in range(100_000):
            handle.write(json.dumps({"id": str(i), "created_at": (start + timedelta(seconds=i)).isoformat(),
                                     "text": TEXTS[i % len(TEXTS)]}) + "\n")
    (tmp_path / "listener.toml").write_text('[[brands]]\nname = "Acme"\nterms = ["acme"]\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    parent = subprocess.Popen(
        [sys.executable, "-m", "listener.cli", "--config", str(tmp_path / "listener.toml"), "--db",
         str(tmp_path / "listener.duckdb"), "import", str(tmp_path / "mentions.jsonl"), "--source", "file",
         "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    before: dict[int, tuple[int, int]] = {}
    try:
        # The workers are the fork server's children, the parent's grandchildren.
        def workers_started() -> bool:
            return sum(depth >= 2 for depth, _ in _descendants(parent.pid).values()) >= 2 or parent.poll() is not None
        wait_until(workers_started, "the import's workers starting")
        finished = "the import finished before its workers were seen: make the file larger"
        assert parent.poll() is None, finished
        # Frozen, the import cannot finish before it is killed, however fast the machine.
        os.kill(parent.pid, signal.SIGSTOP)
        assert parent.poll() is None, finished
        before = _descendants(parent.pid)
        assert len(before) >= 4, before  # fork server, resource tracker, two workers
        os.kill(parent.pid, signum)
        os.kill(parent.pid, signal.SIGCONT)
        parent.wait(timeout=HANG_GUARD)
        # A worker notices once it has started (it may still be starting: seconds under load),
        # then the fork server and the resource tracker follow. Without the fix they live
        # on for good; the bound is only a hang guard.
        wait_until(lambda: not any(_alive(pid, started) for pid, (_, started) in before.items()),
                   lambda: f"the import's processes gone after the parent died: {_commands(before)}")
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)  # the session this test started
        parent.wait()
        for pid, (_, started) in before.items():
            if _alive(pid, started):
                os.kill(pid, signal.SIGKILL)  # what the fix failed to stop, so no other test sees it
