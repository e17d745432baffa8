"""Checks that say how far to trust an estimate: placebo windows, ITS-vs-DiD
disagreement, source-mix shift and connector gaps (Ljung-Box lives with the fits in
``models.py``). Each returns a small dataclass with ``fired`` set when the report must
add a caveat."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy import stats

from analysis.roi.daily import CampaignWindow, Coverage, DailySeries, day_of_week_dummies
from analysis.roi.effects import EffectEstimate
from analysis.roi.models import fit_ar1

PLACEBO_LEVEL = 0.05
MAX_PLACEBOS = 60
MIX_TVD_LIMIT = 0.10
MIX_NSS_LIMIT = 1.0
COVERAGE_EXCLUDE = 0.5


# ----------------------------------------------------------------------------------
# Placebo windows
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Placebo:
    """In-time placebos: windows of the flight's length laid on baseline days (before
    the flight or after the washout), each fitted like the real flight on baseline data
    alone. ``rank`` = (1 + #{|placebo| >= |real|}) / (1 + n_windows): the share of
    baseline windows that moved at least as much as the flight, counting the flight
    itself. ``possible`` is False when there are fewer than 19 windows, so the rank
    could not reach 5 % whatever the data (the check is then not used)."""

    n_windows: int
    rank: float | None
    exceeding: int
    possible: bool
    real: float
    quantiles: dict[str, float]
    effects: tuple[float, ...]

    @property
    def fired(self) -> bool:
        return self.possible and self.rank is not None and self.rank > PLACEBO_LEVEL


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end exclusive) of each run of True."""
    out, start = [], None
    for i, v in enumerate(mask):
        if v and start is None:
            start = i
        elif not v and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(mask)))
    return out


def placebo_test(y, window: CampaignWindow, real: float, *, max_windows: int = MAX_PLACEBOS) -> Placebo:
    """Placebo rank of the real effect ``real`` (see ``Placebo``); exact-ML fits."""
    y = np.asarray(y, dtype=float).copy()
    base = window.baseline
    y[~base] = np.nan
    length = int(window.flight.sum())
    starts = [s for a, b in _runs(base) for s in range(a, b - length + 1)]
    if len(starts) > max_windows:  # evenly spaced, deterministic
        pick = np.unique(np.linspace(0, len(starts) - 1, max_windows).round().astype(int))
        starts = [starts[i] for i in pick]
    dow, names = day_of_week_dummies(window.dates)
    effects = []
    for s in starts:
        pseudo = np.zeros(len(y))
        pseudo[s:s + length] = 1.0
        if not np.isfinite(y[s:s + length]).any():
            continue
        try:
            fit = fit_ar1(y, np.column_stack([pseudo, dow]), ["placebo", *names], engine="exact",
                          with_ljung_box=False)
        except (ValueError, np.linalg.LinAlgError):
            continue
        effects.append(fit.coef("placebo"))
    k = len(effects)
    arr = np.abs(np.array(effects))
    exceeding = int((arr >= abs(real)).sum()) if k else 0
    rank = (1 + exceeding) / (1 + k) if k else None
    q = {}
    if k:
        e = np.array(effects)
        q = {"p05": float(np.quantile(e, 0.05)), "p50": float(np.quantile(e, 0.5)),
             "p95": float(np.quantile(e, 0.95)), "max_abs": float(arr.max())}
    return Placebo(k, rank, exceeding, (1 / (1 + k)) <= PLACEBO_LEVEL if k else False, float(real), q,
                   tuple(float(x) for x in effects))


