"""``listener report``: the campaign mood-ROI report, from the database.

Wiring only: storage.report_data reads mentions, spend and plans; analysis.roi turns
account-local daily counts into effects and verdicts (docs/roi-method.md) and the typed
report (``analysis.roi.report.Report``); analysis.report_render renders that report as
Markdown, one offline HTML file or report.json.

Days are the ad account's: mention times (UTC) are cut into local days of the plan's
time zone (else the spend file's, else UTC, and the report says so). Only complete
local days are analysed: never today, and a first or last day the data cover only part
of (``analysis.roi.daily.complete_days``) is left out and named in the report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from datetime import date, datetime, time, timedelta, timezone
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from analysis.roi import (
    BrandDaily,
    CampaignPlan,
    CampaignResult,
    CompleteDays,
    DailySpend,
    analyse_campaign,
    complete_days,
    daily_from_buckets,
)
from analysis.roi.report import CampaignCare, Monitor, Report, ReportAlert, ScoredBy
from analysis.roi.verdict import human_date
from listener.errors import ListenerError
from listener.config import BrandSettings
from storage import report_data
from storage.alerts import evaluated_through, list_alerts
from storage.care import campaign_care
from listener.formatting import provenance_json, provenance_text
from storage.queries import provenance, stored_brands
from storage.store import Store

MONITOR_HOURS = 48


@dataclass(frozen=True)
class _Window:
    start: date
    end: date

    def utc_bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        lo = datetime.combine(self.start, time(), tz).astimezone(timezone.utc)
        hi = datetime.combine(self.end + timedelta(days=1), time(), tz).astimezone(timezone.utc)
        return lo, hi


def _brand_daily(store: Store, brand: str, window: _Window, tz: ZoneInfo, tags: tuple[str, ...]) -> BrandDaily:
    lo, hi = window.utc_bounds(tz)
    rows = report_data.mention_buckets(store, brand, lo, hi, tags)
    zone = tz.key

    def series(selected: list[report_data.Bucket]) -> Any:
        return daily_from_buckets(((r.bucket, r.label, r.count, r.weight) for r in selected), zone, window.start,
                                  window.end)

    organic = [r for r in rows if not r.tagged]
    tagged = [r for r in rows if r.tagged]
    by_source = {source: series([r for r in organic if r.source == source])
                 for source in sorted({r.source for r in organic})}
    return BrandDaily(brand, series(organic), series(tagged) if tags else None, by_source)


def _complete_days(store: Store, brand: str, span: tuple[datetime, datetime], now: datetime,
                   tz: ZoneInfo) -> CompleteDays:
    """The brand's complete local days: its volume over the whole span decides whether
    the first and last days are whole (data from midnight, data to midnight)."""
    first, last = span
    rows = report_data.mention_buckets(store, brand, first, last + timedelta(microseconds=1))
    return complete_days(((r.bucket, r.count) for r in rows), first, last, now, tz.key)


def _monitor(store: Store, brand: str, now: datetime) -> Monitor:
    """The brand's alerts of the last ``MONITOR_HOURS`` hours, as stored by the hourly
    stage: the rows ``listener alerts --since 48h`` lists and the live view shows, so the
    three never disagree about what raised an alarm."""
    start = now - timedelta(hours=MONITOR_HOURS)
    rows = [r for r in list_alerts(store, brand=brand, since=start) if r["hour"] < now]
    alerts = tuple(ReportAlert(r["alert_id"], r["metric"], r["direction"], r["hour"], r["closed_at"], r["summary"])
                   for r in reversed(rows))  # oldest first, as a reader goes through hours
    return Monitor(brand, start, now, evaluated_through(store, brand), alerts)


def _campaign_care(store: Store, plan: CampaignPlan, tz: ZoneInfo, now: datetime,
                   brands: Sequence[BrandSettings]) -> CampaignCare:
    """The brand's care figures for threads opened in the campaign's effect window
    (flight and washout, account-local days, up to ``now``), with the business hours and
    engagement goals (``care_goals``) its plan sets, else its config's."""
    configured = next((b for b in brands if b.name.casefold() == plan.brand.casefold()), None)
    return CampaignCare(plan.campaign_id, campaign_care(store, plan, tz, now, configured.business_hours if configured
                                                        else None, configured.care_goals if configured else ()))


