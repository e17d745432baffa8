"""Chart logic of the workspace: ranges, buckets, and mood points that tell the truth.

Pure functions, no database (storage.workspace reads the counts).

A range is half-open [start, end) in tz-aware UTC, cut into buckets of one
``RESOLUTIONS`` step (hour, day, week; weeks start on Monday 00:00 UTC as DuckDB's
``date_trunc('week', ...)`` does). The range's ends are widened to whole buckets, so
every point of a chart covers the same length of time, except one still filling
(its end after ``now``), which is flagged as such.

A bucket's NSS is ``analysis.mood.net_sentiment`` of its label counts, and its standard
error ``net_sentiment_se``. Two things make those unfit to draw as they are when a
bucket holds few scored mentions: the estimate itself (3 positive mentions are NSS
+100) and its SE, which is 0 whenever every mention has the same label, so the band
vanishes exactly where the estimate is weakest. Hence:

* the interval drawn is the Agresti-Coull-style one: the same two functions over the
  counts plus one pseudo-mention of each side (P + 1, N + 1, T + 2), 95 % by default and
  clipped to [-100, 100]. It never has zero width, is as wide as the data leave it, and
  agrees with the plain interval once a bucket holds a few dozen mentions;
* a bucket with fewer than ``SPARSE_SCORED`` scored mentions is ``sparse``: it has no
  value on the line (``shown`` is None), only its wide interval and its counts, which the
  chart draws grey. 10 is where analysis.alerts stops trusting an hour's NSS too
  (``AlertRule.min_mentions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from analysis.mood import Mood, mood_from_counts, net_sentiment, net_sentiment_se

RESOLUTIONS: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
# The preset ranges a chart offers, and the resolution each opens at.
PRESETS: dict[str, tuple[timedelta, str]] = {
    "24h": (timedelta(hours=24), "hour"),
    "7d": (timedelta(days=7), "hour"),
    "30d": (timedelta(days=30), "day"),
    "90d": (timedelta(days=90), "day"),
}
DEFAULT_PRESET = "7d"
# More points than this is unreadable and slow to send: 90 days at hour resolution is 2,160.
MAX_BUCKETS = 2400
# A custom range opens at the finest resolution giving at most this many points.
DEFAULT_POINTS = 200
SPARSE_SCORED = 10
INTERVAL_Z = 1.96
# Monday 2024-01-01 00:00 UTC: weeks are counted from a Monday, like DuckDB's date_trunc.
_WEEK_ORIGIN = datetime(2024, 1, 1, tzinfo=timezone.utc)


class RangeError(ValueError):
    """A chart range that cannot be drawn; the message names the parameter at fault."""


@dataclass(frozen=True, slots=True)
class ChartRange:
    """Whole buckets of ``resolution`` from ``start`` (inclusive) to ``end`` (exclusive)."""

    start: datetime
    end: datetime
    resolution: str

    @property
    def step(self) -> timedelta:
        return RESOLUTIONS[self.resolution]

    def buckets(self) -> list[datetime]:
        """The start of every bucket, in order."""
        out, moment = [], self.start
        while moment < self.end:
            out.append(moment)
            moment += self.step
        return out


def bucket_floor(moment: datetime, resolution: str) -> datetime:
    """The start of the ``resolution`` bucket holding ``moment`` (tz-aware UTC)."""
    moment = moment.astimezone(timezone.utc)
    if resolution == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if resolution == "day":
        return day
    if resolution == "week":
        return day - timedelta(days=(day - _WEEK_ORIGIN).days % 7)
    raise RangeError(f"resolution: {resolution!r} is not one of {', '.join(RESOLUTIONS)}")


def chart_range(now: datetime, *, preset: str | None = None, since: datetime | None = None,
                until: datetime | None = None, resolution: str | None = None) -> ChartRange:
    """The range a chart request asks for: ``since``/``until`` (a custom range; either
    may be left out, ``until`` defaulting to ``now``) or a ``preset`` (default 7 days up
    to ``now``), at ``resolution`` (default: the preset's, or the finest that keeps the
    range under MAX_BUCKETS). Raises RangeError naming the bad parameter."""
    if preset is not None and preset not in PRESETS:
        raise RangeError(f"range: {preset!r} is not one of {', '.join(PRESETS)} (or give since and until)")
    if resolution is not None and resolution not in RESOLUTIONS:
        raise RangeError(f"resolution: {resolution!r} is not one of {', '.join(RESOLUTIONS)}")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise RangeError(f"{name}: {value.isoformat()} has no time zone (add Z for UTC)")
    length, default_resolution = PRESETS[preset or DEFAULT_PRESET]
    end = (until or now).astimezone(timezone.utc)
    start = since.astimezone(timezone.utc) if since is not None else end - length
    if since is not None and preset is None:
        default_resolution = next((r for r in RESOLUTIONS if (end - start) / RESOLUTIONS[r] <= DEFAULT_POINTS),
                                  "week")
    if start >= end:
        raise RangeError(f"since: {start.isoformat()} is not before until {end.isoformat()}")
    resolution = resolution or default_resolution
    first = bucket_floor(start, resolution)
    last = bucket_floor(end, resolution)
    if last < end:
        last += RESOLUTIONS[resolution]
    count = (last - first) // RESOLUTIONS[resolution]
    if count > MAX_BUCKETS:
        raise RangeError(f"resolution: {count:,} {resolution}s is more than {MAX_BUCKETS:,} points; "
                         "choose a coarser resolution or a shorter range")
    return ChartRange(first, last, resolution)


def nss_interval(positive: int, negative: int, scored: int, z: float = INTERVAL_Z) -> tuple[float, float] | None:
    """The interval drawn around a bucket's NSS (module docstring): centre and SE over
    the counts plus one pseudo-mention of each side, clipped to [-100, 100]; None when
    nothing was scored."""
    if scored <= 0:
        return None
    centre = net_sentiment(positive + 1, negative + 1, scored + 2)
    se = net_sentiment_se(positive + 1, negative + 1, scored + 2)
    assert centre is not None and se is not None
    return max(-100.0, centre - z * se), min(100.0, centre + z * se)


@dataclass(frozen=True, slots=True)
class MoodPoint:
    """One bucket of one brand: its volume and mood (``mood``: counts, plain NSS and SE,
    None when nothing was scored), and what the chart needs to be honest: ``low``/``high``,
    the interval (module docstring); ``sparse``, too few scored to draw on the line
    (``shown`` is then None); ``filling``, a bucket that has not ended yet at ``now``."""

    start: datetime
    end: datetime
    mood: Mood
    low: float | None
    high: float | None
    sparse: bool
    filling: bool

    @property
    def shown(self) -> float | None:
        return None if self.sparse else self.mood.nss


def mood_point(start: datetime, end: datetime, now: datetime, *, mentions: int, duplicates: int, unscored: int,
               positive: int, neutral: int, negative: int) -> MoodPoint:
    mood = mood_from_counts(mentions, positive, neutral, negative, duplicates=duplicates, unscored=unscored)
    interval = nss_interval(positive, negative, mood.scored)
    return MoodPoint(start=start, end=end, mood=mood, low=None if interval is None else interval[0],
                     high=None if interval is None else interval[1], sparse=mood.scored < SPARSE_SCORED,
                     filling=end > now)


def shares(volumes: dict[str, int]) -> dict[str, float | None]:
    """Each brand's share of the brands' total volume, in [0, 1]; None when all are 0."""
    total = sum(volumes.values())
    return {brand: (count / total if total else None) for brand, count in volumes.items()}
