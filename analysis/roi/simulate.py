"""A seeded simulator with a known answer, for the campaign-report statistics.

It generates label *counts* (no texts: a 200-seed calibration needs speed) for one brand
and its competitors on account-local days (or UTC hours), together with the truth the
report must recover. ``demo/world.py`` simulates the same world mention by
mention for the product demo; this is its fast, count-level twin with more knobs. The
two share the world's figures (the audience clock ``HOURLY_SHAPE``, the weekday factors,
the AR(1) parameters) and the Google Ads export writer (``demo.exports``);
their random draws differ (per-hour ``random.Random`` mention by mention there, numpy
count streams here), so one cannot replace the other without changing either the
demo's figures or the calibration's.

Mood model (NSS points, NSS = 100 (P - N) / T)
------------------------------------------------
For brand b on account-local day t::

    n(b, t) = base_nss(b) + market(t) + brand_noise(b, t) + shock(t) + [b is the brand] lift(t)

* ``market(t)``: AR(1) shared by every brand (phi ``market_phi`` 0.7, stationary sd
  ``market_sd`` 4), the part a difference-in-differences against competitors removes;
* ``brand_noise(b, t)``: AR(1) per brand (phi 0.5, stationary sd 2.5);
* ``shock(t)``: a market-wide step of ``shock`` points on ``shock_days`` days from the
  flight's first day (0 by default): news that moves every brand at launch;
* ``lift(t) = nss_lift * a(t)``, with ``a`` the normalised geometric adstock of the
  flight's nominal spend pattern, ``a(t) = (1 - theta) sum_k theta^k f(t - k)`` (f = 1 on
  flight days): with ``theta = 0`` (default) exactly ``nss_lift`` on every flight day and
  0 elsewhere; with ``theta > 0`` the lift builds up during the flight and decays after
  it with half-life ln 0.5 / ln theta days.

Each mention is positive with p+ = (o + n/100) / 2 and negative with p- = (o - n/100) / 2
(o = the brand's opinion rate, clipped to [0, 1]), so E[NSS] = n and E[(P + N)/T] = o.
Sources have their own mood offsets (``sources``: name, share, NSS offset; the
share-weighted offsets sum to 0), so a change of source mix (``mix_shift``) moves the
brand's NSS without anyone's mood changing.

Volume model
------------
Mentions per source and day are Poisson with mean ``mentions_per_day * weekday factor
* share(source) * (1 + volume_lift * a(t))`` (weekday factors: Saturday and Sunday at
0.75, normalised so a week's average day has ``mentions_per_day``). Hourly counts
(``simulate(..., hourly=True)``) split each local day over its local hours with the
demo world's audience clock (quiet at night, peaks at breakfast, lunch and evening),
keyed by UTC hour: summing them by local day gives the daily counts back, summing
them by UTC day does not (the time-zone test). Campaign-tagged mentions (replies to the
ads, hashtag uses) appear on flight days at ``tagged_share`` of volume with NSS
``tagged_nss``; they are kept apart, as the plan's tags would be, and are not part of
the truth (which is about organic mood). Engagement weights w = 1 + likes + reposts +
replies have Pareto tails (like the demo world's); ``engagement=False`` skips them
(one draw per mention is the slow part at very high volumes).

Connector gaps: on ``gap_days`` the first source delivers nothing (its expected hours
stay 24, observed 0).

Spend: ``daily_spend`` per flight day with a +-15 % pacing wobble (seeded); the effect
follows the nominal flight, not the wobble.

Determinism: every component draws from its own ``numpy`` stream spawned from the seed,
so switching a knob (a shock, say) leaves the other components' draws unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from analysis.campaign_plan import CampaignPlan
from analysis.roi.daily import BrandDaily, Coverage, DailySeries, DailySpend, date_range
from demo import world as demo_world
from demo.exports import AdsDay, google_ads_csv

UTC = timezone.utc

# The world's clock and mood dynamics are the demo world's (one set of figures for both).
HOURLY_SHAPE = np.array(demo_world.HOURLY_SHAPE)
"""Share of a day's mentions per local hour (the demo world's audience clock)."""
WEEKDAY_FACTOR = np.array(demo_world.WEEKDAY_FACTOR)


@dataclass(frozen=True)
class SimBrand:
    name: str
    mentions_per_day: float
    base_nss: float
    opinion_rate: float = 0.6


@dataclass(frozen=True)
class Scenario:
    """The knobs of one simulated market; see the module docstring for the model.
    Day indices count from ``start`` (day 0)."""

    days: int = 90
    start: date = date(2026, 3, 2)  # a Monday
    flight_start_day: int = 56
    flight_days: int = 14
    washout_days: int = 7
    brand: SimBrand = SimBrand("Brewly", 1000.0, 15.0, 0.60)
    competitors: tuple[SimBrand, ...] = (SimBrand("Beanhaus", 700.0, 8.0, 0.58),
                                         SimBrand("Kettle & Co", 500.0, 20.0, 0.55))
    nss_lift: float = 10.0
    volume_lift: float = 0.0
    theta: float = 0.0
    shock: float = 0.0
    shock_days: int | None = None
    market_phi: float = demo_world.MARKET_PHI
    market_sd: float = demo_world.MARKET_SD
    brand_phi: float = demo_world.BRAND_PHI
    brand_sd: float = demo_world.BRAND_SD
    daily_spend: float = 1500.0
    spend_wobble: float = 0.15
    currency: str = "USD"
    timezone: str = "America/New_York"
    tagged_share: float = 0.05
    tagged_nss: float = 40.0
    sources: tuple[tuple[str, float, float], ...] = (("x", 0.5, -5.0), ("reddit", 0.3, 5.0),
                                                     ("bluesky", 0.2, 5.0))
    mix_shift: float = 0.0
    gap_days: tuple[int, ...] = ()
    engagement: bool = True
    goal_value: float = 5.0
    campaign_id: str = "21874530912"
    campaign_name: str = "Brewly | Bright Mornings | Awareness"

    def __post_init__(self) -> None:
        if not 0 <= self.theta < 1:
            raise ValueError("theta must be in [0, 1)")
        if self.flight_start_day < 1 or self.flight_start_day + self.flight_days > self.days:
            raise ValueError("the flight must lie inside the simulated days, after day 0")
        shares = sum(s[1] for s in self.sources)
        if abs(shares - 1) > 1e-9:
            raise ValueError("source shares must sum to 1")

    @property
    def dates(self) -> tuple[date, ...]:
        return date_range(self.start, self.days)

    @property
    def flight_start(self) -> date:
        return self.start + timedelta(days=self.flight_start_day)

    @property
    def flight_end(self) -> date:
        return self.flight_start + timedelta(days=self.flight_days - 1)

    def plan(self) -> CampaignPlan:
        return CampaignPlan(
            campaign_id=self.campaign_id, brand=self.brand.name, flight_start=self.flight_start,
            flight_end=self.flight_end, washout_days=self.washout_days, primary_kpi="nss",
            goal_direction="increase", goal_value=self.goal_value,
            competitors=tuple(c.name for c in self.competitors),
            campaign_tags=("#brightmornings",), name=self.campaign_name)


def scenario(name: str, **overrides) -> Scenario:
    """A named scenario: "effect" (default: +10 NSS points at 1,000 mentions/day),
    "no_effect", "shock" (+10 plus a market-wide +8 at launch), "shock_no_effect",
    "volume_only" (+30 % volume, mood unchanged), "low_volume" (100 mentions/day, +5),
    "carry_over" (theta 0.6, half-life 1.4 days), "mix_shift" (no mood effect, the
    negative source's share up 25 points during the flight)."""
    presets = {
        "effect": {},
        "no_effect": {"nss_lift": 0.0},
        "shock": {"shock": 8.0},
        "shock_no_effect": {"shock": 8.0, "nss_lift": 0.0},
        "volume_only": {"nss_lift": 0.0, "volume_lift": 0.3},
        "low_volume": {"brand": SimBrand("Brewly", 100.0, 15.0, 0.60), "nss_lift": 5.0,
                       "competitors": (SimBrand("Beanhaus", 70.0, 8.0, 0.58),
                                       SimBrand("Kettle & Co", 50.0, 20.0, 0.55))},
        "carry_over": {"theta": 0.6},
        "mix_shift": {"nss_lift": 0.0, "mix_shift": 0.25},
    }
    if name not in presets:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(presets)}")
    return replace(Scenario(), **{**presets[name], **overrides})


