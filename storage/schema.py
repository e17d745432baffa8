"""Table definitions (SQLAlchemy Core) of the current schema version.

Times are plain ``TIMESTAMP`` holding UTC (docs/design.md: an hourly GROUP BY is ~7x faster
than on ``TIMESTAMPTZ``); the Python edge converts to tz-aware datetimes. Scores and
money-like values are ``Double`` (``sa.Float`` would be a 4-byte FLOAT in DuckDB).
JSON is stored as text so that older DuckDB CLIs without the json extension read it.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

run_id_seq = sa.Sequence("run_id_seq", metadata=metadata)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.String, nullable=False),
)

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String, nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)

# Keyed by (source, id, brand): a post naming two tracked brands is a mention of each.
# The key is kept by the write path (store.save_batch), not by a PRIMARY KEY: DuckDB's
# ART index on three strings halved insert speed and lives in memory, growing with the
# table, while an anti-join restricted to the batch's time range costs what the batch
# costs (a post's creation time never changes, so a stored copy lies in that range).
mentions = sa.Table(
    "mentions",
    metadata,
    sa.Column("source", sa.String, nullable=False),
    sa.Column("id", sa.String, nullable=False),
    sa.Column("brand", sa.String, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("text", sa.String, nullable=False),
    sa.Column("author", sa.String),
    sa.Column("url", sa.String),
    sa.Column("conversation_id", sa.String, nullable=False),
    sa.Column("parent_id", sa.String),
    sa.Column("lang", sa.String),
    sa.Column("likes", sa.BigInteger, nullable=False),
    sa.Column("reposts", sa.BigInteger, nullable=False),
    sa.Column("replies", sa.BigInteger, nullable=False),
    # Platform metrics other than likes/reposts/replies (JSON text), NULL when none.
    sa.Column("extra_metrics", sa.String),
    sa.Column("fetched_at", sa.DateTime),
    sa.Column("raw", sa.String),
    # Fetched as part of a matched thread, not found by search (see connectors.base.Mention).
    sa.Column("thread_context", sa.Boolean, nullable=False),
    # Near-duplicate detection (analysis.duplicates): the normalised text's fingerprint,
    # and whether an earlier-stored mention of the brand had it (left out of mood).
    sa.Column("text_hash", sa.BigInteger),
    sa.Column("duplicate", sa.Boolean, nullable=False),
    # Schema version 7: posted by one of the brand's own accounts (connectors.query.is_own,
    # decided when collected): kept in its thread, out of the brand's mood and volume.
    sa.Column("own", sa.Boolean, server_default=sa.false()),
)

# One row per scored mention and scorer, keyed like mentions plus the scorer (and kept
# unique the same way). A mention no scorer covers (its language) has no row: "unscored".
# created_at is repeated from mentions so that time-window scans prune row groups on
# this table too, instead of joining 10M rows to find one hour.
scores = sa.Table(
    "scores",
    metadata,
    sa.Column("source", sa.String, nullable=False),
    sa.Column("id", sa.String, nullable=False),
    sa.Column("brand", sa.String, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("scorer", sa.String, nullable=False),
    sa.Column("scorer_version", sa.String, nullable=False),
    sa.Column("compound", sa.Double, nullable=False),
    sa.Column("pos", sa.Double, nullable=False),
    sa.Column("neu", sa.Double, nullable=False),
    sa.Column("neg", sa.Double, nullable=False),
    sa.Column("label", sa.String, nullable=False),
    sa.Column("scored_at", sa.DateTime, nullable=False),
    # Schema version 5: one row per mention and scorer; true on the one in effect
    # (analysis.scorers), read through the view scores_in_effect.
    sa.Column("active", sa.Boolean, server_default=sa.true()),
)

# One row per (source, conversation_id, brand), kept unique by the rollup's
# delete-then-insert; no index, for the same memory reason as mentions. This is the
# version-1 table, which migration 1 creates; later migrations add columns by ALTER
# TABLE (the rollup inserts BY NAME): url, title (2), and the people-counted figures of
# storage.rollup (4): voices (an author's mentions in one UTC hour are one voice),
# authors, nss and nss_se over the voices. Since version 4, score = nss / 100 and label
# is the thread's label from nss and nss_se (analysis.mood.thread_label), no longer the
# engagement-weighted mean compound; engagement is kept beside them.
conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("source", sa.String, nullable=False),
    sa.Column("conversation_id", sa.String, nullable=False),
    sa.Column("brand", sa.String, nullable=False),
    sa.Column("first_at", sa.DateTime, nullable=False),
    sa.Column("last_at", sa.DateTime, nullable=False),
    sa.Column("mentions", sa.BigInteger, nullable=False),
    sa.Column("scored", sa.BigInteger, nullable=False),
    sa.Column("positive", sa.BigInteger, nullable=False),
    sa.Column("neutral", sa.BigInteger, nullable=False),
    sa.Column("negative", sa.BigInteger, nullable=False),
    sa.Column("engagement", sa.BigInteger, nullable=False),
    sa.Column("score", sa.Double),
    sa.Column("label", sa.String),
)

hourly_mood = sa.Table(
    "hourly_mood",
    metadata,
    sa.Column("brand", sa.String, primary_key=True),
    sa.Column("source", sa.String, primary_key=True),
    sa.Column("hour", sa.DateTime, primary_key=True),
    sa.Column("mentions", sa.BigInteger, nullable=False),
    sa.Column("duplicates", sa.BigInteger, nullable=False),
    sa.Column("unscored", sa.BigInteger, nullable=False),
    sa.Column("scored", sa.BigInteger, nullable=False),
    sa.Column("positive", sa.BigInteger, nullable=False),
    sa.Column("neutral", sa.BigInteger, nullable=False),
    sa.Column("negative", sa.BigInteger, nullable=False),
    sa.Column("nss", sa.Double),
    sa.Column("nss_se", sa.Double),
    sa.Column("mean_compound", sa.Double),
    sa.Column("engagement", sa.BigInteger, nullable=False),
    sa.Column("ew_nss", sa.Double),
    sa.Column("conversations", sa.BigInteger, nullable=False),
)

# Hours that received new mentions since the last rollup: the hourly stage's to-do list.
pending_hours = sa.Table(
    "pending_hours",
    metadata,
    sa.Column("brand", sa.String, primary_key=True),
    sa.Column("source", sa.String, primary_key=True),
    sa.Column("hour", sa.DateTime, primary_key=True),
)

# Posts per hour the platform itself counts for a brand's query (where it offers such a
# count, like X's counts endpoint): what collection could have stored, for coverage.
platform_volume = sa.Table(
    "platform_volume",
    metadata,
    sa.Column("source", sa.String, primary_key=True),
    sa.Column("brand", sa.String, primary_key=True),
    sa.Column("hour", sa.DateTime, primary_key=True),
    sa.Column("posts", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("source", sa.String, primary_key=True),
    sa.Column("brand", sa.String, primary_key=True),
    sa.Column("cursor", sa.String, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.BigInteger, run_id_seq, server_default=run_id_seq.next_value(), primary_key=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("source", sa.String),
    sa.Column("brand", sa.String),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("fetched", sa.BigInteger),
    sa.Column("new", sa.BigInteger),
    sa.Column("duplicates", sa.BigInteger),
    sa.Column("skipped", sa.BigInteger),
    sa.Column("rejected", sa.BigInteger),
    sa.Column("error", sa.String),
    # Schema version 5: what the run did beyond its counts (the model promoted, say).
    sa.Column("detail", sa.String),
)


# Campaign spend, one row per date x platform x campaign (x hour), in the ad account's
# own dates, with the lineage of the file row it came from. Kept unique by
# storage.campaigns (delete-then-insert on that key), so a re-import replaces.
spend = sa.Table(
    "spend",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("hour", sa.Integer),
    sa.Column("platform", sa.String, nullable=False),
    sa.Column("campaign_id", sa.String, nullable=False),
    sa.Column("campaign_name", sa.String),
    sa.Column("channel", sa.String),
    sa.Column("brand", sa.String),
    sa.Column("currency", sa.String, nullable=False),
    sa.Column("spend", sa.Numeric(18, 6), nullable=False),
    sa.Column("account_timezone", sa.String),
    sa.Column("impressions", sa.BigInteger),
    sa.Column("reach", sa.BigInteger),
    sa.Column("clicks", sa.BigInteger),
    sa.Column("engagements", sa.BigInteger),
    sa.Column("file", sa.String, nullable=False),
    sa.Column("file_sha256", sa.String, nullable=False),
    sa.Column("file_row", sa.Integer, nullable=False),
    sa.Column("imported_at", sa.DateTime, nullable=False),
)

# The pre-registered plan of each campaign (docs/roi-method.md), with its lineage.
campaign_plans = sa.Table(
    "campaign_plans",
    metadata,
    sa.Column("campaign_id", sa.String, primary_key=True),
    sa.Column("brand", sa.String, nullable=False),
    sa.Column("flight_start", sa.Date, nullable=False),
    sa.Column("flight_end", sa.Date, nullable=False),
    sa.Column("washout_days", sa.Integer, nullable=False),
    sa.Column("primary_kpi", sa.String, nullable=False),
    sa.Column("goal_direction", sa.String, nullable=False),
    sa.Column("goal_value", sa.Double, nullable=False),
    sa.Column("competitors", sa.String, nullable=False),
    sa.Column("campaign_tags", sa.String, nullable=False),
    sa.Column("account_timezone", sa.String),
    sa.Column("file", sa.String, nullable=False),
    sa.Column("file_sha256", sa.String, nullable=False),
    sa.Column("file_row", sa.Integer, nullable=False),
    sa.Column("imported_at", sa.DateTime, nullable=False),
    # Schema version 9: the campaign's engagement goals (analysis.care_goals), a JSON
    # object {goal: target}; NULL when the plan sets none (the brand's care_goals apply).
    sa.Column("care_goals", sa.String),
)


# --- schema version 2 --------------------------------------------------------------

# A user's correction of a mention's sentiment (``listener label``). Kept apart from
# ``scores`` (VADER's own output, which stays as it was); every aggregate reads
# coalesce(labels.label, scores.label). created_at repeats the mention's creation time
# so the correction can mark its hour for the hourly stage.
labels = sa.Table(
    "labels",
    metadata,
    sa.Column("source", sa.String, primary_key=True),
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("brand", sa.String, primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("label", sa.String, nullable=False),
    sa.Column("labelled_at", sa.DateTime, nullable=False),
    sa.Column("labelled_by", sa.String),
    # Schema version 5: how it was given: cli | web | import | next:uncertain | next:random.
    # Only the random sample estimates accuracy free of the team's choice of mentions.
    sa.Column("origin", sa.String),
)

alert_id_seq = sa.Sequence("alert_id_seq", metadata=metadata)

# Dips and spikes found by the hourly stage (analysis.alerts), one row per brand, metric,
# direction and hour; explanation is JSON text (terms, sources, conversations).
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.BigInteger, alert_id_seq, server_default=alert_id_seq.next_value(), primary_key=True),
    sa.Column("brand", sa.String, nullable=False),
    sa.Column("metric", sa.String, nullable=False),  # mood | volume
    sa.Column("direction", sa.String, nullable=False),  # dip | spike
    sa.Column("hour", sa.DateTime, nullable=False),
    sa.Column("detected_at", sa.DateTime, nullable=False),
    sa.Column("value", sa.Double),
    sa.Column("baseline", sa.Double),
    sa.Column("statistic", sa.Double),
    sa.Column("control_limit", sa.Double),
    sa.Column("mentions", sa.BigInteger, nullable=False),
    sa.Column("summary", sa.String, nullable=False),
    sa.Column("explanation", sa.String),
    sa.Column("closed_at", sa.DateTime),
    # Schema version 8: who acknowledged it and when, and who closed it (resolved from
    # the live view: storage.alert_actions; NULL when the detector closed it).
    sa.Column("acknowledged_at", sa.DateTime),
    sa.Column("acknowledged_by", sa.String),
    sa.Column("closed_by", sa.String),
    sa.UniqueConstraint("brand", "metric", "direction", "hour"),
)

# Each attempt to deliver an alert on a channel (webhook, email).
alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("alert_id", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("attempted_at", sa.DateTime, nullable=False),
    sa.Column("status", sa.String, nullable=False),  # sent | failed
    sa.Column("error", sa.String),
)


# --- schema version 5 --------------------------------------------------------------

# ``scores`` holds one row per mention and scorer (VADER's always, for English) and a
# column ``active`` marking the one in effect (analysis.scorers); this view is the one
# place that rule is read. Every mood figure reads it, never ``scores`` itself.
SCORES_IN_EFFECT = "CREATE OR REPLACE VIEW scores_in_effect AS SELECT * FROM scores WHERE active"

# --- schema version 6 --------------------------------------------------------------

# Every stored mention created in [lo, hi) with the label it is read with: the user's
# manual label if any, else the label of the score in effect; NULL for a near-duplicate
# copy and for a mention no scorer covers ("unscored"). ``compound`` (and the rest of the
# score) is the score in effect's, ``manual_label`` and ``label_origin`` the user's. The
# brand's own posts (``own``, schema version 7) are here: a thread is read from this
# (storage.care). The window is a parameter so that both tables' scans prune row groups
# by creation time.
THREAD_MENTIONS = """
CREATE OR REPLACE MACRO thread_mentions(lo, hi) AS TABLE
SELECT m.source, m.id, m.brand, m.created_at, m.author, m.url, m.text, m.lang, m.text_hash,
       m.conversation_id, m.parent_id, m.likes, m.reposts, m.replies, m.thread_context, m.duplicate,
       CASE WHEN m.duplicate THEN NULL ELSE coalesce(l.label, s.label) END AS label,
       coalesce(l.label, s.label) IS NULL AND NOT m.duplicate AS unscored,
       s.compound, s.pos, s.neu, s.neg, s.scorer, s.scorer_version, s.label AS scorer_label,
       l.label AS manual_label, l.origin AS label_origin, coalesce(m.own, false) AS own
