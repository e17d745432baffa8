"""Regression with AR(1) errors: the two engines agree, fallbacks are reported, adstock,
Ljung-Box, and the reason for all of it: OLS standard errors give false positives."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from analysis.roi import models
from analysis.roi.adstock import adstock, carry_over, half_life
from analysis.roi.daily import CampaignWindow, day_of_week_dummies
from analysis.roi.effects import estimate_its, its_design, pretrend_check
from analysis.roi.models import fit_ar1, ljung_box_p
from analysis.roi.simulate import scenario, simulate


def ar1_data(seed: int, n: int = 90, phi: float = 0.6, sd: float = 3.0, effect: float = 10.0):
    rng = np.random.default_rng(seed)
    u = np.zeros(n)
    u[0] = rng.normal(0, sd / math.sqrt(1 - phi * phi))
    for t in range(1, n):
        u[t] = phi * u[t - 1] + rng.normal(0, sd)
    flight = np.zeros(n)
    flight[60:74] = 1
    washout = np.zeros(n)
    washout[74:81] = 1
    dow, names = day_of_week_dummies([date(2026, 3, 2) + timedelta(days=i) for i in range(n)])
    X = np.column_stack([flight, washout, dow])
    return 20 + effect * flight + u, X, ["flight", "washout", *names]


@pytest.mark.parametrize("missing", [False, True])
def test_exact_profile_and_statsmodels_arima_agree(missing):
    y, X, names = ar1_data(1)
    if missing:
        y[[5, 6, 7, 30, 61]] = np.nan
    a = fit_ar1(y, X, names, engine="arima")
    e = fit_ar1(y, X, names, engine="exact")
    assert a.info.engine == "arima" and a.info.fallback is None
    assert a.info.llf == pytest.approx(e.info.llf, abs=1e-4)
    assert a.info.phi == pytest.approx(e.info.phi, abs=1e-4)
    assert a.coef("flight") == pytest.approx(e.coef("flight"), abs=1e-4)
    assert a.se("flight") == pytest.approx(e.se("flight"), rel=0.02)
    assert a.info.nobs == (85 if missing else 90)


def test_arima_failure_falls_back_to_the_exact_maximum_and_says_why(monkeypatch):
    from statsmodels.tsa.arima.model import ARIMA

    def broken_fit(self, *args, **kwargs):
        raise np.linalg.LinAlgError("simulated failure")

    monkeypatch.setattr(ARIMA, "fit", broken_fit)
    y, X, names = ar1_data(2)
    fit = fit_ar1(y, X, names, engine="arima")
    assert fit.info.engine == "exact"
    assert "LinAlgError" in fit.info.fallback and "simulated failure" in fit.info.fallback
    assert fit.coef("flight") == pytest.approx(fit_ar1(y, X, names, engine="exact").coef("flight"))


def test_statsmodels_warnings_are_captured_not_lost(monkeypatch):
    import warnings

    from statsmodels.tools.sm_exceptions import ConvergenceWarning
    from statsmodels.tsa.arima.model import ARIMA

    real_fit = ARIMA.fit

    def noisy_fit(self, *args, **kwargs):
        warnings.warn("Maximum Likelihood optimization failed to converge.", ConvergenceWarning)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(ARIMA, "fit", noisy_fit)
    y, X, names = ar1_data(3)
    fit = fit_ar1(y, X, names)
    assert any("ConvergenceWarning" in w for w in fit.info.warnings)


def test_a_regressor_that_is_zero_on_every_observed_day_is_dropped():
    y, X, names = ar1_data(4)
    X = X.copy()
    X[:, 1] = 0.0  # a washout past the end of the data
    fit = fit_ar1(y, X, names, engine="exact")
    assert "washout" in fit.info.dropped and fit.coef("washout") is None


def test_small_sample_correction_inflates_ml_standard_errors_by_n_over_df():
    y, X, names = ar1_data(5)
    ml = fit_ar1(y, X, names, engine="exact", small_sample=False)
    corrected = fit_ar1(y, X, names, engine="exact")
    assert corrected.info.df_resid == 90 - 9 - 1
    assert corrected.se("flight") == pytest.approx(ml.se("flight") * math.sqrt(90 / 80))


def test_ljung_box_matches_statsmodels():
    from statsmodels.stats.diagnostic import acorr_ljungbox

    r = np.random.default_rng(3).normal(size=80)
    r[1:] += 0.4 * r[:-1]
    expected = acorr_ljungbox(r, lags=[7, 14], model_df=1)["lb_pvalue"].min()
    assert ljung_box_p(r) == pytest.approx(expected)


# --- adstock ------------------------------------------------------------------------

def test_adstock_is_normalised():
    impulse = np.zeros(200)
    impulse[0] = 1.0
    for theta in (0.0, 0.3, 0.9):
        assert adstock(impulse, theta).sum() == pytest.approx(1.0, abs=1e-6)
        steady = adstock(np.full(300, 250.0), theta)
        assert steady[-1] == pytest.approx(250.0)
    assert list(adstock([0, 5, 0], 0.0)) == [0, 5, 0]
    assert list(adstock([1, 0, 0], 0.5)) == [0.5, 0.25, 0.125]
    assert half_life(0.5) == pytest.approx(1.0) and half_life(0.0) == 0.0
    with pytest.raises(ValueError):
        adstock([1], 1.0)


def _did_series(sim):
    comp = sum(c.organic.total for c in sim.competitors)
    return sim.brand.organic.nss() - 100 * sum(c.organic.net for c in sim.competitors) / comp


def test_carry_over_recovers_theta_over_seeds():
    """theta = 0.6 (half-life 1.4 days) is recovered on average; a single seed's profile
    CI is not always right (its coverage measured ~0.8: see bench/roi_calibration.py)."""
    thetas, covered, dnp_covered = [], 0, 0
    for seed in range(10):
        sim = simulate("carry_over", seed)
        window = CampaignWindow.from_plan(sim.plan, sim.brand.dates)
        co = carry_over(_did_series(sim), window, sim.spend.on(sim.brand.dates), sim.brand.organic.total,
                        engine="exact")
        thetas.append(co.theta)
        covered += co.theta_ci[0] <= 0.6 <= co.theta_ci[1]
        dnp_covered += co.dnp.ci_low <= sim.truth.dnp <= co.dnp.ci_high
    assert 0.4 <= float(np.median(thetas)) <= 0.7
    assert covered >= 6 and dnp_covered >= 8


def test_theta_is_not_identified_without_an_effect():
    sim = simulate("no_effect", 0)
    co = carry_over(_did_series(sim), CampaignWindow.from_plan(sim.plan, sim.brand.dates),
                    sim.spend.on(sim.brand.dates), sim.brand.organic.total, engine="exact")
    assert not co.identified and co.theta_ci == (0.0, 0.9) and co.note


def test_pretrend_check_flags_a_drift():
    sim = simulate("no_effect", 1)
    window = CampaignWindow.from_plan(sim.plan, sim.brand.dates)
    y = sim.brand.organic.nss() - sum(c.organic.nss() for c in sim.competitors) / 2
    assert pretrend_check(y, window).passed
    drifting = y + 0.25 * np.arange(len(y))  # 1.75 points a week
    check = pretrend_check(drifting, window)
    assert not check.passed and check.slope_per_week == pytest.approx(1.75, abs=0.6)


# --- why AR(1): OLS standard errors give false positives under autocorrelation ----------

FPR_SEEDS = range(60)


def test_its_false_positive_rate_under_autocorrelated_mood_is_controlled():
    """Brand-only ITS, no campaign effect, mood AR(1) (phi 0.7 market + 0.5 brand): the
    AR(1) model's 95 % CI excludes 0 in at most 10 of 60 fixed seeds (it does in 7);
    OLS standard errors on the same design exclude 0 in 16 of them."""
    hits = 0
    for seed in FPR_SEEDS:
        sim = simulate("no_effect", seed)
        window = CampaignWindow.from_plan(sim.plan, sim.brand.dates)
        est = estimate_its(sim.brand.organic.nss(), window)
        hits += est.excludes_zero
    assert hits <= 10, f"{hits} of {len(FPR_SEEDS)} no-effect seeds gave a CI excluding 0"


def test_its_design_has_flight_washout_and_weekday_columns():
    sim = simulate(scenario("effect"), 0)
    window = CampaignWindow.from_plan(sim.plan, sim.brand.dates)
    X, names = its_design(window)
    assert names[:2] == ["flight", "washout"] and len(names) == 8
    assert X[:, 0].sum() == 14 and X[:, 1].sum() == 7
    assert models.ARIMA_COV_TYPE == "approx"
