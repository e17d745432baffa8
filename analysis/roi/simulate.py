"""The ROI simulator: the demo world (``demo.world``) at count level, with a known answer.

One simulation engine serves the demo, the calibration bench and the tests: the demo
world's model (mood = base + market AR(1) + brand AR(1) + campaign lift, the audience
clock, the weekday factors, tone probabilities, paced spend, the Google Ads export). A
``Scenario`` here is a configuration of that world, a ``DemoWorld`` with the
scenario's brands, one campaign and its knobs, and ``simulate`` draws the world's
*counts* (``demo.world.sample_counts``: Poisson volume, binomial labels per hour) where
the demo draws mentions with texts and threads; a 200-seed calibration needs the speed.
The truth the report must recover is the world's.

Model (NSS points, NSS = 100 (P - N) / T)
-----------------------------------------
For brand b in the UTC hour h (of UTC day u and account-local day t)::

    n(b, h) = base_nss(b) + market(u) + brand_noise(b, u) + shock(t) + [b is the brand] lift(t)

* ``market(u)``: AR(1) shared by every brand (phi ``market_phi`` 0.7, stationary sd
  ``market_sd`` 4), the part a difference-in-differences against competitors removes;
  ``brand_noise(b, u)``: AR(1) per brand (phi 0.5, stationary sd 2.5); both iterated per
  UTC day from the world's epoch, seeded by the seed (``DemoWorld``);
* ``shock(t)``: a market-wide step of ``shock`` points on ``shock_days`` account-local
  days from the flight's first day (0 by default): news that moves every brand at launch;
* ``lift(t) = nss_lift * a(t)``, with ``a`` the normalised geometric adstock of the
  flight (``Campaign.lift_share``): with ``theta = 0`` (default) exactly ``nss_lift`` on
  every flight day and 0 elsewhere; with ``theta > 0`` the lift builds up during the
  flight and decays after it with half-life ln 0.5 / ln theta days.

Each mention is positive with p+ = (o + n/100) / 2 and negative with p- = (o - n/100) / 2
(o = the brand's opinion rate, ``demo.world.tone_probs``), so E[NSS] = n and
E[(P + N)/T] = o. Sources have their own mood offsets (``sources``: name, share, NSS
offset; the share-weighted offsets sum to 0), so a change of source mix (``mix_shift``)
moves the brand's NSS without anyone's mood changing.

Volume model
------------
Mentions per source and UTC hour are Poisson with mean the world's expected mentions
(``mentions_per_day`` spread over the audience clock, quiet at night, peaks at
breakfast, lunch and evening, and over the week, Saturday and Sunday at 0.75) times
``share(source)``, the brand's times ``1 + volume_lift * a(t)``. Daily series are the
hourly counts summed by account-local day (``daily_from_hourly``); ``Simulation.hourly``
keeps the hourly ones (keyed by UTC hour: summing them by UTC day does not give the
daily counts back, the time-zone test). Campaign-tagged mentions (replies to the ads,
hashtag uses) appear on flight days at ``tagged_share`` of volume with NSS
``tagged_nss``; they are kept apart, as the plan's tags would be, and are not part of
the truth (which is about organic mood). Engagement weights w = 1 + likes + reposts +
replies have Pareto tails (like the demo world's); ``engagement=False`` skips them
(one draw per mention is the slow part at very high volumes).

Connector gaps: on ``gap_days`` the first source delivers nothing (its expected hours
stay 24, observed 0).

Spend is the world's (``DemoWorld.daily_spend``: ``daily_spend`` per flight day with a
+-15 % pacing wobble, seeded per day) and the engagements those of its Google Ads export
(``demo.exports.ads_days``), so ``demo.exports.write_google_ads_export(path, sim.world)``
writes exactly ``sim.spend``. The effect follows the nominal flight, not the wobble.

Determinism: the mood terms are the world's (seeded per series); the counts of each
brand, the tagged mentions and the engagement weights draw from their own ``numpy``
streams spawned from the seed, so switching a knob (a shock, say) leaves the other
components' draws unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

from analysis.campaign_plan import CampaignPlan
from analysis.roi.daily import BrandDaily, Coverage, DailySeries, DailySpend, daily_from_hourly, date_range, pool
from demo.exports import ads_days
from demo.world import (
    Campaign,
    DemoBrand,
    DemoWorld,
    MarketShock,
    MoodDynamics,
    sample_counts,
    slugify,
    tone_probs,
)

UTC = timezone.utc
_DEFAULT_DYNAMICS = MoodDynamics()


@dataclass(frozen=True)
class SimBrand:
    name: str
    mentions_per_day: float
    base_nss: float
    opinion_rate: float = 0.6

    def profile(self) -> DemoBrand:
        """The world's profile of this brand."""
        return DemoBrand(self.name, slugify(self.name), self.mentions_per_day, self.base_nss, self.opinion_rate)


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
    market_phi: float = _DEFAULT_DYNAMICS.market_phi
    market_sd: float = _DEFAULT_DYNAMICS.market_sd
    brand_phi: float = _DEFAULT_DYNAMICS.brand_phi
    brand_sd: float = _DEFAULT_DYNAMICS.brand_sd
    daily_spend: float = 1500.0
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

    def campaign(self) -> Campaign:
        """The scenario's campaign as the world runs it."""
        return Campaign(self.campaign_id, self.campaign_name, self.brand.name, self.flight_start, self.flight_end,
                        self.nss_lift, self.daily_spend, self.currency, self.timezone, carry_over=self.theta,
                        volume_lift=self.volume_lift)

    def world(self, seed: int) -> DemoWorld:
        """The scenario as a demo world: its brands, its campaign, its shock and mood
        dynamics, starting at the first local midnight."""
        shock_days = self.flight_days if self.shock_days is None else self.shock_days
        shocks = (MarketShock(self.flight_start, shock_days, self.shock, self.timezone),) if self.shock else ()
        return DemoWorld(seed=int(seed), brands=tuple(b.profile() for b in (self.brand, *self.competitors)),
                         campaigns=(self.campaign(),), start=_local_midnight(self.start, ZoneInfo(self.timezone)),
                         dynamics=MoodDynamics(self.market_phi, self.market_sd, self.brand_phi, self.brand_sd),
                         shocks=shocks)


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

    ``lift`` is the NSS points added per account-local day; ``flight_mean_lift`` the mean
    over flight days (what ITS/DiD's flight coefficient estimates) and
    ``washout_mean_lift`` over the washout days. ``dnp`` = sum over flight + washout days
    of E[P - N] with the campaign minus E[P - N] without it, given the simulated mood
    path. ``half_life`` is in days (None for theta = 0). ``brand_nss`` and
    ``counterfactual_nss`` are the brand's expected NSS per local day with and without
    the campaign; ``market`` the market's AR(1) term per local day (its UTC date)."""

    lift: np.ndarray
    volume_multiplier: np.ndarray
    flight_mean_lift: float
    washout_mean_lift: float
    volume_lift: float
    dnp: float
    theta: float
    half_life: float | None
    shock: float
    brand_nss: np.ndarray
    counterfactual_nss: np.ndarray
    market: np.ndarray

    def to_dict(self) -> dict:
        return {"flight_mean_lift": self.flight_mean_lift, "washout_mean_lift": self.washout_mean_lift,
                "volume_lift": self.volume_lift, "dnp": self.dnp, "theta": self.theta,
                "half_life": self.half_life, "shock": self.shock,
                "lift": [round(float(x), 6) for x in self.lift]}


@dataclass(frozen=True, eq=False)
class HourlyCounts:
    """Organic counts per UTC hour (``hour_starts`` are tz-aware UTC), every source's."""

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
    world: DemoWorld
    hourly: dict[str, HourlyCounts] = field(default_factory=dict)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tz).astimezone(UTC)


