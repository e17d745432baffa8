"""The alerting stage: detect dips and spikes over the hours not yet evaluated, store
new alerts with their explanation, close those that are over, deliver new ones.

    run_alerts(store, settings, clock) -> AlertRunResult

Called after the hourly rollup (by the daemon's hourly job and ``listener score``). Per
brand it reads the hours from where the last run stopped, back far enough for a whole
baseline, EWMA and scale window (``AlertRule.history_hours``), so an hour's reading is
the same whichever run computes it; marks each hour ready, waiting or incomplete
(``analysis.alerts.hour_states``); evaluates the ready hours in order up to the first
one still waiting; and stores what it found in one transaction with the brand's
"evaluated through" mark. A crash before that commit means the next run evaluates the
same hours again, and the (brand, metric, direction, hour) key keeps an alert from
being stored twice.

Delivery follows, per configured channel: every alert of the last
``deliver_max_age_hours`` without a successful delivery on it is sent, each attempt
recorded; a channel that fails is left for the next run (alerts stay in the history
either way). Secrets are read from the environment here, at delivery time, and go no
further than the notifier.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from analysis.alerts import (
    HOUR,
    AlertRule,
    Event,
    HourlySeries,
    Reading,
    Track,
    detect,
    distinctive_terms,
    hour_states,
    source_breakdown,
    summarize,
    term_exclusions,
)
from connectors.base import Clock
from listener.config import AlertSettings, Settings
from listener.notify import EmailNotifier, WebhookNotifier, deliver
from storage import alerts as db
from storage.queries import stored_brands
from storage.store import Store

log = logging.getLogger("listener")

# Texts read for the terms of an explanation: the alert's window, and a fixed sample of
# the baseline before it (enough for stable word shares, bounded for big brands).
WINDOW_TEXTS = 2000
BASELINE_TEXTS = 5000
TOP_CONVERSATIONS = 5
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class AlertRunResult:
    """What one run did: hours evaluated, skipped as incomplete and still waiting for
    their sources (summed over brands); alerts opened and closed (ids); deliveries."""

    hours_evaluated: int = 0
    hours_incomplete: int = 0
    hours_waiting: int = 0
    opened: tuple[int, ...] = ()
    closed: tuple[int, ...] = ()
    sent: int = 0
    failed: int = 0
    problems: tuple[str, ...] = field(default=())


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


@dataclass
class _BrandOutcome:
    evaluated: int = 0
    incomplete: int = 0
    waiting: int = 0
    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)


class _Explainer:
    """Builds an alert's explanation from the database (analysis does the thinking)."""

    def __init__(self, store: Store, brand: str, series: HourlySeries, rule: AlertRule,
                 hour_of_day: Callable[[datetime], int], exclude: frozenset[str]) -> None:
        self.store, self.brand, self.series, self.rule = store, brand, series, rule
        self.hour_of_day, self.exclude = hour_of_day, exclude

    def _complete_hours(self, start: datetime, end: datetime) -> list[datetime]:
        lo, hi = max(0, self.series.index(start)), min(len(self.series), self.series.index(end))
        return [self.series.hour(j) for j in range(lo, hi) if self.series.complete[j]]

    def explain(self, reading: Reading, direction: str) -> tuple[dict[str, Any], list[dict]]:
        start, end = reading.window_start, reading.hour + HOUR
        base_start = reading.hour - timedelta(hours=self.rule.baseline_hours)
        label = None if reading.metric == "volume" else ("negative" if direction == "dip" else "positive")
        terms = distinctive_terms(
            db.texts(self.store, self.brand, start, end, label=label, limit=WINDOW_TEXTS),
            db.texts(self.store, self.brand, base_start, start, label=label, limit=BASELINE_TEXTS),
            self.exclude,
        )
        sources = source_breakdown(
            db.source_hours(self.store, self.brand, base_start, end),
            self._complete_hours(start, end), self._complete_hours(base_start, start),
            self.hour_of_day, reading.metric,
        )
        conversations = db.top_conversations(self.store, self.brand, start, end,
                                             rank=label or "mentions", limit=TOP_CONVERSATIONS)
        hours = int((end - start) / HOUR)
        explanation = {
            "rule": {
                "metric": reading.metric, "direction": direction,
                "statistic": round(reading.statistic, 4),
                "control_limit": round(reading.limit if direction == "spike" else -reading.limit, 4),
                "lambda": self.rule.ewma_lambda, "limit_sigmas": self.rule.limit_sigmas,
                "baseline_days": self.rule.baseline_days,
                "value": round(reading.value, 2), "baseline": round(reading.baseline, 2),
                "effect": round(reading.effect, 3),
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in reading.detail.items()},
            },
            "window": {"start": start.isoformat(), "end": end.isoformat(), "hours": hours,
                       "texts_compared": "negative mentions" if label == "negative" else
                       "positive mentions" if label == "positive" else "all mentions"},
            "terms": terms,
            "sources": sources,
            "conversations": conversations,
        }
        return explanation, terms


