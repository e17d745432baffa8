"""One brand's alert evaluation run, decided here; listener.alerting only wires it to
the database (storage.alerts) and the notifiers (listener.notify).

Pure functions, like analysis.alerts whose rule they apply: which hours a run reads and
evaluates (``evaluation_span``, ``ready_span``), the hourly series those hours make
(``hourly_series``), what the detector's events mean for the stored alerts (``resolve``:
new ones, some closed in the same run, and older open ones to close), and what a new
alert says about itself (``explanation``, ``new_alert``).

A run reads from where the last one stopped, back far enough for a whole baseline, EWMA
and scale window (``AlertRule.history_hours``), so an hour's reading is the same
whichever run computes it; it evaluates the ready hours in order up to the first one
still waiting for its sources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Protocol

import numpy as np

from analysis.alerts import DIRECTIONS, HOUR, METRICS, AlertRule, Event, HourlySeries, Reading, Track, summarize

_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


def floor_hour(moment: datetime) -> datetime:
    """The UTC hour ``moment`` falls in."""
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class EvaluationSpan:
    """The hours one run reads, ``start`` to ``last``, of which it evaluates those from
    ``begin`` on (the earlier ones are history for the baseline and the EWMA)."""

    start: datetime
    begin: datetime
    last: datetime

    @property
    def end(self) -> datetime:
        return self.last + HOUR

    @property
    def hours(self) -> list[datetime]:
        return [self.start + i * HOUR for i in range(int((self.last - self.start) / HOUR) + 1)]


def evaluation_span(first: datetime | None, through: datetime | None, now: datetime,
                    rule: AlertRule) -> EvaluationSpan | None:
    """The span of a run at ``now`` for a brand whose first hour with mentions is
    ``first`` and whose hours were evaluated through ``through`` (None: never); None
    when there is nothing new to evaluate: no mentions, or no hour ended since."""
    if first is None:
        return None
    begin = first if through is None else through + HOUR
    last = floor_hour(now) - HOUR  # the latest hour that has ended
    if begin > last:
        return None
    return EvaluationSpan(max(first, begin - timedelta(hours=rule.history_hours)), begin, last)


class HourCountsLike(Protocol):
    mentions: int
    scored: int
    positive: int
    negative: int


def hourly_series(hours: Sequence[datetime], counts: Mapping[datetime, HourCountsLike], states: Sequence[str],
                  zone: tzinfo) -> HourlySeries:
    """The series detection reads: each hour's counts (0 where none are stored), whether
    it is complete (``states``: analysis.alerts.hour_states), its hour of day and day in
    the configured time zone ``zone``."""

    def column(name: str) -> np.ndarray:
        return np.array([getattr(counts[h], name) if h in counts else 0 for h in hours], dtype=np.int64)

    return HourlySeries(
        start=hours[0], mentions=column("mentions"), scored=column("scored"), positive=column("positive"),
        negative=column("negative"), complete=np.array([s == "ready" for s in states]),
        hour_of_day=np.array([h.astimezone(zone).hour for h in hours], dtype=np.int64),
        day=np.array([h.astimezone(zone).date().toordinal() - _EPOCH_ORDINAL for h in hours], dtype=np.int64),
    )


@dataclass(frozen=True, slots=True)
class ReadySpan:
    """Of the hours from index ``first`` on: evaluation stops at ``stop``, the first hour
    still waiting for its sources; before it ``evaluated`` hours are ready and
    ``incomplete`` are skipped as incomplete; ``waiting`` hours wait for a later run."""

    first: int
    stop: int
    evaluated: int
    incomplete: int
    waiting: int


def ready_span(states: Sequence[str], first: int) -> ReadySpan:
    stop = next((j for j in range(first, len(states)) if states[j] == "waiting"), len(states))
    return ReadySpan(first, stop, sum(1 for j in range(first, stop) if states[j] == "ready"),
                     sum(1 for j in range(first, stop) if states[j] == "incomplete"), len(states) - stop)


def complete_hours(series: HourlySeries, start: datetime, end: datetime) -> list[datetime]:
    """The complete hours of ``series`` in [start, end)."""
    lo, hi = max(0, series.index(start)), min(len(series), series.index(end))
    return [series.hour(j) for j in range(lo, hi) if series.complete[j]]


def tracks_from(stored: Mapping[tuple[str, str], tuple[int | None, datetime | None]]
                ) -> tuple[dict[tuple[str, str], Track], dict[tuple[str, str], int]]:
    """Per (metric, direction): the detector's track (an alert open, the latest alert's
    hour) and the open alert's id, from what storage.alerts.alert_tracks read."""
    tracks: dict[tuple[str, str], Track] = {}
    open_ids: dict[tuple[str, str], int] = {}
    for key in ((metric, direction) for metric in METRICS for direction in DIRECTIONS):
        open_id, last = stored.get(key, (None, None))
        tracks[key] = Track(open=open_id is not None, last_hour=last)
        if open_id is not None:
            open_ids[key] = open_id
    return tracks, open_ids


