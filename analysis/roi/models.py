"""Regression with AR(1) errors, by maximum likelihood: the estimator behind ITS, DiD,
the volume model, carry-over, placebos and the MDE.

    y_t = c + x_t' b + u_t,   u_t = phi u_{t-1} + e_t,   e_t ~ N(0, sigma2),  |phi| < 1

Two engines compute the *same* exact Gaussian likelihood (stationary start, missing days
skipped):

* ``arima``: ``statsmodels.tsa.arima.model.ARIMA(y, exog=X, order=(1, 0, 0),
  trend="c")``, fitted by state-space ML, as docs/roi-method.md prescribes. It is used for
  every estimate the report prints (ITS, DiD, volume, the KPI, adstock at its theta).
* ``exact``: the same likelihood profiled analytically. For a given phi, the
  Prais-Winsten transform (generalised to gaps of d days: the innovation of a day
  following a gap has variance sigma2 (1 - phi^2d) / (1 - phi^2)) turns the model into
  OLS, so b and sigma2 have closed forms and only phi is searched (a grid, then
  Brent). One fit takes ~3 ms against ~300 ms for a cold ARIMA fit, which is what makes
  the 10-value theta profile, ~40 placebo windows per campaign, the pre-trend, the MDE
  and the competitor-shift check affordable. It also supplies ARIMA's starting values,
  from which ARIMA converges in 0-2 iterations (~40 ms with its covariance); tests check
  both engines agree.

Robustness (``fit_ar1``): warnings raised while ARIMA fits (ConvergenceWarning, ...)
are captured and returned in ``FitInfo.warnings``. If ARIMA raises, does not converge,
returns non-finite parameters or standard errors, or ends at a likelihood below the
profile maximum (an optimiser stuck short of the optimum), it is refitted once from
statsmodels' own starting values; if that fails too, the exact-profile estimate (same
likelihood, its maximum found by a 1-D search that cannot stall) is used and
``FitInfo.fallback`` says why. Columns that are constant zero on the observed days (a
washout past the end of the data, say) are dropped before fitting and listed in
``FitInfo.dropped``.

Small-sample correction (``fit_ar1(small_sample=True)``, the default): the regression
covariance is multiplied by n / (n - p) and CIs use Student's t with n - p degrees of
freedom, p = regression coefficients + 1 (phi). With ~90 days and ~10 parameters the
plain ML standard errors are too small: on the simulator (400 seeds, DiD) the empirical
SD of the flight estimate was 1.80 points against a mean ML SE of 1.47, and the 95 % CI
covered 0.87; with the correction 0.90. (REML for phi gave 0.905, ARMA(1,1) errors
0.89, and even the correctly specified latent-AR(1)-plus-known-binomial-noise model
0.90: the shortfall is small-sample noise in phi and sigma2, not the AR(1) form.)

Standard errors: the inverse observed information at the ML estimate. For ARIMA,
``cov_type="approx"`` (statsmodels' numerical Hessian, ~25 ms); statsmodels' default
"opg" (outer product of gradients) came out ~35 % larger than the observed information
on a 90-day series and is unstable in samples this small, and "oim" gives the same
numbers as "approx" at three times the cost. For the exact engine sigma2 (Z'Z)^-1 on the
transformed data, the same regression block (the expected information is block-diagonal
between b and (phi, sigma2); the two agree to ~0.2 %). Not OLS, not Newey-West: under
autocorrelated errors those give false positives (docs/roi-method.md measured 14-20 % at
nominal 5 %; tests/analysis/test_roi_models.py shows OLS at 16 of 60 seeds).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

ENGINES = ("arima", "exact")
ARIMA_COV_TYPE = "approx"
Z95 = float(stats.norm.ppf(0.975))
MDE_MULTIPLIER = 2.8  # z_{0.975} + z_{0.80}: 80 % power at a two-sided 5 % test
PHI_BOUND = 0.995


@dataclass(frozen=True)
class FitInfo:
    """How a model was fitted. ``engine`` is "arima" (statsmodels) or "exact" (profile
    ML); ``fallback`` is set when ARIMA was asked for but the exact engine's estimate
    was used, and says why. ``ljung_box_p`` tests the standardised residuals for
    leftover autocorrelation (lags 7 and 14 combined: the smaller p-value). ``df_resid`` = observed days minus
    regression coefficients minus one (phi): the degrees of freedom of the t quantiles."""

    engine: str
    converged: bool
    phi: float
    sigma2: float
    llf: float
    nobs: int
    n_params: int
    df_resid: int = 0
    warnings: tuple[str, ...] = ()
    fallback: str | None = None
    dropped: tuple[str, ...] = ()
    ljung_box_p: float | None = None


@dataclass(frozen=True, eq=False)
class AR1Fit:
    """A fitted regression with AR(1) errors. ``names``/``params``/``cov`` cover the
    regression coefficients only (the constant first, named "const")."""

    names: tuple[str, ...]
    params: np.ndarray
    cov: np.ndarray
    resid: np.ndarray = field(repr=False)  # standardised innovations of the observed days
    info: FitInfo = None  # type: ignore[assignment]

    def coef(self, name: str) -> float | None:
        return float(self.params[self.names.index(name)]) if name in self.names else None

    def se(self, name: str) -> float | None:
        if name not in self.names:
            return None
        i = self.names.index(name)
        return float(math.sqrt(max(self.cov[i, i], 0.0)))

    def covariance(self, a: str, b: str) -> float:
        return float(self.cov[self.names.index(a), self.names.index(b)])


# ----------------------------------------------------------------------------------
# The exact profile likelihood
# ----------------------------------------------------------------------------------

class _Profile:
    """Pre-computed pieces of the AR(1) likelihood for fixed (y, X) with missing days."""

    def __init__(self, y: np.ndarray, X: np.ndarray) -> None:
        obs = np.isfinite(y)
        self.index = np.flatnonzero(obs)
        self.y = y[obs]
        self.X = X[obs]
        self.gap = np.diff(self.index).astype(float)
        self.n = self.y.shape[0]
        self._yx = np.column_stack([self.y, self.X])

    def whiten(self, phi: float, A: np.ndarray) -> tuple[np.ndarray, float]:
        """W A and log|W| for the AR(1) whitening at ``phi``."""
        one = 1.0 - phi * phi
        out = np.empty_like(A)
        out[0] = A[0] * math.sqrt(one)
        pd = phi ** self.gap
        c = np.sqrt(one / (1.0 - pd * pd))
        if A.ndim == 1:
            out[1:] = (A[1:] - pd * A[:-1]) * c
        else:
            out[1:] = (A[1:] - pd[:, None] * A[:-1]) * c[:, None]
        return out, 0.5 * math.log(one) + float(np.log(c).sum())

    def solve(self, phi: float):
        Z, logdet = self.whiten(phi, self._yx)
        zy, zx = Z[:, 0], Z[:, 1:]
        beta, _, rank, _ = np.linalg.lstsq(zx, zy, rcond=None)
        r = zy - zx @ beta
        rss = float(r @ r)
        return beta, rss, logdet, zx, r, rank

    def negllf(self, phi: float) -> float:
        _, rss, logdet, _, _, _ = self.solve(phi)
        n = self.n
        if rss <= 0:
            return -1e12
        return 0.5 * n * (math.log(2 * math.pi) + 1.0 + math.log(rss / n)) - logdet


_PHI_GRID = np.linspace(-0.9, 0.99, 22)


def _fit_exact(y: np.ndarray, X: np.ndarray, names: tuple[str, ...], phi: float | None = None) -> AR1Fit:
    """Profile ML (or, with ``phi`` given, GLS at that phi)."""
    prof = _Profile(y, X)
    if prof.n <= X.shape[1] + 2:
        raise ValueError(f"{prof.n} observed days are too few for {X.shape[1] + 2} parameters")
    if phi is None:
        values = [prof.negllf(p) for p in _PHI_GRID]
        k = int(np.argmin(values))
        lo = _PHI_GRID[max(k - 1, 0)] if k > 0 else -PHI_BOUND
        hi = _PHI_GRID[k + 1] if k + 1 < len(_PHI_GRID) else PHI_BOUND
        res = optimize.minimize_scalar(prof.negllf, bounds=(lo, hi), method="bounded",
                                       options={"xatol": 1e-6})
        phi = float(res.x) if res.fun <= values[k] else float(_PHI_GRID[k])
    beta, rss, logdet, zx, r, rank = prof.solve(phi)
    if rank < X.shape[1]:
        raise ValueError("the design matrix is rank-deficient on the observed days")
    n = prof.n
    sigma2 = rss / n
    llf = -(0.5 * n * (math.log(2 * math.pi) + 1.0 + math.log(sigma2)) - logdet)
    cov = sigma2 * np.linalg.inv(zx.T @ zx)
    info = FitInfo(engine="exact", converged=True, phi=phi, sigma2=sigma2, llf=llf, nobs=n,
                   n_params=X.shape[1] + 2, df_resid=n - X.shape[1] - 1)
    return AR1Fit(names, beta, cov, r / math.sqrt(sigma2), info)


def _standardised_resid(y: np.ndarray, X: np.ndarray, beta: np.ndarray, phi: float, sigma2: float) -> np.ndarray:
    prof = _Profile(y, X)
    z, _ = prof.whiten(phi, prof.y - prof.X @ beta)
    return z / math.sqrt(sigma2)


def ljung_box_p(resid: np.ndarray, lags: Sequence[int] = (7, 14), model_df: int = 1) -> float | None:
    """Smallest Ljung-Box p-value over ``lags`` (degrees of freedom lag - ``model_df``,
    one for phi); None if the series is too short. Written out rather than calling
    ``statsmodels.stats.diagnostic.acorr_ljungbox`` (same statistic, checked in the
    tests), which builds a DataFrame and costs ~25 ms a call."""
    r = np.asarray(resid, dtype=float)
    r = r[np.isfinite(r)]
    n = r.shape[0]
    use = [lag for lag in lags if model_df < lag < n // 2]
    if not use:
        return None
    r = r - r.mean()
    denom = float(r @ r)
    if denom <= 0:
        return None
    h = max(use)
    acf = np.array([float(r[k:] @ r[:-k]) / denom for k in range(1, h + 1)])
    terms = np.cumsum(acf ** 2 / (n - np.arange(1, h + 1)))
    ps = [float(stats.chi2.sf(n * (n + 2) * terms[lag - 1], lag - model_df)) for lag in use]
    return min(ps)


# ----------------------------------------------------------------------------------
# The public fitter
# ----------------------------------------------------------------------------------

def _clean_design(y: np.ndarray, X: np.ndarray, names: Sequence[str]):
    obs = np.isfinite(y)
    keep, dropped = [], []
    for j, name in enumerate(names):
        col = X[obs, j]
        if np.all(col == 0):
            dropped.append(name)
        else:
            keep.append(j)
    return X[:, keep], [names[j] for j in keep], tuple(dropped)


def fit_ar1(y, X=None, names: Sequence[str] = (), *, engine: str = "arima", with_ljung_box: bool = True,
            small_sample: bool = True) -> AR1Fit:
    """Fit y = const + X b + AR(1) errors by ML; NaN in ``y`` marks a missing day.

    ``X`` holds the regressors without the constant (which is always added, named
    "const"). See the module docstring for the engines, fallbacks, warnings and the
    small-sample correction (``small_sample=False`` returns the plain ML covariance).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}")
    y = np.asarray(y, dtype=float)
    n = y.shape[0]
    X = np.zeros((n, 0)) if X is None else np.asarray(X, dtype=float).reshape(n, -1)
    names = list(names) or [f"x{j + 1}" for j in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise ValueError("one name per column of X")
    if not np.isfinite(X).all():
        raise ValueError("X has missing values")
    Xc, kept, dropped = _clean_design(y, X, names)
    full = np.column_stack([np.ones(n), Xc])
    all_names = ("const", *kept)
    exact = _fit_exact(y, full, all_names)
    if engine == "exact":
        info = _replace(exact.info, dropped=dropped,
                        ljung_box_p=ljung_box_p(exact.resid) if with_ljung_box else None)
        fit = AR1Fit(exact.names, exact.params, exact.cov, exact.resid, info)
    else:
        fit = _fit_arima(y, Xc, all_names, exact, dropped, with_ljung_box)
    return _small_sample(fit) if small_sample else fit


def _small_sample(fit: AR1Fit) -> AR1Fit:
    info = fit.info
    if info.df_resid <= 0:
        return fit
    return AR1Fit(fit.names, fit.params, fit.cov * (info.nobs / info.df_resid), fit.resid, info)


def _replace(info: FitInfo, **changes) -> FitInfo:
    from dataclasses import replace
    return replace(info, **changes)


def _fit_arima(y, Xc, names, exact: AR1Fit, dropped, with_ljung_box: bool) -> AR1Fit:
    from statsmodels.tsa.arima.model import ARIMA

    k = len(names)
    caught: list[str] = []
    problems: list[str] = []
    start = np.r_[exact.params, np.clip(exact.info.phi, -0.99, 0.99), max(exact.info.sigma2, 1e-8)]
    result = None
    for attempt, start_params in enumerate((start, None)):
        try:
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                model = ARIMA(y, exog=Xc if Xc.shape[1] else None, order=(1, 0, 0), trend="c")
                res = model.fit(start_params=start_params, cov_type=ARIMA_COV_TYPE)
                cov = np.asarray(res.cov_params())[:k, :k]
            caught.extend(f"{w.category.__name__}: {w.message}" for w in record)
        except Exception as exc:  # statsmodels raises LinAlgError, ValueError, ...
            problems.append(f"ARIMA attempt {attempt + 1} raised {type(exc).__name__}: {exc}")
            continue
        params = np.asarray(res.params, dtype=float)
        converged = bool(res.mle_retvals.get("converged", True)) if res.mle_retvals else True
        diag = np.diag(cov)
        if not np.isfinite(params).all() or not np.isfinite(diag).all() or (diag <= 0).any():
            problems.append(f"ARIMA attempt {attempt + 1} gave non-finite estimates or standard errors")
            continue
        if not converged:
            problems.append(f"ARIMA attempt {attempt + 1} did not converge")
            continue
        if res.llf < exact.info.llf - 1e-3 * max(1.0, abs(exact.info.llf)):
            problems.append(f"ARIMA attempt {attempt + 1} stopped below the likelihood maximum "
                            f"({res.llf:.3f} < {exact.info.llf:.3f})")
            continue
        result = (res, params, cov)
        break
    if result is None:
        info = _replace(exact.info, fallback="; ".join(problems), warnings=tuple(dict.fromkeys(caught)),
                        dropped=dropped,
                        ljung_box_p=ljung_box_p(exact.resid) if with_ljung_box else None)
        return AR1Fit(exact.names, exact.params, exact.cov, exact.resid, info)
    res, params, cov = result
    beta, phi, sigma2 = params[:k], float(params[k]), float(params[k + 1])
    full = np.column_stack([np.ones(y.shape[0]), Xc])
    resid = _standardised_resid(y, full, beta, phi, sigma2)
    nobs = int(np.isfinite(y).sum())
    info = FitInfo(engine="arima", converged=True, phi=phi, sigma2=sigma2, llf=float(res.llf),
                   nobs=nobs, n_params=k + 2, df_resid=nobs - k - 1,
                   warnings=tuple(dict.fromkeys(caught)),
                   fallback=None, dropped=dropped,
                   ljung_box_p=ljung_box_p(resid) if with_ljung_box else None)
    if problems:  # the first attempt failed, the second worked: say so
        info = _replace(info, warnings=info.warnings + tuple(problems))
    return AR1Fit(tuple(names), beta, cov, resid, info)


# ----------------------------------------------------------------------------------
# Design-based standard error (for the MDE)
# ----------------------------------------------------------------------------------

def design_se(X: np.ndarray, column: int, phi: float, sigma2: float, observed: np.ndarray | None = None) -> float:
    """SE of coefficient ``column`` of ``X`` (constant included by the caller) under
    AR(1) errors with known ``phi`` and ``sigma2``: what a fit *would* give on that design."""
    X = np.asarray(X, dtype=float)
    n = X.shape[0]
    y = np.zeros(n) if observed is None else np.where(observed, 0.0, np.nan)
    prof = _Profile(y, X)
    zx, _ = prof.whiten(phi, prof.X)
    cov = sigma2 * np.linalg.pinv(zx.T @ zx)
    return float(math.sqrt(max(cov[column, column], 0.0)))


def normal_p(estimate: float, se: float) -> float:
    if not se or not math.isfinite(se) or se <= 0:
        return float("nan")
    return float(2.0 * stats.norm.sf(abs(estimate) / se))


def t_p(estimate: float, se: float, df: int) -> float:
    if df <= 0:
        return normal_p(estimate, se)
    if not se or not math.isfinite(se) or se <= 0:
        return float("nan")
    return float(2.0 * stats.t.sf(abs(estimate) / se, df))


def t_quantile(df: int) -> float:
    """Two-sided 95 % quantile of Student's t (the normal's when df <= 0)."""
    return float(stats.t.ppf(0.975, df)) if df > 0 else Z95
