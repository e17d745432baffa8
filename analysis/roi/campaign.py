"""The campaign report's statistics: one ``CampaignResult`` per pre-registered campaign.

``analyse_campaign`` runs docs/roi-method.md end to end on daily counts (account-local days)
and returns values only; the report (``analysis.roi.report``) holds the typed
``CampaignResult`` the renderers read, and ``CampaignResult.to_dict()`` is its part of
report.json.

Order of work:

1. days: the plan's flight/washout laid on the dates (other flights of the same brand are
   left out of the baseline), connector gaps (days under 50 % coverage leave every
   model; days with any shortfall leave the volume and share-of-voice models);
2. NSS: ITS on the brand's organic daily NSS; DiD on brand minus pooled competitors;
   the headline is DiD when the competitors' volume is at least half the brand's and
   the pre-trend check passes, else ITS and the reason;
3. volume: the same two models on log mentions (lift = e^delta - 1);
4. the primary KPI if it is not NSS (positive mentions: log P; share of voice: ITS on
   the daily share in points; net positive: dNP);
5. dNP from the headline NSS and volume models, CPINC = spend / dNP;
6. carry-over (adstock) on the headline NSS series;
7. MDE from the pre-flight baseline; placebo windows, Ljung-Box, ITS-vs-DiD,
   source mix, gaps;
8. the verdict and the caveats.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from analysis.campaign_plan import CampaignPlan
from analysis.roi.adstock import CarryOver, carry_over
from analysis.roi.daily import (
    BrandDaily,
    CampaignWindow,
    Coverage,
    DailySeries,
    DailySpend,
    WindowMetrics,
    pool,
    window_metrics,
)
from analysis.roi.diagnostics import (
    Disagreement,
    GapCheck,
    Placebo,
    SourceMix,
    comovement,
    connector_gaps,
    its_did_disagreement,
    placebo_test,
    source_mix_shift,
)
from analysis.roi.effects import (
    MIN_BASELINE_DAYS,
    EffectEstimate,
    Mde,
    PreTrend,
    effect_from_fit,
    fit_its,
    flight_washout_cov,
    incremental_net_positive,
    minimum_detectable_effect,
    naive_difference,
    pretrend_check,
)
from analysis.roi.models import FitInfo
from analysis.roi.verdict import (
    CONFLICTING,
    ci_includes_zero_sentence,
    decide_verdict,
    describe_effect,
    human_date,
    mde_sentence,
    signed,
)

DID_VOLUME_RATIO = 0.5

KPI_UNITS = {
    "nss": ("NSS points", False),
    "mentions": ("log volume", True),
    "positive_mentions": ("log positive mentions", True),
    "sov": ("share-of-voice points", False),
    "net_positive": ("net-positive conversations", False),
}
KPI_LABELS = {
    "nss": "organic NSS", "mentions": "organic mentions", "positive_mentions": "positive mentions",
    "sov": "share of voice", "net_positive": "incremental net-positive conversations",
}


@dataclass(frozen=True)
class Headline:
    """Which estimator heads the report and why. ``competitor_volume_ratio`` is the
    pooled competitors' organic scored volume over the brand's, before the flight."""

    method: str
    reason: str
    competitor_volume_ratio: float | None
    pretrend: PreTrend | None


@dataclass(frozen=True)
class Efficiency:
    """Reported versus incremental: ``cost_per_engagement`` uses the platform's
    engagements (not incremental); ``cpinc`` = spend / dNP (incremental), given only
    when dNP's CI excludes 0 and is positive; ``cpinc_status`` says why not otherwise.
    dNP itself has one home, ``CampaignResult.dnp`` (the report once printed it twice,
    from two computations).

    When the export leaves engagements blank on some days (unknown, not 0),
    ``engagements`` sums the ``engagement_days`` days that reported them and
    ``cost_per_engagement`` is ``engagement_spend`` (the spend of those days) over it;
    ``engagement_days_missing`` lists the spend days without a figure."""

    spend: float
    currency: str
    engagements: float | None
    cost_per_engagement: float | None
    cpinc: float | None
    cpinc_ci: tuple[float, float] | None
    cpinc_status: str
    engagement_days: int = 0
    engagement_days_missing: tuple[date, ...] = ()
    engagement_spend: float | None = None


@dataclass(frozen=True)
class Diagnostics:
    placebo: Placebo | None
    ljung_box_p: float | None
    disagreement: Disagreement | None
    source_mix: SourceMix | None
    gaps: GapCheck | None
    pretrend: PreTrend | None
    fit_notes: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class DailyView:
    """Day-by-day numbers for the mood chart. ``counterfactual_nss`` is the brand's NSS
    less the headline model's effect on flight and washout days."""

    dates: tuple[date, ...]
    nss: np.ndarray
    nss_se: np.ndarray
    counterfactual_nss: np.ndarray
    competitor_nss: np.ndarray | None
    mentions: np.ndarray
    tagged_mentions: np.ndarray | None
    spend: np.ndarray
    coverage: np.ndarray | None
    flight: np.ndarray
    washout: np.ndarray


