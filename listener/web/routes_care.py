"""The workspace's care page (issue 15 items 2 and 4): per brand, how it answers its
customers, whether answering turns its threads, and its progress against its engagement
goals, each with its 95 % interval.

    GET /care            every brand the view shows; ?brand=NAME for one; ?days=7|28|90
                         (threads opened in the last DAYS days, default 28)
    GET /api/care.json   the same figures as JSON (those of ``listener care --json``, and
                         each campaign's)

The figures come from storage.care alone: ``care_figures`` over the period with the
brand's business hours and ``care_goals`` (the config's, through BrandView), and
``campaign_care`` for each campaign whose effect window (flight and washout, in the plan's
account time zone, else UTC) overlaps the period, against the goals its plan sets and the
brand's for the others: the one computation ``listener care`` and the campaign report
use. Registered by listener.web.app (EXTENSIONS); read-only like every route.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from analysis.campaign_plan import CampaignPlan
from analysis.care import CareFigures, effect_sentences, goal_sentence, goal_text
from listener.live_view import BrandView
from listener.web.access import Refused
from listener.web.app import live, page
from storage import report_data
from storage.care import campaign_care, care_figures
from storage.live import known_brands
from storage.store import Store

PERIODS = (7, 28, 90)
DEFAULT_DAYS = 28


def _query(request: Request) -> tuple[str | None, int]:
    """The brand asked for (None: all) and the period in days; Refused (400) naming a bad one."""
    params = request.query_params
    raw = params.get("days") or str(DEFAULT_DAYS)
    if raw not in {str(p) for p in PERIODS}:
        raise Refused(HTTPStatus.BAD_REQUEST, "Bad period",
                      f"days must be one of {', '.join(map(str, PERIODS))}, got {raw[:20]!r}.")
    return params.get("brand") or None, int(raw)


def _figures(care: CareFigures) -> dict[str, Any]:
    """What the page shows of one set of figures: the JSON, and the sentences shared with
    ``listener care`` and the report (analysis.care)."""
    s = care.summary
    return {**care.to_json(),
            "response_rate_text": goal_text("response_rate", s.response_rate),
            "response_ci_text": None if s.response_rate_ci is None else
            f"{goal_text('response_rate', s.response_rate_ci[0])} to {goal_text('response_rate', s.response_rate_ci[1])}",
            "median_text": goal_text("reply_hours", s.reply_hours_median),
            "p90_text": goal_text("reply_hours", s.reply_hours_p90),
            "resolved_text": goal_text("resolved_share", s.resolved_share),
            "goal_lines": [(g.verdict or "no figure yet", goal_sentence(g)) for g in care.goals],
            "effect_lines": effect_sentences(care.effect), "caveats": list(care.effect.caveats)}


def _brand_care(store: Store, brand: BrandView, days: int, now: datetime,
                plans: list[CampaignPlan]) -> dict[str, Any]:
    start = now - timedelta(days=days)
    campaigns = []
    for plan in plans:
        if plan.brand.casefold() != brand.name.casefold():
            continue
        tz = ZoneInfo(report_data.campaign_timezone(store, plan) or "UTC")  # the report's rule: plan, else spend file
        lo, hi = plan.effect_bounds(tz)
        if lo < now and hi > start:  # the effect window overlaps the period
            figures = campaign_care(store, plan, tz, now, brand.business_hours, brand.care_goals)
            campaigns.append({"campaign_id": plan.campaign_id, "flight_start": plan.flight_start.isoformat(),
                              "washout_end": plan.washout_end.isoformat(), "timezone": tz.key,
                              **_figures(figures)})
    figures = care_figures(store, brand.name, start, now, brand.business_hours, brand.care_goals)
    return {**_figures(figures), "campaigns": campaigns}


def care_data(request: Request) -> dict[str, Any]:
    """Every shown brand's care figures over the period (404 for a brand the view does not show)."""
    app = live(request)
    only, days = _query(request)
    now = app.now()
    with app.reader.reading() as reading:
        brands = app.brands or tuple(BrandView(n) for n in known_brands(reading.store, now))
        shown = [b for b in brands if only is None or b.name == only]
        if not shown and only is not None:
            raise Refused(HTTPStatus.NOT_FOUND, "Unknown brand", f"No brand named {only!r} in this view.")
        plans = report_data.plans(reading.store)
        cared = [_brand_care(reading.store, b, days, now, plans) for b in shown]
    return {"as_of": now.isoformat(), "days": days, "brand": only, "brands": cared}


def care_page(request: Request) -> Response:
    data = care_data(request)
    return page(request, "care.html", title="Customer care", now=live(request).now(), periods=PERIODS, **data)


def care_json(request: Request) -> Response:
    data = care_data(request)
    for brand in data["brands"]:  # the page's wording is not data
        for figures in (brand, *brand["campaigns"]):
            for key in [k for k in figures if k.endswith("_text") or k.endswith("_lines")]:
                del figures[key]
    body = json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return Response(body, media_type="application/json; charset=utf-8")


def register(app: Starlette) -> None:
    """Add the care page and its JSON (listener.web.app's extension hook)."""
    app.router.routes.append(Route("/care", care_page, methods=["GET"]))
    app.router.routes.append(Route("/api/care.json", care_json, methods=["GET"]))
