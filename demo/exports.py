"""Spend files for the demo: the campaign's cost as the marketer would download it.

The report's spend importer must cope with real exports, so the demo (and the ROI
simulator, whose worlds are demo worlds) writes one: a Google Ads UI "Campaign report"
CSV, with its title and date-range lines above the header, quoted figures with
thousands separators, "--" for metrics that do not apply, and the ``Total: ...`` rows at
the bottom. ``write_truth`` records what the world
really did, for tests and for the demo's "did the report find it?" check.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from demo.world import (
    BRAND_PHI,
    BRAND_SD,
    MARKET_PHI,
    MARKET_SD,
    MEAN_REPLIES,
    DemoWorld,
    stable_seed,
)

GOOGLE_ADS_HEADER = ("Day", "Campaign", "Campaign ID", "Currency code", "Cost", "Impr.",
                     "Clicks", "Engagements")


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _count(value: int) -> str:
    return f"{value:,}"


def _long_date(day: date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


@dataclass(frozen=True, slots=True)
class AdsDay:
    """One campaign's day in a Google Ads UI export; ``engagements`` None is shown "--"."""

    day: date
    campaign_name: str
    campaign_id: str
    currency: str
    cost: float
    impressions: int
    clicks: int
    engagements: int | None


def google_ads_csv(days: Iterable[AdsDay]) -> str:
    """The Google Ads UI "Campaign report" CSV of ``days``: a title line, a date-range
    line, the header ``GOOGLE_ADS_HEADER``, one row per campaign and day (by day, then campaign id) with
    quoted figures with thousands separators and "--" for an unknown metric, and the
    ``Total:`` rows at the bottom. Lines end in CRLF, as csv writes them."""
    rows = sorted(days, key=lambda row: (row.day, row.campaign_id))
    currencies = {row.currency for row in rows} or {"USD"}
    currency = currencies.pop() if len(currencies) == 1 else "--"
    totals = (currency, _money(sum(row.cost for row in rows)), _count(sum(row.impressions for row in rows)),
              _count(sum(row.clicks for row in rows)), _count(sum(row.engagements or 0 for row in rows)))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["Campaign report"])
    if rows:
        writer.writerow([f"{_long_date(rows[0].day)} - {_long_date(max(row.day for row in rows))}"])
    else:
        writer.writerow(["All time"])
    writer.writerow(GOOGLE_ADS_HEADER)
    for row in rows:
        writer.writerow([row.day.isoformat(), row.campaign_name, row.campaign_id, row.currency, _money(row.cost),
                         _count(row.impressions), _count(row.clicks),
                         "--" if row.engagements is None else _count(row.engagements)])
    writer.writerow(["Total: Account", "--", "--", *totals])
    writer.writerow(["Total: Campaigns", "--", "--", *totals])
    return buffer.getvalue()


def ads_days(world: DemoWorld) -> list[AdsDay]:
    """Every campaign's days as the ad platform reports them: the world's paced spend
    (``DemoWorld.daily_spend``, account-local flight dates) with plausible impressions
    (CPM of $7.50-11), clicks (CTR 0.9-1.6 %) and engagements (0.2-0.5 % of
    impressions, left blank on about one day in five), seeded per campaign and day."""
    rows = []
    for campaign in world.campaigns:
        for day, cost in world.daily_spend(campaign).items():
            rng = random.Random(stable_seed(world.seed, "ads", campaign.campaign_id, day.isoformat()))
            impressions = int(cost / rng.uniform(7.5, 11.0) * 1000)
            clicks = int(impressions * rng.uniform(0.009, 0.016))
            engagements = int(impressions * rng.uniform(0.002, 0.005)) if rng.random() < 0.8 else None
            rows.append(AdsDay(day, campaign.name, campaign.campaign_id, campaign.currency, cost, impressions,
                               clicks, engagements))
    return rows


def write_google_ads_export(path: str | Path, world: DemoWorld) -> Path:
    """Write every campaign's days (``ads_days``) as a Google Ads UI campaign report CSV:
    the one writer of the demo's, the ROI simulator's and the tests' spend files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(google_ads_csv(ads_days(world)))
    return path


def write_truth(path: str | Path, world: DemoWorld, end: datetime | None = None) -> Path:
    """Write the world's ground truth as JSON: seed, brand profiles, each campaign
    with its flight, true NSS lift and daily spend (what the report should recover), and
    each care team with how it chooses threads and, with ``end``, what its replies did to
    the threads it answered from the world's start to ``end`` (``DemoWorld.care_truth``:
    what ``listener care`` and the report's reply-effect estimate should recover)."""
    path = Path(path)
    truth = {
        "seed": world.seed,
        "start": world.start.isoformat(),
        "mood_model": {
            "market_ar1": {"phi": MARKET_PHI, "sd": MARKET_SD},
            "brand_ar1": {"phi": BRAND_PHI, "sd": BRAND_SD},
            "day": "UTC day for the AR(1) terms; lift by account-local flight date",
            "mean_replies_per_root": MEAN_REPLIES,
        },
        "brands": [
            {"name": b.name, "slug": b.slug, "mentions_per_day": b.mentions_per_day,
             "base_nss": b.base_nss, "opinion_rate": b.opinion_rate}
            for b in world.brands
        ],
        "campaigns": [
            {
                "campaign_id": c.campaign_id,
                "name": c.name,
                "brand": c.brand,
                "flight_start": c.flight_start.isoformat(),
                "flight_end": c.flight_end.isoformat(),
                "nss_lift": c.nss_lift,
                "currency": c.currency,
                "account_timezone": c.account_timezone,
                "daily_spend": {day.isoformat(): cost
                                for day, cost in world.daily_spend(c).items()},
                "total_spend": round(sum(world.daily_spend(c).values()), 2),
            }
            for c in world.campaigns
        ],
        "care": [
            {"brand": team.brand, "account": team.account, "business_hours": team.business_hours,
             "answer_negative": team.answer_negative, "answer_question": team.answer_question,
             "reply_minutes_mean": team.reply_minutes, "turn_positive": team.turn,
             "effect": None if end is None else {"start": world.start.isoformat(), "end": end.isoformat(),
                                                 **world.care_truth(team.brand, world.start, end)}}
            for team in world.care
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return path


PLAN_HEADER = ("campaign_id", "brand", "flight_start", "flight_end", "washout_days", "primary_kpi",
               "goal_direction", "goal_value", "competitors", "campaign_tags", "account_timezone")
DEMO_WASHOUT_DAYS = 7
DEMO_GOAL_NSS = 5.0


def write_plan(path: str | Path, world: DemoWorld) -> Path:
    """The plan a marketer would have pre-registered for the demo's campaigns: flight,
    a 7-day washout, the goal (+5 NSS points), every other brand as a competitor."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PLAN_HEADER)
        for campaign in world.campaigns:
            rivals = [b.name for b in world.brands if b.name != campaign.brand]
            writer.writerow([campaign.campaign_id, campaign.brand, campaign.flight_start.isoformat(),
                             campaign.flight_end.isoformat(), DEMO_WASHOUT_DAYS, "nss", "increase",
                             DEMO_GOAL_NSS, ";".join(rivals), "", campaign.account_timezone])
    return path