def _tracks(store: Store, brand: str) -> tuple[dict[tuple[str, str], Track], dict[tuple[str, str], int]]:
    tracks: dict[tuple[str, str], Track] = {}
    open_ids: dict[tuple[str, str], int] = {}
    stored = db.alert_tracks(store, brand)
    for metric in ("mood", "volume"):
        for direction in ("dip", "spike"):
            open_id, last = stored.get((metric, direction), (None, None))
            tracks[(metric, direction)] = Track(open=open_id is not None, last_hour=last)
            if open_id is not None:
                open_ids[(metric, direction)] = open_id
    return tracks, open_ids


def _evaluate_brand(store: Store, brand: str, config: AlertSettings, sources: Iterable[str] | None,
                    names: Iterable[str], now: datetime) -> _BrandOutcome:
    rule = config.rule
    outcome = _BrandOutcome()
    first = db.first_hour(store, brand)
    if first is None:
        return outcome
    through = db.evaluated_through(store, brand)
    begin = first if through is None else through + HOUR
    last = _floor_hour(now) - HOUR  # the latest hour that has ended
    if begin > last:
        return outcome
    start = max(first, begin - timedelta(hours=rule.history_hours))
    hours = [start + i * HOUR for i in range(int((last - start) / HOUR) + 1)]
    end = last + HOUR
    low = db.low_coverage_hours(store, brand, start, end, min_coverage=rule.min_coverage,
                                min_posts=rule.min_mentions)
    states = hour_states(
        hours, db.pull_runs(store, brand, start - timedelta(hours=24)), now=now, rule=rule, sources=sources,
        pending=db.pending_hours(store, brand, start, end), low_coverage=low,
    )
    counts = {row.hour: row for row in db.hourly_counts(store, brand, start, end)}
    zone = ZoneInfo(config.timezone)

    def hour_of_day(hour: datetime) -> int:
        return hour.astimezone(zone).hour

    def column(name: str) -> np.ndarray:
        return np.array([getattr(counts[h], name) if h in counts else 0 for h in hours], dtype=np.int64)

    series = HourlySeries(
        start=start, mentions=column("mentions"), scored=column("scored"), positive=column("positive"),
        negative=column("negative"), complete=np.array([s == "ready" for s in states]),
        hour_of_day=np.array([hour_of_day(h) for h in hours], dtype=np.int64),
        day=np.array([h.astimezone(zone).date().toordinal() - _EPOCH_ORDINAL for h in hours], dtype=np.int64),
    )
    first_index = series.index(begin)
    stop = next((j for j in range(first_index, len(hours)) if states[j] == "waiting"), len(hours))
    outcome.evaluated = sum(1 for j in range(first_index, stop) if states[j] == "ready")
    outcome.incomplete = sum(1 for j in range(first_index, stop) if states[j] == "incomplete")
    outcome.waiting = len(hours) - stop
    if stop == first_index:
        return outcome
    tracks, open_ids = _tracks(store, brand)
    events = detect(series, range(first_index, stop), rule, tracks)
    explainer = _Explainer(store, brand, series, rule, hour_of_day, term_exclusions(names))
    new: dict[tuple[str, str], db.NewAlert] = {}
    found: list[db.NewAlert] = []
    closings: list[tuple[int, datetime]] = []
    for event in events:
        key = (event.metric, event.direction)
        if event.kind == "open":
            new[key] = _new_alert(brand, event, explainer, now)
            found.append(new[key])
        elif key in new:
            new.pop(key).closed_at = event.reading.hour + HOUR
        elif key in open_ids:
            closings.append((open_ids.pop(key), event.reading.hour + HOUR))
    outcome.opened = db.save_evaluation(store, brand, found, closings, series.hour(stop - 1))
    outcome.closed = [alert_id for alert_id, _ in closings]
    return outcome


def _new_alert(brand: str, event: Event, explainer: _Explainer, now: datetime) -> db.NewAlert:
    reading = event.reading
    explanation, terms = explainer.explain(reading, event.direction)
    return db.NewAlert(
        brand=brand, metric=event.metric, direction=event.direction, hour=reading.hour, detected_at=now,
        value=reading.value, baseline=reading.baseline, statistic=reading.statistic,
        # Signed like the statistic: a dip's limit is the lower one.
        control_limit=reading.limit if event.direction == "spike" else -reading.limit,
        mentions=reading.mentions, summary=summarize(brand, reading, event.direction, terms),
        explanation=explanation,
    )


