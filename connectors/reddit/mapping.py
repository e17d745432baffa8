"""Reddit things (submissions, comments) as ``Mention``s; a malformed thing raises
``MalformedPayloadError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from connectors.base import MAX_COUNT, Mention
from connectors.errors import MalformedPayloadError


SOURCE = "reddit"
WEB_URL = "https://www.reddit.com"
"""Permalinks are relative; mention URLs point at the public site."""
_DELETED = frozenset({"[deleted]", "[removed]"})


# -- mapping -----------------------------------------------------------------------------


def _require(data: Mapping[str, Any], key: str, kinds: type | tuple[type, ...], *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise MalformedPayloadError(f"{key}={value!r}")
    return value


def _count(data: Mapping[str, Any], key: str) -> int | None:
    value = _require(data, key, (int, float), optional=True)
    if value is not None and not (math.isfinite(value) and abs(value) <= MAX_COUNT):
        raise MalformedPayloadError(f"{key}={value!r}")
    return None if value is None else int(value)


def _created_at(data: Mapping[str, Any]) -> datetime:
    created = _require(data, "created_utc", (int, float))
    try:
        return datetime.fromtimestamp(created, timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedPayloadError(f"created_utc={created!r}") from exc


def _author(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):  # checked first: a list or dict cannot be looked up in _DELETED
        raise MalformedPayloadError(f"author={value!r}")
    return None if value in _DELETED else value


def _strip_kind(fullname: Any) -> str | None:
    if fullname is None:
        return None
    if not isinstance(fullname, str):
        raise MalformedPayloadError(f"parent/link id={fullname!r}")
    return fullname.split("_", 1)[1] if fullname[:3] in ("t1_", "t3_") else fullname


def _url(permalink: Any) -> str | None:
    return WEB_URL + permalink if isinstance(permalink, str) and permalink.startswith("/") else None


def _comment_url(submission_id: str | None, comment_id: str) -> str | None:
    """A comment's address without its ``permalink`` (some listings leave it out): the
    thread's id and the comment's build it; Reddit fills in the slug ("_")."""
    return f"{WEB_URL}/comments/{submission_id}/_/{comment_id}/" if submission_id else None


def submission_mention(data: Mapping[str, Any], brand: str, fetched_at: datetime) -> Mention:
    """A t3 thing's data -> Mention. Raises MalformedPayloadError for an unreadable item."""
    sid = _require(data, "id", str)
    if not sid:
        raise MalformedPayloadError("empty id")
    created_at = _created_at(data)
    title = _require(data, "title", str)
    selftext = _require(data, "selftext", str, optional=True) or ""
    if selftext in _DELETED:
        selftext = ""
    score = _count(data, "score") or 0
    num_comments = _count(data, "num_comments")
    ratio = _require(data, "upvote_ratio", (int, float), optional=True)
    subreddit = _require(data, "subreddit", str, optional=True)
    metrics: dict[str, Any] = {"likes": max(score, 0), "score": score}
    if num_comments is not None:
        metrics["replies"] = max(num_comments, 0)
    if ratio is not None:
        metrics["upvote_ratio"] = float(ratio)
    author = _author(data.get("author"))
    raw = {
        "kind": "t3", "id": sid, "name": data.get("name"), "title": title, "selftext": selftext,
        "author": data.get("author"), "created_utc": data.get("created_utc"), "score": score,
        "num_comments": num_comments, "upvote_ratio": ratio, "subreddit": subreddit,
        "permalink": data.get("permalink"), "url": data.get("url"), "over_18": data.get("over_18"),
    }
    return Mention(
        source=SOURCE, id=sid, brand=brand, created_at=created_at,
        text=f"{title}\n\n{selftext}" if selftext else title, author=author, url=_url(data.get("permalink")),
        conversation_id=sid, parent_id=None, lang=None, metrics=metrics, fetched_at=fetched_at, raw=raw,
        thread_context=False,
    )


def comment_mention(data: Mapping[str, Any], brand: str, fetched_at: datetime, *, thread_context: bool,
                    replies: int | None = None, submission_id: str | None = None) -> Mention | None:
    """A t1 thing's data -> Mention; None for a deleted/removed comment (no speech left).
    ``submission_id``: the thread it was read from (else its ``link_id`` names it).
    Raises MalformedPayloadError for an unreadable item."""
    cid = _require(data, "id", str)
    if not cid:
        raise MalformedPayloadError("empty id")
    created_at = _created_at(data)
    body = _require(data, "body", str)
    conversation = submission_id or _strip_kind(_require(data, "link_id", str))
    parent = _strip_kind(_require(data, "parent_id", str, optional=True))
    score = _count(data, "score") or 0
    author = _author(data.get("author"))
    if body.strip() in _DELETED:
        return None
    metrics: dict[str, Any] = {"likes": max(score, 0), "score": score}
    if replies is not None:
        metrics["replies"] = replies
    subreddit = data.get("subreddit")
    raw = {
        "kind": "t1", "id": cid, "name": data.get("name"), "body": body, "author": data.get("author"),
        "created_utc": data.get("created_utc"), "score": score, "parent_id": data.get("parent_id"),
        "link_id": data.get("link_id"), "subreddit": subreddit if isinstance(subreddit, str) else None,
        "permalink": data.get("permalink"), "replies": replies,
    }
    return Mention(
        source=SOURCE, id=cid, brand=brand, created_at=created_at, text=body, author=author,
        url=_url(data.get("permalink")) or _comment_url(conversation, cid), conversation_id=conversation,
        parent_id=parent, lang=None, metrics=metrics, fetched_at=fetched_at, raw=raw, thread_context=thread_context,
    )


def _tree_comment_data(comment: Any) -> tuple[dict[str, Any], int | None]:
    """A praw Comment's own fields as plain JSON-able data, read from its __dict__ so that a
    missing field never makes praw fetch it lazily (one request per malformed item)."""
    fields = vars(comment)
    data = {k: fields.get(k) for k in ("id", "name", "body", "created_utc", "score", "parent_id", "link_id",
                                       "permalink")}
    author = fields.get("author")  # praw made it a Redditor, or None for [deleted]
    if author is not None and not isinstance(author, str):
        author = vars(author).get("name")
    data["author"] = author
    subreddit = fields.get("subreddit")  # praw made it a Subreddit
    if subreddit is not None and not isinstance(subreddit, str):
        subreddit = vars(subreddit).get("display_name")
    data["subreddit"] = subreddit
    replies = fields.get("_replies")
    return data, (len(replies) if replies is not None else None)


def _tree_submission_data(submission: Any) -> dict[str, Any]:
    """A praw Submission's own fields (as read with its comment tree) as plain data, from
    its __dict__ like ``_tree_comment_data``, for ``submission_mention``."""
    fields = vars(submission)
    data = {k: fields.get(k) for k in ("id", "name", "title", "selftext", "created_utc", "score", "num_comments",
                                       "upvote_ratio", "permalink", "url", "over_18")}
    for key, attribute in (("author", "name"), ("subreddit", "display_name")):
        value = fields.get(key)  # praw made them a Redditor and a Subreddit
        data[key] = value if value is None or isinstance(value, str) else vars(value).get(attribute)
    return data


def _thing_data(child: Any, kind: str) -> Mapping[str, Any]:
    if not isinstance(child, Mapping):
        raise MalformedPayloadError(f"a listing child that is not an object: {type(child).__name__}")
    if child.get("kind") != kind:
        raise MalformedPayloadError(f"kind {child.get('kind')!r}, expected {kind!r}")
    data = child.get("data")
    if not isinstance(data, Mapping):
        raise MalformedPayloadError("no data object")
    return data
