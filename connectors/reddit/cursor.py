"""The reddit cursor (streams, seen ids, gaps; see ``connectors.reddit``) and the walk down a
newest-first listing that reads it and leaves it where the run stopped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from connectors.base import Cursor
from connectors.errors import RetryableError
from connectors.paging import Pager

log = logging.getLogger("listener.connectors.reddit")


PAGE_SIZE = 100
"""Reddit's largest listing page."""
LISTING_LIMIT = 1000
"""Reddit serves at most about this many items of any listing."""
MAX_PAGES_PER_PASS = 12
"""Listings stop at ~1,000 items (10 pages); a pass that goes on is a server bug."""
OVERLAP_SECONDS = 600
"""Each run re-reads the last 10 minutes before the newest item it saw: Reddit's search
index can lag, so a post may appear after newer ones were read. Ids already read in
that stretch are remembered in the cursor and not processed twice."""
MAX_GAPS = 10
MAX_SEEN_IDS = 5000
# (window name, seconds it covers) for search's ``t``: the smallest that covers a pass.
_TIME_FILTERS = (("hour", 3600), ("day", 86400), ("week", 7 * 86400), ("month", 30 * 86400),
                 ("year", 365 * 86400))


# -- the cursor --------------------------------------------------------------------------


@dataclass


class _Gap:
    """A stretch of a newest-first listing not read yet: from the item after ``after``
    (created at ``after_utc``) down to ``stop_utc``. ``depth``: about how many items
    of the listing lie above the anchor (Reddit serves about 1,000)."""

    after: str | None
    after_utc: float | None
    stop_utc: float
    depth: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"after": self.after, "after_utc": self.after_utc, "stop_utc": self.stop_utc, "depth": self.depth}

    @classmethod
    def from_json(cls, data: Any) -> _Gap:
        if not isinstance(data, Mapping):
            raise ValueError("gap is not an object")
        after, after_utc = data.get("after"), data.get("after_utc")
        stop, depth = data.get("stop_utc"), data.get("depth", 0)
        if after is not None and not isinstance(after, str):
            raise ValueError("gap.after")
        if after_utc is not None and not _is_number(after_utc):
            raise ValueError("gap.after_utc")
        if not _is_number(stop) or not _is_number(depth):
            raise ValueError("gap.stop_utc/depth")
        return cls(after, None if after_utc is None else float(after_utc), float(stop), int(depth))


@dataclass


class _Stream:
    """One listing's cursor. ``seen``: ids already read that a later pass may meet
    again (created at or after the lowest stop still ahead), so none is read twice."""

    newest_utc: float | None = None
    seen: dict[str, float] = field(default_factory=dict)
    gaps: list[_Gap] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"newest_utc": self.newest_utc, "seen": self.seen, "gaps": [g.to_json() for g in self.gaps]}

    @classmethod
    def from_json(cls, data: Any) -> _Stream:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError("stream is not an object")
        newest = data.get("newest_utc")
        if newest is not None and not _is_number(newest):
            raise ValueError("newest_utc")
        seen = data.get("seen") or {}
        if not isinstance(seen, Mapping) or not all(isinstance(k, str) and _is_number(v) for k, v in seen.items()):
            raise ValueError("seen")
        gaps = data.get("gaps") or []
        if not isinstance(gaps, list):
            raise ValueError("gaps")
        return cls(None if newest is None else float(newest), {k: float(v) for k, v in seen.items()},
                   [_Gap.from_json(g) for g in gaps])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


CURSOR_VERSION = 1


def _load_cursor(since: Cursor | None, subreddit_key: str) -> tuple[_Stream, _Stream]:
    if not since:
        return _Stream(), _Stream()
    try:
        if since.get("v") != CURSOR_VERSION:
            raise ValueError(f"version {since.get('v')!r}")
        submissions = _Stream.from_json(since.get("submissions"))
        comments = _Stream.from_json(since.get("comments"))
    except (ValueError, AttributeError) as exc:
        log.warning("reddit: unreadable cursor (%s); starting over from history_days", exc)
        return _Stream(), _Stream()
    if since.get("subreddits") != subreddit_key:
        comments = _Stream()  # another set of subreddits: a new comment stream
    return submissions, comments