def _local_hours(sc: Scenario) -> tuple[list[datetime], np.ndarray]:
    """UTC starts of every local hour of the scenario's days (23 or 25 on DST change
    days), and each hour's day index."""
    tz = ZoneInfo(sc.timezone)
    hours: list[datetime] = []
    day_of: list[int] = []
    for i, day in enumerate(sc.dates):
        h, end = _local_midnight(day, tz), _local_midnight(day + timedelta(days=1), tz)
        while h < end:
            hours.append(h)
            day_of.append(i)
            h += timedelta(hours=1)
    return hours, np.array(day_of)


def _by_day(values: np.ndarray, day_of: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(day_of, weights=values, minlength=n)


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


def simulate(sc: Scenario | str = "effect", seed: int = 0) -> Simulation:
    """Simulate ``sc`` (a Scenario or a scenario name) with ``seed``.

    Counts are drawn per UTC hour and source and summed into account-local days; the
    hourly totals of every brand are in ``Simulation.hourly``."""
    if isinstance(sc, str):
        sc = scenario(sc)
    world = sc.world(seed)
    (campaign,) = world.campaigns
    n = sc.days
    dates = sc.dates
    hours, day_of = _local_hours(sc)
    root = np.random.SeedSequence([int(seed), 20261122])
    streams = root.spawn(4 + len(sc.competitors))
    rng_tagged, rng_weights = (np.random.default_rng(s) for s in streams[:2])
    brand_rngs = [np.random.default_rng(s) for s in streams[3:]]  # the brand's first, then each competitor's

    lift = np.array([campaign.nss_lift * campaign.lift_share(d) for d in dates])
    vol_mult = np.array([1.0 + sc.volume_lift * campaign.lift_share(d) for d in dates])
    flight = np.zeros(n, dtype=bool)
    flight[sc.flight_start_day:sc.flight_start_day + sc.flight_days] = True
    washout = np.zeros(n, dtype=bool)
    washout[sc.flight_start_day + sc.flight_days:sc.flight_start_day + sc.flight_days + sc.washout_days] = True
    gap_hours = np.isin(day_of, list(sc.gap_days))

    results: list[BrandDaily] = []
    hourly_out: dict[str, HourlyCounts] = {}
    truth_nss = cf_nss = None
    dnp = 0.0
    for b, rng in zip((sc.brand, *sc.competitors), brand_rngs):
        is_brand = b is sc.brand
        expected, nss = world.expected_hours(b.name, hours)
        if is_brand:
            # The truth: the expected local-day NSS with and without the campaign, and dNP.
            base_expected = expected / vol_mult[day_of]
            base_nss = nss - lift[day_of]
            p1, n1 = tone_probs(nss, b.opinion_rate)
            p0, n0 = tone_probs(base_nss, b.opinion_rate)
            net = _by_day(expected * (p1 - n1) - base_expected * (p0 - n0), day_of, n)
            dnp = float(net[flight | washout].sum())
            truth_nss = 100 * _by_day(expected * (p1 - n1), day_of, n) / _by_day(expected, day_of, n)
            cf_nss = 100 * _by_day(base_expected * (p0 - n0), day_of, n) / _by_day(base_expected, day_of, n)
        by_source: dict[str, DailySeries] = {}
        hourly_sum = np.zeros((3, len(hours)))
        for j, (src, share, offset) in enumerate(sc.sources):
            sh = np.full(len(hours), share)
            if sc.mix_shift and is_brand:
                # the first source gains ``mix_shift`` of share during the flight, the others lose it pro rata
                first = sc.sources[0][1]
                in_flight = flight[day_of]
                sh[in_flight] = (first + sc.mix_shift if j == 0
                                 else share * (1 - first - sc.mix_shift) / (1 - first))
            t, pos, neg = sample_counts(rng, expected * sh, nss + offset, b.opinion_rate)
            if j == 0:
                t[gap_hours] = pos[gap_hours] = neg[gap_hours] = 0.0
            hourly_sum += (t, pos, neg)
            daily = daily_from_hourly(hours, t, pos, neg, sc.timezone, dates[0], dates[-1])
            if sc.engagement:
                wsum, wnet = _weights(rng_weights, daily.positive, daily.negative, daily.total)
                daily = DailySeries(dates, daily.total, daily.positive, daily.negative, None, wsum, wnet)
            by_source[src] = daily
        hourly_out[b.name] = HourlyCounts(b.name, tuple(hours), *hourly_sum)
        organic = pool(list(by_source.values()))
        tagged = None
        if is_brand and sc.tagged_share > 0:
            day_expected = _by_day(expected, day_of, n)
            tt, tp, tn = sample_counts(rng_tagged, sc.tagged_share * day_expected * flight,
                                       np.full(n, sc.tagged_nss), 0.7)
            tagged = DailySeries(dates, tt, tp, tn)
        results.append(BrandDaily(b.name, organic, tagged, by_source))

    ads = ads_days(world)
    spend = DailySpend.from_days(sc.campaign_id, {a.day: a.cost for a in ads}, sc.currency,
                                 {a.day: a.engagements for a in ads})
    expected_cov = np.full(n, 24.0)
    gap = np.isin(np.arange(n), list(sc.gap_days))
    coverage = tuple(Coverage(src, dates, expected_cov, np.where(gap, 0.0, 24.0) if j == 0 else expected_cov)
                     for j, (src, _, _) in enumerate(sc.sources))
    truth = Truth(
        lift=lift, volume_multiplier=vol_mult, flight_mean_lift=float(lift[flight].mean()),
        washout_mean_lift=float(lift[washout].mean()) if washout.any() else 0.0,
        volume_lift=float(vol_mult[flight].mean() - 1.0), dnp=dnp, theta=sc.theta,
        half_life=(math.log(0.5) / math.log(sc.theta)) if sc.theta > 0 else None, shock=sc.shock,
        brand_nss=truth_nss, counterfactual_nss=cf_nss, market=np.array([world.market(d) for d in dates]),
    )
    return Simulation(sc, seed, sc.plan(), results[0], tuple(results[1:]), spend, coverage, truth, world,
                      hourly_out)