# ----------------------------------------------------------------------------------
# ITS versus DiD
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Disagreement:
    """Whether ITS and DiD tell different stories. ``competitor_shift`` is the ITS
    estimate on the pooled competitors' NSS: since DiD = brand - competitors, ITS - DiD
    is (up to the separately fitted AR(1) terms) exactly that shift. ``fired`` when the
    two lead to different conclusions (one CI excludes 0 and the other not, or both do
    with opposite signs) *and* the competitors' shift is itself significant, so the
    disagreement is not just two noisy estimates either side of a threshold.

    ``comovement`` says why they disagree: the correlation of the brand's and the
    competitors' daily series over the pre-flight days, ``comovement_p`` its one-sided p-value
    (Fisher's z on an effective sample size shrunk for both series' lag-1
    autocorrelation, Bartlett's n (1 - r1 r2) / (1 + r1 r2): neighbouring days are not
    independent evidence). When the brand and its competitors moved together before the
    flight (a shared market, p < 0.05), a significant competitors' shift during the
    flight is most plausibly that market moving, which ITS counts as campaign effect and
    DiD nets out: ``market_wide``. A market move must also show in the brand's own raw
    change: ``its_significant`` (ITS's CI excludes 0) with ITS in the direction of the
    competitors' shift. Without it the competitors moved alone (a competitors-only
    shock), and DiD would credit the campaign with their move."""

    its: float
    did: float
    competitor_shift: EffectEstimate | None
    conclusions_differ: bool
    fired: bool
    comovement: float | None = None
    comovement_p: float | None = None
    its_significant: bool = False

    @property
    def moved_together(self) -> bool:
        """The brand and the competitors moved together before the flight."""
        return self.comovement_p is not None and self.comovement_p < COMOVEMENT_LEVEL

    @property
    def market_wide(self) -> bool:
        """The competitors moved significantly, had moved with the brand before, and the
        brand's raw change (ITS) moved significantly the same way."""
        shift = self.competitor_shift
        if shift is None or not shift.significant or not self.moved_together:
            return False
        return self.its_significant and np.sign(self.its) == np.sign(shift.delta) != 0


MIN_COMOVEMENT_DAYS = 14
COMOVEMENT_LEVEL = 0.05


def _lag1(x: np.ndarray) -> float:
    x = x - x.mean()
    denom = float((x * x).sum())
    return float((x[1:] * x[:-1]).sum() / denom) if denom > 0 else 0.0


def comovement(y_brand, y_competitors, window: CampaignWindow) -> tuple[float | None, float | None]:
    """(correlation, one-sided p-value) of the two daily series over the pre-flight days
    where both have data (see ``Disagreement``; not the post-washout days, where a later
    event moving both would pass for a shared market before the flight); (None, None)
    with fewer than ``MIN_COMOVEMENT_DAYS`` such days or a flat series. Days are taken in order with the
    gaps closed up, which the lag-1 autocorrelation tolerates."""
    b = np.asarray(y_brand, dtype=float)
    c = np.asarray(y_competitors, dtype=float)
    both = window.pre & np.isfinite(b) & np.isfinite(c)
    n = int(both.sum())
    if n < MIN_COMOVEMENT_DAYS:
        return None, None
    b, c = b[both], c[both]
    if np.var(b) <= 0 or np.var(c) <= 0:
        return None, None
    r = float(np.corrcoef(b, c)[0, 1])
    rho = _lag1(b) * _lag1(c)
    n_eff = max(n * (1 - rho) / (1 + rho), 4.0) if rho < 1 else 4.0
    z = math.atanh(min(max(r, -0.999999), 0.999999)) * math.sqrt(n_eff - 3)
    return r, float(stats.norm.sf(z))


def its_did_disagreement(its: EffectEstimate, did: EffectEstimate, competitor_shift: EffectEstimate | None,
                         together: tuple[float | None, float | None] = (None, None)) -> Disagreement:
    """``together``: ``comovement``'s (correlation, p-value) of the two series."""
    differ = (its.significant != did.significant) or (
        its.significant and did.significant and np.sign(its.delta) != np.sign(did.delta))
    shift_sig = competitor_shift is not None and competitor_shift.significant
    return Disagreement(its.delta, did.delta, competitor_shift, bool(differ), bool(differ and shift_sig),
                        together[0], together[1], bool(its.significant))


