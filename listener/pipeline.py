"""The pipeline: the one module that knows connectors, analysis and storage.

    connector.fetch(query, cursor) -> Batch -> scorer.score(texts) -> store.save_batch(...)
    hourly: storage.rollup.rollup_pending (hourly mood + conversation scores)

The CLI, the demo and the daemon are thin shells over ``Pipeline``. Every pull and
rollup is recorded in the ``runs`` table, including how it failed; so is a source that
could not even start (no token, a refused setting: ``start_sources``).

Each run's outcome is logged on ``listener.runs``: the daemon's log shows it; a
command shows it with ``-v`` (without, the command reports the outcome itself).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from analysis.duplicates import WINDOW as DUPLICATE_WINDOW
from analysis.duplicates import fingerprint
from analysis.scorers import Scoring
from analysis.mood import Mood, mood_from_counts
from analysis.sentiment import Scorer
from connectors.base import BrandQuery, Clock, Connector, Cursor, Mention
from inputs.prepare import relevant_mentions
from listener.config import Settings, SourceSettings
from listener.sources import OpenSources, open_sources
from storage.alert_actions import apply_alert_inbox
from storage.labels import apply_inbox
from storage.queries import label_counts
from storage.rollup import ProgressCallback, RollupProgress, RollupResult, rollup_pending, rollup_rebuild
from storage.store import SaveResult, Store

log = logging.getLogger("listener")
run_log = logging.getLogger("listener.runs")

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class PullResult:
    """One collection run. ``fetched`` counts what the connector returned; of those,
    ``rejected`` failed the local query re-check and were not stored, and the rest are
    ``new`` or ``duplicates``. ``skipped`` counts unreadable items the connector left out."""

    source: str
    brand: str
    fetched: int
    new: int
    duplicates: int
    rejected: int
    skipped: int
    seconds: float
    status: str = "ok"


@dataclass(frozen=True, slots=True)
class MoodWindows:
    """A brand's mood now: last hour, last 24 h, and the 7 days before those 24 h."""

    brand: str
    as_of: datetime
    last_hour: Mood
    last_24h: Mood
    baseline_7d: Mood


