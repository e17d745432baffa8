"""The ``x`` connector: X (Twitter) API v2 recent search through tweepy.

Reads ``GET /2/tweets/search/recent`` (the last 7 days, newest first) with the brand
query from ``connectors.query.compile_x``, and ``GET /2/tweets/counts/recent`` for the
cheap hourly volume signal (``hourly_counts``). Reads are billed per post, so every run
is bounded by a page cap, a per-run post budget and a monthly post budget per brand.

Talking to X
------------
``tweepy.Client`` is built with ``wait_on_rate_limit=False`` (its own 429 loop has no
cap) and ``return_type=requests.Response`` (to read the ``x-rate-limit-*`` headers and
the raw JSON). Its host is fixed, so ``base_url`` is honoured by an ``HTTPAdapter``
mounted on ``client.session`` that rewrites the ``https://api.twitter.com`` prefix and
sets a request timeout. Every request goes through ``connectors.retry.with_retries``;
tweepy and requests errors are translated once (``XConnector._attempt``, ``_status_error``):

    429                        RateLimitedError(retry_after = x-rate-limit-reset - now + 1 s, or None)
    5xx, timeout, connection   RetryableError
    200 with a body that is not a JSON object of the v2 shape
                               RetryableError (the page is asked for again: a truncated
                               body or a gateway's HTML page is transient)
    401, 403                   AuthError naming the bearer-token variable
    400                        QueryError (the query was refused) / FatalError, with X's message
    other 4xx                  FatalError

When a response says ``x-rate-limit-remaining: 0`` the run stops before the next page
(as if the page cap were reached) instead of running into a 429.

Cursor
------
Search is newest first, so a cursor can only say "everything above this id is read" once
a window has been read down to its bottom. The cursor (one per brand) is a JSON dict:

``None``
    First run: read from ``start_time = run start - history_days`` (at most the 7-day
    window) up to now.
``{"since_id": S}`` or ``{"start_time": T}``
    Steady state: every post up to S (or created before T) is stored; the run reads
    ``since_id=S`` (or ``start_time=T``) up to now, and when it completes the cursor
    becomes ``{"since_id": <newest id seen>}``. A complete run that found nothing keeps
    the bound, unless it is more than a day old: then it becomes ``start_time = run start
    - 1 h``, so a quiet brand's cursor never ages out of the 7-day window.
``{..., "until_id": U, "newest_id": N}``
    Gap: an earlier run read the newest posts down to U (inclusive) and then stopped
    early (page cap, per-run or monthly budget, rate limit spent). Posts between the
    lower bound (S or T) and U are still unread; posts in [U, N] are stored. The next
    run first fills the gap (``since_id=S, until_id=U``, newest first); if it stops
    early again only U moves down. Once the gap is read down to S the lower bound
    becomes ``since_id=N`` and the same run goes on reading newer posts. X refuses
    ``until_id`` together with ``start_time``, so a T lower bound is sent as the
    smallest post id of that millisecond (post ids are snowflakes that carry their time).

Every cursor also carries ``{"month": "YYYY-MM", "posts_read": n}``: the posts billed
this UTC month for the brand (every post X returned: retweets and unreadable items
included). Only the last batch of a run carries a checkpoint; the batches of each page
carry none. A run that fails keeps the old cursor, so its pages are read (and billed)
again on the next run, and their posts are not counted towards the month.

Downtime: recent search only reaches 7 days back. A lower bound (or a gap) older than
the window is moved up to the window's start, and the lost stretch is logged as a
warning: those posts cannot be fetched any more.
"""

# The entry point (``[project.entry-points."listener.connectors"] x``) names this
# package: it exposes SETTINGS and create, as every connector module does.
from connectors.x.client import X_STATUS_ERRORS, build_client
from connectors.x.connector import SETTINGS, XConnector, _page_bounds, create
from connectors.x.mapping import id_time, mention_from_tweet, mentions_from_page, since_id_for

__all__ = [
    "SETTINGS", "X_STATUS_ERRORS", "XConnector", "_page_bounds", "build_client", "create", "id_time",
    "mention_from_tweet", "mentions_from_page", "since_id_for",
]
