"""The lake (storage.lake; docs/cluster.md "The lake"): publish cost per new row as the
archive grows, and analysts' query latency on the lake with and without writers.

    python bench/lake.py [--url postgresql://...] [--scales 1000000,10000000]
                         [--new 20000] [--pg-archive 1000000] [--json]

For each scale S, in a fresh database: the archive is built in SQL (DuckDB writes S
mentions and their VADER scores as Parquet partitioned by brand and day, 10 brands at
10,000 mentions per brand and day, so a larger archive is more days, as it is when a
lake grows; PostgreSQL lists them in the manifest, and ``cluster_mentions`` holds
``--pg-archive`` rows below the publisher's watermark). Then ``--new`` mentions are
committed as collectors commit them (batches of 500 under a lease) and published by
the real publisher (VADER scoring, near-duplicate lookups in the lake, Parquet, the
fenced manifest commit): its seconds per new row should not grow with S.

At the largest scale the analysts' queries run as ``listener sql`` runs them (the
catalog built from the manifest, then the query; median of 3), first alone, then while
2 collector processes commit batches and a publisher process publishes them.

Without ``--url`` a throwaway server is started (tests.cluster.server).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import psycopg  # noqa: E402

from analysis.sentiment import VaderScorer  # noqa: E402
from connectors.base import Mention  # noqa: E402
from listener.config import ClusterSettings  # noqa: E402
from listener.lake import open_catalog, publisher  # noqa: E402
from storage.analyst import read_only, run_query  # noqa: E402
from storage.cluster import Leases, connect, migrate  # noqa: E402
from storage.lake import JOB  # noqa: E402
from storage.lake.catalog import HOURLY_QUERY, as_table, columns_of, new_database  # noqa: E402

BRANDS = 10
PER_BRAND_DAY = 10_000
BATCH = 500
# The writers yield the CPU to the analyst's query: on a 2-core machine they would
# otherwise measure CPU sharing, not what writing to the lake does to its readers.
WRITERS_NICE = 19
# Publishes of --new rows timed at each scale, and cycles of queries alone then with writers
# (medians reported): the machine's load varies.
ROUNDS = 3
CYCLES = 2
FIRST_DAY = datetime(2024, 1, 1, tzinfo=UTC)

QUERIES = {
    "one brand, 7 days, mentions by label": (
        "SELECT label, count(*) FROM v_mentions WHERE brand = 'brand3' AND created_at >= $since GROUP BY label"),
    "volume per brand, all time": "SELECT brand, count(*) FROM mentions GROUP BY brand",
    "hourly mood, one brand, 7 days": (
        "SELECT hour, mentions, nss FROM v_hourly_mood WHERE brand = 'brand3' AND hour >= $since ORDER BY hour"),
    "daily mentions and NSS, all brands": (
        "SELECT brand, CAST(hour AS DATE) AS day, sum(mentions), avg(nss) FROM v_hourly_mood GROUP BY ALL"),
}


def fresh_database(server: str) -> str:
    name = f"lake_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


def days_for(scale: int) -> int:
    return max(1, scale // (BRANDS * PER_BRAND_DAY))


# The archive's mentions: g is the row number; brand and time spread evenly.
_ARCHIVE = """
SELECT 'x' AS source, 'a' || g AS id, 'brand' || (g % {brands}) AS brand,
       TIMESTAMP '{first}' + to_microseconds(CAST((g // {brands}) * {step} AS BIGINT)) AS created_at,
       'brand' || (g % {brands}) || ' coffee number ' || g || CASE g % 3 WHEN 0 THEN ' is great' WHEN 1 THEN
           ' is awful' ELSE ' arrived' END AS text,
       'u' || (g % 5000) AS author, NULL::VARCHAR AS url, 'a' || g AS conversation_id, NULL::VARCHAR AS parent_id,
       'en' AS lang, 0::BIGINT AS likes, 0::BIGINT AS reposts, 0::BIGINT AS replies, NULL::VARCHAR AS extra_metrics,
       NULL::TIMESTAMP AS fetched_at, NULL::VARCHAR AS raw, false AS thread_context, (hash(g) // 2)::BIGINT AS text_hash,
       false AS duplicate, false AS own
FROM range({scale}) r(g)
"""

_SCORES = """
SELECT source, id, brand, created_at, 'vader' AS scorer, '3.3.2' AS scorer_version,
       CASE WHEN ends_with(text, 'great') THEN 0.6249 WHEN ends_with(text, 'awful') THEN -0.4588 ELSE 0.0 END
           AS compound, 0.0 AS pos, 1.0 AS neu, 0.0 AS neg,
       CASE WHEN ends_with(text, 'great') THEN 'positive' WHEN ends_with(text, 'awful') THEN 'negative'
            ELSE 'neutral' END AS label,
       TIMESTAMP '{first}' AS scored_at, true AS active
FROM mentions
"""


def build_archive(url: str, lake: Path, scale: int, pg_archive: int) -> None:
    """``scale`` mentions, their scores and their hourly rows (the hourly stage's SQL) in
    the lake, listed in the manifest; ``pg_archive`` rows in cluster_mentions; the
    publisher's cursor past them all."""
    days = days_for(scale)
    step = 86_400_000_000 * days * BRANDS // scale  # microseconds between a brand's mentions
    first = FIRST_DAY.replace(tzinfo=None).isoformat(sep=" ")
    lake.mkdir(parents=True)
    scratch = lake.parent / f"archive-{scale}.duckdb"
    new_database(scratch)
    # In memory (10M mentions and scores take about 3 GB): twice as fast as in the file.
    db = duckdb.connect(config={"memory_limit": "6GB", "preserve_insertion_order": False})
    db.execute("SET enable_progress_bar = false")
    db.execute(f"ATTACH '{scratch}' AS schema_source (READ_ONLY)")
    db.execute("COPY FROM DATABASE schema_source TO memory")
    db.execute("DETACH schema_source")
    db.execute(f"INSERT INTO mentions BY NAME {_ARCHIVE.format(brands=BRANDS, first=first, step=step, scale=scale)}")
    db.execute(f"INSERT INTO scores BY NAME {_SCORES.format(first=first)}")
    rows = []
    for kind, query, at in (("mentions", "SELECT * FROM mentions", "created_at"),
                            ("scores", "SELECT * FROM scores", "created_at"),
                            ("hourly_mood", as_table(columns_of(db, "hourly_mood"), HOURLY_QUERY), "hour")):
        db.execute(f"CREATE TEMP TABLE out AS SELECT *, CAST({at} AS DATE) AS day FROM ({query})")
        # Snappy: the archive's files are written faster than with the publisher's zstd.
        db.execute(f"COPY out TO '{lake / kind}' (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (brand, day), "
                   "WRITE_PARTITION_COLUMNS true, FILENAME_PATTERN 'archive_{i}')")
        rows += [(f"{kind}/brand={brand}/day={day.isoformat()}/archive_0.parquet", kind, brand, day, n)
                 for brand, day, n in db.execute("SELECT brand, day, count(*) FROM out GROUP BY ALL").fetchall()]
        db.execute("DROP TABLE out")
    db.close()
    scratch.unlink()
    conn = connect(url)
    migrate(conn)
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany("INSERT INTO lake_files (path, kind, brand, day, rows, max_txid, token) "
                        "VALUES (%s, %s, %s, %s, %s, 0, 0)", rows)
        cur.execute(
            "INSERT INTO cluster_mentions (source, id, brand, created_at, text, author, url, lang, token, holder) "
            "SELECT 'x', 'a' || g, 'brand' || (g %% %s), %s + (g / %s) * make_interval(secs => %s), "
            "'archived post ' || g, 'u' || (g %% 5000), NULL, 'en', 0, 'archive' "
            "FROM generate_series(0, %s - 1) g", (BRANDS, FIRST_DAY, BRANDS, step / 1e6, min(pg_archive, scale)))
    Leases(conn, "bench").register([JOB])
    with conn.transaction():
        conn.execute("UPDATE cluster_jobs SET cursor = jsonb_build_object('txid', "
                     "txid_snapshot_xmin(txid_current_snapshot())) WHERE source = %s AND brand = %s", JOB)
    conn.close()


def new_mentions(scale: int, count: int, offset: int = 0) -> list[list[Mention]]:
    """``count`` mentions on the archive's last day, in collectors' batches (one brand each)."""
    start = FIRST_DAY + timedelta(days=days_for(scale) - 1)
    batches = []
    for b in range(count // BATCH):
        brand = f"brand{b % BRANDS}"
        batches.append([Mention(source="x", id=f"n{offset}-{b}-{i}", brand=brand,
                                text=f"{brand} fresh take {offset} {b} {i}: the coffee is really good today",
                                author=f"u{i}", lang="en", created_at=start + timedelta(seconds=b * BATCH + i))
                        for i in range(BATCH)])
    return batches


def commit(conn: psycopg.Connection, batches: list[list[Mention]], holder: str) -> None:
    leases = Leases(conn, holder)
    for batch in batches:
        job = ("x", batch[0].brand)
        leases.register([job])
        while not (taken := leases.take(60, job=job)):
            time.sleep(0.01)  # the other collector holds this brand's job: its turn next
        leases.commit(taken[0], batch, None)
        leases.release(taken[0], 0)


def clock() -> datetime:
    return datetime.now(UTC)


def publish_rounds(server: str, scales: list[int], new: int, pg_archive: int, work: Path) -> list[dict]:
    """Each scale's archive, then ROUNDS rounds in which each scale in turn has ``new``
    rows committed and published (interleaved, so the machine's changing load falls on
    every scale alike); each scale's median publish."""
    built = []
    for scale in scales:
        url, lake = fresh_database(server), work / f"lake-{scale}"
        started = time.perf_counter()
        build_archive(url, lake, scale, pg_archive)
        conn = connect(url)
        built.append((scale, url, lake, time.perf_counter() - started, conn,
                      publisher(ClusterSettings(url, lake=lake), VaderScorer(), clock, conn), []))
    for round_ in range(ROUNDS):
        for scale, _, _, _, conn, lake_publisher, times in built:
            commit(conn, new_mentions(scale, new, offset=round_), "collector")
            started = time.perf_counter()
            result = lake_publisher.publish()
            times.append(time.perf_counter() - started)
            assert result.rows == new, result
    figures = []
    for scale, url, lake, seconds, conn, lake_publisher, times in built:
        lake_publisher.close()
        conn.close()
        median = statistics.median(times)
        figures.append({"scale": scale, "url": url, "lake": str(lake), "build_seconds": seconds, "new_rows": new,
                        "publish_seconds": median, "us_per_new_row": median / new * 1e6, "files": result.files})
    return figures


def analyst_latency(url: str, lake: Path, since: datetime) -> dict[str, float]:
    """Seconds of each query as ``listener sql`` runs it: the catalog, then the query."""
    cluster = ClusterSettings(url, lake=lake)
    figures = {}
    for name, query in QUERIES.items():
        started = time.perf_counter()
        with open_catalog(cluster) as catalog, read_only(catalog.path, read_dir=catalog.lake) as db:
            run_query(db, query.replace("$since", f"TIMESTAMP '{since.replace(tzinfo=None).isoformat()}'"))
        figures[name] = time.perf_counter() - started
    return figures


def _collector(url: str, scale: int, n: int, stop: multiprocessing.synchronize.Event) -> None:
    os.nice(WRITERS_NICE)
    conn = connect(url)
    round_ = 0
    while not stop.is_set():
        commit(conn, new_mentions(scale, BATCH * BRANDS, offset=n * 1_000_000 + round_), f"collector-{n}")
        round_ += 1


def _publisher(url: str, lake: str, stop: multiprocessing.synchronize.Event) -> None:
    os.nice(WRITERS_NICE)
    lake_publisher = publisher(ClusterSettings(url, lake=Path(lake)), VaderScorer(), clock)
    while not stop.is_set():
        if not lake_publisher.publish(should_stop=stop.is_set).rows:
            time.sleep(0.2)


def with_writers(url: str, lake: Path, scale: int, since: datetime) -> tuple[dict[str, float], int]:
    """Query latency while 2 collectors commit and the publisher publishes; rows published."""
    time.sleep(1)  # the previous writers' processes gone
    stop = multiprocessing.Event()
    procs = [multiprocessing.Process(target=_collector, args=(url, scale, n, stop)) for n in (1, 2)]
    procs.append(multiprocessing.Process(target=_publisher, args=(url, str(lake), stop)))
    with psycopg.connect(url) as conn:
        before = conn.execute("SELECT coalesce(sum(rows), 0) FROM lake_files WHERE kind = 'mentions'").fetchone()[0]
    for proc in procs:
        proc.start()
    try:
        time.sleep(3)  # writers under way
        figures = analyst_latency(url, lake, since)
    finally:
        stop.set()
        for proc in procs:
            proc.join(timeout=60)
    with psycopg.connect(url) as conn:
        after = conn.execute("SELECT coalesce(sum(rows), 0) FROM lake_files WHERE kind = 'mentions'").fetchone()[0]
    return figures, int(after - before)


def run(server: str, scales: list[int], new: int, pg_archive: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="listener-lake-bench-") as work:
        publish_rounds(server, [100_000], 1_000, 10_000, Path(work) / "warm-up")  # imports, VADER's first call
        publishes = publish_rounds(server, scales, new, pg_archive, Path(work))
        largest = publishes[-1]
        url, lake = largest["url"], Path(largest["lake"])
        since = FIRST_DAY + timedelta(days=days_for(largest["scale"]) - 7)
        analyst_latency(url, lake, since)  # warm-up: the files into the page cache
        alone, busy, appended = [], [], 0
        # Alternated, so the machine's changing load falls on both alike.
        for _ in range(CYCLES):
            alone.append(analyst_latency(url, lake, since))
            figures, published = with_writers(url, lake, largest["scale"], since)
            busy.append(figures)
            appended += published
    return {"publish": [{k: v for k, v in p.items() if k not in ("url", "lake")} for p in publishes],
            "queries_at": largest["scale"], "pg_archive": pg_archive,
            "queries": {name: {"alone_s": statistics.median(a[name] for a in alone),
                               "two_writers_s": statistics.median(b[name] for b in busy)} for name in QUERIES},
            "published_during_queries": appended}


def report(figures: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    print(f"Publish cost per new row (VADER scoring, near-duplicate lookup, Parquet, fenced manifest commit; "
          f"median of {ROUNDS} publishes):")
    base = figures["publish"][0]["us_per_new_row"]
    for p in figures["publish"]:
        print(f"  archive {p['scale']:>12,} rows: {p['new_rows']:,} new in {p['publish_seconds']:.2f} s = "
              f"{p['us_per_new_row']:.0f} us/row ({p['us_per_new_row'] / base:.2f}x; {p['files']} files; "
              f"archive built in {p['build_seconds']:.0f} s)")
    print(f"  (cluster_mentions holds {figures['pg_archive']:,} archived rows at every scale)")
    print(f"Analyst queries on the lake at {figures['queries_at']:,} rows, catalog + query, median of {CYCLES} "
          "alternated cycles:")
    for name, q in figures["queries"].items():
        print(f"  {name:<40} alone {q['alone_s']:6.2f} s   2 collectors + publisher (nice {WRITERS_NICE}) "
              f"{q['two_writers_s']:6.2f} s "
              f"({q['two_writers_s'] / q['alone_s']:.2f}x)")
    print(f"  ({figures['published_during_queries']:,} mentions published while the queries ran)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a PostgreSQL server to use (a database is created on it)")
    parser.add_argument("--scales", default="1000000,10000000")
    parser.add_argument("--new", type=int, default=20_000)
    parser.add_argument("--pg-archive", type=int, default=1_000_000,
                        help="archived rows in cluster_mentions (10M take minutes to insert)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    if args.url:
        figures = run(args.url, scales, args.new, args.pg_archive)
    else:
        from tests.cluster.server import temporary_server  # noqa: PLC0415 - only without --url

        with temporary_server() as server:
            figures = run(server, scales, args.new, args.pg_archive)
    report(figures, args.json)


if __name__ == "__main__":
    main()
