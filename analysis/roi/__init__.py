"""Campaign mood-ROI statistics: did the spend move how people feel, and what did each
extra good conversation cost? The method is docs/roi-method.md; everything here is a pure
function of daily counts (no database, no I/O).

Modules:

* ``daily``: inputs (``DailySeries``, ``BrandDaily``, ``DailySpend``, ``CampaignPlan``,
  ``Coverage``), the plan laid on the calendar (``CampaignWindow``), aggregation into
  account-local days and the descriptive metrics (NSS and SE, opinion rate, share of
  voice, engagement-weighted NSS);
* ``models``: regression with AR(1) errors by ML (statsmodels ARIMA, and an exact
  profile-likelihood engine for the many small fits), fallbacks, Ljung-Box;
* ``effects``: ITS/DiD effects, naive difference, pre-trend check, MDE, dNP;
* ``adstock``: carry-over (normalised geometric adstock, theta profiled on 0..0.9);
* ``diagnostics``: placebo windows, ITS-vs-DiD, source mix, connector gaps;
* ``verdict``: the four verdicts, caveat wording and the report's date and time format;
* ``campaign``: ``analyse_campaign`` / ``analyse_campaigns`` -> ``CampaignResult``;
* ``report``: the typed report (``Report``, ``Monitor``: the last 48 hours' stored alerts,
  the alert rule's, not one of its own; ``ScoredBy``) the renderers read
  and report.json is made from (``Report.to_json``);
* ``simulate``: a seeded market with a known campaign effect: the demo world
  (``demo.world``) drawn at count level; its spend file is the demo's export of it.
"""

from analysis.campaign_plan import CampaignPlan
from analysis.roi.adstock import CarryOver, adstock, carry_over, half_life
from analysis.roi.campaign import (
    CampaignResult,
    DailyView,
    Diagnostics,
    Efficiency,
    Headline,
    analyse_campaign,
    analyse_campaigns,
)
from analysis.roi.daily import (
    BrandDaily,
    CampaignWindow,
    CompleteDays,
    Coverage,
    DailySeries,
    DailySpend,
    WindowMetrics,
    complete_days,
    daily_from_buckets,
    daily_from_hourly,
    daily_from_mentions,
    local_date,
    pool,
    share_of_voice,
    window_metrics,
)
from analysis.roi.diagnostics import Disagreement, GapCheck, Placebo, SourceMix
from analysis.roi.effects import EffectEstimate, Mde, PreTrend, estimate_its, minimum_detectable_effect
from analysis.roi.models import AR1Fit, FitInfo, fit_ar1
from analysis.roi.verdict import VERDICTS, decide_verdict

__all__ = [
    "AR1Fit", "BrandDaily", "CampaignPlan", "CampaignResult", "CampaignWindow", "CarryOver", "CompleteDays", "Coverage",
    "DailySeries", "DailySpend", "DailyView", "Diagnostics", "Disagreement", "Efficiency", "EffectEstimate",
    "FitInfo", "GapCheck", "Headline", "Mde", "Placebo", "PreTrend", "SourceMix", "VERDICTS",
    "WindowMetrics", "adstock", "analyse_campaign", "analyse_campaigns", "carry_over", "complete_days",
    "daily_from_buckets", "daily_from_hourly",
    "daily_from_mentions", "decide_verdict", "estimate_its", "fit_ar1",
    "half_life", "local_date", "minimum_detectable_effect", "pool", "share_of_voice", "window_metrics",
]
