"""How long the campaign report takes on a realistic database.

    python bench/report_speed.py [--json] [--days 90] [--per-day 1000]

Builds a database of 5 brands x 90 days x 1,000 mentions/day (450k mentions) from the
demo world, each brand with its own 14-day campaign, spend and plan, then times
``build_report`` for all five campaigns and the HTML rendering, against the target of
docs/roi-method.md's issue: under 10 s on 2 cores. Ingest is not timed (bench/run.py covers it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.sentiment import VaderScorer  # noqa: E402
from connectors.base import BrandQuery  # noqa: E402
from connectors.demo import DemoConnector  # noqa: E402
from demo.exports import write_google_ads_export, write_plan  # noqa: E402
from demo.world import Campaign, DemoBrand, DemoWorld  # noqa: E402
from inputs.plan import read_plan  # noqa: E402
from inputs.spend import read_spend  # noqa: E402
from listener.pipeline import Pipeline  # noqa: E402
from listener.report import build_report  # noqa: E402
from storage.campaigns import save_plans, save_spend  # noqa: E402
from storage.store import Store  # noqa: E402

END = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
TARGET_SECONDS = 10.0


def world(days: int, per_day: float) -> DemoWorld:
    brands = tuple(DemoBrand(f"Brand{i}", f"brand{i}", per_day, 10.0 + 3 * i, 0.6) for i in range(5))
    # Six-day flights 13 days apart: no brand's flight and washout overlap another's
    # flight, so difference-in-differences is not netting one lift against another.
    flight_end = END.date() - timedelta(days=12)
    campaigns = tuple(
        Campaign(f"9{i:04d}", f"Brand{i} flight", f"Brand{i}", flight_end - timedelta(days=5 + 13 * i),
                 flight_end - timedelta(days=13 * i), nss_lift=8.0, daily_spend=1000.0)
        for i in range(5)
    )
    return DemoWorld(seed=3, brands=brands, campaigns=campaigns, start=END - timedelta(days=days))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=float, default=1000.0)
    args = parser.parse_args()
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    market = world(args.days, args.per_day)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        store = Store.open(directory / "bench.duckdb")
        pipeline = Pipeline(store, VaderScorer(), lambda: END)
        connector = DemoConnector(market, lambda: END, history_days=args.days)
        log(f"building the database: 5 brands x {args.days} days x {args.per_day:,.0f}/day ...")
        for brand in market.brands:
            pipeline.pull(connector, BrandQuery(brand.name, terms=(brand.slug,)))
        pipeline.score_hours()
        save_spend(store, read_spend(write_google_ads_export(directory / "spend.csv", market)).rows, END)
        save_plans(store, read_plan(write_plan(directory / "plan.csv", market)), END)
        with store.native() as db:
            mentions = db.execute("SELECT count(*) FROM mentions").fetchone()[0]
        log("timing the report ...")
        started = time.perf_counter()
        report = build_report(store, END)
        built = time.perf_counter() - started
        store.close()
    from analysis.report_render import render_html

    started = time.perf_counter()
    html = render_html(report)
    rendered = time.perf_counter() - started
    total = built + rendered
    result = {
        "mentions": mentions, "campaigns": len(report.campaigns),
        "build_seconds": round(built, 2), "render_seconds": round(rendered, 2), "total_seconds": round(total, 2),
        "target_seconds": TARGET_SECONDS, "ok": total < TARGET_SECONDS, "html_bytes": len(html),
        "verdicts": [c.verdict for c in report.campaigns],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'mentions':<22}{mentions:>10,}")
        print(f"{'campaigns':<22}{result['campaigns']:>10}")
        print(f"{'build_report':<22}{built:>9.2f}s")
        print(f"{'render_html':<22}{rendered:>9.2f}s")
        print(f"{'total':<22}{total:>9.2f}s  target < {TARGET_SECONDS:.0f} s: {'yes' if result['ok'] else 'NO'}")
        print(f"{'verdicts':<22}{', '.join(result['verdicts'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
