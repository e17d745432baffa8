"""Collection scaling in cluster mode (issue 17 item 6): 1, 2 and 4 real ``listener run``
daemons sharing many (x, brand) jobs through one PostgreSQL, against N times one daemon's
pulls per minute, with every post the fake X API served checked in ``cluster_mentions``.

    python bench/cluster_scale.py [--brands 80] [--latency 2] [--jitter 0] [--daemons 1,2,4]
                                  [--url postgresql://...] [--json]

Collection is bound by the platforms' latency and quotas, not CPU: the fake X API
(tests/fakes/x_api.py, evaluating each brand's query) answers every search after
``--latency`` seconds, as a real platform's round trip and rate pacing do (X's recent
search allows 450 requests per 15 minutes per app: one each 2 s). Each brand has 5
posts, one page: one pull is one request.

The daemons are the real thing (``python -m listener.cli run``, cluster mode, each with
its own folder and DuckDB file, in a session of its own as on its own machine), with
``every_minutes = 60``: each daemon's scheduler tries every job once at start-up on its
4 pull threads, a job held or already pulled by another daemon being skipped. Daemons
start at different times on a loaded machine, so the fake holds the first requests until
all N daemons have 4 waiting (4 N), lets that warm-up round go (a daemon loads its
language and sentiment models on its first pull), and holds the next 4 N again: when
they wait, every warm-up pull is committed, and the clock starts as they go. It stops
when every job has been pulled and released (polled in PostgreSQL); pulls per minute
are of the pulls timed (the jobs less the warm-up round). Interpreter start-up,
migrations, model loading and the first snapshot are not in the figure.

Real daemons, not the lease workers of tests/cluster/worker.py: at these latencies
four daemons use about half of one core here (CPU per pull is printed), so the bench
measures what an operator runs, the daemon's own scheduling and skipped ticks included.

Each count runs in a fresh database, and is checked: every post served once (a post
served twice is a job pulled twice), every post the fake holds in ``cluster_mentions``
exactly once (none lost), and the daemons' own files holding together exactly those,
none in two files. The bench exits 1 when any check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backfill_cluster import fresh_database, server_cpu  # noqa: E402
from connectors.base import utc_now  # noqa: E402
from storage.cluster import connect  # noqa: E402
from storage.store import Store  # noqa: E402
from tests.fakes.http import Reply, Request  # noqa: E402
from tests.fakes.x_api import SEARCH, FakeXApi, tweet  # noqa: E402

POSTS_PER_BRAND = 5
PULL_THREADS = 4  # listener.daemon's scheduler pool (ThreadPoolExecutor(max_workers=4))
TOKEN = "bench-token"
CONFIG = """
[database]
path = "listener.duckdb"
url = "{url}"
lease_seconds = 300

{brands}

[sources.x]
base_url = "{api}"
every_minutes = 60
max_pages_per_run = 1
max_posts_per_run = 1000

