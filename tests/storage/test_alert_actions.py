"""Alerts acknowledged or resolved from the live view: queued in the alert inbox
(storage.inbox), applied by the daemon's hourly stage (Pipeline.score_hours) and recorded
in alerts; bad lines and unknown alerts are reported, not applied; applying twice
changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from analysis.sentiment import VaderScorer
from listener.pipeline import Pipeline
from storage.alert_actions import (
    AlertAction,
    UnknownAlertError,
    apply_alert_inbox,
    check_alert,
    queue_alert_action,
    queued_alert_actions,
)
from storage.store import Store, from_db_time, to_db_time

T = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "listener.duckdb") as opened:
        with opened.native() as db:
            db.execute(
                "INSERT INTO alerts (brand, metric, direction, hour, detected_at, value, baseline, statistic, "
                "control_limit, mentions, summary) VALUES "
                "('Acme', 'mood', 'dip', $h, $h, -40, 10, 4.5, 3, 12, 'one'), "
                "('Acme', 'volume', 'spike', $h, $h, 80, 20, 5, 3, 80, 'two')", {"h": to_db_time(T)})
        yield opened


def _alerts(store: Store) -> dict[int, tuple]:
    with store.native() as db:
        rows = db.execute("SELECT alert_id, acknowledged_at, acknowledged_by, closed_at, closed_by FROM alerts "
                          "ORDER BY 1").fetchall()
    return {r[0]: (from_db_time(r[1]), r[2], from_db_time(r[3]), r[4]) for r in rows}


def test_the_daemon_records_what_the_view_queued(store):
    first, second = sorted(_alerts(store))
    queue_alert_action(store.path, AlertAction(first, "acknowledge", "live view"), T)
    queue_alert_action(store.path, AlertAction(second, "resolve", "live view"), T)
    assert queued_alert_actions(store.path) == {first: "acknowledge", second: "resolve"}
    assert _alerts(store)[first] == (None, None, None, None)  # queued, not applied
    Pipeline(store, VaderScorer(), lambda: T + timedelta(minutes=5)).score_hours()
    done = T + timedelta(minutes=5)
    assert _alerts(store) == {first: (done, "live view", None, None), second: (None, None, done, "live view")}
    assert queued_alert_actions(store.path) == {}
    # again, later: the first acknowledgement and the first closing stay
    queue_alert_action(store.path, AlertAction(first, "acknowledge", "someone else"), T)
    queue_alert_action(store.path, AlertAction(second, "resolve", "someone else"), T)
    assert apply_alert_inbox(store, T + timedelta(hours=1)).applied == 2
    assert _alerts(store) == {first: (done, "live view", None, None), second: (None, None, done, "live view")}


def test_bad_lines_and_unknown_alerts_are_reported_and_dropped(store):
    first = min(_alerts(store))
    queue_alert_action(store.path, AlertAction(999, "resolve"), T)
    inbox = store.path.with_name("listener.alerts-inbox.jsonl")
    with open(inbox, "a", encoding="utf-8") as handle:
        handle.write('{"alert": "1", "action": "resolve"}\n{"alert": 1, "action": "delete"}\nnot json\n')
    queue_alert_action(store.path, AlertAction(first, "resolve"), T)
    result = apply_alert_inbox(store, T)
    assert result.applied == 1
    assert [e.split(" line ")[1][:1] for e in result.errors] == ["1", "2", "3", "4"]
    assert "no alert number 999" in result.errors[0] and "action must be one of" in result.errors[2]
    assert _alerts(store)[first][2] == T
    assert not inbox.exists()
    with pytest.raises(UnknownAlertError):
        check_alert(store, 999)
    for bad in ((1, "delete"), (-1, "resolve"), (True, "resolve"), ("1", "resolve")):
        with pytest.raises(ValueError):
            AlertAction(*bad)
