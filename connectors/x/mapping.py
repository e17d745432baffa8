"""X post ids and times (snowflakes carry their creation time), and API v2 search pages as
``Mention``s, as served or as stored by ``twarc2`` (``mentions_from_page``).
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from connectors.base import MAX_COUNT, Mention, ensure_utc
from connectors.errors import MalformedPayloadError


log = logging.getLogger("listener.connectors.x")
SNOWFLAKE_EPOCH_MS = 1288834974657
"""X post ids are snowflakes: (milliseconds since this epoch) << 22 | worker | sequence."""


# -- snowflake ids --------------------------------------------------------------------


def id_time(post_id: str | int) -> datetime:
    """When a post with this id was created (to the millisecond)."""
    ms = (int(post_id) >> 22) + SNOWFLAKE_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def since_id_for(moment: datetime) -> str:
    """A ``since_id`` that admits exactly the posts created at or after ``moment``."""
    ms = int(ensure_utc(moment).timestamp() * 1000) - SNOWFLAKE_EPOCH_MS
    return str(max((ms << 22) - 1, 0))


def _is_id(value: Any) -> bool:
    # Snowflakes are 64-bit: at most 20 digits (a longer string is no id, and int() of
    # thousands of digits raises).
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20


def _iso(moment: datetime) -> str:
    return ensure_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: Any) -> datetime:
    """An X timestamp (``2026-11-01T09:30:00.000Z``) as a tz-aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    return ensure_utc(moment, "timestamp")


# -- mapping ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)


class MappedPage:
    mentions: list[Mention]
    skipped: int
    """Items that could not be read (malformed)."""
    retweets: int
    """Retweets left out: they add no speech, and the original's metrics count them."""


def _users_by_id(page: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    includes = page.get("includes")
    users = includes.get("users") if isinstance(includes, Mapping) else None
    if not isinstance(users, list):
        return {}
    return {u["id"]: u for u in users if isinstance(u, Mapping) and isinstance(u.get("id"), str)}


def _int_metric(metrics: Mapping[str, Any], key: str) -> int | None:
    value = metrics.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT else None


def _referenced(tweet: Mapping[str, Any], kind: str) -> str | None:
    refs = tweet.get("referenced_tweets")
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if isinstance(ref, Mapping) and ref.get("type") == kind and _is_id(ref.get("id")):
            return ref["id"]
    return None


def is_retweet(tweet: Mapping[str, Any]) -> bool:
    return _referenced(tweet, "retweeted") is not None


def mention_from_tweet(tweet: Any, users: Mapping[str, Mapping[str, Any]], brand: str,
                       fetched_at: datetime | None) -> Mention:
    """One v2 tweet object (with the page's ``includes.users`` by id) as a Mention.

    Raises MalformedPayloadError when id, text or created_at is missing or of the wrong
    type; optional fields of the wrong type are ignored.
    """
    if not isinstance(tweet, Mapping):
        raise MalformedPayloadError(f"a tweet must be an object, got {type(tweet).__name__}")
    post_id, text = tweet.get("id"), tweet.get("text")
    if not _is_id(post_id):
        raise MalformedPayloadError(f"tweet id must be a string of digits, got {post_id!r}")
    if not isinstance(text, str):
        raise MalformedPayloadError(f"tweet {post_id}: text must be a string, got {type(text).__name__}")
    try:
        created_at = parse_time(tweet.get("created_at"))
    except ValueError as exc:
        raise MalformedPayloadError(f"tweet {post_id}: bad created_at: {exc}") from exc

    author_id = tweet.get("author_id")
    user = users.get(author_id) if isinstance(author_id, str) else None
    username = user.get("username") if user is not None else None
    username = username if isinstance(username, str) and username else None

    public = tweet.get("public_metrics")
    public = public if isinstance(public, Mapping) else {}
    likes, retweets, quotes, replies = (_int_metric(public, k) for k in
                                        ("like_count", "retweet_count", "quote_count", "reply_count"))
    metrics: dict[str, int] = {
        "likes": likes or 0,
        "reposts": (retweets or 0) + (quotes or 0),
        "replies": replies or 0,
    }
    for name, key in (("quotes", "quote_count"), ("impressions", "impression_count"),
                      ("bookmarks", "bookmark_count")):
        value = _int_metric(public, key)
        if value is not None:
            metrics[name] = value
    user_metrics = user.get("public_metrics") if user is not None else None
    if isinstance(user_metrics, Mapping) and _int_metric(user_metrics, "followers_count") is not None:
        metrics["author_followers"] = user_metrics["followers_count"]

    lang = tweet.get("lang")
    conversation_id = tweet.get("conversation_id")
    return Mention(
        source="x",
        id=post_id,
        brand=brand,
        created_at=created_at,
        text=text,
        author=username,
        url=f"https://x.com/{username}/status/{post_id}" if username else f"https://x.com/i/web/status/{post_id}",
        conversation_id=conversation_id if _is_id(conversation_id) else None,
        parent_id=_referenced(tweet, "replied_to"),
        lang=lang if isinstance(lang, str) and lang else None,
        metrics=metrics,
        fetched_at=fetched_at,
        raw=dict(tweet),
    )


def map_page(page: Mapping[str, Any], brand: str, fetched_at: datetime | None) -> MappedPage:
    """Every readable, non-retweet post of one v2 search response page as a Mention."""
    data = page.get("data")
    if data is None:
        return MappedPage([], 0, 0)
    if not isinstance(data, list):
        raise MalformedPayloadError(f"'data' must be a list, got {type(data).__name__}")
    users = _users_by_id(page)
    mentions: list[Mention] = []
    skipped = retweets = 0
    for item in data:
        if isinstance(item, Mapping) and is_retweet(item):
            retweets += 1
            continue
        try:
            mentions.append(mention_from_tweet(item, users, brand, fetched_at))
        except (MalformedPayloadError, ValueError) as exc:
            skipped += 1
            log.warning("x: skipped an unreadable post: %s", exc)
    return MappedPage(mentions, skipped, retweets)


def mentions_from_page(page_json: Mapping[str, Any], brand: str,
                       fetched_at: datetime | None = None) -> tuple[list[Mention], int]:
    """Map one X API v2 search response page (``data``, ``includes.users``), as served by
    the API or stored one per line by ``twarc2``, to ``(mentions, skipped)``.

    Retweets are left out (not counted as skipped); malformed items are skipped and
    counted. Raises MalformedPayloadError when the page itself is not of that shape.
    """
    if not isinstance(page_json, Mapping):
        raise MalformedPayloadError(f"a page must be a JSON object, got {type(page_json).__name__}")
    mapped = map_page(page_json, brand, fetched_at)
    return mapped.mentions, mapped.skipped
