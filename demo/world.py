"""A seeded, simulated social world with a known campaign effect: the demo's ground truth,
and the one simulation engine.

``listener demo`` runs the real pipeline on this world, and the campaign report must
recover the lift injected here, so every modelling choice is written down. The ROI
simulator (``analysis.roi.simulate``, the calibration bench's and the report tests')
is a configuration of this world drawn at count level (``expected_hours`` and
``sample_counts``: Poisson volume and binomial labels per hour, no texts or threads).

Mood model (all in Net Sentiment Score points, NSS = 100 (P - N) / T)
----------------------------------------------------------------------
For brand b and the UTC day d of an hour h, the target mood is::

    n(b, h) = base_nss(b) + market(d) + brand_noise(b, d) + lift(b, h) + shock(h)

* ``market(d)``: AR(1) shared by every brand (phi 0.7, stationary sd 4), the part a
  difference-in-differences against competitors removes;
* ``brand_noise(b, d)``: AR(1) per brand (phi 0.5, stationary sd 2.5); both
  ``MoodDynamics``, the demo's by default;
* ``lift(b, h)``: ``Campaign.nss_lift`` when the hour's date *in the campaign's account
  time zone* lies in ``[flight_start, flight_end]``. The ad platform starts and stops a
  flight at local midnight, and the report aggregates days in that time zone, so a
  flight day is lifted whole and its neighbours are not (but for the few late replies
  that copy a lifted parent's tone just after the flight ends). A campaign with
  ``carry_over`` (adstock theta) > 0 instead builds its lift up and lets it decay
  (``Campaign.lift_share``), and one with ``volume_lift`` raises its brand's volume too;
  the demo's campaign has neither;
* ``shock(h)``: the world's ``MarketShock``s, news that moves every brand on some
  account-local days (none in the demo).

Both AR(1) series are iterated from the fixed ``EPOCH`` with their own seeded
``random.Random``, so a day's mood never depends on which window is asked for.

Each root post draws its tone from ``p_pos = (o + n/100) / 2``, ``p_neg = (o - n/100) / 2``
(o = the brand's opinion rate; clamped to [0, 1], which the built-in profiles never
reach), so ``E[NSS] = n`` and ``E[(P + N) / T] = o``. A reply copies its parent's tone
with probability ``REPLY_COPY_TONE`` and otherwise draws afresh from the mood of its
own hour: replies keep the marginal mood while threads stay coherent. The copying also
clusters tones, so a day's NSS varies somewhat more than a binomial SE predicts (as in
real data). Texts come from ``demo.texts`` (a per-brand bank of composed bodies,
decorated per post), written so VADER reads the intended tone.

``hourly_nss`` gives the exact target of an hour, ``expected_nss`` the volume-weighted
target of any window (an account-local day, say), ``daily_nss`` that of a UTC day.
A world with ``campaigns=()`` and the same seed is the exact counterfactual.

Volume model
------------
Roots per hour are Poisson with mean ``roots_per_day * HOURLY_SHAPE[local hour] *
weekday factor`` in a fixed UTC-5 "audience clock" (quiet at night, peaks at the
morning coffee run, lunch and evening); Saturdays and Sundays run at 0.75x. The
weekday factors are normalised so a *week's average* day has ``mentions_per_day``
mentions in expectation, counting replies (``roots_per_day = mentions_per_day /
(1 + MEAN_REPLIES)``).

The world begins at the first whole hour at or after ``DemoWorld.start`` and has no
end: a daemon on the demo source keeps receiving fresh mentions.

Threads: a root gets 0 replies with probability 0.6, else 1 + Geometric (mean 1.5),
so 0.6 replies on average. Reply delays are log-logistic (median 20 min, shape 1.3;
redrawn beyond 11 h, about 1 % of them), so a reply lands within
``REPLY_HORIZON_HOURS`` of its root's hour. A reply's parent is the root, or (40 %) an earlier reply in the
same thread. ``metrics["replies"]`` counts the direct replies a post receives (like
X's ``reply_count``), including replies posted after the moment of a fetch: the demo
reports final counts.

The brand's care team
---------------------
A world may give a brand a care team (``BrandCare``; ``default_world`` gives Brewly one,
posting as ``brewly``): it answers some threads that open negative or ask, in business
hours, and each customer post after its reply turns positive with a known probability.
Its replies are the brand's own posts (``Mention.own``); ``care_truth`` measures their
effect on the threads answered. Its draws come from a stream of their own per hour, so
everything else the world generates is the same with or without it.

Determinism
-----------
Hour ``h`` (hours since ``EPOCH``) of a brand is generated from
``random.Random(stable_seed(seed, slug, h))`` and produces that hour's roots and all
their replies. ``mentions_between`` regenerates the ``REPLY_HORIZON_HOURS`` hours before
a window to pick up late replies, then keeps what falls inside, so any split of a window
into chunks yields exactly the same mentions. A small LRU cache of generated hours makes
consecutive chunks cheap.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date, datetime, timedelta, timezone
from operator import itemgetter
from zoneinfo import ZoneInfo

import numpy as np

from analysis.care import BusinessHours, parse_business_hours
from connectors.base import Mention, ensure_utc
from demo.texts import care_reply, text_bank

UTC = timezone.utc
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
"""Day 0 / hour 0 of every series; the world cannot produce data before it."""

MARKET_PHI, MARKET_SD = 0.7, 4.0
BRAND_PHI, BRAND_SD = 0.5, 2.5
MEAN_REPLIES = 0.6
REPLY_HORIZON_HOURS = 12
REPLY_MEDIAN_SECONDS = 20 * 60
REPLY_DELAY_SHAPE = 1.3
_DELAY_SHAPE_INV = 1 / REPLY_DELAY_SHAPE
REPLY_COPY_TONE = 0.5
REPLY_TO_ROOT = 0.6
MAX_REPLIES = 25
AUDIENCE_UTC_OFFSET = -5
_HOUR_CACHE_SIZE = 4 * 24  # holds a day chunk plus its look-back for a couple of brands
WEEKEND_FACTOR = 0.75

_RAW_SHAPE = (
    0.20, 0.12, 0.08, 0.06, 0.07, 0.15, 0.45, 0.95, 1.35, 1.30, 1.10, 1.05,  # 00-11 local
    1.30, 1.25, 1.00, 0.95, 1.00, 1.15, 1.35, 1.45, 1.40, 1.15, 0.75, 0.40,  # 12-23 local
)
HOURLY_SHAPE = tuple(w / sum(_RAW_SHAPE) for w in _RAW_SHAPE)
"""Share of a day's roots per local hour of the audience clock; sums to 1."""
_WEEK_NORM = 7 / (5 + 2 * WEEKEND_FACTOR)
WEEKDAY_FACTOR = tuple(_WEEK_NORM * (WEEKEND_FACTOR if wd >= 5 else 1.0) for wd in range(7))
"""Monday=0 .. Sunday=6 multipliers on the daily volume; their mean is 1."""

