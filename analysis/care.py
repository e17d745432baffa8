"""Customer care, per brand and period: how the brand answers the threads that need it.

A thread (source, conversation_id, brand) opens with its first customer post, a post not
by one of the brand's own accounts (``Mention.own``). storage.care reads each thread's
facts from the view ``care_threads``; this module turns them into the figures a care lead
reads (docs/care.md):

* **needs a reply**: the opening is negative or question-like (it asks: a '?' or an
  English question or request phrase, ``storage.views.QUESTION_PATTERN``): the view's
  ``needs_reply``, as is ``resolved`` below (the rules' one home);
* **response rate**: the share of those threads with a brand post after the opening,
  with its 95 % Wilson interval;
* **time to first reply**: median and 90th percentile over the answered threads, in
  business hours when the brand's config gives them (``business_hours``), else
  wall-clock hours. The median of an even count is the mean of the middle two; the 90th
  percentile is the nearest rank (the smallest time at least 90 % of replies beat or
  equal), so both can be checked by hand;
* **resolved**: of the threads that opened negative, those whose last labelled customer
  post is positive or neutral.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from analysis.agreement import wilson_interval
from analysis.care_goals import GOALS
from analysis.mood import net_sentiment, net_sentiment_se
from analysis.reply_effect import MIN_PER_SIDE, ReplyEffect

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_FORM = re.compile(r"(?P<days>\S+)\s+(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})\s+(?P<tz>\S+)")
EXAMPLE_HOURS = "Mon-Fri 09:00-18:00 Europe/Berlin"


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """When the care team works: the weekdays (0 = Monday), one daily span in the local
    time of ``timezone`` (an IANA name), start before end."""

    weekdays: frozenset[int]
    start: time
    end: time
    timezone: str

    def __str__(self) -> str:
        days = ",".join(_DAYS[d].title() for d in sorted(self.weekdays))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Business seconds from ``start`` to ``end`` (tz-aware): the working time the
        team had to answer. Daylight-saving changes follow the zone."""
        if end <= start:
            return 0.0
        zone = ZoneInfo(self.timezone)
        day = start.astimezone(zone).date()
        last = end.astimezone(zone).date()
        total = 0.0
        while day <= last:
            if day.weekday() in self.weekdays:
                opens = datetime.combine(day, self.start, tzinfo=zone)
                closes = datetime.combine(day, self.end, tzinfo=zone)
                overlap = (min(end, closes) - max(start, opens)).total_seconds()
                total += max(0.0, overlap)
            day += timedelta(days=1)
        return total

    def next_open(self, moment: datetime) -> datetime:
        """``moment`` when the team is at work then, else when it next opens (tz-aware)."""
        zone = ZoneInfo(self.timezone)
        day = moment.astimezone(zone).date()
        for _ in range(8):  # some weekday is a working day within a week
            if day.weekday() in self.weekdays:
                opens = datetime.combine(day, self.start, tzinfo=zone)
                closes = datetime.combine(day, self.end, tzinfo=zone)
                if moment < closes:
                    return max(moment, opens)
            day += timedelta(days=1)
        raise ValueError(f"{self} has no working day")


def parse_business_hours(text: str) -> BusinessHours:
    """``"Mon-Fri 09:00-18:00 Europe/Berlin"`` (days: a range or a comma list of Mon..Sun);
    ValueError saying what is wrong."""
    match = _HOURS_FORM.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} must look like {EXAMPLE_HOURS!r} (days, HH:MM-HH:MM, a time zone)")
    weekdays: set[int] = set()
    for part in match["days"].casefold().split(","):
        first, _, second = part.partition("-")
        if first not in _DAYS or (second and second not in _DAYS):
            raise ValueError(f"{text!r}: {part!r} is not a day or a range of days like Mon-Fri")
        lo, hi = _DAYS.index(first), _DAYS.index(second or first)
        if hi < lo:
            raise ValueError(f"{text!r}: the day range {part!r} runs backwards")
        weekdays.update(range(lo, hi + 1))
    try:
        start, end = (time.fromisoformat(match[key].zfill(5)) for key in ("start", "end"))
    except ValueError:
        raise ValueError(f"{text!r}: hours must be HH:MM between 00:00 and 23:59") from None
    if end <= start:
        raise ValueError(f"{text!r}: the working day must end after it starts")
    try:
        ZoneInfo(match["tz"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r}: {match['tz']!r} is not a time zone name like Europe/Berlin") from None
    return BusinessHours(frozenset(weekdays), start, end, match["tz"])


@dataclass(frozen=True, slots=True)
class CareThread:
    """One thread's care facts (a row of the view ``care_threads``), times tz-aware UTC.
    ``needs_reply`` and ``resolved`` are the view's: the care rules live there alone
    (storage.views), so what an analyst queries and what this module counts agree."""

    source: str
    conversation_id: str
    brand: str
    opened_at: datetime
    opening_label: str | None
    opening_question: bool
    needs_reply: bool
    customer_posts: int
    brand_posts: int
    first_reply_at: datetime | None
    last_customer_label: str | None
    resolved: bool
    url: str | None = None

    @property
    def answered(self) -> bool:
        return self.first_reply_at is not None

    @property
    def started_negative(self) -> bool:
        return self.opening_label == "negative"


@dataclass(frozen=True, slots=True)
class CareSummary:
    brand: str
    start: datetime
    end: datetime
    threads: int
    needing_reply: int
    answered: int
    response_rate: float | None
    response_rate_ci: tuple[float, float] | None
    reply_hours_median: float | None
    reply_hours_p90: float | None
    business_hours: str | None  # the hours counted (BusinessHours); None: wall-clock hours
    started_negative: int
    resolved: int
    resolved_share: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "brand": self.brand, "start": self.start.isoformat(), "end": self.end.isoformat(),
            "threads": self.threads, "needing_reply": self.needing_reply, "answered": self.answered,
            "response_rate": self.response_rate,
            "response_rate_ci": list(self.response_rate_ci) if self.response_rate_ci else None,
            "reply_hours_median": self.reply_hours_median, "reply_hours_p90": self.reply_hours_p90,
            "business_hours": self.business_hours,
            "started_negative": self.started_negative, "resolved": self.resolved,
            "resolved_share": self.resolved_share,
        }


