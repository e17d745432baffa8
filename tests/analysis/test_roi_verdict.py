"""Verdict rules, caveat wording and the report's date and time format. (The report's
monitor is the stored alerts: analysis.alerts' rule, tested in tests/analysis/test_alerts.py.)"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

from analysis.roi.verdict import (
    CONFLICTING,
    EFFECT_DETECTED,
    NO_DETECTABLE_EFFECT,
    UNDERPOWERED,
    VERDICTS,
    ci_includes_zero_sentence,
    decide_verdict,
    describe_effect,
    human_date,
    human_time,
)


def verdict(lo, hi, *, rank=0.02, possible=True, mde=4.0, goal=5.0, conflicting=False, market_wide=False):
    return decide_verdict(ci_low=lo, ci_high=hi, placebo_rank=rank, placebo_possible=possible, mde=mde,
                          goal=goal, conflicting=conflicting, market_wide=market_wide).verdict


def test_the_four_verdicts_of_the_method():
    assert VERDICTS == ("effect detected", "no detectable effect", "inconclusive: underpowered", "conflicting")
    assert verdict(6.0, 14.0) == EFFECT_DETECTED
    assert verdict(-8.0, -1.0) == EFFECT_DETECTED  # a significant fall is detected too
    assert verdict(-1.0, 3.0, mde=4.0, goal=5.0) == NO_DETECTABLE_EFFECT
    assert verdict(-1.0, 3.0, mde=6.0, goal=5.0) == UNDERPOWERED
    assert verdict(-1.0, 3.0, mde=5.0, goal=-5.0) == NO_DETECTABLE_EFFECT  # MDE <= |goal|
    assert verdict(6.0, 14.0, conflicting=True) == CONFLICTING
    assert verdict(-1.0, 3.0, conflicting=True) == CONFLICTING


def test_a_market_wide_move_lets_did_decide_a_disagreement():
    """ITS and DiD disagree because the market moved: DiD's CI decides by the usual rules;
    only when the move cannot be shown market-wide is the answer "conflicting"."""
    assert verdict(6.0, 14.0, conflicting=True, market_wide=True) == EFFECT_DETECTED
    assert verdict(-1.0, 3.0, conflicting=True, market_wide=True) == NO_DETECTABLE_EFFECT
    assert verdict(-1.0, 3.0, mde=6.0, conflicting=True, market_wide=True) == UNDERPOWERED
    assert verdict(6.0, 14.0, conflicting=True, market_wide=False) == CONFLICTING
    rule = decide_verdict(ci_low=6.0, ci_high=14.0, placebo_rank=0.02, placebo_possible=True, mde=4.0, goal=5.0,
                          conflicting=True, market_wide=True).rule
    assert "whole market moved" in rule and rule.endswith("CI excludes 0 and placebo rank <= 5 %")


def test_detection_needs_the_placebo_rank():
    assert verdict(1.0, 5.0, rank=0.20, mde=4.0, goal=5.0) == NO_DETECTABLE_EFFECT
    assert verdict(1.0, 5.0, rank=0.20, mde=6.0, goal=5.0) == UNDERPOWERED
    assert verdict(1.0, 5.0, rank=0.05) == EFFECT_DETECTED
    # too few baseline windows for any rank to reach 5 %: the CI decides alone
    assert verdict(1.0, 5.0, rank=None, possible=False) == EFFECT_DETECTED


def test_missing_pieces():
    assert verdict(None, None) == UNDERPOWERED
    assert verdict(-1.0, 3.0, goal=None) == NO_DETECTABLE_EFFECT
    assert verdict(-1.0, 3.0, mde=None) == UNDERPOWERED


def test_a_ci_including_zero_is_never_written_as_no_effect():
    text = ci_includes_zero_sentence("organic NSS", "-1.2", "+4.0").lower()
    assert "includes 0" in text and "did nothing" not in text and "no effect" not in text
    assert "-1.2" in text and "+4.0" in text


def test_effect_descriptions():
    assert describe_effect(10.24, 7.1, 13.3, "NSS points") == "+10.2 NSS points (95 % CI +7.1 to +13.3)"
    assert describe_effect(math.log(1.3), math.log(1.2), math.log(1.4), "log volume", log_scale=True) == \
        "+30.0 % (95 % CI +20.0 % to +40.0 %)"


def test_dates_and_times_for_people():
    assert human_date(date(2026, 11, 2)) == "2 Nov 2026"
    moment = datetime(2026, 11, 22, 18, 59, 12, 345678, tzinfo=timezone.utc)
    assert human_time(moment) == "22 Nov 2026, 18:59 UTC"
    assert human_time(moment.isoformat()) == "22 Nov 2026, 18:59 UTC"   # report_data's ISO strings
    assert human_time(datetime(2026, 11, 22, 18, 59)) == "22 Nov 2026, 18:59 UTC"  # naive: UTC, as stored
    assert human_time(None) == "unknown"


def test_comovement_reads_only_the_days_before_the_flight():
    """Brand and competitors independent before the flight, then one shared swing after
    the washout: the shared later event must not pass for a market they shared before
    the flight (the disagreement caveat says "before the flight")."""
    import numpy as np

    from analysis.campaign_plan import CampaignPlan
    from analysis.roi.daily import CampaignWindow
    from analysis.roi.diagnostics import comovement

    days = [date.fromordinal(date(2026, 9, 1).toordinal() + i) for i in range(90)]
    plan = CampaignPlan(campaign_id="c", brand="b", flight_start=days[40], flight_end=days[53], washout_days=7)
    window = CampaignWindow.from_plan(plan, days)
    rng = np.random.default_rng(7)
    brand, comps = rng.normal(0, 1, 90), rng.normal(0, 1, 90)
    later = np.zeros(90)
    later[61:] = np.linspace(-6, 6, 29)  # one event after the washout moves both
    r, p = comovement(brand + later, comps + later, window)
    assert r is not None and p > 0.05, (r, p)
