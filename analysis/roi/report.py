"""The campaign report as a typed model: what ``listener report`` builds and report.json holds.

``Report`` -> ``CampaignResult`` (one per analysed campaign, analysis.roi.campaign) and
``Monitor`` (the last 48 hours' EWMA chart). ``to_json()`` is the report.json dict; its
keys and rounding are those the renderers (analysis.report_render) read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import numpy as np

from analysis.roi.campaign import CampaignResult
from analysis.roi.monitor import EwmaMonitor


def _rounded(values: np.ndarray, digits: int) -> list[float | None]:
    return [None if np.isnan(v) else round(float(v), digits) for v in values]


@dataclass(frozen=True, eq=False)
class Monitor:
    """The EWMA monitor over the recent hours (``hours``, tz-aware UTC) of ``result``,
    which also covers the baseline hours before them (``recent`` marks the shown ones)."""

    hours: tuple[datetime, ...]
    recent: np.ndarray
    result: EwmaMonitor

    def to_json(self) -> dict[str, Any]:
        r, keep = self.result, self.recent
        return {
            "hours": [h.isoformat() for h, shown in zip(self.hours, keep) if shown],
            "nss": _rounded(r.nss[keep], 2),
            "z": _rounded(r.z[keep], 3),
            "ewma": [round(float(v), 3) for v in r.ewma[keep]],
            "limit": round(float(r.limit), 3),
            "alarms": [h.isoformat() for h, a, shown in zip(self.hours, r.alarm, keep) if shown and a != 0],
            "baseline_nss": round(float(r.baseline_nss), 2),
        }


@dataclass(frozen=True, eq=False)
class Report:
    """One report: the headline brand and its competitors, the data's freshness, one
    ``CampaignResult`` per analysed campaign, the monitor and the notes (campaigns not
    analysed, days left out, assumptions). ``window`` is the headline brand's data span
    (UTC dates); ``scored_by`` which scorer(s) each brand's mood figures come from."""

    title: str
    generated_at: datetime
    brand: str
    competitors: tuple[str, ...]
    timezone: str
    window: tuple[date, date] | None
    freshness: Mapping[str, str]
    source_counts: Mapping[str, int]
    unscored: int
    duplicates: int
    scored_by: Mapping[str, Mapping[str, Any]]
    campaigns: tuple[CampaignResult, ...]
    monitor: Monitor | None
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The report.json dict (ISO dates, NaN as None)."""
        return {
            "title": self.title,
            "generated_at": self.generated_at.astimezone(timezone.utc).isoformat(),
            "brand": self.brand,
            "competitors": list(self.competitors),
            "timezone": self.timezone,
            "window": None if self.window is None else {"start": self.window[0].isoformat(),
                                                        "end": self.window[1].isoformat()},
            "freshness": dict(self.freshness),
            "source_counts": dict(self.source_counts),
            "unscored": self.unscored,
            "duplicates": self.duplicates,
            "scored_by": dict(self.scored_by),
            "campaigns": [c.to_dict() for c in self.campaigns],
            "monitor": None if self.monitor is None else self.monitor.to_json(),
            "notes": list(self.notes),
        }
