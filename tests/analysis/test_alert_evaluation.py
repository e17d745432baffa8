"""One alert run's decisions (analysis.alert_evaluation), without a database: which
hours a run reads and evaluates, and what the detector's events do to stored alerts.
End to end, through DuckDB and the notifiers: tests/listener/test_alerting.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from analysis.alert_evaluation import evaluation_span, new_alert, ready_span, resolve, tracks_from
from analysis.alerts import HOUR, AlertRule, Event, Reading, Track

T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)


def test_a_run_reads_back_a_whole_history_window_and_evaluates_only_new_closed_hours():
    rule = AlertRule()
    assert evaluation_span(None, None, T0, rule) is None  # no mentions yet
    now = T0 + timedelta(days=60, minutes=20)  # longer than the history window (history_hours)
    first_run = evaluation_span(T0, None, now, rule)
    assert (first_run.start, first_run.begin, first_run.last) == (T0, T0, T0 + timedelta(days=60) - HOUR)
    later = evaluation_span(T0, first_run.last, now + HOUR, rule)
    assert later.begin == first_run.last + HOUR == later.last
    assert later.start == later.begin - timedelta(hours=rule.history_hours)
    assert len(later.hours) == rule.history_hours + 1 and later.end == later.last + HOUR
    assert evaluation_span(T0, later.last, now + HOUR, rule) is None  # no hour ended since


def test_evaluation_stops_at_the_first_hour_still_waiting_for_its_sources():
    states = ["ready", "ready", "incomplete", "ready", "waiting", "ready"]
    span = ready_span(states, 1)
    assert (span.stop, span.evaluated, span.incomplete, span.waiting) == (4, 2, 1, 2)


def _event(kind: str, hour: int, direction: str = "dip") -> Event:
    at = T0 + hour * HOUR
    reading = Reading("mood", at, -4.0, 3.0, 10.0, 30.0, -20.0, 50, True, True, at)
    return Event(kind, "mood", direction, reading)


def test_events_open_new_alerts_close_them_in_the_same_run_or_close_older_ones():
    tracks, open_ids = tracks_from({("mood", "spike"): (7, T0), ("volume", "dip"): (None, T0)})
    assert tracks[("mood", "spike")] == Track(open=True, last_hour=T0) and open_ids == {("mood", "spike"): 7}
    assert tracks[("volume", "spike")] == Track()
    made = []

    def make(event: Event):
        made.append(new_alert("Acme", event, T0, {}, []))
        return made[-1]

    events = [_event("open", 3), _event("close", 5), _event("close", 6, "spike"), _event("open", 9)]
    found, closings = resolve(events, open_ids, make)
    assert [(a.hour, a.closed_at) for a in found] == [(T0 + 3 * HOUR, T0 + 6 * HOUR), (T0 + 9 * HOUR, None)]
    assert closings == [(7, T0 + 7 * HOUR)]
    assert found[0].control_limit == -3.0 and found[0].summary  # a dip's limit is the lower one
    assert open_ids == {("mood", "spike"): 7}  # the caller's mapping is left as it was
