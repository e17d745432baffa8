"""The ``bluesky`` connector: Bluesky post search (atproto) or the Jetstream firehose.

Two modes, chosen by the ``mode`` setting:

``search`` (default)
    ``app.bsky.feed.searchPosts`` through the ``atproto`` client (pinned 0.0.73), logged
    in with an app password. Reaches back ``history_days`` on the first run and after
    downtime; newest first; costs a few requests per brand and run.
``jetstream``
    Bluesky's Jetstream websocket (``connectors.bluesky.jetstream``): every new post on
    the network, replayed from a ``time_us`` cursor and matched locally. No login.

Both modes key a post by its ``at://`` URI, so switching modes does not store a post
twice, and each mode can resume from the other's cursor.

Talking to Bluesky (search mode)
--------------------------------
``atproto.Client(base_url=...)`` with our own HTTP timeout. ``login(...,
fetch_bsky_profile=False)`` happens lazily, once per connector (under a lock: the
daemon fetches brands concurrently), and again once per run if the session expires
in a way the client cannot refresh on its own. Search pages are requested with the
client's raw ``invoke_query`` (the same session, auth header, refresh and error
handling as ``client.app.bsky.feed.search_posts``) so that the body stays a dict: the
typed response model is strict, and one malformed post would fail the whole page
instead of being skipped and counted. Every request goes through
``connectors.retry.with_retries``; errors are translated here, once:

    RateLimitExceededError (429)            RateLimitedError(retry_after from retry-after
                                            or ratelimit-reset)
    NetworkError, InvokeTimeoutError, 5xx,  RetryableError
    408, httpx transport errors, a body
    that is not a JSON object
    401/403, any 400 on createSession       AuthError naming both environment variables
    (AuthenticationRequired, ...)
    ExpiredToken / InvalidToken, 401 on a   log in again (once per run), then AuthError
    search
    400 on searchPosts                      QueryError (the query was refused)
    other 4xx, anything else from atproto   FatalError

Query
-----
Bluesky search has no OR (``a OR b`` finds posts holding "a", "OR" and "b";
bluesky-social/atproto#3751 and social-app#1522 are open), so each term, hashtag and
handle is its own query (``"a phrase"`` quoted, ``#tag``, a handle without ``@``), and
the results are merged by URI. Exclusions are not sent: the local re-check
(``connectors.query.matches``) applies them, and the platform query only needs to be a
superset. ``lang`` is sent when the brand has exactly one language. The page cap
``max_pages_per_run`` applies to each of these queries.

Cursor (search)
---------------
Search is newest first and filters on a post's ``sortAt`` (the earlier of its
``indexedAt`` and ``createdAt``; ``since`` inclusive, ``until`` exclusive). The cursor
keeps one state per query (``{"queries": {q: state}}``); each state is:

``{"since": S}``
    Every post with sortAt before S is stored. The run reads ``[S - overlap_seconds,
    run start)`` newest first. ``overlap_seconds`` re-reads a little: posts reach the
    search index a moment after their sortAt, and our clock may differ from Bluesky's.
    What is re-read is stored once (storage is keyed by URI, and the pipeline does not
    even score it again). A complete read moves S to the run start, never further.
``{"since": S, "gap_until": G, "gap_resume": R}``
    An earlier run read ``[G, R)`` and was cut (page cap, a rate limit, an error) before
    it reached S: ``[S, G)`` is unread. The next run reads that gap first (``until=G``,
    newest first); if it is cut again only G moves down. When the gap is read, S
    becomes R and the same run goes on with ``[R - overlap, run start)``. G is the
    oldest sortAt read plus 1 ms, so the posts sharing that instant are read again
    rather than skipped.

The state is updated after every page, so it is always resumable; only the last batch
of a run carries it as a checkpoint, and a run that ends with an error yields that
checkpoint first (its progress is kept) and then raises. A state older than
``history_days`` is moved up to ``run start - history_days`` and the lost stretch is
logged: after a long downtime the run reaches back ``history_days``, no further.
A Jetstream cursor ``{"time_us": T}`` is read as ``since = T`` for every query.
"""

# The entry point (``[project.entry-points."listener.connectors"] bluesky``) names this
# package: it exposes SETTINGS and create, as every connector module does. Each mode's
# modules (``search`` with ``client``, ``mapping``, ``cursor``; ``jetstream``) are
# imported from their own names: config loading reads SETTINGS and must not pay for
# atproto, and jetstream mode never loads search mode (or the reverse).
from connectors.bluesky.connector import MODES, SETTINGS, create

__all__ = ["MODES", "SETTINGS", "create"]