@dataclass(frozen=True, eq=False)
class CampaignResult:
    """Everything the campaign report prints for one campaign (report.json: ``to_dict``)."""

    campaign_id: str
    name: str
    brand: str
    competitors: tuple[str, ...]
    timezone: str | None
    kpi: str
    goal_direction: str
    goal_value: float | None
    flight_start: date
    flight_end: date
    washout_days: int
    data_start: date
    data_end: date
    windows: dict[str, WindowMetrics]
    competitor_windows: dict[str, dict[str, WindowMetrics]]
    tagged: WindowMetrics | None
    source_counts: dict[str, int]
    effects: dict[str, EffectEstimate]
    volume: dict[str, EffectEstimate]
    kpi_effects: dict[str, EffectEstimate]
    headline: Headline
    kpi_method: str
    headline_effect: EffectEstimate | None
    carry_over: CarryOver | None
    dnp: EffectEstimate | None
    """Incremental net-positive conversations over flight and washout, from the headline
    model's mood and volume effects: the report's one figure (CPINC divides by it). The
    carry-over model's count, ``carry_over.dnp`` (mood only, from launch to the end of the
    data), differs by construction and is shown to analysts only, under that name."""
    efficiency: Efficiency
    mde: Mde | None
    mde_warning: str | None
    verdict: str
    verdict_rule: str
    caveats: tuple[str, ...]
    diagnostics: Diagnostics
    daily: DailyView
    excluded_competitors: dict[str, str] = dataclasses.field(default_factory=dict)
    """Competitors left out of the pool (no data in the window), with why."""
    dropped_days: tuple[tuple[date, str], ...] = ()
    """Partial local days at the ends of the data, left out of the window, with why."""

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (dates ISO, NaN/inf as None, arrays as lists)."""
        return to_jsonable(self)


def to_jsonable(obj):
    """``obj`` (a result, an estimate or any part of one) in report.json's form: dataclasses
    as dicts (with ``excludes_zero``/``fired``), dates ISO, NaN/inf as None, arrays as lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if isinstance(obj, EffectEstimate):
            out["excludes_zero"] = bool(obj.excludes_zero)
        if isinstance(obj, (Placebo, GapCheck)):
            out["fired"] = bool(obj.fired)
        if isinstance(obj, Disagreement):
            out["moved_together"] = obj.moved_together
            out["market_wide"] = obj.market_wide
        return out
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


# ----------------------------------------------------------------------------------
# Series
# ----------------------------------------------------------------------------------

def _nss(series: DailySeries, drop: np.ndarray) -> np.ndarray:
    y = series.nss()
    y[drop] = np.nan
    return y


def _log(values: np.ndarray, drop: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        y = np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)
    y[drop] = np.nan
    return y


def choose_headline(brand: DailySeries, competitors: DailySeries | None, window: CampaignWindow,
                    did_series: np.ndarray | None, why_no_did: str | None = None) -> Headline:
    """DiD or ITS, and why. ``why_no_did`` says why there is no DiD estimate when
    ``competitors`` or ``did_series`` is None (the report repeats it word for word)."""
    if competitors is None or did_series is None:
        return Headline("its", why_no_did or "no difference-in-differences estimate", None, None)
    b = brand.total[window.pre].sum()
    c = competitors.total[window.pre].sum()
    ratio = float(c / b) if b > 0 else None
    pre = pretrend_check(did_series, window)
    if ratio is None or ratio < DID_VOLUME_RATIO:
        shown = "unknown" if ratio is None else f"{ratio:.0%}"
        return Headline("its", f"competitors' volume is {shown} of the brand's before the flight; "
                        f"difference-in-differences needs at least {DID_VOLUME_RATIO:.0%}", ratio, pre)
    if not pre.passed and pre.p_value is None:
        return Headline("its", f"the pre-trend check could not run: {pre.reason}", ratio, pre)
    if not pre.passed:
        return Headline("its", f"pre-trend check failed for brand minus competitors: {pre.reason}", ratio, pre)
    return Headline("did", f"competitors' volume is {ratio:.0%} of the brand's and brand-minus-competitor NSS "
                    f"showed no trend before the flight (p = {pre.p_value:.2f})", ratio, pre)


# ----------------------------------------------------------------------------------
# The analysis
# ----------------------------------------------------------------------------------

