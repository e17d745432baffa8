"""The campaign report as a typed model: what ``listener report`` builds, the renderers
read and report.json holds.

``Report`` -> ``CampaignResult`` (one per analysed campaign, analysis.roi.campaign),
``CampaignCare`` (its brand's care figures and engagement goals over its window),
``Monitor`` (the last 48 hours' EWMA chart) and ``ScoredBy`` (which scorers produced
each brand's mood figures). The renderers (analysis.report_render, analysis.report_charts)
read these objects; ``Report.to_json()`` is the one place report.json's dict is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import numpy as np

from analysis.care import CareFigures
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

    @property
    def shown_hours(self) -> tuple[datetime, ...]:
        """The recent hours, the ones the report shows."""
        return tuple(h for h, shown in zip(self.hours, self.recent) if shown)

    @property
    def nss(self) -> np.ndarray:
        """Hourly NSS of the shown hours (NaN: no scored mention)."""
        return self.result.nss[self.recent]

    @property
    def ewma(self) -> np.ndarray:
        return self.result.ewma[self.recent]

    @property
    def alarm_hours(self) -> tuple[datetime, ...]:
        """Shown hours whose EWMA is outside the control limits."""
        return tuple(h for h, a, shown in zip(self.hours, self.result.alarm, self.recent) if shown and a != 0)

    def to_json(self) -> dict[str, Any]:
        r, keep = self.result, self.recent
        return {
            "hours": [h.isoformat() for h in self.shown_hours],
            "nss": _rounded(self.nss, 2),
            "z": _rounded(r.z[keep], 3),
            "ewma": [round(float(v), 3) for v in self.ewma],
            "limit": round(float(r.limit), 3),
            "alarms": [h.isoformat() for h in self.alarm_hours],
            "baseline_nss": round(float(r.baseline_nss), 2),
        }


@dataclass(frozen=True)
class ScoredBy:
    """Which scorer(s) produced one brand's mood figures: ``text`` the sentence the
    report prints, ``figures`` the provenance as report.json holds it (scorers with their
    shares, manual labels, re-scoring progress; ``listener.formatting.provenance_json``)."""

    text: str
    figures: Mapping[str, Any]


@dataclass(frozen=True)
class CampaignCare:
    """The "Conversations" of one campaign: its brand's care figures for threads opened
    in the campaign's effect window (flight and washout, account-local days), and its
    progress against the brand's engagement goals (analysis.care)."""

    campaign_id: str
    figures: CareFigures

    def to_json(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, **self.figures.to_json()}


@dataclass(frozen=True, eq=False)
class Report:
    """One report: the headline brand and its competitors, the data's freshness, one
    ``CampaignResult`` per analysed campaign, the monitor and the notes (campaigns not
    analysed, days left out, assumptions). ``window`` is the headline brand's data span
    (UTC dates); ``freshness`` the latest mention per source (ISO 8601, UTC);
    ``scored_by`` which scorer(s) each brand's mood figures come from."""

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
    scored_by: Mapping[str, ScoredBy]
    campaigns: tuple[CampaignResult, ...]
    monitor: Monitor | None
    notes: tuple[str, ...]
    conversations: tuple[CampaignCare, ...] = ()

    def care_of(self, campaign_id: str) -> CareFigures | None:
        """The care figures of campaign ``campaign_id``'s window, if the report has them."""
        return next((c.figures for c in self.conversations if c.campaign_id == campaign_id), None)

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
            "scored_by": {brand: dict(s.figures) for brand, s in self.scored_by.items()},
            "campaigns": [c.to_dict() for c in self.campaigns],
            "monitor": None if self.monitor is None else self.monitor.to_json(),
            "notes": list(self.notes),
            "conversations": [c.to_json() for c in self.conversations],
        }
