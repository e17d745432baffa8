"""``listener demo``, how much CPU, and whether a faster build still makes the same demo.

    python bench/demo_speed.py run [--rounds 3] [--listener PATH] [--against PATH] [--keep DIR]
    python bench/demo_speed.py compare DIR_A DIR_B

``run`` runs the real command (``listener demo --dir D --as-of AS_OF --json``) in a
subprocess ``--rounds`` times and reports each run's CPU (user + sys of the process and
its children, from ``wait4``), wall time and peak RSS, and their medians. ``--listener``
picks the build (another worktree's ``.venv/bin/listener`` measures that code on this
machine); ``--against`` adds builds that take turns with it in each round, so a shared
machine's load falls on each alike. ``--keep DIR`` leaves the last demo directory of
``--listener``'s build there (with ``summary.json``, the command's stdout) for ``compare``.

``compare`` checks two demo directories made at the same ``--as-of`` row for row: every
table of both databases (``EXCEPT ALL`` both ways, so order does not matter and repeated
rows count; the migrations' wall-clock ``applied_at`` aside), every file beside them byte
for byte (the report, the exports) after replacing each directory's own path, and the
JSON summaries without ``seconds`` (the one figure that differs from run to run). Exit
code 0 when identical, 1 otherwise.

Measured (Dec 2026, 2 shared cores, load 6-9; 3 rounds in turns): the build before this
bench 13.9 CPU-s median, after 11.3 (-19 %), peak RSS 382 -> 451 MB; ``compare``
against a demo made by the earlier build: identical.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-20T15:30:00+00:00"
DATABASE = "listener.duckdb"
SUMMARY = "summary.json"
# Columns stamped with the wall clock (when a migration ran), not with the demo's --as-of.
WALL_CLOCK = {"schema_version": "applied_at"}


def run_once(listener: str, directory: Path) -> tuple[float, float, float, str]:
    """One ``listener demo``: (CPU seconds user+sys, wall seconds, peak RSS in MB, stdout)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([listener, "demo", "--dir", str(directory), "--as-of", AS_OF, "--json"],
                                stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        stdout = out.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"listener demo exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, stdout


def bench(listeners: list[str], rounds: int, keep: Path | None) -> list[dict[str, object]]:
    """``rounds`` demos per build, the builds taking turns in each round, so that the
    load of a shared machine falls on all of them alike."""
    runs: dict[str, dict[str, list[float]]] = {
        listener: {"cpu_seconds": [], "wall_seconds": [], "peak_rss_mb": []} for listener in listeners}
    for _ in range(rounds):
        for listener in listeners:
            with tempfile.TemporaryDirectory(prefix="demo-speed-") as tmp:
                directory = Path(tmp) / "demo"
                seconds, elapsed, peak, stdout = run_once(listener, directory)
                runs[listener]["cpu_seconds"].append(round(seconds, 2))
                runs[listener]["wall_seconds"].append(round(elapsed, 2))
                runs[listener]["peak_rss_mb"].append(round(peak))
                if keep is not None and listener == listeners[0]:
                    shutil.rmtree(keep, ignore_errors=True)
                    shutil.copytree(directory, keep)
                    (keep / SUMMARY).write_text(stdout.replace(str(directory), str(keep)), encoding="utf-8")
    return [{"listener": listener, **figures, "cpu_median": statistics.median(figures["cpu_seconds"]),
             "wall_median": statistics.median(figures["wall_seconds"])} for listener, figures in runs.items()]


def _tables(db: duckdb.DuckDBPyConnection, alias: str) -> list[str]:
    return [name for (name,) in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_type = 'BASE TABLE' "
        "ORDER BY 1", [alias]).fetchall()]


def compare_databases(a: Path, b: Path) -> list[str]:
    """Differences between two databases, table by table ([] when identical)."""
    db = duckdb.connect()
    db.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    db.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    problems = []
    tables_a, tables_b = _tables(db, "a"), _tables(db, "b")
    if tables_a != tables_b:
        problems.append(f"tables differ: {sorted(set(tables_a) ^ set(tables_b))}")
    for table in sorted(set(tables_a) & set(tables_b)):
        rows = f"SELECT * EXCLUDE ({WALL_CLOCK[table]})" if table in WALL_CLOCK else "SELECT *"
        count_a = db.execute(f'SELECT count(*) FROM a."{table}"').fetchone()[0]
        count_b = db.execute(f'SELECT count(*) FROM b."{table}"').fetchone()[0]
        only_a = db.execute(f'SELECT count(*) FROM ({rows} FROM a."{table}" EXCEPT ALL {rows} FROM b."{table}")').fetchone()[0]
        only_b = db.execute(f'SELECT count(*) FROM ({rows} FROM b."{table}" EXCEPT ALL {rows} FROM a."{table}")').fetchone()[0]
        status = "same" if count_a == count_b and only_a == only_b == 0 else "DIFFERENT"
        print(f"  {table:<20} {count_a:>7} rows  {status}"
              + ("" if status == "same" else f" ({only_a} only in A, {only_b} only in B)"))
        if status != "same":
            problems.append(f"table {table}: {count_a} vs {count_b} rows, {only_a} only in A, {only_b} only in B")
    db.close()
    return problems


def _summary(directory: Path) -> dict[str, object]:
    summary = json.loads((directory / SUMMARY).read_text(encoding="utf-8").replace(str(directory), "DIR"))
    summary.pop("seconds", None)
    return summary


def compare_directories(a: Path, b: Path) -> list[str]:
    problems = compare_databases(a / DATABASE, b / DATABASE)
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file() and not p.name.startswith(DATABASE)}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file() and not p.name.startswith(DATABASE)}
    if files_a != files_b:
        problems.append(f"files differ: {sorted(map(str, files_a ^ files_b))}")
    for name in sorted(files_a & files_b):
        if name.name == SUMMARY:
            same = _summary(a) == _summary(b)
        else:
            text_a = (a / name).read_bytes().replace(str(a).encode(), b"DIR")
            text_b = (b / name).read_bytes().replace(str(b).encode(), b"DIR")
            same = text_a == text_b
        print(f"  {str(name):<32} {'same' if same else 'DIFFERENT'}")
        if not same:
            problems.append(f"file {name} differs")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="time the demo")
    run.add_argument("--rounds", type=int, default=3)
    run.add_argument("--listener", default=str(ROOT / ".venv" / "bin" / "listener"))
    run.add_argument("--against", action="append", default=[],
                     help="another build's listener to time in the same rounds (repeatable)")
    run.add_argument("--keep", type=Path, help="leave the last run's demo directory (of --listener's build) here")
    run.add_argument("--json", action="store_true")
    check = commands.add_parser("compare", help="are two demo directories the same?")
    check.add_argument("a", type=Path)
    check.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        results = bench([args.listener, *args.against], args.rounds, args.keep)
        if args.json:
            print(json.dumps(results))
            return 0
        for result in results:
            print(f"{result['listener']}\n  CPU s (user+sys): {result['cpu_seconds']}  median {result['cpu_median']}\n"
                  f"  wall s:           {result['wall_seconds']}  median {result['wall_median']}\n"
                  f"  peak RSS MB:      {result['peak_rss_mb']}")
        return 0
    problems = compare_directories(args.a, args.b)
    print("identical" if not problems else "DIFFERENT:\n  " + "\n  ".join(problems))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
