"""A fake Bluesky XRPC service on FakeServer, for the real ``atproto.Client``.

    with FakeServer() as server:
        api = FakeBluesky(server, posts=[post_view(...), ...])
        client = Client(base_url=server.url)   # /xrpc is appended by the client

Serves:

* ``POST /xrpc/com.atproto.server.createSession``: checks identifier and password and
  answers the documented session object *without* ``didDoc`` (with one, ``login()``
  would move the client to the PDS named there). Wrong credentials: 401
  ``AuthenticationRequired``, as the entryway answers.
* ``GET /xrpc/app.bsky.feed.searchPosts``: needs the session's bearer token; filters
  the posts by ``q`` (a word, a ``"phrase"`` or a ``#tag``, case-insensitive
  substring; ``from:handle``, the author; ``to:handle``, replies to that author's posts), ``lang``, ``since`` (inclusive) and ``until`` (exclusive) on sortAt (the
  earlier of indexedAt and createdAt), newest first, ``limit`` per page and an offset
  ``cursor``, like the AppView.

* ``GET /xrpc/com.atproto.identity.resolveHandle``: no login needed; ``{"did": ...}`` for
  a handle in ``api.dids`` (case-insensitive), else 400 ``InvalidRequest`` "Unable to
  resolve handle", as the entryway answers.

``api.script_search(Reply(...), ...)`` queues replies served before the computed ones
(429s, 500s). ``api.searches`` lists the search requests' query parameters.
"""

from __future__ import annotations

import base64
import json
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any

from tests.fakes.http import FakeServer, Reply, Request

SESSION_PATH = "/xrpc/com.atproto.server.createSession"
SEARCH_PATH = "/xrpc/app.bsky.feed.searchPosts"
RESOLVE_PATH = "/xrpc/com.atproto.identity.resolveHandle"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def fake_jwt(did: str, scope: str, lifetime: int) -> str:
    """A JWT the client can decode (it reads ``exp`` to decide when to refresh)."""
    now = int(time.time())  # the client compares exp with the real clock
    header = {"typ": "at+jwt", "alg": "ES256K"}
    payload = {"scope": scope, "sub": did, "aud": "did:web:bsky.social", "iat": now, "exp": now + lifetime}
    return f"{_b64(header)}.{_b64(payload)}.c2lnbmF0dXJl"


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def post_view(rkey: str, text: str, created_at: datetime | str, *, handle: str = "alice.bsky.social",
              did: str = "did:plc:alice", indexed_at: datetime | str | None = None,
              langs: list[str] | None = None, reply_root: str | None = None, reply_parent: str | None = None,
              likes: int = 0, reposts: int = 0, quotes: int = 0, replies: int = 0) -> dict[str, Any]:
    """An ``app.bsky.feed.defs#postView`` as searchPosts returns it."""
    created = created_at if isinstance(created_at, str) else iso(created_at)
    if indexed_at is None:
        indexed = created if not isinstance(created_at, datetime) else iso(created_at)
    else:
        indexed = indexed_at if isinstance(indexed_at, str) else iso(indexed_at)
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", "createdAt": created, "text": text}
    if langs is not None:
        record["langs"] = langs
    if reply_root or reply_parent:
        root = reply_root or reply_parent
        record["reply"] = {
            "root": {"uri": root, "cid": "bafyreiroot"},
            "parent": {"uri": reply_parent or root, "cid": "bafyreiparent"},
        }
    return {
        "uri": f"at://{did}/app.bsky.feed.post/{rkey}",
        "cid": f"bafyrei{rkey}",
        "author": {"did": did, "handle": handle, "displayName": handle.split(".")[0].title(),
                   "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did}/x@jpeg", "labels": [],
                   "createdAt": "2024-01-01T00:00:00.000Z"},
        "record": record,
        "replyCount": replies,
        "repostCount": reposts,
        "likeCount": likes,
        "quoteCount": quotes,
        "indexedAt": indexed,
        "labels": [],
    }


def _time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def sort_at(post: dict[str, Any]) -> datetime:
    times = [t for t in (_time(post.get("indexedAt")), _time((post.get("record") or {}).get("createdAt"))) if t]
    return min(times)


