"""The ``mastodon`` connector: hashtag timelines (and, with a token, status search) on
one or more Mastodon instances, through Mastodon.py.

What is read
------------
For each configured instance, for each of the brand's hashtags (``BrandQuery.hashtags``
without the ``#``, and every term turned into a hashtag: lowercase, letters and digits
only, so "Acme Co" follows ``#acmeco``):

    GET /api/v1/timelines/tag/{tag}        timeline_hashtag(tag, min_id=..., limit=40)

Hashtag timelines need no account on most instances and are the dependable path. With
``use_search`` and a token (``access_token_env``), the token's instance (the first one
in ``instances``: a token is only valid on the instance that issued it, so it is never
sent to the others) is also searched, one query per brand term:

    GET /api/v2/search?type=statuses       search_v2(term, result_type="statuses", resolve=False, min_id=...)

Mastodon refuses status search without a login, so anonymous instances are not searched.

Each status that matches the brand locally (``connectors.query.matches``) and is a
reply, or has replies, is looked up with ``status_context`` (bounded by
``max_threads_per_run`` per instance and run): ``ancestors[0]`` is the thread root,
whose URI becomes ``conversation_id``, and with ``fetch_threads`` its ``descendants``
are yielded as ``thread_context`` mentions. Replies mostly come after a post has been
found, so a matched status is remembered ("watched") until it is ``thread_watch_hours``
old, and its context fetched again on later runs at growing intervals (at least 15 min,
and as long as the post was old at the last check: about 7 checks in its first 24
hours), least recently checked first, within the same per-run bound.

Mapping
-------
``id`` is the status URI: canonical across instances, so a post seen on several
instances is one mention (storage keys on ``(source, id, brand)``; a run also drops
repeats itself). ``url`` is the status url (the URI if it has none); ``author`` the
account's full handle ``user@domain``; ``text`` the HTML content as plain text, with the
content warning (``spoiler_text``) before it; ``metrics`` likes = favourites_count,
reposts = reblogs_count, replies = replies_count. Reblogs are left out: they are no new
speech, and the original's ``reblogs_count`` counts them. ``parent_id`` is the URI of
the status replied to when this run has seen it, else its instance-local id.

Cursor
------
One JSON dict per brand, an entry per instance (instance-local ids: ids differ between
instances)::

    {"instances": {"https://mastodon.social": {
        "tags": {"acme": "113456789012345678"},      newest status id read, per hashtag
        "search": "113456789012345000",               newest search hit id, or null
        "threads": {"113456...": {"uri": ..., "root": ..., "posted": ISO, "checked": ISO|null}}}}}

* A hashtag not in the cursor is read newest first, back to ``history_days``, following
  the ``Link: rel="next"`` (``max_id``) pages; its id is saved when that read ends. If the
  page cap ends it first, the older part of the history is not back-filled (a warning
  says so): a first run is a back-fill, and the next runs go on from the newest post.
* A hashtag in the cursor is read oldest first: ``min_id`` returns the page just above
  the id, and ``Link: rel="prev"`` (``min_id`` of the newest status of the page) the
  next one up. Nothing above the saved id can be skipped, so every page is checkpointed,
  and a run cut by the page cap, a failure or a downtime backlog continues where it
  stopped. Mastodon gives a post an id from its creation time, so a post that federates
  late gets an id below ones already read: the request starts ``LATE_ARRIVAL_MARGIN``
  below the saved id (for Mastodon's numeric snowflake ids) and storage drops what is
  read twice.
* Search is newest first (``offset`` paging, ``min_id`` as a filter): its id is saved
  only when every term was read to the end. A run cut by the page cap keeps the old
  ``min_id`` (a warning says so) and the next run reads the same range again; a first
  search cut by the cap saves its newest hit, like a hashtag's first run.

Errors
------
Mastodon.py is built with ``ratelimit_method="throw"`` (its "wait" retries forever), a
request timeout, and a version given up front (``ASSUMED_VERSION``: its own version
lookup can recurse without end). Every request goes through
``connectors.retry.with_retries``; Mastodon.py errors are translated once
(``client``, ``MastodonConnector._status_error``):

    MastodonRatelimitError              RateLimitedError(retry_after = X-RateLimit-Reset - now)
    MastodonNetworkError (timeouts), 5xx, 408, a 200 that is not JSON
                                        RetryableError
    MastodonUnauthorizedError, 403      AuthError naming ``access_token_env``
    MastodonNotFoundError               a hashtag: no posts; a thread: deleted, forgotten
    other MastodonAPIError/MastodonError  FatalError

An instance that fails (after retries) is skipped for the run: the others go on, and
its cursor stays at its last stored page. The run ends with the error only when every
instance failed, or when the token was refused (AuthError: the source is parked until
the token is fixed); the other instances' batches are stored first either way.
"""

# The entry point (``[project.entry-points."listener.connectors"] mastodon``) names this
# package: it exposes SETTINGS and create, as every connector module does.
from connectors.mastodon.client import MASTODON_STATUS_ERRORS, Instance, _NotFound, build_client, normalize_instance_url
from connectors.mastodon.connector import SETTINGS, MastodonConnector, create, hashtags_for, search_queries
from connectors.mastodon.cursor import LATE_ARRIVAL_MARGIN
from connectors.mastodon.mapping import mention_from_status, read_status

__all__ = [
    "LATE_ARRIVAL_MARGIN", "MASTODON_STATUS_ERRORS", "SETTINGS", "Instance", "MastodonConnector", "_NotFound",
    "build_client", "create", "hashtags_for", "mention_from_status", "normalize_instance_url", "read_status",
    "search_queries",
]
