"""The ``reddit`` connector: its settings, ``RedditConnector`` and the entry-point factory
``create`` (the overview is in ``connectors.reddit``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import praw
import requests

from connectors.base import Batch, BrandQuery, Clock, Cursor, Mention, ensure_utc
from connectors.errors import AuthError, FatalError, MalformedPayloadError
from connectors.query import account_key, compile_reddit, matches
from connectors.retry import RetryPolicy, with_retries
from connectors.settings import CENTURY_DAYS, HTTP_SCHEMES, Setting, settings_table, validated
from connectors.reddit.client import (
    DEFAULT_USER_AGENT,
    _PAYLOAD_ERRORS,
    NotFoundError,
    _adopt_prawcore_waits,
    _translate,
    build_reddit,
)
from connectors.reddit.mapping import (
    SOURCE,
    _thing_data,
    _tree_comment_data,
    _tree_submission_data,
    comment_mention,
    submission_mention,
)
from connectors.reddit.cursor import (
    CURSOR_VERSION,
    PAGE_SIZE,
    _ListingWalk,
    _Page,
    _Stream,
    _listing_children,
    _load_cursor,
    _load_own_streams,
    _time_filter,
)

log = logging.getLogger("listener.connectors.reddit")
T = TypeVar("T")


BATCH_SIZE = 100
MAX_OWN_THREADS_PER_RUN = 20
"""Threads the brand's own comments answered whose comment tree one run reads, per account."""
MAX_WATCHED_THREADS_PER_RUN = 20
"""Threads the brand answered in earlier runs whose comment tree one run reads again (the
least recently read first), for the customers' later replies."""
MAX_WATCHED_THREADS = 500
"""Threads the cursor watches at most (the most recently answered)."""
_SUBREDDIT_NAME = re.compile(r"[A-Za-z0-9_]{2,21}")


def _subreddit_name(name: str) -> str:
    """``r/Coffee`` or ``/r/Coffee`` -> ``Coffee``."""
    return re.sub(r"^/?r/", "", name.strip())


def _subreddits_problem(names: Sequence[str]) -> str | None:
    bad = [name for name in map(_subreddit_name, names) if not _SUBREDDIT_NAME.fullmatch(name)]
    return f"not subreddit names: {bad}" if bad else None


def _host_problem(url: str) -> str | None:
    return None if re.match(r"https?://[^/\s]+", url) else f"must be an http(s) URL, got {url!r}"


SETTINGS = settings_table(
    Setting("client_id_env", str, "REDDIT_CLIENT_ID", "Environment variable holding the OAuth app's client id.",
            required=True),
    Setting("client_secret_env", str, "REDDIT_CLIENT_SECRET", "Environment variable holding the OAuth app's secret.",
            required=True),
    Setting("user_agent", str, DEFAULT_USER_AGENT,
            "The User-Agent Reddit sees, which Reddit asks to be 'platform:app:version (by "
            "/u/you)': name your account in it.",
            example="python:brandmood-listener:0.1 (by /u/your_username)",
            shown_default="names this project and its version",
            check=lambda agent: None if len(agent.strip()) >= 10
            else "must describe the app (Reddit blocks generic agents)"),
    Setting("base_url", str, "https://oauth.reddit.com", "API host (praw's oauth_url).",
            schemes=HTTP_SCHEMES, check=_host_problem),
    Setting("auth_url", str, "https://www.reddit.com", "Host the OAuth token comes from (praw's reddit_url).",
            schemes=HTTP_SCHEMES, check=_host_problem),
    Setting("subreddits", list, [], "Subreddits whose new comments are polled and matched, names without 'r/'.",
            check=_subreddits_problem, example=["coffee"]),
    Setting("history_days", int, 7,
            "How far back the first run of a brand reads (and the most any run reads back, "
            "after long downtime).",
            min=1, max=CENTURY_DAYS),
    Setting("max_submissions_per_run", int, 250,
            "New submissions one run of one brand reads; the rest waits for the next run.", min=1),
    Setting("comment_tree_limit", int, 8, "'load more comments' expansions per matched submission (one request each).",
            min=0),
    Setting("max_comments_per_run", int, 1000,
            "Polled subreddit comments one run of one brand reads; the rest waits for the "
            "next run.", min=1),
    Setting("thread_watch_hours", int, 24,
            "The brand's own accounts: for how long (hours) after the brand's last comment in a "
            "thread its comment tree is read again for new replies (up to 20 threads a run).",
            min=0, max=24 * CENTURY_DAYS),
    Setting("request_timeout", float, 16.0,
            "How long (seconds) to wait for Reddit to answer one request.", above=0, max=300),
)


# -- the connector -----------------------------------------------------------------------


