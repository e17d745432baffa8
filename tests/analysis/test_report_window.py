"""The campaign report built from a real database through 'listener report': which
local days it analyses, which competitors it pools, why it falls back from DiD to ITS,
and the engagements the ad platform reported on only some days. Asserted on report.json.

The data: Brewly and Beanhaus, two mentions an hour on the hour and the half hour from
2026-10-01 00:00 New York time (local midnight) to 2026-11-14 12:00 New York time (a
half day); Telwick is configured but has no mention at all (a competitor without data).
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from analysis.roi import complete_days
from analysis.sentiment import VaderScorer
from listener.cli import cli
from storage.store import Store
from tests.conftest import mention

NY = ZoneInfo("America/New_York")
FIRST = datetime(2026, 10, 1, tzinfo=NY)  # data start at local midnight
LAST = datetime(2026, 11, 14, 12, tzinfo=NY)  # and stop at noon: 2026-11-14 is a half day
FLIGHT = (date(2026, 10, 27), date(2026, 11, 5))
AS_OF = "2026-11-20T12:00Z"
BLANK_ENGAGEMENT_DAYS = (date(2026, 10, 29), date(2026, 11, 2))
SCORER = VaderScorer()
TEXTS = {"positive": "{} is great", "negative": "{} is awful", "neutral": "{} store on Main Street"}


def _mentions(brand: str, seed: int, lift: float) -> list:
    rng = random.Random(seed)
    out, at = [], FIRST.astimezone(timezone.utc)
    while at <= LAST:
        day = at.astimezone(NY).date()
        p_pos = 0.35 + rng.gauss(0, 0.03) + (lift if FLIGHT[0] <= day <= FLIGHT[1] else 0.0)
        u = rng.random()
        label = "positive" if u < p_pos else "negative" if u < p_pos + 0.25 else "neutral"
        out.append(mention(f"{brand}-{len(out)}", TEXTS[label].format(brand), at, brand=brand))
        at += timedelta(minutes=30)
    return out


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report-window")
    config = folder / "listener.toml"
    config.write_text("".join(f'[[brands]]\nname = "{b}"\nterms = ["{b.lower()}"]\n'
                              for b in ("Brewly", "Beanhaus", "Telwick")))
    db = folder / "listener.duckdb"
    with Store.open(db) as store:
        for brand, seed, lift in (("Brewly", 1, 0.15), ("Beanhaus", 2, 0.0)):
            batch = _mentions(brand, seed, lift)
            store.save_batch(batch, SCORER.score([m.text for m in batch]), source="test", brand=brand,
                             checkpoint=None, scorer=SCORER.name, scorer_version=SCORER.version,
                             now=datetime(2026, 11, 20, tzinfo=timezone.utc))
    spend = folder / "spend.csv"
    days = [FLIGHT[0] + timedelta(days=i) for i in range((FLIGHT[1] - FLIGHT[0]).days + 1)]
    spend.write_text("date,campaign_id,campaign_name,brand,currency,spend,account_timezone,engagements\n" + "".join(
        f"{d},{c},Brewly Mornings,Brewly,USD,{100 + i}.25,America/New_York,"
        f"{'' if d in BLANK_ENGAGEMENT_DAYS else 40 + i}\n"
        for c in ("c-did", "c-its") for i, d in enumerate(days)))
    plan = folder / "plan.csv"
    plan.write_text("campaign_id,brand,flight_start,flight_end,washout_days,primary_kpi,goal_direction,goal_value,"
                    "competitors,campaign_tags,account_timezone\n"
                    f"c-did,Brewly,{FLIGHT[0]},{FLIGHT[1]},3,nss,increase,5,Beanhaus;Telwick,,America/New_York\n"
                    f"c-its,Brewly,{FLIGHT[0]},{FLIGHT[1]},3,nss,increase,5,Telwick,,America/New_York\n")
    result = _invoke("--config", str(config), "--db", str(db), "campaigns", "import", str(spend), "--plan", str(plan))
    assert result.exit_code == 0, result.output
    return {"config": config, "db": db, "days": days}


def _report(world, campaign: str) -> dict:
    """report.json of ``campaign``, its campaign as "c" and the Markdown report as "md"."""
    shown = {}
    for fmt in ("json", "md"):
        result = _invoke("--config", str(world["config"]), "--db", str(world["db"]), "report", "--format", fmt,
                         "--campaign", campaign, "--as-of", AS_OF)
        assert result.exit_code == 0, result.output
        shown[fmt] = result.output
    report = json.loads(shown["json"])
    (c,) = report["campaigns"]
    return report | {"c": c, "md": shown["md"]}


@pytest.fixture(scope="module")
def did_report(world):
    return _report(world, "c-did")


@pytest.fixture(scope="module")
def its_report(world):
    return _report(world, "c-its")


def test_only_complete_local_days_are_analysed_and_the_half_day_is_named(did_report):
    c = did_report["c"]
    # The data start at local midnight: the first day is whole and kept.
    assert c["data_start"] == "2026-10-01"
    # They stop at 12:00 on 2026-11-14: that half day is left out, and the report says so.
    assert c["data_end"] == "2026-11-13"
    assert [d for d, _ in c["dropped_days"]] == ["2026-11-14"]
    assert "12:00" in c["dropped_days"][0][1]
    # report.json's fields are ISO 8601; the sentences write dates for people
    assert any("14 Nov 2026" in n and "partial" in n for n in did_report["notes"])
    assert any(cav.startswith("14 Nov 2026 is left out") for cav in c["caveats"])
    assert len(c["daily"]["dates"]) == 44


def test_a_competitor_without_data_is_left_out_by_name_not_pooled_as_zeros(did_report):
    c = did_report["c"]
    assert c["competitors"] == ["Beanhaus"]
    assert list(c["excluded_competitors"]) == ["Telwick"]
    assert "no mentions" in c["excluded_competitors"]["Telwick"]
    assert any("Competitor Telwick is left out" in cav for cav in c["caveats"])
    assert "Telwick" not in c["competitor_windows"]
    assert "did" in c["effects"]


def test_the_fallback_to_its_says_exactly_why(its_report):
    c = its_report["c"]
    assert c["headline"]["method"] == "its"
    reason = c["headline"]["reason"]
    assert "Telwick" in reason and "no mentions from 1 Oct 2026 to 13 Nov 2026" in reason, reason
    assert any(reason in cav for cav in c["caveats"])
    assert c["competitors"] == [] and "did" not in c["effects"]
    shown = its_report["md"]
    assert "Telwick (no data in the window: left out)" in shown
    assert f"Difference-in-differences (DiD) | not estimated: {reason}" in shown


def test_engagements_reported_on_some_days_give_a_cost_over_those_days(did_report, world):
    eff = did_report["c"]["efficiency"]
    days = world["days"]
    reported = [(100 + i + 0.25, 40 + i) for i, d in enumerate(days) if d not in BLANK_ENGAGEMENT_DAYS]
    assert eff["engagements"] == sum(e for _, e in reported)
    assert eff["engagement_days"] == len(days) - 2
    assert eff["engagement_days_missing"] == [d.isoformat() for d in BLANK_ENGAGEMENT_DAYS]
    assert eff["engagement_spend"] == pytest.approx(sum(s for s, _ in reported))
    assert eff["cost_per_engagement"] == pytest.approx(sum(s for s, _ in reported) / sum(e for _, e in reported))
    assert eff["spend"] == pytest.approx(sum(100 + i + 0.25 for i in range(len(days))))
    assert any("reported engagements on 8 of 10 days" in cav for cav in did_report["c"]["caveats"])
    shown = did_report["md"]
    assert "on 8 of 10 days with spend (not reported on 29 Oct 2026, 2 Nov 2026)" in shown
    assert "n/a (no engagements reported)" not in shown


# --- complete_days on its own ---------------------------------------------------------------


def _hourly(first: datetime, last: datetime, per_hour: float = 40.0):
    hours = int((last - first).total_seconds() // 3600) + 1
    return [(first + timedelta(hours=h), per_hour) for h in range(hours)]


def test_a_first_day_starting_at_13h_local_is_dropped_and_one_starting_at_midnight_kept():
    utc = timezone.utc
    now = datetime(2026, 3, 20, tzinfo=utc)
    start = datetime(2026, 3, 1, 13, tzinfo=NY).astimezone(utc)
    end = datetime(2026, 3, 10, 23, 59, tzinfo=NY).astimezone(utc)
    days = complete_days(_hourly(start, end), start, end, now, "America/New_York")
    assert (days.start, days.end) == (date(2026, 3, 2), date(2026, 3, 10))
    assert [d for d, _ in days.dropped] == [date(2026, 3, 1)] and "13:00" in days.dropped[0][1]
    midnight = datetime(2026, 3, 1, tzinfo=NY).astimezone(utc)
    days = complete_days(_hourly(midnight, end), midnight, end, now, "America/New_York")
    assert (days.start, days.end, days.dropped) == (date(2026, 3, 1), date(2026, 3, 10), ())


def test_today_is_never_complete_and_low_volume_quiet_mornings_are_not_called_partial():
    utc = timezone.utc
    start = datetime(2026, 3, 1, tzinfo=NY).astimezone(utc)
    end = datetime(2026, 3, 10, 9, tzinfo=NY).astimezone(utc)
    now = datetime(2026, 3, 10, 10, tzinfo=NY).astimezone(utc)
    days = complete_days(_hourly(start, end), start, end, now, "America/New_York")
    assert (days.start, days.end, days.dropped) == (date(2026, 3, 1), date(2026, 3, 9), ())
    # One mention a day at 06:00: a first mention at 06:00 is no evidence of a late start.
    sparse = [(datetime(2026, 3, d, 6, tzinfo=NY).astimezone(utc), 1.0) for d in range(1, 11)]
    days = complete_days(sparse, sparse[0][0], sparse[-1][0], datetime(2026, 3, 20, tzinfo=utc), "America/New_York")
    assert (days.start, days.end, days.dropped) == (date(2026, 3, 1), date(2026, 3, 10), ())


def test_the_report_is_a_typed_model_whose_json_is_what_the_command_prints(world, did_report):
    """build_report returns the typed Report (campaigns as CampaignResult, the monitor
    typed); report.json is its to_json(), so the CLI's output is exactly that."""
    from analysis.roi import CampaignResult
    from analysis.roi.report import Monitor, Report
    from listener.report import build_report

    as_of = datetime.fromisoformat(AS_OF.replace("Z", "+00:00"))
    with Store.open(world["db"]) as store:
        report = build_report(store, as_of, campaign="c-did")
    assert isinstance(report, Report) and report.brand == "Brewly"
    assert [type(c) for c in report.campaigns] == [CampaignResult]
    assert report.campaigns[0].campaign_id == "c-did"
    assert report.monitor is None or isinstance(report.monitor, Monitor)
    printed = {k: v for k, v in did_report.items() if k not in ("c", "md")}
    assert json.loads(json.dumps(report.to_json())) == printed
