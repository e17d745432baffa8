"""The hourly stage after a large backfill, under the writer's memory limit (issue 11, item 2).

    nice python bench/backfill_memory.py [--mentions 1000000] [--days 355] [--brands 5] [--keep] [--json]

Builds a database of ``--mentions`` mentions spread over ``--days`` (bench/bigdb.py's
generator, in SQL: a backfill through the pipeline would take hours of VADER) and marks
every hour that has mentions pending, as an import leaves them. Then runs
``listener -v score`` on it in a child process, which opens the database as every
``listener`` command does, under storage.store.MEMORY_LIMIT (128 MB), and prints the
child's peak RSS, its duration, its progress lines, and whether it completed: exit 0, no
hour left pending, and hourly rows that hold every mention.

Before the hourly stage worked in chunks, this failed every time with DuckDB's "Out of
Memory Error" (reported as "Current transaction is aborted").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# A child's peak RSS (ru_maxrss) includes the image it was forked from, before exec: so
# the database is built in a child of its own, and this process imports neither DuckDB
# nor the project until the score child has ended, staying far below what is measured.


def build(path: Path, mentions: int, brands: int, days: int, seed: int) -> int:
    """A database whose every hour with mentions is pending; returns the pending marks."""
    from bench.bigdb import BUILD_MEMORY, BUILD_THREADS, insert_mentions
    from storage.store import Store

    with Store.open(path) as store:
        with store.native() as db:
            db.execute(f"SET memory_limit = '{BUILD_MEMORY}'")
            db.execute(f"SET threads = {BUILD_THREADS}")
            insert_mentions(db, mentions, brands, days, seed)
            db.execute("INSERT INTO pending_hours SELECT DISTINCT brand, source, date_trunc('hour', created_at) "
                       "FROM mentions")
        with store.native() as db:
            db.execute("CHECKPOINT")
            return db.execute("SELECT count(*) FROM pending_hours").fetchone()[0]


def score(path: Path, log) -> tuple[int, float, int, list[str]]:
    """Run ``listener -v score`` on ``path`` in a child; (exit code, seconds, peak RSS
    in KiB, its stderr lines). The child's progress is echoed as it comes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "listener.cli", "-v", "--db", str(path), "score"],
        cwd=path.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = []
    for line in child.stderr:
        lines.append(line.rstrip("\n"))
        if "Hourly stage:" in line or "Error" in line:
            log(f"  [{time.perf_counter() - started:6.1f} s] {line.rstrip()}")
    stdout = child.stdout.read()
    # wait4: this child's own resource usage, its peak resident set among it.
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if stdout.strip():
        log(f"  stdout: {stdout.strip()}")
    return child.returncode, seconds, usage.ru_maxrss, lines


def check(path: Path) -> dict[str, int]:
    from storage.store import Store

    with Store.open(path, create=False) as store, store.native() as db:
        pending = db.execute("SELECT count(*) FROM pending_hours").fetchone()[0]
        mentions = db.execute("SELECT count(*) FROM mentions").fetchone()[0]
        rolled, hours = db.execute("SELECT coalesce(sum(mentions), 0), count(*) FROM hourly_mood").fetchone()
        conversations = db.execute("SELECT count(*) FROM conversations").fetchone()[0]
    return {"pending": pending, "mentions": mentions, "hourly_mentions": int(rolled), "hourly_rows": hours,
            "conversations": conversations}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--brands", type=int, default=5)
    parser.add_argument("--days", type=int, default=355, help="Days the backfill spans (issue 11: 8,527 hours).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="Keep the database (its path is printed).")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
    parser.add_argument("--build-only", metavar="PATH", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:  # the child that builds the database
        print(build(args.build_only, args.mentions, args.brands, args.days, args.seed))
        return 0

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    folder = Path(tempfile.mkdtemp(prefix="backfill-memory-"))
    path = folder / "listener.duckdb"
    try:
        log(f"building {args.mentions:,} mentions over {args.days} days ...")
        started = time.perf_counter()
        marks = int(subprocess.run(
            [sys.executable, __file__, "--build-only", str(path), "--mentions", str(args.mentions),
             "--brands", str(args.brands), "--days", str(args.days), "--seed", str(args.seed)],
            check=True, stdout=subprocess.PIPE, text=True).stdout)
        built = time.perf_counter() - started
        log(f"built in {built:.1f} s: {marks:,} pending (brand, source, hour) marks, "
            f"{path.stat().st_size / 1e6:,.0f} MB; running 'listener -v score' ...")
        code, seconds, peak_kib, lines = score(path, log)
        found = check(path)
        from storage.store import MEMORY_LIMIT
        completed = (code == 0 and found["pending"] == 0 and found["hourly_mentions"] == found["mentions"])
        result = {
            "mentions": args.mentions, "days": args.days, "pending_marks": marks, "memory_limit": MEMORY_LIMIT,
            "exit_code": code, "seconds": round(seconds, 1), "peak_rss_mb": round(peak_kib / 1024, 1),
            "progress_lines": sum("Hourly stage:" in line for line in lines), "completed": completed,
            "build_seconds": round(built, 1), **found,
        }
        if code != 0:
            log("\n".join(lines[-20:]))
        print(json.dumps(result, indent=2) if args.json else
              f"listener score after a backfill of {args.mentions:,} mentions ({marks:,} pending hours): "
              f"{'completed' if completed else 'FAILED'} in {seconds:.1f} s, exit {code}, "
              f"peak RSS {peak_kib / 1024:.0f} MB (DuckDB memory_limit {MEMORY_LIMIT}), "
              f"{result['progress_lines']} progress lines; pending left {found['pending']}, "
              f"hourly rows hold {found['hourly_mentions']:,} of {found['mentions']:,} mentions")
        return 0 if completed else 1
    finally:
        if args.keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
