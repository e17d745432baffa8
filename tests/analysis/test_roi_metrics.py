"""Campaign report: inputs, local days, windows and the descriptive metrics of docs/roi-method.md."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from analysis.campaign_plan import CampaignPlan
from analysis.mood import net_sentiment_se
from analysis.roi.daily import (
    CampaignWindow,
    DailySeries,
    DailySpend,
    daily_from_hourly,
    daily_from_mentions,
    local_date,
    pool,
    share_of_voice,
    window_metrics,
)

UTC = timezone.utc
D0 = date(2026, 3, 2)


def series(total, positive, negative, **kw) -> DailySeries:
    return DailySeries.from_counts(D0, total, positive, negative, **kw)


def test_nss_method_example_and_its_standard_error():
    # docs/roi-method.md: (P, N, U) = (80, 20, 100) gives 30.0
    s = series([200], [80], [20])
    assert s.nss()[0] == pytest.approx(30.0)
    assert s.nss_se()[0] == pytest.approx(net_sentiment_se(80, 20, 200))
    m = window_metrics(s, np.array([True]), "w")
    assert m.nss == pytest.approx(30.0)
    assert m.nss_se == pytest.approx(100 * math.sqrt((0.4 + 0.1 - 0.3 ** 2) / 200))
    assert m.opinion_rate == pytest.approx(0.5)


def test_share_of_voice_method_example():
    # docs/roi-method.md: 50 / (50 + 100 + 10 + 40) = 25 %
    assert share_of_voice(50, [50, 100, 10, 40]) == pytest.approx(0.25)
    brand = series([50], [10], [5])
    m = window_metrics(brand, np.array([True]), "w", brand_set_total=np.array([200.0]))
    assert m.share_of_voice == pytest.approx(0.25)


def test_engagement_weighted_nss_is_weighted_by_engagement():
    # two positive mentions of weight 1, one negative of weight 8: 100 (2 - 8) / 10
    s = series([3], [2], [1], weight=[10.0], weighted_net=[-6.0])
    m = window_metrics(s, np.array([True]), "w")
    assert m.ew_nss == pytest.approx(-60.0)
    assert m.nss == pytest.approx(100 / 3)


def test_a_day_without_data_has_no_nss_not_zero():
    s = series([0, 10], [0, 5], [0, 5])
    assert math.isnan(s.nss()[0]) and s.nss()[1] == 0.0


def test_pooled_competitors_weight_each_by_volume():
    a = series([100], [60], [10])   # NSS 50
    b = series([900], [90], [180])  # NSS -10
    pooled = pool([a, b])
    assert pooled.nss()[0] == pytest.approx(100 * (150 - 190) / 1000)


def test_series_validation():
    with pytest.raises(ValueError, match="consecutive"):
        DailySeries((D0, D0 + timedelta(days=2)), [1, 1], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="exceeds"):
        series([5], [4], [2])
    with pytest.raises(ValueError, match="negative"):
        series([-1], [0], [0])


# --- the plan on the calendar --------------------------------------------------------

def test_flight_window_is_inclusive_at_both_ends_and_washout_follows():
    plan = CampaignPlan("c1", "Acme", date(2026, 3, 10), date(2026, 3, 23), washout_days=7)
    dates = [D0 + timedelta(days=i) for i in range(40)]
    w = CampaignWindow.from_plan(plan, dates)
    flight_days = [d for d, f in zip(dates, w.flight) if f]
    assert flight_days[0] == date(2026, 3, 10) and flight_days[-1] == date(2026, 3, 23)
    assert len(flight_days) == plan.flight_days == 14
    washout_days = [d for d, f in zip(dates, w.washout) if f]
    assert washout_days[0] == date(2026, 3, 24) and washout_days[-1] == date(2026, 3, 30)
    assert not (w.flight & w.washout).any()
    assert w.pre.sum() == 8 and w.post.sum() == 40 - 8 - 14 - 7
    assert (w.pre | w.post | w.flight | w.washout).all()


def test_other_flights_are_left_out_of_the_baseline():
    plan = CampaignPlan("c1", "Acme", date(2026, 3, 20), date(2026, 3, 23), washout_days=0)
    dates = [D0 + timedelta(days=i) for i in range(30)]
    w = CampaignWindow.from_plan(plan, dates, exclude=[(date(2026, 3, 5), date(2026, 3, 7))])
    assert w.excluded.sum() == 3 and not (w.baseline & w.excluded).any()


def test_plan_validation():
    with pytest.raises(ValueError, match="before"):
        CampaignPlan("c", "A", date(2026, 3, 5), date(2026, 3, 4))
    with pytest.raises(ValueError, match="primary_kpi"):
        CampaignPlan("c", "A", date(2026, 3, 5), date(2026, 3, 6), primary_kpi="likes")


# --- local days --------------------------------------------------------------------

def test_local_date_uses_the_account_time_zone():
    # 03:00 UTC on 1 March is 22:00 on 28 February in New York, 16:00 on 1 March in Auckland
    moment = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    assert local_date(moment, "America/New_York") == date(2026, 2, 28)
    assert local_date(moment, "Pacific/Auckland") == date(2026, 3, 1)
    assert local_date(datetime(2026, 3, 1, 5, 0, tzinfo=UTC), "America/New_York") == date(2026, 3, 1)
    with pytest.raises(ValueError, match="naive"):
        local_date(datetime(2026, 3, 1, 3, 0), "America/New_York")


def test_daily_from_mentions_cuts_days_at_local_midnight():
    rows = [
        (datetime(2026, 3, 2, 4, 59, tzinfo=UTC), "positive", 3),   # 23:59 on 1 March in New York
        (datetime(2026, 3, 2, 5, 0, tzinfo=UTC), "negative", 1),    # 00:00 on 2 March
        (datetime(2026, 3, 2, 12, 0, tzinfo=UTC), "neutral"),
        (datetime(2026, 3, 2, 13, 0, tzinfo=UTC), None),           # unscored: volume only
    ]
    s = daily_from_mentions(rows, "America/New_York", date(2026, 3, 1), date(2026, 3, 2))
    assert list(s.total) == [1, 2] and list(s.positive) == [1, 0] and list(s.negative) == [0, 1]
    assert list(s.mentions) == [1, 3]
    assert list(s.weight) == [3, 2] and list(s.weighted_net) == [3, -1]


def test_daily_from_hourly_handles_daylight_saving_days():
    # New York springs forward on 8 March 2026: that local day has 23 hours
    start = datetime(2026, 3, 7, 5, 0, tzinfo=UTC)  # local midnight, 7 March (EST)
    hours = [start + timedelta(hours=h) for h in range(24 + 23 + 24)]
    ones = np.ones(len(hours))
    s = daily_from_hourly(hours, ones, ones, 0 * ones, "America/New_York")
    assert s.dates == (date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9))
    assert list(s.total) == [24, 23, 24]


def test_spend_from_days_fills_gaps_with_zero_and_keeps_unknown_engagements_unknown():
    sp = DailySpend.from_days("c1", {date(2026, 3, 1): 10.0, date(2026, 3, 3): 5.0}, "USD",
                              engagements={date(2026, 3, 1): 4, date(2026, 3, 3): None})
    assert list(sp.spend) == [10.0, 0.0, 5.0]
    assert sp.total() == 15.0
    assert sp.total_engagements() is None
    assert sp.total_engagements(date(2026, 3, 1), date(2026, 3, 1)) == 4.0
    assert list(sp.on([date(2026, 2, 28), date(2026, 3, 1)])) == [0.0, 10.0]


def test_buckets_cut_days_exactly_like_single_mentions_even_in_half_hour_zones():
    import random
    from datetime import date, datetime, timedelta, timezone

    from analysis.roi import daily_from_buckets, daily_from_mentions

    rng = random.Random(4)
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    rows = [(start + timedelta(minutes=rng.randrange(0, 20 * 24 * 60)), rng.choice(["positive", "neutral", "negative", None]),
             1 + rng.randrange(5)) for _ in range(5000)]
    buckets: dict = {}
    for at, label, weight in rows:
        key = (at.replace(minute=at.minute - at.minute % 15, second=0), label)
        count, total = buckets.get(key, (0, 0.0))
        buckets[key] = (count + 1, total + weight)
    for zone in ("Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu", "UTC"):
        one = daily_from_mentions(rows, zone, date(2026, 3, 2), date(2026, 3, 18))
        two = daily_from_buckets([(k[0], k[1], c, w) for k, (c, w) in buckets.items()], zone,
                                 date(2026, 3, 2), date(2026, 3, 18))
        for name in ("total", "positive", "negative", "mentions", "weight", "weighted_net"):
            assert list(getattr(one, name)) == list(getattr(two, name)), (zone, name)