def _load_own_streams(since: Cursor | None, accounts: list[str]) -> dict[str, _Stream]:
    """The comment stream of each of the brand's own accounts (``"own": {name: STREAM}``);
    an account new to the cursor, or an unreadable entry, starts from history_days."""
    saved = since.get("own") if isinstance(since, Mapping) else None
    saved = saved if isinstance(saved, Mapping) else {}
    streams: dict[str, _Stream] = {}
    for account in dict.fromkeys(accounts):
        try:
            streams[account] = _Stream.from_json(saved.get(account))
        except ValueError as exc:
            log.warning("reddit: unreadable cursor of u/%s (%s); starting over from history_days", account, exc)
            streams[account] = _Stream()
    return streams


# -- reading a newest-first listing ------------------------------------------------------


@dataclass


class _Pass:
    after: str | None
    stop_utc: float
    from_cursor: bool
    """stop_utc came from a cursor, not the history bound: ending early may lose items."""
    depth: int = 0
    """about how many listing items lie above ``after``"""
    top: bool = False
    after_utc: float | None = None


@dataclass


class _PassResult:
    outcome: str = "exhausted"
    """reached (met the stop), cut (a cap: the rest becomes a gap), exhausted (listing ended)"""
    last_name: str | None = None
    """fullname of the last item passed: Reddit's ``after`` resumes below it"""
    last_utc: float | None = None
    newest_utc: float | None = None
    depth: int = 0
    above: int = 0
    """items newer than the previous run's newest: how much deeper older anchors sank"""

    def move_to(self, name: str | None, created: float | None) -> None:
        if name is not None:
            self.last_name = name
            self.last_utc = created


