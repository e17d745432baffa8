"""Alerts in the database: what detection reads (a brand's hourly series, its pull
runs, pending and low-coverage hours, the texts and threads of an hour range) and what
it writes (alerts, their closing, delivery attempts, how far each brand was evaluated).

Times are tz-aware UTC at this module's edge and naive UTC inside the database.
How far a brand has been evaluated is kept in ``meta`` (key ``alerts.evaluated_through:
BRAND``, the last hour evaluated), so that alerting needs no table of its own beyond the
``alerts`` and ``alert_deliveries`` of schema version 2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from analysis.alert_evaluation import NewAlert
from analysis.alerts import PullRun, SourceHour
from storage.queries import LABELLED_MENTIONS_OF_BRAND  # what counts for mood: storage.schema's mood_mentions
from storage.store import Store, from_db_time, to_db_time

_EVALUATED_KEY = "alerts.evaluated_through:"


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def first_hour(store: Store, brand: str) -> datetime | None:
    """The brand's first hour with mentions in the hourly table."""
    with store.native() as db:
        return from_db_time(db.execute("SELECT min(hour) FROM hourly_mood WHERE brand = $brand",
                                       {"brand": brand}).fetchone()[0])


def source_hours(store: Store, brand: str, start: datetime, end: datetime) -> list[SourceHour]:
    """The brand's hourly rows per source in [start, end)."""
    with store.native() as db:
        rows = db.execute(
            "SELECT source, hour, mentions, scored, positive, negative FROM hourly_mood "
            "WHERE brand = $brand AND hour >= $lo AND hour < $hi ORDER BY hour, source",
            {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end)},
        ).fetchall()
    return [SourceHour(source, from_db_time(h), int(m), int(s), int(p), int(n)) for source, h, m, s, p, n in rows]


def pull_runs(store: Store, brand: str, since: datetime) -> list[PullRun]:
    """The brand's pull runs started at or after ``since``."""
    with store.native() as db:
        rows = db.execute(
            "SELECT source, started_at, status FROM runs WHERE kind = 'pull' AND brand = $brand "
            "AND started_at >= $since ORDER BY started_at",
            {"brand": brand, "since": to_db_time(since)},
        ).fetchall()
    return [PullRun(source, from_db_time(started), status) for source, started, status in rows]


def pending_hours(store: Store, brand: str, start: datetime, end: datetime) -> set[datetime]:
    """Hours in [start, end) with mentions the hourly stage has not rolled up yet."""
    with store.native() as db:
        rows = db.execute(
            "SELECT DISTINCT hour FROM pending_hours WHERE brand = $brand AND hour >= $lo AND hour < $hi",
            {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end)},
        ).fetchall()
    return {from_db_time(row[0]) for row in rows}


def low_coverage_hours(store: Store, brand: str, start: datetime, end: datetime, *, min_coverage: float,
                       min_posts: int) -> dict[datetime, list[dict[str, Any]]]:
    """Hours in [start, end) where a source stored fewer search hits (not thread context)
    than ``min_coverage`` of the posts the platform counted, if it counted ``min_posts``
    or more; per hour, the sources and their figures."""
    lo, hi = to_db_time(start), to_db_time(end)
    with store.native() as db:
        rows = db.execute(
            """
            WITH stored AS (
                SELECT source, date_trunc('hour', created_at) AS hour, count(*) AS n FROM mentions
                WHERE brand = $brand AND NOT thread_context AND created_at >= $lo AND created_at < $hi
                GROUP BY ALL
            )
            SELECT p.hour, p.source, p.posts, coalesce(s.n, 0) AS stored
            FROM platform_volume p LEFT JOIN stored s ON s.source = p.source AND s.hour = p.hour
            WHERE p.brand = $brand AND p.hour >= $lo AND p.hour < $hi AND p.posts >= $min_posts
              AND coalesce(s.n, 0) < $share * p.posts
            ORDER BY p.hour, p.source
            """,
            {"brand": brand, "lo": lo, "hi": hi, "min_posts": min_posts, "share": min_coverage},
        ).fetchall()
    low: dict[datetime, list[dict[str, Any]]] = {}
    for hour, source, posts, stored in rows:
        low.setdefault(from_db_time(hour), []).append({"source": source, "platform_posts": posts, "stored": stored})
    return low


def evaluated_through(store: Store, brand: str) -> datetime | None:
    """The last hour of ``brand`` that alerting has evaluated (or skipped as incomplete)."""
    value = store.get_meta(_EVALUATED_KEY + brand)
    return None if value is None else from_db_time(datetime.fromisoformat(value))


