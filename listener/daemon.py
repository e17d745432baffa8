"""``listener run``: scheduled collection and the hourly stage, until SIGTERM/SIGINT.

Jobs (APScheduler 3.x, one background scheduler, a small thread pool):

* ``pull:SOURCE:BRAND`` every ``sources.SOURCE.every_minutes``, first run at start-up so
  the daemon catches up from the saved cursors after downtime;
* ``hourly`` at ``hourly.minute`` past each hour, and once at start-up for hours left
  pending by an earlier run;
* ``rescore`` while a brand's history is being re-scored for a promotion or rollback
  (listener.rescoring): one chunk per run, then the hours it marked; it pauses itself
  while it runs, so it never overlaps itself, and pulls go on between its chunks;
* ``model-requests`` every few seconds: applies the ``listener model train|promote|
  rollback`` requests queued while the daemon holds the database (storage.models).
  Training runs as a job of its own; after a promotion or rollback the pipeline's scoring
  is rebuilt, so new mentions are scored by the brand's new chain at once.

Every job coalesces missed runs into one, never runs twice at once, and pulls are
jittered so sources and brands do not all fire in the same second.

Shutdown: a signal sets a stop flag; running pulls finish the batch they are storing
(each batch is one transaction) and end as "stopped"; the scheduler waits for them;
the database is closed; exit 0. A second daemon on the same database cannot open the
file (DuckDB's lock) and exits with a message saying so.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from analysis.alert_evaluation import floor_hour
from connectors.base import Clock, Connector, utc_now
from listener.alerting import Deliveries, run_alerts
from listener.config import BrandSettings, Settings
from listener.pipeline import Pipeline
from listener.policy import HANDLED, Action, treatment
from listener.rescoring import RefusedError, promote, rescore_chunk, rollback, train_brand
from listener.scoring import build_scoring
from listener.sources import OpenSources
from storage.errors import LeaseLostError
from storage.labels import has_queued
from storage.models import ModelRequest, describe, has_requests, labelled_brands, rescore_jobs, take_requests
from storage.snapshot import publish_snapshot
from storage.store import Store

if TYPE_CHECKING:
    from listener.cluster import Coordinator

log = logging.getLogger("listener")

# Up to this share of a pull interval (at most a minute) is added at random to each run.
JITTER_SHARE = 0.1
MAX_JITTER_SECONDS = 60
# How often queued model requests are looked for (a stat of one file), and the pause
# between two chunks of a re-score, in which pulls and the hourly stage get the database.
REQUESTS_EVERY_SECONDS = 5
# How often a daemon tries the lake publisher's role (database.lake): a round with
# nothing new is one lease and one index lookup in PostgreSQL.
LAKE_EVERY_SECONDS = 60
RESCORE_PAUSE_SECONDS = 1
# The hourly stage's period: in cluster mode one daemon runs it (and alerting) per hour.
HOUR_SECONDS = 3600


class Daemon:
    def __init__(self, settings: Settings, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.stop_requested = threading.Event()
        self.store: Store | None = None
        self.sources = OpenSources()
        # Cluster mode (database.url): pulls are leased from PostgreSQL (listener.cluster).
        self.cluster: Coordinator | None = None
        self._lake_rounds = 0
        # Jobs in flight; the snapshot is published when the last one ends, so a reader
        # sees whole runs (storage.snapshot). Long or overlapping jobs would starve
        # readers, so past settings.snapshot_max_age_seconds (15 by default: a copy of a
        # 10M-mention file takes ~0.3 s, 2 % of that) it is also published between batches:
        # it then holds whole batches and shows the unfinished runs as running.
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._published_at = time.monotonic()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone="UTC",
        )

    def request_stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        if not self.stop_requested.is_set():
            log.info("stop requested%s: finishing the batch in flight", f" (signal {signum})" if signum else "")
        self.stop_requested.set()

    def run(self) -> int:
        """Run until a stop is requested; returns the process exit code."""
        if not self.settings.brands:
            log.error("no brands configured: nothing to listen for")
            return 2
        if self.settings.cluster is not None:
            from listener.cluster import Coordinator  # noqa: PLC0415 - psycopg: the [cluster] extra only

            self.cluster = Coordinator(self.settings.cluster)  # a missing password fails here, before any write
        self.store = Store.open(self.settings.database)
        self.pipeline = Pipeline(self.store, build_scoring(self.settings, self.store), self.clock)
        self.sources = self.pipeline.start_sources(self.settings)
        if self.cluster is not None:
            self.cluster.start(((name, brand.name) for name in self.sources.connectors for brand in self.settings.brands),
                               [(self.settings.source(name), c) for name, c in self.sources.connectors.items()])
            # Batches this file lacks (a crash between the two commits, others' pulls).
            caught = self.cluster.catch_up(self.pipeline, self.stop_requested.is_set)
            log.info("cluster: caught up %d mention(s) committed to PostgreSQL that this file lacked", caught)
        self._publish()  # readers have a snapshot from the start, before the first job ends
        for name, connector in self.sources.connectors.items():
            source = self.settings.source(name)
            jitter = min(MAX_JITTER_SECONDS, int(source.every_minutes * 60 * JITTER_SHARE))
            for brand in self.settings.brands:
                self.scheduler.add_job(
                    self._pull, IntervalTrigger(minutes=source.every_minutes, jitter=jitter or None),
                    args=[name, brand], id=f"pull:{name}:{brand.name}", name=f"pull {name} {brand.name}",
                    next_run_time=self.clock(),
                )
        if self.settings.hourly.enabled:
            self.scheduler.add_job(
                self._hourly, CronTrigger(minute=self.settings.hourly.minute), id="hourly", name="hourly stage",
                next_run_time=self.clock(),
            )
        self.scheduler.add_job(self._model_requests, IntervalTrigger(seconds=REQUESTS_EVERY_SECONDS),
                               id="model-requests", name="model requests")
        if self.settings.cluster is not None and self.settings.cluster.lake is not None:
            # The lake's publisher (listener.lake): one daemon at a time holds the role.
            self.scheduler.add_job(self._publish_lake, IntervalTrigger(seconds=LAKE_EVERY_SECONDS), id="lake",
                                   name="lake publisher", next_run_time=self.clock())
        if rescore_jobs(self.store):
            self._schedule_rescore()  # one left unfinished by an earlier run resumes
        log.info(
            "listening: %d brand(s), sources %s%s; database %s",
            len(self.settings.brands), ", ".join(self.sources.connectors) or "none",
            f" (parked: {', '.join(self.sources.parked)})" if self.sources.parked else "",
            self.settings.database,
        )
        self.scheduler.start()
        try:
            self.stop_requested.wait()
        finally:
            self.scheduler.shutdown(wait=True)
            self.sources.close()
            if self.cluster is not None:
                self.cluster.close()
            self.store.close()
            log.info("stopped")
        return 0

    @contextmanager
    def _cycle(self) -> Iterator[None]:
        """One job: on the way out, apply queued labels and, when no other job is in
        flight, publish the snapshot."""
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1
                quiet = self._in_flight == 0
            if quiet:
                self._apply_labels()
            if quiet:
                self._publish()
            else:
                self._publish_if_stale()

    def _publish_if_stale(self) -> None:
        """Called between batches and at job ends: keeps readers' snapshot fresh while
        jobs overlap or one pull runs long (a backfill, an X pull waiting on its quota)."""
        if time.monotonic() - self._published_at > self.settings.snapshot_max_age_seconds:
            self._publish()

    def _pull(self, source: str, brand: BrandSettings) -> None:
        connector = self.sources.connectors.get(source)
        if connector is None or self.stop_requested.is_set():
            return
        with self._cycle():
            if self.cluster is None:
                self._collect(source, brand, connector, self.pipeline)
                return
            leased = self.cluster.leased(self.settings.source(source), brand.name, self.pipeline, self.stop_requested.is_set)
            with leased as pipeline:
                if pipeline is not None:  # else another daemon holds the job, or ran it lately
                    self._collect(source, brand, connector, pipeline)

    def _collect(self, source: str, brand: BrandSettings, connector: Connector, pipeline: Pipeline) -> None:
        try:
            pipeline.collect(connector, brand.query, should_stop=self.stop_requested.is_set,
                             progress=lambda _: self._publish_if_stale())
        except LeaseLostError as exc:
            log.warning("pull %s %s stopped: %s", source, brand.name, exc)  # its new holder resumes it
        except HANDLED as exc:
            # What a failed pull means is the policy's, as in ``listener pull``.
            action = treatment(exc).action
            if action is Action.PARK_SOURCE:
                self.sources.park(source, str(exc))
                for job in self.scheduler.get_jobs():
                    if job.id.startswith(f"pull:{source}:"):
                        job.remove()
            elif action is Action.PARK_QUERY:
                # Only this brand's query is at fault: its other sources and brands go on.
                log.error("pull %s %s stopped until the config is fixed: %s", source, brand.name, exc)
                self.scheduler.remove_job(f"pull:{source}:{brand.name}")
            elif action is Action.FAIL:
                log.error("pull %s %s failed: %s; the next run tries again", source, brand.name, exc)
            # RETRY: logged and recorded by the pipeline; the next run resumes from the cursor.
        except Exception:
            log.exception("pull %s %s failed unexpectedly", source, brand.name)

    def _hourly(self) -> None:
        if self.stop_requested.is_set():
            return
        with self._cycle():
            if self.cluster is None:
                if self._score_hours():
                    self._alerts()
                return
            self._hourly_in_cluster()

    def _hourly_in_cluster(self) -> None:
        """The hourly stage and alerting, in one daemon per hour across the cluster (their
        stage leases): its file first catches up with what the others committed, so its
        hours and alerts cover every brand. A holder that lost a stage's lease (paused
        past it) has that work refused: it is not recorded and the next holder redoes it."""
        assert self.cluster is not None
        hour = floor_hour(self.clock()).isoformat()
        try:
            with self.cluster.stage("hourly", HOUR_SECONDS) as held:
                if held is None:
                    return  # another daemon holds it, or ran it this hour
                self.cluster.catch_up(self.pipeline, self.stop_requested.is_set)
                if not self._score_hours():
                    return
                held.done({"hour": hour})
                with self.cluster.stage("alerting", HOUR_SECONDS) as alerting:
                    if alerting is not None:
                        alerting.check()  # no delivery from a holder that lost the stage
                        # Delivered once cluster-wide, whichever daemon held the stage before.
                        self._alerts(alerting.deliveries())
                        alerting.done({"hour": hour})
        except LeaseLostError as exc:
            log.warning("stage stopped: %s; the stage's next holder redoes it", exc)
        except Exception:
            log.exception("hourly stage in the cluster failed; its next holder runs it again")

    def _score_hours(self) -> bool:
        try:
            # Chunk by chunk (storage.rollup): pulls go on between chunks, readers
            # see the chunks done, and a shutdown leaves the rest pending.
            self.pipeline.score_hours(should_stop=self.stop_requested.is_set,
                                      progress=lambda _: self._publish_if_stale())
        except Exception:
            log.exception("hourly stage failed; its hours stay pending for the next run")
            return False
        return True

    def _alerts(self, shared: Deliveries | None = None) -> None:
        try:
            result = run_alerts(self.store, self.settings, self.clock, shared=shared)
            for problem in result.problems:
                log.warning("alerts: %s", problem)
        except Exception:
            log.exception("alert detection failed; the hours are evaluated on the next run")

    def _apply_labels(self) -> None:
        """Apply labels queued while the daemon held the database (storage.labels) and
        recompute their hours at once, so the next snapshot shows them."""
        if not has_queued(self.store.path):
            return
        try:
            self.pipeline.score_hours(should_stop=self.stop_requested.is_set)  # applies the inbox first
        except Exception:
            log.exception("could not apply queued labels; they stay queued")

    # -- models: requests, training, re-scoring (listener.rescoring) -----------------------

    def _model_requests(self) -> None:
        if self.stop_requested.is_set() or not has_requests(self.store.path):
            return
        with self._cycle(), take_requests(self.store.path) as taken:
            for error in taken.errors:
                log.warning("model request not applied: %s", error)
            for request in taken.values:
                self._apply_model_request(request)

    def _apply_model_request(self, request: ModelRequest) -> None:
        try:
            if request.action == "train":
                # Training takes seconds to minutes: a job of its own, so requests and
                # pulls go on meanwhile.
                self.scheduler.add_job(self._train, args=[request.brand, request.promote],
                                       name=f"train {request.brand or 'every brand'}")
            else:
                self._change(request.action, request.brand, request.model)
        except RefusedError as exc:
            log.warning("model %s %s refused: %s", request.action, request.brand, exc)
        except Exception:
            log.exception("model %s %s failed", request.action, request.brand)

    def _change(self, kind: str, brand: str, version: str | None) -> None:
        if kind == "promote":
            change = promote(self.store, self.settings, brand, version, self.clock)
        else:
            change = rollback(self.store, self.settings, brand, self.clock)
        # New mentions are scored by the brand's new chain from now on.
        self.pipeline.scoring = build_scoring(self.settings, self.store)
        log.info("model %s brand=%s: %s in effect, replacing %s; re-scoring its history", kind, brand,
                 describe(change.active), describe(change.previous))
        self._schedule_rescore()

    def _train(self, brand: str | None, then_promote: bool) -> None:
        if self.stop_requested.is_set():
            return
        with self._cycle():
            for name in [brand] if brand else labelled_brands(self.store):
                try:
                    outcome = train_brand(self.store, name, self.clock)
                    if outcome.model is None:
                        log.warning("model train brand=%s: not trained: %s", name, outcome.short)
                        continue
                    log.info("model train brand=%s version=%s qualifies=%s: %s", name, outcome.model.version,
                             outcome.model.qualifies, outcome.model.evaluation.get("reason"))
                    if then_promote and outcome.model.qualifies:
                        self._change("promote", name, outcome.model.version)
                except Exception:
                    log.exception("model train brand=%s failed", name)

    def _schedule_rescore(self) -> None:
        if self.scheduler.get_job("rescore") is None:
            self.scheduler.add_job(self._rescore, IntervalTrigger(seconds=RESCORE_PAUSE_SECONDS), id="rescore",
                                   name="re-score history", next_run_time=self.clock(), replace_existing=True)

    def _rescore(self) -> None:
        """One chunk of the oldest re-score job, then the hours it marked."""
        if self.stop_requested.is_set():
            return
        # Paused while it runs: a tick during a long chunk would otherwise be a skipped run.
        self.scheduler.pause_job("rescore")
        more = failed = False
        with self._cycle():
            try:
                jobs = rescore_jobs(self.store)
                if jobs:
                    rescore_chunk(self.store, self.pipeline.scoring.for_brand(jobs[0].brand), jobs[0], self.clock)
                    self.pipeline.score_hours(should_stop=self.stop_requested.is_set)
                more = bool(rescore_jobs(self.store))
                if not more:  # inside the cycle: the snapshot published at its end shows it
                    log.info("rescore done: every brand's history is scored by its chain in effect")
            except Exception:
                # Not retried every second: it resumes from its last chunk at the next
                # start or the next promotion.
                log.exception("re-scoring failed; it resumes from its last chunk when the daemon restarts")
                failed = True
        if self.stop_requested.is_set():
            return  # the scheduler is shutting down; an unfinished job resumes at the next start
        if more and not failed:
            self.scheduler.resume_job("rescore")
        else:
            self.scheduler.remove_job("rescore")

    def _publish_lake(self) -> None:
        """Move what the cluster committed into the lake, unless another daemon holds the
        role; once an hour, also delete the files dead publishers left."""
        from listener.lake import publish  # noqa: PLC0415 - psycopg: the [cluster] extra only

        assert self.settings.cluster is not None
        self._lake_rounds += 1
        try:
            result = publish(self.settings.cluster, self.pipeline.scoring, self.clock,
                             should_stop=self.stop_requested.is_set,
                             clean=self._lake_rounds % (3600 // LAKE_EVERY_SECONDS) == 1)
            if result.rows:
                log.info("lake: published %d mention(s) in %d file(s)", result.rows, result.files)
        except LeaseLostError as exc:
            log.warning("lake publishing stopped: %s; the role's next holder publishes it", exc)
        except Exception:
            log.exception("lake publishing failed; the next round resumes from the committed cursor")

    def _publish(self) -> None:
        """Publish a snapshot for readers after each cycle (storage.snapshot)."""
        self._published_at = time.monotonic()
        try:
            publish_snapshot(self.store)
        except Exception:
            log.exception("could not publish the snapshot; readers keep the previous one")


def run_daemon(settings: Settings, clock: Clock = utc_now) -> int:
    # APScheduler logs every job start and end at INFO; our pipeline logs one line per run.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    daemon = Daemon(settings, clock)
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
    return daemon.run()