@dataclass(frozen=True, eq=False)
class Truth:
    """What the simulated campaign really did (organic mentions of the brand).

    ``lift`` is the NSS points added per day; ``flight_mean_lift`` the mean over flight
    days (what ITS/DiD's flight coefficient estimates) and ``washout_mean_lift`` over the
    washout days. ``dnp`` = sum over flight + washout days of E[P - N] with the campaign
    minus E[P - N] without it, given the simulated mood path. ``half_life`` is in days
    (None for theta = 0)."""

    lift: np.ndarray
    volume_multiplier: np.ndarray
    flight_mean_lift: float
    washout_mean_lift: float
    volume_lift: float
    dnp: float
    theta: float
    half_life: float | None
    shock: float
    brand_nss: np.ndarray        # expected daily NSS of the brand, campaign included
    counterfactual_nss: np.ndarray
    market: np.ndarray

    def to_dict(self) -> dict:
        return {"flight_mean_lift": self.flight_mean_lift, "washout_mean_lift": self.washout_mean_lift,
                "volume_lift": self.volume_lift, "dnp": self.dnp, "theta": self.theta,
                "half_life": self.half_life, "shock": self.shock,
                "lift": [round(float(x), 6) for x in self.lift]}


@dataclass(frozen=True, eq=False)
class HourlyCounts:
    """Organic counts per UTC hour (``hour_starts`` are tz-aware UTC)."""

    brand: str
    hour_starts: tuple[datetime, ...]
    total: np.ndarray
    positive: np.ndarray
    negative: np.ndarray


