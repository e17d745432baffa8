"""The alerting stage: wiring only. Per brand it reads what a run needs (storage.alerts),
lets analysis decide (analysis.alert_evaluation: which hours, the series, what the
detector's events mean for stored alerts, each alert's explanation; analysis.alerts: the
rule), and stores the outcome in one transaction with the brand's "evaluated through"
mark; then it delivers (listener.notify).

    run_alerts(store, settings, clock) -> AlertRunResult

Called after the hourly rollup (by the daemon's hourly job and ``listener score``). A
crash before the commit means the next run evaluates the same hours again, and the
(brand, metric, direction, hour) key keeps an alert from being stored twice.

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
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from analysis.alert_evaluation import (
    NewAlert, complete_hours, evaluation_span, explanation, floor_hour, hourly_series, new_alert, ready_span, resolve,
    text_label, tracks_from,
)
from analysis.alerts import (
    HOUR, AlertRule, Event, HourlySeries, detect, distinctive_terms, hour_states, source_breakdown, term_exclusions,
)
from connectors.base import Clock
from listener.config import AlertSettings, Settings
from listener.notify import EmailNotifier, WebhookNotifier, deliver
from storage import alerts as db
from storage.queries import stored_brands
from storage.rollup import hourly_counts
from storage.store import Store

log = logging.getLogger("listener")

# Texts read for the terms of an explanation: the alert's window, and a fixed sample of
# the baseline before it (enough for stable word shares, bounded for big brands).
WINDOW_TEXTS = 2000
BASELINE_TEXTS = 5000
TOP_CONVERSATIONS = 5


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


@dataclass
class _BrandOutcome:
    evaluated: int = 0
    incomplete: int = 0
    waiting: int = 0
    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)


def _explained(store: Store, brand: str, series: HourlySeries, rule: AlertRule, zone: ZoneInfo,
               exclude: frozenset[str], event: Event, now: datetime) -> NewAlert:
    """The alert ``event`` opens, with its explanation: the texts, sources and threads it
    needs read from the database, the thinking done by analysis."""
    reading, direction = event.reading, event.direction
    start, end = reading.window_start, reading.hour + HOUR
    base_start = reading.hour - timedelta(hours=rule.baseline_hours)
    label = text_label(reading, direction)
    terms = distinctive_terms(
        db.texts(store, brand, start, end, label=label, limit=WINDOW_TEXTS),
        db.texts(store, brand, base_start, start, label=label, limit=BASELINE_TEXTS),
        exclude,
    )
    sources = source_breakdown(
        db.source_hours(store, brand, base_start, end),
        complete_hours(series, start, end), complete_hours(series, base_start, start),
        lambda hour: hour.astimezone(zone).hour, reading.metric,
    )
    conversations = db.top_conversations(store, brand, start, end, rank=label or "mentions",
                                         limit=TOP_CONVERSATIONS)
    return new_alert(brand, event, now, explanation(reading, direction, rule, terms, sources, conversations), terms)


def _evaluate_brand(store: Store, brand: str, config: AlertSettings, sources: Iterable[str] | None,
                    names: Iterable[str], now: datetime) -> _BrandOutcome:
    rule = config.rule
    outcome = _BrandOutcome()
    span = evaluation_span(db.first_hour(store, brand), db.evaluated_through(store, brand), now, rule)
    if span is None:
        return outcome
    hours = span.hours
    low = db.low_coverage_hours(store, brand, span.start, span.end, min_coverage=rule.min_coverage,
                                min_posts=rule.min_mentions)
    states = hour_states(
        hours, db.pull_runs(store, brand, span.start - timedelta(hours=24)), now=now, rule=rule, sources=sources,
        pending=db.pending_hours(store, brand, span.start, span.end), low_coverage=low,
    )
    zone = ZoneInfo(config.timezone)
    series = hourly_series(hours, {row.hour: row for row in hourly_counts(store, brand, span.start, span.end)},
                           states, zone)
    ready = ready_span(states, series.index(span.begin))
    outcome.evaluated, outcome.incomplete, outcome.waiting = ready.evaluated, ready.incomplete, ready.waiting
    if ready.stop == ready.first:
        return outcome
    tracks, open_ids = tracks_from(db.alert_tracks(store, brand))
    events = detect(series, range(ready.first, ready.stop), rule, tracks)
    exclude = term_exclusions(names)
    found, closings = resolve(events, open_ids,
                              lambda event: _explained(store, brand, series, rule, zone, exclude, event, now))
    outcome.opened = db.save_evaluation(store, brand, found, closings, series.hour(ready.stop - 1))
    outcome.closed = [alert_id for alert_id, _ in closings]
    return outcome


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


class Deliveries(Protocol):
    """Deliveries recorded beyond this file (cluster mode: storage.cluster.alerts), keyed
    (brand, metric, direction, hour) per channel."""

    def delivered(self, channel: str, keys: Iterable[tuple[str, str, str, datetime]]
                  ) -> set[tuple[str, str, str, datetime]]: ...

    def record(self, channel: str, key: tuple[str, str, str, datetime]) -> bool: ...


def _key(alert: Mapping[str, Any]) -> tuple[str, str, str, datetime]:
    return (alert["brand"], alert["metric"], alert["direction"], alert["hour"])


def deliver_pending(store: Store, config: AlertSettings, clock: Clock, *, sleep: Callable[[float], None] = time.sleep,
                    environ: Mapping[str, str] | None = None, shared: Deliveries | None = None
                    ) -> tuple[int, int, list[str]]:
    """Send every recent alert not yet sent on each configured channel; returns (alerts
    sent, alerts that failed, problems). With ``shared``, an alert another daemon
    delivered is recorded here as sent by it, not sent again, and each delivery is
    recorded there too."""
    environ = os.environ if environ is None else environ
    since = floor_hour(clock()) - timedelta(hours=config.deliver_max_age_hours)
    sent = failed = 0
    problems: list[str] = []
    for channel, notifier in _notifiers(config, environ, clock, sleep):
        pending = db.undelivered(store, channel, since)
        if shared is not None and pending:
            elsewhere = shared.delivered(channel, (_key(alert) for alert in pending))
            for alert in pending:
                if _key(alert) in elsewhere:
                    db.record_delivery(store, alert["alert_id"], channel, clock(), "sent",
                                       "delivered by another daemon of the cluster")
            pending = [alert for alert in pending if _key(alert) not in elsewhere]
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
                if shared is not None:
                    shared.record(channel, _key(alert))
            else:
                failed += 1
                problems.append(f"{channel}: alert #{alert['alert_id']}: {attempts[-1].error}")
                log.warning("alerts: %s delivery of alert #%d failed after %d attempt(s): %s; "
                            "retrying on the next run", channel, alert["alert_id"], len(attempts), attempts[-1].error)
    return sent, failed, problems


def run_alerts(store: Store, settings: Settings, clock: Clock, *, sleep: Callable[[float], None] = time.sleep,
               environ: Mapping[str, str] | None = None, shared: Deliveries | None = None) -> AlertRunResult:
    """Detect over the closed hours not yet evaluated, store and close alerts, deliver
    (``shared``: deliveries recorded cluster-wide, deliver_pending).

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
    sent, failed, problems = deliver_pending(store, config, clock, sleep=sleep, environ=environ, shared=shared)
    log.info("alerts hours=%d incomplete=%d waiting=%d opened=%d closed=%d sent=%d failed=%d duration=%.2fs",
             totals.evaluated, totals.incomplete, totals.waiting, len(totals.opened), len(totals.closed),
             sent, failed, time.perf_counter() - started)
    return AlertRunResult(totals.evaluated, totals.incomplete, totals.waiting, tuple(totals.opened),
                          tuple(totals.closed), sent, failed, tuple(problems))
