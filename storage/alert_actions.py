"""Acknowledge or resolve an alert from the live view: queued, then applied by the daemon.

The view never writes to the database (storage.live), so, like a label, an action is a
line in an inbox beside the database (storage.inbox: ``NAME.alerts-inbox.jsonl``) that
the daemon's hourly stage applies (``apply_alert_inbox``), recording it in ``alerts``:

* acknowledge: ``acknowledged_at`` and ``acknowledged_by`` (someone is on it; the alert
  stays open and keeps its place at the top, marked);
* resolve: ``closed_at`` and ``closed_by`` (the alert leaves the open list; the detector
  closes alerts itself when the signal ends, leaving ``closed_by`` NULL).

Applying is idempotent: a second acknowledgement keeps the first one's time, a resolve of
a closed alert changes nothing, so a crash that leaves the inbox to be taken again is
harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from storage.inbox import Inbox, json_object
from storage.store import Store, to_db_time

ACTIONS = ("acknowledge", "resolve")


@dataclass(frozen=True, slots=True)
class AlertAction:
    alert_id: int
    action: str  # one of ACTIONS
    by: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {self.action!r}")
        if isinstance(self.alert_id, bool) or not isinstance(self.alert_id, int) or self.alert_id < 0:
            raise ValueError(f"alert must be an alert number, not {self.alert_id!r}")


class UnknownAlertError(LookupError):
    """The action names no stored alert."""


@dataclass(frozen=True, slots=True)
class AppliedActions:
    applied: int
    errors: list[str]


def _inbox(database: Path) -> Inbox:
    return Inbox(database, "alerts", "alert action")


def queue_alert_action(database: Path, action: AlertAction, now: datetime) -> Path:
    """Append the action to the database's alert inbox; the daemon applies it."""
    return _inbox(database).append([{"alert": action.alert_id, "action": action.action, "by": action.by,
                                     "at": now.isoformat()}])


def queued_alert_actions(database: Path) -> dict[int, str]:
    """The actions waiting for the daemon, by alert (the later wins), so the page can say
    "acknowledged, waiting for the daemon" before it is applied."""
    found: dict[int, str] = {}
    inbox = _inbox(database)
    for path in (inbox.taken, inbox.path):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except (FileNotFoundError, IsADirectoryError):
            continue
        for line in lines:
            try:
                action = _action_from_line(line)
            except ValueError:
                continue
            found[action.alert_id] = action.action
    return found


def check_alert(store: Store, alert_id: int) -> None:
    """UnknownAlertError when no alert has this number."""
    with store.native() as db:
        if db.execute("SELECT count(*) FROM alerts WHERE alert_id = $id", {"id": alert_id}).fetchone()[0] == 0:
            raise UnknownAlertError(f"no alert number {alert_id}")


def _action_from_line(line: str) -> AlertAction:
    fields = json_object(line)
    by = fields.get("by")
    if by is not None and not isinstance(by, str):
        raise ValueError(f"'by' must be a string or null, not {by!r}")
    return AlertAction(alert_id=fields.get("alert"), action=fields.get("action"), by=by)  # type: ignore[arg-type]


def apply_alert_inbox(store: Store, now: datetime) -> AppliedActions:
    """Apply every queued action, oldest first; a line that cannot be read or names no
    alert is reported in ``errors`` (by number) and dropped."""
    applied = 0
    with _inbox(store.path).take(_action_from_line) as taken:
        with store.native() as db:
            for line in taken.lines:
                action = line.value
                if db.execute("SELECT count(*) FROM alerts WHERE alert_id = $id",
                              {"id": action.alert_id}).fetchone()[0] == 0:
                    taken.refuse(line.number, line.text, UnknownAlertError(f"no alert number {action.alert_id}"))
                    continue
                params = {"id": action.alert_id, "now": to_db_time(now), "by": action.by}
                if action.action == "acknowledge":
                    db.execute("UPDATE alerts SET acknowledged_at = $now, acknowledged_by = $by "
                               "WHERE alert_id = $id AND acknowledged_at IS NULL", params)
                else:
                    db.execute("UPDATE alerts SET closed_at = $now, closed_by = $by "
                               "WHERE alert_id = $id AND closed_at IS NULL", params)
                applied += 1
    return AppliedActions(applied, taken.errors)