_FIRST = ("mara", "jules", "dev", "sam", "priya", "leo", "nina", "omar", "kate", "theo",
          "ivy", "ravi", "zoe", "marco", "ana", "ben", "lena", "kai", "rosa", "eli",
          "tess", "noah", "maya", "finn", "ada", "luis", "mei", "otto", "june", "max")
_SECOND = ("_k", "bean", "_nyc", "codes", "_runs", "reads", "_ph", "writes", "88", "_b",
           "_m", "_lee", "_ok2", "_t", "_arch", "_qa", "sips", "_ux", "_dad", "_mom")
AUTHORS = tuple(f"{a}{b}{n}" for n in ("", "1", "22", "07", "_") for a in _FIRST for b in _SECOND)
"""Synthetic handles; none is a VADER lexicon word."""


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from ``parts`` that is the same in every process and Python version
    (``hash()`` is salted per process, so it would break determinism)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def slugify(name: str) -> str:
    """'Kettle & Co' -> 'kettle-co'; used in ids and URLs."""
    out, dash = [], False
    for ch in name.casefold():
        if ch.isalnum():
            out.append(ch)
            dash = False
        elif not dash and out:
            out.append("-")
            dash = True
    return "".join(out).strip("-") or "brand"


@dataclass(frozen=True, slots=True)
class DemoBrand:
    """How much a brand is talked about and how people feel about it at rest."""

    name: str
    slug: str
    mentions_per_day: float
    base_nss: float
    opinion_rate: float


