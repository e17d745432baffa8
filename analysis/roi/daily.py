"""Daily inputs of the campaign report, their aggregation into account-local days, and the
descriptive metrics of docs/roi-method.md (NSS with SE, opinion rate, share of voice,
engagement-weighted NSS).

Everything here is pure: rows or arrays in, values out.

Days are the ad account's days. Mentions carry UTC timestamps; the caller (or
``daily_from_mentions`` / ``daily_from_hourly`` here) converts them to the account's
time zone *before* cutting days, because the ad platform starts and stops a flight at
local midnight. Cutting UTC days for a UTC-5 account moves the evening of every local day
onto the next one, which blurs the first and last flight days.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone as _timezone
from zoneinfo import ZoneInfo

import numpy as np

from analysis.campaign_plan import CampaignPlan
from analysis.mood import net_sentiment, net_sentiment_se

UTC = _timezone.utc


def _array(values, name: str, n: int | None = None, *, allow_nan: bool = False) -> np.ndarray:
    arr = np.asarray(values, dtype=float).copy()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} values for {n} dates")
    finite = arr[np.isfinite(arr)]
    if not allow_nan and finite.shape[0] != arr.shape[0]:
        raise ValueError(f"{name} has missing values (use 0 for a day with no mentions)")
    if (finite < 0).any():
        raise ValueError(f"{name} has negative values")
    arr.setflags(write=False)
    return arr


def _dates(dates: Sequence[date]) -> tuple[date, ...]:
    out = tuple(dates)
    if not out:
        raise ValueError("no dates")
    for prev, cur in zip(out, out[1:]):
        if (cur - prev).days != 1:
            raise ValueError(f"dates must be consecutive days: {prev} is followed by {cur}")
    return out


def date_range(start: date, days: int) -> tuple[date, ...]:
    return tuple(start + timedelta(days=i) for i in range(days))


@dataclass(frozen=True, eq=False)
class DailySeries:
    """Daily label counts on consecutive account-local dates.

    ``total`` is T, the scored mentions (positive + neutral + negative); ``positive``
    and ``negative`` are P and N. ``mentions`` is volume (scored or not; duplicates
    included) and defaults to ``total``. ``weight`` is sum(w_i) and ``weighted_net``
    sum(w_i s_i) over scored mentions, with w_i = 1 + likes + reposts + replies and
    s_i = +1/0/-1: the engagement-weighted NSS is 100 weighted_net / weight. A day with
    no data at all has T = 0 (its NSS is missing, not 0).
    """

    dates: tuple[date, ...]
    total: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    mentions: np.ndarray | None = None
    weight: np.ndarray | None = None
    weighted_net: np.ndarray | None = None

    def __post_init__(self) -> None:
        dates = _dates(self.dates)
        n = len(dates)
        set_ = object.__setattr__
        set_(self, "dates", dates)
        for name in ("total", "positive", "negative"):
            set_(self, name, _array(getattr(self, name), name, n))
        if (self.positive + self.negative > self.total + 1e-9).any():
            raise ValueError("positive + negative exceeds total on some day")
        set_(self, "mentions", self.total if self.mentions is None
             else _array(self.mentions, "mentions", n))
        if (self.weight is None) != (self.weighted_net is None):
            raise ValueError("give both weight and weighted_net, or neither")
        if self.weight is not None:
            set_(self, "weight", _array(self.weight, "weight", n))
            net = np.asarray(self.weighted_net, dtype=float).copy()
            if net.shape != (n,):
                raise ValueError(f"weighted_net has {net.shape} values for {n} dates")
            net.setflags(write=False)
            set_(self, "weighted_net", net)

    @classmethod
    def from_counts(cls, start: date, total, positive, negative, **optional) -> DailySeries:
        return cls(date_range(start, len(total)), total, positive, negative, **optional)

    def __len__(self) -> int:
        return len(self.dates)

    @property
    def net(self) -> np.ndarray:
        """P - N per day: net-positive conversations."""
        return self.positive - self.negative

    def nss(self) -> np.ndarray:
        """Daily NSS; NaN on days with no scored mention."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.total > 0, 100.0 * self.net / np.where(self.total > 0, self.total, 1), np.nan)

    def nss_se(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(self.total > 0, self.total, 1.0)
            pp, pn = self.positive / t, self.negative / t
            var = np.maximum(pp + pn - (pp - pn) ** 2, 0.0)
            return np.where(self.total > 0, 100.0 * np.sqrt(var / t), np.nan)

    def slice(self, start: date, end: date) -> DailySeries:
        """Days start..end inclusive (clipped to the series)."""
        keep = [i for i, d in enumerate(self.dates) if start <= d <= end]
        if not keep:
            raise ValueError(f"no day of the series lies in {start}..{end}")
        sl = slice(keep[0], keep[-1] + 1)
        return DailySeries(self.dates[sl], self.total[sl], self.positive[sl], self.negative[sl],
                           self.mentions[sl],
                           None if self.weight is None else self.weight[sl],
                           None if self.weighted_net is None else self.weighted_net[sl])

    def aligned_to(self, dates: Sequence[date]) -> DailySeries:
        """The same counts on ``dates``; days the series lacks become zero-count days."""
        dates = _dates(dates)
        index = {d: i for i, d in enumerate(self.dates)}
        pos = np.array([index.get(d, -1) for d in dates])
        have = pos >= 0

        def take(arr):
            if arr is None:
                return None
            out = np.zeros(len(dates))
            out[have] = arr[pos[have]]
            return out

        return DailySeries(dates, take(self.total), take(self.positive), take(self.negative),
                           take(self.mentions), take(self.weight), take(self.weighted_net))


def pool(series: Sequence[DailySeries]) -> DailySeries:
    """Sum of several brands' (or sources') counts on the same dates: the pooled
    competitor, whose NSS weights each competitor by its volume."""
    if not series:
        raise ValueError("nothing to pool")
    dates = series[0].dates
    for s in series[1:]:
        if s.dates != dates:
            raise ValueError("pooled series must share their dates (use aligned_to)")
    has_weight = all(s.weight is not None for s in series)
    return DailySeries(
        dates,
        sum(s.total for s in series), sum(s.positive for s in series), sum(s.negative for s in series),
        sum(s.mentions for s in series),
        sum(s.weight for s in series) if has_weight else None,
        sum(s.weighted_net for s in series) if has_weight else None,
    )


@dataclass(frozen=True, eq=False)
class BrandDaily:
    """One brand's daily counts. ``organic`` leaves out mentions carrying the plan's
    campaign tags (hashtags/handles), which are in ``tagged``: organic NSS is the
    headline. ``by_source`` holds organic counts per source (for the source-mix check)."""

    brand: str
    organic: DailySeries
    tagged: DailySeries | None = None
    by_source: Mapping[str, DailySeries] = field(default_factory=dict)

    @property
    def dates(self) -> tuple[date, ...]:
        return self.organic.dates

    def everything(self) -> DailySeries:
        """Organic plus campaign-tagged mentions."""
        return self.organic if self.tagged is None else pool([self.organic, self.tagged.aligned_to(self.dates)])

    def aligned_to(self, dates: Sequence[date]) -> BrandDaily:
        return BrandDaily(self.brand, self.organic.aligned_to(dates),
                          None if self.tagged is None else self.tagged.aligned_to(dates),
                          {k: v.aligned_to(dates) for k, v in self.by_source.items()})


@dataclass(frozen=True)
class ReportedEngagements:
    """What the ad platform reported: ``engagements`` summed over the ``days_reported``
    days that have a figure, ``spend`` on those same days, and ``days_missing``, the days
    with spend whose engagements were left blank (unknown)."""

    engagements: float
    spend: float
    days_reported: int
    days_missing: tuple[date, ...]


@dataclass(frozen=True, eq=False)
class DailySpend:
    """One campaign's daily spend on account-local dates. ``engagements`` (and the other
    platform metrics) use NaN for unknown, never 0."""

    campaign_id: str
    dates: tuple[date, ...]
    spend: np.ndarray
    currency: str = "USD"
    engagements: np.ndarray | None = None
    impressions: np.ndarray | None = None
    clicks: np.ndarray | None = None

    def __post_init__(self) -> None:
        dates = _dates(self.dates)
        object.__setattr__(self, "dates", dates)
        object.__setattr__(self, "spend", _array(self.spend, "spend", len(dates)))
        for name in ("engagements", "impressions", "clicks"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _array(getattr(self, name), name, len(dates), allow_nan=True))

    @classmethod
    def from_days(cls, campaign_id: str, by_day: Mapping[date, float], currency: str = "USD",
                  engagements: Mapping[date, float | None] | None = None) -> DailySpend:
        """From {date: spend}; days between the first and last without a row spent 0."""
        if not by_day:
            raise ValueError(f"campaign {campaign_id} has no spend rows")
        first, last = min(by_day), max(by_day)
        dates = date_range(first, (last - first).days + 1)
        spend = [float(by_day.get(d, 0.0)) for d in dates]
        eng = None
        if engagements is not None:
            eng = [math.nan if engagements.get(d) is None else float(engagements[d]) for d in dates]
        return cls(campaign_id, dates, spend, currency, eng)

    def on(self, dates: Sequence[date]) -> np.ndarray:
        """Spend on ``dates`` (0 outside the file's days)."""
        index = {d: i for i, d in enumerate(self.dates)}
        return np.array([self.spend[index[d]] if d in index else 0.0 for d in dates])

    def total(self, start: date | None = None, end: date | None = None) -> float:
        return float(sum(s for d, s in zip(self.dates, self.spend)
                         if (start is None or d >= start) and (end is None or d <= end)))

    def reported_engagements(self, start: date | None = None, end: date | None = None) -> ReportedEngagements | None:
        """Platform engagements over the days that reported them, with the spend of those
        days (so a cost per engagement compares like with like) and the spend days that
        did not report (blank means unknown, not 0). None when no day reported."""
        if self.engagements is None:
            return None
        days = [(d, s, e) for d, s, e in zip(self.dates, self.spend, self.engagements)
                if (start is None or d >= start) and (end is None or d <= end)]
        known = [(d, s, e) for d, s, e in days if not math.isnan(e)]
        if not known:
            return None
        # A day without a spend row (spend 0, engagements unknown) ran no ads: not "missing".
        missing = tuple(d for d, s, e in days if math.isnan(e) and s > 0)
        return ReportedEngagements(float(sum(e for _, _, e in known)), float(sum(s for _, s, _ in known)),
                                   len(known), missing)

    def total_engagements(self, start: date | None = None, end: date | None = None) -> float | None:
        """Platform engagements over the days; None when any of those days is unknown."""
        if self.engagements is None:
            return None
        vals = [e for d, e in zip(self.dates, self.engagements)
                if (start is None or d >= start) and (end is None or d <= end)]
        if not vals or any(math.isnan(v) for v in vals):
            return None
        return float(sum(vals))


@dataclass(frozen=True, eq=False)
class Coverage:
    """Whether data arrived when it was expected, per day: ``expected`` and ``observed``
    count units (usually hours) in which a source should have / did deliver data for
    ``brand`` (None: every brand). A day with observed < expected has a gap."""

    source: str
    dates: tuple[date, ...]
    expected: np.ndarray
    observed: np.ndarray
    brand: str | None = None

    def __post_init__(self) -> None:
        dates = _dates(self.dates)
        object.__setattr__(self, "dates", dates)
        object.__setattr__(self, "expected", _array(self.expected, "expected", len(dates)))
        object.__setattr__(self, "observed", _array(self.observed, "observed", len(dates)))


@dataclass(frozen=True, eq=False)
class CampaignWindow:
    """The plan laid on the analysis dates: boolean masks, one per day.

    ``flight`` covers flight_start..flight_end *inclusive*; ``washout`` the next
    ``washout_days`` days; ``pre`` the days before the flight and ``post`` the days after
    the washout; ``baseline`` = pre | post (days the model treats as untouched, less any
    ``excluded`` day, e.g. another flight of the same brand)."""

    dates: tuple[date, ...]
    flight: np.ndarray
    washout: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    excluded: np.ndarray

    @classmethod
    def from_plan(cls, plan: CampaignPlan, dates: Sequence[date],
                  exclude: Iterable[tuple[date, date]] = ()) -> CampaignWindow:
        dates = _dates(dates)
        d = np.array([x.toordinal() for x in dates])
        fs, fe, we = plan.flight_start.toordinal(), plan.flight_end.toordinal(), plan.washout_end.toordinal()
        flight = (d >= fs) & (d <= fe)
        washout = (d > fe) & (d <= we)
        excluded = np.zeros(len(dates), dtype=bool)
        for start, end in exclude:
            excluded |= (d >= start.toordinal()) & (d <= end.toordinal())
        excluded &= ~(flight | washout)
        pre = (d < fs) & ~excluded
        post = (d > we) & ~excluded
        return cls(dates, flight, washout, pre, post, excluded)

    @property
    def baseline(self) -> np.ndarray:
        return self.pre | self.post

    @property
    def effect(self) -> np.ndarray:
        """Flight and washout: the days dNP sums over."""
        return self.flight | self.washout


def day_of_week_dummies(dates: Sequence[date]) -> tuple[np.ndarray, list[str]]:
    """Six 0/1 columns, Tuesday..Sunday (Monday is the reference)."""
    wd = np.array([d.weekday() for d in dates])
    names = ["tue", "wed", "thu", "fri", "sat", "sun"]
    return np.column_stack([(wd == k).astype(float) for k in range(1, 7)]), names


# ----------------------------------------------------------------------------------
# Aggregating into account-local days
# ----------------------------------------------------------------------------------

def local_date(moment: datetime, timezone: str | ZoneInfo) -> date:
    """The account-local date of a UTC instant. Naive datetimes are refused: a naive
    timestamp is exactly how a wrong time zone slips in."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: mention timestamps must be tz-aware UTC")
    tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    return moment.astimezone(tz).date()


_LABELS = {"positive": 1, "neutral": 0, "negative": -1}


def daily_from_mentions(rows: Iterable[tuple], timezone: str, start: date, end: date) -> DailySeries:
    """Aggregate mention rows into account-local days start..end (inclusive).

    A row is ``(created_at_utc, label)`` or ``(created_at_utc, label, weight)`` with
    label "positive"/"neutral"/"negative", or None for an unscored mention (counted as
    volume only). ``weight`` is 1 + likes + reposts + replies (default 1). Rows outside
    the days are ignored.
    """
    tz = ZoneInfo(timezone)
    n = (end - start).days + 1
    total, pos, neg, vol = (np.zeros(n) for _ in range(4))
    wsum, wnet = np.zeros(n), np.zeros(n)
    first = start.toordinal()
    for row in rows:
        i = local_date(row[0], tz).toordinal() - first
        if not 0 <= i < n:
            continue
        vol[i] += 1
        label = row[1]
        if label is None:
            continue
        s = _LABELS[label]
        w = float(row[2]) if len(row) > 2 else 1.0
        total[i] += 1
        pos[i] += s == 1
        neg[i] += s == -1
        wsum[i] += w
        wnet[i] += w * s
    return DailySeries(date_range(start, n), total, pos, neg, vol, wsum, wnet)


def daily_from_buckets(rows: Iterable[tuple], timezone: str, start: date, end: date) -> DailySeries:
    """Like ``daily_from_mentions``, from pre-counted buckets: ``(bucket_start_utc,
    label, count, weight_sum)`` with label as there (None: volume only). Buckets of 15
    minutes cut every real time zone's days exactly (all offsets are multiples of 15
    minutes), while the database does the counting."""
    tz = ZoneInfo(timezone)
    n = (end - start).days + 1
    total, pos, neg, vol = (np.zeros(n) for _ in range(4))
    wsum, wnet = np.zeros(n), np.zeros(n)
    first = start.toordinal()
    for bucket, label, count, weight in rows:
        i = local_date(bucket, tz).toordinal() - first
        if not 0 <= i < n:
            continue
        vol[i] += count
        if label is None:
            continue
        s = _LABELS[label]
        total[i] += count
        pos[i] += count if s == 1 else 0
        neg[i] += count if s == -1 else 0
        wsum[i] += weight
        wnet[i] += weight * s
    return DailySeries(date_range(start, n), total, pos, neg, vol, wsum, wnet)


def daily_from_hourly(hour_starts: Sequence[datetime], total, positive, negative, timezone: str,
                      start: date | None = None, end: date | None = None, mentions=None) -> DailySeries:
    """Sum hourly buckets (keyed by their UTC start) into account-local days.

    A bucket goes to the local date of its start; for zones whose offset is not a whole
    number of hours (India, Nepal, parts of Australia) aggregate mentions instead, or
    the half hour straddling local midnight lands on one side.
    """
    tz = ZoneInfo(timezone)
    days = np.array([local_date(h, tz).toordinal() for h in hour_starts])
    start = start or date.fromordinal(int(days.min()))
    end = end or date.fromordinal(int(days.max()))
    n = (end - start).days + 1
    idx = days - start.toordinal()
    keep = (idx >= 0) & (idx < n)

    def agg(values):
        out = np.zeros(n)
        np.add.at(out, idx[keep], np.asarray(values, dtype=float)[keep])
        return out

    return DailySeries(date_range(start, n), agg(total), agg(positive), agg(negative),
                       None if mentions is None else agg(mentions))


PARTIAL_DAY_EXPECTED = 5.0
"""A first or last day is partial when the stretch of it without data would, at the
brand's usual rate for those local hours, have held at least this many mentions (seeing
none of 5 expected has a chance under 1 %)."""


@dataclass(frozen=True)
class CompleteDays:
    """The complete account-local days of a data span: ``start``..``end`` inclusive
    (``end < start`` when there is none), and the partial first or last day of the
    data left out, with why (today, never complete, is not listed)."""

    start: date
    end: date
    dropped: tuple[tuple[date, str], ...]


def complete_days(volume: Iterable[tuple[datetime, float]], first: datetime, last: datetime, now: datetime,
                  timezone: str) -> CompleteDays:
    """Which local days of the data are complete.

    ``volume``: (bucket start UTC, mentions) over the span, any bucket size up to an
    hour; ``first``/``last``: the first and last mention (UTC); ``now``: the report's
    time (today is never complete). The first day counts when the data start at its
    local midnight, the last when they run to its end: a day is partial when its empty
    stretch (midnight to the first mention, or the last mention to midnight) would have
    held ``PARTIAL_DAY_EXPECTED`` mentions or more at the brand's mean rate for those
    local hours (from the days in between; the span's mean rate when there are none).
    Low-volume data therefore keep a day whose quiet start cannot be told from missing data.
    """
    tz = ZoneInfo(timezone)
    first_day, last_day = local_date(first, tz), local_date(last, tz)
    by_hour, total = np.zeros(24), 0.0
    for bucket, count in volume:
        if bucket.utcoffset() is None:  # a naive time would be read in the machine's zone
            raise ValueError(f"naive datetime {bucket!r}: bucket starts must be tz-aware UTC")
        local = bucket.astimezone(tz)
        total += count
        if first_day < local.date() < last_day:
            by_hour[local.hour] += count
    interior = (last_day - first_day).days - 1
    if interior > 0:
        rate = by_hour / interior  # mentions per local hour of the day
    else:
        hours = max((last - first).total_seconds() / 3600.0, 1.0)
        rate = np.full(24, total / hours)

    def expected(lo: datetime, hi: datetime) -> float:
        """Mentions expected in [lo, hi) at ``rate``, in 15-minute steps (DST-safe: UTC steps)."""
        out, step = 0.0, timedelta(minutes=15)
        moment = lo.astimezone(UTC)
        while moment < hi:
            out += rate[moment.astimezone(tz).hour] * min(1.0, (hi - moment) / step) / 4
            moment += step
        return out

    def clock(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%H:%M")

    dropped: list[tuple[date, str]] = []
    start = first_day
    midnight = datetime.combine(first_day, time(), tz)
    missed = expected(midnight, first)
    if missed >= PARTIAL_DAY_EXPECTED:
        start = first_day + timedelta(days=1)
        dropped.append((first_day, f"the data start at {clock(first)} local time that day, when about "
                                   f"{missed:.0f} mentions were expected since midnight"))
    today = local_date(now, tz)
    end = min(last_day, today - timedelta(days=1))
    if last_day < today:  # (today itself is never analysed: not over yet, and no data problem to report)
        next_midnight = datetime.combine(last_day + timedelta(days=1), time(), tz)
        missed = expected(last, next_midnight)
        if missed >= PARTIAL_DAY_EXPECTED:
            end = last_day - timedelta(days=1)
            if last_day >= start:
                dropped.append((last_day, f"the data stop at {clock(last)} local time that day, when about "
                                          f"{missed:.0f} more mentions were expected by midnight"))
    return CompleteDays(start, end, tuple(dropped))


# ----------------------------------------------------------------------------------
# Window metrics
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowMetrics:
    """Descriptive mood of one brand over one window (no model): docs/roi-method.md's metric
    table. ``share_of_voice`` is T_b / sum over the brand set of T_k (organic, same
    sources and rules for all); ``ew_nss`` the engagement-weighted NSS, shown beside NSS,
    never instead of it."""

    label: str
    start: date | None
    end: date | None
    days: int
    mentions: int
    total: int
    positive: int
    negative: int
    nss: float | None
    nss_se: float | None
    opinion_rate: float | None
    share_of_voice: float | None
    ew_nss: float | None


def window_metrics(series: DailySeries, mask: np.ndarray, label: str,
                   brand_set_total: np.ndarray | None = None) -> WindowMetrics:
    mask = np.asarray(mask, dtype=bool)
    days = [d for d, m in zip(series.dates, mask) if m]
    t = int(series.total[mask].sum())
    p = int(series.positive[mask].sum())
    n = int(series.negative[mask].sum())
    sov = None
    if brand_set_total is not None:
        denom = float(np.asarray(brand_set_total)[mask].sum())
        sov = t / denom if denom > 0 else None
    ew = None
    if series.weight is not None:
        w = float(series.weight[mask].sum())
        ew = 100.0 * float(series.weighted_net[mask].sum()) / w if w > 0 else None
    return WindowMetrics(
        label=label, start=days[0] if days else None, end=days[-1] if days else None,
        days=len(days), mentions=int(series.mentions[mask].sum()), total=t, positive=p, negative=n,
        nss=net_sentiment(p, n, t), nss_se=net_sentiment_se(p, n, t),
        opinion_rate=(p + n) / t if t else None, share_of_voice=sov, ew_nss=ew,
    )


def share_of_voice(brand_total: float, all_totals: Iterable[float]) -> float | None:
    """T_b / sum_k T_k, where ``all_totals`` includes the brand itself."""
    denom = float(sum(all_totals))
    return brand_total / denom if denom > 0 else None
