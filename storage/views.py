"""The analysts' views: stable names and columns over the tables, documented column by
column (docs/analysts.md's tables are checked against ``COLUMNS`` by a test).

They live in the database file, so the DuckDB CLI, Python or any tool that opens the
snapshot sees them. Tables may change between releases; these views keep their names
and columns (a new column may be added, none renamed or removed without a note in the
release). A change to a view's SQL is a new migration that re-creates it.

Every figure follows the rules of the pipeline, read from the same database objects
(storage.schema: mood_mentions, nss, nss_se): the effective label of a mention is the
user's manual label when there is one, else the label of the score in effect;
near-duplicates and unscored mentions count in volume, not in mood.
"""

from __future__ import annotations

V_MENTIONS = """
CREATE OR REPLACE VIEW v_mentions AS
SELECT m.source, m.id, m.brand, m.created_at, m.text, m.author, m.url,
       m.conversation_id, m.parent_id, m.lang,
       m.likes, m.reposts, m.replies, m.thread_context, m.duplicate,
       v.compound AS vader_compound,
       v.label AS vader_label,
       m.scorer, m.scorer_version, m.scorer_label, m.manual_label,
       coalesce(m.manual_label, m.scorer_label) AS label,
       m.label IS NOT NULL AND NOT m.own AS counts_for_mood,
       m.own
FROM thread_mentions(TIMESTAMP '-infinity', TIMESTAMP 'infinity') m
LEFT JOIN scores v
    ON v.source = m.source AND v.id = m.id AND v.brand = m.brand AND v.created_at = m.created_at
    AND v.scorer = 'vader'
"""

V_HOURLY_MOOD = """
CREATE OR REPLACE VIEW v_hourly_mood AS
WITH per_hour AS (
    SELECT brand, hour,
           sum(mentions) AS mentions, sum(duplicates) AS duplicates, sum(unscored) AS unscored,
           sum(scored) AS scored, sum(positive) AS positive, sum(neutral) AS neutral,
           sum(negative) AS negative, sum(engagement) AS engagement,
           sum(conversations) AS conversations,
           list(source ORDER BY source) AS sources
    FROM hourly_mood
    GROUP BY brand, hour
)
SELECT brand, hour, mentions, duplicates, unscored, scored, positive, neutral, negative,
       nss(positive, negative, scored) AS nss,
       nss_se(positive, negative, scored) AS nss_se,
       engagement, conversations,
       mentions / sum(mentions) OVER (PARTITION BY hour) AS share_of_voice,
       sources
FROM per_hour
"""

V_CONVERSATIONS = """
CREATE OR REPLACE VIEW v_conversations AS
SELECT source, conversation_id, brand, first_at, last_at, mentions, scored,
       positive, neutral, negative, engagement, score, label, url, title,
       voices, authors, nss, nss_se
FROM conversations
"""

