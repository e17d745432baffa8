"""Carry-over: a distributed lag on normalised geometric adstock of the spend.

    a_t = (1 - theta) sum_{k >= 0} theta^k s_{t-k}

The weights sum to 1, so a steady spend s gives a_t -> s and the coefficient keeps the
meaning "effect at that spend level" whatever theta is. The regressor is
x_t = a_t / (mean daily spend over the flight days), so beta is the lift (NSS points)
that the flight's average spend sustains once it has built up, and beta * x_t the lift
on day t. The model is y_t = c + beta x_t + day-of-week + AR(1) errors (no flight or
washout indicator: the adstock is the effect's shape), fitted by exact ML for each theta
on the grid 0, 0.1, ..., 0.9; theta maximises the profile likelihood.

* theta's 95 % CI: the grid values with 2 (llf_max - llf(theta)) <= 3.84 (profile
  likelihood); theta is "not identified" when that set is the whole grid (the
  likelihood is flat: the data cannot tell an instant effect from a slow one);
* half-life = ln 0.5 / ln theta days (0 for theta = 0), its CI from theta's;
* dNP (mood channel) = sum over days from the flight's start of T_t beta x_t / 100; its
  CI is the envelope of the CIs conditional on each theta in theta's CI, so theta's
  uncertainty is carried into it.

Spend before the first analysed day is taken as 0 unless the spend series starts
earlier (the caller passes spend on the analysis dates plus any history).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.roi.daily import CampaignWindow, day_of_week_dummies
from analysis.roi.effects import EffectEstimate, effect_from_fit
from analysis.roi.models import fit_ar1, t_quantile

THETA_GRID = tuple(round(0.1 * k, 1) for k in range(10))
PROFILE_CUTOFF = float(stats.chi2.ppf(0.95, 1)) / 2  # 1.92 log-likelihood units


def adstock(spend, theta: float) -> np.ndarray:
    """Normalised geometric adstock: a_t = (1 - theta) sum_k theta^k s_{t-k}."""
    if not 0 <= theta < 1:
        raise ValueError("theta must be in [0, 1)")
    s = np.asarray(spend, dtype=float)
    out = np.empty_like(s)
    carry = 0.0
    for t, v in enumerate(s):
        carry = theta * carry + (1.0 - theta) * v
        out[t] = carry
    return out


def half_life(theta: float) -> float:
    """Days for the carried-over effect to halve (0 for theta = 0)."""
    if theta <= 0:
        return 0.0
    return math.log(0.5) / math.log(theta)


@dataclass(frozen=True)
class CarryOver:
    """The adstock model's answer. ``effect`` is the mean lift over flight days implied
    at theta (beta times the mean of x over the flight), comparable with ITS's delta;
    ``beta`` the sustained lift at the flight's average spend. ``profile`` lists
    (theta, log-likelihood) over the grid."""

    theta: float
    theta_ci: tuple[float, float]
    identified: bool
    half_life: float
    half_life_ci: tuple[float, float]
    beta: float
    beta_se: float
    effect: EffectEstimate
    dnp: EffectEstimate
    profile: tuple[tuple[float, float], ...]
    note: str | None = None


def carry_over(y, window: CampaignWindow, spend_on_dates, total, *, kpi: str = "nss",
               unit: str = "NSS points", method: str = "adstock", engine: str = "arima",
               grid=THETA_GRID, history=None) -> CarryOver | None:
    """Profile theta over ``grid`` (exact ML), refit at the best theta with ``engine``.

    ``y``: the daily series (brand NSS or brand minus competitors), NaN = missing;
    ``spend_on_dates``: the campaign's spend on the analysis dates; ``total``: the
    brand's scored mentions per day (for dNP); ``history``: spend on the days before the
    first date, oldest first (optional). None when there is no spend in the flight or
    too little data."""
    y = np.asarray(y, dtype=float).copy()
    y[window.excluded] = np.nan
    spend = np.asarray(spend_on_dates, dtype=float)
    flight_spend = spend[window.flight]
    if flight_spend.size == 0 or flight_spend.mean() <= 0:
        return None
    scale = float(flight_spend.mean())
    hist = np.asarray(history if history is not None else [], dtype=float)
    dow, dow_names = day_of_week_dummies(window.dates)
    names = ["adstock", *dow_names]

    def regressor(theta: float) -> np.ndarray:
        full = adstock(np.concatenate([hist, spend]), theta)
        return full[hist.shape[0]:] / scale

    fits = {}
    profile = []
    for theta in grid:
        x = regressor(theta)
        try:
            fit = fit_ar1(y, np.column_stack([x, dow]), names, engine="exact", with_ljung_box=False)
        except (ValueError, np.linalg.LinAlgError):
            continue
        fits[theta] = (fit, x)
        profile.append((float(theta), float(fit.info.llf)))
    if not profile:
        return None
    best_theta, best_llf = max(profile, key=lambda p: p[1])
    inside = [t for t, llf in profile if best_llf - llf <= PROFILE_CUTOFF]
    ci = (min(inside), max(inside))
    identified = not (ci[0] <= min(grid) and ci[1] >= max(grid))
    x_best = fits[best_theta][1]
    fit = fit_ar1(y, np.column_stack([x_best, dow]), names, engine=engine)
    beta, beta_se = fit.coef("adstock"), fit.se("adstock")

    obs = np.isfinite(y)
    seen = window.flight & obs if (window.flight & obs).any() else window.flight
    flight_mean_x = float(x_best[seen].mean())
    eff = effect_from_fit(fit, method=method, kpi=kpi, unit=unit, coef="adstock")
    effect = EffectEstimate(method, kpi, unit, beta * flight_mean_x, eff.ci_low * flight_mean_x,
                            eff.ci_high * flight_mean_x, beta_se * flight_mean_x, eff.p_value, eff.n_days,
                            fit=fit.info)

    total = np.asarray(total, dtype=float)
    after = np.zeros(len(window.dates), dtype=bool)
    first = int(np.flatnonzero(window.flight)[0])
    after[first:] = True
    after &= ~window.excluded & (total > 0)

    def dnp_at(theta: float, b: float, b_se: float):
        x = fits[theta][1]
        k = float((total * x)[after].sum()) / 100.0
        return b * k, b_se * k

    point, point_se = dnp_at(best_theta, beta, beta_se)
    q = t_quantile(fit.info.df_resid)
    lows, highs = [point - q * point_se], [point + q * point_se]
    for theta in inside:
        f, _ = fits[theta]
        d, s = dnp_at(theta, f.coef("adstock"), f.se("adstock"))
        lows.append(d - q * s)
        highs.append(d + q * s)
    dnp = EffectEstimate(method, "net_positive", "net-positive conversations", point, min(lows), max(highs),
                         point_se, eff.p_value, int(after.sum()), fit=fit.info)
    note = None if identified else ("the likelihood is flat in theta over 0-0.9: the data cannot tell an "
                                    "effect that stops with the spend from one that lingers")
    return CarryOver(
        theta=best_theta, theta_ci=ci, identified=identified, half_life=half_life(best_theta),
        half_life_ci=(half_life(ci[0]), half_life(ci[1])), beta=beta, beta_se=beta_se, effect=effect,
        dnp=dnp, profile=tuple(profile), note=note,
    )
