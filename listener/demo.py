"""``listener demo``: the real pipeline on the built-in simulated source.

It loads the starter configuration (the same file ``listener init`` writes), pulls
60 days of simulated mentions per brand through the connector protocol, scores them,
stores them, runs the hourly stage, and writes the campaign's spend as a Google Ads
export beside the database. Everything runs offline.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from connectors.base import Clock
from connectors.demo import DemoConnector
from demo.exports import write_google_ads_export, write_plan, write_truth
from inputs.plan import read_plan
from inputs.spend import read_spend
from demo.world import REPLY_HORIZON_HOURS, default_world
from listener.config import Settings, parse_settings
from listener.errors import ListenerError
from listener.alerting import run_alerts
from listener.pipeline import MoodWindows, Pipeline, Progress
from listener.scoring import build_scoring
from listener.report import build_report, write_report_files
from analysis.roi.report import Report
from storage.campaigns import save_plans, save_spend
from storage.queries import MOOD_HISTORY, Provenance, mentions_per_brand, provenance
from storage.store import Store

DATABASE_NAME = "listener.duckdb"
SPEND_NAME = "google-ads-campaign-report.csv"
TRUTH_NAME = "demo-truth.json"
PLAN_NAME = "campaign-plan.csv"
REPORT_NAME = "report"
# Marks a database as the demo's, so a re-run may replace it and nothing else.
DEMO_MARKER = "demo_database"


@dataclass(frozen=True)
class DemoSummary:
    directory: Path
    database: Path
    spend_file: Path
    truth_file: Path
    mentions: dict[str, int]
    new: int
    mood: MoodWindows
    report: Report
    report_files: tuple[Path, ...]
    seconds: float
    alerts: int = 0
    mood_provenance: Provenance | None = None  # which scorers produced ``mood``


def starter_config_text() -> str:
    return files("listener").joinpath("starter.toml").read_text(encoding="utf-8")


def demo_settings(directory: Path) -> Settings:
    settings = parse_settings(tomllib.loads(starter_config_text()), base_dir=directory, origin="starter.toml")
    return dataclasses.replace(settings, database=directory / DATABASE_NAME)


def _clear_previous_demo(database: Path) -> None:
    if not database.exists():
        return
    # Read-only: a file that is not a listener database is refused untouched (exit 2),
    # and one that is, but not the demo's, is left as it was.
    store = Store.open(database, read_only=True)
    try:
        is_demo = store.version > 0 and store.get_meta(DEMO_MARKER) == "1"
    finally:
        store.close()
    if not is_demo:
        raise ListenerError(
            f"{database} exists and was not made by 'listener demo'; refusing to replace it "
            "(choose another --dir)"
        )
    for path in (database, database.with_name(database.name + ".wal")):
        path.unlink(missing_ok=True)


# Thirty days of a brand's simulated posts per batch: the demo stores the same rows as with
# daily batches (storage is idempotent and in order; bench/demo_speed.py compare), with
# a thirtieth of the per-batch work (a transaction, the already-stored and near-duplicate
# lookups). Weekly batches took a third less time than daily ones, monthly ~0.8 CPU-s
# less again, for ~25 MB more peak memory (a month of Brewly's ~24k posts at once).
BATCH_HOURS = 30 * 24
DEMO_CHECKPOINT = "1GB"  # far above the demo's ~100 MB of writes


def estimated_batches(settings: Settings) -> int:
    days = int(settings.source("demo").options["history_days"])
    return len(settings.brands) * (-(-days * 24 // BATCH_HOURS) + 1)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the demo, back as it was after. The demo allocates
    millions of short-lived objects (posts, mentions, scores, Arrow columns) while ~100k
    live ones (the world's generated hours, a batch's mentions) and every imported
    module's sit in the heap, and each of the collector's passes walked them: a fifth of
    the demo's CPU, for reclaiming next to nothing (the demo makes few reference cycles,
    and those are collected once the collector is back)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_demo(directory: Path, clock: Clock, progress: Progress | None = None) -> DemoSummary:
    """Build the demo database in ``directory`` (rebuilding an earlier demo's)."""
    with _collector_paused():
        return _run_demo(directory, clock, progress)


def _run_demo(directory: Path, clock: Clock, progress: Progress | None) -> DemoSummary:
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(directory)
    _clear_previous_demo(settings.database)
    options = settings.source("demo").options
    now = clock()
    world = default_world(end=now, seed=int(options["seed"]), days=int(options["history_days"]))
    # One brand's history (and a pull's look-back) in memory: the care brand's truth
    # (write_truth) and its pull then generate its posts once, not twice.
    world.hold_hours(int(options["history_days"]) * 24 + 2 * REPLY_HORIZON_HOURS + 24)
    spend_file = write_google_ads_export(directory / SPEND_NAME, world)
    plan_file = write_plan(directory / PLAN_NAME, world)
    truth_file = write_truth(directory / TRUTH_NAME, world, now)
    store = Store.open(settings.database)
    try:
        store.set_meta(DEMO_MARKER, "1")
        with store.native() as db:
            # The demo writes its whole database at once: one checkpoint, when the store
            # closes, in place of one per 16 MB of log (DuckDB's default), each of which
            # rewrote the tables' growing last row groups (~0.4 CPU-s; the file also
            # comes out a third smaller). It lasts while this process holds the file open.
            db.execute(f"SET checkpoint_threshold = '{DEMO_CHECKPOINT}'")
        pipeline = Pipeline(store, build_scoring(settings, store), clock)
        connector = DemoConnector(world, lambda: now, history_days=int(options["history_days"]),
                                  batch_hours=BATCH_HOURS)
        new = 0
        for brand in settings.brands:
            new += pipeline.pull(connector, brand.query, progress).new
        connector.close()
        pipeline.score_hours()
        alerts = len(run_alerts(store, settings, clock).opened)
        # The same path as 'listener campaigns import' and 'listener report'.
        save_spend(store, read_spend(spend_file).rows, now)
        save_plans(store, read_plan(plan_file), now)
        report = build_report(store, now, brands=settings.brands)
        counts = mentions_per_brand(store)
        mood = pipeline.mood(settings.brands[0].name, as_of=now)
        scored_by = provenance(store, mood.brand, now - MOOD_HISTORY, now)
    finally:
        store.close()
    report_files = write_report_files(report, directory / REPORT_NAME)
    return DemoSummary(
        directory=directory,
        database=settings.database,
        spend_file=spend_file,
        truth_file=truth_file,
        mentions=counts,
        new=new,
        mood=mood,
        report=report,
        report_files=report_files,
        seconds=time.perf_counter() - started,
        alerts=alerts,
        mood_provenance=scored_by,
    )
