"""Alerts: dips and spikes in a brand's hourly mood and volume, and what drove them.

Pure functions: arrays of hourly counts in, readings, decisions and explanations out.
No database, no I/O (storage.alerts reads, analysis.alert_evaluation decides a run, listener.alerting wires).

The rule, per brand, metric and hour ``j`` (defaults in ``AlertRule``)
-----------------------------------------------------------------------
Each hour is standardised against its own trailing baseline: the complete hours of the
``baseline_days`` (7) before it, so it is a prediction error, never compared with
itself. Its residual variance is modelled as ``phi * sampling_j + tau^2``: ``sampling``
is what pure chance gives at the hour's volume, ``phi`` >= 1 the over-dispersion
(replies come in threads and copy their parent's tone), ``tau^2`` the variation that
does not shrink with volume (mood and volume levels drift from day to day); both are
fitted robustly on the baseline hours (``_variance_fit``).

Mood. With the baseline's pooled label shares p+ and p- (mu = 100 (p+ - p-)) and an
hour's T scored mentions::

    sampling_j = 100^2 (p+ + p- - (p+ - p-)^2) / T_j      (the hour's SE^2 under "no change")
    z_j = (NSS_j - mu) / sqrt(phi sampling_j + tau^2)

Hours with fewer than ``min_mentions`` (10) scored mentions do not update the EWMA
(their NSS is mostly noise and the normal approximation fails); it carries over.

Volume. ``x_j = log(1 + mentions_j)`` against ``m``, the median of x at the same hour
of day (in the configured time zone) over the baseline days, so the daily rhythm is
expected, not alerted on, plus ``w``, the weekday's own level: the median of
``x - m`` over the same weekday's hours on earlier days of the scale window (a 7-day
baseline is mostly weekdays; without ``w`` every quiet Sunday would be a dip)::

    sampling_j = mu / (1 + mu)^2   (Var log(1 + Poisson(mu)), delta method; mu the hour
                                    of day's mean count in the baseline)
    z_j = (x_j - m - w) / sqrt((phi sampling_j + tau^2) (1 + pi / (2 n)))

(``pi / (2 n)``: the variance of a median of n values, relative to one value.)

Both: ``E_j = lambda z_j + (1 - lambda) E_{j-1}`` (lambda 0.2: the last 9 or so hours
carry the weight). The control limit is ``L sigma_E``, L = ``limit_sigmas`` (3.5), with
``sigma_E`` the larger of the textbook ``sqrt(lambda / (2 - lambda))`` and the spread
of E itself over the previous ``scale_days`` (28): its root mean square after trimming
the 5 % largest values (a real event must not widen the band for a month), rescaled to
a normal's, and averaged with a prior of 1.25 times the textbook value worth 7 days
(a week of hours shows only a few day-level swings). The second term is what keeps
false alarms rare on real data: a day whose mood or volume level sits off the baseline
makes a whole run of z values lean the same way, and an EWMA of such correlated values
swings wider than the textbook assumes.

An alert opens at an hour that updated the EWMA with E beyond the limit, if the change
also matters in practice (mood: the smoothed NSS of the recent hours at least
``min_nss_change`` (5) points from the baseline; volume: the smoothed ratio to the
hour-of-day baseline at least ``min_volume_ratio`` (1.5) for a spike or at most its
inverse for a dip, with ``min_mentions`` in the hour for a spike or as many expected
for a dip), after the warm-up (``warmup_days`` (10) of complete hours: at least 3 for a
baseline, the rest so the EWMA's own spread is known), when no alert of the same brand,
metric and direction is open and the last one's hour is at least ``cooldown_hours``
(12) before. It closes at the first hour whose E is back
within the limit.

Completeness (``hour_states``): an hour is *ready* once every source active for the
brand (one with a pull run of the brand started 24 h or less before the hour's end, or
any time after: a first run that back-fills history counts) has an ``ok`` pull run
started at or after the hour's end (a connector reads up to its run's start, so only
such a run can have read the hour's last minutes) and no rollup is pending for it. An
hour not ready ``max_wait_hours`` (6) after its end, or with no active source, is
*incomplete*; so is an hour where a source's stored search hits
are below ``min_coverage`` (0.7) of the posts the platform itself counted (when it
counted at least ``min_mentions``). Incomplete hours are never alerted on, do not
update the EWMA and are left out of every baseline.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from analysis.alert_rule import AlertRule
from analysis.timefmt import human_time

METRICS = ("mood", "volume")
DIRECTIONS = ("dip", "spike")
HOUR = timedelta(hours=1)

# Distribution constants, written out because importing scipy.stats and scipy.signal
# here cost every 'listener' command 0.8 s at start-up (the config imports AlertRule);
# tests/analysis/test_alerts.py checks them against scipy.
# Median of chi-squared(1): a median of squared standard normals over it estimates 1.
_CHI2_MEDIAN = 0.454936423119572  # chi2.ppf(0.5, 1)
# The variance fit leaves out squared residuals beyond chi-squared(1)'s 99th percentile;
# those kept have mean 0.925 (= P(chi2_3 <= q) / 0.99), which it divides out.
_CHI2_99 = 6.6348966010212145  # chi2.ppf(0.99, 1)
_TRUNCATED_MEAN = 0.9247558993726854  # chi2.cdf(_CHI2_99, 3) / 0.99
# sigma_E: drop the 5 % largest |E|, then rescale: the RMS of a normal's central 95 %
# is 0.871 sigma.
_TRIM = 0.95
_TRIM_Q = 1.959963984540054  # norm.ppf(0.5 + _TRIM / 2)
_TRIM_FACTOR = 0.8711151571806666  # sqrt(1 - 2 q norm.pdf(q) / _TRIM)
# Fewer EWMA values than this in the scale window: the prior sigma_E alone.
_MIN_SCALE_SAMPLES = 24
# A few days of EWMA values say little about how far it swings (a day-level drift
# comes once a day), so the empirical sigma_E^2 is averaged with a prior worth 7 days:
# 1.25 times the textbook value (hourly series swing wider than it; how much, the
# data says as it accumulates).
_SCALE_PRIOR = 1.25
_SCALE_PRIOR_DAYS = 7.0
# A baseline needs this many complete hours (3 days) before an hour is standardised.
_MIN_BASELINE_HOURS = 72
# ... and, for mood, this many hours with enough mentions; for volume, this many
# values of the hour's hour of day.
_MIN_MOOD_HOURS = 24
_MIN_HOUR_OF_DAY_VALUES = 3
# Floor of an hour's sampling variance of log(1 + mentions): about that of a Poisson
# mean of 0.1 (an hour that is empty most days can still get a post or two).
_VOLUME_VARIANCE_FLOOR = 0.08
# The longest excursion an explanation looks at.
_MAX_WINDOW_HOURS = 24


@dataclass(frozen=True, eq=False)
class HourlySeries:
    """A brand's consecutive hours from ``start``: counts, whether each hour is complete
    (usable), and each hour's hour of day in the alerting time zone."""

    start: datetime
    mentions: np.ndarray
    scored: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    complete: np.ndarray
    hour_of_day: np.ndarray
    day: np.ndarray | None = None
    """Local day number of each hour (days since 1970-01-01 in the alerting time zone);
    None: no weekday adjustment of volume."""

    def __len__(self) -> int:
        return len(self.mentions)

    def hour(self, index: int) -> datetime:
        return self.start + index * HOUR

    def index(self, hour: datetime) -> int:
        return int((hour - self.start) / HOUR)


