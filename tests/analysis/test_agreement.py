"""VADER's agreement with manual labels: the statistics against known values."""

import pytest

from analysis.agreement import cohen_kappa, wilson_interval


def test_wilson_interval_and_kappa_against_known_values():
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)  # the textbook example
    perfect = {t: {v: (5 if t == v else 0) for v in ("positive", "neutral", "negative")}
               for t in ("positive", "neutral", "negative")}
    assert cohen_kappa(perfect) == pytest.approx(1.0)
    # Agreement no better than chance: both sides split 50/50 independently.
    chance = {"positive": {"positive": 25, "neutral": 0, "negative": 25},
              "neutral": {"positive": 0, "neutral": 0, "negative": 0},
              "negative": {"positive": 25, "neutral": 0, "negative": 25}}
    assert cohen_kappa(chance) == pytest.approx(0.0)
