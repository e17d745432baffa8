"""Read path of the campaign report: mention rows, spend, plans, freshness (the monitor's
hourly mood is ``storage.rollup.hourly_counts``).

Rows are returned raw (UTC); the account-time-zone day cutting is the analysis's job
(``analysis.roi.daily``), so a half-hour zone is cut right.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from analysis.campaign_plan import CampaignPlan, Lineage
from storage.queries import LABELLED_MENTIONS_OF_BRAND
from storage.store import Store, from_db_time, to_db_time


def tag_pattern(tags: Sequence[str]) -> str | None:
    """A regex matching any campaign tag (#hashtag or @handle) as a whole word."""
    if not tags:
        return None
    return "|".join(rf"(^|[^\w]){re.escape(t.casefold())}($|[^\w])" for t in tags)


BUCKET_MINUTES = 15


class Bucket(NamedTuple):
    """Mentions in one 15-minute bucket (UTC) with one label (None: volume only, i.e.
    unscored or a near-duplicate copy), from one source, with or without a campaign tag;
    ``weight`` sums 1 + likes + reposts + replies."""

    bucket: datetime
    label: str | None
    count: int
    weight: float
    source: str
    tagged: bool


def mention_buckets(
    store: Store, brand: str, start: datetime, end: datetime, tags: Sequence[str] = ()
) -> list[Bucket]:
    """Mentions of ``brand`` created in [start, end), counted per bucket, label, source
    and campaign tag. The counting happens in the database: a report over 450k mentions
    reads a few thousand rows."""
    pattern = tag_pattern(tags)
    with store.native() as db:
        rows = db.execute(
            f"""
            SELECT time_bucket(INTERVAL '{BUCKET_MINUTES} minutes', m.created_at) AS bucket,
                   m.label,
                   count(*), sum(1 + m.likes + m.reposts + m.replies)::DOUBLE, m.source,
                   CASE WHEN $pattern IS NULL THEN false
                        ELSE regexp_matches(lower(m.text), $pattern) END AS tagged
            {LABELLED_MENTIONS_OF_BRAND}
            GROUP BY ALL
            """,
            {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end), "pattern": pattern},
        ).fetchall()
    return [Bucket(from_db_time(r[0]), *r[1:]) for r in rows]


def mention_span(store: Store, brands: Sequence[str]) -> tuple[datetime, datetime] | None:
    with store.native() as db:
        lo, hi = db.execute(
            "SELECT min(created_at), max(created_at) FROM mentions WHERE brand IN (SELECT unnest($b::VARCHAR[]))",
            {"b": list(brands)},
        ).fetchone()
    return None if lo is None else (from_db_time(lo), from_db_time(hi))


def plans(store: Store) -> list[CampaignPlan]:
    """The stored plans (``storage.campaigns.save_plans``), by flight start."""
    with store.native() as db:
        rows = db.execute(
            "SELECT campaign_id, brand, flight_start, flight_end, washout_days, primary_kpi, goal_direction, "
            "goal_value, competitors, campaign_tags, account_timezone, file, file_sha256, file_row, care_goals "
            "FROM campaign_plans ORDER BY flight_start, campaign_id"
        ).fetchall()
    return [CampaignPlan(campaign_id=r[0], brand=r[1], flight_start=r[2], flight_end=r[3], washout_days=r[4],
                         primary_kpi=r[5], goal_direction=r[6], goal_value=r[7],
                         competitors=tuple(json.loads(r[8])), campaign_tags=tuple(json.loads(r[9])),
                         account_timezone=r[10], lineage=Lineage(r[11], r[12], r[13]),
                         care_goals=tuple(json.loads(r[14]).items()) if r[14] else ()) for r in rows]


@dataclass(frozen=True, slots=True)
class CampaignSpend:
    """A campaign's stored spend by account-local day (hourly rows summed into their day):
    ``engagements`` None on a day some row left blank (unknown, not 0); ``currency``,
    ``account_timezone`` and ``name`` (the platform's display name) as the spend file gave
    them, None without spend rows."""

    by_day: dict[date, float]
    engagements: dict[date, float | None]
    currency: str | None
    account_timezone: str | None
    name: str | None


def daily_spend(store: Store, campaign_id: str) -> CampaignSpend:
    """The campaign's spend per day (empty without spend rows)."""
    with store.native() as db:
        rows = db.execute(
            "SELECT date, sum(spend)::DOUBLE, CASE WHEN count(*) = count(engagements) THEN sum(engagements) END, "
            "any_value(currency), any_value(account_timezone), any_value(campaign_name) "
            "FROM spend WHERE campaign_id = ? GROUP BY date ORDER BY date",
            [campaign_id],
        ).fetchall()
    first = rows[0] if rows else (None,) * 6
    return CampaignSpend({r[0]: r[1] for r in rows}, {r[0]: (None if r[2] is None else float(r[2])) for r in rows},
                         first[3], first[4], first[5])


def campaign_timezone(store: Store, plan: CampaignPlan, spend: CampaignSpend | None = None) -> str | None:
    """The time zone a campaign's account-local days are cut in: the plan's
    ``account_timezone``, else the spend file's (``spend`` when the caller has read it
    already), None without either (callers cut in UTC and say so). The report, the care
    page and the ``campaign_daily`` view (storage/views.py) all follow this order."""
    if plan.account_timezone:
        return plan.account_timezone
    return (spend if spend is not None else daily_spend(store, plan.campaign_id)).account_timezone


def freshness(store: Store, brands: Sequence[str]) -> tuple[dict[str, str], dict[str, int], int, int]:
    """Latest mention per source (ISO, UTC), mentions per source, unscored, duplicates."""
    with store.native() as db:
        rows = db.execute(
            "SELECT m.source, max(m.created_at), count(*), count(*) FILTER (WHERE m.unscored), "
            "count(*) FILTER (WHERE m.duplicate) "
            "FROM mood_mentions(TIMESTAMP '-infinity', TIMESTAMP 'infinity') m "
            "WHERE m.brand IN (SELECT unnest($b::VARCHAR[])) GROUP BY m.source ORDER BY m.source",
            {"b": list(brands)},
        ).fetchall()
    latest = {r[0]: from_db_time(r[1]).isoformat() for r in rows}
    counts = {r[0]: r[2] for r in rows}
    return latest, counts, sum(r[3] for r in rows), sum(r[4] for r in rows)