@dataclass(frozen=True)
class Reading:
    """One metric at one hour. ``statistic`` and ``limit`` are in z units; ``value`` and
    ``baseline`` in the metric's own (mood: the smoothed NSS of the recent hours and the
    baseline NSS; volume: the hour's mentions and those expected at that hour of day);
    ``effect`` is mood's change in NSS points, volume's smoothed ratio to the baseline.
    ``ready`` is false during the warm-up; ``window_start`` is the first hour of the
    current excursion (set on alerts)."""

    metric: str
    hour: datetime
    statistic: float
    limit: float
    value: float
    baseline: float
    effect: float
    mentions: int
    updated: bool
    ready: bool
    window_start: datetime
    detail: Mapping[str, float] = field(default_factory=dict)

    def beyond(self) -> str | None:
        """The side the statistic is beyond the limit on, if any."""
        if self.statistic > self.limit:
            return "spike"
        if self.statistic < -self.limit:
            return "dip"
        return None


def _ewma(values: np.ndarray, update: np.ndarray, lam: float) -> np.ndarray:
    """EWMA from 0 over the hours where ``update``; other hours carry the last value."""
    out = np.zeros(len(values))
    idx = np.flatnonzero(update)
    if idx.size == 0:
        return out
    from scipy.signal import lfilter  # lazily: see the constants above

    filtered = lfilter([lam], [1.0, lam - 1.0], values[idx])
    last = np.full(len(values), -1)
    last[idx] = np.arange(idx.size)
    last = np.maximum.accumulate(last)
    has = last >= 0
    out[has] = filtered[last[has]]
    return out