def alert_tracks(store: Store, brand: str) -> dict[tuple[str, str], tuple[int | None, datetime | None]]:
    """Per (metric, direction) of ``brand``: the open alert's id (None when none is
    open) and the hour of the latest alert."""
    with store.native() as db:
        rows = db.execute(
            "SELECT metric, direction, max(hour), max(alert_id) FILTER (WHERE closed_at IS NULL) "
            "FROM alerts WHERE brand = $brand GROUP BY ALL",
            {"brand": brand},
        ).fetchall()
    return {(metric, direction): (open_id, from_db_time(last)) for metric, direction, last, open_id in rows}


def texts(store: Store, brand: str, start: datetime, end: datetime, *, label: str | None = None,
          limit: int = 5000) -> list[str]:
    """Texts of the brand's mentions created in [start, end): all of them, or those
    counting for mood with effective ``label``; a fixed pseudo-random sample of
    ``limit`` when there are more (the same on every call). Without a label the rows are
    the mentions themselves but the brand's own posts, read without mood_mentions' join to
    the scores (a third of the time for 7 days on the 10M-mention bench), and the sample is
    chosen by row before its texts are read: carried through the sort, the texts of every
    mention of the range were read (32 ms of CPU for 7 days of the biggest brand on the
    10M-mention bench, 22 ms chosen by row; the same texts)."""
    params: dict[str, Any] = {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end), "limit": limit}
    if label is not None:
        params["label"] = label
        query = f"SELECT m.text {LABELLED_MENTIONS_OF_BRAND} AND m.label = $label ORDER BY hash(m.source, m.id) LIMIT $limit"
    else:
        query = ("WITH pick AS (SELECT m.rowid AS r, hash(m.source, m.id) AS h FROM mentions m "
                 "WHERE m.brand = $brand AND m.created_at >= $lo AND m.created_at < $hi AND m.own IS NOT TRUE "
                 "ORDER BY h LIMIT $limit) "
                 "SELECT m.text FROM mentions m JOIN pick ON m.rowid = pick.r ORDER BY pick.h")
    with store.native() as db:
        rows = db.execute(query, params).fetchall()
    return [row[0] for row in rows]


def top_conversations(store: Store, brand: str, start: datetime, end: datetime, *, rank: str,
                      limit: int = 5) -> list[dict[str, Any]]:
    """The threads most active in [start, end), ranked by their mentions labelled
    ``rank`` ('negative', 'positive') or all their mentions ('mentions'); with the
    thread's link and title (the hourly stage's, else its first mention in the range)
    and the hourly stage's figures for the whole thread: its NSS over people, SE,
    voices, authors and label (None where the stage has not scored it)."""
    order = {"negative": "negative", "positive": "positive", "mentions": "mentions"}[rank]
    with store.native() as db:
        cursor = db.execute(
            f"""
            WITH w AS (
                SELECT m.source, m.conversation_id, count(*) AS mentions,
                       count(*) FILTER (WHERE m.label = 'positive') AS positive,
                       count(*) FILTER (WHERE m.label = 'negative') AS negative,
                       sum(m.likes + m.reposts + m.replies) AS engagement,
                       arg_min(m.url, m.created_at) AS first_url, arg_min(m.text, m.created_at) AS first_text
                {LABELLED_MENTIONS_OF_BRAND}
                GROUP BY ALL
            )
            SELECT w.source, w.conversation_id, w.mentions, w.positive, w.negative, w.engagement,
                   coalesce(c.url, w.first_url) AS url, coalesce(c.title, left(w.first_text, 280)) AS title,
                   c.nss AS thread_nss, c.nss_se AS thread_nss_se, c.voices AS thread_voices,
                   c.authors AS thread_authors, c.label AS thread_label
            FROM w LEFT JOIN conversations c
                ON c.source = w.source AND c.conversation_id = w.conversation_id AND c.brand = $brand
            ORDER BY w.{order} DESC, w.engagement DESC, w.mentions DESC, w.source, w.conversation_id
            LIMIT $limit
            """,
            {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end), "limit": limit},
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def save_evaluation(store: Store, brand: str, alerts: Sequence[NewAlert],
                    closings: Sequence[tuple[int, datetime]], through: datetime | None) -> list[int]:
    """In one transaction: store new alerts (an alert already stored for the same brand,
    metric, direction and hour is kept as it was), close alerts, and move the brand's
    evaluated mark to ``through``. Returns the new alerts' ids."""
    ids = []
    with store.native() as db:
        for alert in alerts:
            row = db.execute(
                "INSERT INTO alerts (brand, metric, direction, hour, detected_at, value, baseline, statistic, "
                "control_limit, mentions, summary, explanation, closed_at) "
                "VALUES ($brand, $metric, $direction, $hour, $detected_at, $value, $baseline, $statistic, "
                "$control_limit, $mentions, $summary, $explanation, $closed_at) "
                "ON CONFLICT (brand, metric, direction, hour) DO NOTHING RETURNING alert_id",
                {"brand": alert.brand, "metric": alert.metric, "direction": alert.direction,
                 "hour": to_db_time(alert.hour), "detected_at": to_db_time(alert.detected_at),
                 "value": _finite(alert.value), "baseline": _finite(alert.baseline),
                 "statistic": _finite(alert.statistic), "control_limit": _finite(alert.control_limit),
                 "mentions": alert.mentions, "summary": alert.summary,
                 "explanation": json.dumps(alert.explanation, ensure_ascii=False, default=str),
                 "closed_at": to_db_time(alert.closed_at)},
            ).fetchone()
            if row is not None:
                ids.append(row[0])
        for alert_id, closed_at in closings:
            db.execute("UPDATE alerts SET closed_at = $closed WHERE alert_id = $id AND closed_at IS NULL",
                       {"closed": to_db_time(closed_at), "id": alert_id})
        if through is not None:
            db.execute(
                "INSERT INTO meta VALUES ($key, $value) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                {"key": _EVALUATED_KEY + brand, "value": to_db_time(through).isoformat()},
            )
    return ids


