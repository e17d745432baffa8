"""Search hits (``app.bsky.feed.defs#postView``) as ``Mention``s; what they share with
Jetstream's records is in ``records``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.base import Mention
from connectors.errors import MalformedPayloadError
from connectors.bluesky.records import _count, _mapping, mention_from_record, parse_datetime, parse_post_uri


log = logging.getLogger("listener.connectors.bluesky")


def mention_from_post_view(post: Any, brand: str, fetched_at: datetime | None = None) -> Mention:
    """One ``app.bsky.feed.defs#postView`` (a search hit) as a Mention.

    Raises MalformedPayloadError when the URI, the record's text or both ``createdAt``
    and ``indexedAt`` cannot be read; optional fields of the wrong type are ignored.
    """
    if not isinstance(post, Mapping):
        raise MalformedPayloadError(f"a post view must be an object, got {type(post).__name__}")
    uri = post.get("uri")
    try:
        repo, _rkey = parse_post_uri(uri)
    except ValueError as exc:
        raise MalformedPayloadError(str(exc)) from exc
    handle = _mapping(post.get("author")).get("handle")
    # "handle.invalid" is what the AppView shows for a handle that no longer verifies.
    handle = handle if isinstance(handle, str) and handle and handle != "handle.invalid" else None
    metrics = {
        "likes": _count(post.get("likeCount")),
        "reposts": _count(post.get("repostCount")) + _count(post.get("quoteCount")),
        "replies": _count(post.get("replyCount")),
        "quotes": _count(post.get("quoteCount")),
    }
    return mention_from_record(uri, post.get("record"), brand=brand, author=handle or repo,
                               url_actor=handle or repo, metrics=metrics, raw=dict(post),
                               fetched_at=fetched_at, indexed_at=post.get("indexedAt"))


def sort_time(post: Any) -> datetime | None:
    """The post's ``sortAt`` as search filters and orders it: the earlier of
    ``indexedAt`` and ``record.createdAt`` (None when neither can be read)."""
    if not isinstance(post, Mapping):
        return None
    times = []
    for value in (post.get("indexedAt"), _mapping(post.get("record")).get("createdAt")):
        try:
            times.append(parse_datetime(value))
        except ValueError:
            pass
    return min(times, default=None)


@dataclass(frozen=True, slots=True)


class MappedPage:
    mentions: list[Mention]
    skipped: int
    oldest: datetime | None
    """The oldest sortAt on the page, readable posts or not."""


def map_search_page(body: Mapping[str, Any], brand: str, fetched_at: datetime | None) -> MappedPage:
    """Every readable post of one searchPosts response; malformed ones skipped and counted."""
    posts = body.get("posts")
    if posts is None:
        return MappedPage([], 0, None)
    if not isinstance(posts, list):
        raise MalformedPayloadError(f"'posts' must be a list, got {type(posts).__name__}")
    mentions: list[Mention] = []
    skipped = 0
    oldest: datetime | None = None
    for post in posts:
        moment = sort_time(post)
        if moment is not None:
            oldest = moment if oldest is None else min(oldest, moment)
        try:
            mentions.append(mention_from_post_view(post, brand, fetched_at))
        except MalformedPayloadError as exc:
            skipped += 1
            log.warning("bluesky: skipped an unreadable post: %s", exc)
    return MappedPage(mentions, skipped, oldest)