class RedditConnector:
    """Brand mentions from Reddit: submission search, matched threads, polled subreddits."""

    name = SOURCE

    def __init__(
        self,
        reddit: praw.Reddit,
        clock: Clock,
        *,
        subreddits: Sequence[str] = (),
        history_days: int = 7,
        max_submissions_per_run: int = 250,
        comment_tree_limit: int = 8,
        max_comments_per_run: int = 1000,
        thread_watch_hours: int = 24,
        retry: RetryPolicy | None = None,
        env_vars: Sequence[str] = ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET"),
    ) -> None:
        self.reddit = reddit
        self._clock = clock
        self.subreddits = tuple(subreddits)
        self.history_days = history_days
        self.max_submissions_per_run = max_submissions_per_run
        self.comment_tree_limit = comment_tree_limit
        self.max_comments_per_run = max_comments_per_run
        self.thread_watch_seconds = thread_watch_hours * 3600
        self.retry = retry or RetryPolicy()
        self.env_vars = tuple(env_vars)
        _adopt_prawcore_waits(reddit, self.retry.sleep, self.retry.max_delay)

    # -- API calls, each under the retry cap and translated at the edge --

    def _api(self, what: str, call: Callable[[], T], *, payload_is_parsed: bool = False) -> T:
        def attempt() -> T:
            try:
                return call()
            except Exception as exc:
                translated = _translate(exc, what, self.env_vars, payload_is_parsed=payload_is_parsed)
                if translated is exc:
                    raise
                raise translated from exc

        return with_retries(attempt, self.retry)

    def _listing(self, what: str, path: str, params: Mapping[str, Any]) -> _Page:
        """One listing page (raw JSON: praw's objects would refuse a whole page over one bad
        child, and fetch missing fields lazily, one request each)."""
        return self._api(what, lambda: _listing_children(
            self.reddit.request(method="GET", path=path, params=dict(params)), what))

    def _comment_tree(self, submission_id: str) -> tuple[Any, list[Any]]:
        """The submission (read with its comments, no request more) and its comments, with
        up to comment_tree_limit 'more' expanded."""

        def read() -> tuple[Any, list[Any]]:
            submission = self.reddit.submission(id=submission_id)
            forest = submission.comments
            forest.replace_more(limit=self.comment_tree_limit)
            return submission, forest.list()

        # A retry starts over with a fresh Submission: praw's forest is half-updated after
        # a failure inside replace_more.
        return self._api(f"reading the comments of {submission_id}", read, payload_is_parsed=True)

    # -- fetch --

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        """Yield batches of mentions newer than the cursor; only the last one carries it."""
        run_start = ensure_utc(self._clock(), "clock()")
        now = run_start.timestamp()
        floor = now - self.history_days * 86400
        compiled = compile_reddit(query)  # a QueryError is fatal for this brand
        subreddit_key = "+".join(self.subreddits)
        submissions_state, comments_state = _load_cursor(since, subreddit_key)

        search = self.reddit.subreddit("all")

        def search_page(after: str | None, stop_utc: float) -> _Page:
            # praw builds the request (path, parameters); the page is read as JSON.
            listing = search.search(compiled, sort="new", time_filter=_time_filter(now - stop_utc), limit=PAGE_SIZE)
            params = {**listing.params, **({"after": after} if after else {})}
            return self._listing(f"searching r/all for {query.brand!r}", listing.url, params)

        walk = _ListingWalk(submissions_state, read_page=search_page, budget=self.max_submissions_per_run,
                            floor_utc=floor, now_utc=now, label=f"search for {query.brand!r}")
        buffer: list[Mention] = []
        skipped = 0
        for child in walk.items():
            try:
                submission = submission_mention(_thing_data(child, "t3"), query.brand, run_start)
            except MalformedPayloadError as exc:
                skipped += 1
                log.warning("reddit: skipped an unreadable submission in the search for %r: %s", query.brand, exc)
                continue
            buffer.append(submission)
            if not matches(query, submission.text, submission.author, submission.lang):
                # Search is fuzzy; the pipeline rejects this one, and its thread is not read.
                if len(buffer) >= BATCH_SIZE:
                    yield Batch(tuple(buffer), None, skipped)
                    buffer, skipped = [], 0
                continue
            tree_mentions, tree_skipped = self._thread(submission, query.brand, run_start)
            buffer.extend(tree_mentions)
            skipped += tree_skipped
            yield Batch(tuple(buffer), None, skipped)
            buffer, skipped = [], 0
        assert walk.state is not None
        new_submissions = walk.state

        new_comments: _Stream | None = None
        if self.subreddits:
            stream = self.reddit.subreddit(subreddit_key)
            read_page = self._page_reader(f"reading new comments of r/{subreddit_key}",
                                          lambda: stream.comments(limit=PAGE_SIZE))
            walk = _ListingWalk(comments_state, read_page=read_page, budget=self.max_comments_per_run,
                                floor_utc=floor, now_utc=now, label=f"comments of r/{subreddit_key}")
            skips = [0]
            for mention in _comments(walk, query.brand, run_start, f"in r/{subreddit_key}", skips):
                buffer.append(mention)
                if len(buffer) >= BATCH_SIZE:
                    yield Batch(tuple(buffer), None, skipped + skips[0])
                    buffer, skipped, skips[0] = [], 0, 0
            skipped += skips[0]
            assert walk.state is not None
            new_comments = walk.state

        # The brand's own accounts: their comments, newest first, one stream each (the
        # pipeline marks them own by their author); the threads they answered are read
        # as context, so a customer's answer to the brand is there too.
        own_streams = _load_own_streams(since, [account_key(a) for a in query.accounts_on(self.name)])
        watch = _load_watch(since, now - self.thread_watch_seconds) if own_streams else {}
        for account, state in own_streams.items():
            redditor = self.reddit.redditor(account)
            read_page = self._page_reader(f"reading the comments of u/{account}",
                                          lambda redditor=redditor: redditor.comments.new(limit=PAGE_SIZE))
            walk = _ListingWalk(state, read_page=read_page, budget=self.max_comments_per_run, floor_utc=floor,
                                now_utc=now, label=f"comments of u/{account}")
            threads: dict[str, float] = {}  # submission id: the brand's newest comment there
            skips = [0]
            try:
                for mention in _comments(walk, query.brand, run_start, f"of u/{account}", skips):
                    buffer.append(mention)
                    thread = mention.conversation_id or mention.id
                    threads[thread] = max(threads.get(thread, 0.0), mention.created_at.timestamp())
            except NotFoundError as exc:
                log.warning("reddit: brand %s: u/%s has no comments to read (own_accounts): %s",
                            query.brand, account, exc)
                continue
            skipped += skips[0]
            for submission_id, answered_utc in threads.items():
                # Watched for later replies; a thread over this run's budget waits there.
                last_read = watch.get(submission_id, [0.0, 0.0])
                watch[submission_id] = [max(answered_utc, last_read[0]), last_read[1]]
            for submission_id in list(threads)[:MAX_OWN_THREADS_PER_RUN]:
                # The thread with the post that opens it (the customer's, which need not
                # name the brand).
                watch[submission_id][1] = now
                tree, tree_skipped = self._thread_of(submission_id, query.brand, run_start, with_submission=True)
                _extend_new(buffer, tree)
                skipped += tree_skipped
            if len(buffer) >= BATCH_SIZE:
                yield Batch(tuple(buffer), None, skipped)
                buffer, skipped = [], 0
            assert walk.state is not None
            own_streams[account] = walk.state

        # Threads the brand answered in earlier runs: read again for the customers'
        # replies since, the least recently read first, within the run's budget.
        stale = sorted((sid for sid, (_, read_utc) in watch.items() if read_utc < now), key=lambda sid: watch[sid][1])
        for submission_id in stale[:MAX_WATCHED_THREADS_PER_RUN]:
            tree, tree_skipped = self._thread_of(submission_id, query.brand, run_start, with_submission=True)
            watch[submission_id][1] = now
            _extend_new(buffer, tree)
            skipped += tree_skipped
            if len(buffer) >= BATCH_SIZE:
                yield Batch(tuple(buffer), None, skipped)
                buffer, skipped = [], 0

        checkpoint: Cursor = {
            "v": CURSOR_VERSION,
            "submissions": new_submissions.to_json(),
            "comments": new_comments.to_json() if new_comments is not None else None,
            "subreddits": subreddit_key,
        }
        if own_streams:
            checkpoint["own"] = {account: state.to_json() for account, state in own_streams.items()}
            newest = sorted(watch.items(), key=lambda item: item[1][0], reverse=True)[:MAX_WATCHED_THREADS]
            checkpoint["watch"] = dict(newest)
        yield Batch(tuple(buffer), checkpoint, skipped)

    def _page_reader(self, what: str, listing: Callable[[], Any]) -> Callable[[str | None, float], _Page]:
        """Pages of a praw listing (it builds the request: path, parameters), read as JSON
        from ``after``."""
        def read(after: str | None, stop_utc: float) -> _Page:
            made = listing()
            params = {**made.params, **({"after": after} if after else {})}
            return self._listing(what, made.url, params)

        return read

    def _thread(self, submission: Mention, brand: str, fetched_at: datetime) -> tuple[list[Mention], int]:
        """The comment tree of a matched submission, as thread context."""
        return self._thread_of(submission.id, brand, fetched_at)

    def _thread_of(self, submission_id: str, brand: str, fetched_at: datetime, *,
                   with_submission: bool = False) -> tuple[list[Mention], int]:
        """The comment tree of submission ``submission_id``, as thread context, and with
        ``with_submission`` the submission too (a thread the search did not find)."""
        try:
            submission, comments = self._comment_tree(submission_id)
        except MalformedPayloadError as exc:
            log.warning("reddit: skipped the unreadable comment tree of %s: %s", submission_id, exc)
            return [], 1
        except NotFoundError as exc:  # deleted, or gone private, since the brand answered
            log.warning("reddit: the thread %s is gone: %s", submission_id, exc)
            return [], 0
        mentions: list[Mention] = []
        skipped = 0
        if with_submission:
            try:
                opener = submission_mention(_tree_submission_data(submission), brand, fetched_at)
                mentions.append(opener.replace(thread_context=True))
            except (MalformedPayloadError, *_PAYLOAD_ERRORS) as exc:
                skipped += 1
                log.warning("reddit: skipped the unreadable submission %s: %s", submission_id, exc)
        for comment in comments:
            try:
                data, replies = _tree_comment_data(comment)
                mention = comment_mention(data, brand, fetched_at, thread_context=True, replies=replies,
                                          submission_id=submission_id)
            except (MalformedPayloadError, *_PAYLOAD_ERRORS) as exc:
                skipped += 1
                log.warning("reddit: skipped an unreadable comment in thread %s: %s", submission_id, exc)
                continue
            if mention is not None:
                mentions.append(mention)
        return mentions, skipped

    def close(self) -> None:
        """Close the HTTP session (praw has no public close)."""
        core = getattr(self.reddit, "_core", None)
        if core is not None:
            try:
                core.close()
            except Exception:  # closing must not fail a shutdown
                log.debug("reddit: closing the session failed", exc_info=True)