def _notifiers(config: AlertSettings, environ: Mapping[str, str], clock: Clock,
               sleep: Callable[[float], None]) -> list[tuple[str, Any]]:
    """(channel, notifier) for each configured channel; the notifier is a message
    naming the missing environment variable when its secret is not set."""
    channels: list[tuple[str, Any]] = []
    if config.webhook is not None:
        hook = config.webhook
        url = environ.get(hook.url_env, "").strip()
        channels.append(("webhook", WebhookNotifier(url, timeout=hook.timeout_seconds, attempts=hook.attempts,
                                                    clock=clock, sleep=sleep) if url else
                         f"environment variable {hook.url_env} (alerts.webhook.url_env) is not set"))
    if config.email is not None:
        mail = config.email
        password = environ.get(mail.password_env, "") if mail.password_env else ""
        if mail.password_env and not password:
            channels.append(("email", f"environment variable {mail.password_env} (alerts.email.password_env) "
                                      "is not set"))
        else:
            channels.append(("email", EmailNotifier(
                host=mail.host, port=mail.port, security=mail.security, sender=mail.sender, recipients=mail.to,
                username=mail.username, password=password, timeout=mail.timeout_seconds, attempts=mail.attempts,
                clock=clock, sleep=sleep)))
    return channels


def deliver_pending(store: Store, config: AlertSettings, clock: Clock, *, sleep: Callable[[float], None] = time.sleep,
                    environ: Mapping[str, str] | None = None) -> tuple[int, int, list[str]]:
    """Send every recent alert not yet sent on each configured channel; returns (alerts
    sent, alerts that failed, problems)."""
    environ = os.environ if environ is None else environ
    since = _floor_hour(clock()) - timedelta(hours=config.deliver_max_age_hours)
    sent = failed = 0
    problems: list[str] = []
    for channel, notifier in _notifiers(config, environ, clock, sleep):
        pending = db.undelivered(store, channel, since)
        if not pending:
            continue
        if isinstance(notifier, str):
            problems.append(f"{channel}: {notifier}")
            log.warning("alerts: %d alert(s) not delivered by %s: %s", len(pending), channel, notifier)
            for alert in pending:
                db.record_delivery(store, alert["alert_id"], channel, clock(), "failed", notifier)
            failed += len(pending)
            continue
        for alert, attempts in deliver(notifier, pending):
            for attempt in attempts:
                db.record_delivery(store, alert["alert_id"], channel, attempt.attempted_at, attempt.status,
                                   attempt.error)
            if attempts[-1].status == "sent":
                sent += 1
            else:
                failed += 1
                problems.append(f"{channel}: alert #{alert['alert_id']}: {attempts[-1].error}")
                log.warning("alerts: %s delivery of alert #%d failed after %d attempt(s): %s; "
                            "retrying on the next run", channel, alert["alert_id"], len(attempts), attempts[-1].error)
    return sent, failed, problems


def run_alerts(store: Store, settings: Settings, clock: Clock, *, sleep: Callable[[float], None] = time.sleep,
               environ: Mapping[str, str] | None = None) -> AlertRunResult:
    """Detect over the closed hours not yet evaluated, store and close alerts, deliver.

    ``sleep`` (between delivery attempts) and ``environ`` (where secrets are read) are
    injectable for tests; the defaults are the real ones.
    """
    config = settings.alerts
    if not config.enabled:
        return AlertRunResult()
    started = time.perf_counter()
    now = clock()
    configured = {b.name: b for b in settings.brands}
    brands = list(configured) or stored_brands(store)
    sources = [s.name for s in settings.enabled_sources] or None
    totals = _BrandOutcome()
    for brand in brands:
        entry = configured.get(brand)
        names = [brand] if entry is None else [brand, *entry.query.terms, *entry.query.hashtags,
                                               *entry.query.handles]
        outcome = _evaluate_brand(store, brand, config, sources, names, now)
        totals.evaluated += outcome.evaluated
        totals.incomplete += outcome.incomplete
        totals.waiting += outcome.waiting
        totals.opened += outcome.opened
        totals.closed += outcome.closed
    sent, failed, problems = deliver_pending(store, config, clock, sleep=sleep, environ=environ)
    log.info("alerts hours=%d incomplete=%d waiting=%d opened=%d closed=%d sent=%d failed=%d duration=%.2fs",
             totals.evaluated, totals.incomplete, totals.waiting, len(totals.opened), len(totals.closed),
             sent, failed, time.perf_counter() - started)
    return AlertRunResult(totals.evaluated, totals.incomplete, totals.waiting, tuple(totals.opened),
                          tuple(totals.closed), sent, failed, tuple(problems))
