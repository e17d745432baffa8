"""The ``mastodon`` connector: its settings, the brand query as hashtags and searches,
``MastodonConnector`` and the entry-point factory ``create`` (the overview is in
``connectors.mastodon``).
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonRatelimitError,
    MastodonVersionError,
)

from connectors.base import Batch, BrandQuery, Clock, Cursor, Mention, ensure_utc
from connectors.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    MalformedPayloadError,
    QueryError,
    RateLimitedError,
    RetryableError,
    error_for_status,
    excerpt,
)
from connectors.query import account_key, is_own, matches
from connectors.paging import Pager
from connectors.retry import RetryPolicy, with_retries
from connectors.settings import CENTURY_DAYS, TIMEOUT, Setting, settings_table, validated
from connectors.mastodon.client import (
    Instance,
    MASTODON_STATUS_ERRORS,
    _CLASS_STATUS,
    _NotFound,
    _Unsupported,
    _message,
    _rate_limit_wait,
    _status,
    build_client,
    normalize_instance_url,
)
from connectors.mastodon.mapping import _Status, _id, _parse_time, mention_from_status, read_status
from connectors.mastodon.cursor import (
    MAX_WATCHED_THREADS,
    _below_by_margin,
    _empty_instance_state,
    _id_key,
    _newer,
    _parse_cursor,
    _thread_due,
)

log = logging.getLogger("listener.connectors.mastodon")


def _instances_problem(urls: Sequence[str]) -> str | None:
    """What is wrong with the ``instances`` list (each must be an instance URL, once)."""
    problems: list[str] = []
    seen: set[str] = set()
    for raw in urls:
        try:
            url = normalize_instance_url(raw)
        except ValueError:
            problems.append(f"{raw!r} is not an instance URL")
            continue
        if url in seen:
            problems.append(f"{url} is listed twice")
        seen.add(url)
    return ", ".join(problems) or None


SETTINGS = settings_table(
    Setting("instances", list, ["https://mastodon.social"],
            "Instances to read (base URLs); each sees a different part of the network, and a "
            "post seen on several is stored once.",
            required=True, check=_instances_problem),
    Setting("access_token_env", str, "",
            "Environment variable holding an access token of the first instance; \"\" (the "
            "default) reads anonymously: hashtag timelines need no token, search does."),
    Setting("use_search", bool, True, "Also search statuses for the brand's terms, on the token's instance."),
    Setting("history_days", int, 3,
            "How far back the first run of a hashtag (and of search) reads.", min=1, max=CENTURY_DAYS),
    Setting("fetch_threads", bool, True, "Also store the replies to matched posts, as thread context."),
    Setting("max_pages_per_run", int, 10,
            "Pages (up to 40 posts each) one run reads per hashtag, and for search, per "
            "instance.", min=1),
    Setting("max_threads_per_run", int, 20,
            "Thread lookups (one status_context request each) per instance per run.", min=0),
    Setting("thread_watch_hours", int, 24,
            "Until what age (hours, of the post) a matched post's thread is checked again for "
            "new replies.",
            min=0, max=24 * CENTURY_DAYS),
    Setting("timeout_seconds", float, 30.0,
            "How long (seconds) to wait for an instance to answer one request.", **TIMEOUT),
)

PAGE_LIMIT = 40
"""Statuses per page: Mastodon's maximum for timelines and search."""
T = TypeVar("T")


# -- the query on Mastodon -----------------------------------------------------------------


def hashtags_for(query: BrandQuery) -> tuple[str, ...]:
    """The hashtags followed for a brand: its hashtags (without ``#``, lowercase) and its
    terms as hashtags (lowercase, letters and digits only)."""
    tags: list[str] = []
    for tag in query.hashtags:
        tags.append("".join(ch for ch in tag.lstrip("#").lower() if ch.isalnum() or ch == "_"))
    for term in query.terms:
        tags.append("".join(ch for ch in term.lower() if ch.isalnum()))
    return tuple(dict.fromkeys(t for t in tags if t))


def search_queries(query: BrandQuery) -> tuple[str, ...]:
    """One status search per brand term; phrases are quoted."""
    found = []
    for term in query.terms:
        term = term.replace('"', " ").strip()
        if term:
            found.append(f'"{term}"' if re.search(r"\W", term) else term)
    return tuple(dict.fromkeys(found))


# -- the connector --------------------------------------------------------------------------------


@dataclass


