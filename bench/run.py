"""Speed and memory of the ingest path, as ratios against references measured in this run.

    python bench/run.py               # table
    python bench/run.py --json        # one JSON object: every figure, its reference, its target
    python bench/run.py --quick       # smaller sizes, for a smoke check
    python bench/run.py --big         # adds snapshot publishing at 10M mentions (bench/bigdb.py builds it once)
    python bench/run.py --scale       # adds bench/scale.py: 10M-mention rollup and queries, --workers
    python bench/run.py --write-docs  # also rewrites the Performance table of docs/performance.md

Figures (issue 16; "on one core": CPU seconds of the process and its children, so the
figures do not depend on what else the machine runs; wall seconds are in --json):
* scoring: VaderScorer.score (FastVader inside) vs a bare ``polarity_scores`` loop over
  the same texts (target ratio >= 3);
* exact VADER (bench/vader_speed.py): FastVader vs bare ``polarity_scores`` on the dev
  tweets and demo texts, with the count of texts whose scores differ (target ratio >= 3,
  0 mismatches);
* learned scorer (bench/learned_speed.py): LearnedScorer.score_with_vader vs VaderScorer
  on the dev tweets, model trained on 1,000 of them (target ratio >= 0.5);
* saving: Store.save_batch (de-duplication, scores, pending-hour marks, cursor, one
  transaction per batch) vs a bare DuckDB Arrow INSERT of the same mention and score rows
  into plain tables, both starting from the same Mention objects and converting them with
  the same functions (target ratio >= 0.5), for new rows and for a batch re-saved;
  the conversion itself is printed as microseconds per row;
* import: ``listener import`` of a JSONL file of 200k demo-stream mentions of three
  brands, without ``lang`` (three brands configured), in a child process: its rate
  against bare ``polarity_scores`` over the same texts (target >= 1.0 with --workers 2,
  issue 16 item 2), and against the peers' pattern, a plain script doing json + regex +
  vaderSentiment + batched SQLite ``executemany`` on the same file (target >= 2.5);
* end to end: 1M demo-source mentions through Pipeline.pull into a fresh database, in a
  child process: mentions/s against bare ``polarity_scores`` on the same stream (target
  >= 1.0, as above) and peak RSS (target < 500 MB);
* snapshot publishing (bench/snapshot.py) at 1M mentions, and 10M with --big: publish
  time, how long the writer is blocked, bytes written, on this filesystem against the
  publish as it was (copy under the lock), and on a loop-mounted XFS image (reflink)
  where one can be made (target: under 50 ms at 10M and flat from 1M).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# What the children (--e2e-child, --peer-child) need and no more: their CPU time is the
# figure, and the learned scorer's imports (scikit-learn, SciPy) cost seconds of it.
from analysis.sentiment import VaderScorer  # noqa: E402
from connectors.base import BrandQuery  # noqa: E402
from connectors.demo import DemoConnector  # noqa: E402
from demo.world import DemoBrand, DemoWorld  # noqa: E402
from storage.store import Store, mentions_table, scores_table  # noqa: E402

END = datetime(2026, 11, 1, tzinfo=timezone.utc)
BENCH_BRAND = DemoBrand("Benchly", "benchly", 20_000.0, 15.0, 0.6)
# The import's file: three brands of different sizes, all three configured, as in issue 16.
IMPORT_BRANDS = (BENCH_BRAND, DemoBrand("Quillo", "quillo", 8_000.0, 5.0, 0.5),
                 DemoBrand("Marrowby", "marrowby", 4_000.0, -10.0, 0.5))
PEER_BATCH = 5_000
DOCS_PAGE = ROOT / "docs" / "performance.md"
DOCS_BLOCK = "performance-figures"


def bench_world(days: float) -> DemoWorld:
    return DemoWorld(seed=11, brands=(BENCH_BRAND,), campaigns=(), start=END - timedelta(days=days))


def sample_mentions(count: int) -> list:
    world = bench_world(days=count / BENCH_BRAND.mentions_per_day * 1.3 + 1)
    out = []
    for mention in world.mentions_between("Benchly", world.start, END):
        out.append(mention)
        if len(out) == count:
            break
    return out


def cpu_of(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn()`` in this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_child(command: list[str]) -> tuple[str, float, float]:
    """(stdout, wall, CPU seconds) of a child process. The benchmark runs one child at a
    time, so the growth of RUSAGE_CHILDREN is this child's, with the children it waited
    for (scoring workers)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} ... failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.stdout, wall, cpu