def analyse_campaign(plan: CampaignPlan, brand: BrandDaily, competitors: Sequence[BrandDaily] = (),
                     spend: DailySpend | None = None, *, coverage: Sequence[Coverage] = (),
                     other_flights: Iterable[tuple[date, date]] = (), timezone: str | None = None,
                     engine: str = "arima", placebos: bool = True, adstock: bool = True,
                     dropped_days: Sequence[tuple[date, str]] = ()) -> CampaignResult:
    """Analyse one campaign. ``brand`` and ``competitors`` hold daily counts on
    account-local dates (the brand's dates are the analysis window; competitors are
    aligned to them, missing days counting as no data). ``other_flights``: (start, end)
    of the brand's other campaigns (flight plus washout), left out of the baseline.
    ``engine``: "arima" (statsmodels, the default) or "exact" (the same likelihood,
    faster; see ``models.py``). ``placebos``/``adstock`` can be turned off for speed.
    ``dropped_days``: (date, why) of partial days the caller cut off the data (stated
    in the caveats). A competitor without data in the window is left out of the pool
    (``excluded_competitors``), never pooled as zeros."""
    if plan.brand.casefold() != brand.brand.casefold():
        raise ValueError(f"plan {plan.campaign_id} is for {plan.brand}, data for {brand.brand}")
    dates = brand.dates
    window = CampaignWindow.from_plan(plan, dates, other_flights)
    if not window.flight.any():
        raise ValueError(f"campaign {plan.campaign_id}: no flight day ({plan.flight_start}..{plan.flight_end}) "
                         f"lies in the data ({dates[0]}..{dates[-1]})")
    comps, excluded = [], {}
    for c in (c.aligned_to(dates) for c in competitors):
        # Pooled as zeros, a competitor without data adds nothing but its name: the report
        # would claim a comparison it did not make (alone, it leaves DiD nothing to
        # difference against). It is left out, by name.
        if c.organic.mentions.sum() <= 0:
            excluded[c.brand] = f"no mentions from {human_date(dates[0])} to {human_date(dates[-1])}"
        elif c.organic.total.sum() <= 0:
            excluded[c.brand] = (f"no mention that counts for mood (scored, not a duplicate) from "
                                 f"{human_date(dates[0])} to {human_date(dates[-1])}")
        else:
            comps.append(c)
    organic = brand.organic
    pooled = pool([c.organic for c in comps]) if comps else None

    gaps = connector_gaps(coverage, dates, window, [brand.brand, *[c.brand for c in comps]]) if coverage else None
    drop_all = gaps.excluded_all.copy() if gaps else np.zeros(len(dates), dtype=bool)
    drop_vol = gaps.excluded_volume | drop_all if gaps else drop_all.copy()
    drop_all = drop_all | (organic.total <= 0)
    notes: list[str] = []

    y_b = _nss(organic, drop_all)
    y_c = _nss(pooled, drop_all | (pooled.total <= 0)) if pooled is not None else None
    y_did = y_b - y_c if y_c is not None else None

    # NSS: ITS and DiD
    fits = {}
    effects: dict[str, EffectEstimate] = {}
    naive = naive_difference(organic, window)
    if naive is not None:
        effects["naive"] = naive
    fits["its"] = _safe_fit(y_b, window, engine, "NSS ITS", notes)
    if fits["its"] is not None:
        effects["its"] = effect_from_fit(fits["its"], method="its", kpi="nss", unit="NSS points")
    why_no_did = _why_no_did(plan, competitors, excluded)
    if y_did is not None:
        fit_notes_before = len(notes)
        fits["did"] = _safe_fit(y_did, window, engine, "NSS DiD", notes)
        if fits["did"] is not None:
            effects["did"] = effect_from_fit(fits["did"], method="did", kpi="nss", unit="NSS points")
        elif len(notes) > fit_notes_before:
            why_no_did = "the difference-in-differences " + notes[-1].removeprefix("NSS DiD ")
        else:
            why_no_did = ("brand-minus-competitor NSS has too few days with data for difference-in-differences: "
                          + _days_observed(y_did, window))
    headline = choose_headline(organic, pooled, window, y_did if "did" in effects else None, why_no_did)
    method = headline.method
    nss_series = y_did if method == "did" else y_b

    # volume
    volume: dict[str, EffectEstimate] = {}
    vfits = {}
    v_b = _log(organic.mentions, drop_vol)
    vfits["its"] = _safe_fit(v_b, window, engine, "volume ITS", notes)
    if vfits["its"] is not None:
        volume["its"] = effect_from_fit(vfits["its"], method="its", kpi="mentions", unit="log volume", log_scale=True)
    v_did = None
    if pooled is not None:
        v_did = v_b - _log(pooled.mentions, drop_vol)
        vfits["did"] = _safe_fit(v_did, window, engine, "volume DiD", notes)
        if vfits["did"] is not None:
            volume["did"] = effect_from_fit(vfits["did"], method="did", kpi="mentions", unit="log volume",
                                            log_scale=True)

    # dNP and efficiency
    dnp = None
    if method in effects:
        vol_est = volume.get(method)
        if vol_est is None:
            notes.append("dNP counts the mood effect only: the volume model could not be fitted")
        dnp = incremental_net_positive(organic, window, effects[method], flight_washout_cov(fits[method]),
                                       vol_est, flight_washout_cov(vfits[method]) if vol_est else None)

    # carry-over
    co = None
    spend_days = spend.on(dates) if spend is not None else np.zeros(len(dates))
    if adstock and spend is not None:
        # spend before the first analysed day still carries over into it
        history = [s for d, s in zip(spend.dates, spend.spend) if d < dates[0]] or None
        try:
            co = carry_over(nss_series, window, spend_days, organic.total, engine=engine, history=history,
                            method=f"adstock ({method})")
        except (ValueError, np.linalg.LinAlgError) as exc:
            notes.append(f"carry-over model failed: {exc}")
        if co is not None:
            effects["adstock"] = co.effect

    # primary KPI
    kpi = plan.primary_kpi
    unit, log_scale = KPI_UNITS[kpi]
    kpi_effects: dict[str, EffectEstimate] = {}
    kpi_method = method
    kpi_series = nss_series
    competitor_kpi = y_c
    brand_kpi = y_b  # the brand's own series of the KPI (for the co-movement check)
    if kpi == "nss":
        kpi_effects = {k: v for k, v in effects.items() if k in ("its", "did")}
    elif kpi == "mentions":
        kpi_effects = dict(volume)
        kpi_series = v_did if method == "did" and v_did is not None else v_b
        brand_kpi = v_b
        competitor_kpi = _log(pooled.mentions, drop_vol) if pooled is not None else None
    elif kpi == "positive_mentions":
        p_b = _log(organic.positive, drop_vol)
        f = _safe_fit(p_b, window, engine, "positive mentions ITS", notes)
        if f is not None:
            kpi_effects["its"] = effect_from_fit(f, method="its", kpi=kpi, unit=unit, log_scale=True)
        kpi_series = brand_kpi = p_b
        if pooled is not None:
            p_c = _log(pooled.positive, drop_vol)
            competitor_kpi = p_c
            f = _safe_fit(p_b - p_c, window, engine, "positive mentions DiD", notes)
            if f is not None:
                kpi_effects["did"] = effect_from_fit(f, method="did", kpi=kpi, unit=unit, log_scale=True)
                if method == "did":
                    kpi_series = p_b - p_c
    elif kpi == "sov":
        kpi_method = "its"
        denom = organic.total + (pooled.total if pooled is not None else 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(denom > 0, 100 * organic.total / np.where(denom > 0, denom, 1), np.nan)
        s[drop_vol] = np.nan
        f = _safe_fit(s, window, engine, "share of voice ITS", notes)
        if f is not None:
            kpi_effects["its"] = effect_from_fit(f, method="its", kpi=kpi, unit=unit)
        kpi_series = s
        competitor_kpi = None
    elif kpi == "net_positive":
        if dnp is not None:
            kpi_effects[method] = dnp
    if kpi_method not in kpi_effects and kpi != "net_positive" and "its" in kpi_effects:
        kpi_method = "its"
    headline_effect = kpi_effects.get(kpi_method)

    # MDE (display unit of the KPI)
    mde = None
    if kpi == "net_positive":
        base = minimum_detectable_effect(nss_series, window)
        if base is not None:
            exp_t = float(organic.total[window.pre & (organic.total > 0)].mean()) * int(window.flight.sum()) / 100
            mde = Mde(base.se * exp_t, base.mde * exp_t, base.mde * exp_t, unit, base.phi, base.sigma2,
                      base.n_baseline_days)
    else:
        mde = minimum_detectable_effect(kpi_series, window, unit=unit, log_scale=log_scale)
    goal = plan.goal_value
    mde_warning = None
    if mde is not None and goal is not None and abs(goal) < mde.mde_display:
        mde_warning = mde_sentence(_fmt_kpi(mde.mde_display, kpi), _fmt_kpi(abs(goal), kpi, sign=plan.goal_direction))

    # diagnostics
    placebo = None
    if placebos and headline_effect is not None:
        p_series = nss_series if kpi == "net_positive" else kpi_series
        real = effects[method].delta if kpi == "net_positive" else headline_effect.delta
        placebo = placebo_test(p_series, window, real)
    disagreement = None
    if kpi in ("nss", "net_positive") and "its" in effects and "did" in effects:
        shift = _competitor_shift(y_c, window)
        disagreement = its_did_disagreement(effects["its"], effects["did"], shift, comovement(y_b, y_c, window))
    elif kpi in ("mentions", "positive_mentions") and "its" in kpi_effects and "did" in kpi_effects:
        shift = _competitor_shift(competitor_kpi, window, kpi=kpi, unit=unit, log_scale=True)
        disagreement = its_did_disagreement(kpi_effects["its"], kpi_effects["did"], shift,
                                            comovement(brand_kpi, competitor_kpi, window))
    mix = source_mix_shift(brand.by_source, window) if brand.by_source else None
    lb = headline_effect.fit.ljung_box_p if headline_effect is not None and headline_effect.fit else None

    verdict = decide_verdict(
        ci_low=headline_effect.ci_low if headline_effect else None,
        ci_high=headline_effect.ci_high if headline_effect else None,
        placebo_rank=placebo.rank if placebo else None,
        placebo_possible=placebo.possible if placebo else False,
        mde=mde.mde_display if mde else None, goal=goal,
        conflicting=bool(disagreement and disagreement.fired),
        # DiD nets a market-wide move out: it decides when it heads the report.
        market_wide=bool(disagreement and disagreement.market_wide and kpi_method == "did"),
    )

    efficiency = _efficiency(spend, plan, dnp)
    fit_notes = tuple(notes) + _fit_notes({**{f"NSS {k}": v for k, v in effects.items()},
                                           **{f"volume {k}": v for k, v in volume.items()},
                                           **{f"{kpi} {k}": v for k, v in kpi_effects.items()}})

    # descriptive windows
    brand_set_total = organic.total + (pooled.total if pooled is not None else 0.0)
    masks = {"baseline": window.pre, "flight": window.flight, "washout": window.washout, "post": window.post}
    windows = {k: window_metrics(organic, m, k, brand_set_total) for k, m in masks.items() if m.any()}
    if brand.tagged is not None:
        windows["flight_all_mentions"] = window_metrics(brand.everything(), window.flight, "flight_all_mentions")
    competitor_windows = {}
    for c in comps:
        competitor_windows[c.brand] = {k: window_metrics(c.organic, m, k, brand_set_total)
                                       for k, m in masks.items() if m.any()}
    if pooled is not None:
        competitor_windows["pooled competitors"] = {k: window_metrics(pooled, m, k, brand_set_total)
                                                    for k, m in masks.items() if m.any()}
    tagged = window_metrics(brand.tagged.aligned_to(dates), window.flight, "tagged_flight") \
        if brand.tagged is not None else None
    source_counts = {s: int(v.total.sum()) for s, v in sorted(brand.by_source.items())}

    # chart
    eff_t = np.zeros(len(dates))
    if method in effects:
        e = effects[method]
        eff_t[window.flight] = e.delta
        eff_t[window.washout] = e.washout_delta or 0.0
    daily = DailyView(
        dates=dates, nss=organic.nss(), nss_se=organic.nss_se(), counterfactual_nss=organic.nss() - eff_t,
        competitor_nss=pooled.nss() if pooled is not None else None, mentions=organic.mentions,
        tagged_mentions=brand.tagged.aligned_to(dates).mentions if brand.tagged is not None else None,
        spend=spend_days, coverage=gaps.coverage if gaps else None, flight=window.flight, washout=window.washout,
    )
    diagnostics = Diagnostics(placebo, lb, disagreement, mix, gaps, headline.pretrend, fit_notes)

    result = CampaignResult(
        campaign_id=plan.campaign_id, name=plan.name, brand=brand.brand,
        competitors=tuple(c.brand for c in comps), timezone=timezone, kpi=kpi,
        goal_direction=plan.goal_direction, goal_value=goal, flight_start=plan.flight_start,
        flight_end=plan.flight_end, washout_days=plan.washout_days, data_start=dates[0], data_end=dates[-1],
        windows=windows, competitor_windows=competitor_windows, tagged=tagged, source_counts=source_counts,
        effects=effects, volume=volume, kpi_effects=kpi_effects, headline=headline, kpi_method=kpi_method,
        headline_effect=headline_effect, carry_over=co, dnp=dnp,
        efficiency=efficiency, mde=mde, mde_warning=mde_warning, verdict=verdict.verdict,
        verdict_rule=verdict.rule, caveats=(), diagnostics=diagnostics, daily=daily,
        excluded_competitors=excluded, dropped_days=tuple(dropped_days),
    )
    return dataclasses.replace(result, caveats=tuple(write_caveats(result, plan, window)))


def _why_no_did(plan: CampaignPlan, competitors: Sequence[BrandDaily], excluded: Mapping[str, str]) -> str:
    """Why there are no competitors to difference against, naming them."""
    if excluded:
        named = "; ".join(f"{name}: {why}" for name, why in excluded.items())
        return f"no competitor has data in the analysis window ({named})"
    if plan.competitors:
        return f"no data was given for the plan's competitors ({', '.join(plan.competitors)})"
    return "the plan names no competitor and no other brand is tracked"


def _days_observed(y: np.ndarray, window: CampaignWindow) -> str:
    obs = np.isfinite(np.asarray(y, dtype=float)) & ~window.excluded
    return (f"{int((obs & window.baseline).sum())} baseline day(s) (at least {MIN_BASELINE_DAYS} needed) and "
            f"{int((obs & window.flight).sum())} flight day(s) have both brand and competitor mood")


def _safe_fit(y, window: CampaignWindow, engine: str, label: str, notes: list[str]):
    """``fit_its``, with a failure (rank-deficient design, too few days) noted, not raised."""
    try:
        return fit_its(y, window, engine=engine)
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"{label} model could not be fitted: {exc}")
        return None


