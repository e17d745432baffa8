"""Read path of customer care (analysis.care, analysis.reply_effect): threads from the
analysts' view ``care_threads`` (storage.views), and the customer posts of the threads
that opened negative, for the reply-effect estimate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from analysis.care import BusinessHours, CareFigures, CareThread, goal_progress, reply_hours, summarize
from analysis.reply_effect import ThreadPosts, estimate
from storage.queries import label_counts
from storage.store import Store, from_db_time, to_db_time

_THREADS_SQL = """
SELECT source, conversation_id, brand, opened_at, opening_label, opening_question, customer_posts,
       brand_posts, first_reply_at, last_customer_label, url
FROM care_threads_opened($lo, $hi)
WHERE brand = $brand
ORDER BY opened_at, source, conversation_id
"""

# Threads of $brand opened negative in [$lo, $hi): the opening's compound, the brand's
# first reply, and every later labelled customer post as (time, +1/0/-1), oldest first.
_NEGATIVE_SQL = """
SELECT c.source, c.conversation_id, c.opened_at, c.first_reply_at,
       any_value(m.compound) FILTER (WHERE m.id = c.opening_id) AS opening_compound,
       list(struct_pack(at := m.created_at,
                        v := CASE m.label WHEN 'positive' THEN 1 WHEN 'negative' THEN -1 ELSE 0 END)
            ORDER BY m.created_at, m.id) FILTER (WHERE m.id <> c.opening_id AND m.label IS NOT NULL) AS posts
FROM care_threads_opened($lo, $hi) c
JOIN thread_mentions($lo, TIMESTAMP 'infinity') m
    ON m.source = c.source AND m.conversation_id = c.conversation_id AND m.brand = c.brand AND NOT m.own
WHERE c.brand = $brand AND c.opening_label = 'negative'
GROUP BY ALL
ORDER BY c.opened_at, c.source, c.conversation_id
"""


def care_threads(store: Store, brand: str, start: datetime, end: datetime) -> list[CareThread]:
    """The threads of ``brand`` opened in [start, end), with their care facts."""
    with store.native() as db:
        rows = db.execute(_THREADS_SQL, {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end)}).fetchall()
    return [CareThread(source, conversation, brand, from_db_time(opened), label, bool(question), int(customers),
                       int(own), from_db_time(reply), last, url)
            for source, conversation, brand, opened, label, question, customers, own, reply, last, url in rows]


def negative_threads(store: Store, brand: str, start: datetime, end: datetime) -> list[ThreadPosts]:
    """The threads of ``brand`` opened negative in [start, end), with their later
    customer posts (analysis.reply_effect)."""
    with store.native() as db:
        rows = db.execute(_NEGATIVE_SQL, {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end)}).fetchall()
    return [ThreadPosts(brand=brand, source=source, opened_at=from_db_time(opened),
                        opening_compound=compound if compound is not None else -1.0,
                        first_reply_at=from_db_time(reply),
                        posts=tuple((from_db_time(p["at"]), int(p["v"])) for p in posts or ()))
            for source, _conversation, opened, reply, compound, posts in rows]


def care_figures(store: Store, brand: str, start: datetime, end: datetime, hours: BusinessHours | None = None,
                 goals: Sequence[tuple[str, float]] = ()) -> CareFigures:
    """``brand``'s care figures for threads opened in [start, end): the summary (reply
    times in ``hours`` when given), the reply effect (time of day read in the hours' zone)
    and progress against ``goals`` (analysis.care.GOALS names and targets)."""
    threads = care_threads(store, brand, start, end)
    summary = summarize(brand, start, end, threads, hours)
    effect = estimate(negative_threads(store, brand, start, end), zone=hours.timezone if hours else "UTC")
    progress = ()
    if goals:
        counts = label_counts(store, brand, start, end)
        progress = tuple(goal_progress(goals, summary, reply_hours(threads, hours),
                                       counts.positive, counts.negative, counts.mentions))
    return CareFigures(summary, effect, progress)
