"""Verdict rules, caveat wording and the monitoring EWMA."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from analysis.roi.monitor import ewma_limit, ewma_monitor
from analysis.roi.report import Monitor
from analysis.roi.verdict import (
    CONFLICTING,
    EFFECT_DETECTED,
    NO_DETECTABLE_EFFECT,
    UNDERPOWERED,
    VERDICTS,
    ci_includes_zero_sentence,
    decide_verdict,
    describe_effect,
)
from demo.world import sample_counts


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


# --- EWMA ---------------------------------------------------------------------------------

def test_ewma_limits_are_three_sigma_of_the_asymptotic_ewma():
    assert ewma_limit() == pytest.approx(3 * math.sqrt(0.2 / 1.8)) == pytest.approx(1.0)
    assert ewma_limit(0.1, 2.5) == pytest.approx(2.5 * math.sqrt(0.1 / 1.9))


def hourly_counts(hours: int, nss_by_hour, per_hour: int = 42, seed: int = 0):
    """Hour starts and the simulator's counts (the world's ``sample_counts``) at a flat
    ``per_hour`` volume and the given mood per hour."""
    rng = np.random.default_rng(seed)
    t, pos, neg = sample_counts(rng, np.full(hours, float(per_hour)), np.asarray(nss_by_hour, dtype=float), 0.6)
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    return [start + timedelta(hours=h) for h in range(hours)], t, pos, neg


def test_ewma_stays_inside_on_a_steady_mood_and_alarms_on_a_drop():
    hours = 24 * 14
    nss = np.full(hours, 20.0)
    h, t, p, n = hourly_counts(hours, nss)
    steady = ewma_monitor(h, t, p, n)
    assert not steady.alarm.any()
    assert steady.limit == pytest.approx(1.0)
    nss[-24:] = 0.0  # the last day: mood falls by 20 points
    h, t, p, n = hourly_counts(hours, nss)
    mon = ewma_monitor(h, t, p, n, baseline=slice(0, hours - 48))
    assert (mon.alarm[-24:] == -1).sum() >= 12 and not mon.alarm[: hours - 48].any()
    assert mon.baseline_nss == pytest.approx(20.0, abs=1.5)


def test_ewma_carries_over_hours_without_mentions():
    h, t, p, n = hourly_counts(10, np.full(10, 10.0))
    t[4] = p[4] = n[4] = 0.0
    mon = ewma_monitor(h, t, p, n)
    assert math.isnan(mon.z[4]) and mon.ewma[4] == mon.ewma[3]
    assert Monitor(tuple(h), np.ones(10, dtype=bool), mon).to_json()["z"][4] is None  # report.json: null
