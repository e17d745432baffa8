"""Chart ranges and honest mood points (analysis.trends)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from analysis.mood import net_sentiment, net_sentiment_se
from analysis.trends import MAX_BUCKETS, RangeError, bucket_floor, chart_range, mood_point, nss_interval

NOW = datetime(2026, 11, 4, 10, 30, tzinfo=timezone.utc)  # a Wednesday


def test_presets_widen_to_whole_buckets_ending_after_now():
    span = chart_range(NOW, preset="24h")
    assert (span.start, span.end, span.resolution) == (NOW.replace(minute=0) - timedelta(hours=24),
                                                      NOW.replace(minute=0) + timedelta(hours=1), "hour")
    assert len(span.buckets()) == 25
    span = chart_range(NOW, preset="90d")
    assert span.resolution == "day" and len(span.buckets()) == 91
    assert chart_range(NOW).resolution == "hour"  # 7 days by default
    assert chart_range(NOW, preset="30d", resolution="week").start == datetime(2026, 10, 5, tzinfo=timezone.utc)


def test_a_custom_range_opens_at_a_readable_resolution():
    assert chart_range(NOW, since=NOW - timedelta(days=3)).resolution == "hour"
    assert chart_range(NOW, since=NOW - timedelta(days=60)).resolution == "day"
    assert chart_range(NOW, since=NOW - timedelta(days=900)).resolution == "week"
    span = chart_range(NOW, since=datetime(2026, 10, 1, 12, tzinfo=timezone.utc),
                       until=datetime(2026, 10, 2, 12, 0, 1, tzinfo=timezone.utc), resolution="day")
    assert (span.start.day, span.end.day) == (1, 3)


@pytest.mark.parametrize("kwargs, field", [
    ({"preset": "1y"}, "range"),
    ({"resolution": "minute"}, "resolution"),
    ({"since": NOW, "until": NOW - timedelta(hours=1)}, "since"),
    ({"since": datetime(2026, 1, 1)}, "since"),
    ({"preset": "90d", "resolution": "hour", "since": NOW - timedelta(days=200)}, "resolution"),
])
def test_a_bad_range_names_the_parameter(kwargs, field):
    with pytest.raises(RangeError, match=f"^{field}:"):
        chart_range(NOW, **kwargs)
    assert MAX_BUCKETS >= 90 * 24  # 90 days hourly stays possible


def test_week_and_day_buckets_start_where_duckdb_truncates():
    db = duckdb.connect()
    for days in range(0, 15):
        moment = NOW + timedelta(days=days, hours=days * 5)
        for resolution in ("hour", "day", "week"):
            want = db.execute("SELECT date_trunc($r, $t::TIMESTAMP)",
                              {"r": resolution, "t": moment.replace(tzinfo=None)}).fetchone()[0]
            assert bucket_floor(moment, resolution) == want.replace(tzinfo=timezone.utc)


def test_the_interval_never_collapses_and_agrees_with_the_plain_one_when_counts_are_large():
    for positive, negative, scored in [(1, 0, 1), (0, 3, 3), (10, 0, 10), (0, 0, 5)]:
        low, high = nss_interval(positive, negative, scored)
        assert -100 <= low < high <= 100 and high - low > 10
    positive, negative, scored = 4000, 2500, 10000
    low, high = nss_interval(positive, negative, scored)
    nss, se = net_sentiment(positive, negative, scored), net_sentiment_se(positive, negative, scored)
    assert low == pytest.approx(nss - 1.96 * se, abs=0.05) and high == pytest.approx(nss + 1.96 * se, abs=0.05)
    assert nss_interval(0, 0, 0) is None


def test_a_point_is_sparse_below_ten_scored_and_filling_until_its_end():
    start = NOW.replace(minute=0)
    point = mood_point(start, start + timedelta(hours=1), NOW, mentions=12, duplicates=2, unscored=1,
                       positive=9, neutral=0, negative=0)
    assert point.sparse and point.shown is None and point.mood.nss == 100 and point.filling
    point = mood_point(start - timedelta(hours=1), start, NOW, mentions=10, duplicates=0, unscored=0,
                       positive=5, neutral=3, negative=2)
    assert not point.sparse and point.shown == 30 and not point.filling
