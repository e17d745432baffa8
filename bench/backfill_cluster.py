"""Backfill throughput in cluster mode (issue 17 item 6): 1, 2 and 4 worker processes
(each a machine's ``listener backfill --work``, here on one machine) sharing one archive's
shards through PostgreSQL, against N times the single-process rate.

    python bench/backfill_cluster.py [--lines 40000] [--shards 16] [--url postgresql://...] [--json]

Without ``--url`` a throwaway PostgreSQL server is started (tests/cluster/server.py).
Each worker process imports and connects first, then all start at once on a signal, so
the figure is the backfill's own rate (interpreter start-up excluded). Every run goes
into a fresh database and is checked: each mention stored exactly once.

Each count runs twice, in the order 1, 2, 4, 4, 2, 1, since a shared machine's load
drifts. The workers' CPU per 1,000 lines (their own, while working), the server's, and the
cores the workers got on average are printed with each count: a ratio below 1 with flat
CPU per line is the machine's share running out, not the coordination costing. On C cores, N > C workers cannot pass
C times the single rate: the ratio printed for them is against N x, as asked, and the
cores are printed beside it. ``listener import`` of the same file (one process, DuckDB)
is printed as a reference for what the cluster path costs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.language import detect_language  # noqa: E402
from analysis.sentiment import VaderScorer  # noqa: E402
from connectors.base import BrandQuery  # noqa: E402
from listener.backfill import split, work  # noqa: E402
from listener.ingest import Preparer  # noqa: E402
from storage.cluster import connect, holder_name, migrate  # noqa: E402
from storage.cluster.shards import Shards  # noqa: E402

BRANDS = ("Acme", "Globex", "Initech")
TEMPLATES = ("{b} is great, love the new one", "{b} support is awful, waited two hours", "picked up {b} today",
             "{b} price went up again :(", "not sure about {b} anymore, thoughts?", "{b} and {c} both shipped late",
             "nothing about any brand here, just {w}", "what a day {w} {w}")
WORDS = ("coffee", "rain", "train", "weekend", "football", "music", "deadline", "garden")


def write_archive(path: Path, lines: int) -> None:
    """JSONL posts: three brands, some naming two, a quarter naming none; half without a
    language (detected, as in a real archive)."""
    rng = random.Random(7)
    with path.open("w") as handle:
        for i in range(lines):
            b, c = rng.sample(BRANDS, 2)
            text = rng.choice(TEMPLATES).format(b=b.lower(), c=c.lower(), w=rng.choice(WORDS)) + f" #{i % 97}"
            row = {"id": f"p{i}", "created_at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                   "text": text, "author": f"u{i % 5000}"}
            if i % 2:
                row["lang"] = "en"
            handle.write(json.dumps(row) + "\n")


def worker(url: str) -> None:
    """One worker process: ready, wait for 'go', work until no shard is left."""
    shards = Shards(connect(url), holder_name())
    detect_language("warming up the language model")  # loaded on first use: not the backfill's rate
    with Preparer(1, VaderScorer()) as preparer:
        print("ready", flush=True)
        sys.stdin.readline()
        cpu = time.process_time()
        done = work(shards, preparer, lease_seconds=300)
    print(json.dumps({"shards": len(done), "cpu_seconds": time.process_time() - cpu}), flush=True)


def fresh_database(server: str) -> str:
    name = f"bf_{uuid.uuid4().hex[:10]}"
    with connect(server) as conn:
        conn.autocommit = True
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


def run(server: str, archive: Path, shards: int, processes: int) -> dict:
    """Seconds for ``processes`` workers to store every shard, and the check."""
    url = fresh_database(server)
    with connect(url) as conn:
        migrate(conn)
        queries = [BrandQuery(brand=b, terms=(b.lower(),)) for b in BRANDS]
        Shards(conn, "bench").create(str(archive), archive.stat().st_size, "archive", "jsonl", queries,
                                     _now(conn), split(archive, shards))
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              # Each in a session of its own, as on its own machine: with the
                              # kernel's autogroups, processes of one session share one
                              # session's CPU on a loaded machine, so N of them ran no faster
                              # than one (0.3 x N measured here at load 16).
                              start_new_session=True) for _ in range(processes)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    server_before = server_cpu(url)
    started = time.perf_counter()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    per_process, cpu = [], 0.0
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0
        worked = json.loads(out.splitlines()[-1])
        per_process.append(worked["shards"])
        cpu += worked["cpu_seconds"]
    seconds = time.perf_counter() - started
    server_after = server_cpu(url)
    with connect(url) as conn:
        stored, distinct = conn.execute("SELECT count(*), count(DISTINCT (source, id, brand)) "
                                        "FROM cluster_mentions").fetchone()
        undone = conn.execute("SELECT count(*) FROM cluster_shards WHERE done_at IS NULL").fetchone()[0]
    server = None if server_before is None or server_after is None else server_after - server_before
    return {"processes": processes, "seconds": seconds, "cpu_seconds": cpu, "server_cpu_seconds": server,
            "stored": stored, "duplicates": stored - distinct,
            "undone_shards": undone, "shards_per_process": per_process}


def server_cpu(url: str) -> float | None:
    """CPU seconds the PostgreSQL server has used (the postmaster and its children that
    have exited), when it runs on this machine; None otherwise."""
    try:
        with connect(url) as conn:
            pid = int(conn.execute("SELECT pg_read_file('postmaster.pid')").fetchone()[0].split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except Exception:  # another machine's server, or no right to read its file: not measured
        return None
    # utime, stime, cutime, cstime (fields 14-17 of stat; 12-15 after the command name)
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _now(conn):
    return conn.execute("SELECT now()").fetchone()[0]


def import_reference(archive: Path) -> float:
    """Seconds of ``listener import`` of the same file, one process, into a new DuckDB file."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "listener.toml"
        config.write_text(f'[database]\npath = "{Path(tmp) / "listener.duckdb"}"\n' + "".join(
            f'[[brands]]\nname = "{b}"\nterms = ["{b.lower()}"]\n' for b in BRANDS))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "listener.cli", "--config", str(config), "import", str(archive),
                        "--source", "archive"], check=True, capture_output=True, cwd=ROOT)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=40_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--processes", default="1,2,4", help="worker process counts (default 1,2,4)")
    parser.add_argument("--url", help="an existing server's URL (a superuser: each run creates a database)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    counts = [int(n) for n in args.processes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive.jsonl"
        write_archive(archive, args.lines)
        if args.url:
            results = measure(args.url, archive, args.shards, counts)
        else:
            from tests.cluster.server import temporary_server  # noqa: PLC0415 - only without --url
            with temporary_server() as url:
                results = measure(url, archive, args.shards, counts)
        import_seconds = import_reference(archive)
    report(results, args.lines, import_seconds, args.json)


def measure(url: str, archive: Path, shards: int, counts: list[int]) -> list[dict]:
    # Each count twice, in an order symmetric in time (1, 2, 4, 4, 2, 1): a drift of the
    # shared machine's load weighs on every count alike.
    order = [1, *[n for n in counts if n != 1]]
    return [run(url, archive, shards, n) for n in (*order, *reversed(order))]


def report(results: list[dict], lines: int, import_seconds: float, as_json: bool) -> None:
    by_count: dict[int, list[dict]] = {}
    for r in results:
        by_count.setdefault(r["processes"], []).append(r)

    def mean(runs: list[dict], key: str) -> float | None:
        values = [r[key] for r in runs]
        return None if None in values else sum(values) / len(values)

    single_rate = lines / mean(by_count[1], "seconds")
    rows = []
    for n, runs in by_count.items():
        rate = lines / mean(runs, "seconds")
        server = mean(runs, "server_cpu_seconds")
        rows.append({"processes": n, "runs_seconds": [r["seconds"] for r in runs], "lines_per_second": rate,
                     "ratio_to_n_times_single": rate / (n * single_rate),
                     "worker_cpu_ms_per_1k_lines": 1000 * 1000 * mean(runs, "cpu_seconds") / lines,
                     "server_cpu_ms_per_1k_lines": None if server is None else 1000 * 1000 * server / lines,
                     "cores_used": mean(runs, "cpu_seconds") / mean(runs, "seconds"),
                     "shards_per_process": [r["shards_per_process"] for r in runs]})
    figures = {"lines": lines, "cores": os.cpu_count(), "load_average_1m": os.getloadavg()[0], "runs": rows,
               "import_one_process_lines_per_second": lines / import_seconds,
               "every_mention_once": all(r["duplicates"] == 0 and r["undone_shards"] == 0 for r in results)
               and len({r["stored"] for r in results}) == 1}
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    print(f"backfill of {lines:,} lines, {os.cpu_count()} cores, load {figures['load_average_1m']:.1f} "
          "(each count run twice; worker and server CPU per 1k lines, and the cores the workers got)")
    print("  processes  lines/s  ratio to N x single  worker ms/1k  server ms/1k  cores got  runs")
    for r in rows:
        server = "-" if r["server_cpu_ms_per_1k_lines"] is None else f"{r['server_cpu_ms_per_1k_lines']:.0f}"
        print(f"  {r['processes']:>9}  {r['lines_per_second']:>7,.0f}  {r['ratio_to_n_times_single']:>19.2f}  "
              f"{r['worker_cpu_ms_per_1k_lines']:>12.0f}  {server:>12}  {r['cores_used']:>9.2f}  "
              + ", ".join(f"{s:.1f}s" for s in r["runs_seconds"]))
    print(f"  listener import, 1 process (DuckDB, its start-up included): "
          f"{figures['import_one_process_lines_per_second']:,.0f} lines/s")
    print(f"  every mention stored exactly once in every run: {figures['every_mention_once']} "
          f"({results[0]['stored']:,} mentions)")


if __name__ == "__main__":
    main()