def _competitor_shift(y_c, window, *, kpi="nss", unit="NSS points", log_scale=False) -> EffectEstimate | None:
    if y_c is None:
        return None
    try:
        f = fit_its(y_c, window, engine="exact")
    except (ValueError, np.linalg.LinAlgError):
        return None
    if f is None:
        return None
    return effect_from_fit(f, method="competitors", kpi=kpi, unit=unit, log_scale=log_scale)


def _efficiency(spend: DailySpend | None, plan: CampaignPlan, dnp: EffectEstimate | None) -> Efficiency:
    if spend is None:
        return Efficiency(0.0, "", None, None, None, None, "not estimable: no spend data")
    total = spend.total()
    reported = spend.reported_engagements()
    if reported is None:
        days: dict = {}
        eng = cpe = None
    else:
        # Over the days that reported only: blank days are unknown, so neither their
        # engagements nor their spend enter the ratio.
        eng = reported.engagements
        cpe = reported.spend / eng if eng else None
        days = {"engagement_days": reported.days_reported, "engagement_days_missing": reported.days_missing,
                 "engagement_spend": reported.spend}

    def result(cpinc=None, ci=None, status="estimated") -> Efficiency:
        return Efficiency(total, spend.currency, eng, cpe, cpinc, ci, status, **days)

    if dnp is None:
        return result(status="not estimable: no dNP estimate")
    if dnp.ci_low <= 0 <= dnp.ci_high:
        return result(status="not estimable: the CI of dNP includes 0")
    if dnp.ci_high < 0:
        return result(status="not estimable: net-positive conversations fell during the campaign")
    return result(total / dnp.delta, (total / dnp.ci_high, total / dnp.ci_low))