FROM mentions m
LEFT JOIN scores_in_effect s
    ON s.source = m.source AND s.id = m.id AND s.brand = m.brand AND s.created_at >= lo AND s.created_at < hi
LEFT JOIN labels l ON l.source = m.source AND l.id = m.id AND l.brand = m.brand
WHERE m.created_at >= lo AND m.created_at < hi
"""

# What counts for mood, defined once (every mood reader selects from it): the mentions
# of thread_mentions but the brand's own posts (a brand praising itself is not mood, and
# its replies are not people talking about it), so they count neither in mood nor in
# volume, nor in a thread's people-counted figures (storage.rollup); near-duplicate
# copies and unscored mentions count in volume only (label NULL).
MOOD_MENTIONS = """
CREATE OR REPLACE MACRO mood_mentions(lo, hi) AS TABLE
SELECT * FROM thread_mentions(lo, hi) WHERE NOT own
"""

# A label as the +1, 0 or -1 a mention counts in a net figure (positive - negative): the
# one SQL copy of that mapping (storage.rollup, storage.views' care_threads_opened); NULL
# for no label. Schema version 9.
LABEL_VALUE = ("CREATE OR REPLACE MACRO label_value(label) AS "
               "CASE label WHEN 'positive' THEN 1 WHEN 'negative' THEN -1 WHEN 'neutral' THEN 0 END")

# Net Sentiment Score and its standard error from counts (analysis.mood.net_sentiment and
# net_sentiment_se, which tests/storage/test_schema.py checks these against): the one
# SQL copy, used by the hourly stage and the views.
NSS_MACROS = (
    "CREATE OR REPLACE MACRO nss(positive, negative, scored) AS "
    "CASE WHEN scored > 0 THEN 100.0 * (positive - negative) / scored END",
    "CREATE OR REPLACE MACRO nss_se(positive, negative, scored) AS "
    "CASE WHEN scored > 0 THEN 100.0 * sqrt(greatest(0.0, (positive + negative) / scored "
    "- power((positive - negative) / scored, 2)) / scored) END",
)

model_id_seq = sa.Sequence("model_id_seq", metadata=metadata)

# Models trained on a brand's labels (analysis.learned): the payload is the model in a
# format read without pickle; ``label_keys`` (JSON) and ``labels_hash`` say which labels
# it learned from, ``evaluation`` (JSON) its cross-validated figures against VADER.
# status: trained | active | retired. ``replaced`` is the model it replaced when
# promoted (NULL: VADER), which a rollback restores.
models = sa.Table(
    "models",
    metadata,
    sa.Column("model_id", sa.BigInteger, model_id_seq, server_default=model_id_seq.next_value(), primary_key=True),
    sa.Column("brand", sa.String, nullable=False),
    sa.Column("scorer", sa.String, nullable=False),
    sa.Column("version", sa.String, nullable=False),
    sa.Column("trained_at", sa.DateTime, nullable=False),
    sa.Column("labels", sa.BigInteger, nullable=False),
    sa.Column("labels_hash", sa.String, nullable=False),
    sa.Column("label_keys", sa.String, nullable=False),
    sa.Column("params", sa.String, nullable=False),
    sa.Column("evaluation", sa.String, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("promoted_at", sa.DateTime),
    sa.Column("retired_at", sa.DateTime),
    sa.Column("replaced", sa.BigInteger),
)

# A brand whose scorer in effect changed: its stored mentions are re-scored oldest
# first, chunk by chunk, and their hours recomputed (listener.rescoring). ``through``
# is the creation time up to which it is done.
rescore_jobs = sa.Table(
    "rescore_jobs",
    metadata,
    sa.Column("brand", sa.String, primary_key=True),
    sa.Column("scorer", sa.String, nullable=False),
    sa.Column("version", sa.String, nullable=False),
    sa.Column("requested_at", sa.DateTime, nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("done", sa.BigInteger, nullable=False),
    sa.Column("through", sa.DateTime),
)