def build_report(
    store: Store, now: datetime, *, brand: str | None = None, campaign: str | None = None,
    timezone_name: str | None = None, brands: Sequence[BrandSettings] = (),
) -> Report:
    """The report (``analysis.report_render`` renders it; ``Report.to_json()`` is report.json).
    ``brands``, the configured brands, give each campaign's "Conversations" its business
    hours and engagement goals."""
    plans: list[CampaignPlan] = report_data.plans(store)
    if campaign is not None:
        plans = [p for p in plans if p.campaign_id == campaign]
        if not plans:
            raise ListenerError(f"--campaign: no plan for campaign {campaign!r} (import one with "
                                "'listener campaigns import FILE --plan PLAN')")
    if brand is not None:
        plans = [p for p in plans if p.brand.casefold() == brand.casefold()]
    known = stored_brands(store)
    headline_brand = brand or (plans[0].brand if plans else (known[0] if known else None))
    if headline_brand is None:
        raise ListenerError("the database holds no mentions yet: nothing to report")
    notes: list[str] = []
    campaigns: list[CampaignResult] = []
    conversations: list[CampaignCare] = []
    zone_used = None
    cache: dict[tuple, BrandDaily] = {}

    def daily(name: str, window: _Window, tz: ZoneInfo, tags: tuple[str, ...]) -> BrandDaily:
        # Campaigns of one report usually share the window: read each brand once.
        key = (name, window, tz.key, tags)
        if key not in cache:
            cache[key] = _brand_daily(store, name, window, tz, tags)
        return cache[key]
    for stored in plans:
        paid = report_data.daily_spend(store, stored.campaign_id)
        zone_name = timezone_name or report_data.campaign_timezone(store, stored, paid)
        if zone_name is None:
            zone_name = "UTC"
            notes.append(f"Campaign {stored.campaign_id}: no account time zone in the plan or the spend file; "
                         "days are cut in UTC (pass --timezone to fix).")
        tz = ZoneInfo(zone_name)
        zone_used = zone_used or zone_name
        plan = dataclasses.replace(stored, name=paid.name or "")
        competitors = plan.competitors or tuple(b for b in known if b.casefold() != plan.brand.casefold())
        span = report_data.mention_span(store, [plan.brand])
        if span is None:
            notes.append(f"Campaign {plan.campaign_id}: no mentions of {plan.brand} stored; not analysed.")
            continue
        days = _complete_days(store, plan.brand, span, now, tz)
        for day, why in days.dropped:
            notes.append(f"Campaign {plan.campaign_id}: {human_date(day)} ({zone_name}) left out as a partial "
                         f"day: {why}.")
        window = _Window(days.start, days.end)
        if window.end < window.start:
            notes.append(f"Campaign {plan.campaign_id}: less than one complete day of data; not analysed.")
            continue
        data = daily(plan.brand, window, tz, plan.campaign_tags)
        rivals = [daily(c, window, tz, plan.campaign_tags) for c in competitors]
        spend = (DailySpend.from_days(plan.campaign_id, paid.by_day, paid.currency or "USD", paid.engagements)
                 if paid.by_day else None)
        if spend is None:
            notes.append(f"Campaign {plan.campaign_id}: no spend imported; cost figures are not available.")
        others = [(p.flight_start, p.washout_end) for p in plans
                  if p.brand.casefold() == plan.brand.casefold() and p.campaign_id != plan.campaign_id]
        try:
            result = analyse_campaign(plan, data, rivals, spend, other_flights=others, timezone=zone_name,
                                      dropped_days=days.dropped)
        except ValueError as exc:
            notes.append(f"Campaign {plan.campaign_id}: not analysed: {exc}")
            continue
        campaigns.append(result)
        conversations.append(_campaign_care(store, plan, tz, now, brands))
    if not plans:
        notes.append("No campaign plan is stored: import spend and a plan with "
                     "'listener campaigns import FILE --plan PLAN' to get effects and verdicts.")
    names = sorted({headline_brand, *(c for p in plans for c in p.competitors)})
    latest, counts, unscored, duplicates = report_data.freshness(store, names)
    span = report_data.mention_span(store, [headline_brand])
    # Which scorer(s) the mood figures come from, per brand, over the headline brand's data.
    scored_by = {}
    for name in [] if span is None else names:
        scorers = provenance(store, name, span[0], span[1] + timedelta(microseconds=1))
        scored_by[name] = ScoredBy(provenance_text(scorers), provenance_json(scorers))
    return Report(
        title=f"{headline_brand}: campaign mood report", generated_at=now, brand=headline_brand,
        competitors=tuple(n for n in names if n != headline_brand), timezone=zone_used or timezone_name or "UTC",
        window=None if span is None else (span[0].date(), span[1].date()), freshness=latest, source_counts=counts,
        unscored=unscored, duplicates=duplicates, scored_by=scored_by, campaigns=tuple(campaigns),
        monitor=_monitor(store, headline_brand, now), notes=tuple(notes), conversations=tuple(conversations),
    )


def write_report_files(report: Report, stem: Path) -> tuple[Path, ...]:
    """stem.json, stem.md and stem.html."""
    from analysis.report_render import render

    paths = []
    for fmt in ("json", "md", "html"):
        path = stem.with_suffix(f".{fmt}")
        path.write_text(render(report, fmt), encoding="utf-8")
        paths.append(path)
    return tuple(paths)
