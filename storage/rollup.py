"""The hourly stage in SQL: hourly mood rows and conversation scores.

Incremental: ``save_batch`` marks each (brand, source, hour) that received new
mentions in ``pending_hours``; ``rollup_pending`` recomputes exactly those hours and
the conversations active in them, then clears the marks. So the cost follows the new
data, not the size of the database.

In chunks: the pending hours are taken in time order, at most ``chunk_hours`` hours
and about ``chunk_mentions`` mentions at a time (an hour is never split), and each
chunk is one transaction that writes its rows and clears its marks. DuckDB keeps a
transaction's uncommitted rows in memory, and under the writer's 128 MB limit
(storage.store.MEMORY_LIMIT) one transaction over a backfill's 8,527 hours ran out of
memory, every time; a chunk needs memory for its own mentions only, a crash or a
failure keeps every chunk committed before it, and the marks left say what is to do.
A run walks forward in time and stops at the end: hours marked behind it meanwhile
(the daemon's pulls go on between chunks) wait for the next run.

Re-running an hour gives identical rows: every figure is computed from integer counts,
from compound scores cast to DECIMAL (VADER reports 4 decimals) or from a thread's
voices' means rounded to DECIMAL (below), so no
floating-point summation order, which a parallel aggregate does not fix, can change a
digit.

Hourly mood per (brand, source, hour), over the labels the macro ``mood_mentions``
gives (storage.schema: the user's manual label where there is one, else the label of
the score in effect), leaving out near-duplicates and mentions no scorer covers (both
still count in ``mentions``); NSS and its SE by the macros ``nss``/``nss_se``:
    nss    = 100 (P - N) / T
    nss_se = 100 sqrt((p+ + p- - (p+ - p-)^2) / T)
    ew_nss = 100 sum(w_i s_i) / sum(w_i),  s_i = +1/0/-1, w_i = 1 + likes + reposts + replies

Conversations (a thread = all stored mentions sharing source, conversation_id, brand)
are scored by people, not by likes: a voice is an author's scored, non-duplicate
mentions of the thread in one UTC hour (a mention with no author is a voice of its
own), and its value v is the mean of their effective labels as +1/0/-1 (the same labels
as hourly mood). Over the thread's n voices (``voices``; ``authors`` the distinct
people among them):
    nss    = 100 mean(v)
    nss_se = 100 sqrt((mean(v^2) - mean(v)^2) / n)       (analysis.mood.mean_nss_se)
    label  = positive if nss - 1.96 nss_se > 0, negative if nss + 1.96 nss_se < 0,
             else neutral                                 (analysis.mood.thread_label)
    score  = nss / 100, in [-1, 1] like the compound it replaced.
When every voice is one mention, nss and nss_se are the hourly formulas above. So one
author's ten replies in an hour weigh as one reply, and a post's likes do not outweigh
the people answering it: ``engagement`` (likes + reposts + replies) is reported beside
the figures, never inside them. A thread with nothing scored has nss, score and label
NULL and voices 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from analysis.mood import THREAD_LABEL_Z
from storage.queries import HourCounts, hour_spans
from storage.store import Store, from_db_time, to_db_time

# A chunk's default size. 50k mentions (their hourly aggregates, the conversations they
# touch and those rows, uncommitted) measured well inside 128 MB on bench/backfill_memory.py;
# the hour cap keeps chunks short where hours are sparse.
CHUNK_HOURS = 168
CHUNK_MENTIONS = 50_000

# The label a mention counts with is mood_mentions' (storage.schema: the manual label,
# else the score in effect's); a manual label stands in for the compound as +1, 0 or -1.
_COMPOUND = (
    "CASE WHEN m.manual_label IS NOT NULL THEN CAST(label_value(m.manual_label) AS DECIMAL(18, 4)) "
    "ELSE CAST(m.compound AS DECIMAL(18, 4)) END"
)

# Mood counts skip near-duplicates (m.duplicate) and unscored mentions (no score row);
# volume (mentions) counts everything. See analysis.duplicates and analysis.language.
_HOURLY_SQL = """
INSERT INTO hourly_mood
WITH rows AS (
    SELECT m.brand, m.source, date_trunc('hour', m.created_at) AS hour, m.conversation_id, m.duplicate,
           m.likes + m.reposts + m.replies AS engagement,
           m.label,
           CASE WHEN m.duplicate THEN NULL ELSE {compound} END AS compound,
           m.unscored
    FROM mood_mentions($lo, $hi) m
    JOIN todo t
        ON t.brand = m.brand AND t.source = m.source AND t.hour = date_trunc('hour', m.created_at)
)
SELECT
    brand, source, hour,
    count(*) AS mentions,
    count(*) FILTER (WHERE duplicate) AS duplicates,
    count(*) FILTER (WHERE unscored) AS unscored,
    count(label) AS scored,
    count(*) FILTER (WHERE label = 'positive') AS positive,
    count(*) FILTER (WHERE label = 'neutral') AS neutral,
    count(*) FILTER (WHERE label = 'negative') AS negative,
    round(nss(count(*) FILTER (WHERE label = 'positive'), count(*) FILTER (WHERE label = 'negative'),
              count(label)), 6) AS nss,
    round(nss_se(count(*) FILTER (WHERE label = 'positive'), count(*) FILTER (WHERE label = 'negative'),
                 count(label)), 6) AS nss_se,
    round(avg(compound), 6)::DOUBLE AS mean_compound,
    sum(engagement) AS engagement,
    CASE WHEN count(label) > 0 THEN
        round(100.0 * sum(label_value(label) * (1 + engagement)) FILTER (WHERE label IS NOT NULL)
              / sum(1 + engagement) FILTER (WHERE label IS NOT NULL), 6)
    END AS ew_nss,
    count(DISTINCT conversation_id) AS conversations
