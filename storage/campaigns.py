"""Campaign spend and plans: the write path and the queries over them.

A spend row's key is (platform, campaign_id, date, hour); importing a file replaces
the stored rows of every key it contains, in one transaction, so re-importing a file is
harmless and a corrected export wins. Lineage (file, sha256, row) stays with each row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from analysis.campaign_plan import CampaignPlan
from storage.store import Store, to_db_time


def save_spend(store: Store, rows: Sequence[Any], now: datetime) -> int:
    """Store ``inputs.spend.SpendRow``s; returns how many rows the file holds."""
    if not rows:
        return 0
    import pyarrow as pa  # noqa: PLC0415  (only when writing: see storage.store._mention_schema)
    table = pa.table(
        {
            "date": pa.array([r.date for r in rows], pa.date32()),
            "hour": pa.array([r.hour for r in rows], pa.int32()),
            "platform": [r.platform for r in rows],
            "campaign_id": [r.campaign for r in rows],
            "campaign_name": [r.campaign_name for r in rows],
            "channel": [r.channel for r in rows],
            "brand": [r.brand for r in rows],
            "currency": [r.currency for r in rows],
            "spend": pa.array([r.spend for r in rows], pa.decimal128(18, 6)),
            "account_timezone": [r.account_timezone for r in rows],
            "impressions": pa.array([r.impressions for r in rows], pa.int64()),
            "reach": pa.array([r.reach for r in rows], pa.int64()),
            "clicks": pa.array([r.clicks for r in rows], pa.int64()),
            "engagements": pa.array([r.engagements for r in rows], pa.int64()),
            "file": [r.lineage.file for r in rows],
            "file_sha256": [r.lineage.sha256 for r in rows],
            "file_row": pa.array([r.lineage.row for r in rows], pa.int32()),
            "imported_at": pa.array([to_db_time(now)] * len(rows), pa.timestamp("us")),
        }
    )
    with store.native() as db:
        db.register("spend_rows", table)
        try:
            db.execute(
                "DELETE FROM spend s USING spend_rows r WHERE s.platform = r.platform "
                "AND s.campaign_id = r.campaign_id AND s.date = r.date "
                "AND coalesce(s.hour, -1) = coalesce(r.hour, -1)"
            )
            db.execute("INSERT INTO spend SELECT * FROM spend_rows")
        finally:
            db.unregister("spend_rows")
    return len(rows)


def save_plans(store: Store, plans: Sequence[CampaignPlan], now: datetime) -> int:
    """Store plans read from a plan file, replacing earlier plans of the same campaigns
    (``storage.report_data.plans`` loads them back)."""
    unfiled = [p.campaign_id for p in plans if p.lineage is None or p.goal_value is None]
    if unfiled:
        # A stored plan is a pre-registration: its file row and its goal are the record.
        raise ValueError(f"campaign(s) {', '.join(unfiled)}: only a plan read from a plan file "
                         "(with its lineage and goal) can be stored")
    with store.native() as db:
        for p in plans:
            db.execute(
                "INSERT OR REPLACE INTO campaign_plans (campaign_id, brand, flight_start, flight_end, washout_days, "
                "primary_kpi, goal_direction, goal_value, competitors, campaign_tags, account_timezone, file, "
                "file_sha256, file_row, imported_at, care_goals) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [p.campaign_id, p.brand, p.flight_start, p.flight_end, p.washout_days, p.primary_kpi,
                 p.goal_direction, p.goal_value, json.dumps(list(p.competitors)), json.dumps(list(p.campaign_tags)),
                 p.account_timezone, p.lineage.file, p.lineage.sha256, p.lineage.row, to_db_time(now),
                 # {goal: target} (schema 9); NULL: the plan sets none, the brand's apply
                 json.dumps(dict(p.care_goals)) if p.care_goals else None],
            )
    return len(plans)


def campaign_summary(store: Store) -> list[dict[str, Any]]:
    """One row per campaign with spend: dates, total, currency, and its plan if any."""
    with store.native() as db:
        cursor = db.execute(
            """
            SELECT s.platform, s.campaign_id, any_value(s.campaign_name) AS campaign_name,
                   min(s.date) AS first_day, max(s.date) AS last_day, count(DISTINCT s.date) AS days,
                   sum(s.spend)::DOUBLE AS spend, any_value(s.currency) AS currency,
                   any_value(p.brand) AS plan_brand, any_value(p.flight_start) AS flight_start,
                   any_value(p.flight_end) AS flight_end
            FROM spend s LEFT JOIN campaign_plans p ON p.campaign_id = s.campaign_id
            GROUP BY s.platform, s.campaign_id ORDER BY first_day, s.campaign_id
            """
        )
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