def bench_scoring(texts: list[str]) -> dict:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    scorer = VaderScorer()
    reference, ours = [], []
    for _ in range(3):  # interleaved so machine noise hits both alike; CPU seconds, as the load moves wall time
        reference.append(cpu_of(lambda: [analyzer.polarity_scores(t) for t in texts])[1])
        ours.append(cpu_of(lambda: scorer.score(texts))[1])
    ref_rate, our_rate = len(texts) / min(reference), len(texts) / min(ours)
    return {"figure": "scoring (CPU)", "unit": "texts/s", "value": round(our_rate), "reference": round(ref_rate),
            "ratio": round(our_rate / ref_rate, 3), "target": ">= 3", "ok": our_rate / ref_rate >= 3,
            "n": len(texts)}


def bench_saving(mentions: list, batch_size: int, workdir: Path) -> list[dict]:
    """Both sides start from the same Mention objects and convert them with the same
    functions, so the ratio isolates what saving adds to a bare insert: de-duplication,
    the transaction, pending-hour marks and the cursor. Conversion is its own figure."""
    import duckdb

    from analysis.scorers import single_set  # noqa: PLC0415 - not in the children (above)

    scorer = VaderScorer()
    batches = [mentions[i:i + batch_size] for i in range(0, len(mentions), batch_size)]
    scored = [(b, scorer.score([m.text for m in b])) for b in batches]
    now = datetime.now(timezone.utc)

    started = time.perf_counter()
    for batch, batch_scores in scored:
        mentions_table(batch), scores_table(batch, [single_set(scorer.name, scorer.version, batch_scores)], now)
    conversion = time.perf_counter() - started

    con = duckdb.connect(str(workdir / "reference.duckdb"))
    con.register("m0", mentions_table(batches[0][:1]))
    con.register("s0", scores_table(batches[0][:1], [single_set(scorer.name, scorer.version, scored[0][1][:1])], now))
    con.execute("CREATE TABLE mentions AS SELECT * FROM m0 WHERE false")
    con.execute("CREATE TABLE scores AS SELECT * FROM s0 WHERE false")
    started = time.perf_counter()
    for batch, batch_scores in scored:
        con.execute("BEGIN")
        con.register("bm", mentions_table(batch))
        con.register("bs", scores_table(batch, [single_set(scorer.name, scorer.version, batch_scores)], now))
        con.execute("INSERT INTO mentions SELECT * FROM bm")
        con.execute("INSERT INTO scores SELECT * FROM bs")
        con.execute("COMMIT")
    reference = time.perf_counter() - started
    con.close()

    store = Store.open(workdir / "ours.duckdb")
    timings = []
    for _ in range(2):  # first pass stores everything, the second finds only duplicates
        started = time.perf_counter()
        for index, (batch, batch_scores) in enumerate(scored):
            store.save_batch(batch, batch_scores, source="demo", brand="Benchly", checkpoint={"batch": index},
                             scorer=scorer.name, scorer_version=scorer.version, now=now)
        timings.append(time.perf_counter() - started)
    store.close()
    n = len(mentions)
    return [
        {"figure": "saving new rows", "unit": "rows/s", "value": round(n / timings[0]),
         "reference": round(n / reference), "ratio": round(reference / timings[0], 3), "target": ">= 0.5",
         "ok": reference / timings[0] >= 0.5, "n": n, "batch_size": batch_size},
        {"figure": "saving duplicates", "unit": "rows/s", "value": round(n / timings[1]),
         "reference": round(n / reference), "ratio": round(reference / timings[1], 3), "target": ">= 0.5",
         "ok": reference / timings[1] >= 0.5, "n": n, "batch_size": batch_size},
        {"figure": "Arrow conversion", "unit": "us/row", "value": round(1e6 * conversion / n, 2),
         "reference": None, "ratio": None, "target": "(part of both)", "ok": True, "n": n},
    ]