@dataclass(frozen=True, eq=False)
class Simulation:
    scenario: Scenario
    seed: int
    plan: CampaignPlan
    brand: BrandDaily
    competitors: tuple[BrandDaily, ...]
    spend: DailySpend
    coverage: tuple[Coverage, ...]
    truth: Truth
    hourly: dict[str, HourlyCounts] = field(default_factory=dict)


def adstock_shape(flight: np.ndarray, theta: float) -> np.ndarray:
    """Normalised geometric adstock of a 0/1 (or spend) series."""
    out = np.zeros(flight.shape[0])
    carry = 0.0
    for t, s in enumerate(flight):
        carry = theta * carry + (1 - theta) * s
        out[t] = carry
    return out


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    if sd == 0:
        return np.zeros(n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sd)
    innov = rng.normal(0.0, sd * math.sqrt(1 - phi * phi), size=n)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + innov[t]
    return out


def _tone_probs(nss: np.ndarray, opinion: float) -> tuple[np.ndarray, np.ndarray]:
    p_pos = np.clip((opinion + nss / 100) / 2, 0.0, 1.0)
    p_neg = np.clip((opinion - nss / 100) / 2, 0.0, 1.0 - p_pos)
    return p_pos, p_neg


def _labels(rng: np.random.Generator, total: np.ndarray, nss: np.ndarray, opinion: float):
    p_pos, p_neg = _tone_probs(nss, opinion)
    total = total.astype(np.int64)
    pos = rng.binomial(total, p_pos)
    rest = total - pos
    cond = np.where(p_pos < 1, p_neg / np.maximum(1 - p_pos, 1e-12), 0.0)
    neg = rng.binomial(rest, np.clip(cond, 0.0, 1.0))
    return pos.astype(float), neg.astype(float)


def _weights(rng: np.random.Generator, pos: np.ndarray, neg: np.ndarray, total: np.ndarray):
    """Sum of w and of w*s per day, w = 1 + likes + reposts + replies (Pareto tails)."""
    counts = total.astype(np.int64)
    m = int(counts.sum())
    if m == 0:
        return np.zeros_like(total), np.zeros_like(total)
    u = 1.0 - rng.random((m, 3))
    w = 1.0 + (np.floor(u[:, 0] ** (-1 / 1.3)) - 1) + (np.floor(u[:, 1] ** (-1 / 2.2)) - 1) \
        + (rng.random(m) < 0.4) * (1 + np.floor((1.0 - rng.random(m)) ** (-1 / 2.0)) - 1)
    # within a day, the first P mentions are positive, the next N negative, the rest neutral
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    day = np.repeat(np.arange(counts.shape[0]), counts)
    rank = np.arange(m) - starts[day]
    s = np.where(rank < pos.astype(np.int64)[day], 1.0,
                 np.where(rank < (pos + neg).astype(np.int64)[day], -1.0, 0.0))
    wsum = np.bincount(day, weights=w, minlength=counts.shape[0])
    wnet = np.bincount(day, weights=w * s, minlength=counts.shape[0])
    return wsum, wnet