def _fit_notes(estimates: Mapping[str, EffectEstimate]) -> tuple[str, ...]:
    out = []
    for label, e in estimates.items():
        info: FitInfo | None = e.fit
        if info is None:
            continue
        if info.fallback:
            out.append(f"{label}: statsmodels ARIMA was not used ({info.fallback}); the estimate is the exact "
                       f"profile-likelihood maximum of the same model")
        for w in info.warnings:
            out.append(f"{label}: {w}")
    return tuple(dict.fromkeys(out))


def _fmt_kpi(value: float, kpi: str, sign: str | None = None) -> str:
    if sign is not None:
        value = abs(value) * (1 if sign == "increase" else -1)
        s = signed(value)
    else:
        s = f"{value:.1f}"
    return {
        "nss": f"{s} NSS points", "mentions": f"{s} % mentions", "positive_mentions": f"{s} % positive mentions",
        "sov": f"{s} share-of-voice points", "net_positive": f"{s} net-positive conversations",
    }[kpi]


# ----------------------------------------------------------------------------------
# Caveats
# ----------------------------------------------------------------------------------

def write_caveats(r: CampaignResult, plan: CampaignPlan, window: CampaignWindow) -> list[str]:
    """Sentences for the checks that fired, most important first."""
    out: list[str] = []
    h = r.headline_effect
    log_scale = KPI_UNITS[r.kpi][1]
    label = KPI_LABELS[r.kpi]
    d = r.diagnostics
    for day, why in r.dropped_days:
        out.append(f"{human_date(day)} is left out of the analysis as a partial day: {why}; only complete "
                   f"local days are analysed.")
    for name, why in r.excluded_competitors.items():
        out.append(f"Competitor {name} is left out of the pooled competitors: {why}.")
    if r.mde_warning:
        out.append(r.mde_warning)
    if h is None:
        out.append(f"No estimate of the effect on {label} could be made: too few days with data before or "
                   f"during the flight.")
    if r.kpi == "sov":
        out.append("Share of voice is already relative to the competitors, so its effect is estimated by ITS "
                   "on the daily share.")
    if r.headline.method == "its":
        out.append(f"The headline is the brand-only interrupted time series, not difference-in-differences: "
                   f"{r.headline.reason}. Anything else that moved the market during the flight is "
                   f"attributed to the campaign.")
    if d.disagreement is not None:
        dis = d.disagreement
        shift = dis.competitor_shift
        shift_txt = (describe_effect(shift.delta, shift.ci_low, shift.ci_high, "NSS points" if r.kpi in
                     ("nss", "net_positive") else shift.unit, log_scale=shift.lift is not None)
                     if shift is not None else "an unknown amount")
        together = ("before the flight the brand's and the competitors' daily figures moved together"
                    if dis.moved_together else
                    "before the flight the brand's and the competitors' daily figures did not clearly move together")
        if dis.comovement is not None:
            together += f" (correlation {dis.comovement:.2f}, p = {dis.comovement_p:.3f})"
        if dis.fired and r.verdict != CONFLICTING:
            out.append(f"ITS ({signed(dis.its)}) and DiD ({signed(dis.did)}) reach different conclusions because "
                       f"competitors moved by {shift_txt} during the flight, and {together}: a market-wide move. "
                       f"ITS counts it as campaign effect; DiD, which decides the verdict, nets it out.")
        elif dis.fired:
            if r.kpi_method != "did":
                why = f"DiD does not head the report ({r.headline.reason})"
            elif dis.moved_together:
                # Moved together before, but the brand's raw change did not follow the competitors'.
                why = (f"{together}, but the brand's own raw change (ITS) did not move significantly with the "
                       f"competitors', so their shift may be theirs alone and DiD would count it as the brand's")
            else:
                why = (f"{together}, so the competitors' shift may be theirs alone and DiD would count it as the "
                       f"brand's")
            out.append(f"ITS ({signed(dis.its)}) and DiD ({signed(dis.did)}) reach different conclusions, and "
                       f"competitors moved by {shift_txt} during the flight, so ITS counts a market move; {why}. "
                       f"No method's assumptions can be shown to hold: the verdict is 'conflicting'.")
        elif shift is not None and shift.significant:
            out.append(f"Competitors' {('NSS' if r.kpi in ('nss', 'net_positive') else label)} also moved by "
                       f"{shift_txt} during the flight (a market-wide change): the brand-only ITS "
                       f"({signed(dis.its)}) includes it, DiD ({signed(dis.did)}) removes it.")
    if h is not None and not h.excludes_zero:
        if log_scale and h.lift is not None:
            lo, hi = f"{100 * h.lift_ci_low:+.1f} %", f"{100 * h.lift_ci_high:+.1f} %"
        else:
            digits = 0 if r.kpi == "net_positive" else 1
            lo, hi = signed(h.ci_low, digits), signed(h.ci_high, digits)
            lo, hi = f"{lo} {h.unit}".strip(), f"{hi} {h.unit}"
        out.append(ci_includes_zero_sentence(label, lo, hi))
    if r.goal_value is not None and h is not None and h.excludes_zero:
        wanted = 1 if r.goal_direction == "increase" else -1
        if np.sign(h.delta) == -wanted:
            out.append(f"The effect on {label} is in the opposite direction to the plan's goal "
                       f"({r.goal_direction}).")
    if r.goal_value is None:
        mde = f" (the MDE is {r.mde.mde_display:.1f})" if r.mde else ""
        out.append(f"The plan has no goal value, so whether the design could detect a meaningful effect "
                   f"is not judged{mde}.")
    if r.mde is None and h is not None:
        out.append(f"The minimum detectable effect could not be computed: fewer than {MIN_BASELINE_DAYS} "
                   f"pre-flight days with data.")
    last_planned = plan.washout_end if plan.washout_days else plan.flight_end
    if r.data_end < last_planned:
        seen = int(window.flight.sum())
        stage = "flight" if r.data_end < plan.flight_end else "washout"
        out.append(f"The data end on {human_date(r.data_end)}, before the {stage} ends: the estimate covers "
                   f"{seen} of {plan.flight_days} flight days, and carry-over after the data is not counted.")
    if d.placebo is not None:
        p = d.placebo
        if not p.possible:
            fits = ("No window of the flight's length fits" if p.n_windows == 0 else
                    f"Only {p.n_windows} window of the flight's length fits" if p.n_windows == 1 else
                    f"Only {p.n_windows} windows of the flight's length fit")
            out.append(f"{fits} in the baseline, too few for a 5 % placebo check: the verdict rests on the "
                       f"CI alone.")
        elif p.fired and h is not None and h.excludes_zero:
            out.append(f"The CI excludes 0, but {p.exceeding} of {p.n_windows} baseline windows of the same "
                       f"length moved at least as much (placebo rank {p.rank:.0%} > 5 %): the effect is not "
                       f"distinguishable from the series' ordinary swings, so it is not counted as detected.")
    if d.ljung_box_p is not None and d.ljung_box_p < 0.05:
        out.append(f"The headline model's residuals are still autocorrelated (Ljung-Box p = "
                   f"{d.ljung_box_p:.3f}): the AR(1) error model misses some of the day-to-day dependence, "
                   f"and the CI may be too narrow.")
    if d.pretrend is not None and not d.pretrend.passed and d.pretrend.p_value is not None \
            and r.headline.method == "did":
        out.append(f"Brand-minus-competitor NSS had a trend before the flight ({d.pretrend.reason}).")
    if d.source_mix is not None and d.source_mix.fired:
        m = d.source_mix
        moved = max(m.flight_shares, key=lambda s: abs(m.flight_shares[s] - m.baseline_shares[s]))
        out.append(f"The source mix changed during the flight ({moved}: {m.baseline_shares[moved]:.0%} of "
                   f"mentions before, {m.flight_shares[moved]:.0%} during); at baseline moods the mix change "
                   f"alone moves NSS by {signed(m.mix_nss_shift)} points, which the estimate includes.")
    if d.gaps is not None and d.gaps.fired:
        g = d.gaps
        days = len({x[0] for x in g.gaps})
        where = ", ".join(f"{n} in the {w}" for n, w in ((g.in_baseline, "baseline"), (g.in_flight, "flight"),
                                                         (g.in_washout, "washout")) if n)
        out.append(f"Connectors delivered less data than expected on {days} day(s) ({where or 'outside the window'}); "
                   f"{int(g.excluded_all.sum())} day(s) under 50 % coverage were left out of every model and "
                   f"{int(g.excluded_volume.sum())} out of the volume models.")
    co = r.carry_over
    if co is not None and not co.identified:
        out.append("Carry-over (theta) is not identified: the likelihood is flat over 0-0.9, so the data cannot "
                   "tell an effect that stops with the spend from one that lingers.")
    eff = r.efficiency
    if eff.engagement_days_missing:
        missing = eff.engagement_days_missing
        shown = ", ".join(human_date(d) for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
        out.append(f"The ad platform reported engagements on {eff.engagement_days} of "
                   f"{eff.engagement_days + len(missing)} days with spend (blank, i.e. unknown, on {shown}): "
                   f"the cost per engagement is the spend of the {eff.engagement_days} reporting days over "
                   f"their engagements.")
    if eff.cpinc is None and eff.spend > 0:
        out.append(f"Cost per incremental net-positive conversation is {eff.cpinc_status}.")
    if r.tagged is not None and r.tagged.total > 0:
        out.append(f"{r.tagged.total} campaign-tagged mentions during the flight are counted apart; the "
                   f"headline is organic mentions only.")
    out.extend(d.fit_notes)
    return out


def analyse_campaigns(plans: Sequence[CampaignPlan], brands: Mapping[str, BrandDaily],
                      spend: Mapping[str, DailySpend], *, coverage: Sequence[Coverage] = (),
                      timezone: str | None = None, engine: str = "arima") -> list[CampaignResult]:
    """Analyse every plan. A plan's competitors are its ``competitors`` (every other
    brand when empty); the brand's other campaigns are left out of each baseline."""
    by_key = {k.casefold(): v for k, v in brands.items()}
    out = []
    for plan in plans:
        brand = by_key.get(plan.brand.casefold())
        if brand is None:
            raise ValueError(f"campaign {plan.campaign_id}: no data for brand {plan.brand}")
        names = plan.competitors or tuple(b.brand for k, b in by_key.items() if k != plan.brand.casefold())
        comps = []
        for name in names:
            c = by_key.get(name.casefold())
            if c is None:
                raise ValueError(f"campaign {plan.campaign_id}: no data for competitor {name}")
            comps.append(c)
        others = [(p.flight_start, p.washout_end) for p in plans
                  if p.brand.casefold() == plan.brand.casefold() and p.campaign_id != plan.campaign_id]
        out.append(analyse_campaign(plan, brand, comps, spend.get(plan.campaign_id), coverage=coverage,
                                    other_flights=others, timezone=timezone, engine=engine))
    return out