class _Run:
    """What one fetch() has seen so far, across instances."""

    query: BrandQuery
    started: datetime
    seen: set[str] = field(default_factory=set)
    reblogs: int = 0
    deferred_threads: int = 0


@dataclass


class _InstanceRun:
    """One instance within a run: its working cursor entry and its thread budget."""

    instance: Instance
    work: dict[str, Any]
    threads_left: int
    uris: dict[str, str] = field(default_factory=dict)
    """Instance-local id -> URI of every status seen, to map ``in_reply_to_id``."""


class MastodonConnector:
    """Mentions from hashtag timelines (and search) on one or more Mastodon instances."""

    name = "mastodon"

    def __init__(self, instances: Sequence[Instance], clock: Clock, *, access_token_env: str = "",
                 use_search: bool = True, history_days: int = 3, fetch_threads: bool = True,
                 max_pages_per_run: int = 10, max_threads_per_run: int = 20, thread_watch_hours: int = 24,
                 retry: RetryPolicy | None = None) -> None:
        if not instances:
            raise ValueError("mastodon: at least one instance is needed")
        for instance in instances:
            if instance.client.ratelimit_method != "throw":
                raise ValueError("mastodon: clients must use ratelimit_method='throw' ('wait' retries forever)")
        self.instances = list(instances)
        self._clock = clock
        self.access_token_env = access_token_env
        self.use_search = use_search
        self.history_days = history_days
        self.fetch_threads = fetch_threads
        self.max_pages_per_run = max_pages_per_run
        self.max_threads_per_run = max_threads_per_run
        self.thread_watch = timedelta(hours=thread_watch_hours)
        self.retry = retry or RetryPolicy()

    # -- fetch ----------------------------------------------------------------------------------

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        """Yield batches per page read; checkpoints as described in the module docstring.
        The last batch, always yielded, carries the cursor of the whole run."""
        tags = hashtags_for(query)
        if not tags:
            raise QueryError(f"brand {query.brand!r}: no terms or hashtags to follow on Mastodon")
        state = _parse_cursor(since, query.brand)
        run = _Run(query, ensure_utc(self._clock(), "clock()"))
        failures: list[tuple[Instance, ConnectorError]] = []
        for instance in self.instances:
            inst_run = _InstanceRun(
                instance, copy.deepcopy(state["instances"].get(instance.url) or _empty_instance_state()),
                self.max_threads_per_run)
            try:
                yield from self._read_instance(inst_run, tags, state, run)
            except ConnectorError as exc:
                failures.append((instance, exc))
                log.warning("mastodon: brand %s: instance %s skipped for this run: %s; its cursor stays "
                            "at its last stored page", query.brand, instance.url, exc)
        if run.reblogs:
            log.info("mastodon: brand %s: left out %d reblogs (not new speech)", query.brand, run.reblogs)
        if run.deferred_threads:
            log.info("mastodon: brand %s: %d thread lookups deferred to later runs (max_threads_per_run=%d)",
                     query.brand, run.deferred_threads, self.max_threads_per_run)
        yield Batch(mentions=(), checkpoint=copy.deepcopy(state))
        self._raise_for(failures)

    def _raise_for(self, failures: list[tuple[Instance, ConnectorError]]) -> None:
        """End the run with an error when the token was refused or nothing could be read."""
        for instance, exc in failures:
            if isinstance(exc, AuthError) and instance.authenticated:
                raise exc
        if failures and len(failures) == len(self.instances):
            if len(failures) == 1:
                raise failures[0][1]
            first = failures[0][1]
            summary = "; ".join(f"{i.url}: {e}" for i, e in failures)
            kind = type(first) if all(type(e) is type(first) for _, e in failures) else FatalError
            if issubclass(kind, AuthError):
                raise AuthError(f"mastodon: every instance failed: {summary}", first.env_vars) from first
            if issubclass(kind, RetryableError):
                raise RetryableError(f"mastodon: every instance failed: {summary}") from first
            raise FatalError(f"mastodon: every instance failed: {summary}") from first

    def _read_instance(self, inst_run: _InstanceRun, tags: tuple[str, ...], state: dict[str, Any],
                       run: _Run) -> Iterator[Batch]:
        url = inst_run.instance.url

        def commit() -> Cursor:
            state["instances"][url] = copy.deepcopy(inst_run.work)
            return copy.deepcopy(state)

        for tag in tags:
            yield from self._read_tag(inst_run, tag, run, commit)
        if self.use_search and inst_run.instance.authenticated:
            yield from self._read_search(inst_run, run, commit)
        for account in self._accounts_read_on(inst_run.instance, run.query):
            yield from self._read_account(inst_run, account, run, commit)
        if self.fetch_threads:
            yield from self._revisit_threads(inst_run, run, commit)
        else:
            inst_run.work["threads"] = {}
        commit()  # fetch() yields the run's last batch with it

    # -- hashtag timelines ----------------------------------------------------------------------

    def _timeline(self, inst_run: _InstanceRun, tag: str, **params: Any) -> list[Any]:
        client = inst_run.instance.client
        try:
            page = self._call(inst_run.instance, f"#{tag}", client.timeline_hashtag, tag, limit=PAGE_LIMIT, **params)
        except _NotFound:
            return []
        if not isinstance(page, list):
            raise RetryableError(f"mastodon {inst_run.instance.url}: #{tag}: the timeline is not a list: "
                                 f"{excerpt(page)!r}")
        return page

    def _read_tag(self, inst_run: _InstanceRun, tag: str, run: _Run,
                  commit: Callable[[], Cursor]) -> Iterator[Batch]:
        saved = inst_run.work["tags"].get(tag)
        if saved is None:
            yield from self._backfill_tag(inst_run, tag, run, commit)
            return
        url = inst_run.instance.url
        min_id = _below_by_margin(saved)
        pager = Pager(f"mastodon {url}: #{tag}", max_pages=self.max_pages_per_run, word="min_id", order=_id_key,
                      start=min_id)
        while not pager.capped:
            pager.page()
            page = self._timeline(inst_run, tag, min_id=min_id)
            if not page:
                return
            mentions, skipped, ids = self._map_page(inst_run, page, run)
            newest = max(ids, key=_id_key, default=None)
            inst_run.work["tags"][tag] = _newer(inst_run.work["tags"].get(tag), newest)
            yield Batch(tuple(mentions), checkpoint=commit(), skipped=skipped)
            if len(page) < PAGE_LIMIT:
                return
            prev = getattr(page, "_pagination_prev", None) or {}
            min_id = pager.advance(_id(prev.get("min_id")) or newest)
        log.warning("mastodon: brand %s: #%s on %s: stopped at the page cap (%d pages); the backlog is read "
                    "on the next runs from id %s", run.query.brand, tag, url, self.max_pages_per_run,
                    inst_run.work["tags"][tag])

    def _backfill_tag(self, inst_run: _InstanceRun, tag: str, run: _Run,
                      commit: Callable[[], Cursor]) -> Iterator[Batch]:
        """A hashtag's first run: newest first, back to ``history_days``."""
        url = inst_run.instance.url
        horizon = run.started - timedelta(days=self.history_days)
        newest: str | None = None
        max_id: str | None = None
        complete = False
        pager = Pager(f"mastodon {url}: #{tag}", max_pages=self.max_pages_per_run, word="max_id", order=_id_key,
                      descending=True)
        while not pager.capped:
            pager.page()
            page = self._timeline(inst_run, tag, max_id=max_id)
            if not page:
                # An empty page that still links a next one is no proof that the history
                # ends here: report the back-fill as cut, not complete.
                complete = not getattr(page, "_pagination_next", None)
                break
            mentions, skipped, ids = self._map_page(inst_run, page, run, horizon=horizon)
            newest = _newer(newest, max(ids, key=_id_key, default=None))
            yield Batch(tuple(mentions), checkpoint=None, skipped=skipped)
            times = [s.created_at for s in _readable(page)]
            if len(page) < PAGE_LIMIT or (times and min(times) < horizon):
                complete = True
                break
            following = getattr(page, "_pagination_next", None) or {}
            max_id = pager.advance(_id(following.get("max_id")) or min(ids, key=_id_key, default=None))
        if not complete:
            log.warning("mastodon: brand %s: #%s on %s: the first run stopped (page cap of %d pages, or an empty "
                        "page that links a next one) before reaching %d days back; the older posts are not "
                        "back-filled", run.query.brand, tag, url, self.max_pages_per_run, self.history_days)
        if newest is not None:
            inst_run.work["tags"][tag] = newest
            yield Batch(mentions=(), checkpoint=commit())

    # -- search -----------------------------------------------------------------------------------

    def _read_search(self, inst_run: _InstanceRun, run: _Run, commit: Callable[[], Cursor]) -> Iterator[Batch]:
        queries = search_queries(run.query)
        if not queries:
            return
        instance = inst_run.instance
        saved = inst_run.work.get("search")
        horizon = run.started - timedelta(days=self.history_days) if saved is None else None
        newest: str | None = None
        pager = Pager(f"mastodon {instance.url}: search", max_pages=self.max_pages_per_run)  # offsets: a cap only
        for q in queries:
            offset = 0
            while True:
                if pager.capped:
                    yield from self._search_cut(inst_run, run, saved, newest, commit)
                    return
                try:
                    result = self._call(instance, f"search {q!r}", instance.client.search_v2, q,
                                        result_type="statuses", resolve=False, min_id=saved,
                                        offset=offset or None, limit=PAGE_LIMIT)
                except (_NotFound, _Unsupported) as exc:
                    log.warning("mastodon: brand %s: %s has no usable status search (%s); reading hashtags only",
                                run.query.brand, instance.url, exc)
                    return
                pager.page()
                statuses = result.get("statuses") if isinstance(result, Mapping) else None
                if not isinstance(statuses, list):
                    raise RetryableError(f"mastodon {instance.url}: search {q!r}: not a search result: "
                                         f"{excerpt(result)!r}")
                mentions, skipped, ids = self._map_page(inst_run, statuses, run, horizon=horizon)
                newest = _newer(newest, max(ids, key=_id_key, default=None))
                yield Batch(tuple(mentions), checkpoint=None, skipped=skipped)
                times = [s.created_at for s in _readable(statuses)]
                if len(statuses) < PAGE_LIMIT or (horizon is not None and times and min(times) < horizon):
                    break
                offset += len(statuses)
        inst_run.work["search"] = _newer(saved, newest)
        yield Batch(mentions=(), checkpoint=commit())

    def _search_cut(self, inst_run: _InstanceRun, run: _Run, saved: str | None, newest: str | None,
                    commit: Callable[[], Cursor]) -> Iterator[Batch]:
        """Search stopped at the page cap. Newest first, so the hits between the saved id
        and the last page read are unread: keep the saved id, and the next run reads the
        range again. A first search has nothing to keep: it saves the newest hit, and the
        older history is not back-filled (as for a hashtag's first run)."""
        brand, url = run.query.brand, inst_run.instance.url
        if saved is not None or newest is None:
            log.warning("mastodon: brand %s: search on %s stopped at the page cap (%d pages); keeping min_id "
                        "%s: the next run reads the same range again", brand, url, self.max_pages_per_run, saved)
            return
        log.warning("mastodon: brand %s: the first search on %s stopped at the page cap (%d pages) before "
                    "reaching %d days back; the older hits are not back-filled", brand, url,
                    self.max_pages_per_run, self.history_days)
        inst_run.work["search"] = newest
        yield Batch(mentions=(), checkpoint=commit())

    # -- the brand's own accounts ------------------------------------------------------------------

    def _accounts_read_on(self, instance: Instance, query: BrandQuery) -> list[str]:
        """The brand's accounts (``user@domain``) read on ``instance``: each on its home
        instance when that is configured, else on the first instance."""
        hosts = [urlsplit(i.url).hostname for i in self.instances]
        here = urlsplit(instance.url).hostname
        accounts = []
        for account in query.accounts_on(self.name):
            domain = account_key(account).partition("@")[2]
            if domain == here or (domain not in hosts and instance is self.instances[0]):
                accounts.append(account_key(account))
        return accounts

    def _read_account(self, inst_run: _InstanceRun, account: str, run: _Run,
                      commit: Callable[[], Cursor]) -> Iterator[Batch]:
        """The brand's own statuses and replies (``account_statuses``), each with its
        thread (ancestors and replies so far, then watched like a matched post's). A first
        run reads the newest page; later runs read oldest first from the saved id, every
        page checkpointed, as a hashtag does."""
        instance = inst_run.instance
        client = instance.client
        try:
            found = self._call(instance, f"account {account}", client.account_lookup, account)
        except _NotFound:
            log.warning("mastodon: brand %s: %s does not know the account %s (own_accounts); its posts are "
                        "not collected there", run.query.brand, instance.url, account)
            return
        account_id = found.get("id") if isinstance(found, Mapping) else None
        if not isinstance(account_id, str) or not account_id:
            raise RetryableError(f"mastodon {instance.url}: account {account}: not an account: {excerpt(found)!r}")
        accounts = inst_run.work.setdefault("accounts", {})
        saved = accounts.get(account)
        horizon = run.started - timedelta(days=self.history_days) if saved is None else None
        min_id = None if saved is None else _below_by_margin(saved)
        pager = Pager(f"mastodon {instance.url}: statuses of {account}", max_pages=self.max_pages_per_run,
                      word="min_id", order=_id_key, start=min_id)
        while not pager.capped:
            pager.page()
            page = self._call(instance, f"statuses of {account}", client.account_statuses, account_id,
                              min_id=min_id, exclude_reblogs=True, limit=PAGE_LIMIT)
            if not isinstance(page, list):
                raise RetryableError(f"mastodon {instance.url}: statuses of {account}: not a list: "
                                     f"{excerpt(page)!r}")
            if not page:
                return
            mentions, skipped, ids = self._map_page(inst_run, page, run, horizon=horizon)
            newest = max(ids, key=_id_key, default=None)
            accounts[account] = _newer(accounts.get(account), newest)
            yield Batch(tuple(mentions), checkpoint=commit(), skipped=skipped)
            if saved is None or len(page) < PAGE_LIMIT or newest is None:
                return
            min_id = pager.advance(newest)

    # -- statuses and threads -----------------------------------------------------------------

    def _map_page(self, inst_run: _InstanceRun, page: Sequence[Any], run: _Run,
                  horizon: datetime | None = None) -> tuple[list[Mention], int, list[str]]:
        """Mentions of one page (with their threads), the unreadable items, and the ids of
        every readable status (for the cursor)."""
        mentions: list[Mention] = []
        skipped = 0
        ids: list[str] = []
        for item in page:
            try:
                status = read_status(item)
            except MalformedPayloadError as exc:
                skipped += 1
                log.warning("mastodon: %s: skipped an unreadable status: %s", inst_run.instance.url, exc)
                continue
            ids.append(status.id)
            inst_run.uris[status.id] = status.uri
            if status.is_reblog:
                run.reblogs += 1
                continue
            if status.uri in run.seen or (horizon is not None and status.created_at < horizon):
                continue
            try:
                mentions.extend(self._with_thread(inst_run, status, run))
            except MalformedPayloadError as exc:
                skipped += 1
                log.warning("mastodon: %s: skipped an unreadable status: %s", inst_run.instance.url, exc)
        return mentions, skipped, ids

    def _with_thread(self, inst_run: _InstanceRun, status: _Status, run: _Run) -> list[Mention]:
        """A status found by hashtag or search as a Mention, and its thread when it matches."""
        brand = run.query.brand
        mention = mention_from_status(status, brand, fetched_at=run.started,
                                      parent_id=inst_run.uris.get(status.in_reply_to_id or ""))
        run.seen.add(status.uri)
        # Only posts that are mentions, or the brand's own, get thread work: the others are
        # dropped by the pipeline's re-check, and their replies must not come in as context.
        own = is_own(run.query, self.name, mention.author)
        if not own and not matches(run.query, mention.text, mention.author, mention.lang):
            return [mention]
        watched = inst_run.work["threads"].get(status.id)
        if watched is not None and watched.get("root"):
            # Read again (the late-arrival margin): its thread is already being revisited.
            return [mention.replace(conversation_id=watched["root"])]
        context = None
        wants_context = status.in_reply_to_id is not None or (self.fetch_threads and status.replies > 0)
        if wants_context:
            if inst_run.threads_left > 0:
                inst_run.threads_left -= 1
                context = self._context(inst_run, status.id)
            else:
                run.deferred_threads += 1
        root = status.uri if status.in_reply_to_id is None else None
        out = [mention]
        if context is not None:
            ancestors = _readable(context.get("ancestors") or [])
            for ancestor in ancestors:
                inst_run.uris[ancestor.id] = ancestor.uri
            root = ancestors[0].uri if ancestors else status.uri
            out = [mention.replace(conversation_id=root,
                                   parent_id=inst_run.uris.get(status.in_reply_to_id or "", mention.parent_id))]
            if own:
                # The brand answered: the thread it answered (the customer's opening above
                # all) is kept, though it may name the brand nowhere the search looks.
                out.extend(self._thread_posts(inst_run, ancestors, root, run))
            if self.fetch_threads:
                out.extend(self._descendants(inst_run, context, root, run))
        if self.fetch_threads:
            # No replies yet counts as checked; a lookup deferred by the bound does not.
            self._watch(inst_run, status, root, checked=context is not None or not wants_context,
                        now=run.started)
        return out

    def _context(self, inst_run: _InstanceRun, status_id: str) -> Mapping[str, Any] | None:
        instance = inst_run.instance
        try:
            context = self._call(instance, f"thread of {status_id}", instance.client.status_context, status_id)
        except _NotFound:
            return None
        if not isinstance(context, Mapping):
            raise RetryableError(f"mastodon {instance.url}: thread of {status_id}: not a context: "
                                 f"{excerpt(context)!r}")
        return context

    def _descendants(self, inst_run: _InstanceRun, context: Mapping[str, Any], root: str,
                     run: _Run) -> list[Mention]:
        return self._thread_posts(inst_run, _readable(context.get("descendants") or []), root, run)

    def _thread_posts(self, inst_run: _InstanceRun, readable: Sequence[_Status], root: str,
                      run: _Run) -> list[Mention]:
        """Statuses of a thread as thread-context mentions (those not seen this run)."""
        for reply in readable:
            inst_run.uris[reply.id] = reply.uri
        out: list[Mention] = []
        for reply in readable:
            if reply.uri in run.seen or reply.is_reblog:
                continue
            try:
                out.append(mention_from_status(
                    reply, run.query.brand, fetched_at=run.started, conversation_id=root,
                    parent_id=inst_run.uris.get(reply.in_reply_to_id or ""), thread_context=True))
            except MalformedPayloadError as exc:
                log.warning("mastodon: %s: skipped an unreadable reply: %s", inst_run.instance.url, exc)
                continue
            run.seen.add(reply.uri)
        return out

    def _watch(self, inst_run: _InstanceRun, status: _Status, root: str | None, *, checked: bool,
               now: datetime) -> None:
        """Remember a matched post's thread while the post is younger than the watch."""
        threads = inst_run.work["threads"]
        if status.id not in threads and status.created_at < now - self.thread_watch:
            return
        entry = threads.get(status.id) or {"uri": status.uri, "root": root,
                                           "posted": status.created_at.isoformat(), "checked": None}
        if root is not None:
            entry["root"] = root
        if checked:
            entry["checked"] = now.isoformat()
        threads[status.id] = entry

    def _revisit_threads(self, inst_run: _InstanceRun, run: _Run,
                         commit: Callable[[], Cursor]) -> Iterator[Batch]:
        """Fetch again the threads of matched posts younger than ``thread_watch_hours``
        that are due, least recently checked first, with what is left of this run's
        thread budget."""
        threads: dict[str, dict[str, Any]] = inst_run.work["threads"]
        oldest = run.started - self.thread_watch
        for status_id, entry in list(threads.items()):
            if _parse_time(entry["posted"]) < oldest:
                del threads[status_id]
        if len(threads) > MAX_WATCHED_THREADS:
            keep = sorted(threads, key=lambda k: (threads[k]["posted"], _id_key(k)))[-MAX_WATCHED_THREADS:]
            inst_run.work["threads"] = threads = {k: threads[k] for k in keep}
        due = sorted((k for k, e in threads.items() if _thread_due(e, run.started)),
                     key=lambda k: (threads[k].get("checked") or "", threads[k]["posted"]))
        mentions: list[Mention] = []
        for status_id in due:
            if inst_run.threads_left <= 0:
                break
            inst_run.threads_left -= 1
            entry = threads[status_id]
            context = self._context(inst_run, status_id)
            if context is None:
                del threads[status_id]  # deleted since
                continue
            inst_run.uris[status_id] = entry["uri"]
            root = entry.get("root")
            if root is None:
                ancestors = _readable(context.get("ancestors") or [])
                root = ancestors[0].uri if ancestors else entry["uri"]
                entry["root"] = root
            mentions.extend(self._descendants(inst_run, context, root, run))
            entry["checked"] = run.started.isoformat()
        if mentions:
            yield Batch(tuple(mentions), checkpoint=commit())

    # -- one request --------------------------------------------------------------------------

    def _call(self, instance: Instance, what: str, method: Callable[..., T], *args: Any, **params: Any) -> T:
        label = f"mastodon {instance.url}: {what}"
        return with_retries(lambda: self._attempt(instance, label, method, *args, **params), self.retry)

    def _attempt(self, instance: Instance, what: str, method: Callable[..., T], *args: Any, **params: Any) -> T:
        client = instance.client
        try:
            return method(*args, **params)
        except MastodonRatelimitError as exc:
            raise RateLimitedError(f"{what}: rate limited ({exc})", retry_after=_rate_limit_wait(client)) from exc
        except MastodonNetworkError as exc:
            raise RetryableError(f"{what}: network error: {exc}") from exc
        except MastodonAPIError as exc:  # every status the instance refused
            raise self._status_error(instance, what, exc) from exc
        except MastodonVersionError as exc:
            raise _Unsupported(f"{what}: {exc}") from exc
        except MastodonError as exc:
            raise FatalError(f"{what}: {type(exc).__name__}: {exc}") from exc

    def _status_error(self, instance: Instance, what: str, exc: MastodonAPIError) -> ConnectorError:
        """The status the instance answered as our error, its class from MASTODON_STATUS_ERRORS."""
        # Mastodon.py's own class says the status where its arguments may not.
        status = next((code for cls, code in _CLASS_STATUS if isinstance(exc, cls)), None) or _status(exc)
        if status is None:  # no status: a 200 whose body is not JSON, or Mastodon.py's own refusal
            if "Could not parse response as JSON" in str(exc):
                return RetryableError(f"{what}: {_message(exc)}")
            return FatalError(f"{what}: the instance answered {status}: {_message(exc)}")
        kind = error_for_status(status, MASTODON_STATUS_ERRORS) or FatalError
        if kind is AuthError:
            return self._auth_error(instance, what, status, exc)
        if kind is _NotFound:
            return _NotFound(f"{what}: not found")
        if kind is RateLimitedError:
            return RateLimitedError(f"{what}: rate limited ({exc})", retry_after=_rate_limit_wait(instance.client))
        if kind is RetryableError and status >= 500:
            return RetryableError(f"{what}: server error {_status(exc)}: {_message(exc)}")
        if kind is RetryableError:
            return RetryableError(f"{what}: {_message(exc)}")
        return kind(f"{what}: the instance answered {status}: {_message(exc)}")

    def _auth_error(self, instance: Instance, what: str, status: int, exc: Exception) -> AuthError:
        if instance.authenticated:
            return AuthError(f"{what}: {status} from the instance, the access token was refused: {_message(exc)}",
                             env_vars=[self.access_token_env])
        return AuthError(f"{what}: {status}: the instance does not serve this to anonymous readers; "
                         f"set access_token_env to a variable holding a token of {instance.url} and list it "
                         "first in instances", env_vars=[self.access_token_env] if self.access_token_env else [])

    def close(self) -> None:
        for instance in self.instances:
            instance.client.session.close()


