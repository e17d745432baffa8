import math

import pytest

from analysis.mood import difference_se, mood_from_counts, net_sentiment, net_sentiment_se


def test_nss_matches_the_method_example():
    # docs/roi-method.md: (P, N, U) = (80, 20, 100) gives 30.0
    assert net_sentiment(80, 20, 200) == pytest.approx(30.0)


def test_nss_standard_error_by_hand():
    p, n, t = 80, 20, 200
    expected = 100 * math.sqrt((0.4 + 0.1 - (0.4 - 0.1) ** 2) / 200)
    assert net_sentiment_se(p, n, t) == pytest.approx(expected)
    assert expected == pytest.approx(4.5277, abs=1e-4)


def test_empty_window_has_no_mood():
    mood = mood_from_counts(0, 0, 0, 0)
    assert mood.nss is None and mood.nss_se is None and mood.opinion_rate is None


def test_unanimous_window_has_zero_error():
    mood = mood_from_counts(5, 5, 0, 0)
    assert mood.nss == 100.0 and mood.nss_se == 0.0


def test_difference_se():
    assert difference_se(3.0, 4.0) == pytest.approx(5.0)
    assert difference_se(None, 4.0) is None