# Days are the ad account's own (its time zone from the plan, else from the export, else
# UTC); an hour of mood belongs to the local day its start falls in. The pre-period is
# the 28 days before the flight, as in docs/roi-method.md. Spend stays DECIMAL (exact cents,
# as stored): summed as DOUBLE it printed 21538.619999999995.
V_CAMPAIGN_DAILY = """
CREATE OR REPLACE VIEW v_campaign_daily AS
WITH spend_days AS (
    SELECT campaign_id, date, sum(spend) AS spend, any_value(currency) AS currency,
           sum(impressions) AS impressions, sum(clicks) AS clicks, sum(engagements) AS engagements
    FROM spend GROUP BY campaign_id, date
),
spend_campaigns AS (
    SELECT campaign_id, min(date) AS first_day, max(date) AS last_day, any_value(brand) AS brand,
           any_value(account_timezone) AS tz, any_value(campaign_name) AS name
    FROM spend GROUP BY campaign_id
),
campaigns AS (
    SELECT c.campaign_id, sc.name,
           coalesce(p.brand, sc.brand) AS brand,
           coalesce(p.account_timezone, sc.tz, 'UTC') AS tz,
           p.flight_start, p.flight_end, p.washout_days,
           least(p.flight_start - 28, sc.first_day) AS first_day,
           greatest(p.flight_end + p.washout_days, sc.last_day) AS last_day
    FROM (SELECT campaign_id FROM spend UNION SELECT campaign_id FROM campaign_plans) c
    LEFT JOIN campaign_plans p ON p.campaign_id = c.campaign_id
    LEFT JOIN spend_campaigns sc ON sc.campaign_id = c.campaign_id
),
days AS (
    SELECT c.*, CAST(unnest(range(c.first_day::TIMESTAMP, c.last_day::TIMESTAMP + INTERVAL 1 DAY,
                                  INTERVAL 1 DAY)) AS DATE) AS date
    FROM campaigns c
),
mood AS (
    SELECT c.campaign_id, CAST(timezone(c.tz, h.hour AT TIME ZONE 'UTC') AS DATE) AS date,
           sum(h.mentions) AS mentions, sum(h.scored) AS scored, sum(h.positive) AS positive,
           sum(h.neutral) AS neutral, sum(h.negative) AS negative
    FROM campaigns c
    JOIN hourly_mood h ON h.brand = c.brand
        AND h.hour >= c.first_day::TIMESTAMP - INTERVAL 1 DAY
        AND h.hour < c.last_day::TIMESTAMP + INTERVAL 2 DAY
    GROUP BY ALL
)
SELECT d.campaign_id, d.name AS campaign_name, d.brand, d.date, d.tz AS account_timezone,
       CASE WHEN d.flight_start IS NULL THEN NULL
            WHEN d.date < d.flight_start THEN 'pre'
            WHEN d.date <= d.flight_end THEN 'flight'
            WHEN d.date <= d.flight_end + d.washout_days THEN 'washout'
            ELSE 'post' END AS phase,
       coalesce(sd.spend, 0) AS spend, sd.currency, sd.impressions, sd.clicks, sd.engagements,
       coalesce(mo.mentions, 0) AS mentions, coalesce(mo.scored, 0) AS scored,
       coalesce(mo.positive, 0) AS positive, coalesce(mo.neutral, 0) AS neutral,
       coalesce(mo.negative, 0) AS negative,
       nss(mo.positive, mo.negative, mo.scored) AS nss,
       nss_se(mo.positive, mo.negative, mo.scored) AS nss_se
FROM days d
LEFT JOIN spend_days sd ON sd.campaign_id = d.campaign_id AND sd.date = d.date
LEFT JOIN mood mo ON mo.campaign_id = d.campaign_id AND mo.date = d.date
"""

# One row per thread with a customer post (storage.care, analysis.care): its opening
# (the first post not by the brand's own accounts), the brand's first post after it, and
# the last labelled customer post. Question-like: the opening asks (QUESTION_PATTERN). Labels are the
# ones mood counts with (thread_mentions: manual label, else the score in effect). The
# care rules (a thread needs a reply, it was resolved) live here alone: storage.care
# reads needs_reply and resolved, never recomputes them.
#
# The macro care_threads_opened(lo, hi) gives the threads opened in [lo, hi) reading only
# the mentions created from lo on (a thread opened at or after lo has no customer post
# before it; a thread with one is left out by the anti-join, which reads only the key
# columns of the older mentions): on 1M mentions over 90 days a 28-day period took 1.5 s
# through the whole-history view and 1.0 s this way. The view is the macro over all time.
# Two columns only the macro has are for the reply-effect estimate (analysis.reply_effect),
# so that storage.care reads a period's threads in one scan: opening_compound (the
# opening's compound) and later_customer_labels (each later labelled customer post as
# {at, v}, v its label_value, oldest first).
QUESTION_PATTERN = (
    r"\?"
    # a request or question anywhere (English): "anyone know", "can someone", "please help"
    r"|\b(anyone|anybody) knows?\b|\bany ideas?\b|\b(can|could|does|do) (anyone|anybody|someone|somebody)\b"
    r"|\b(please help|need help|help me)\b"
    # a question opening the post or a clause, where a '?' is often left out: "How do I
    # ...", "Does Acme ship ...", "hey acme, why won't ...", "Help, ..."; not "how good",
    # "what a", "could be better", "would love", "do yourself a favour"
    r"|(^|[.!,;:\n])\s*(how (do|does|did|can|could|should|to|long|much|many)|what (do|does|did|should|is|are|can)"
    r"|where (do|does|can|is|are)|when (will|does|do|is|can)"
    r"|why (is|are|does|do|did|won.?t|can.?t|isn.?t|doesn.?t)|who (can|do|does|is)|(is|are|was|does|did) \w+"
    r"|do (i|you|we|they)|(can|could|would|will|should) (i|you|we|they|it|someone|somebody|anyone|anybody)"
    r"|help)\b"
)
"""The question rule (case-insensitive, RE2): a thread's opening asks when it matches.
Its one home: the view below (docs/care.md, "The figures")."""