@dataclass
class NewAlert:
    """An alert found by a run, before it is stored (``closed_at`` is set when the same
    run also saw it end)."""

    brand: str
    metric: str
    direction: str
    hour: datetime
    detected_at: datetime
    value: float | None
    baseline: float | None
    statistic: float
    control_limit: float
    mentions: int
    summary: str
    explanation: dict[str, Any] = field(default_factory=dict)
    closed_at: datetime | None = None


def resolve(events: Iterable[Event], open_ids: Mapping[tuple[str, str], int],
            make_alert: Callable[[Event], NewAlert]) -> tuple[list[NewAlert], list[tuple[int, datetime]]]:
    """What the detector's events mean for the stored alerts: the new alerts (``make_alert``
    builds each; one that also ended in this run carries its ``closed_at``), and the
    (alert id, closed at) of alerts open before the run that ended in it."""
    new: dict[tuple[str, str], NewAlert] = {}
    found: list[NewAlert] = []
    closings: list[tuple[int, datetime]] = []
    still_open = dict(open_ids)
    for event in events:
        key = (event.metric, event.direction)
        if event.kind == "open":
            new[key] = make_alert(event)
            found.append(new[key])
        elif key in new:
            new.pop(key).closed_at = event.reading.hour + HOUR
        elif key in still_open:
            closings.append((still_open.pop(key), event.reading.hour + HOUR))
    return found, closings


def text_label(reading: Reading, direction: str) -> str | None:
    """Which mentions' texts explain an alert: the negative ones for a mood dip, the
    positive ones for a mood spike, all of them for volume (None)."""
    return None if reading.metric == "volume" else ("negative" if direction == "dip" else "positive")


def explanation(reading: Reading, direction: str, rule: AlertRule, terms: list[dict[str, Any]],
                sources: Any, conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """What an alert stores about itself: the rule's figures at its hour, the window it
    covers, and what drove it (distinctive terms, sources, the busiest threads)."""
    start, end = reading.window_start, reading.hour + HOUR
    label = text_label(reading, direction)
    return {
        "rule": {
            "metric": reading.metric, "direction": direction,
            "statistic": round(reading.statistic, 4),
            "control_limit": round(reading.limit if direction == "spike" else -reading.limit, 4),
            "lambda": rule.ewma_lambda, "limit_sigmas": rule.limit_sigmas,
            "baseline_days": rule.baseline_days,
            "value": round(reading.value, 2), "baseline": round(reading.baseline, 2),
            "effect": round(reading.effect, 3),
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in reading.detail.items()},
        },
        "window": {"start": start.isoformat(), "end": end.isoformat(), "hours": int((end - start) / HOUR),
                   "texts_compared": "negative mentions" if label == "negative" else
                   "positive mentions" if label == "positive" else "all mentions"},
        "terms": terms,
        "sources": sources,
        "conversations": conversations,
    }


def new_alert(brand: str, event: Event, now: datetime, explained: dict[str, Any],
              terms: Sequence[dict[str, Any]]) -> NewAlert:
    """The alert an opening event makes, detected at ``now``."""
    reading = event.reading
    return NewAlert(
        brand=brand, metric=event.metric, direction=event.direction, hour=reading.hour, detected_at=now,
        value=reading.value, baseline=reading.baseline, statistic=reading.statistic,
        # Signed like the statistic: a dip's limit is the lower one.
        control_limit=reading.limit if event.direction == "spike" else -reading.limit,
        mentions=reading.mentions, summary=summarize(brand, reading, event.direction, terms),
        explanation=explained,
    )