FROM rows
GROUP BY ALL
""".replace("{compound}", _COMPOUND)

# Threads active in the to-do hours. The scan for their mentions runs from the earliest
# known start of any of them to the latest known end or the to-do hours' end, whichever
# is later, so old threads are re-read only as far back as they go, and a chunk of a
# backfill does not read every later chunk's mentions. That loses nothing: a mention of
# a thread outside [since, until) is in an hour still pending (saved after the thread's
# row was computed), which recomputes the thread again when its chunk comes.
_TOUCHED_SQL = """
CREATE OR REPLACE TEMP TABLE touched AS
SELECT DISTINCT m.source, m.conversation_id, m.brand
FROM mentions m
JOIN todo t ON t.brand = m.brand AND t.source = m.source AND t.hour = date_trunc('hour', m.created_at)
WHERE m.created_at >= $lo AND m.created_at < $hi
"""

# A thread's figures count people (module docstring). ``voices``: one row per voice, an
# author's mentions of the thread in one UTC hour (a mention without an author is a voice
# of its own), with its counts; ``valued``: the voice's value (the mean of its +1/0/-1
# labels) and its square, rounded to DECIMAL(18, 12) from integers, so that their sums,
# and every figure, are exact whatever the summation order; ``threads``: the sums over a
# thread's voices.
_CONVERSATIONS_SQL = """
INSERT INTO conversations BY NAME
WITH voices AS (
    SELECT
        m.source, m.conversation_id, m.brand, m.author,
        min(m.created_at) AS first_at,
        max(m.created_at) AS last_at,
        count(*) AS mentions,
        count(m.label) AS scored,
        count(*) FILTER (WHERE m.label = 'positive') AS positive,
        count(*) FILTER (WHERE m.label = 'neutral') AS neutral,
        count(*) FILTER (WHERE m.label = 'negative') AS negative,
        sum(m.likes + m.reposts + m.replies) AS engagement,
        min(m.created_at) FILTER (WHERE m.url IS NOT NULL) AS url_at,
        arg_min(m.url, m.created_at) FILTER (WHERE m.url IS NOT NULL) AS url,
        arg_min(left(m.text, 280), m.created_at) AS title
FROM mood_mentions($since, $until) m
JOIN touched t ON t.source = m.source AND t.conversation_id = m.conversation_id AND t.brand = m.brand
GROUP BY m.source, m.conversation_id, m.brand, m.author, CASE WHEN m.author IS NULL THEN m.id END,
         date_trunc('hour', m.created_at)
),
valued AS (
    SELECT *,
        CASE WHEN scored > 0 THEN CAST((positive - negative) / scored AS DECIMAL(18, 12)) END AS v,
        CASE WHEN scored > 0 THEN CAST(power(positive - negative, 2) / power(scored, 2) AS DECIMAL(18, 12)) END AS v2
    FROM voices
),
threads AS (
    SELECT
        source, conversation_id, brand,
        min(first_at) AS first_at,
        max(last_at) AS last_at,
        sum(mentions) AS mentions,
        sum(scored) AS scored,
        sum(positive) AS positive,
        sum(neutral) AS neutral,
        sum(negative) AS negative,
        sum(engagement) AS engagement,
        count(v) AS voices,
        count(DISTINCT author) FILTER (WHERE v IS NOT NULL)
            + count(*) FILTER (WHERE v IS NOT NULL AND author IS NULL) AS authors,
        CASE WHEN count(v) > 0 THEN round(100 * sum(v) / count(v), 6)::DOUBLE END AS nss,
        -- analysis.mood.mean_nss_se: 100 sqrt((mean(v^2) - mean(v)^2) / n)
        CASE WHEN count(v) > 0 THEN
            round(100 * sqrt(greatest(0.0, sum(v2) / count(v) - power(sum(v) / count(v), 2)) / count(v)),
                  6)::DOUBLE
        END AS nss_se,
        arg_min(url, url_at) FILTER (WHERE url IS NOT NULL) AS url,
        arg_min(title, first_at) AS title
    FROM valued
    GROUP BY ALL
)
SELECT *,
    round(nss / 100, 8) AS score,
    -- analysis.mood.thread_label
    CASE WHEN nss - {z} * nss_se > 0 THEN 'positive' WHEN nss + {z} * nss_se < 0 THEN 'negative'
         WHEN nss IS NOT NULL THEN 'neutral' END AS label
