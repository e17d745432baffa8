"""Speed and memory of the ingest path, as ratios against references measured in this run.

    python bench/run.py            # table
    python bench/run.py --json     # one JSON object: every figure, its reference, its target
    python bench/run.py --quick    # smaller sizes, for a smoke check
    python bench/run.py --scale    # adds bench/scale.py: 10M-mention rollup and queries, --workers

Figures:
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
* end to end: 1M demo-source mentions through Pipeline.pull into a fresh database, in a
  child process: mentions/s, its ratio to the scoring-only rate (target >= 0.6, i.e.
  scoring is most of the cost) and peak RSS (target < 500 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.sentiment import VaderScorer  # noqa: E402
from bench import learned_speed, vader_speed  # noqa: E402
from connectors.base import BrandQuery  # noqa: E402
from connectors.demo import DemoConnector  # noqa: E402
from demo.world import DemoBrand, DemoWorld  # noqa: E402
from analysis.scorers import single_set  # noqa: E402
from storage.store import Store, mentions_table, scores_table  # noqa: E402

END = datetime(2026, 11, 1, tzinfo=timezone.utc)
BENCH_BRAND = DemoBrand("Benchly", "benchly", 20_000.0, 15.0, 0.6)


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


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_scoring(texts: list[str]) -> dict:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    scorer = VaderScorer()
    reference, ours = [], []
    for _ in range(3):  # interleaved so machine noise hits both alike
        reference.append(best_of(1, lambda: [analyzer.polarity_scores(t) for t in texts]))
        ours.append(best_of(1, lambda: scorer.score(texts)))
    ref_rate, our_rate = len(texts) / min(reference), len(texts) / min(ours)
    return {"figure": "scoring", "unit": "texts/s", "value": round(our_rate), "reference": round(ref_rate),
            "ratio": round(our_rate / ref_rate, 3), "target": ">= 3", "ok": our_rate / ref_rate >= 3,
            "n": len(texts)}


def bench_saving(mentions: list, batch_size: int, workdir: Path) -> list[dict]:
    """Both sides start from the same Mention objects and convert them with the same
    functions, so the ratio isolates what saving adds to a bare insert: de-duplication,
    the transaction, pending-hour marks and the cursor. Conversion is its own figure."""
    import duckdb

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


def bench_e2e(count: int, scoring_rate: float, workdir: Path) -> list[dict]:
    out = subprocess.run(
        [sys.executable, __file__, "--e2e-child", str(count), str(workdir / "e2e.duckdb")],
        check=True, capture_output=True, text=True,
    )
    child = json.loads(out.stdout.strip().splitlines()[-1])
    rate = child["mentions"] / child["seconds"]
    return [
        {"figure": "end-to-end ingest", "unit": "mentions/s", "value": round(rate), "reference": round(scoring_rate),
         "ratio": round(rate / scoring_rate, 3), "target": ">= 0.6 of scoring-only rate",
         "ok": rate / scoring_rate >= 0.6, "n": child["mentions"]},
        {"figure": "end-to-end peak RSS", "unit": "MB", "value": round(child["peak_rss_mb"]), "reference": None,
         "ratio": None, "target": "< 500", "ok": child["peak_rss_mb"] < 500, "n": child["mentions"]},
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke check)")
    parser.add_argument("--e2e-mentions", type=int, default=None, help="mentions for the end-to-end run (1M)")
    parser.add_argument("--scale", action="store_true",
                        help="add the scale figures (bench/scale.py): rollup, mood and live-view queries on "
                             "10M mentions, scoring with --workers")
    parser.add_argument("--workers", type=int, default=None, help="worker processes for --scale (default: CPUs)")
    parser.add_argument("--e2e-child", nargs=2, metavar=("COUNT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.e2e_child:
        e2e_child(int(args.e2e_child[0]), args.e2e_child[1])
        return 0

    score_n, save_n = (5_000, 20_000) if args.quick else (40_000, 200_000)
    e2e_n = args.e2e_mentions or (20_000 if args.quick else 1_000_000)
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
        log(f"end to end, {e2e_n:,} mentions (child process) ...")
        e2e = bench_e2e(e2e_n, scoring["value"], workdir)
        scale = []
        if args.scale:
            from bench import scale as scale_bench

            scale = scale_bench.run([m.text for m in mentions[:score_n]], workdir, log,
                                    big=1_000_000 if args.quick else 10_000_000,
                                    small=100_000 if args.quick else 1_000_000, workers=args.workers)
    figures = [scoring, *exact, *learned, *saving, *e2e, *scale]
    if args.json:
        print(json.dumps({"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "figures": figures},
                         indent=2))
    else:
        print(f"{'figure':<30}{'value':>12} {'unit':<11}{'reference':>11}{'ratio':>8}  {'target':<32}ok")
        for f in figures:
            ref = "" if f["reference"] is None else f"{f['reference']:,}"
            ratio = "" if f["ratio"] is None else f"{f['ratio']:.2f}"
            print(f"{f['figure']:<30}{f['value']:>12,} {f['unit']:<11}{ref:>11}{ratio:>8}  {f['target']:<32}"
                  f"{'yes' if f['ok'] else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
