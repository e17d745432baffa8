"""Verdicts and caveat sentences.

Verdicts (docs/roi-method.md), checked in this order:

1. "conflicting": ITS and DiD disagree (``diagnostics.its_did_disagreement`` fired)
   and the diagnostics cannot say which to trust (below);
2. "effect detected": the headline CI excludes 0 and the placebo rank is <= 5 %;
3. "no detectable effect": the CI includes 0 and MDE <= goal;
4. "inconclusive: underpowered": the CI includes 0 and MDE > goal.

Two cases the method's list does not cover, decided here:

* CI excludes 0 but the placebo rank is > 5 % (baseline windows moved as much as the
  flight): the effect is not distinguishable from the series' ordinary swings, so it
  is treated as not detected and rules 3-4 apply (with a caveat saying so);
* the placebo check is impossible (fewer than 19 baseline windows, so no rank can reach
  5 %): the CI decides alone, with a caveat. Likewise with no goal in the plan a CI
  that includes 0 gives "no detectable effect", with a caveat naming the MDE, and with
  no estimate at all (too little data) the verdict is "inconclusive: underpowered".

When ITS and DiD disagree, the competitors moved significantly during the flight (that
is what makes them disagree: ITS - DiD is the competitors' shift). If before the flight
the brand's and the competitors' daily mood moved together (subtracting the competitors
removed part of the brand's day-to-day swings) and DiD heads the report (its own checks,
competitor volume and pre-trend, passed), the competitors' shift is a market-wide move:
ITS counts it as campaign effect, DiD nets it out, so DiD decides (rules 2-4, with a rule
text saying so). Only when no method's assumptions hold, ITS's because the market moved
and DiD's because it does not head the report or the competitors did not share the
brand's market before, is the verdict "conflicting" ("we cannot tell"). On the simulator
with a market-wide shock at launch (bench/roi_calibration.py) this keeps the false-
positive rate of the no-effect case at DiD's own and turns "conflicting" into the right
answer where DiD had one.

A CI that includes 0 is never written up as evidence of no effect: the caveat says what
sizes of effect the data cannot rule out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from analysis.timefmt import human_date, human_time  # noqa: F401  (their home; re-exported)

EFFECT_DETECTED = "effect detected"
NO_DETECTABLE_EFFECT = "no detectable effect"
UNDERPOWERED = "inconclusive: underpowered"
CONFLICTING = "conflicting"
VERDICTS = (EFFECT_DETECTED, NO_DETECTABLE_EFFECT, UNDERPOWERED, CONFLICTING)
PLACEBO_LEVEL = 0.05


@dataclass(frozen=True)
class Verdict:
    verdict: str
    rule: str


def decide_verdict(*, ci_low: float | None, ci_high: float | None, placebo_rank: float | None,
                   placebo_possible: bool, mde: float | None, goal: float | None,
                   conflicting: bool, market_wide: bool = False) -> Verdict:
    """Apply the rules above. ``mde`` and ``goal`` in the same (display) unit; the
    goal's sign is ignored (power is about size). ``conflicting``: ITS and DiD disagree
    (the disagreement check fired); ``market_wide``: the diagnostics show the competitors'
    move was market-wide and the CI given is DiD's, which nets it out."""
    if conflicting and not market_wide:
        return Verdict(CONFLICTING, "ITS and DiD disagree, competitors moved during the flight, and no method's "
                                    "assumptions can be shown to hold")
    verdict = _decide(ci_low, ci_high, placebo_rank, placebo_possible, mde, goal)
    if conflicting:
        return Verdict(verdict.verdict, "ITS and DiD disagree because the whole market moved (competitors moved "
                                        "with the brand before the flight and shifted during it); DiD nets the "
                                        "market out: " + verdict.rule)
    return verdict


def _decide(ci_low, ci_high, placebo_rank, placebo_possible, mde, goal) -> Verdict:
    if ci_low is None or ci_high is None or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return Verdict(UNDERPOWERED, "no estimate could be made from the data")
    excludes = ci_low > 0 or ci_high < 0
    if excludes:
        if not placebo_possible:
            return Verdict(EFFECT_DETECTED, "CI excludes 0; too few baseline windows for the placebo check")
        if placebo_rank is not None and placebo_rank <= PLACEBO_LEVEL:
            return Verdict(EFFECT_DETECTED, "CI excludes 0 and placebo rank <= 5 %")
        prefix = "CI excludes 0 but placebo rank > 5 %; "
    else:
        prefix = "CI includes 0; "
    if goal is None:
        return Verdict(NO_DETECTABLE_EFFECT, prefix + "no goal in the plan to judge power against")
    if mde is None:
        return Verdict(UNDERPOWERED, prefix + "the MDE could not be computed (baseline too short)")
    if mde <= abs(goal):
        return Verdict(NO_DETECTABLE_EFFECT, prefix + "MDE <= goal")
    return Verdict(UNDERPOWERED, prefix + "MDE > goal")


# ----------------------------------------------------------------------------------
# Sentences
# ----------------------------------------------------------------------------------



def signed(x: float, digits: int = 1) -> str:
    return f"{x:+.{digits}f}"


def describe_effect(delta: float, lo: float, hi: float, unit: str, *, log_scale: bool = False) -> str:
    """"+10.2 NSS points (95 % CI +7.1 to +13.3)" or, for log models, percent lifts."""
    if log_scale:
        d, lo, hi = (100 * math.expm1(v) for v in (delta, lo, hi))
        return f"{signed(d)} % (95 % CI {signed(lo)} % to {signed(hi)} %)"
    digits = 0 if unit == "net-positive conversations" else 1
    return f"{signed(delta, digits)} {unit} (95 % CI {signed(lo, digits)} to {signed(hi, digits)})"


def ci_includes_zero_sentence(what: str, lo: str, hi: str) -> str:
    return (f"The 95 % CI for {what} runs from {lo} to {hi} and includes 0: the data cannot tell an "
            f"effect anywhere in that range from none. Not finding an effect is not evidence that "
            f"there was none.")


def mde_sentence(mde: str, goal: str) -> str:
    return (f"The plan's goal ({goal}) is below the minimum detectable effect ({mde}) computed from the "
            f"baseline: even if the goal was met, this design would usually not detect it.")