def record_delivery(store: Store, alert_id: int, channel: str, attempted_at: datetime, status: str,
                    error: str | None = None) -> None:
    """One delivery attempt ('sent' or 'failed', with the reason)."""
    with store.native() as db:
        db.execute("INSERT INTO alert_deliveries VALUES ($id, $channel, $at, $status, $error)",
                   {"id": alert_id, "channel": channel, "at": to_db_time(attempted_at), "status": status,
                    "error": error})


_ALERT_COLUMNS = ("alert_id, brand, metric, direction, hour, detected_at, value, baseline, statistic, "
                  "control_limit, mentions, summary, explanation, closed_at")


def _alert_records(db: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    names = [column[0] for column in cursor.description]
    records = []
    for row in cursor.fetchall():
        record = dict(zip(names, row))
        for key in ("hour", "detected_at", "closed_at"):
            record[key] = from_db_time(record[key])
        record["explanation"] = json.loads(record["explanation"]) if record["explanation"] else {}
        records.append(record)
    return records


def undelivered(store: Store, channel: str, since: datetime) -> list[dict[str, Any]]:
    """Alerts of hours at or after ``since`` that have no 'sent' delivery on ``channel``,
    oldest first."""
    with store.native() as db:
        return _alert_records(
            db,
            f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE a.hour >= $since AND NOT EXISTS ("
            "SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.alert_id AND d.channel = $channel "
            "AND d.status = 'sent') ORDER BY a.hour, a.alert_id",
            {"since": to_db_time(since), "channel": channel},
        )


def list_alerts(store: Store, *, brand: str | None = None, since: datetime | None = None,
                open_only: bool = False) -> list[dict[str, Any]]:
    """Alert history, newest hour first, each with its delivery attempts (oldest first)."""
    with store.native() as db:
        records = _alert_records(
            db,
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE ($brand IS NULL OR lower(brand) = lower($brand)) "
            "AND ($since IS NULL OR hour >= $since) AND (NOT $open_only OR closed_at IS NULL) "
            "ORDER BY hour DESC, alert_id DESC",
            {"brand": brand, "since": to_db_time(since), "open_only": open_only},
        )
        deliveries: dict[int, list[dict[str, Any]]] = {}
        if records:
            rows = db.execute(
                "SELECT alert_id, channel, attempted_at, status, error FROM alert_deliveries "
                "WHERE alert_id IN (SELECT unnest($ids::BIGINT[])) ORDER BY attempted_at, channel",
                {"ids": [r["alert_id"] for r in records]},
            ).fetchall()
            for alert_id, channel, attempted_at, status, error in rows:
                deliveries.setdefault(alert_id, []).append(
                    {"channel": channel, "attempted_at": from_db_time(attempted_at), "status": status, "error": error})
    for record in records:
        record["deliveries"] = deliveries.get(record["alert_id"], [])
    return records
