"""The live view's care page (listener.web.routes_care, issue 15 items 2 and 4) through
Starlette's TestClient on a real DuckDB file, read the way the view reads it (read-only):
the figures are storage.care's (one computation with ``listener care`` and the report),
goals with their intervals, a campaign's plan goals over its window, everything escaped."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from starlette.testclient import TestClient

from analysis.campaign_plan import CampaignPlan, Lineage
from analysis.care import parse_business_hours
from analysis.sentiment import VaderScorer
from inputs.spend import SpendRow
from listener.live_view import BrandView
from listener.web import LiveApp, create_app
from storage.campaigns import save_plans, save_spend
from storage.care import care_figures
from storage.store import Store
from tests.storage.test_care import MON, post, save

NOW = MON + timedelta(days=2)
HOURS = parse_business_hours("Mon-Fri 09:00-18:00 Europe/Berlin")
GOALS = (("response_rate", 0.4), ("reply_hours", 2.0))
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    database = tmp_path_factory.mktemp("care") / "care.duckdb"
    with Store.open(database) as store:
        save(store, [
            post("a1", MON + timedelta(hours=1), "negative", "a"),
            post("a2", MON + timedelta(hours=1, minutes=30), "neutral", "a", own=True),
            post("a3", MON + timedelta(hours=2), "positive", "a"),
            post("b1", MON + timedelta(hours=3), "negative", "b", text=f"Acme why {HOSTILE}?"),
        ])
        save_plans(store, [CampaignPlan("c<1>", "Acme", MON.date(), MON.date(), washout_days=1, goal_value=5.0,
                                        care_goals=(("response_rate", 0.9),), lineage=Lineage("plan.csv", "0" * 64, 2))],
                   MON)
        # The plan names no account time zone; the spend file does: the campaign's days are
        # cut in the spend file's zone, as the report cuts them (storage.report_data).
        save_spend(store, [SpendRow(MON.date(), "google_ads", "c<1>", "C", None, "Acme", "USD", Decimal("10"),
                                    "America/Los_Angeles", None, None, None, None, None,
                                    Lineage("spend.csv", "1" * 64, 2))], MON)
        expected = care_figures(store, "Acme", NOW - timedelta(days=28), NOW, HOURS, GOALS).to_json()
    app = LiveApp(database=database, brands=(BrandView("Acme", (), HOURS, GOALS),), scorer=VaderScorer(),
                  clock=lambda: NOW)
    with TestClient(create_app(app), base_url="http://127.0.0.1:8177", follow_redirects=False) as client:
        yield client, expected


def test_the_care_page_shows_figures_goals_and_the_campaigns_plan_goals(world):
    client, _ = world
    answer = client.get("/care")
    assert answer.status_code == 200 and "script-src 'self'" in answer.headers["content-security-policy"]
    html = answer.text
    assert "1 of 2: 50% (95 % range 9% to 91%)" in html and "business hours (Mon,Tue,Wed,Thu,Fri 09:00-18:00" in html
    # The brand's goals with their intervals, then the campaign's: its plan's 90 % and the brand's 2 h.
    assert "against a goal of at most 2.0 h: met" in html
    assert "the whole 95 % range is on the goal's side" in html  # the report's words, not "interval"
    assert "against a goal set in the campaign plan of at least 90%: not yet clear" in html
    assert "Campaign <bdi>c&lt;1&gt;</bdi>: 2026-11-02 to 2026-11-03" in html
    assert all('src="' in tag for tag in re.findall(r"<script[^>]*>", html))  # no inline script
    assert "<script>alert" not in client.get("/care", params={"brand": HOSTILE}).text


def test_the_care_json_is_storage_cares_one_computation(world):
    client, expected = world
    body = client.get("/api/care.json", params={"brand": "Acme", "days": "28"}).json()
    [acme] = body["brands"]
    assert {k: acme[k] for k in expected} == expected
    assert acme["campaigns"][0]["timezone"] == "America/Los_Angeles"  # the spend file's, as in the report
    assert [(g["goal"], g["set_by"]) for g in acme["campaigns"][0]["goals"]] == [
        ("response_rate", "plan"), ("reply_hours", "config")]


def test_the_care_page_refuses_a_bad_period_or_an_unknown_brand(world):
    client, _ = world
    assert client.get("/care", params={"days": "5"}).status_code == 400
    assert client.get("/care", params={"brand": "Nope"}).status_code == 404
