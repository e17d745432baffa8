"""The ``reddit`` connector: brand mentions from Reddit through praw (application-only OAuth).

A run, for one brand:

1. **Search** ``r/all`` for submissions (``compile_reddit``), ``sort=new``, newest first,
   down to the saved cursor (or ``history_days`` back on a first run).
2. For every new submission that passes the local query check (``connectors.query``),
   fetch its **comment tree** (``replace_more(limit=comment_tree_limit)``). Those comments
   are *thread context*: they need not name the brand (``Mention.thread_context``).
3. If ``subreddits`` are configured, **poll their new comments** (``r/a+b/comments``)
   down to the cursor. These are ordinary mentions: the pipeline keeps only the ones
   that name the brand.

4. For each of the brand's **own accounts** (``own_accounts``), its new comments
   (``/user/NAME/comments``, a stream each) and, as thread context, the thread each one
   is in: the submission that opens it (it need not name the brand) and its comment tree,
   up to 20 threads per account and run. Those threads are then **watched**: read again
   in later runs (up to 20 a run, the least recently read first) until
   ``thread_watch_hours`` after the brand's last comment there, so the customers'
   replies to the brand come even from subreddits nobody polls.

Reddit's search covers submissions only; comments come from matched threads, the polled
subreddits and the threads the brand answered.

Cursor (opaque to everything else; JSON)::

    {"v": 1,
     "submissions": STREAM,
     "comments": STREAM | null,            # only when subreddits are polled
     "subreddits": "a+b",                  # which comment stream that was
     "own": {account: STREAM},             # only with own accounts
     "watch": {submission_id: [utc of the brand's newest comment there, utc last read]}}
    STREAM = {"newest_utc": float | null,  # newest item read (never past the run start)
              "seen": {id: created_utc},   # ids read that a later pass may meet again
              "gaps": [{"after": fullname, "after_utc": float, "stop_utc": float, "depth": int}]}

Each run reads a stream from the top down to ``newest_utc - OVERLAP_SECONDS`` (Reddit's
search index lags: a post may show up after newer ones were read), skipping ids in
``seen``; so nothing is processed twice and a late-indexed post is still found.

Listings are newest-first and have no "since" parameter, so the checkpoint is carried by
the **last batch of a complete run only**; every earlier batch has ``checkpoint=None``. A
run that fails or is stopped leaves the cursor where it was and the next run reads the
same stretch again (storage keeps each mention once).

A run cut short by ``max_submissions_per_run`` / ``max_comments_per_run`` does not move
the cursor past what it did not read: the unread stretch is kept as a *gap* (the
fullname of the last item read, which Reddit's ``after`` parameter resumes from, down
to the old cursor). The next run first reads what is new, then continues the gaps,
newest first, within the same caps.

What cannot be recovered: Reddit builds every listing from at most ~1,000 items. After
downtime (or a backlog) longer than that, the items between the end of the listing and
the cursor are gone from the API; the run logs a warning naming the lost stretch and
moves on. The same holds for ``history_days``: nothing older than that is read, even
after longer downtime. Comments posted to a matched thread after its tree was read are
only collected if the thread's subreddit is polled, or the brand has answered there
(watched threads, above).

Rate limits and retries: prawcore throttles from the ``x-ratelimit-*`` headers and
retries 5xx / dropped connections twice. Both waits go through the injected
``RetryPolicy.sleep`` (so they are visible and tests are instant); a throttle wait longer
than ``RetryPolicy.max_delay`` ends the run with ``RateLimitedError`` instead of
blocking. Every API call runs under ``with_retries``, our outer cap. Library exceptions
are translated in ``client`` (``_translate``) and none escapes.
"""

# The entry point (``[project.entry-points."listener.connectors"] reddit``) names this
# package: it exposes SETTINGS and create, as every connector module does.
from connectors.reddit.client import PRAWCORE_STATUS_ERRORS, build_reddit
from connectors.reddit.connector import BATCH_SIZE, SETTINGS, RedditConnector, create
from connectors.reddit.cursor import CURSOR_VERSION, MAX_PAGES_PER_PASS
from connectors.reddit.mapping import _thing_data, comment_mention, submission_mention

__all__ = [
    "BATCH_SIZE", "CURSOR_VERSION", "MAX_PAGES_PER_PASS", "PRAWCORE_STATUS_ERRORS", "SETTINGS", "RedditConnector",
    "_thing_data", "build_reddit", "comment_mention", "create", "submission_mention",
]