# -- factory -----------------------------------------------------------------------------


def _extend_new(buffer: list[Mention], mentions: list[Mention]) -> None:
    """Add to ``buffer`` the mentions it does not hold yet (a thread read after the
    brand's comment in it was read from its account)."""
    known = {m.id for m in buffer}
    buffer.extend(m for m in mentions if m.id not in known)


def _load_watch(since: Cursor | None, oldest_utc: float) -> dict[str, list[float]]:
    """The threads the brand answered (``"watch": {submission id: [its newest comment's
    created_utc, when the tree was last read]}``) within ``thread_watch_hours``; an
    unreadable entry is dropped."""
    saved = since.get("watch") if isinstance(since, Mapping) else None
    if not isinstance(saved, Mapping):
        return {}
    return {sid: [float(v[0]), float(v[1])] for sid, v in saved.items()
            if isinstance(sid, str) and isinstance(v, list) and len(v) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) and v[0] >= oldest_utc}


def _comments(walk: _ListingWalk, brand: str, fetched_at: datetime, where: str, skips: list[int]) -> Iterator[Mention]:
    """The comments of a listing walk as mentions; an unreadable one is counted in
    ``skips[0]`` and logged, a deleted one left out."""
    for child in walk.items():
        try:
            mention = comment_mention(_thing_data(child, "t1"), brand, fetched_at, thread_context=False)
        except MalformedPayloadError as exc:
            skips[0] += 1
            log.warning("reddit: skipped an unreadable comment %s: %s", where, exc)
            continue
        if mention is not None:
            yield mention


