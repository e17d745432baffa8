"""The campaign report as a typed model: what ``listener report`` builds, the renderers
read and report.json holds.

``Report`` -> ``CampaignResult`` (one per analysed campaign, analysis.roi.campaign),
``CampaignCare`` (its brand's care figures and engagement goals over its window),
``Monitor`` (the last 48 hours' stored alerts) and ``ScoredBy`` (which scorers produced
each brand's mood figures). The renderers (analysis.report_render, analysis.report_charts)
read these objects; ``Report.to_json()`` is the one place report.json's dict is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from analysis.care import CareFigures
from analysis.roi.campaign import CampaignResult


@dataclass(frozen=True)
class ReportAlert:
    """One stored alert (storage.alerts): the same record ``listener alerts`` and the live
    view show. ``hour`` and ``closed_at`` tz-aware UTC; ``closed_at`` None while open."""

    alert_id: int
    metric: str
    direction: str
    hour: datetime
    closed_at: datetime | None
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "metric": self.metric, "direction": self.direction,
                "hour": self.hour.isoformat(), "open": self.closed_at is None,
                "closed_at": None if self.closed_at is None else self.closed_at.isoformat(), "summary": self.summary}


@dataclass(frozen=True)
class Monitor:
    """The last hours of ``brand``: the alerts the hourly stage stored for hours in
    [``start``, ``end``) (analysis.alerts' rule; one notion of alarm with ``listener
    alerts`` and the live view), and ``evaluated_through``, the last hour that stage has
    evaluated (None: never, so "no alert" would mean nothing)."""

    brand: str
    start: datetime
    end: datetime
    evaluated_through: datetime | None
    alerts: tuple[ReportAlert, ...]

    def to_json(self) -> dict[str, Any]:
        return {"brand": self.brand, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "evaluated_through": None if self.evaluated_through is None else self.evaluated_through.isoformat(),
                "alerts": [a.to_json() for a in self.alerts]}


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
