"""The mastodon cursor (per instance: the newest id per hashtag, the search id, the watched
threads; see ``connectors.mastodon``), status id order, and when a watched thread is due.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from connectors.base import Cursor
from connectors.errors import FatalError
from connectors.mastodon.mapping import _id, _parse_time


LATE_ARRIVAL_MARGIN = timedelta(minutes=10)
"""How far below the saved id a hashtag poll starts, for posts that federate late."""
MAX_WATCHED_THREADS = 200
"""Threads remembered per instance; the oldest are forgotten first."""
THREAD_RECHECK_MIN = timedelta(minutes=15)
"""The shortest wait before a watched thread is fetched again."""


# -- ids ----------------------------------------------------------------------------------------


def _id_key(status_id: str) -> tuple[int, str]:
    """Mastodon ids are strings that sort by length, then lexically (snowflakes, ULIDs)."""
    return (len(status_id), status_id)


def _newer(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a if b is None else b
    return max(a, b, key=_id_key)


def _below_by_margin(status_id: str) -> str:
    """An id ``LATE_ARRIVAL_MARGIN`` earlier (Mastodon snowflakes: milliseconds << 16)."""
    if not status_id.isdigit():
        return status_id
    margin = int(LATE_ARRIVAL_MARGIN.total_seconds() * 1000) << 16
    return str(max(int(status_id) - margin, 0))


# -- cursor -------------------------------------------------------------------------------------


def _empty_instance_state() -> dict[str, Any]:
    return {"tags": {}, "search": None, "threads": {}}


def _parse_cursor(since: Cursor | None, brand: str) -> dict[str, Any]:
    """A deep copy of the saved cursor, checked; FatalError when it cannot be read."""
    if since is None:
        return {"instances": {}}

    def bad(why: str) -> FatalError:
        return FatalError(f"mastodon: the saved cursor of brand {brand!r} is unreadable ({why}); "
                          "delete it to start over with a first run")

    if not isinstance(since, Mapping) or not isinstance(since.get("instances"), Mapping):
        raise bad("no 'instances' object")
    state: dict[str, Any] = {"instances": {}}
    for url, entry in since["instances"].items():
        if not isinstance(entry, Mapping):
            raise bad(f"the entry of {url} is not an object")
        tags, search, threads = entry.get("tags", {}), entry.get("search"), entry.get("threads", {})
        accounts = entry.get("accounts", {})  # the brand's own accounts: newest status id each
        if not isinstance(accounts, Mapping) or not all(_id(v) for v in accounts.values()):
            raise bad(f"the accounts of {url} are not ids")
        if not isinstance(tags, Mapping) or not all(_id(v) for v in tags.values()):
            raise bad(f"the tags of {url} are not ids")
        if search is not None and _id(search) is None:
            raise bad(f"the search id of {url} is not an id")
        if not isinstance(threads, Mapping) or not all(
                isinstance(t, Mapping) and isinstance(t.get("uri"), str) and isinstance(t.get("posted"), str)
                for t in threads.values()):
            raise bad(f"the threads of {url} are not readable")
        state["instances"][url] = {
            "tags": {str(k): _id(v) for k, v in tags.items()},
            "search": _id(search),
            "threads": copy.deepcopy({str(k): dict(v) for k, v in threads.items()}),
        }
        if accounts:  # only brands with own accounts on Mastodon have the entry
            state["instances"][url]["accounts"] = {str(k): _id(v) for k, v in accounts.items()}
    return state


def _thread_due(entry: Mapping[str, Any], now: datetime) -> bool:
    """Whether a watched thread is checked again now: never checked, or it has waited as
    long as the post was old when last checked (at least ``THREAD_RECHECK_MIN``), so the
    checks thin out as the thread ages (about 7 in its first 24 hours)."""
    checked = entry.get("checked")
    if not checked:
        return True
    checked_at = _parse_time(checked)
    return now - checked_at >= max(THREAD_RECHECK_MIN, checked_at - _parse_time(entry["posted"]))
