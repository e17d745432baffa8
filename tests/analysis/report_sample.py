"""The sample campaign report the renderer tests share, built as the typed ``Report``.

The simulator's "carry_over" scenario run through ``analyse_campaign`` (the exact
likelihood engine, for speed), with a hostile campaign name, source name and brand note,
and a 48-hour monitor holding one stored alert. ``with_texts``
swaps its free-text strings for others, wherever they occur.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone

import numpy as np

from analysis.roi import analyse_campaign
from analysis.roi.report import Monitor, Report, ReportAlert
from analysis.roi.simulate import scenario, simulate

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_NAME = (HOSTILE_SCRIPT + ' "quotes" & <b>tags</b> \u05de\u05d1\u05e6\u05e2 \u0627\u0644\u0642\u0647\u0648\u0629 '
                "\u2615\U0001F680 | Bright Mornings")
BAD_SOURCE = "bluesky <img src=x onerror=alert(2)>"
GENERATED = datetime(2026, 11, 22, 19, 0, 12, 345678, tzinfo=timezone.utc)  # microseconds, as now() has them


@functools.cache
def sample_report() -> Report:
    """The sample (built once per process; the report is immutable)."""
    sc = scenario("carry_over", campaign_name=HOSTILE_NAME, start=date(2026, 8, 24), gap_days=(12,))
    sim = simulate(sc, 0)
    spend = dataclasses.replace(sim.spend, engagements=np.where(sim.spend.spend > 0,
                                                                 np.round(sim.spend.spend * 0.9), 0.0))
    result = analyse_campaign(sim.plan, sim.brand, sim.competitors, spend, coverage=sim.coverage,
                              timezone=sc.timezone, engine="exact")
    dip = datetime(2026, 11, 21, 9, tzinfo=timezone.utc)
    alert = ReportAlert(7, "mood", "dip", dip, dip + timedelta(hours=5),
                        "Brewly: mood dip at 2026-11-21 09:00 UTC: NSS -4.0 over the last 3 h against +15.2 in the "
                        "baseline (-19.2 points)")
    return Report(
        title="Brewly: campaign mood report",
        generated_at=GENERATED,
        brand="Brewly", competitors=("Beanhaus", "Kettle & Co"), timezone="America/New_York",
        window=(result.daily.dates[0], result.daily.dates[-1]),
        freshness={"x": "2026-11-22T18:59:00.123456+00:00", "reddit": "2026-11-22T18:41:00+00:00",
                   "bluesky": "2026-11-22T18:57:00+00:00", BAD_SOURCE: "2026-11-22T17:02:00+00:00"},
        source_counts={**result.source_counts, BAD_SOURCE: 12},
        unscored=0, duplicates=2900, scored_by={},
        campaigns=(result,),
        monitor=Monitor("Brewly", GENERATED - timedelta(hours=48), GENERATED,
                        datetime(2026, 11, 22, 17, tzinfo=timezone.utc), (alert,)),
        notes=("NSS = 100 (P - N) / T over scored organic mentions; duplicates and unscored mentions count "
               "in volume only.",
               'Brand note: "quotes" & <b>tags</b> <script>alert(1)</script> \u05e2\u05d1\u05e8\u05d9\u05ea '
               "\U0001F600"),
    )


def with_texts(value, replacements: Mapping[str, str]):
    """``value`` (the report, or any part of it) with each string in ``replacements``
    replaced wherever it occurs, mapping keys included; arrays and numbers as they were."""
    if isinstance(value, str):
        return replacements.get(value, value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: with_texts(getattr(value, f.name), replacements)
                                             for f in dataclasses.fields(value) if f.init})
    if isinstance(value, Mapping):
        return {with_texts(k, replacements): with_texts(v, replacements) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(with_texts(v, replacements) for v in value)
    return value
