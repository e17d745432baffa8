"""How a day and a moment are written for people ("2 Nov 2026", "22 Nov 2026, 18:59 UTC"):
the report, alert summaries and anything else a person reads. A module of its own, free of
numpy and statsmodels, so light commands (``listener alerts``) can use it."""

from __future__ import annotations

from datetime import date, datetime, timezone


def human_date(day: date) -> str:
    """"2 Nov 2026": the report's one way of writing a day for people."""
    return f"{day.day} {day:%b %Y}"


def human_time(moment: datetime | str | None) -> str:
    """"22 Nov 2026, 18:59 UTC": the report's one way of writing a moment for people
    (seconds and microseconds dropped; an ISO 8601 string is read first; a naive time is
    taken as UTC, as the database stores them)."""
    if moment is None:
        return "unknown"
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment  # not a time: shown as given
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return f"{human_date(moment.date())}, {moment:%H:%M} UTC"