FROM threads
""".replace("{z}", repr(THREAD_LABEL_Z))


@dataclass(frozen=True, slots=True)
class RollupResult:
    """``hours``: (brand, source, hour) rows recomputed; ``conversations``: threads
    recomputed, once per chunk that touched them; ``pending``: marks left (hours marked
    behind the run meanwhile, or those not reached when ``stopped`` on request)."""

    hours: int
    conversations: int
    pending: int = 0
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class RollupProgress:
    """After each committed chunk: marks done of those pending at the start (``total``
    grows if pulls mark hours ahead of the run meanwhile), conversations recomputed so
    far, and the last hour done."""

    done: int
    total: int
    chunks: int
    through: datetime
    conversations: int


ProgressCallback = Callable[[RollupProgress], None]


def _recompute(db: duckdb.DuckDBPyConnection) -> RollupResult:
    """Recompute hourly mood and conversations for the hours in temp table ``todo``."""
    hours = [row[0] for row in db.execute("SELECT DISTINCT hour FROM todo").fetchall()]
    if not hours:
        return RollupResult(0, 0)
    db.execute(
        "DELETE FROM hourly_mood h USING todo t "
        "WHERE h.brand = t.brand AND h.source = t.source AND h.hour = t.hour"
    )
    db.execute("CREATE OR REPLACE TEMP TABLE all_touched (source VARCHAR, conversation_id VARCHAR, brand VARCHAR)")
    for lo, hi in hour_spans(hours):
        db.execute(_HOURLY_SQL, {"lo": lo, "hi": hi})
        db.execute(_TOUCHED_SQL, {"lo": lo, "hi": hi})
        db.execute("INSERT INTO all_touched SELECT * FROM touched")
    db.execute("CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT * FROM all_touched")
    since, until = db.execute(
        "WITH known AS (SELECT min(c.first_at) AS first_at, max(c.last_at) AS last_at "
        "               FROM conversations c JOIN touched t USING (source, conversation_id, brand)) "
        "SELECT least((SELECT min(hour) FROM todo), first_at), "
        "greatest((SELECT max(hour) FROM todo) + INTERVAL 1 HOUR, last_at + INTERVAL 1 MICROSECOND) FROM known"
    ).fetchone()
    db.execute(
        "DELETE FROM conversations c USING touched t "
        "WHERE c.source = t.source AND c.conversation_id = t.conversation_id AND c.brand = t.brand"
    )
    db.execute(_CONVERSATIONS_SQL, {"since": since, "until": until})
    touched = db.execute("SELECT count(*) FROM touched").fetchone()[0]
    db.execute("DROP TABLE touched")
    db.execute("DROP TABLE all_touched")
    return RollupResult(hours=db.execute("SELECT count(*) FROM todo").fetchone()[0], conversations=touched)


def rollup_pending(
    store: Store,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    chunk_hours: int | None = None,
    chunk_mentions: int | None = None,
) -> RollupResult:
    """Recompute the hours marked pending, chunk by chunk in time order (see the module
    docstring), each chunk clearing its marks in its own transaction. ``progress`` is
    called after each chunk commits; ``should_stop`` is asked before each chunk (the
    daemon's shutdown), and the hours not reached stay pending. The chunk sizes default
    to CHUNK_HOURS and CHUNK_MENTIONS (read at each call)."""
    chunk_hours = CHUNK_HOURS if chunk_hours is None else chunk_hours
    chunk_mentions = CHUNK_MENTIONS if chunk_mentions is None else chunk_mentions
    if chunk_hours < 1 or chunk_mentions < 1:
        raise ValueError(f"chunk_hours ({chunk_hours}) and chunk_mentions ({chunk_mentions}) must be at least 1")
    if store.in_transaction():
        # Joined to the caller's transaction, the chunks would not commit one by one.
        raise RuntimeError("rollup_pending commits chunk by chunk: call it outside store.transaction()/native()")
    with store.native() as db:
        total = db.execute("SELECT count(*) FROM pending_hours").fetchone()[0]
    done = conversations = chunks = 0
    through: datetime | None = None
    stopped = False
    while total:
        with store.native() as db:
            hours = _next_chunk(db, through, chunk_hours, chunk_mentions)
            if not hours:
                break
            if should_stop is not None and should_stop():
                stopped = True
                break
            db.execute(
                "CREATE OR REPLACE TEMP TABLE todo AS SELECT brand, source, hour FROM pending_hours "
                "WHERE hour >= $first AND hour <= $last AND list_contains($hours::TIMESTAMP[], hour)",
                {"first": hours[0], "last": hours[-1], "hours": hours},
            )
            result = _recompute(db)
            db.execute(
                "DELETE FROM pending_hours p USING todo t "
                "WHERE p.brand = t.brand AND p.source = t.source AND p.hour = t.hour"
            )
            # Inside the transaction: after a failure DuckDB refuses every statement until
            # the rollback (which drops the table too), and a clean-up there would hide
            # the failure behind "Current transaction is aborted".
            db.execute("DROP TABLE todo")
        done += result.hours
        conversations += result.conversations
        chunks += 1
        through = hours[-1]
        if progress is not None:
            progress(RollupProgress(done=done, total=max(total, done), chunks=chunks, through=through,
                                    conversations=conversations))
    with store.native() as db:
        left = db.execute("SELECT count(*) FROM pending_hours").fetchone()[0]
    return RollupResult(hours=done, conversations=conversations, pending=left, stopped=stopped)


def _next_chunk(
    db: duckdb.DuckDBPyConnection, after: datetime | None, max_hours: int, max_mentions: int
) -> list[datetime]:
    """The next pending hours after ``after`` (naive UTC), oldest first: at most
    ``max_hours`` of them, and as many as keep their mentions within ``max_mentions``,
    at least one. Memory: one row per hour of the chunk, whatever the backlog."""
    hours = [row[0] for row in db.execute(
        "SELECT DISTINCT hour FROM pending_hours WHERE $after::TIMESTAMP IS NULL OR hour > $after "
        "ORDER BY hour LIMIT $n",
        {"after": after, "n": max_hours},
    ).fetchall()]
    sizes: dict[datetime, int] = {}
    for lo, hi in hour_spans(hours):
        # Every mention of the hour, not only the pending sources': a bound, and cheap.
        sizes.update(db.execute(
            "SELECT date_trunc('hour', created_at), count(*) FROM mentions "
            "WHERE created_at >= $lo AND created_at < $hi GROUP BY 1",
            {"lo": lo, "hi": hi},
        ).fetchall())
    taken, mentions = [], 0
    for hour in hours:
        mentions += sizes.get(hour, 0)
        if taken and mentions > max_mentions:
            break
        taken.append(hour)
    return taken


def rollup_rebuild(
    store: Store,
    since: datetime | None = None,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    chunk_hours: int | None = None,
    chunk_mentions: int | None = None,
) -> RollupResult:
    """Recompute every hour that has mentions (from ``since``, naive UTC, if given): the
    hours are marked pending, then recomputed as by ``rollup_pending``, so a rebuild cut
    short is finished by the next run of the hourly stage."""
    with store.native() as db:
        db.execute(
            "INSERT INTO pending_hours SELECT DISTINCT brand, source, date_trunc('hour', created_at) "
            "FROM mentions WHERE $since::TIMESTAMP IS NULL OR created_at >= $since ON CONFLICT DO NOTHING",
            {"since": since},
        )
    return rollup_pending(store, progress=progress, should_stop=should_stop,
                          chunk_hours=chunk_hours, chunk_mentions=chunk_mentions)


_HOURLY_COUNTS_SQL = """
SELECT hour, sum(mentions), sum(duplicates), sum(unscored), sum(positive), sum(neutral), sum(negative)
FROM hourly_mood WHERE brand = $brand AND hour >= $lo AND hour < $hi GROUP BY hour ORDER BY hour
"""


def hourly_counts(store: Store, brand: str, start: datetime, end: datetime) -> list[HourCounts]:
    """The brand's hours with mentions in [start, end), all sources together, from the
    hourly rollup (hours the hourly stage has not reached yet are missing)."""
    window = {"brand": brand, "lo": to_db_time(start), "hi": to_db_time(end)}
    with store.native() as db:
        rows = db.execute(_HOURLY_COUNTS_SQL, window).fetchall()
    return [HourCounts(*(int(v) for v in r[1:]), hour=from_db_time(r[0])) for r in rows]