def _readable(items: Sequence[Any]) -> list[_Status]:
    found = []
    for item in items:
        try:
            found.append(read_status(item))
        except MalformedPayloadError:
            continue
    return found


def create(settings: Mapping[str, Any], clock: Clock, env: Mapping[str, str] = os.environ, *,
           retry: RetryPolicy | None = None) -> MastodonConnector:
    """Entry-point factory. ``access_token_env`` names the variable holding a token of the
    first instance; when it is named but unset or empty, AuthError names it."""
    values = validated("mastodon", SETTINGS, settings)
    urls = list(dict.fromkeys(normalize_instance_url(url) for url in values["instances"]))
    env_var = values["access_token_env"]
    timeout = values["timeout_seconds"]
    token = None
    if env_var:
        token = (env.get(env_var) or "").strip()
        if not token:
            raise AuthError(f"no Mastodon access token: the environment variable {env_var} is not set or empty",
                            env_vars=[env_var])
    instances = [Instance(url, build_client(url, token if i == 0 else None, float(timeout)),
                          authenticated=token is not None and i == 0)
                 for i, url in enumerate(urls)]
    if values["use_search"] and token is None:
        log.info("mastodon: no access token: status search is off, hashtag timelines only")
    return MastodonConnector(
        instances, clock,
        access_token_env=env_var,
        use_search=values["use_search"],
        history_days=values["history_days"],
        fetch_threads=values["fetch_threads"],
        max_pages_per_run=values["max_pages_per_run"],
        max_threads_per_run=values["max_threads_per_run"],
        thread_watch_hours=values["thread_watch_hours"],
        retry=retry,
    )