@dataclass(frozen=True, slots=True)
class Campaign:
    """One paid flight and the true effect it has on its brand's mood (and volume).

    ``carry_over`` is the adstock theta: 0 (the demo's) lifts flight days by exactly
    ``nss_lift`` and no other day; theta > 0 builds the lift up during the flight and
    lets it decay after, ``lift_share``. ``volume_lift`` multiplies the brand's volume by
    ``1 + volume_lift * lift_share``."""

    campaign_id: str
    name: str
    brand: str
    flight_start: date
    flight_end: date
    nss_lift: float
    daily_spend: float
    currency: str = "USD"
    account_timezone: str = "America/New_York"
    carry_over: float = 0.0
    volume_lift: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.carry_over < 1:
            raise ValueError("carry_over (theta) must be in [0, 1)")

    def local_day(self, moment: datetime) -> date:
        """The account-local date of ``moment``."""
        return moment.astimezone(ZoneInfo(self.account_timezone)).date()

    def in_flight(self, moment: datetime) -> bool:
        """Whether ``moment`` falls on a flight date in the account's time zone."""
        return self.flight_start <= self.local_day(moment) <= self.flight_end

    def lift_share(self, day: date) -> float:
        """The share of the full effect on account-local ``day``: the normalised geometric
        adstock of the flight, ``a(t) = (1 - theta) sum_k theta^k f(t - k)`` (f = 1 on
        flight days), in closed form: 1 on flight days and 0 elsewhere for theta = 0."""
        i = (day - self.flight_start).days
        length = (self.flight_end - self.flight_start).days + 1
        theta = self.carry_over
        if i < 0:
            return 0.0
        if theta == 0:
            return 1.0 if i < length else 0.0
        if i < length:
            return 1.0 - theta ** (i + 1)
        return (1.0 - theta ** length) * theta ** (i - length + 1)

    def flight_days(self) -> list[date]:
        count = (self.flight_end - self.flight_start).days + 1
        return [self.flight_start + timedelta(days=i) for i in range(count)]


_parsed_hours = lru_cache(maxsize=16)(parse_business_hours)  # asked once per generated hour


@dataclass(frozen=True, slots=True)
class BrandCare:
    """The brand's care team: it posts as ``account`` and answers threads whose root is
    negative (with probability ``answer_negative``) or asks a question (``answer_question``),
    choosing, as teams do: a thread that opens while the team is off (``business_hours``)
    waits for the next opening, and one it could not reach within the thread's life
    (``REPLY_HORIZON_HOURS``) stays unanswered. The reply lands an exponential delay
    (mean ``reply_minutes``) after the thread opens, or after the team opens.

    Its known effect: each customer post after the reply in an answered thread turns
    positive with probability ``turn`` (the same post, drawn afresh from the positive
    bank); ``DemoWorld.care_truth`` measures what that did to the answered threads. The
    answers and the turning draw from their own seeded stream, so every other draw of
    the world is the same with or without a care team."""

    brand: str
    account: str
    business_hours: str = "Mon-Fri 09:00-18:00 America/New_York"
    answer_negative: float = 0.6
    answer_question: float = 0.35
    reply_minutes: float = 50.0
    turn: float = 0.25

    def hours(self) -> BusinessHours:
        return _parsed_hours(self.business_hours)


@dataclass(frozen=True, slots=True)
class MoodDynamics:
    """The AR(1) terms of the mood model: the market's, shared by every brand, and each
    brand's own (phi, stationary sd); the demo's by default."""

    market_phi: float = MARKET_PHI
    market_sd: float = MARKET_SD
    brand_phi: float = BRAND_PHI
    brand_sd: float = BRAND_SD


@dataclass(frozen=True, slots=True)
class MarketShock:
    """News that moves every brand's mood by ``nss`` points on ``days`` account-local
    days from ``first_day`` (in ``timezone``)."""

    first_day: date
    days: int
    nss: float
    timezone: str = "America/New_York"

    def on(self, moment: datetime) -> float:
        local_day = moment.astimezone(ZoneInfo(self.timezone)).date()
        return self.nss if 0 <= (local_day - self.first_day).days < self.days else 0.0


BUILTIN_BRANDS: dict[str, DemoBrand] = {
    b.name.casefold(): b
    for b in (
        DemoBrand("Brewly", "brewly", 800.0, 18.0, 0.62),
        DemoBrand("Beanhaus", "beanhaus", 500.0, 10.0, 0.58),
        DemoBrand("Kettle & Co", "kettle-co", 300.0, 22.0, 0.55),
    )
}


def derived_profile(name: str) -> DemoBrand:
    """A stable profile for a brand the demo was not written for, so any configured
    brand gets plausible data."""
    h = stable_seed("profile", name.casefold())
    return DemoBrand(
        name=name,
        slug=slugify(name),
        mentions_per_day=float(150 + h % 451),
        base_nss=float(-10 + (h >> 16) % 41),
        opinion_rate=0.50 + ((h >> 32) % 21) / 100,
    )