# ----------------------------------------------------------------------------------
# Source mix
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceMix:
    """Source shares of the brand's organic mentions before and during the flight.
    ``tvd`` is the total variation distance between the two mixes (0-1);
    ``mix_nss_shift`` the NSS change the mix change alone would cause at baseline moods,
    sum over sources of (share_flight - share_before) * NSS_before(source). Fires at
    ``tvd >= 0.10`` or ``|mix_nss_shift| >= 1`` point."""

    baseline_shares: dict[str, float]
    flight_shares: dict[str, float]
    baseline_nss: dict[str, float | None]
    tvd: float
    mix_nss_shift: float
    fired: bool


def source_mix_shift(by_source: Mapping[str, DailySeries], window: CampaignWindow) -> SourceMix | None:
    if len(by_source) < 2:
        return None
    names = sorted(by_source)
    base = np.array([by_source[s].total[window.pre].sum() for s in names])
    flight = np.array([by_source[s].total[window.flight].sum() for s in names])
    if base.sum() == 0 or flight.sum() == 0:
        return None
    sb, sf = base / base.sum(), flight / flight.sum()
    nss_b = {}
    shift = 0.0
    for i, s in enumerate(names):
        t = base[i]
        if t > 0:
            ser = by_source[s]
            nss_b[s] = float(100 * (ser.positive[window.pre].sum() - ser.negative[window.pre].sum()) / t)
            shift += (sf[i] - sb[i]) * nss_b[s]
        else:
            nss_b[s] = None
    tvd = float(0.5 * np.abs(sf - sb).sum())
    return SourceMix({s: float(v) for s, v in zip(names, sb)}, {s: float(v) for s, v in zip(names, sf)},
                     nss_b, tvd, float(shift), bool(tvd >= MIX_TVD_LIMIT or abs(shift) >= MIX_NSS_LIMIT))


# ----------------------------------------------------------------------------------
# Connector gaps
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class GapCheck:
    """Days where a source delivered less than expected for the brand (or its
    competitors). ``coverage`` is observed/expected per analysis day over all sources
    (1.0 on days nothing was expected). Days under 50 % coverage are left out of every
    model (``excluded_all``); days with any shortfall are also left out of the volume
    and share-of-voice models (``excluded_volume``), whose counts they would bias.
    ``gaps`` lists (date, source, expected, observed) for every short day."""

    gaps: tuple[tuple[date, str, float, float], ...]
    missing_units: float
    coverage: np.ndarray
    excluded_all: np.ndarray
    excluded_volume: np.ndarray
    in_flight: int
    in_washout: int
    in_baseline: int

    @property
    def fired(self) -> bool:
        return bool(self.gaps)


def connector_gaps(coverage: Sequence[Coverage], dates: Sequence[date], window: CampaignWindow,
                   brands: Sequence[str]) -> GapCheck:
    n = len(dates)
    index = {d: i for i, d in enumerate(dates)}
    expected, observed = np.zeros(n), np.zeros(n)
    gaps = []
    wanted = {b.casefold() for b in brands}
    for cov in coverage:
        if cov.brand is not None and cov.brand.casefold() not in wanted:
            continue
        for d, e, o in zip(cov.dates, cov.expected, cov.observed):
            i = index.get(d)
            if i is None:
                continue
            expected[i] += e
            observed[i] += min(o, e)
            if o < e:
                gaps.append((d, cov.source if cov.brand is None else f"{cov.source} ({cov.brand})", float(e), float(o)))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(expected > 0, observed / np.where(expected > 0, expected, 1), 1.0)
    excl_all = ratio < COVERAGE_EXCLUDE
    excl_vol = ratio < 1.0
    gap_days = {g[0] for g in gaps}
    day_mask = np.array([d in gap_days for d in dates])
    return GapCheck(tuple(sorted(gaps)), float((expected - observed).sum()), ratio, excl_all, excl_vol,
                    int((day_mask & window.flight).sum()), int((day_mask & window.washout).sum()),
                    int((day_mask & window.baseline).sum()))