def e2e_child(count: int, path: str) -> None:
    """Runs in a child process so its peak RSS is its own."""
    from listener.pipeline import Pipeline

    days = count / BENCH_BRAND.mentions_per_day
    world = bench_world(days)
    store = Store.open(path)
    connector = DemoConnector(world, lambda: END, history_days=days, batch_hours=6)
    started = time.perf_counter()
    result = Pipeline(store, VaderScorer(), lambda: END).pull(connector, BrandQuery("Benchly", terms=("benchly",)))
    seconds = time.perf_counter() - started
    store.close()
    print(json.dumps({"mentions": result.new, "seconds": seconds, "peak_rss_mb": peak_rss_kb() / 1024}))


def peak_rss_kb() -> float:
    """This process's own peak RSS. Not ru_maxrss: on Linux it survives execve, so a child
    would report the forked image of the benchmark parent (200k sample mentions) if that
    was larger. VmHWM belongs to the current address space and starts afresh at exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def bare_cpu_rate(texts: list[str]) -> float:
    """Texts per CPU second of a bare vaderSentiment ``polarity_scores`` loop: the
    reference library's scorer alone, on one core."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    polarity = SentimentIntensityAnalyzer().polarity_scores
    _, cpu = cpu_of(lambda: [polarity(t) for t in texts])
    return len(texts) / cpu


def write_import_file(count: int, path: Path) -> list[str]:
    """``count`` demo-stream mentions of IMPORT_BRANDS, oldest first, as the project's JSONL
    without ``lang`` (detection then runs as for most exports); their texts."""
    per_day = sum(b.mentions_per_day for b in IMPORT_BRANDS)
    days = count / per_day * 1.3 + 1
    world = DemoWorld(seed=11, brands=IMPORT_BRANDS, campaigns=(), start=END - timedelta(days=days))
    rows = sorted((m for b in IMPORT_BRANDS for m in world.mentions_between(b.name, world.start, END)),
                  key=lambda m: m.created_at)[-count:]
    with path.open("w", encoding="utf-8") as handle:
        for m in rows:
            handle.write(json.dumps({"id": m.id, "created_at": m.created_at.isoformat(), "text": m.text,
                                     "author": m.author, "url": m.url, "conversation_id": m.conversation_id,
                                     "parent_id": m.parent_id, "metrics": dict(m.metrics)}) + "\n")
    return [m.text for m in rows]


def import_config(folder: Path) -> Path:
    config = folder / "import.toml"
    brands = "".join(f'[[brands]]\nname = "{b.name}"\nterms = ["{b.slug}"]\n\n' for b in IMPORT_BRANDS)
    config.write_text(f'[database]\npath = "import.duckdb"\n\n{brands}', encoding="utf-8")
    return config