def _poisson(rng: random.Random, lam: float) -> int:
    """Exact Poisson draw (Knuth), in pieces of at most 30 so exp() never underflows."""
    total = 0
    while lam > 0:
        part = min(lam, 30.0)
        lam -= part
        limit, prod = math.exp(-part), rng.random()
        while prod > limit:
            total += 1
            prod *= rng.random()
    return total


def tone_probs(nss, opinion_rate):
    """(p_pos, p_neg) of a mention at mood target ``nss`` (NSS points) for a brand whose
    opinion rate is ``opinion_rate``: ``(o +- n/100) / 2``, each clipped to [0, 1] and
    p_neg to at most 1 - p_pos. Takes floats or numpy arrays (the count sampler's)."""
    if isinstance(nss, (int, float)):
        p_pos = min(1.0, max(0.0, (opinion_rate + nss / 100) / 2))
        p_neg = min(1.0 - p_pos, max(0.0, (opinion_rate - nss / 100) / 2))
        return p_pos, p_neg
    p_pos = np.clip((opinion_rate + nss / 100) / 2, 0.0, 1.0)
    p_neg = np.clip((opinion_rate - nss / 100) / 2, 0.0, 1.0 - p_pos)
    return p_pos, p_neg


def sample_counts(rng: np.random.Generator, expected: np.ndarray, nss: np.ndarray,
                  opinion_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mention counts without the mentions: per period, total ~ Poisson(``expected``),
    positive ~ Binomial(total, p_pos), negative ~ Binomial(rest, p_neg / (1 - p_pos)) at
    the mood target ``nss`` (``tone_probs``). The world's model at count level: what the
    ROI simulator draws, fast enough for hundreds of seeds (no texts, no threads, so no
    tone copying between a reply and its parent)."""
    total = rng.poisson(expected)
    p_pos, p_neg = tone_probs(np.asarray(nss, dtype=float), opinion_rate)
    pos = rng.binomial(total, p_pos)
    cond = np.where(p_pos < 1, p_neg / np.maximum(1 - p_pos, 1e-12), 0.0)
    neg = rng.binomial(total - pos, np.clip(cond, 0.0, 1.0))
    return total.astype(float), pos.astype(float), neg.astype(float)


@dataclass(frozen=True)
class DemoWorld:
    """The simulated market: brands, campaigns and a seed; see the module docstring."""

    seed: int
    brands: tuple[DemoBrand, ...]
    campaigns: tuple[Campaign, ...]
    start: datetime
    dynamics: MoodDynamics = MoodDynamics()
    shocks: tuple[MarketShock, ...] = ()
    care: tuple[BrandCare, ...] = ()
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", ensure_utc(self.start, "start"))
        if self.start < EPOCH:
            raise ValueError(f"a demo world cannot start before {EPOCH.isoformat()}")
        self._cache.update(series={}, thresholds={}, hours=OrderedDict(), lock=threading.Lock(),
                           hours_held=_HOUR_CACHE_SIZE)

    def hold_hours(self, hours: int) -> None:
        """Keep up to ``hours`` generated hours (of all brands together) instead of the
        default few days: ``listener demo`` holds a brand's whole history, so the pull
        reuses the hours ``care_truth`` generated for the truth file. Only memory and
        speed change: an hour regenerated is the same hour."""
        with self._cache["lock"]:
            self._cache["hours_held"] = max(hours, _HOUR_CACHE_SIZE)

    # --- profiles and mood -------------------------------------------------------
    def profile(self, brand_name: str) -> DemoBrand:
        """The world's own profile for ``brand_name``, else a built-in, else a derived one."""
        key = brand_name.casefold()
        for brand in self.brands:
            if brand.name.casefold() == key:
                return brand
        return BUILTIN_BRANDS.get(key) or derived_profile(brand_name)

    def _series(self, name: tuple, phi: float, sd: float, day: int) -> float:
        """Value on ``day`` (days since EPOCH) of a stationary AR(1) seeded by ``name``."""
        if day < 0:
            raise ValueError(f"the demo mood starts at {EPOCH.date()}")
        with self._cache["lock"]:
            state = self._cache["series"].get(name)
            if state is None:
                rng = random.Random(stable_seed(self.seed, *name))
                state = (rng, [rng.gauss(0.0, sd)])
                self._cache["series"][name] = state
            rng, values = state
            innovation_sd = sd * math.sqrt(1 - phi * phi)
            while len(values) <= day:
                values.append(phi * values[-1] + rng.gauss(0.0, innovation_sd))
            return values[day]

    def market(self, day: date) -> float:
        """The market's AR(1) term on UTC day ``day``."""
        d = self.dynamics
        return self._series(("market",), d.market_phi, d.market_sd, (day - EPOCH.date()).days)

    def baseline_nss(self, brand_name: str, day: date) -> float:
        """The mood target for a UTC day without any campaign: base + market + brand noise."""
        profile = self.profile(brand_name)
        d = self.dynamics
        return (profile.base_nss + self.market(day)
                + self._series(("brand", profile.slug), d.brand_phi, d.brand_sd, (day - EPOCH.date()).days))

    def lift_at(self, brand_name: str, moment: datetime) -> float:
        """NSS points the campaigns add at ``moment`` (see the module docstring)."""
        key = brand_name.casefold()
        return sum(c.nss_lift * c.lift_share(c.local_day(moment)) for c in self.campaigns
                   if c.brand.casefold() == key)

    def shock_at(self, moment: datetime) -> float:
        """NSS points the market shocks add to every brand at ``moment``."""
        return sum(shock.on(moment) for shock in self.shocks)

    def hourly_nss(self, brand_name: str, moment: datetime) -> float:
        """The exact mood target for the hour containing ``moment``."""
        moment = ensure_utc(moment, "moment")
        nss = self.baseline_nss(brand_name, moment.date()) + self.lift_at(brand_name, moment)
        return nss + self.shock_at(moment) if self.shocks else nss

    def expected_volume(self, brand_name: str, moment: datetime) -> float:
        """Expected number of root posts in the hour containing ``moment``."""
        profile = self.profile(brand_name)
        moment = ensure_utc(moment, "moment")
        local = moment + timedelta(hours=AUDIENCE_UTC_OFFSET)
        per_day = profile.mentions_per_day / (1 + MEAN_REPLIES)
        volume = per_day * HOURLY_SHAPE[local.hour] * WEEKDAY_FACTOR[local.weekday()]
        key = brand_name.casefold()
        for c in self.campaigns:
            if c.volume_lift and c.brand.casefold() == key:
                volume *= 1.0 + c.volume_lift * c.lift_share(c.local_day(moment))
        return volume

    def expected_hours(self, brand_name: str, hours: Sequence[datetime]) -> tuple[np.ndarray, np.ndarray]:
        """Per hour of ``hours``: the expected number of mentions (roots and their replies,
        ``expected_volume * (1 + MEAN_REPLIES)``) and the mood target (``hourly_nss``):
        what ``sample_counts`` draws the count-level world from."""
        expected = np.array([self.expected_volume(brand_name, h) for h in hours]) * (1 + MEAN_REPLIES)
        return expected, np.array([self.hourly_nss(brand_name, h) for h in hours])

    def expected_nss(self, brand_name: str, start: datetime, end: datetime) -> float:
        """Volume-weighted mean of the hourly mood targets over whole hours in
        [start, end): the expected NSS of that window (e.g. an account-local day), up to
        the replies that spill over from neighbouring hours."""
        hour = _floor_hour(ensure_utc(start, "start"))
        end = ensure_utc(end, "end")
        total = weight = 0.0
        while hour < end:
            w = self.expected_volume(brand_name, hour)
            total += w * self.hourly_nss(brand_name, hour)
            weight += w
            hour += timedelta(hours=1)
        if weight == 0:
            raise ValueError("empty window")
        return total / weight

    def daily_nss(self, brand_name: str, day: date) -> float:
        """The true mood of UTC day ``day``, campaign lift included (volume-weighted over
        its hours, so a day a flight starts partway through gets part of the lift)."""
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return self.expected_nss(brand_name, start, start + timedelta(days=1))

    def daily_spend(self, campaign: Campaign) -> dict[date, float]:
        """What the campaign spent on each flight date: the nominal budget with a
        deterministic +-15 % pacing wobble, as ad platforms never spend exactly."""
        spends = {}
        for day in campaign.flight_days():
            rng = random.Random(stable_seed(self.seed, "spend", campaign.campaign_id, day.isoformat()))
            factor = min(1.4, max(0.6, rng.gauss(1.0, 0.15)))
            spends[day] = round(campaign.daily_spend * factor, 2)
        return spends

    # --- mentions ------------------------------------------------------------------
    def _hour_items(self, profile: DemoBrand, hour: int) -> list[list]:
        """All posts rooted in hour ``hour`` (hours since EPOCH): roots and their replies."""
        hours, lock = self._cache["hours"], self._cache["lock"]
        key = (profile, hour)
        with lock:
            items = hours.get(key)
            if items is not None:
                hours.move_to_end(key)
                return items
        items = self._generate_hour(profile, hour)  # outside the lock: it reads the mood
        with lock:
            hours[key] = items
            while len(hours) > self._cache["hours_held"]:
                hours.popitem(last=False)
        return items

    def _tone_thresholds(self, profile: DemoBrand, hour: int) -> tuple[float, float]:
        """(p_pos, p_pos + p_neg) for hour ``hour``; cached, as every reply asks."""
        key = (profile.slug, hour)
        cached = self._cache["thresholds"].get(key)
        if cached is None:
            nss = self.hourly_nss(profile.name, EPOCH + timedelta(hours=hour))
            p_pos, p_neg = tone_probs(nss, profile.opinion_rate)
            cached = self._cache["thresholds"][key] = (p_pos, p_pos + p_neg)
        return cached

    def _generate_hour(self, profile: DemoBrand, hour: int) -> list[list]:
        """Generate hour ``hour``. Written for speed, since a benchmark ingests a million
        demo mentions: constants and bound methods in locals, inverse-CDF draws in place
        of ``random``'s helpers, texts from the brand's ``TextBank``."""
        hour_start = EPOCH + timedelta(hours=hour)
        if hour_start < self.start:
            return []
        rng = random.Random(stable_seed(self.seed, profile.slug, hour))
        rand = rng.random
        draw = text_bank(profile.name).draw
        thresholds = self._tone_thresholds
        p_pos, p_opinion = thresholds(profile, hour)
        n_roots = _poisson(rng, self.expected_volume(profile.name, hour_start))
        offsets = sorted([int(rand() * 3600) for _ in range(n_roots)])
        authors, n_authors = AUTHORS, len(AUTHORS)
        seconds = _SECONDS
        root_likes, root_reposts = _ROOT_LIKES, _ROOT_REPOSTS
        reply_likes, reply_reposts = _REPLY_LIKES, _REPLY_REPOSTS
        p_no_reply, p_more, to_root, copy_tone = _P_NO_REPLY, _P_MORE_REPLIES, REPLY_TO_ROOT, REPLY_COPY_TONE
        slug, known = profile.slug, self._cache["thresholds"]
        prefix = f"{slug}-{hour}-"
        # A row: [created_at, id, text, author, conversation, parent, likes, reposts, replies, tone,
        # tone had the brand not answered (None: the same; see _answer)]
        rows: list[list] = []
        replies: list[list] = []
        k = n_roots
        for i, offset in enumerate(offsets):
            root_id = prefix + str(i)
            u = rand()
            tone = "positive" if u < p_pos else "negative" if u < p_opinion else "neutral"
            root = [hour_start + seconds[offset], root_id,
                    draw(tone, False, rng),
                    authors[int(n_authors * rand() ** 2)], root_id, None,
                    int((1.0 - rand()) ** root_likes) - 1, int((1.0 - rand()) ** root_reposts) - 1,
                    0, tone, None]
            rows.append(root)
            if rand() < p_no_reply:
                continue
            n_replies = 1
            while rand() < p_more and n_replies < MAX_REPLIES:
                n_replies += 1
            thread = [root]
            for delay in sorted([_reply_delay(rand) for _ in range(n_replies)]):
                parent = root if (len(thread) == 1 or rand() < to_root) \
                    else thread[1 + int(rand() * (len(thread) - 1))]
                if rand() < copy_tone:
                    tone = parent[9]
                else:
                    reply_hour = hour + (offset + delay) // 3600
                    probs = known.get((slug, reply_hour)) or thresholds(profile, reply_hour)
                    u = rand()
                    tone = "positive" if u < probs[0] else "negative" if u < probs[1] else "neutral"
                reply = [root[0] + timedelta(seconds=delay), prefix + str(k),
                         draw(tone, True, rng),
                         authors[int(n_authors * rand() ** 2)], root_id, parent[1],
                         int((1.0 - rand()) ** reply_likes) - 1,
                         int((1.0 - rand()) ** reply_reposts) - 1, 0, tone, None]
                k += 1
                parent[8] += 1
                thread.append(reply)
                replies.append(reply)
        rows.extend(replies)
        team = self.care_of(profile.name)
        if team is not None:
            rows.extend(_answer(team, stable_seed(self.seed, "care", slug, hour), rows[:n_roots], replies,
                                draw, prefix, k))
        return rows

    def care_of(self, brand_name: str) -> BrandCare | None:
        """The brand's care team, if the world gives it one."""
        key = brand_name.casefold()
        return next((c for c in self.care if c.brand.casefold() == key), None)

    def care_truth(self, brand_name: str, start: datetime, end: datetime) -> dict[str, object]:
        """What the care team did to the threads opened negative in [start, end) it
        answered, counting their customer posts created before ``end``: per thread the
        NSS of its customer posts after the reply as they are, minus as they would have
        been unanswered, averaged over the threads with such posts. This is the effect
        on the answered threads (ATT) that ``analysis.reply_effect`` estimates."""
        start, end = ensure_utc(start, "start"), ensure_utc(end, "end")
        profile = self.profile(brand_name)
        differences: list[float] = []
        answered = negative = 0
        for hour in range(max(_hour_index(start), 0), _hour_index(end - timedelta(microseconds=1)) + 1):
            threads: dict[str, list[list]] = {}
            for row in self._hour_items(profile, hour):
                threads.setdefault(row[4], []).append(row)
            for posts in threads.values():
                root = posts[0]
                if not (start <= root[0] < end) or root[9] != "negative":
                    continue
                negative += 1
                reply = next((p for p in posts if p[9] == OWN_TONE), None)
                if reply is None:
                    continue
                answered += 1
                later = [p for p in posts if reply[0] < p[0] < end and p[9] != OWN_TONE]
                if later:
                    actual = sum(_TONE_VALUE[p[9]] for p in later)
                    untreated = sum(_TONE_VALUE[p[10] or p[9]] for p in later)
                    differences.append(100.0 * (actual - untreated) / len(later))
        return {"threads_opened_negative": negative, "answered": answered,
                "answered_with_later_posts": len(differences),
                "effect_nss_points": sum(differences) / len(differences) if differences else None}

    def mentions_between(self, brand_name: str, start: datetime, end: datetime,
                         fetched_at: datetime | None = None) -> Iterator[Mention]:
        """Yield ``brand_name``'s mentions with start <= created_at < end, oldest first
        (ties in generation order: hour, then position in the hour). ``fetched_at`` is
        stamped on each mention, sparing a connector a ``replace()`` per mention."""
        start, end = ensure_utc(start, "start"), ensure_utc(end, "end")
        if fetched_at is not None:
            fetched_at = ensure_utc(fetched_at, "fetched_at")
        if end <= start:
            return
        profile = self.profile(brand_name)
        first = _hour_index(start) - REPLY_HORIZON_HOURS
        last = _hour_index(end - timedelta(microseconds=1))
        selected: list[list] = []
        for hour in range(max(first, 0), last + 1):
            items = self._hour_items(profile, hour)
            if first + REPLY_HORIZON_HOURS < hour < last - REPLY_HORIZON_HOURS:
                selected.extend(items)  # every post of this hour lands inside the window
            else:
                selected.extend([item for item in items if start <= item[0] < end])
        selected.sort(key=_CREATED_AT)  # stable: ties keep generation order, in any chunking
        url_prefix = f"https://demo.invalid/{profile.slug}/"
        for first_row in range(0, len(selected), _SLAB):  # bounded memory for long windows
            yield from _build_mentions(selected[first_row:first_row + _SLAB], brand_name,
                                       url_prefix, fetched_at)


_SLAB = 2048


def _build_mentions(rows: list[list], brand: str, url_prefix: str,
                    fetched_at: datetime | None) -> list[Mention]:
    return [
        Mention(source="demo", id=mention_id, brand=brand, created_at=created, text=text,
                author=author, url=url_prefix + mention_id, conversation_id=conversation,
                parent_id=parent, lang="en",
                metrics={"likes": likes, "reposts": reposts, "replies": replies},
                fetched_at=fetched_at, raw={"tone": tone}, thread_context=parent is not None,
                own=tone == OWN_TONE)
        for (created, mention_id, text, author, conversation, parent,
             likes, reposts, replies, tone, _untreated) in rows
    ]


OWN_TONE = "brand"
"""The ``tone`` of a care team's reply: the brand's own post, no customer's mood."""
_TONE_VALUE = {"positive": 1, "neutral": 0, "negative": -1}


def _answer(team: BrandCare, seed: int, roots: list[list], replies: list[list],
            draw: Callable, prefix: str, k: int) -> list[list]:
    """The care team's replies to an hour's threads (``BrandCare``), and their effect on
    the later customer posts of the threads answered (edited in place: tone and text,
    the untreated tone kept in the row's last field). Everything random comes from
    ``random.Random(seed)``, the hour's care stream."""
    rng = random.Random(seed)
    hours = team.hours()
    by_thread: dict[str, list[list]] = {}
    for reply in replies:
        by_thread.setdefault(reply[4], []).append(reply)
    own: list[list] = []
    for root in roots:
        # Draw every root's numbers whether it needs an answer or not: a thread's fate
        # does not depend on its neighbours'.
        u, wait = rng.random(), rng.expovariate(1.0 / (team.reply_minutes * 60))
        chance = (team.answer_negative if root[9] == "negative"
                  else team.answer_question if "?" in root[2] else 0.0)
        if u >= chance:
            continue
        at = hours.next_open(root[0]) + timedelta(seconds=int(wait) + 1)
        if (at - root[0]).total_seconds() >= _DELAY_LIMIT:
            continue  # the thread is over by the time the team could answer
        answer = [at, prefix + str(k), care_reply(team.brand, root[3], rng), team.account, root[1],
                  root[1], int((1.0 - rng.random()) ** _REPLY_LIKES) - 1, 0, 0, OWN_TONE, None]
        k += 1
        root[8] += 1
        own.append(answer)
        for post in by_thread.get(root[1], ()):
            if post[0] > at and rng.random() < team.turn and post[9] != "positive":
                post[10], post[9] = post[9], "positive"
                post[2] = draw("positive", True, rng)
    return own


_CREATED_AT = itemgetter(0)
_SECONDS = tuple(timedelta(seconds=s) for s in range(3600))

# Engagement: Pareto tails via inverse CDF, count = floor(u ** (-1/alpha)) - 1.
_ROOT_LIKES, _ROOT_REPOSTS = -1 / 1.3, -1 / 2.2
_REPLY_LIKES, _REPLY_REPOSTS = -1 / 1.8, -1 / 3.0
# Reply counts: none with 0.6, else 1 + Geometric(mean 0.5): mean 0.4 * 1.5 = 0.6.
_P_NO_REPLY, _P_MORE_REPLIES = 0.6, 1 / 3
_DELAY_LIMIT = (REPLY_HORIZON_HOURS - 1) * 3600


def _reply_delay(rand: Callable[[], float]) -> int:
    """Seconds from root to reply: log-logistic (median 20 min, shape 1.3; ~1 % beyond
    11 h), redrawn past ``_DELAY_LIMIT`` so a reply always lands within
    ``REPLY_HORIZON_HOURS`` of its root's hour."""
    while True:
        u = rand()
        if u > 0.0:
            delay = int(REPLY_MEDIAN_SECONDS * (u / (1.0 - u)) ** _DELAY_SHAPE_INV) + 1
            if delay < _DELAY_LIMIT:
                return delay


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _hour_index(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() // 3600)


def default_world(end: datetime, seed: int = 7, days: int = 60) -> DemoWorld:
    """The demo market ending at ``end``: Brewly (the brand, ~800 mentions/day) against
    Beanhaus (~500) and Kettle & Co (~300), with one 14-day Brewly flight that ends 10
    days before ``end`` (account dates in America/New_York) and lifts its NSS by 12."""
    end = ensure_utc(end, "end")
    account_tz = "America/New_York"
    flight_end = end.astimezone(ZoneInfo(account_tz)).date() - timedelta(days=10)
    campaign = Campaign(
        campaign_id="21874530912",
        name="Brewly | Bright Mornings | Awareness",
        brand="Brewly",
        flight_start=flight_end - timedelta(days=13),
        flight_end=flight_end,
        nss_lift=12.0,
        daily_spend=1500.0,
        account_timezone=account_tz,
    )
    brands = tuple(BUILTIN_BRANDS[name] for name in ("brewly", "beanhaus", "kettle & co"))
    return DemoWorld(seed=seed, brands=brands, campaigns=(campaign,),
                     start=end - timedelta(days=days), care=(DEMO_CARE,))


DEMO_CARE = BrandCare(brand="Brewly", account="brewly")
"""Brewly's care team in the demo: its own account on the demo source ('brewly', as the
starter config's ``own_accounts`` says), weekdays 09:00-18:00 New York time."""