def _q_matches(q: str, text: str) -> bool:
    needle = q.strip('"').casefold()
    return needle in text.casefold()


class FakeBluesky:
    def __init__(self, server: FakeServer, posts: list[dict[str, Any]] | None = None, *,
                 handle: str = "listener.bsky.social", password: str = "abcd-efgh-ijkl-mnop",
                 did: str = "did:plc:listener") -> None:
        self.server = server
        self.posts: list[dict[str, Any]] = list(posts or [])
        self.handle, self.password, self.did = handle, password, did
        self.access_jwt = fake_jwt(did, "com.atproto.appPass", 7200)
        self.refresh_jwt = fake_jwt(did, "com.atproto.refresh", 86400 * 60)
        self.sessions = 0
        self.page_size: int | None = None
        """Posts per search page at most, below ``limit`` (short pages, many of them)."""
        self.dids: dict[str, str] = {}
        """Handles ``resolveHandle`` knows, and their DIDs."""
        self._scripted: deque[Reply] = deque()
        server.route("POST", SESSION_PATH, self._create_session)
        server.route("GET", SEARCH_PATH, self._search)
        server.route("GET", RESOLVE_PATH, self._resolve_handle)

    def script_search(self, *replies: Reply) -> None:
        self._scripted.extend(replies)

    @property
    def searches(self) -> list[dict[str, str]]:
        return [{k: v[-1] for k, v in r.query.items()} for r in self.server.requests if r.path == SEARCH_PATH]

    def _create_session(self, request: Request) -> Reply:
        try:
            body = json.loads(request.body)
        except ValueError:
            return Reply(400, {"error": "InvalidRequest", "message": "Request body is not JSON"})
        if body.get("identifier") != self.handle or body.get("password") != self.password:
            return Reply(401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"})
        self.sessions += 1
        return Reply(200, {
            "accessJwt": self.access_jwt, "refreshJwt": self.refresh_jwt, "handle": self.handle,
            "did": self.did, "email": "listener@example.com", "emailConfirmed": True, "active": True,
        })

    def _resolve_handle(self, request: Request) -> Reply:
        handle = (request.query.get("handle") or [""])[-1].casefold()
        did = {h.casefold(): d for h, d in self.dids.items()}.get(handle)
        if did is None:
            return Reply(400, {"error": "InvalidRequest", "message": "Unable to resolve handle"})
        return Reply(200, {"did": did})

    def _matches(self, q: str, post: dict[str, Any], text: str) -> bool:
        operator, _, value = q.partition(":")
        if operator == "from" and value:
            return post["author"]["handle"].casefold() == value.casefold()
        if operator == "to" and value:
            parent = (((post.get("record") or {}).get("reply") or {}).get("parent") or {}).get("uri")
            authors = {p["uri"]: p["author"]["handle"].casefold() for p in self.posts}
            return authors.get(parent) == value.casefold()
        return _q_matches(q, text)

    def _search(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.access_jwt}":
            return Reply(401, {"error": "AuthenticationRequired", "message": "Authentication Required"})
        if self._scripted:
            return self._scripted.popleft()
        params = {k: v[-1] for k, v in request.query.items()}
        q = params.get("q", "")
        since, until = _time(params.get("since")), _time(params.get("until"))
        limit = min(int(params.get("limit", "25")), self.page_size or 100)
        offset = int(params.get("cursor", "0"))
        hits = []
        for post in self.posts:
            record = post.get("record") or {}
            text = record.get("text") if isinstance(record.get("text"), str) else ""
            if not self._matches(q, post, text):
                continue
            if "lang" in params and params["lang"] not in (record.get("langs") or []):
                continue
            moment = sort_at(post)
            if (since and moment < since) or (until and moment >= until):
                continue
            hits.append((moment, post["uri"], post))
        hits.sort(key=lambda hit: (hit[0], hit[1]), reverse=True)
        page = [post for _, _, post in hits[offset:offset + limit]]
        body: dict[str, Any] = {"posts": page, "hitsTotal": len(hits)}
        if offset + limit < len(hits):
            body["cursor"] = str(offset + limit)
        return Reply(200, body)