def peer_child(file: str, db: str) -> None:
    """The open-source peers' pattern, as a reference: read the file line by line with
    json, match each brand's terms with a regex, score with vaderSentiment, insert into
    SQLite with ``executemany`` in batches. Prints rows stored."""
    import re
    import sqlite3

    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    polarity = SentimentIntensityAnalyzer().polarity_scores
    patterns = [(b.name, re.compile(r"\b" + re.escape(b.slug) + r"\b", re.IGNORECASE)) for b in IMPORT_BRANDS]
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE IF NOT EXISTS mentions (id TEXT, brand TEXT, created_at TEXT, text TEXT, author TEXT, "
                "url TEXT, likes INTEGER, compound REAL, pos REAL, neu REAL, neg REAL, PRIMARY KEY (id, brand))")
    batch, stored = [], 0
    with open(file, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            text = row["text"]
            brands = [name for name, pattern in patterns if pattern.search(text)]
            if not brands:
                continue
            score = polarity(text)
            for brand in brands:
                batch.append((row["id"], brand, row["created_at"], text, row.get("author"), row.get("url"),
                              row.get("metrics", {}).get("likes", 0), score["compound"], score["pos"],
                              score["neu"], score["neg"]))
            if len(batch) >= PEER_BATCH:
                con.executemany("INSERT OR IGNORE INTO mentions VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
                con.commit()
                stored += len(batch)
                batch = []
    con.executemany("INSERT OR IGNORE INTO mentions VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
    con.commit()
    print(json.dumps({"rows": stored + len(batch)}))


def bench_import(count: int, workers: int, workdir: Path, log) -> list[dict]:
    folder = workdir / "import"
    folder.mkdir()
    file = folder / "mentions.jsonl"
    log(f"import: writing {count:,} mentions of {len(IMPORT_BRANDS)} brands without lang ...")
    texts = write_import_file(count, file)
    log(f"import: bare polarity_scores over the same {len(texts):,} texts ...")
    bare = bare_cpu_rate(texts)
    listener = str(Path(sys.executable).with_name("listener"))
    command = [listener, "--config", str(import_config(folder)), "import", str(file), "--source", "file", "--json"]
    figures = []
    for n_workers in sorted({1, workers}):
        (folder / "import.duckdb").unlink(missing_ok=True)
        log(f"import: listener import --workers {n_workers} ...")
        out, wall, cpu = run_child(command + ["--workers", str(n_workers)])
        stored = sum(r["new"] for r in json.loads(out)["runs"])
        rate = count / (cpu if n_workers == 1 else wall)
        basis = "CPU, one core" if n_workers == 1 else f"wall, {n_workers} workers"
        figures.append({
            "figure": f"import {count // 1000}k no lang ({basis})", "unit": "mentions/s", "value": round(rate),
            "reference": round(bare), "ratio": round(rate / bare, 3),
            "target": ">= 1.0 of bare polarity_scores (2 cores, --workers 2)", "ok": rate / bare >= 1.0,
            "n": count, "stored": stored, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "workers": n_workers})
    log("import: the peers' script (json + regex + vaderSentiment + SQLite executemany) ...")
    out, peer_wall, peer_cpu = run_child([sys.executable, __file__, "--peer-child", str(file), str(folder / "peer.db")])
    ours = figures[0]
    ratio = peer_cpu / ours["cpu_s"]
    figures.append({
        "figure": f"import {count // 1000}k vs peers' script (CPU)", "unit": "mentions/s", "value": ours["value"],
        "reference": round(count / peer_cpu), "ratio": round(ratio, 3), "target": ">= 2.5", "ok": ratio >= 2.5,
        "n": count, "peer_rows": json.loads(out)["rows"], "peer_wall_s": round(peer_wall, 1),
        "peer_cpu_s": round(peer_cpu, 1)})
    return figures


def bench_e2e(count: int, bare_rate: float, workdir: Path) -> list[dict]:
    out, wall, cpu = run_child([sys.executable, __file__, "--e2e-child", str(count), str(workdir / "e2e.duckdb")])
    child = json.loads(out.strip().splitlines()[-1])
    rate = child["mentions"] / cpu
    return [
        {"figure": f"end-to-end ingest {count / 1e6:g}M (CPU)", "unit": "mentions/s", "value": round(rate),
         "reference": round(bare_rate), "ratio": round(rate / bare_rate, 3),
         "target": ">= 1.0 of bare polarity_scores", "ok": rate / bare_rate >= 1.0, "n": child["mentions"],
         "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)},
        {"figure": f"end-to-end peak RSS {count / 1e6:g}M", "unit": "MB", "value": round(child["peak_rss_mb"]),
         "reference": None, "ratio": None, "target": "< 500", "ok": child["peak_rss_mb"] < 500,
         "n": child["mentions"]},
    ]


def machine() -> dict:
    """What the figures were measured on, and how busy it was."""
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(),
            "cpu": model, "system": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "load_average": [round(x, 1) for x in os.getloadavg()]}


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, (int, float)) else str(value)


def render(figures: list[dict], where: dict, command: str) -> str:
    """The Performance table for docs/performance.md, from one run's figures."""
    lines = [
        f"Measured by `{command}` on {where['date']}: {where['cpus']} cores ({where['cpu'] or where['system']}), "
        f"{where['system']}, Python {where['python']}, load average {where['load_average'][0]} at the start and "
        f"{where['load_average_end'][0]} at the end (the machine is shared; ratios are taken within the run, CPU "
        "seconds where marked, so they move less than the rates).",
        "",
        "| figure | measured | reference, same run | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        value = "-" if f["value"] is None else f"{_cell(f['value'])} {f['unit']}"
        ratio = "" if f["ratio"] is None else f"{f['ratio']:.2f}"
        lines.append(f"| {f['figure']} | {value} | {_cell(f['reference'])} | {ratio} | {f['target']} "
                     f"| {'yes' if f['ok'] else '**no**'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke check)")
    parser.add_argument("--e2e-mentions", type=int, default=None, help="mentions for the end-to-end run (1M)")
    parser.add_argument("--import-mentions", type=int, default=None, help="mentions in the imported file (200k)")
    parser.add_argument("--import-workers", type=int, default=2,
                        help="also time the import with this many workers (wall time; default 2, 1 = not)")
    parser.add_argument("--snapshot-mentions", type=int, default=None, help="snapshot publishing size (1M)")
    parser.add_argument("--big", action="store_true", help="snapshot publishing at 10M mentions too")
    parser.add_argument("--scale", action="store_true",
                        help="add the scale figures (bench/scale.py): rollup, mood and live-view queries on "
                             "10M mentions, scoring with --workers")
    parser.add_argument("--workers", type=int, default=None, help="worker processes for --scale (default: CPUs)")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"rewrite the {DOCS_BLOCK} block of docs/performance.md with this run's table")
    parser.add_argument("--e2e-child", nargs=2, metavar=("COUNT", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--peer-child", nargs=2, metavar=("FILE", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.e2e_child:
        e2e_child(int(args.e2e_child[0]), args.e2e_child[1])
        return 0
    if args.peer_child:
        peer_child(*args.peer_child)
        return 0

    from bench import learned_speed, vader_speed  # noqa: PLC0415 - not in the children (above)
    from bench import snapshot as snapshot_bench  # noqa: PLC0415
    from docs.readme_figures import write_block  # noqa: PLC0415

    where = machine()
    score_n, save_n = (5_000, 20_000) if args.quick else (40_000, 200_000)
    e2e_n = args.e2e_mentions or (20_000 if args.quick else 1_000_000)
    import_n = args.import_mentions or (10_000 if args.quick else 200_000)
    snapshot_n = args.snapshot_mentions or (100_000 if args.quick else 1_000_000)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    mentions = sample_mentions(max(score_n, save_n))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        log(f"scoring {score_n:,} texts ...")
        scoring = bench_scoring([m.text for m in mentions[:score_n]])
        exact = vader_speed.run(1_000 if args.quick else 5_000, 2 if args.quick else 3, log)
        learned = learned_speed.run(2 if args.quick else 3, log)
        log(f"saving {save_n:,} mentions ...")
        saving = bench_saving(mentions[:save_n], 5_000, workdir)
        imported = bench_import(import_n, args.import_workers, workdir, log)
        log(f"end to end, {e2e_n:,} mentions (child process) ...")
        e2e = bench_e2e(e2e_n, bare_cpu_rate([m.text for m in mentions[:score_n]]), workdir)
        snapshots = snapshot_bench.run(workdir, log, (snapshot_n,) + ((10_000_000,) if args.big else ()))
        scale = []
        if args.scale:
            from bench import scale as scale_bench

            scale = scale_bench.run([m.text for m in mentions[:score_n]], workdir, log,
                                    big=1_000_000 if args.quick else 10_000_000,
                                    small=100_000 if args.quick else 1_000_000, workers=args.workers)
    figures = [scoring, *exact, *learned, *saving, *imported, *e2e, *snapshots, *scale]
    where["load_average_end"] = [round(x, 1) for x in os.getloadavg()]
    if args.write_docs:
        command = "python bench/run.py " + " ".join(a for a in sys.argv[1:] if a != "--json")
        text = DOCS_PAGE.read_text(encoding="utf-8")
        DOCS_PAGE.write_text(write_block(text, DOCS_BLOCK, render(figures, where, command.strip())), encoding="utf-8")
        log(f"rewrote the {DOCS_BLOCK} block of {DOCS_PAGE}")
    if args.json:
        print(json.dumps({"machine": where, "figures": figures}, indent=2))
    else:
        print(f"{'figure':<52}{'value':>12} {'unit':<11}{'reference':>11}{'ratio':>8}  {'target':<40}ok")
        for f in figures:
            ref = "" if f["reference"] is None else f"{f['reference']:,}"
            ratio = "" if f["ratio"] is None else f"{f['ratio']:.2f}"
            value = "-" if f["value"] is None else f"{f['value']:,}"
            print(f"{f['figure']:<52}{value:>12} {f['unit']:<11}{ref:>11}{ratio:>8}  {f['target']:<40}"
                  f"{'yes' if f['ok'] else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
