"""Mastodon statuses as ``Mention``s: ``read_status`` checks one status object (a malformed
one raises ``MalformedPayloadError``), ``mention_from_status`` maps it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from connectors.html_text import html_to_text
from connectors.base import MAX_COUNT, Mention, ensure_utc
from connectors.errors import MalformedPayloadError


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S")
"""A status URI: a scheme, then something (https://..., or an old OStatus tag:...)."""


# -- mapping ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)


class _Status:
    """The fields of a status the connector reasons with, checked."""

    raw: Mapping[str, Any]
    id: str
    uri: str
    created_at: datetime
    in_reply_to_id: str | None
    replies: int
    is_reblog: bool


def _parse_time(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    if not isinstance(value, datetime):
        raise ValueError(f"not a timestamp: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=timezone.utc)  # Mastodon times are UTC
    return ensure_utc(value)


def _id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT else 0


def read_status(item: Any) -> _Status:
    """Check one status object; raises MalformedPayloadError when it cannot be used."""
    if not isinstance(item, Mapping):
        raise MalformedPayloadError(f"a status must be an object, got {type(item).__name__}")
    status_id, uri = _id(item.get("id")), item.get("uri")
    if status_id is None:
        raise MalformedPayloadError(f"status without a usable id: {item.get('id')!r}")
    if not isinstance(uri, str) or not _URI.match(uri):
        # Mastodon.py casts a number sent as uri to a string: "12345" is no URI, and as
        # the mention's id it would collide across instances.
        raise MalformedPayloadError(f"status {status_id}: uri must be a URI, got {uri!r}")
    try:
        created_at = _parse_time(item.get("created_at"))
    except ValueError as exc:
        raise MalformedPayloadError(f"status {status_id}: bad created_at: {exc}") from exc
    return _Status(item, status_id, uri, created_at, _id(item.get("in_reply_to_id")),
                   _count(item.get("replies_count")), item.get("reblog") is not None)


def _full_handle(account: Mapping[str, Any]) -> str:
    acct = account.get("acct")
    if not isinstance(acct, str) or not acct:
        raise MalformedPayloadError(f"account without acct: {acct!r}")
    acct = acct.lstrip("@")
    if "@" in acct:
        return acct
    # A local account's acct has no domain: take it from its profile URL.
    profile = account.get("url")
    try:
        host = urlsplit(profile).hostname if isinstance(profile, str) else None
    except ValueError:  # "http://[x": urlsplit refuses a malformed IPv6 host
        host = None
    return f"{acct}@{host}" if host else acct


def _plain(value: Any) -> Any:
    """A Mastodon.py object (dict subclasses, datetimes) as plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return _parse_time(value).isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def mention_from_status(status: _Status, brand: str, *, fetched_at: datetime | None = None,
                        conversation_id: str | None = None, parent_id: str | None = None,
                        thread_context: bool = False) -> Mention:
    """One (checked) status as a Mention; see the module docstring for the mapping."""
    item = status.raw
    content, spoiler = item.get("content"), item.get("spoiler_text")
    if not isinstance(content, str):
        raise MalformedPayloadError(f"status {status.id}: content must be a string, got {type(content).__name__}")
    account = item.get("account")
    if not isinstance(account, Mapping):
        raise MalformedPayloadError(f"status {status.id}: account must be an object")
    text = html_to_text(content)
    if isinstance(spoiler, str) and spoiler.strip():
        text = f"{spoiler.strip()}\n\n{text}" if text else spoiler.strip()
    url, lang = item.get("url"), item.get("language")
    if conversation_id is None and status.in_reply_to_id is None:
        conversation_id = status.uri  # not a reply: the root of its own thread
    return Mention(
        source="mastodon",
        id=status.uri,
        brand=brand,
        created_at=status.created_at,
        text=text,
        author=_full_handle(account),
        url=url if isinstance(url, str) and url else status.uri,
        conversation_id=conversation_id,
        parent_id=parent_id if parent_id is not None else status.in_reply_to_id,
        lang=lang if isinstance(lang, str) and lang else None,
        metrics={
            "likes": _count(item.get("favourites_count")),
            "reposts": _count(item.get("reblogs_count")),
            "replies": status.replies,
        },
        fetched_at=fetched_at,
        raw=_plain(item),
        thread_context=thread_context,
    )