def _local_hours(day: date, tz: ZoneInfo) -> list[datetime]:
    """UTC starts of the local hours of ``day`` (23 or 25 on DST change days)."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).astimezone(UTC)
    hours = []
    h = start
    while h < end:
        hours.append(h)
        h += timedelta(hours=1)
    return hours


def simulate(sc: Scenario | str = "effect", seed: int = 0, *, hourly: bool = False) -> Simulation:
    """Simulate ``sc`` (a Scenario or a scenario name) with ``seed``.

    With ``hourly=True`` the brand's and competitors' organic counts are generated per
    UTC hour (returned in ``Simulation.hourly``) and the daily series are their sums by
    account-local day; per-source counts, tags and weights are then left out.
    """
    if isinstance(sc, str):
        sc = scenario(sc)
    n = sc.days
    dates = sc.dates
    root = np.random.SeedSequence([int(seed), 20261122])
    streams = root.spawn(8 + len(sc.competitors))
    rng_market, rng_spend, rng_tagged = (np.random.default_rng(s) for s in streams[:3])
    brand_rngs = [np.random.default_rng(s) for s in streams[8:]] + [np.random.default_rng(streams[3])]
    noise_rngs = [np.random.default_rng(s) for s in streams[4].spawn(len(sc.competitors) + 1)]

    flight = np.zeros(n)
    flight[sc.flight_start_day:sc.flight_start_day + sc.flight_days] = 1.0
    shape = adstock_shape(flight, sc.theta)
    lift = sc.nss_lift * shape
    shock = np.zeros(n)
    shock_len = sc.flight_days if sc.shock_days is None else sc.shock_days
    shock[sc.flight_start_day:sc.flight_start_day + shock_len] = sc.shock
    market = _ar1(rng_market, n, sc.market_phi, sc.market_sd)
    weekday = WEEKDAY_FACTOR[[d.weekday() for d in dates]]
    vol_mult = 1.0 + sc.volume_lift * shape

    in_flight = flight.astype(bool)
    washout = np.zeros(n, dtype=bool)
    washout[sc.flight_start_day + sc.flight_days:sc.flight_start_day + sc.flight_days + sc.washout_days] = True

    brands = [*sc.competitors, sc.brand]  # the brand last: its stream is fixed whatever the competitors
    results: list[BrandDaily] = []
    hourly_out: dict[str, HourlyCounts] = {}
    gap = np.zeros(n, dtype=bool)
    gap[list(sc.gap_days)] = True
    truth_nss = cf_nss = None
    dnp = 0.0
    for k, b in enumerate(brands):
        is_brand = b is sc.brand
        rng = brand_rngs[k]
        noise = _ar1(noise_rngs[k], n, sc.brand_phi, sc.brand_sd)
        base = b.base_nss + market + noise + shock
        nss = base + (lift if is_brand else 0.0)
        lam = b.mentions_per_day * weekday * (vol_mult if is_brand else 1.0)
        if is_brand:
            truth_nss, cf_nss = nss, base
            lam0 = b.mentions_per_day * weekday
            p1, n1 = _tone_probs(nss, b.opinion_rate)
            p0, n0 = _tone_probs(base, b.opinion_rate)
            eff = in_flight | washout
            dnp = float(((lam * (p1 - n1)) - (lam0 * (p0 - n0)))[eff].sum())
        if hourly:
            organic, hours = _hourly_brand(rng, b, dates, lam, nss, sc.timezone)
            hourly_out[b.name] = hours
            results.append(BrandDaily(b.name, organic))
            continue
        by_source: dict[str, DailySeries] = {}
        for j, (src, share, offset) in enumerate(sc.sources):
            sh = np.full(n, share)
            if sc.mix_shift and is_brand:
                # the first source gains ``mix_shift`` of share during the flight, the others lose it pro rata
                first = sc.sources[0][1]
                sh[in_flight] = (first + sc.mix_shift if j == 0
                                 else share * (1 - first - sc.mix_shift) / (1 - first))
            t = rng.poisson(lam * sh).astype(float)
            if j == 0:
                t[gap] = 0.0
            pos, neg = _labels(rng, t, nss + offset, b.opinion_rate)
            if sc.engagement:
                wsum, wnet = _weights(rng, pos, neg, t)
                by_source[src] = DailySeries(dates, t, pos, neg, None, wsum, wnet)
            else:
                by_source[src] = DailySeries(dates, t, pos, neg)
        organic = _sum_series(list(by_source.values()))
        tagged = None
        if is_brand and sc.tagged_share > 0:
            tt = rng_tagged.poisson(sc.tagged_share * lam * in_flight).astype(float)
            tp, tn = _labels(rng_tagged, tt, np.full(n, sc.tagged_nss), 0.7)
            tagged = DailySeries(dates, tt, tp, tn)
        results.append(BrandDaily(b.name, organic, tagged, by_source))

    wobble = np.clip(rng_spend.normal(1.0, sc.spend_wobble, size=sc.flight_days), 0.6, 1.4)
    spend_days = {sc.flight_start + timedelta(days=i): round(sc.daily_spend * float(w), 2)
                  for i, w in enumerate(wobble)}
    eng = {d: (int(s / rng_spend.uniform(7.5, 11.0) * 1000 * rng_spend.uniform(0.002, 0.005))
               if rng_spend.random() < 0.8 else None) for d, s in spend_days.items()}
    spend = DailySpend.from_days(sc.campaign_id, spend_days, sc.currency, eng)

    expected = np.full(n, 24.0)
    coverage = tuple(
        Coverage(src, dates, expected, np.where(gap, 0.0, 24.0) if j == 0 else expected)
        for j, (src, _, _) in enumerate(sc.sources)
    ) if not hourly else ()
    flight_mean = float(lift[in_flight].mean())
    wash_mean = float(lift[washout].mean()) if washout.any() else 0.0
    truth = Truth(
        lift=lift, volume_multiplier=vol_mult, flight_mean_lift=flight_mean, washout_mean_lift=wash_mean,
        volume_lift=float(vol_mult[in_flight].mean() - 1.0), dnp=dnp, theta=sc.theta,
        half_life=(math.log(0.5) / math.log(sc.theta)) if sc.theta > 0 else None, shock=sc.shock,
        brand_nss=truth_nss, counterfactual_nss=cf_nss, market=market,
    )
    brand = results[-1]
    return Simulation(sc, seed, sc.plan(), brand, tuple(results[:-1]), spend, coverage, truth, hourly_out)


def _sum_series(series: list[DailySeries]) -> DailySeries:
    from analysis.roi.daily import pool
    return pool(series)


def _hourly_brand(rng, b: SimBrand, dates, lam_day, nss_day, tz_name: str):
    tz = ZoneInfo(tz_name)
    hours: list[datetime] = []
    lam_h: list[float] = []
    nss_h: list[float] = []
    for i, d in enumerate(dates):
        local = _local_hours(d, tz)
        local_hour = np.array([h.astimezone(tz).hour for h in local])
        w = HOURLY_SHAPE[local_hour]
        w = w / w.sum()
        hours.extend(local)
        lam_h.extend(lam_day[i] * w)
        nss_h.extend([nss_day[i]] * len(local))
    lam_h = np.array(lam_h)
    t = rng.poisson(lam_h).astype(float)
    pos, neg = _labels(rng, t, np.array(nss_h), b.opinion_rate)
    counts = HourlyCounts(b.name, tuple(hours), t, pos, neg)
    from analysis.roi.daily import daily_from_hourly
    daily = daily_from_hourly(hours, t, pos, neg, tz_name, dates[0], dates[-1])
    return daily, counts


# ----------------------------------------------------------------------------------
# Spend as the marketer downloads it
# ----------------------------------------------------------------------------------

def google_ads_export_text(spends: Sequence[DailySpend], names: dict[str, str] | None = None,
                           seed: int = 0) -> str:
    """The spend as a Google Ads UI "Campaign report" CSV: a title line, a date-range
    line, the header ``Day,Campaign,Campaign ID,Currency code,Cost,Impr.,Clicks,
    Engagements``, quoted figures with thousands separators, "--" where a metric is
    unknown, and ``Total:`` rows at the bottom. Impressions and clicks are derived from
    the cost (CPM $7.50-11, CTR 0.9-1.6 %), seeded. Days without spend are left out,
    as the UI does."""
    names = names or {}
    rng = np.random.default_rng([int(seed), 7])
    rows = []
    for sp in spends:
        for i, (day, cost) in enumerate(zip(sp.dates, sp.spend)):
            if cost <= 0:
                continue
            impressions = int(cost / rng.uniform(7.5, 11.0) * 1000)
            clicks = int(impressions * rng.uniform(0.009, 0.016))
            eng = None
            if sp.engagements is not None and not math.isnan(sp.engagements[i]):
                eng = int(sp.engagements[i])
            rows.append(AdsDay(day, names.get(sp.campaign_id, sp.campaign_id), sp.campaign_id, sp.currency,
                               float(cost), impressions, clicks, eng))
    return google_ads_csv(rows)


def write_google_ads_export(path: str | Path, sim: Simulation) -> Path:
    """Write ``sim``'s spend as a Google Ads UI export (see ``google_ads_export_text``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = google_ads_export_text([sim.spend], {sim.scenario.campaign_id: sim.scenario.campaign_name}, sim.seed)
    path.write_text(text, encoding="utf-8", newline="")
    return path
