"""What both modes of the ``bluesky`` connector share: times, post records as Mentions,
and a search query's cursor state. Its own module so that search mode
(connectors.bluesky.search) and jetstream mode (connectors.bluesky.jetstream) both
import it and not each other."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from connectors.base import MAX_COUNT, Mention, ensure_utc
from connectors.errors import FatalError, MalformedPayloadError

POST_COLLECTION = "app.bsky.feed.post"
_AT_URI = re.compile(r"^at://(?P<repo>[^/\s]+)/(?P<collection>[^/\s]+)/(?P<rkey>[^/\s]+)$")


# -- time -------------------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime:
    """An atproto datetime (``2026-11-01T09:30:00.000Z``) as tz-aware UTC.

    A missing time zone is read as UTC (some clients leave it out); a date without a
    time, or anything else, raises ValueError.
    """
    if not isinstance(value, str) or "T" not in value.upper():
        raise ValueError(f"not an atproto datetime: {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return ensure_utc(moment)


def iso(moment: datetime) -> str:
    """``2026-11-01T09:30:00.000Z``: millisecond precision, as Bluesky writes times."""
    return ensure_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def to_time_us(moment: datetime) -> int:
    """A datetime as Jetstream's ``time_us`` (microseconds since the epoch)."""
    delta = ensure_utc(moment) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_time_us(time_us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=time_us)


# -- mapping ----------------------------------------------------------------------------


def parse_post_uri(uri: Any) -> tuple[str, str]:
    """``at://did/app.bsky.feed.post/rkey`` -> (did or handle, rkey)."""
    match = _AT_URI.match(uri) if isinstance(uri, str) else None
    if match is None or match["collection"] != POST_COLLECTION:
        raise ValueError(f"not a post URI: {uri!r}")
    return match["repo"], match["rkey"]


def post_url(actor: str, rkey: str) -> str:
    """The bsky.app web address of a post; ``actor`` is a handle or a DID."""
    return f"https://bsky.app/profile/{actor}/post/{rkey}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT else 0


def _thread_uris(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(root, parent) URIs of a reply record; (None, None) for a post that starts a thread."""
    reply = _mapping(record.get("reply"))
    root = _mapping(reply.get("root")).get("uri")
    parent = _mapping(reply.get("parent")).get("uri")
    return (root if isinstance(root, str) and root else None,
            parent if isinstance(parent, str) and parent else None)


def _first_lang(record: Mapping[str, Any]) -> str | None:
    langs = record.get("langs")
    if isinstance(langs, list) and langs and isinstance(langs[0], str) and langs[0]:
        return langs[0]
    return None


def mention_from_record(uri: str, record: Any, *, brand: str, author: str | None, url_actor: str,
                        metrics: Mapping[str, int], raw: Mapping[str, Any],
                        fetched_at: datetime | None, indexed_at: Any = None) -> Mention:
    """A post record (``app.bsky.feed.post``) as a Mention; shared by both modes.

    ``created_at`` is the record's ``createdAt``. The client that wrote the record
    chose that string, and some write one no datetime can hold (year 0:
    "0000-01-01T00:00:00Z", which the AppView indexes all the same); then the
    AppView's ``indexedAt`` (search mode: when Bluesky first saw the post) stands in
    for it, so the post is kept, not skipped. A ``createdAt`` that is missing or not a
    string is a broken record, not a client's odd clock: skipped.
    Raises MalformedPayloadError when the record is not an object, its text is not a
    string or no time can be read.
    """
    if not isinstance(record, Mapping):
        raise MalformedPayloadError(f"{uri}: the record is not an object")
    text = record.get("text")
    if not isinstance(text, str):
        raise MalformedPayloadError(f"{uri}: the record's text is not a string")
    written = record.get("createdAt")
    try:
        created_at = parse_datetime(written)
    except ValueError as exc:
        if not isinstance(written, str):
            raise MalformedPayloadError(f"{uri}: bad createdAt: {exc}") from exc
        try:
            created_at = parse_datetime(indexed_at)
        except ValueError:
            raise MalformedPayloadError(f"{uri}: bad createdAt ({exc}) and no indexedAt to stand in") from exc
    _repo, rkey = parse_post_uri(uri)
    root, parent = _thread_uris(record)
    return Mention(
        source="bluesky",
        id=uri,
        brand=brand,
        created_at=created_at,
        text=text,
        author=author,
        url=post_url(url_actor, rkey),
        conversation_id=root or uri,
        parent_id=parent,
        lang=_first_lang(record),
        metrics=dict(metrics),
        fetched_at=fetched_at,
        raw=raw,
    )


@dataclass
class _QueryState:
    """Where one search query stands (module docstring, "Cursor")."""

    since: datetime
    gap_until: datetime | None = None
    gap_resume: datetime | None = None

    def to_dict(self) -> dict[str, str]:
        state = {"since": iso(self.since)}
        if self.gap_until is not None and self.gap_resume is not None:
            state["gap_until"] = iso(self.gap_until)
            state["gap_resume"] = iso(self.gap_resume)
        return state


def _bad_cursor(since: Any, brand: str, why: str) -> FatalError:
    return FatalError(f"bluesky: the saved cursor of brand {brand!r} is unreadable ({why}): {since!r}; "
                      "delete it to start over with a first run")


def _parse_query_state(raw: Any, since: Any, brand: str) -> _QueryState:
    if not isinstance(raw, Mapping):
        raise _bad_cursor(since, brand, "a query state is not an object")
    try:
        start = parse_datetime(raw.get("since"))
        gap_until = parse_datetime(raw["gap_until"]) if raw.get("gap_until") is not None else None
        gap_resume = parse_datetime(raw["gap_resume"]) if raw.get("gap_resume") is not None else None
    except ValueError as exc:
        raise _bad_cursor(since, brand, str(exc)) from exc
    if (gap_until is None) != (gap_resume is None):
        raise _bad_cursor(since, brand, "gap_until and gap_resume must come together")
    return _QueryState(start, gap_until, gap_resume)