[hourly]
enabled = false
"""


def brand_names(count: int) -> list[str]:
    return [f"Brand{b:03d}" for b in range(count)]


class GatedApi:
    """The fake X API answering after a fixed delay, holding every request until ``open``,
    and recording which post ids it served (each request's page)."""

    def __init__(self, brands: list[str], latency: float, jitter: float = 0.0) -> None:
        self.api = FakeXApi(utc_now, bearer_token=TOKEN, rate_limit=10**9, evaluate_queries=True)
        self.api.add_user("7", "ann")
        now = utc_now()
        self.posts: dict[str, str] = {}  # post id -> brand
        for b, brand in enumerate(brands):
            for i in range(POSTS_PER_BRAND):
                post = tweet(now - timedelta(hours=2, minutes=i), f"{brand.lower()} post {i}", author_id="7",
                             sequence=b * POSTS_PER_BRAND + i)
                self.api.add(post)
                self.posts[post["id"]] = brand
        self.latency = latency
        self.jitter = jitter
        self._random = random.Random(7)
        self.api.server.tamper = self._tamper
        self._lock = threading.Condition()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            # The first ``width`` requests wait at gates[0] (the warm-up round), the next
            # ``width`` at gates[1] (the clock's start), the rest at neither.
            self.gates = (threading.Event(), threading.Event())
            self.width = 0
            self.arrived = 0
            self.served: Counter[str] = Counter()

    def wait_at(self, gate: int, procs: list[subprocess.Popen], timeout: float) -> None:
        """Until ``width`` requests wait at ``gate``; RuntimeError if a daemon exits first."""
        count, deadline = self.width * (gate + 1), time.monotonic() + timeout
        with self._lock:
            while not self._lock.wait_for(lambda: self.arrived >= count, 0.5):
                if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                    raise RuntimeError(f"only {self.arrived} of {count} requests reached the fake "
                                       f"(daemons' exit codes: {[p.poll() for p in procs]})")

    def _tamper(self, request: Request, answer: Any) -> Reply:
        if request.path != SEARCH:
            return answer()
        with self._lock:
            index = self.arrived
            self.arrived += 1
            self._lock.notify_all()
        if index < 2 * self.width:
            self.gates[index // self.width].wait()
        started = time.monotonic()
        reply = answer()
        if reply.status == 200 and isinstance(reply.body, dict):
            with self._lock:
                self.served.update(post["id"] for post in reply.body.get("data", []))
        # The platform's round trip: a fixed time from the request's release to its answer
        # (with --jitter, uniform within latency x (1 +- jitter), seeded).
        with self._lock:
            latency = self.latency * (1 + self.jitter * self._random.uniform(-1, 1))
        time.sleep(max(0.0, latency - (time.monotonic() - started)))
        return reply


def cpu_seconds(pid: int) -> float:
    """A live process's own CPU seconds (utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def released(conn: Any, jobs: int) -> bool:
    """Every pull job pulled and released for its interval (not due within 30 minutes)."""
    with conn.transaction():
        done = conn.execute("SELECT count(*) FROM cluster_jobs WHERE source = 'x' AND holder IS NULL "
                            "AND due_at > now() + interval '30 minutes'").fetchone()[0]
    return done == jobs


def run(server: str, api: GatedApi, brands: list[str], daemons: int, folder: Path) -> dict:
    """Seconds for ``daemons`` daemons to pull every brand once, and the checks."""
    url = fresh_database(server)
    api.reset()
    api.width = PULL_THREADS * daemons
    config = CONFIG.format(url=url, api=api.api.url, brands="\n".join(
        f'[[brands]]\nname = "{b}"\nterms = ["{b.lower()}"]\n' for b in brands))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}, "X_BEARER_TOKEN": TOKEN}
    folders, procs = [], []
    try:
        for n in range(daemons):
            each = folder / f"n{daemons}-d{n}"
            each.mkdir()
            (each / "listener.toml").write_text(config)
            folders.append(each)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "listener.cli", "--config", str(each / "listener.toml"), "run"],
                stdout=subprocess.DEVNULL, stderr=(each / "daemon.log").open("w"), cwd=each, env=env,
                # Each in a session of its own, as on its own machine (bench/backfill_cluster.py:
                # the kernel's autogroups share one session's CPU between its processes).
                start_new_session=True))
        # Warm-up: once every daemon has its 4 pull threads waiting on a request, one round
        # of pulls (each daemon loads its language and sentiment models on its first pull).
        # When the 4 N threads wait again, the warm-up pulls are committed and the clock starts.
        api.wait_at(0, procs, timeout=120)
        api.gates[0].set()
        api.wait_at(1, procs, timeout=120)
        cpu_before = [cpu_seconds(p.pid) for p in procs]
        server_before, own_before = server_cpu(url), time.process_time()
        started = time.perf_counter()
        api.gates[1].set()
        deadline = started + 300
        # One connection, polled every 50 ms: a connection per poll would cost the server a
        # backend each time, counted in its CPU below.
        with connect(url) as poll:
            while not released(poll, len(brands)):
                if time.perf_counter() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"the daemons did not pull every job (exit codes: {[p.poll() for p in procs]})")
                time.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu = sum(cpu_seconds(p.pid) - before for p, before in zip(procs, cpu_before, strict=True))
        own = time.process_time() - own_before
    except Exception:
        # The temporary folder goes with the exception: the daemons' last words first.
        for each in folders:
            tail = (each / "daemon.log").read_text().splitlines()[-15:]
            print(f"--- {each.name}/daemon.log (last lines)", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        for gate in api.gates:  # requests held at a gate would keep a stopping daemon waiting
            gate.set()
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in procs:
            try:
                codes.append(proc.wait(timeout=60))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
    # After the daemons stopped: the server's backends count once they have exited.
    server_after = server_cpu(url)
    server = None if server_before is None or server_after is None else server_after - server_before
    return {"daemons": daemons, "timed_pulls": len(brands) - api.width, "seconds": seconds,
            "daemon_cpu_seconds": cpu, "server_cpu_seconds": server,
            "fake_cpu_seconds": own, "exit_codes": codes,
            **check(url, api, folders)}


def check(url: str, api: GatedApi, folders: list[Path]) -> dict:
    """Duplicates and lost rows: what the fake served against ``cluster_mentions`` and the
    daemons' own files."""
    with connect(url) as conn:
        rows = conn.execute("SELECT brand, id FROM cluster_mentions WHERE source = 'x'").fetchall()
        tokens = conn.execute("SELECT count(DISTINCT token) FROM cluster_mentions "
                              "GROUP BY brand HAVING count(DISTINCT token) > 1").fetchall()
    stored = Counter(rows)
    expected = {(brand, post_id) for post_id, brand in api.posts.items()}
    local: Counter[tuple[str, str]] = Counter()
    pulls_per_daemon = []
    for each in folders:
        with Store.open(each / "listener.duckdb") as store, store.native() as db:
            found = db.execute("SELECT brand, id FROM mentions WHERE source = 'x'").fetchall()
        local.update(found)
        pulls_per_daemon.append(len({brand for brand, _ in found}))
    return {
        "posts": len(expected),
        "served_twice": sum(n - 1 for n in api.served.values() if n > 1),
        "duplicates": sum(n - 1 for n in stored.values()) + len(tokens),
        "lost": len(expected - set(stored)),
        "unexpected": len(set(stored) - expected),
        "files_duplicates": sum(n - 1 for n in local.values()),
        "files_lost": len(expected - set(local)),
        "pulls_per_daemon": pulls_per_daemon,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brands", type=int, default=80, help="(x, brand) jobs (default 80)")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds the fake takes per answer (default 2)")
    parser.add_argument("--jitter", type=float, default=0.0,
                        help="spread of the answer time, as a share of --latency (default 0: fixed)")
    parser.add_argument("--daemons", default="1,2,4", help="daemon counts (default 1,2,4)")
    parser.add_argument("--url", help="an existing server's URL (a superuser: each run creates a database)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    counts = [int(n) for n in args.daemons.split(",")]
    counts = [1, *[n for n in counts if n != 1]]  # one daemon is the reference
    brands = brand_names(args.brands)
    api = GatedApi(brands, args.latency, args.jitter)
    with api.api, tempfile.TemporaryDirectory(prefix="cluster-scale-") as tmp:
        if args.url:
            results = [run(args.url, api, brands, n, Path(tmp)) for n in counts]
        else:
            from tests.cluster.server import temporary_server  # noqa: PLC0415 - only without --url
            with temporary_server() as url:
                results = [run(url, api, brands, n, Path(tmp)) for n in counts]
    return report(results, args, brands)


def report(results: list[dict], args: argparse.Namespace, brands: list[str]) -> int:
    single = results[0]["timed_pulls"] / results[0]["seconds"] * 60
    rows = []
    for r in results:
        pulls = r["timed_pulls"]
        rate = pulls / r["seconds"] * 60
        server = r["server_cpu_seconds"]
        rows.append({**r, "pulls_per_minute": rate, "ratio_to_n_times_one": rate / (r["daemons"] * single),
                     "daemon_cpu_ms_per_pull": 1000 * r["daemon_cpu_seconds"] / pulls,
                     "server_cpu_ms_per_pull": None if server is None else 1000 * server / pulls,
                     "fake_cpu_ms_per_pull": 1000 * r["fake_cpu_seconds"] / pulls,
                     "cores_used": (r["daemon_cpu_seconds"] + r["fake_cpu_seconds"] + (server or 0)) / r["seconds"]})
    failed = [r for r in rows if r["duplicates"] or r["lost"] or r["served_twice"] or r["unexpected"]
              or r["files_duplicates"] or r["files_lost"] or any(r["exit_codes"])]
    figures = {"jobs": len(brands), "posts_per_job": POSTS_PER_BRAND, "latency_seconds": args.latency,
               "jitter": args.jitter, "pull_threads_per_daemon": PULL_THREADS, "cores": os.cpu_count(),
               "load_average_1m": os.getloadavg()[0], "runs": rows, "ok": not failed}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"collection of {len(brands)} (x, brand) jobs, {POSTS_PER_BRAND} posts each, the fake answering in "
              f"{args.latency:g} s" + (f" +- {args.jitter:.0%}" if args.jitter else "")
              + f"; {os.cpu_count()} cores, load {figures['load_average_1m']:.1f}")
        print("  (timed: the pulls after each daemon's first round of 4, which loads its models)")
        print("  daemons  pulls  seconds  pulls/min  ratio to N x one  CPU ms/pull: daemons  server  fake  cores used  "
              "duplicates  lost  pulls per daemon")
        for r in rows:
            server = "-" if r["server_cpu_ms_per_pull"] is None else f"{r['server_cpu_ms_per_pull']:.0f}"
            print(f"  {r['daemons']:>7}  {r['timed_pulls']:>5}  {r['seconds']:>7.1f}  {r['pulls_per_minute']:>9.0f}  "
                  f"{r['ratio_to_n_times_one']:>16.2f}  {r['daemon_cpu_ms_per_pull']:>20.0f}  {server:>6}  "
                  f"{r['fake_cpu_ms_per_pull']:>4.0f}  {r['cores_used']:>10.2f}  "
                  f"{r['duplicates'] + r['served_twice'] + r['files_duplicates']:>10}  "
                  f"{r['lost'] + r['files_lost']:>4}  {', '.join(map(str, r['pulls_per_daemon']))}")
        print(f"  one daemon's ceiling: {PULL_THREADS} pull threads / {args.latency:g} s = "
              f"{PULL_THREADS / args.latency * 60:.0f} pulls/min")
        print("  every post served once, in cluster_mentions once, in one daemon's file: "
              + ("yes" if not failed else "NO, with " + " and ".join(f"{r['daemons']} daemon(s)" for r in failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