CARE_THREADS_OPENED = """
CREATE OR REPLACE MACRO care_threads_opened(lo, hi) AS TABLE
WITH posts AS (
    SELECT source, conversation_id, brand, id, created_at, text, label, compound, own, url
    FROM thread_mentions(lo, TIMESTAMP 'infinity')
),
earlier AS (
    SELECT DISTINCT source, conversation_id, brand FROM mentions
    WHERE created_at < lo AND NOT coalesce(own, false)
),
openings AS (
    SELECT source, conversation_id, brand,
           min(created_at) AS opened_at,
           first(id ORDER BY created_at, id) AS opening_id,
           first(label ORDER BY created_at, id) AS opening_label,
           regexp_matches(first(text ORDER BY created_at, id), '__QUESTION__', 'i') AS opening_question,
           first(compound ORDER BY created_at, id) AS opening_compound,
           first(url ORDER BY created_at, id) AS url,
           count(*) AS customer_posts,
           arg_max(label, created_at) FILTER (WHERE label IS NOT NULL) AS last_customer_label,
           max(created_at) AS last_customer_at,
           list(struct_pack(at := created_at, v := label_value(label)) ORDER BY created_at, id)
               FILTER (WHERE label IS NOT NULL) AS customer_labels
    FROM posts WHERE NOT own
    GROUP BY ALL
    HAVING min(created_at) < hi
),
replies AS (
    SELECT o.source, o.conversation_id, o.brand, count(*) AS brand_posts, min(b.created_at) AS first_reply_at
    FROM openings o
    JOIN posts b
        ON b.own AND b.source = o.source AND b.conversation_id = o.conversation_id AND b.brand = o.brand
        AND b.created_at > o.opened_at
    GROUP BY ALL
)
SELECT o.source, o.conversation_id, o.brand, o.opened_at, o.opening_id, o.opening_label,
       o.opening_question,
       o.opening_label = 'negative' OR o.opening_question AS needs_reply,
       o.customer_posts,
       coalesce(r.brand_posts, 0) AS brand_posts,
       r.first_reply_at,
       date_diff('second', o.opened_at, r.first_reply_at) AS reply_seconds,
       o.last_customer_label, o.last_customer_at,
       o.opening_label = 'negative' AND o.last_customer_label IN ('positive', 'neutral') AS resolved,
       o.url,
       o.opening_compound,
       -- the opening is the first labelled customer post when it has a label
       CASE WHEN o.opening_label IS NULL THEN o.customer_labels ELSE o.customer_labels[2:] END
           AS later_customer_labels
FROM openings o
LEFT JOIN replies r USING (source, conversation_id, brand)
ANTI JOIN earlier e USING (source, conversation_id, brand)
""".replace("__QUESTION__", QUESTION_PATTERN)

CARE_THREADS = """
CREATE OR REPLACE VIEW care_threads AS
SELECT * EXCLUDE (opening_compound, later_customer_labels)
FROM care_threads_opened(TIMESTAMP '-infinity', TIMESTAMP 'infinity')
"""

VIEWS_SQL: dict[str, str] = {
    "v_mentions": V_MENTIONS,
    "v_hourly_mood": V_HOURLY_MOOD,
    "v_conversations": V_CONVERSATIONS,
    "v_campaign_daily": V_CAMPAIGN_DAILY,
    "care_threads": CARE_THREADS,
}

# What each view is, and each column: docs/analysts.md's "Views" tables must say the same.
DESCRIPTIONS: dict[str, str] = {
    "v_mentions": "one row per stored mention (source, id, brand) with the score in effect, VADER's beside it, and the user's label",
    "v_hourly_mood": "one row per brand and UTC hour, all sources together (from the hourly stage)",
    "v_conversations": "one row per thread (source, conversation_id, brand), scored by the hourly stage",
    "v_campaign_daily": "one row per campaign and account-local day: spend beside the brand's mood",
    "care_threads": "one row per thread with a customer post: its opening, the brand's first reply, how it ended",
}

