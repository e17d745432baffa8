"""Engagement goals (issue 15 item 4): what a brand's config (``care_goals``) or a
campaign plan (its ``care_goals`` column or key) may set, and the one check of a goal's
target, so both are validated alike. analysis.care measures progress against them.

Stdlib only on purpose: analysis.campaign_plan, the config and the plan reader import it
without the statistics stack of analysis.care.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["GOALS", "goal_problems", "goal_targets", "parse_goals"]

# name -> (what it measures, whether higher is better, the range a target may take).
GOALS: dict[str, tuple[str, bool, float, float]] = {
    "response_rate": ("share of threads needing a reply that the brand answered", True, 0.0, 1.0),
    "reply_hours": ("median time to first reply, hours", False, 0.0, 24.0 * 30),
    "resolved_share": ("share of threads opened negative that ended positive or neutral", True, 0.0, 1.0),
    "net_positive_per_1000": ("net-positive conversations (positive - negative mentions) per 1,000 mentions",
                              True, -1000.0, 1000.0),
}

_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)")


def goal_problems(goals: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every goal that is unknown or whose target is not a number in its range, as (goal,
    message)."""
    problems = [(key, f"unknown key (expected one of: {', '.join(sorted(GOALS))})") for key in goals
                if key not in GOALS]
    for name, (_what, _better, low, high) in GOALS.items():
        if name not in goals:
            continue
        value = goals[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append((name, f"must be a number, got {value!r}"))
        elif not low <= value <= high:
            problems.append((name, f"must be between {low:g} and {high:g}, got {value:g}"))
    return problems


def goal_targets(goals: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
    """The valid goals of ``goals`` as (name, target), in GOALS order."""
    bad = {name for name, _ in goal_problems(goals)}
    return tuple((name, float(goals[name])) for name in GOALS if name in goals and name not in bad)


def parse_goals(text: str) -> dict[str, Any]:
    """A plan cell ``"response_rate=0.6; reply_hours=2"`` as {goal: target}; targets that
    are not numbers stay text, for goal_problems to name. ValueError: not name=value, or a
    goal given twice."""
    goals: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not name:
            raise ValueError(f"{part!r} is not goal=target (e.g. response_rate=0.6; reply_hours=2)")
        if name in goals:
            raise ValueError(f"the goal {name} is given twice")
        goals[name] = float(value) if _NUMBER.fullmatch(value) else value
    return goals
