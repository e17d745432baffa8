"""Scale figures for ``python bench/run.py --scale`` (issue 7's targets).

* hourly rollup after one new hour on a 10M-mention database, and the same on 1M: the
  cost must follow the new data, not the database (target < 1 s, and 10M/1M near 1);
* ``listener mood``'s queries on 10M (target < 100 ms each brand);
* the live view's queries on 10M (bench/live_view.py, target < 100 ms each);
* scoring with N worker processes against N times the single-process rate (>= 0.8).

The databases come from bench/bigdb.py (cached under bench/.cache/; the first run builds
them, a few minutes for 10M). Work that writes runs on a copy.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.parallel_scoring import worker_pool, worker_vader  # noqa: E402
from analysis.sentiment import VaderScorer  # noqa: E402
from bench import bigdb  # noqa: E402
from connectors.base import Mention  # noqa: E402
from listener.pipeline import Pipeline  # noqa: E402
from storage.rollup import rollup_pending  # noqa: E402
from storage.store import Store  # noqa: E402

NEW_HOUR_MENTIONS = 2_000  # a busy hour for five brands
TEXTS = ["{b} is great, love it", "{b} support is awful", "picked up {b} today", "{b} price went up again"]


def figure(name: str, unit: str, value: float, target: str, ok: bool, reference: float | None = None,
           ratio: float | None = None, n: int | None = None) -> dict:
    return {"figure": name, "unit": unit, "value": value, "reference": reference, "ratio": ratio,
            "target": target, "ok": ok, "n": n}


def new_hour(hour_start, brands: list[str], count: int, tag: str) -> dict[str, list[Mention]]:
    by_brand: dict[str, list[Mention]] = {b: [] for b in brands}
    for i in range(count):
        brand = brands[i % len(brands)]
        at = hour_start + timedelta(seconds=(i * 3600) // count)
        by_brand[brand].append(Mention(
            source="x", id=f"{tag}-{i}", brand=brand, created_at=at, text=TEXTS[i % 4].format(b=brand),
            author=f"u{i}", conversation_id=f"{tag}-{i // 4}", metrics={"likes": i % 7},
        ))
    return by_brand


def rollup_after_new_hours(source_db: Path, workdir: Path, brands: list[str], repeats: int = 3) -> float:
    """Median seconds of rollup_pending after saving one new hour of mentions."""
    copy = workdir / f"rollup-{source_db.stem}.duckdb"
    shutil.copyfile(source_db, copy)
    scorer = VaderScorer()
    timings = []
    with Store.open(copy) as store:
        for r in range(repeats):
            hour = bigdb.END + timedelta(hours=r)
            for brand, mentions in new_hour(hour, brands, NEW_HOUR_MENTIONS, f"new{r}").items():
                store.save_batch(mentions, scorer.score([m.text for m in mentions]), source="x", brand=brand,
                                 checkpoint=None, scorer=scorer.name, scorer_version=scorer.version, now=hour)
            started = time.perf_counter()
            rollup_pending(store)
            timings.append(time.perf_counter() - started)
    copy.unlink()
    return statistics.median(timings)


def mood_ms(db: Path, brands: list[str], repeats: int = 5) -> float:
    """The slowest brand's median time of ``listener mood``'s three windows."""
    worst = 0.0
    with Store.open(db, read_only=True) as store:
        pipeline = Pipeline(store, VaderScorer(), lambda: bigdb.END)
        for brand in brands:
            pipeline.mood(brand, as_of=bigdb.END)  # warm the buffer pool, as a running view would be
            runs = []
            for _ in range(repeats):
                started = time.perf_counter()
                pipeline.mood(brand, as_of=bigdb.END)
                runs.append(time.perf_counter() - started)
            worst = max(worst, statistics.median(runs))
    return worst * 1000


def scoring_with_workers(texts: list[str], workers: int) -> tuple[float, float]:
    """(single-process texts/s, N-worker texts/s) over the same texts, in batches of 5,000."""
    single = VaderScorer()
    started = time.perf_counter()
    single.score(texts)
    single_rate = len(texts) / (time.perf_counter() - started)
    # The import's worker pool (listener.ingest), each worker scoring a slice of a batch.
    with worker_pool(workers) as pool:
        list(pool.map(score_slice, [texts[:500]] * workers))  # start the workers and load their lexicons
        started = time.perf_counter()
        for i in range(0, len(texts), 5_000):
            batch = texts[i:i + 5_000]
            size = -(-len(batch) // workers)
            list(pool.map(score_slice, [batch[j:j + size] for j in range(0, len(batch), size)]))
        parallel_rate = len(texts) / (time.perf_counter() - started)
    return single_rate, parallel_rate


def score_slice(texts: list[str]) -> int:
    """A worker's part of a batch (module level: workers import it by name)."""
    return len(worker_vader().score(texts))


def live_view_figures(db_mentions: int) -> list[dict]:
    script = ROOT / "bench" / "live_view.py"
    out = subprocess.run([sys.executable, str(script), "--json", "--mentions", str(db_mentions)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return [figure("live view queries", "ms", float("nan"), "< 100", False, n=db_mentions)
                | {"error": out.stderr.strip()[-500:]}]
    data = json.loads(out.stdout)
    return [figure(f"live view: {q['query']}", "ms", q["median_ms"], "< 100", q["median_ms"] < 100, n=db_mentions)
            for q in data["queries"] if q["target_ms"] is not None] + [
        figure("live view: windows agree with mentions", "", int(data["mood_windows_agree"]), "1",
               bool(data["mood_windows_agree"]))]


def run(texts: list[str], workdir: Path, log, big: int = 10_000_000, small: int = 1_000_000,
        workers: int | None = None) -> list[dict]:
    workers = workers or max(2, os.cpu_count() or 2)
    brands = bigdb.brand_names(5)
    big_db = bigdb.cached(mentions=big, log=log)
    small_db = bigdb.cached(mentions=small, log=log)
    log(f"rollup after one new hour ({NEW_HOUR_MENTIONS:,} mentions) at {big:,} and {small:,} ...")
    at_big = rollup_after_new_hours(big_db, workdir, brands)
    at_small = rollup_after_new_hours(small_db, workdir, brands)
    log(f"mood queries at {big:,} ...")
    mood = mood_ms(big_db, brands)
    log("live-view queries ...")
    live = live_view_figures(big)
    log(f"scoring with {workers} workers ...")
    single_rate, parallel_rate = scoring_with_workers(texts, workers)
    ratio = parallel_rate / (workers * single_rate)
    return [
        figure(f"rollup, new hour @{big // 1_000_000}M", "s", round(at_big, 3), "< 1", at_big < 1,
               n=NEW_HOUR_MENTIONS),
        figure(f"rollup, new hour @{small // 1_000_000}M", "s", round(at_small, 3), "(reference)", True,
               n=NEW_HOUR_MENTIONS),
        figure(f"rollup {big // 1_000_000}M vs {small // 1_000_000}M", "x", round(at_big / at_small, 2),
               "<= 2 (cost follows new data)", at_big / at_small <= 2, reference=round(at_small, 3),
               ratio=round(at_big / at_small, 2)),
        figure(f"mood windows @{big // 1_000_000}M", "ms", round(mood, 1), "< 100", mood < 100, n=big),
        *live,
        figure(f"scoring, {workers} workers", "texts/s", round(parallel_rate), f">= 0.8 of {workers}x single",
               ratio >= 0.8, reference=round(workers * single_rate), ratio=round(ratio, 3), n=len(texts)),
    ]
