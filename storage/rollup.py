"""The hourly stage in SQL: hourly mood rows and conversation scores.

Incremental: ``save_batch`` marks each (brand, source, hour) that received new
mentions in ``pending_hours``; ``rollup_pending`` recomputes exactly those hours and
the conversations active in them, then clears the marks, all in one transaction. So
the cost follows the new data, not the size of the database, and a crash half-way
leaves the marks for the next run.

Re-running an hour gives identical rows: every figure is computed from integer counts
or from compound scores cast to DECIMAL (VADER reports 4 decimals), so no
floating-point summation order, which a parallel aggregate does not fix, can change a
digit.

Hourly mood per (brand, source, hour), over labelled mentions (the user's manual label
where there is one, else VADER's: see storage.labels), leaving
out near-duplicates and mentions VADER cannot score (both still count in ``mentions``):
    nss    = 100 (P - N) / T
    nss_se = 100 sqrt((p+ + p- - (p+ - p-)^2) / T)
    ew_nss = 100 sum(w_i s_i) / sum(w_i),  s_i = +1/0/-1, w_i = 1 + likes + reposts + replies

Conversation score (a thread = all stored mentions sharing source, conversation_id,
brand): the engagement-weighted mean compound of its scored mentions,
    score = sum(w_i c_i) / sum(w_i),   w_i = 1 + likes_i + reposts_i + replies_i,
labelled with the mention thresholds (positive >= 0.05, negative <= -0.05). Weighting
by engagement lets a reply that many people endorsed outweigh an ignored one, the same
weights as the engagement-weighted NSS of docs/roi-method.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from storage.store import Store

# Hours further apart than this are recomputed in separate scans, so that one late
# hour from last month does not make the current hour's rollup scan a month of rows.
_CLUSTER_GAP = timedelta(hours=24)

# The effective label is the user's manual label (``labels``) when there is one, else
# VADER's; a manual label stands in for the compound score as +1, 0 or -1.
_COMPOUND = (
    "CASE WHEN l.label IS NOT NULL THEN CAST(CASE l.label WHEN 'positive' THEN 1 WHEN 'negative' THEN -1 "
    "ELSE 0 END AS DECIMAL(18, 4)) ELSE CAST(s.compound AS DECIMAL(18, 4)) END"
)

# Mood counts skip near-duplicates (m.duplicate) and unscored mentions (no score row);
# volume (mentions) counts everything. See analysis.duplicates and analysis.language.
_HOURLY_SQL = """
INSERT INTO hourly_mood
WITH rows AS (
    SELECT m.brand, m.source, date_trunc('hour', m.created_at) AS hour, m.conversation_id, m.duplicate,
           m.likes + m.reposts + m.replies AS engagement,
           CASE WHEN m.duplicate THEN NULL ELSE coalesce(l.label, s.label) END AS label,
           CASE WHEN m.duplicate THEN NULL ELSE {compound} END AS compound,
           coalesce(l.label, s.label) IS NULL AND NOT m.duplicate AS unscored
    FROM mentions m
    LEFT JOIN scores s
        ON s.source = m.source AND s.id = m.id AND s.brand = m.brand
        AND s.created_at >= $lo AND s.created_at < $hi
    LEFT JOIN labels l ON l.source = m.source AND l.id = m.id AND l.brand = m.brand
    JOIN todo t
        ON t.brand = m.brand AND t.source = m.source AND t.hour = date_trunc('hour', m.created_at)
    WHERE m.created_at >= $lo AND m.created_at < $hi
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
    CASE WHEN count(label) > 0 THEN
        round(100.0 * (count(*) FILTER (WHERE label = 'positive')
                       - count(*) FILTER (WHERE label = 'negative')) / count(label), 6)
    END AS nss,
    CASE WHEN count(label) > 0 THEN
        round(100.0 * sqrt(greatest(0.0,
            (count(*) FILTER (WHERE label IN ('positive', 'negative'))) / count(label)
            - power((count(*) FILTER (WHERE label = 'positive')
                     - count(*) FILTER (WHERE label = 'negative')) / count(label), 2)
        ) / count(label)), 6)
    END AS nss_se,
    round(avg(compound), 6)::DOUBLE AS mean_compound,
    sum(engagement) AS engagement,
    CASE WHEN count(label) > 0 THEN
        round(100.0 * sum(CASE label WHEN 'positive' THEN 1 WHEN 'negative' THEN -1 ELSE 0 END
                         * (1 + engagement)) FILTER (WHERE label IS NOT NULL)
              / sum(1 + engagement) FILTER (WHERE label IS NOT NULL), 6)
    END AS ew_nss,
    count(DISTINCT conversation_id) AS conversations
FROM rows
GROUP BY ALL
""".replace("{compound}", _COMPOUND)

# Threads active in the to-do hours. The scan for their mentions starts at the earliest
# known start of any of them, so old threads are re-read only as far back as they go.
_TOUCHED_SQL = """
CREATE OR REPLACE TEMP TABLE touched AS
SELECT DISTINCT m.source, m.conversation_id, m.brand
FROM mentions m
JOIN todo t ON t.brand = m.brand AND t.source = m.source AND t.hour = date_trunc('hour', m.created_at)
WHERE m.created_at >= $lo AND m.created_at < $hi
"""

_CONVERSATIONS_SQL = """
INSERT INTO conversations
SELECT
    m.source, m.conversation_id, m.brand,
    min(m.created_at) AS first_at,
    max(m.created_at) AS last_at,
    count(*) AS mentions,
    count(coalesce(l.label, s.label)) AS scored,
    count(*) FILTER (WHERE coalesce(l.label, s.label) = 'positive') AS positive,
    count(*) FILTER (WHERE coalesce(l.label, s.label) = 'neutral') AS neutral,
    count(*) FILTER (WHERE coalesce(l.label, s.label) = 'negative') AS negative,
    sum(m.likes + m.reposts + m.replies) AS engagement,
    round(sum({compound} * (1 + m.likes + m.reposts + m.replies))
          / sum(1 + m.likes + m.reposts + m.replies) FILTER (WHERE coalesce(l.label, s.label) IS NOT NULL),
          6)::DOUBLE AS score,
    NULL AS label,
    arg_min(m.url, m.created_at) FILTER (WHERE m.url IS NOT NULL) AS url,
    left(arg_min(m.text, m.created_at), 280) AS title
FROM mentions m
JOIN touched t ON t.source = m.source AND t.conversation_id = m.conversation_id AND t.brand = m.brand
LEFT JOIN scores s
    ON s.source = m.source AND s.id = m.id AND s.brand = m.brand AND s.created_at >= $since
    AND NOT m.duplicate
LEFT JOIN labels l
    ON l.source = m.source AND l.id = m.id AND l.brand = m.brand AND NOT m.duplicate
WHERE m.created_at >= $since
GROUP BY ALL
""".replace("{compound}", _COMPOUND)

_LABEL_SQL = """
UPDATE conversations c SET label = CASE
    WHEN c.score >= 0.05 THEN 'positive' WHEN c.score <= -0.05 THEN 'negative' ELSE 'neutral' END
FROM touched t
WHERE c.source = t.source AND c.conversation_id = t.conversation_id AND c.brand = t.brand
  AND c.score IS NOT NULL
"""


@dataclass(frozen=True, slots=True)
class RollupResult:
    hours: int
    conversations: int


def _clusters(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Group sorted hours into [lo, hi) scan ranges split at gaps over _CLUSTER_GAP."""
    ranges: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if ranges and hour - ranges[-1][1] <= _CLUSTER_GAP:
            ranges[-1] = (ranges[-1][0], hour + timedelta(hours=1))
        else:
            ranges.append((hour, hour + timedelta(hours=1)))
    return ranges


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
    for lo, hi in _clusters(hours):
        db.execute(_HOURLY_SQL, {"lo": lo, "hi": hi})
        db.execute(_TOUCHED_SQL, {"lo": lo, "hi": hi})
        db.execute("INSERT INTO all_touched SELECT * FROM touched")
    db.execute("CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT * FROM all_touched")
    since = db.execute(
        "SELECT least((SELECT min(hour) FROM todo), "
        "(SELECT min(c.first_at) FROM conversations c JOIN touched t USING (source, conversation_id, brand)))"
    ).fetchone()[0]
    db.execute(
        "DELETE FROM conversations c USING touched t "
        "WHERE c.source = t.source AND c.conversation_id = t.conversation_id AND c.brand = t.brand"
    )
    db.execute(_CONVERSATIONS_SQL, {"since": since})
    db.execute(_LABEL_SQL)
    touched = db.execute("SELECT count(*) FROM touched").fetchone()[0]
    db.execute("DROP TABLE touched")
    db.execute("DROP TABLE all_touched")
    return RollupResult(hours=db.execute("SELECT count(*) FROM todo").fetchone()[0], conversations=touched)


def rollup_pending(store: Store) -> RollupResult:
    """Recompute the hours marked pending by new mentions, then clear the marks."""
    with store.native() as db:
        db.execute("CREATE OR REPLACE TEMP TABLE todo AS SELECT brand, source, hour FROM pending_hours")
        try:
            result = _recompute(db)
            db.execute(
                "DELETE FROM pending_hours p USING todo t "
                "WHERE p.brand = t.brand AND p.source = t.source AND p.hour = t.hour"
            )
        finally:
            db.execute("DROP TABLE IF EXISTS todo")
    return result


def rollup_rebuild(store: Store, since: datetime | None = None) -> RollupResult:
    """Recompute every hour that has mentions (from ``since``, naive UTC, if given)."""
    with store.native() as db:
        db.execute(
            "CREATE OR REPLACE TEMP TABLE todo AS SELECT DISTINCT brand, source, date_trunc('hour', created_at) AS hour "
            "FROM mentions WHERE $since IS NULL OR created_at >= $since",
            {"since": since},
        )
        try:
            result = _recompute(db)
            db.execute("DELETE FROM pending_hours WHERE $since IS NULL OR hour >= $since", {"since": since})
        finally:
            db.execute("DROP TABLE IF EXISTS todo")
    return result
