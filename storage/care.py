"""Read path of customer care (analysis.care, analysis.reply_effect): a period's threads
from the macro ``care_threads_opened`` (storage.views), read once for both the care
figures and the reply-effect estimate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from analysis.campaign_plan import CampaignPlan
from analysis.care import (
    BusinessHours, CareFigures, CareThread, Goal, campaign_goals, goal_progress, reply_hours, summarize,
)
from analysis.reply_effect import ThreadPosts, estimate
from storage.queries import label_counts
from storage.store import Store, from_db_time, to_db_time

# One scan of the period's threads: each thread's care facts (the rules needs_reply and
# resolved are the macro's), and for those opened negative what the reply effect reads.
_THREADS_SQL = """
SELECT source, conversation_id, brand, opened_at, opening_label, opening_question, needs_reply, customer_posts,
       brand_posts, first_reply_at, last_customer_label, resolved, url, opening_compound,
       CASE WHEN opening_label = 'negative' THEN later_customer_labels END AS later
FROM care_threads_opened($lo, $hi)
WHERE brand = $brand
ORDER BY opened_at, source, conversation_id
"""


def read_threads(store: Store, brand: str, start: datetime, end: datetime
                 ) -> tuple[list[CareThread], list[ThreadPosts]]:
    """The threads of ``brand`` opened in [start, end) with their care facts, and those
    that opened negative with their later labelled customer posts (analysis.reply_effect),
    from one query."""
    with store.native() as db:
        rows = db.execute(_THREADS_SQL, {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end)}).fetchall()
    threads, negative = [], []
    for (source, conversation, name, opened, label, question, needs, customers, own, reply, last, resolved, url,
         compound, later) in rows:
        thread = CareThread(source, conversation, name, from_db_time(opened), label, bool(question), bool(needs),
                            int(customers), int(own), from_db_time(reply), last, bool(resolved), url)
        threads.append(thread)
        if thread.started_negative:
            negative.append(ThreadPosts(
                brand=name, source=source, opened_at=thread.opened_at,
                opening_compound=compound if compound is not None else -1.0,
                first_reply_at=thread.first_reply_at, customer_posts=thread.customer_posts,
                posts=tuple((from_db_time(p["at"]), int(p["v"])) for p in later or ())))
    return threads, negative


def care_threads(store: Store, brand: str, start: datetime, end: datetime) -> list[CareThread]:
    """The threads of ``brand`` opened in [start, end), with their care facts."""
    return read_threads(store, brand, start, end)[0]


def negative_threads(store: Store, brand: str, start: datetime, end: datetime) -> list[ThreadPosts]:
    """The threads of ``brand`` opened negative in [start, end), with their later
    customer posts (analysis.reply_effect)."""
    return read_threads(store, brand, start, end)[1]


def care_figures(store: Store, brand: str, start: datetime, end: datetime, hours: BusinessHours | None = None,
                 goals: Sequence[Goal] = ()) -> CareFigures:
    """``brand``'s care figures for threads opened in [start, end): the summary (reply
    times in ``hours`` when given), the reply effect (time of day read in the hours' zone)
    and progress against ``goals`` (analysis.care_goals names and targets; who set them:
    analysis.care.campaign_goals)."""
    threads, negative = read_threads(store, brand, start, end)
    summary = summarize(brand, start, end, threads, hours)
    effect = estimate(negative, zone=hours.timezone if hours else "UTC")
    progress = ()
    if goals:
        # Net-positive conversations count the period's mentions, not its threads: read
        # (from the hourly rollup, cheap) only when that goal is set.
        counts = (label_counts(store, brand, start, end) if any(g[0] == "net_positive_per_1000" for g in goals)
                  else None)
        progress = tuple(goal_progress(goals, summary, reply_hours(threads, hours), *(
            (counts.positive, counts.negative, counts.mentions) if counts else (0, 0, 0))))
    return CareFigures(summary, effect, progress)


def campaign_care(store: Store, plan: CampaignPlan, tz: ZoneInfo, now: datetime, hours: BusinessHours | None = None,
                  config_goals: Sequence[tuple[str, float]] = ()) -> CareFigures:
    """The care figures of ``plan``'s brand for threads opened in the campaign's effect
    window (flight and washout, whole days in ``tz``, up to ``now``), against the goals
    the plan sets and, for the others, the brand's ``config_goals``: what the campaign
    report's Conversations and the live view's care page show."""
    lo, hi = plan.effect_bounds(tz)
    return care_figures(store, plan.brand, lo, max(lo, min(hi, now)), hours,
                        campaign_goals(plan.care_goals, config_goals))