def _median(values: np.ndarray) -> float:
    """np.median without its overhead (it costs more than the sort on ~100 values)."""
    ordered = np.sort(values)
    n = ordered.size
    return float(ordered[(n - 1) // 2] + ordered[n // 2]) / 2


def _variance_fit(squares: np.ndarray, sampling: np.ndarray) -> tuple[float, float]:
    """Fit ``Var(residual_j) = phi sampling_j + tau^2`` to baseline residuals.

    Weighted least squares of the squared residuals on the sampling variances (weights
    1 / fitted^2, as Var(r^2) = 2 Var(r)^2 for a normal r), iterated, leaving out hours
    beyond the 99th percentile of their fitted distribution so that an event in the
    baseline does not inflate it; the trimming's bias (a chi-squared(1) kept below its
    99th percentile has mean 0.925) is divided out. ``phi`` is at least 1 and ``tau^2``
    at least 0.
    """
    if squares.size < 2:
        return 1.0, 0.0
    phi, tau2 = max(1.0, _median(squares / sampling) / _CHI2_MEDIAN), 0.0
    for _ in range(4):
        fitted = phi * sampling + tau2
        keep = squares <= _CHI2_99 * fitted
        s, y, w = sampling[keep], squares[keep], 1.0 / fitted[keep] ** 2
        sw, ss, s1 = (w * s * s).sum(), (w * s).sum(), w.sum()
        sy, y1 = (w * s * y).sum(), (w * y).sum()
        det = sw * s1 - ss * ss
        if det > 1e-12 * sw * s1:
            phi, tau2 = (sy * s1 - ss * y1) / det, (sw * y1 - ss * sy) / det
        else:
            phi, tau2 = sy / sw, 0.0
        phi, tau2 = phi / _TRUNCATED_MEAN, tau2 / _TRUNCATED_MEAN
        if tau2 < 0:
            phi, tau2 = sy / sw / _TRUNCATED_MEAN, 0.0
        if phi < 1:
            phi, tau2 = 1.0, max(0.0, ((w * (y - s)).sum() / s1) / _TRUNCATED_MEAN)
    return float(phi), float(tau2)


def _group_medians(keys: np.ndarray, values: np.ndarray, groups: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Median of ``values`` per key in 0..groups-1 (NaN where none), and the counts; one
    sort instead of a median call per group (this runs for every hour)."""
    order = np.lexsort((values, keys))
    ordered = values[order]
    counts = np.bincount(keys, minlength=groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    medians = np.full(groups, np.nan)
    has = counts > 0
    medians[has] = (ordered[(starts + (counts - 1) // 2)[has]] + ordered[(starts + counts // 2)[has]]) / 2
    return medians, counts


@dataclass(frozen=True, eq=False)
class Trace:
    """One metric over a whole series: per hour the standardised value ``z`` (NaN where
    the hour does not update the EWMA), ``e`` (the EWMA), ``limit`` (NaN where the hour
    has no baseline yet), the smoothed ``value``, ``baseline`` and ``effect``."""

    metric: str
    z: np.ndarray
    update: np.ndarray
    e: np.ndarray
    limit: np.ndarray
    value: np.ndarray
    baseline: np.ndarray
    effect: np.ndarray
    ready: np.ndarray
    details: list


def _mood_params(series: HourlySeries, j: int, rule: AlertRule) -> tuple[float, float, float, float] | None:
    lo = max(0, j - rule.baseline_hours)
    base = series.complete[lo:j]
    if base.sum() < min(_MIN_BASELINE_HOURS, rule.warmup_days * 24):
        return None
    t = series.scored[lo:j][base].astype(float)
    total = t.sum()
    if total <= 0:
        return None
    p = series.positive[lo:j][base].astype(float)
    n = series.negative[lo:j][base].astype(float)
    pp, pn = p.sum() / total, n.sum() / total
    mu = 100.0 * (pp - pn)
    # A floor on the per-mention variance: a baseline that was all neutral still has one.
    unit2 = 100.0 ** 2 * max(pp + pn - (pp - pn) ** 2, 0.01)
    enough = t >= rule.min_mentions
    if enough.sum() < _MIN_MOOD_HOURS:
        return None
    te = t[enough]
    deviation = 100.0 * (p[enough] - n[enough]) / te - mu
    phi, tau2 = _variance_fit(deviation ** 2, unit2 / te)
    return mu, unit2, phi, tau2


def _volume_params(series: HourlySeries, j: int,
                   rule: AlertRule) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float] | None:
    lo = max(0, j - rule.baseline_hours)
    base = series.complete[lo:j]
    if base.sum() < min(_MIN_BASELINE_HOURS, rule.warmup_days * 24):
        return None
    volume = series.mentions[lo:j][base].astype(float)
    x = np.log1p(volume)
    hod = series.hour_of_day[lo:j][base]
    medians, counts = _group_medians(hod, x)
    # The sampling variance comes from the hour of day's mean count, not its median: in
    # a quiet hour the median of a week of counts is often 0 while posts do come.
    means = np.bincount(hod, weights=volume, minlength=24) / np.maximum(counts, 1)
    sampling = _log_count_variance(means)
    phi, tau2 = _variance_fit((x - medians[hod]) ** 2, sampling[hod])
    return medians, counts, sampling, phi, tau2


def _log_count_variance(mean: np.ndarray) -> np.ndarray:
    """Var(log(1 + V)) of a Poisson count V with ``mean``: mean / (1 + mean)^2 by the
    delta method, floored for hours that are usually empty."""
    return np.maximum(mean / (1 + mean) ** 2, _VOLUME_VARIANCE_FLOOR)


def _scales(e: np.ndarray, update: np.ndarray, usable: np.ndarray, rule: AlertRule) -> np.ndarray:
    """sigma_E per hour from the EWMA values of the ``scale_days`` before it."""
    theory = math.sqrt(rule.ewma_lambda / (2 - rule.ewma_lambda))
    sample = update & usable
    # Skip the EWMA's first updates: it starts at 0, not in its steady state.
    sample &= np.cumsum(update) > rule.burn_in
    width = rule.scale_days * 24
    prior = (_SCALE_PRIOR * theory) ** 2
    out = np.full(len(e), math.sqrt(prior))
    idx = np.flatnonzero(sample)
    values = np.abs(e[idx])
    for j in range(len(e)):
        lo, hi = bisect_left(idx, j - width), bisect_left(idx, j)
        if hi - lo >= _MIN_SCALE_SAMPLES:
            ordered = np.sort(values[lo:hi])
            kept = ordered[: math.ceil(_TRIM * ordered.size)]
            empirical = float(np.mean(kept * kept)) / _TRIM_FACTOR ** 2
            days = (j - idx[lo]) / 24
            shrunk = (_SCALE_PRIOR_DAYS * prior + days * empirical) / (_SCALE_PRIOR_DAYS + days)
            out[j] = max(theory, math.sqrt(shrunk))
    return out


def _weekday_effects(residual: np.ndarray, update: np.ndarray, busy: np.ndarray, day: np.ndarray,
                     rule: AlertRule) -> np.ndarray:
    """Per hour, the median volume residual of the same weekday's ``busy`` hours on
    earlier days of the scale window: a 7-day hour-of-day baseline is mostly weekdays,
    so without this every Saturday would look like a dip. Only hours expecting
    ``min_mentions`` or more count: the log of a handful of posts is too lumpy to say
    how a day runs. Zero until one such earlier day is known."""
    out = np.zeros(len(residual))
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0
    width = rule.scale_days * 24
    for j in np.flatnonzero(update):
        lo = max(0, j - width)
        same = busy[lo:j] & (weekday[lo:j] == weekday[j]) & (day[lo:j] < day[j])
        if same.any():
            out[j] = _median(residual[lo:j][same])
    return out


def trace(series: HourlySeries, metric: str, rule: AlertRule) -> Trace:
    """The rule's figures for every hour of ``series`` (see the module docstring)."""
    n = len(series)
    z = np.full(n, np.nan)
    baseline = np.full(n, np.nan)
    residual = np.zeros(n)
    has_params = np.zeros(n, dtype=bool)
    details: list = [None] * n
    nss = 100.0 * (series.positive - series.negative) / np.maximum(series.scored, 1)
    for j in range(n):
        if not series.complete[j]:
            continue
        if metric == "mood":
            params = _mood_params(series, j, rule)
            if params is None:
                continue
            mu, unit2, phi, tau2 = params
            has_params[j], baseline[j] = True, mu
            t = float(series.scored[j])
            details[j] = {"phi": phi, "tau": math.sqrt(tau2), "hour_nss": float(nss[j]) if t else None,
                          "scored": int(t)}
            if t >= rule.min_mentions:
                z[j] = (nss[j] - mu) / math.sqrt(phi * unit2 / t + tau2)
        else:
            params = _volume_params(series, j, rule)
            if params is None:
                continue
            medians, counts, sampling, phi, tau2 = params
            k = series.hour_of_day[j]
            if counts[k] < _MIN_HOUR_OF_DAY_VALUES:
                continue
            has_params[j], baseline[j] = True, float(medians[k])
            residual[j] = math.log1p(series.mentions[j]) - medians[k]
            z[j] = math.sqrt((phi * sampling[k] + tau2) * (1 + math.pi / (2 * counts[k])))  # the spread, for now
            details[j] = {"phi": phi, "tau": math.sqrt(tau2)}
    update = np.isfinite(z)
    if metric == "volume":
        busy = update & (np.expm1(np.where(update, baseline, 0.0)) >= rule.min_mentions)
        weekday = np.zeros(n) if series.day is None else _weekday_effects(residual, update, busy, series.day, rule)
        residual = np.where(update, residual - weekday, 0.0)
        z = np.where(update, residual / np.where(update, z, 1.0), np.nan)
        baseline = np.expm1(baseline + weekday)
        for j in np.flatnonzero(update):
            details[j]["weekday_effect"] = float(weekday[j])
    lam = rule.ewma_lambda
    e = _ewma(np.where(update, z, 0.0), update, lam)
    if metric == "mood":
        t = series.scored.astype(float)
        weight = _ewma(np.where(update, t, 0.0), update, lam)
        level = _ewma(np.where(update, t * nss, 0.0), update, lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(weight > 0, level / weight, baseline)
        effect = value - baseline
    else:
        value = series.mentions.astype(float)
        effect = np.exp(_ewma(residual, update, lam))
    limit = np.where(has_params, rule.limit_sigmas * _scales(e, update, has_params, rule), np.nan)
    history = np.concatenate(([0], np.cumsum(series.complete)[:-1]))
    ready = has_params & (history >= rule.warmup_days * 24)
    return Trace(metric, z, update, e, limit, value, baseline, effect, ready, details)


def reading(series: HourlySeries, tr: Trace, j: int) -> Reading | None:
    """Hour ``j`` of a trace as a Reading; None where the hour has no baseline."""
    if not math.isfinite(tr.limit[j]):
        return None
    detail = dict(tr.details[j] or {})
    detail["z"] = None if not tr.update[j] else float(tr.z[j])
    return Reading(
        metric=tr.metric, hour=series.hour(j), statistic=float(tr.e[j]), limit=float(tr.limit[j]),
        value=float(tr.value[j]), baseline=float(tr.baseline[j]), effect=float(tr.effect[j]),
        mentions=int(series.mentions[j]), updated=bool(tr.update[j]), ready=bool(tr.ready[j]),
        window_start=series.hour(j), detail=detail,
    )


def excursion_start(series: HourlySeries, tr: Trace, j: int) -> datetime:
    """First hour of the excursion the EWMA is on at ``j``: after the last updating hour
    on the other side of zero, at most _MAX_WINDOW_HOURS back. The explanation reads it."""
    sign = 1.0 if tr.e[j] >= 0 else -1.0
    start = j
    for i in range(j - 1, max(-1, j - _MAX_WINDOW_HOURS), -1):
        if tr.update[i] and tr.e[i] * sign <= 0:
            break
        start = i
    return series.hour(start)


def breach(reading: Reading, rule: AlertRule) -> str | None:
    """The direction an alert would open in at this reading (ignoring open alerts and
    the cooldown), or None: warmed up, beyond the limit, on an updating hour, and big
    enough to matter."""
    side = reading.beyond()
    if side is None or not reading.updated or not reading.ready:
        return None
    if reading.metric == "mood":
        big = reading.effect <= -rule.min_nss_change if side == "dip" else reading.effect >= rule.min_nss_change
    elif side == "spike":
        big = reading.effect >= rule.min_volume_ratio and reading.mentions >= rule.min_mentions
    else:
        big = reading.effect <= 1 / rule.min_volume_ratio and reading.baseline >= rule.min_mentions
    return side if big else None


@dataclass
class Track:
    """What detection needs to know of one (brand, metric, direction)'s history: whether
    an alert is open, and the hour of the latest one."""

    open: bool = False
    last_hour: datetime | None = None


def transition(reading: Reading, direction: str, track: Track, rule: AlertRule) -> str | None:
    """'open', 'close' or None for one direction at one reading; updates ``track``."""
    if track.open:
        within = reading.statistic >= -reading.limit if direction == "dip" else reading.statistic <= reading.limit
        if within:
            track.open = False
            return "close"
        return None
    if breach(reading, rule) != direction:
        return None
    if track.last_hour is not None and reading.hour - track.last_hour < timedelta(hours=rule.cooldown_hours):
        return None
    track.open, track.last_hour = True, reading.hour
    return "open"


@dataclass(frozen=True)
class Event:
    """An alert opening or closing at ``reading.hour``."""

    kind: str  # open | close
    metric: str
    direction: str
    reading: Reading


def new_tracks() -> dict[tuple[str, str], Track]:
    return {(metric, direction): Track() for metric in METRICS for direction in DIRECTIONS}


def detect(series: HourlySeries, indices: Iterable[int], rule: AlertRule,
           tracks: dict[tuple[str, str], Track]) -> list[Event]:
    """Run the rule over the hours ``indices`` (in order) of ``series``; ``tracks``
    carries open alerts and cooldowns in and out. Incomplete hours are skipped."""
    traces = {metric: trace(series, metric, rule) for metric in METRICS}
    events = []
    for j in indices:
        if not series.complete[j]:
            continue
        for metric in METRICS:
            current = reading(series, traces[metric], j)
            if current is None:
                continue
            for direction in DIRECTIONS:
                kind = transition(current, direction, tracks[(metric, direction)], rule)
                if kind == "open":
                    current = dataclasses.replace(current, window_start=excursion_start(series, traces[metric], j))
                if kind is not None:
                    events.append(Event(kind, metric, direction, current))
    return events


# --- completeness ------------------------------------------------------------------


@dataclass(frozen=True)
class PullRun:
    source: str
    started_at: datetime
    status: str


def hour_states(
    hours: Sequence[datetime],
    runs: Iterable[PullRun],
    *,
    now: datetime,
    rule: AlertRule,
    sources: Iterable[str] | None = None,
    pending: Iterable[datetime] = (),
    low_coverage: Iterable[datetime] = (),
) -> list[str]:
    """'ready', 'waiting' or 'incomplete' for each hour (start times), by the rule in
    the module docstring. ``sources`` limits which sources can be required (the
    configured, enabled ones); None means every source with pull runs."""
    allowed = None if sources is None else set(sources)
    started: dict[str, list[datetime]] = {}
    ok: dict[str, list[datetime]] = {}
    for run in runs:
        if allowed is not None and run.source not in allowed:
            continue
        started.setdefault(run.source, []).append(run.started_at)
        if run.status == "ok":
            ok.setdefault(run.source, []).append(run.started_at)
    for times in (*started.values(), *ok.values()):
        times.sort()
    pending, low = set(pending), set(low_coverage)
    wait = timedelta(hours=rule.max_wait_hours)
    states = []
    for hour in hours:
        end = hour + HOUR
        if hour in low:
            states.append("incomplete")
            continue
        if end > now:
            states.append("waiting")
            continue
        active = [s for s, times in started.items() if bisect_left(times, end - timedelta(hours=24)) < len(times)]
        covered = bool(active) and hour not in pending and all(
            bisect_left(ok.get(s, []), end) < len(ok.get(s, [])) for s in active)
        if covered:
            states.append("ready")
        elif end + wait <= now:
            states.append("incomplete")
        else:
            states.append("waiting")
    return states


# --- explanation -------------------------------------------------------------------

STOP_WORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
during each even ever every few for from further get gets got had hadn't has hasn't have haven't having
he he'd he'll he's her here here's hers herself him himself his how how's however i i'd i'll i'm i've if
in into is isn't it it's its itself just let's like lol me more most much mustn't my myself new no nor
not now of off on once one only or other ought our ours ourselves out over own really same shan't she
she'd she'll she's should shouldn't so some still such than that that's the their theirs them
themselves then there there's these they they'd they'll they're they've this those though through to
too today under until up upon us very via was wasn't we we'd we'll we're we've were weren't what what's
when when's where where's which while who who's whom why why's will with won't would wouldn't yeah yes
yet you you'd you'll you're you've your yours yourself yourselves amp http https www com rt im ive
dont cant wont thats its gonna got get one two also just really
""".split())

_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"@\w+")
_WORD = re.compile(r"[a-z][a-z0-9'’-]*[a-z0-9]")


def term_exclusions(names: Iterable[str]) -> frozenset[str]:
    """The words of a brand's own name, terms, hashtags and handles: an alert about
    Brewly is not explained by the word 'brewly'."""
    out: set[str] = set()
    for name in names:
        out.update(_WORD.findall(name.casefold().lstrip("#@")))
        out.add(name.casefold().lstrip("#@").replace(" ", ""))
    return frozenset(out)


def tokens(text: str, exclude: frozenset[str] = frozenset()) -> set[str]:
    """The distinct words of a text that can explain something: lower case, no URLs,
    handles, numbers, stop words, words under 3 letters, or the brand's own words."""
    text = _HANDLE.sub(" ", _URL.sub(" ", text.casefold()))
    words = set(map(_word, _WORD.findall(text)))
    words.discard(None)
    return words - exclude if exclude else words


@functools.lru_cache(maxsize=1 << 16)
def _word(raw: str) -> str | None:
    """A matched word as ``tokens`` counts it, None if it does not count. Kept: texts
    repeat their words, and this took a fifth of the workspace's terms' tokenizing."""
    word = raw.replace("’", "'").strip("'-")
    if word.endswith("'s"):  # "Brewly's" is Brewly
        word = word[:-2]
    return word if len(word) >= 3 and word not in STOP_WORDS else None


# A "#" not preceded by a word character or another "#", then a word with a letter. The
# "#" comes first and the look-behind after it (the same rule as (?<![\w#])# before it):
# a pattern opening with a literal is searched for that literal, 4x faster on short texts.
_HASHTAG = re.compile(r"#(?<![\w#]#)(\w*[^\W\d_]\w*)")


def hashtags(text: str, exclude: frozenset[str] = frozenset()) -> set[str]:
    """The distinct hashtags of a text, '#' included, lower case; the brand's own (its
    bare word in ``exclude``) left out. A tokenizer for ``distinctive_terms``."""
    return {"#" + tag for tag in (t.casefold() for t in _HASHTAG.findall(text)) if tag not in exclude}


def distinctive_terms(window: Sequence[str], baseline: Sequence[str], exclude: frozenset[str] = frozenset(),
                      top: int = 8, prior: float = 1000.0, min_count: int = 3, min_z: float = 3.0,
                      tokenize: Callable[[str, frozenset[str]], set[str]] = tokens) -> list[dict]:
    """Words over-represented in ``window`` texts against ``baseline`` texts.

    Smoothed log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi and
    Quinn 2008, "Fightin' Words"): the prior is the two corpora's combined word shares
    over ``prior`` pseudo-counts, so rare words are shrunk towards "no difference", and
    each word's log-odds difference is divided by its standard error. A word counts once
    per text (one post repeating a word 20 times is one vote). Words in at least
    ``min_count`` window texts with z >= ``min_z`` are kept, the highest ``top``; z 3
    rather than 1.96 because hundreds of words are tested at once, and at 1.96 a few of
    them would pass by chance in every alert. ``tokenize`` splits a text into what is
    counted: words (``tokens``) or ``hashtags``.
    """
    if not window:
        return []
    w_counts: Counter[str] = Counter()
    b_counts: Counter[str] = Counter()
    for text in window:
        w_counts.update(tokenize(text, exclude))
    for text in baseline:
        b_counts.update(tokenize(text, exclude))
    n_w, n_b = sum(w_counts.values()), sum(b_counts.values())
    if n_w == 0:
        return []
    total = n_w + n_b
    found = []
    for term, w in w_counts.items():
        if w < min_count:
            continue
        b = b_counts.get(term, 0)
        if w + b == total:  # the samples' only word: nothing to set it against (and a 0 denominator)
            continue
        alpha = prior * (w + b) / total
        delta = (math.log((w + alpha) / (n_w + prior - w - alpha))
                 - math.log((b + alpha) / (n_b + prior - b - alpha)))
        z = delta / math.sqrt(1 / (w + alpha) + 1 / (b + alpha))
        if z >= min_z:
            found.append({"term": term, "window_mentions": w, "window_share": round(w / len(window), 4),
                          "baseline_share": round(b / len(baseline), 4) if baseline else 0.0, "z": round(z, 2)})
    found.sort(key=lambda item: (-item["z"], item["term"]))
    return found[:top]


@dataclass(frozen=True)
class SourceHour:
    source: str
    hour: datetime
    mentions: int
    scored: int
    positive: int
    negative: int


def _nss(positive: int, negative: int, scored: int) -> float | None:
    return None if scored <= 0 else round(100.0 * (positive - negative) / scored, 1)


def source_breakdown(rows: Iterable[SourceHour], window: Sequence[datetime], baseline: Sequence[datetime],
                     hour_of_day: Callable[[datetime], int], metric: str) -> list[dict]:
    """Per source: the window's mentions and NSS against the baseline's, and how much of
    the brand's change the source carries (volume: mentions above those expected at the
    window's hours of day; mood: its share of the brand's NSS change in points)."""
    window_set, baseline_set = set(window), set(baseline)
    days_per_hod = Counter(hour_of_day(h) for h in baseline)
    need = Counter(hour_of_day(h) for h in window)
    per: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.hour in window_set:
            key = "w"
        elif row.hour in baseline_set:
            key = "b"
        else:
            continue
        item = per.setdefault(row.source, {"w": [0, 0, 0, 0], "b": [0, 0, 0, 0], "expected": 0.0})
        for i, value in enumerate((row.mentions, row.scored, row.positive, row.negative)):
            item[key][i] += value
        if key == "b":
            hod = hour_of_day(row.hour)
            if need[hod] and days_per_hod[hod]:
                item["expected"] += row.mentions * need[hod] / days_per_hod[hod]
    window_scored = sum(item["w"][1] for item in per.values())
    out = []
    for source, item in per.items():
        w, b = item["w"], item["b"]
        nss_w, nss_b = _nss(w[2], w[3], w[1]), _nss(b[2], b[3], b[1])
        if metric == "volume":
            contribution = round(w[0] - item["expected"], 1)
        elif nss_w is not None and nss_b is not None and window_scored:
            contribution = round((nss_w - nss_b) * w[1] / window_scored, 1)
        else:
            contribution = 0.0
        out.append({"source": source, "mentions": w[0], "expected_mentions": round(item["expected"], 1),
                    "scored": w[1], "nss": nss_w, "baseline_nss": nss_b, "contribution": contribution})
    out.sort(key=lambda item: (-abs(item["contribution"]), item["source"]))
    return out


def summarize(brand: str, reading: Reading, direction: str, terms: Sequence[dict] = ()) -> str:
    """One line saying what happened, for a chat message, an e-mail subject, a list."""
    hours = int((reading.hour - reading.window_start) / HOUR) + 1
    span = "the hour" if hours == 1 else f"the last {hours} h"
    when = human_time(reading.hour)  # the report's way of writing a moment (stored summaries keep theirs)
    if reading.metric == "mood":
        text = (f"{brand}: mood {direction} at {when}: NSS {reading.value:+.1f} over {span} against "
                f"{reading.baseline:+.1f} in the baseline ({reading.effect:+.1f} points)")
    else:
        text = (f"{brand}: volume {direction} at {when}: {reading.mentions:,} mentions in the hour against "
                f"{reading.baseline:,.0f} usual at that hour ({reading.effect:.1f}x over {span})")
    if terms:
        text += "; terms: " + ", ".join(t["term"] for t in terms[:3])
    return text


def describe(alert: Mapping[str, Any]) -> list[str]:
    """Text lines explaining a stored alert (``storage.alerts`` records): the rule's
    figures, then the terms, sources and conversations behind it."""
    explanation = alert.get("explanation") or {}
    lines = [alert["summary"]]
    stat = alert.get("statistic")
    limit = alert.get("control_limit")
    if stat is not None and limit is not None:
        lines.append(f"EWMA statistic {stat:+.3f} beyond its control limit {limit:+.3f} "
                     f"({alert['mentions']:,} mentions in the hour)")
    terms = explanation.get("terms") or []
    if terms:
        lines.append("Terms: " + ", ".join(
            f"{t['term']} ({t['window_mentions']} posts, {100 * t['window_share']:.0f} % vs "
            f"{100 * t['baseline_share']:.1f} %)" for t in terms))
    sources = explanation.get("sources") or []
    if sources:
        parts = []
        for s in sources:
            nss = "" if s["nss"] is None else f", NSS {s['nss']:+.1f}" + (
                "" if s["baseline_nss"] is None else f" vs {s['baseline_nss']:+.1f}")
            parts.append(f"{s['source']} {s['mentions']:,} mentions (expected {s['expected_mentions']:,.0f}){nss}")
        lines.append("Sources: " + "; ".join(parts))
    conversations = explanation.get("conversations") or []
    if conversations:
        lines.append("Conversations:")
        for c in conversations:
            title = (c.get("title") or "").replace("\n", " ")
            if len(title) > 100:
                title = title[:99] + "…"
            counts = f"{c['mentions']} mentions, {c['positive']} positive, {c['negative']} negative"
            lines.append(f"  - [{c['source']}] {title} ({counts}) {c.get('url') or ''}".rstrip())
            if c.get("thread_nss") is not None:  # alerts stored before schema version 4 lack it
                lines.append(f"    whole thread: NSS {c['thread_nss']:+.1f} (SE {c['thread_nss_se']:.1f}) over "
                             f"{c['thread_authors']} people, {c['thread_label']}")
    return lines
