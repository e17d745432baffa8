"""The campaign plan: one pre-registered campaign, the one model every layer passes.

The plan file reader (``inputs.plan``) builds it, ``storage.campaigns`` saves it
and ``storage.report_data.plans`` loads it back, ``analysis.roi`` analyses it and the
simulator makes it. Its rules live in ``plan_problems`` alone: the constructor raises
on them, and the file reader reports them per cell with the file's row and column.

Stdlib only on purpose: the plan reader and storage import it without pulling in the
statistics stack of ``analysis.roi``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from analysis.care_goals import goal_problems, goal_targets

__all__ = ["DIRECTIONS", "FIRST_DAY", "KPIS", "LAST_DAY", "MAX_WASHOUT_DAYS", "CampaignPlan", "Lineage",
           "plan_problems"]

KPIS = ("nss", "positive_mentions", "net_positive", "sov", "mentions")
DIRECTIONS = ("increase", "decrease")
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)
"""The range of flight dates."""
MAX_WASHOUT_DAYS = 3650
TAG = re.compile(r"[#@][^\s#@;,]+")
"""One campaign tag: a #hashtag or an @handle."""


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a value came from: the file's name, the sha256 of its bytes, and the
    1-based line on which the row starts."""

    file: str
    sha256: str
    row: int


def plan_problems(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every rule a plan breaks, as (field, message). Fields absent from ``values`` (a
    cell the reader could not convert) are skipped, so a reader can report the rest."""
    problems: list[tuple[str, str]] = []
    for name in ("flight_start", "flight_end"):
        day = values.get(name)
        # The report counts days around the flight (baseline before, washout after): near
        # year 1 or 9999 that arithmetic would leave the calendar.
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            problems.append((name, f"{day.isoformat()} is out of range (a flight date is from {FIRST_DAY} "
                                   f"to {LAST_DAY})"))
    washout = values.get("washout_days")
    if washout is not None and washout < 0:
        problems.append(("washout_days", f"must be >= 0, got {washout}"))
    elif washout is not None and washout > MAX_WASHOUT_DAYS:
        problems.append(("washout_days", f"must be at most {MAX_WASHOUT_DAYS}, got {washout}"))
    for name, options in (("primary_kpi", KPIS), ("goal_direction", DIRECTIONS)):
        if name in values and values[name] not in options:
            problems.append((name, f"{values[name]!r} is not one of {', '.join(options)}"))
    goal = values.get("goal_value")
    if goal is not None and not math.isfinite(goal):
        problems.append(("goal_value", f"not a number: {goal!r}"))
    elif goal is not None and goal <= 0:
        problems.append(("goal_value", f"must be > 0, got {goal:g}: the goal is a magnitude, and "
                                       "goal_direction says whether it is an increase or a decrease"))
    bad = [tag for tag in values.get("campaign_tags", ()) if not TAG.fullmatch(tag)]
    if bad:
        problems.append(("campaign_tags", f"{', '.join(repr(b) for b in bad)}: each tag must be one #hashtag "
                                          "or @handle (no spaces; separate tags with ';')"))
    zone = values.get("account_timezone")
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder, a long name
            problems.append(("account_timezone", f"unknown time zone {zone!r} (expected an IANA name like "
                                                 "America/New_York)"))
    start, end = values.get("flight_start"), values.get("flight_end")
    if start is not None and end is not None and end < start:
        problems.append(("flight_end", f"flight_end {end} is before flight_start {start}"))
    for goal, message in goal_problems(dict(values.get("care_goals") or {})):
        problems.append(("care_goals", f"{goal}: {message}"))
    brand = values.get("brand")
    if brand is not None and any(c.casefold() == brand.casefold() for c in values.get("competitors", ())):
        problems.append(("competitors", f"the brand {brand!r} is listed among its own competitors"))
    return problems


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    """A pre-registered campaign (a plan file's row; see ``inputs.plan``).

    ``flight_end`` is inclusive; the ``washout_days`` days after it get their own
    indicator (carry-over), so they are neither flight nor baseline. ``goal_value`` is a
    magnitude > 0 in the KPI's unit: NSS points for ``nss``; percent lift for
    ``mentions`` and ``positive_mentions``; incremental net-positive conversations over
    the effect window for ``net_positive``; share-of-voice points for ``sov``;
    ``goal_direction`` gives its sign (``signed_goal``). A plan file always states a
    goal; None (no goal) is for analyses built in code. ``name`` is the ad platform's
    display name of the campaign, taken from the spend file (not a plan column), ""
    when unknown. ``care_goals`` are the campaign's engagement goals over its effect
    window, (goal, target) in analysis.care_goals.GOALS order (a mapping is accepted),
    overriding the brand's config for the goals it sets. ``lineage`` is the plan file's
    row, None for a plan built in code."""

    campaign_id: str
    brand: str
    flight_start: date
    flight_end: date
    washout_days: int = 7
    primary_kpi: str = "nss"
    goal_direction: str = "increase"
    goal_value: float | None = None
    competitors: tuple[str, ...] = ()
    campaign_tags: tuple[str, ...] = ()
    account_timezone: str | None = None
    name: str = ""
    lineage: Lineage | None = None
    care_goals: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "competitors", tuple(self.competitors))
        object.__setattr__(self, "campaign_tags", tuple(self.campaign_tags))
        values = {field: getattr(self, field) for field in self.__slots__}
        problems = plan_problems(values)
        if problems:
            raise ValueError(f"campaign {self.campaign_id}: "
                             + "; ".join(f"{field}: {message}" for field, message in problems))
        object.__setattr__(self, "care_goals", goal_targets(dict(self.care_goals)))

    @property
    def flight_days(self) -> int:
        return (self.flight_end - self.flight_start).days + 1

    @property
    def washout_end(self) -> date:
        """Last date of the effect window (flight plus washout)."""
        return self.flight_end + timedelta(days=self.washout_days)

    def effect_bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The effect window (flight and washout) as UTC instants [start, end): whole days in ``tz``."""
        start = datetime.combine(self.flight_start, time(), tz)
        end = datetime.combine(self.washout_end + timedelta(days=1), time(), tz)
        return start.astimezone(timezone.utc), end.astimezone(timezone.utc)

    @property
    def signed_goal(self) -> float | None:
        """The goal as a signed change: negative for ``decrease``; None without a goal."""
        if self.goal_value is None:
            return None
        return self.goal_value if self.goal_direction == "increase" else -self.goal_value
