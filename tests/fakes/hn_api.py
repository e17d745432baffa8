"""A fake Algolia HN Search API (``/api/v1/search_by_date``) for FakeServer.

It answers in Algolia's documented JSON shape (``hits[]`` with ``objectID``,
``created_at_i``, ``_tags``...; ``nbHits``, ``nbPages``, ``page``, ``hitsPerPage``) and
behaves like the real service where the connector depends on it:

* the query is an AND of words, each matched as a word prefix in the searchable fields;
* ``tags=(story,comment)`` is an OR of tags, ``numericFilters`` an AND of comparisons;
* newest first; ``nbHits`` is the true count, but paging stops at ``pagination_limit``
  hits (1,000 on HN) and ``nbPages`` says so.

    api = FakeAlgolia([story(1, T, "Brewly is great")])
    api.install(server, Reply(429, headers={"Retry-After": "3"}))   # scripted replies first
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from tests.fakes.http import FakeServer, Reply, Request

PATH = "/api/v1/search_by_date"
_SEARCHABLE = ("title", "url", "story_text", "comment_text", "author")
_COMPARISON = re.compile(r"^\s*(\w+)\s*(>=|<=|!=|>|<|=)\s*(-?\d+)\s*$")
_WORD = re.compile(r"\w+")


def _iso(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def story(object_id: int, at: int, title: str, *, url: str | None = None, text: str | None = None,
          author: str = "pg", points: int = 1, comments: int = 0) -> dict[str, Any]:
    """A story hit as Algolia sends it (comment fields null)."""
    return {
        "created_at": _iso(at), "title": title, "url": url, "author": author, "points": points,
        "story_text": text, "comment_text": None, "num_comments": comments, "story_id": object_id,
        "story_title": None, "story_url": None, "parent_id": None, "created_at_i": at,
        "updated_at": _iso(at), "_tags": ["story", f"author_{author}", f"story_{object_id}"],
        "objectID": str(object_id),
    }


def comment(object_id: int, at: int, text: str, *, story_id: int, parent_id: int | None = None,
            author: str = "dang", story_title: str = "A story") -> dict[str, Any]:
    """A comment hit as Algolia sends it (story fields null, HTML in comment_text)."""
    return {
        "created_at": _iso(at), "title": None, "url": None, "author": author, "points": None,
        "story_text": None, "comment_text": text, "num_comments": None, "story_id": story_id,
        "story_title": story_title, "story_url": None, "parent_id": parent_id or story_id,
        "created_at_i": at, "updated_at": _iso(at), "_tags": ["comment", f"author_{author}", f"story_{story_id}"],
        "objectID": str(object_id),
    }


def _matches_words(hit: dict[str, Any], query: str) -> bool:
    words = {w.casefold() for field in _SEARCHABLE if isinstance(hit.get(field), str)
             for w in _WORD.findall(hit[field])}
    return all(any(w.startswith(q) for w in words) for q in (q.casefold() for q in _WORD.findall(query)))


def _matches_tags(hit: dict[str, Any], tags: str) -> bool:
    if not tags:
        return True
    # Comma = AND, parentheses = OR (Algolia's tag filter syntax).
    for group in re.findall(r"\([^)]*\)|[^,()]+", tags):
        options = [t.strip() for t in group.strip("()").split(",") if t.strip()]
        if options and not set(options) & set(hit.get("_tags", [])):
            return False
    return True


def _matches_numbers(hit: dict[str, Any], filters: str) -> bool:
    for part in filter(None, filters.split(",")):
        found = _COMPARISON.match(part)
        if not found:
            raise ValueError(f"bad numericFilters part {part!r}")
        name, op, number = found.group(1), found.group(2), int(found.group(3))
        value = hit.get(name)
        if not isinstance(value, int):
            return False
        ok = {">=": value >= number, "<=": value <= number, ">": value > number,
              "<": value < number, "=": value == number, "!=": value != number}[op]
        if not ok:
            return False
    return True


class FakeAlgolia:
    """``search_by_date`` over an in-memory list of hits (newest first)."""

    def __init__(self, hits: Iterable[Any] = (), pagination_limit: int = 1000) -> None:
        self.hits: list[Any] = list(hits)
        self.pagination_limit = pagination_limit

    def add(self, *hits: Any) -> None:
        self.hits.extend(hits)

    def install(self, server: FakeServer, *before: Reply) -> None:
        """Route the search path: ``before`` replies first, then this fake."""
        server.route("GET", PATH, *before, self)

    def __call__(self, request: Request) -> Reply:
        arg = {key: values[-1] for key, values in request.query.items()}
        try:
            hits_per_page = int(arg.get("hitsPerPage", "20"))
            page = int(arg.get("page", "0"))
            found = [
                h for h in self.hits
                if not isinstance(h, dict) or (
                    _matches_words(h, arg.get("query", ""))
                    and _matches_tags(h, arg.get("tags", ""))
                    and _matches_numbers(h, arg.get("numericFilters", "")))
            ]
        except ValueError as exc:
            return Reply(400, {"message": str(exc), "status": 400})
        found.sort(key=lambda h: h.get("created_at_i", 0) if isinstance(h, dict) else 0, reverse=True)
        reachable = found[: self.pagination_limit]
        pages = min(math.ceil(len(found) / hits_per_page), self.pagination_limit // hits_per_page)
        served = reachable[page * hits_per_page: (page + 1) * hits_per_page]
        return Reply(200, {
            "hits": [dict(h, _highlightResult={"title": {"value": "..."}}) if isinstance(h, dict) else h
                     for h in served],
            "nbHits": len(found), "page": page, "nbPages": pages, "hitsPerPage": hits_per_page,
            "exhaustiveNbHits": True, "exhaustiveTypo": True, "query": arg.get("query", ""),
            "params": "&".join(f"{k}={v}" for k, v in arg.items()), "processingTimeMS": 1,
        })