class _ListingWalk:
    """Walks one newest-first listing across runs (a cursor STREAM).

    ``items()`` yields the raw children not read before, newest first: first from the
    top down to the cursor, then through the saved gaps, newest first, until ``budget``
    items were read. ``state`` is the stream's new cursor once ``items()`` is exhausted.
    """

    def __init__(self, state: _Stream, *, read_page: Callable[[str | None, float], _Page], budget: int,
                 floor_utc: float, now_utc: float, label: str) -> None:
        self.old = state
        self.read_page = read_page
        self.budget = budget
        self.floor = floor_utc
        self.now = now_utc
        self.label = label
        self.read = 0
        self.seen = dict(state.seen)
        self.state: _Stream | None = None

    def _top(self) -> _Pass:
        old = self.old
        if old.newest_utc is None:
            return _Pass(None, self.floor, from_cursor=False, top=True)
        stop = old.newest_utc - OVERLAP_SECONDS
        if stop < self.floor:
            log.warning("reddit %s: the cursor (%s) is older than history_days; nothing before %s is read",
                        self.label, _iso(old.newest_utc), _iso(self.floor))
        return _Pass(None, max(stop, self.floor), from_cursor=stop >= self.floor, top=True)

    def _gap_passes(self, sunk: int) -> list[_Pass]:
        passes = []
        for gap in self.old.gaps:
            if gap.after_utc is not None and gap.after_utc <= self.floor:
                log.warning("reddit %s: an unread stretch (%s to %s) is older than history_days and is dropped",
                            self.label, _iso(gap.stop_utc), _iso(gap.after_utc))
                continue
            passes.append(_Pass(gap.after, max(gap.stop_utc, self.floor), from_cursor=gap.stop_utc >= self.floor,
                                depth=gap.depth + sunk, after_utc=gap.after_utc))
        return passes

    def items(self) -> Iterator[dict[str, Any]]:
        newest = self.old.newest_utc
        gaps: list[_Gap] = []
        top = self._top()
        result = yield from self._walk(top)
        if result.newest_utc is not None:
            newest = min(max(result.newest_utc, newest if newest is not None else result.newest_utc), self.now)
        if result.outcome == "cut":
            gaps.append(_Gap(result.last_name, result.last_utc, top.stop_utc, result.depth))
        for current in self._gap_passes(result.above):
            if self.read >= self.budget:
                gaps.append(_Gap(current.after, current.after_utc, current.stop_utc, current.depth))
                continue
            passed = yield from self._walk(current)
            if passed.outcome == "cut":
                gaps.append(_Gap(passed.last_name, passed.last_utc, current.stop_utc, passed.depth))
        if len(gaps) > MAX_GAPS:
            for lost in gaps[MAX_GAPS:]:
                log.warning("reddit %s: too many unread stretches; the one down to %s is dropped (not read)",
                            self.label, _iso(lost.stop_utc))
            gaps = gaps[:MAX_GAPS]
        seen: dict[str, float] = {}
        if newest is not None:
            low = min([newest - OVERLAP_SECONDS, *(g.stop_utc for g in gaps)])
            seen = {i: t for i, t in self.seen.items() if t >= low}
            if len(seen) > MAX_SEEN_IDS:  # at worst a few items are read twice; storage keeps one
                seen = dict(sorted(seen.items(), key=lambda kv: kv[1], reverse=True)[:MAX_SEEN_IDS])
        self.state = _Stream(newest, seen, gaps)

    def _walk(self, current: _Pass) -> Generator[dict[str, Any], None, _PassResult]:
        """Yield the new children of one pass, newest first; return how it ended."""
        result = _PassResult(last_name=current.after, last_utc=current.after_utc, depth=current.depth)
        after = current.after
        pager = Pager(f"reddit {self.label}", max_pages=MAX_PAGES_PER_PASS, start=after)
        old_newest = self.old.newest_utc
        first_page = True
        while not pager.capped:
            pager.page()
            children, next_after = self.read_page(after, current.stop_utc)
            if first_page and not children and after is not None:
                # The anchor is gone from the listing: deleted, or pushed past Reddit's
                # ~1,000 items. Read the stretch from the top instead; ``seen`` keeps
                # what was read before from being processed again.
                log.info("reddit %s: resuming after %s found nothing; reading from the top", self.label, after)
                after, result.depth, first_page = None, 0, False
                pager.restart()
                continue
            first_page = False
            for child in children:
                result.depth += 1
                data = child.get("data") if isinstance(child, Mapping) else None
                data = data if isinstance(data, Mapping) else {}
                item_id = data.get("id") if isinstance(data.get("id"), str) and data.get("id") else None
                created = float(data["created_utc"]) if _is_number(data.get("created_utc")) else None
                name = data.get("name") if isinstance(data.get("name"), str) else (
                    f"{child.get('kind')}_{item_id}" if item_id else None)
                if created is not None:
                    result.newest_utc = created if result.newest_utc is None else max(result.newest_utc, created)
                    if created < current.stop_utc:
                        result.outcome = "reached"
                        return result
                if current.top and (old_newest is None or created is None or created > old_newest):
                    result.above += 1
                if item_id is not None and item_id in self.seen:
                    result.move_to(name, created)
                    continue
                if self.read >= self.budget:
                    log.info("reddit %s: cap of %d items per run reached; the rest is read next run",
                             self.label, self.budget)
                    result.outcome = "cut"
                    result.depth -= 1
                    return result
                self.read += 1
                if item_id is not None and created is not None:
                    self.seen[item_id] = created
                result.move_to(name, created)
                yield child
            # An empty page that names a next one is followed (within MAX_PAGES_PER_PASS
            # and the token guard): taken as the end, the cursor would pass what follows.
            after = pager.follow(next_after)
            if after is None:
                break
        else:
            log.warning("reddit %s: stopped after %d pages; the rest is read next run", self.label, MAX_PAGES_PER_PASS)
            result.outcome = "cut"
            return result
        # The listing ended above the stop. A search window or a quiet brand ends a
        # listing legitimately; near Reddit's ~1,000-item cap it means older items
        # cannot be listed any more.
        if result.depth >= LISTING_LIMIT - PAGE_SIZE:
            self._report_end(current, result, f"the listing ended after about {result.depth} items "
                             "(Reddit listings stop at about 1,000)")
        return result

    def _report_end(self, current: _Pass, result: _PassResult, why: str) -> None:
        result.outcome = "exhausted"
        upper = _iso(result.last_utc) if result.last_utc is not None else "the unread stretch's start"
        if current.from_cursor:
            log.warning("reddit %s: items created between %s and %s cannot be read: %s; downtime or a "
                        "backlog longer than a listing holds is lost", self.label, _iso(current.stop_utc), upper, why)
        else:
            log.info("reddit %s: history before %s cannot be read: %s", self.label, upper, why)


_Page = tuple[list[Any], str | None]
"""A listing page: its children and the ``after`` token of the next page (None: the end)."""


def _listing_children(page: Any, what: str) -> _Page:
    if not (isinstance(page, Mapping) and isinstance(page.get("data"), Mapping)
            and isinstance(page["data"].get("children"), list)):
        raise RetryableError(f"Reddit sent something other than a listing while {what}")
    after = page["data"].get("after")
    return page["data"]["children"], after if isinstance(after, str) and after else None


def _iso(utc: float) -> str:
    return datetime.fromtimestamp(utc, timezone.utc).isoformat(timespec="seconds")


def _time_filter(span_seconds: float) -> str:
    """Search's ``t``: the smallest window that covers the pass, with a margin. The pass
    stops by creation time anyway; a wider window only costs nothing."""
    needed = span_seconds * 1.1 + 600
    for name, seconds in _TIME_FILTERS:
        if needed <= seconds:
            return name
    return "all"