def _shifted(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, stopping at the calendar's ends: a post may be dated year 1 or 9999."""
    try:
        return moment + delta
    except OverflowError:
        edge = datetime.min if delta < timedelta(0) else datetime.max
        return edge.replace(tzinfo=moment.tzinfo)


class PullRun:
    """One (source, brand) collection run: its row in ``runs``, its counts as batches are
    stored, and how it ended (logged on ``listener.runs``)."""

    def __init__(self, pipeline: Pipeline, source: str, brand: str) -> None:
        self.store, self.clock = pipeline.store, pipeline.clock
        self.source, self.brand = source, brand
        self.started = time.perf_counter()
        self.run_id = self.store.start_run("pull", now=self.clock(), source=source, brand=brand)
        self.fetched = self.new = self.rejected = self.skipped = 0

    def add(self, fetched: int, relevant: int, skipped: int, new: int) -> None:
        self.fetched += fetched
        self.rejected += fetched - relevant
        self.skipped += skipped
        self.new += new

    def _finish(self, status: str, error: str | None = None) -> None:
        self.store.finish_run(
            self.run_id, now=self.clock(), status=status, fetched=self.fetched, new=self.new,
            duplicates=self.fetched - self.rejected - self.new, skipped=self.skipped, rejected=self.rejected,
            error=error,
        )

    def fail(self, exc: BaseException) -> None:
        self._finish("failed", f"{type(exc).__name__}: {exc}")
        run_log.error("pull source=%s brand=%s failed after fetched=%d new=%d: %s",
                      self.source, self.brand, self.fetched, self.new, exc)

    def finish(self, status: str = "ok") -> PullResult:
        self._finish(status)
        seconds = time.perf_counter() - self.started
        result = PullResult(self.source, self.brand, self.fetched, self.new, self.fetched - self.rejected - self.new,
                            self.rejected, self.skipped, seconds, status)
        run_log.info(
            "pull source=%s brand=%s status=%s fetched=%d new=%d duplicates=%d rejected=%d skipped=%d duration=%.2fs",
            result.source, result.brand, status, result.fetched, result.new, result.duplicates, result.rejected,
            result.skipped, seconds,
        )
        return result


class Pipeline:
    def __init__(self, store: Store, scoring: Scoring | Scorer, clock: Clock) -> None:
        """``scoring``: each brand's scorers (listener.scoring.build_scoring), or one
        scorer for every brand."""
        self.store = store
        self.scoring = Scoring.of(scoring)
        self.clock = clock

    def start_sources(self, settings: Settings, only: SourceSettings | None = None) -> OpenSources:
        """The sources' connectors (listener.sources.open_sources). A source that cannot
        start is recorded as a failed run of kind "start", with why, so ``status`` shows
        what happened; a setting its connector refused then raises ConfigError. (Not a
        "pull": a source that never started has no hours for the alerts to wait for.)"""
        opened = open_sources(settings, self.clock, only)
        for name, why in {**opened.parked, **opened.invalid}.items():
            now = self.clock()
            run_id = self.store.start_run("start", now=now, source=name)
            self.store.finish_run(run_id, now=now, status="failed", error=why)
        opened.raise_if_invalid()
        return opened

    def pull(
        self,
        connector: Connector,
        query: BrandQuery,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> PullResult:
        """One collection run of one (source, brand), resuming from its saved cursor.

        Each batch is stored with its checkpoint in one transaction, so a failure
        leaves every earlier batch stored and the cursor at the last complete one.
        ``should_stop`` is asked after each stored batch (the daemon's shutdown): the
        run then ends early, recorded as "stopped", and the next run resumes.
        """
        source, brand = connector.name, query.brand
        run = PullRun(self, source, brand)
        status = "ok"
        try:
            since = self.store.get_cursor(source, brand)
            for batch in connector.fetch(query, since):
                for mention in batch.mentions:
                    if mention.source != source or mention.brand != brand:
                        raise ValueError(
                            f"connector {source!r} returned mention {mention.id!r} for "
                            f"({mention.source!r}, {mention.brand!r}) while fetching ({source!r}, {brand!r})"
                        )
                # Platform search is fuzzy: the local check of the same query decides.
                relevant = relevant_mentions(batch.mentions, (query,))[brand]
                saved = self.store_relevant(source, brand, relevant, batch.checkpoint)
                run.add(len(batch.mentions), len(relevant), batch.skipped, saved.new)
                if progress is not None:
                    progress(len(batch.mentions))
                if should_stop is not None and should_stop():
                    status = "stopped"
                    break
        except BaseException as exc:
            run.fail(exc)
            raise
        return run.finish(status)

    def store_relevant(self, source: str, brand: str, relevant: Sequence[Mention], checkpoint: Cursor | None,
                       fingerprints: Mapping[str, int | None] | None = None) -> SaveResult:
        """Store one batch of a brand's relevant mentions with its checkpoint: those not
        stored yet, with their near-duplicate verdicts and every scorer's scores.
        ``fingerprints``: the texts' fingerprints where already computed (an import's
        workers compute them, listener.ingest); each text's is computed here otherwise."""
        # Overlapping polls re-fetch stored posts: skip scoring them again.
        known = self.store.known_ids(relevant)
        fresh = [m for m in relevant if m.id not in known]
        hashes, copies = self._near_duplicates(brand, fresh, fingerprints or {})
        # Near-duplicates count in volume only: no scorer reads them.
        to_score = [i for i in range(len(fresh)) if not copies[i]]
        chain = self.scoring.for_brand(brand)
        score_sets = [s.spread(to_score, len(fresh)) for s in chain.score(
            [fresh[i].text for i in to_score], [fresh[i].lang for i in to_score])]
        return self.store.save_batch(
            fresh, score_sets, source=source, brand=brand, checkpoint=checkpoint, now=self.clock(),
            text_hashes=hashes, duplicates=copies,
        )

    def _near_duplicates(self, brand: str, fresh: list[Mention],
                         fingerprints: Mapping[str, int | None]) -> tuple[list[int | None], list[bool]]:
        """Fingerprints of ``fresh`` and which are copies: another mention of the brand with
        the same fingerprint, created within the window of it, was stored before (or
        comes earlier in this batch). See analysis.duplicates for the rule."""
        hashes = [fingerprints[m.text] if m.text in fingerprints else fingerprint(m.text) for m in fresh]
        present = [h for h in hashes if h is not None]
        if not present:
            return hashes, [False] * len(fresh)
        times = [m.created_at for m in fresh]
        seen = self.store.fingerprint_times(
            brand, present, _shifted(min(times), -DUPLICATE_WINDOW), _shifted(max(times), DUPLICATE_WINDOW)
        )
        copies = []
        for mention, mention_hash in zip(fresh, hashes):
            if mention_hash is None:
                copies.append(False)
                continue
            earlier = seen.setdefault(mention_hash, [])
            copies.append(any(abs(t - mention.created_at) <= DUPLICATE_WINDOW for t in earlier))
            earlier.append(mention.created_at)
        return hashes, copies

    def collect(
        self, connector: Connector, query: BrandQuery, should_stop: Callable[[], bool] | None = None,
        progress: Progress | None = None,
    ) -> PullResult:
        """One scheduled or manual collection: the pull, then, when it completed, the
        platform's own hourly counts for coverage (``record_volume``). The pull's run is
        finished by then: a failure of the counts is recorded as a run of its own."""
        result = self.pull(connector, query, progress=progress, should_stop=should_stop)
        if result.status == "ok":
            try:
                self.record_volume(connector, query)
            except Exception as exc:
                now = self.clock()
                run_id = self.store.start_run("volume", now=now, source=connector.name, brand=query.brand)
                self.store.finish_run(run_id, now=now, status="failed", error=f"{type(exc).__name__}: {exc}")
                run_log.error("volume source=%s brand=%s failed: %s", connector.name, query.brand, exc)
                raise
        return result

    def record_volume(self, connector: Connector, query: BrandQuery, hours: int = 24) -> int:
        """Store the platform's posts-per-hour counts for the last ``hours``, where the
        connector offers them (``hourly_counts``); returns how many hours were stored."""
        counts_of = getattr(connector, "hourly_counts", None)
        if counts_of is None:
            return 0
        end = self.clock()
        counts = counts_of(query, end - timedelta(hours=hours), end)
        self.store.save_platform_volume(connector.name, query.brand, counts, now=end)
        return len(counts)

    def score_hours(
        self,
        rebuild: bool = False,
        progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> RollupResult:
        """The hourly stage: apply labels queued while the daemon held the database (or
        given on the live view), then recompute hours with new mentions or labels (or
        every hour), in chunks that each commit (storage.rollup): ``progress`` hears
        of each, and the log gets a line per chunk. A failure or a stop keeps the
        chunks done; the run records how many hours they held."""
        queued = apply_inbox(self.store, self.clock())
        for error in queued.errors:
            log.warning("label not applied: %s", error)
        if queued.applied:
            log.info("labels applied=%d", queued.applied)
        # Alerts acknowledged or resolved on the live view (storage.alert_actions).
        actions = apply_alert_inbox(self.store, self.clock())
        for error in actions.errors:
            log.warning("alert action not applied: %s", error)
        started = time.perf_counter()
        run_id = self.store.start_run("rebuild" if rebuild else "hourly", now=self.clock())
        last: list[RollupProgress] = []

        def on_chunk(step: RollupProgress) -> None:
            last[:] = [step]
            log.info("hourly chunk=%d hours=%d/%d through=%s", step.chunks, step.done, step.total,
                     f"{step.through:%Y-%m-%d %H:00}")
            if progress is not None:
                progress(step)

        stage = rollup_rebuild if rebuild else rollup_pending
        try:
            result = stage(self.store, progress=on_chunk, should_stop=should_stop)
        except BaseException as exc:
            # The chunks committed before the failure stay done: say how many.
            done = last[0] if last else None
            self.store.finish_run(run_id, now=self.clock(), status="failed",
                                  fetched=done.done if done else 0, new=done.conversations if done else 0,
                                  error=f"{type(exc).__name__}: {exc}")
            raise
        self.store.finish_run(run_id, now=self.clock(), status="stopped" if result.stopped else "ok",
                              fetched=result.hours, new=result.conversations)
        run_log.info(
            "hourly hours=%d conversations=%d pending=%d duration=%.2fs",
            result.hours, result.conversations, result.pending, time.perf_counter() - started,
        )
        return result

    def mood(self, brand: str, as_of: datetime | None = None) -> MoodWindows:
        now = as_of or self.clock()

        def window(start: datetime, end: datetime) -> Mood:
            c = label_counts(self.store, brand, start, end)
            return mood_from_counts(c.mentions, c.positive, c.neutral, c.negative, c.duplicates, c.unscored)

        day_ago = now - timedelta(hours=24)
        return MoodWindows(
            brand=brand,
            as_of=now,
            last_hour=window(now - timedelta(hours=1), now),
            last_24h=window(day_ago, now),
            baseline_7d=window(day_ago - timedelta(days=7), day_ago),
        )