def create(settings: Mapping[str, Any], clock: Clock, env: Mapping[str, str] = os.environ, *,
           retry: RetryPolicy | None = None, session: requests.Session | None = None) -> RedditConnector:
    """Entry-point factory. Credentials come from the environment variables the settings
    name; a missing one raises AuthError naming it. No request is sent here."""
    options = validated("reddit", SETTINGS, settings)
    options["subreddits"] = tuple(map(_subreddit_name, options["subreddits"]))
    env_vars = (options["client_id_env"], options["client_secret_env"])
    missing = [name for name in env_vars if not env.get(name, "").strip()]
    if missing:
        raise AuthError("Reddit credentials are not set: create an app at https://www.reddit.com/prefs/apps "
                        "and export its client id and secret", missing)
    try:
        reddit = build_reddit(
            client_id=env[env_vars[0]].strip(), client_secret=env[env_vars[1]].strip(),
            user_agent=options["user_agent"], base_url=options["base_url"], auth_url=options["auth_url"],
            timeout=float(options["request_timeout"]), session=session,
        )
    except Exception as exc:  # praw/prawcore/configparser refusing the settings
        raise FatalError(f"could not set up the Reddit client: {exc}") from exc
    return RedditConnector(
        reddit, clock,
        subreddits=options["subreddits"], history_days=options["history_days"],
        max_submissions_per_run=options["max_submissions_per_run"],
        comment_tree_limit=options["comment_tree_limit"],
        max_comments_per_run=options["max_comments_per_run"],
        thread_watch_hours=options["thread_watch_hours"],
        retry=retry or RetryPolicy(), env_vars=env_vars,
    )
