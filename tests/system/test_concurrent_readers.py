"""Analysts query while the daemon writes: the daemon backfills while another process
queries in a loop until it has seen the data move through several published states (at
most a minute), through the same path as
``listener sql`` (the snapshot while the daemon holds the database). No lock error, no
error at all, and every snapshot it sees is whole: no score without its mention, and
when no run is in flight, exactly the mentions the finished runs say they stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.system.daemon import Daemon
from tests.timing import HANG_GUARD, wait_until

LOOP_SECONDS = HANG_GUARD
"""The reader's longest loop, a hang guard: it ends once it has seen STATES states and 100
queries, which on a loaded machine may take minutes (each new state is a snapshot the
daemon publishes while it backfills)."""
STATES = 3
BRANDS = ["Brewly", "Beanhaus", "Kettle & Co", "Teapot", "Mugsy", "Roastery"]

READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from storage.analyst import read_only, reading_path

    database, seconds, enough = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    stats = {"queries": 0, "lock_errors": 0, "errors": [], "broken": [], "states": [], "snapshots": 0}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (len(stats["states"]) >= enough and stats["queries"] > 100):
        try:
            source = reading_path(database)
            with read_only(source.path) as db:
                mentions, scores, orphans, stored, running = db.execute(
                    "SELECT (SELECT count(*) FROM mentions), (SELECT count(*) FROM scores), "
                    "(SELECT count(*) FROM scores s ANTI JOIN mentions m USING (source, id, brand)), "
                    "(SELECT coalesce(sum(new), 0) FROM runs WHERE kind = 'pull'), "
                    "(SELECT count(*) FROM runs WHERE status = 'running')"
                ).fetchone()
                db.execute("SELECT brand, sum(mentions) FROM v_hourly_mood GROUP BY brand").fetchall()
            stats["queries"] += 1
            stats["snapshots"] += source.is_snapshot
            state = [mentions, scores, stored, running]
            if not stats["states"] or stats["states"][-1] != state:
                stats["states"].append(state)
            if orphans or (running == 0 and mentions != stored) or mentions < stored:
                stats["broken"].append(state + [orphans])
        except Exception as exc:
            kind = "lock_errors" if "lock" in str(exc).lower() else None
            if kind:
                stats[kind] += 1
            stats["errors"].append(f"{type(exc).__name__}: {exc}"[:300])
        time.sleep(0.05)
    print(json.dumps(stats))
    """
)


def test_queries_while_the_daemon_writes_see_whole_snapshots(tmp_path):
    brands = "".join(f'\n[[brands]]\nname = "{b}"\nterms = ["{b.lower()}"]\n' for b in BRANDS)
    (tmp_path / "listener.toml").write_text(
        # Snapshots between batches every 2 s (default 15): the reader sees its states sooner.
        f'[database]\npath = "listener.duckdb"\nsnapshot_max_age_seconds = 2\n{brands}\n'
        f'[sources.demo]\nevery_minutes = 60\nseed = 5\n'
        f"history_days = 150\n\n[hourly]\nminute = 5\n",
        encoding="utf-8",
    )
    daemon = Daemon(tmp_path)
    try:
        daemon.wait_for("listening:")
        # Wait for the first snapshot, so the reader starts while the backfill goes on.
        snapshot = tmp_path / "listener.snapshot.duckdb"
        wait_until(lambda: snapshot.exists() or daemon.proc.poll() is not None, "a snapshot published")
        assert daemon.proc.poll() is None, "".join(daemon.log)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
        reader = subprocess.run([sys.executable, "-c", READER, str(tmp_path / "listener.duckdb"), str(LOOP_SECONDS),
                                 str(STATES)],
                                capture_output=True, text=True, timeout=LOOP_SECONDS + HANG_GUARD, env=env,
                                cwd=Path(__file__).resolve().parents[2])
        still_writing = daemon.proc.poll() is None
        pulls_done = sum("pull demo" in line and "status=" in line for line in daemon.log)
    finally:
        code = daemon.stop()
    assert reader.returncode == 0, reader.stderr
    stats = json.loads(reader.stdout)
    assert stats["lock_errors"] == 0 and stats["errors"] == [], stats["errors"][:5]
    assert stats["broken"] == [], stats["broken"][:5]
    assert stats["queries"] > 100 and stats["snapshots"] == stats["queries"]
    # The data moved under the reader: it saw several published states, growing.
    counts = [state[0] for state in stats["states"]]
    assert len(counts) >= STATES and counts == sorted(counts), stats["states"]
    assert still_writing and code == 0
    print(f"{stats['queries']} queries, {len(counts)} snapshots seen, mentions {counts[0]} -> {counts[-1]}, "
          f"{pulls_done} pulls logged")