COLUMNS: dict[str, dict[str, str]] = {
    "v_mentions": {
        "source": "connector that collected it (x, reddit, mastodon, bluesky, hackernews, feeds, demo, or an import's name)",
        "id": "the platform's id of the post (Mastodon: the status URI)",
        "brand": "the tracked brand it mentions; a post naming two brands is a row for each",
        "created_at": "when it was posted, UTC",
        "text": "the text as collected (HTML already turned to text)",
        "author": "the author's handle, when known",
        "url": "link to the post, when known",
        "conversation_id": "the thread it belongs to",
        "parent_id": "the post it replies to, if any",
        "lang": "language code, from the platform or detected",
        "likes": "likes (or upvotes, favourites) when collected",
        "reposts": "reposts (retweets, boosts) when collected",
        "replies": "replies when collected",
        "thread_context": "true when fetched as part of a matched thread rather than found by the search",
        "duplicate": "true for a near-duplicate copy of an earlier mention: counted in volume, not in mood",
        "vader_compound": "VADER's compound score in [-1, 1], kept whatever scorer is in effect; NULL when not English",
        "vader_label": "VADER's label: positive (>= 0.05), negative (<= -0.05), else neutral",
        "scorer": "the scorer whose score is in effect for the mention (vader, learned, or a configured one); NULL when none covers its language",
        "scorer_version": "that scorer's version (a learned model's version names the model)",
        "scorer_label": "the label of the score in effect",
        "manual_label": "the label a user set with 'listener label', NULL when none",
        "label": "the label every aggregate uses: manual_label if set, else scorer_label",
        "counts_for_mood": "true when the mention counts in mood figures (has a label, not a duplicate, not the brand's own)",
        "own": "true when posted by one of the brand's own accounts (own_accounts): kept in its thread, out of mood and volume",
    },
    "v_hourly_mood": {
        "brand": "the brand",
        "hour": "start of the UTC hour",
        "mentions": "all mentions in the hour (volume)",
        "duplicates": "near-duplicate copies among them",
        "unscored": "mentions without a label (not English, no manual label)",
        "scored": "mentions counting for mood: mentions - duplicates - unscored",
        "positive": "scored mentions labelled positive",
        "neutral": "scored mentions labelled neutral",
        "negative": "scored mentions labelled negative",
        "nss": "Net Sentiment Score, 100 (positive - negative) / scored; NULL when nothing scored",
        "nss_se": "standard error of nss",
        "engagement": "likes + reposts + replies of the hour's mentions",
        "conversations": "threads active in the hour (summed over sources)",
        "share_of_voice": "the brand's mentions / all tracked brands' mentions in the hour",
        "sources": "the sources with mentions in the hour",
    },
    "v_conversations": {
        "source": "the source of the thread",
        "conversation_id": "the thread's id on that source",
        "brand": "the brand",
        "first_at": "the first stored mention of the thread, UTC",
        "last_at": "the latest stored mention of the thread, UTC",
        "mentions": "stored mentions in the thread",
        "scored": "of those, counting for mood",
        "positive": "scored mentions labelled positive",
        "neutral": "scored mentions labelled neutral",
        "negative": "scored mentions labelled negative",
        "engagement": "likes + reposts + replies over the thread, reported beside its mood, not in it",
        "score": "nss / 100, from -1 to 1; NULL when nothing in the thread is scored",
        "label": "positive when nss - 1.96 nss_se > 0, negative when nss + 1.96 nss_se < 0, else neutral",
        "url": "link to the thread's first stored mention, when known",
        "title": "the first 280 characters of that mention",
        "voices": "people-hours with a scored mention: an author's mentions of the thread in one UTC hour are one voice",
        "authors": "distinct authors among the voices (a mention without an author counts as one)",
        "nss": "NSS over the voices: 100 x the mean of each voice's mean label (+1, 0, -1)",
        "nss_se": "standard error of nss",
    },
    "v_campaign_daily": {
        "campaign_id": "the campaign, from the spend export or the plan",
        "campaign_name": "its name in the export",
        "brand": "the brand it promotes (the plan's, else the export's)",
        "date": "a day in the ad account's time zone",
        "account_timezone": "that time zone (the plan's, else the export's, else UTC)",
        "phase": "pre, flight, washout or post per the plan; NULL without a plan",
        "spend": "spend that day (0 when none)",
        "currency": "spend currency",
        "impressions": "impressions that day, when exported",
        "clicks": "clicks that day, when exported",
        "engagements": "engagements that day, when exported",
        "mentions": "the brand's mentions that day, all sources",
        "scored": "of those, counting for mood",
        "positive": "labelled positive",
        "neutral": "labelled neutral",
        "negative": "labelled negative",
        "nss": "the day's Net Sentiment Score",
        "nss_se": "its standard error",
    },
    "care_threads": {
        "source": "the source of the thread",
        "conversation_id": "the thread's id on that source",
        "brand": "the brand",
        "opened_at": "the thread's first customer post (not by the brand's own accounts), UTC",
        "opening_id": "that post's id",
        "opening_label": "its label (manual, else the score in effect); NULL when unscored",
        "opening_question": "true when the opening asks: a '?', or a question or request phrase in English (docs/care.md)",
        "needs_reply": "true when the opening is negative or question-like",
        "customer_posts": "posts in the thread not by the brand's own accounts",
        "brand_posts": "posts by the brand's own accounts after the opening",
        "first_reply_at": "the brand's first post after the opening, UTC; NULL when unanswered",
        "reply_seconds": "wall-clock seconds from the opening to that reply ('listener care' counts business hours where configured)",
        "last_customer_label": "the label of the last labelled customer post",
        "last_customer_at": "the last customer post, UTC",
        "resolved": "true when the thread opened negative and its last labelled customer post is positive or neutral",
        "url": "link to the opening post, when known",
    },
}