def nearest_rank(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``fraction`` of the
    values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def reply_seconds(thread: CareThread, hours: BusinessHours | None) -> float | None:
    """Time from the opening to the brand's first reply: business seconds with ``hours``."""
    if thread.first_reply_at is None:
        return None
    if hours is None:
        return (thread.first_reply_at - thread.opened_at).total_seconds()
    return hours.seconds_between(thread.opened_at, thread.first_reply_at)


def reply_hours(threads: Sequence[CareThread], hours: BusinessHours | None = None) -> list[float]:
    """Hours to the first reply of each answered thread that needed one."""
    return [s / 3600 for t in threads if t.needs_reply and (s := reply_seconds(t, hours)) is not None]


def summarize(brand: str, start: datetime, end: datetime, threads: Sequence[CareThread],
              hours: BusinessHours | None = None) -> CareSummary:
    """The care figures of ``threads`` (those opened in [start, end)); see the module docstring."""
    needing = [t for t in threads if t.needs_reply]
    answered = [t for t in needing if t.answered]
    waits = reply_hours(threads, hours)
    negative = [t for t in threads if t.started_negative]
    resolved = [t for t in negative if t.resolved]
    return CareSummary(
        brand=brand, start=start, end=end, threads=len(threads), needing_reply=len(needing),
        answered=len(answered),
        response_rate=len(answered) / len(needing) if needing else None,
        response_rate_ci=wilson_interval(len(answered), len(needing)),
        reply_hours_median=statistics.median(waits) if waits else None,
        reply_hours_p90=nearest_rank(waits, 0.9),
        business_hours=None if hours is None else str(hours),
        started_negative=len(negative), resolved=len(resolved),
        resolved_share=len(resolved) / len(negative) if negative else None,
    )


# -- engagement goals (issue 15 item 4) ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GoalProgress:
    """A goal against its figure and 95 % interval: ``verdict`` is "met" when the whole
    interval is on the goal's side, "missed" when the whole interval is on the other
    side, else "not yet clear" (None: no figure yet). ``set_by``: "config" (the brand's
    care_goals) or "plan" (the campaign plan's, over the campaign's window)."""

    goal: str
    target: float
    value: float | None
    ci: tuple[float, float] | None
    verdict: str | None
    set_by: str = "config"

    def to_json(self) -> dict[str, object]:
        return {"goal": self.goal, "target": self.target, "value": self.value,
                "ci95": list(self.ci) if self.ci else None, "verdict": self.verdict, "set_by": self.set_by}


Goal = tuple[str, float] | tuple[str, float, str]
"""A goal and its target, optionally who set it ("config" when not said)."""


def campaign_goals(plan: Sequence[tuple[str, float]], config: Sequence[tuple[str, float]]
                   ) -> tuple[tuple[str, float, str], ...]:
    """A campaign's goals: those its plan sets, and for the others the brand's config's
    (the plan sets goals for its window; it need not repeat the brand's), in GOALS order."""
    chosen = {name: (target, "config") for name, target in config}
    chosen.update({name: (target, "plan") for name, target in plan})
    return tuple((name, *chosen[name]) for name in GOALS if name in chosen)


def median_interval(values: Sequence[float], z: float = 1.959963984540054) -> tuple[float, float] | None:
    """A distribution-free 95 % interval of the median: the order statistics whose ranks
    are n/2 -+ z sqrt(n)/2 (the binomial's normal approximation), clamped to the data."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    half = z * math.sqrt(n) / 2
    low, high = max(0, math.floor(n / 2 - half)), min(n - 1, math.ceil(n / 2 + half) - 1)
    return ordered[low], ordered[high]


def _verdict(target: float, higher_is_better: bool, ci: tuple[float, float] | None) -> str | None:
    if ci is None:
        return None
    low, high = ci
    if (low >= target) if higher_is_better else (high <= target):
        return "met"
    if (high < target) if higher_is_better else (low > target):
        return "missed"
    return "not yet clear"


def goal_progress(goals: Sequence[Goal], summary: CareSummary, reply_hours: Sequence[float],
                  positive: int, negative: int, mentions: int) -> list[GoalProgress]:
    """Each configured goal against the period's figure and its interval: response rate
    and resolved share with Wilson intervals, the median reply time with a
    distribution-free one, net-positive conversations per 1,000 mentions with 1.96
    standard errors (analysis.mood: each mention +1, 0 or -1)."""
    figures: dict[str, tuple[float | None, tuple[float, float] | None]] = {
        "response_rate": (summary.response_rate, summary.response_rate_ci),
        "reply_hours": (summary.reply_hours_median, median_interval(reply_hours)),
        "resolved_share": (summary.resolved_share, wilson_interval(summary.resolved, summary.started_negative)),
    }
    value, se = net_sentiment(positive, negative, mentions), net_sentiment_se(positive, negative, mentions)
    figures["net_positive_per_1000"] = (
        None if value is None else 10 * value,
        None if value is None or se is None else (10 * (value - 1.96 * se), 10 * (value + 1.96 * se)))
    out = []
    for name, target, *set_by in goals:
        figure, ci = figures[name]
        out.append(GoalProgress(name, target, figure, ci, _verdict(target, GOALS[name][1], ci), *set_by))
    return out


@dataclass(frozen=True, slots=True)
class CareFigures:
    """A brand's care figures for a period: the summary, whether answering turned its
    threads (analysis.reply_effect) and its progress against the configured goals; what
    ``listener care`` prints and the campaign report's "Conversations" section shows."""

    summary: CareSummary
    effect: ReplyEffect
    goals: tuple[GoalProgress, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {**self.summary.to_json(), "goals": [g.to_json() for g in self.goals],
                "reply_effect": self.effect.to_json()}


# -- wording shared by ``listener care`` and the campaign report ------------------------------


def goal_text(goal: str, value: float | None) -> str:
    """A goal's figure in its unit: a share as a percentage, hours, conversations per 1,000."""
    if value is None:
        return "n/a"
    if goal in ("response_rate", "resolved_share"):
        return f"{100 * value:.0f}%"
    return f"{value:.1f} h" if goal == "reply_hours" else f"{value:+.0f}"


def goal_sentence(g: GoalProgress) -> str:
    """'<what>: <figure> (95 % range ..) against a goal of at least/at most <target>: <verdict>'."""
    what, higher_is_better = GOALS[g.goal][0], GOALS[g.goal][1]
    ci = "" if g.ci is None else f" (95 % range {goal_text(g.goal, g.ci[0])} to {goal_text(g.goal, g.ci[1])})"
    plan = " set in the campaign plan" if g.set_by == "plan" else ""
    return (f"{what}: {goal_text(g.goal, g.value)}{ci} against a goal{plan} of "
            f"{'at least' if higher_is_better else 'at most'} {goal_text(g.goal, g.target)}: "
            f"{g.verdict or 'no figure yet'}")


def effect_sentences(effect: ReplyEffect) -> list[str]:
    """The reply-effect estimate in words: the figure with its interval and what it means,
    then what it rests on (its caveats are ``effect.caveats``)."""
    if effect.effect is None or effect.ci is None:
        return [f"Not enough comparable threads yet (a stratum needs {MIN_PER_SIDE} answered and "
                f"{MIN_PER_SIDE} unanswered threads that opened negative and went on)."]
    low, high = effect.ci
    verdict = ("customers' later posts were kinder after a reply" if low > 0
               else "customers' later posts were harsher after a reply" if high < 0
               else "no difference we can tell from chance")
    return [f"{effect.effect:+.1f} NSS points in customers' posts after the brand's first reply, against "
            f"comparable unanswered threads (95 % range {low:+.1f} to {high:+.1f}): {verdict}.",
            f"From {effect.answered} answered and {effect.unanswered} unanswered threads that opened negative, "
            f"in {effect.strata} strata (brand, source, starting mood, size, time of day); "
            f"{effect.unmatched_answered} answered threads had no comparable unanswered ones."]
