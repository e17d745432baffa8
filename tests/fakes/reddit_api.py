"""A fake Reddit API on 127.0.0.1 that speaks the wire format praw uses.

    with FakeReddit(now=T0) as api:
        api.add_submission("s1", "Acme is great", at=T0 - timedelta(minutes=5))
        api.add_comment("s1", "c1", "agreed", at=...)                       # top-level
        api.add_comment("s1", "c2", "behind a 'more'", parent="c1", at=..., collapsed=True)
        connector = reddit.create(api.settings(), clock, env=api.env, retry=...)
        api.script("GET", SEARCH, Reply(429, headers={"retry-after": "7"}))  # then normal again

Routes (paths exactly as praw sends them, with the trailing slash; a trailing slash is
optional here):

* ``POST /api/v1/access_token``: HTTP basic auth with the client id and secret,
  ``grant_type=client_credentials`` -> ``{"access_token", "token_type", "expires_in",
  "scope"}``; wrong credentials -> 401; another grant type -> 200 with ``{"error": ...}``
  (Reddit's way).
* ``GET /r/all/search/``: a ``Listing`` of ``t3`` things, newest first, filtered by ``t``
  and by a crude, deliberately fuzzy term match on title + selftext (substring: a search
  for ``acme`` also finds "acmeville", as Reddit's stemming search does); ``limit`` (max
  100) and ``after`` (a fullname) page through it; ``after`` is null on the last page.
* ``GET /comments/{id}/``: ``[t3 listing, t1 listing]``; replies nested in ``replies``
  listings; comments added with ``collapsed=True`` are left out and announced by a
  ``more`` thing under their parent, whose ``children`` (the hidden ids and their
  descendants) praw fetches with
* ``POST /api/morechildren/``: ``{"json": {"errors": [], "data": {"things": [...]}}}``, flat,
  parents before children.
* ``GET /r/{a+b}/comments/``: a ``Listing`` of ``t1`` things of those subreddits, newest first.
* ``GET /user/{name}/comments/``: a ``Listing`` of the ``t1`` things that user wrote
  (``sort=new``), newest first; 404 for a user with none, as for an unknown user.

Every API (OAuth) response carries ``x-ratelimit-remaining/used/reset``; a request
without a valid bearer token gets 401 with ``www-authenticate`` (as Reddit does), and
``reject_tokens = True`` turns every token invalid. Like Reddit, a listing serves at most
``listing_limit`` items (1,000 on Reddit). ``add_raw_submission`` / ``add_raw_comment``
put arbitrary (malformed) children into the listings.
"""

from __future__ import annotations

import base64
import itertools
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tests.fakes.http import FakeServer, Reply, Request, Responder
from tests.timing import PEER_TIMEOUT

SEARCH = "/r/all/search/"
TOKEN = "/api/v1/access_token"
MORECHILDREN = "/api/morechildren/"


def comments_path(submission_id: str) -> str:
    return f"/comments/{submission_id}/"


def stream_path(*subreddits: str) -> str:
    return f"/r/{'+'.join(subreddits)}/comments/"


_WINDOWS = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400, "year": 365 * 86400}
_PAGE_MAX = 100


@dataclass
class _Entry:
    """One child of a listing: its sort time, the fullname ``after`` anchors on, and the thing."""

    utc: float
    fullname: str
    thing: dict[str, Any]


def _listing(children: list[dict[str, Any]], after: str | None = None) -> dict[str, Any]:
    return {"kind": "Listing", "data": {"after": after, "before": None, "dist": len(children), "modhash": None,
                                         "geo_filter": "", "children": children}}


class FakeReddit(FakeServer):
    def __init__(self, now: datetime, *, client_id: str = "fake-client-id", client_secret: str = "fake-secret",
                 listing_limit: int = 1000) -> None:
        super().__init__()
        self.now = now
        self.client_id = client_id
        self.client_secret = client_secret
        self.listing_limit = listing_limit
        self.submissions: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, dict[str, Any]] = {}
        self.collapsed: set[str] = set()
        self.times: dict[str, float] = {}
        """Sort times by id, kept apart so a test may break an item's created_utc."""
        self.raw_search: list[_Entry] = []
        self.raw_stream: list[_Entry] = []
        self.tokens: set[str] = set()
        self.reject_tokens = False
        self.ratelimit: dict[str, str] | None = None
        """Fixed x-ratelimit-* header values; None: a fresh 1,000-request window, counting."""
        self.used = 0
        self.page_size: int | None = None
        """Items per listing page at most, below ``limit`` (short pages, many of them)."""
        self._token_numbers = itertools.count(1)

    # -- what the tests configure --

    @property
    def env(self) -> dict[str, str]:
        return {"REDDIT_CLIENT_ID": self.client_id, "REDDIT_CLIENT_SECRET": self.client_secret}

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The connector's settings for this fake: its URLs, and a request timeout no
        loaded machine reaches (a test of the timeout itself overrides it)."""
        return {"base_url": self.url, "auth_url": self.url, "request_timeout": PEER_TIMEOUT, **overrides}

    def add_submission(self, sid: str, title: str, *, at: datetime, selftext: str = "", author: str = "poster",
                       subreddit: str = "coffee", score: int = 10, upvote_ratio: float = 0.9,
                       num_comments: int | None = None) -> dict[str, Any]:
        data = {
            "id": sid, "name": f"t3_{sid}", "title": title, "selftext": selftext, "author": author,
            "created_utc": at.timestamp(), "created": at.timestamp(), "score": score, "ups": max(score, 0),
            "upvote_ratio": upvote_ratio, "num_comments": num_comments, "subreddit": subreddit,
            "subreddit_name_prefixed": f"r/{subreddit}", "permalink": f"/r/{subreddit}/comments/{sid}/post/",
            "url": f"https://www.reddit.com/r/{subreddit}/comments/{sid}/post/", "over_18": False,
            "is_self": True,
        }
        self.submissions[sid] = data
        self.times[sid] = at.timestamp()
        return data

    def add_comment(self, sid: str, cid: str, body: str, *, at: datetime, parent: str | None = None,
                    author: str = "commenter", score: int = 2, collapsed: bool = False,
                    permalink: bool = True) -> dict[str, Any]:
        """``permalink=False``: the comment comes without one, as some of Reddit's
        listings serve comments (its thread's ``link_permalink`` is still there)."""
        submission = self.submissions[sid]
        data = {
            "id": cid, "name": f"t1_{cid}", "body": body, "author": author, "created_utc": at.timestamp(),
            "created": at.timestamp(), "score": score, "parent_id": f"t1_{parent}" if parent else f"t3_{sid}",
            "link_id": f"t3_{sid}", "subreddit": submission["subreddit"],
            "permalink": f"{submission['permalink']}{cid}/", "link_title": submission["title"],
            "link_permalink": submission["url"],
        }
        if not permalink:
            del data["permalink"]
        self.comments[cid] = data
        self.times[cid] = at.timestamp()
        if collapsed:
            self.collapsed.add(cid)
        if submission["num_comments"] is not None:
            submission["num_comments"] += 1
        return data

    def add_raw_submission(self, child: Any, *, at: datetime, fullname: str) -> None:
        """Put any child (malformed on purpose) into the search results at time ``at``."""
        self.raw_search.append(_Entry(at.timestamp(), fullname, child))

    def add_raw_comment(self, child: Any, *, at: datetime, fullname: str) -> None:
        self.raw_stream.append(_Entry(at.timestamp(), fullname, child))

    def script(self, method: str, path: str, *replies: Responder) -> None:
        """Serve ``replies`` in order on ``path``, then answer normally again."""
        self.route(method, path, *replies, self._dispatch)

    def requests_to(self, path: str, method: str = "GET") -> list[Request]:
        return [r for r in list(self.requests) if r.method == method and r.path.rstrip("/") == path.rstrip("/")]

    # -- serving --

    def _next_reply(self, request: Request) -> Reply:
        if (request.method, request.path) in self.routes:
            reply = super()._next_reply(request)
            if request.headers.get("connection", "").lower() == "close":  # a scripted token reply: see _token
                reply = replace(reply, headers={**reply.headers, "Connection": "close"})
            return reply
        with self._lock:
            self.requests.append(request)
        return self._dispatch(request)

    def _dispatch(self, request: Request) -> Reply:
        path = request.path.rstrip("/")
        if request.method == "POST" and path == TOKEN.rstrip("/"):
            return self._token(request)
        if not self._authorized(request):
            return Reply(401, {"message": "Unauthorized", "error": 401},
                         headers={"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'})
        self.used += 1
        reply = self._api(request, path)
        reply.headers = {**self._ratelimit_headers(), **reply.headers}
        return reply

    def _api(self, request: Request, path: str) -> Reply:
        params = {k: v[-1] for k, v in request.query.items()}
        if request.method == "GET" and (m := re.fullmatch(r"/r/([^/]+)/search", path)):
            return Reply(200, self._search(m.group(1), params))
        if request.method == "GET" and (m := re.fullmatch(r"/comments/([^/]+)", path)):
            return self._tree(m.group(1))
        if request.method == "POST" and path == MORECHILDREN.rstrip("/"):
            form = {k: v[-1] for k, v in request.form().items()}
            return Reply(200, {"json": {"errors": [], "data": {"things": self._more_children(form)}}})
        if request.method == "GET" and (m := re.fullmatch(r"/r/([^/]+)/comments", path)):
            return Reply(200, self._stream(m.group(1), params))
        if request.method == "GET" and (m := re.fullmatch(r"/user/([^/]+)/comments", path)):
            entries = [_Entry(self.times[d["id"]], d["name"], {"kind": "t1", "data": {**d, "replies": ""}})
                       for d in self.comments.values() if d["author"].lower() == m.group(1).lower()]
            if not entries:
                return Reply(404, {"message": "Not Found", "error": 404})
            return Reply(200, self._page(entries, params))
        return Reply(404, {"message": "Not Found", "error": 404})

    def _token(self, request: Request) -> Reply:
        reply = self._token_reply(request)
        if request.headers.get("connection", "").lower() == "close":
            # prawcore asks to close; say so, or the client may reuse the closed socket
            reply.headers = {**reply.headers, "Connection": "close"}
        return reply

    def _token_reply(self, request: Request) -> Reply:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return Reply(401, {"message": "Unauthorized", "error": 401})
        grant = request.form().get("grant_type", [""])[-1]
        if grant != "client_credentials":
            return Reply(200, {"error": "unsupported_grant_type"})
        token = f"fake-token-{next(self._token_numbers)}"
        self.tokens.add(token)
        return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"})

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return not self.reject_tokens and header.startswith("bearer ") and header[len("bearer "):] in self.tokens

    def _ratelimit_headers(self) -> dict[str, str]:
        if self.ratelimit is not None:
            return dict(self.ratelimit)
        return {"x-ratelimit-used": str(self.used), "x-ratelimit-remaining": f"{1000 - self.used:.1f}",
                "x-ratelimit-reset": "300"}

    # -- listings --

    def _page(self, entries: list[_Entry], params: dict[str, str]) -> dict[str, Any]:
        entries = sorted(entries, key=lambda e: (e.utc, e.fullname), reverse=True)[: self.listing_limit]
        start = 0
        if params.get("after"):
            names = [e.fullname for e in entries]
            if params["after"] not in names:
                return _listing([])  # an anchor gone from the listing: nothing after it
            start = names.index(params["after"]) + 1
        limit = max(1, min(int(params.get("limit", 25)), self.page_size or _PAGE_MAX))
        page = entries[start:start + limit]
        more = start + limit < len(entries)
        return _listing([e.thing for e in page], page[-1].fullname if page and more else None)

    def _search(self, subreddit: str, params: dict[str, str]) -> dict[str, Any]:
        terms = _search_terms(params.get("q", ""))
        window = _WINDOWS.get(params.get("t", "all"))
        oldest = self.now.timestamp() - window if window else float("-inf")
        entries = [
            _Entry(self.times[d["id"]], d["name"], {"kind": "t3", "data": dict(d)})
            for d in self.submissions.values()
            if (subreddit == "all" or d["subreddit"].lower() == subreddit.lower())
            and any(t in f"{d['title']} {d['selftext']}".lower() for t in terms)
        ]
        entries += self.raw_search
        return self._page([e for e in entries if e.utc >= oldest], params)

    def _stream(self, key: str, params: dict[str, str]) -> dict[str, Any]:
        wanted = {name.lower() for name in key.split("+")}
        entries = [
            _Entry(self.times[d["id"]], d["name"], {"kind": "t1", "data": {**d, "replies": ""}})
            for d in self.comments.values() if d["subreddit"].lower() in wanted
        ]
        return self._page(entries + self.raw_stream, params)

    # -- comment trees --

    def _children_of(self, parent_fullname: str) -> list[dict[str, Any]]:
        return sorted((c for c in self.comments.values() if c["parent_id"] == parent_fullname),
                      key=lambda c: (self.times[c["id"]], c["id"]))

    def _descendants(self, comment: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for child in self._children_of(comment["name"]):
            out += [child, *self._descendants(child)]
        return out

    def _render(self, parent_fullname: str, depth: int) -> list[dict[str, Any]]:
        kids = self._children_of(parent_fullname)
        things: list[dict[str, Any]] = []
        for kid in kids:
            if kid["id"] in self.collapsed:
                continue
            replies = self._render(kid["name"], depth + 1)
            things.append({"kind": "t1", "data": {**kid, "depth": depth, "replies": _listing(replies) if replies else ""}})
        hidden = [kid for kid in kids if kid["id"] in self.collapsed]
        if hidden:
            ids = [c["id"] for kid in hidden for c in [kid, *self._descendants(kid)]]
            things.append({"kind": "more", "data": {"count": len(ids), "name": f"t1_{hidden[0]['id']}",
                                                    "id": hidden[0]["id"], "parent_id": parent_fullname,
                                                    "depth": depth, "children": ids}})
        return things

    def _tree(self, sid: str) -> Reply:
        submission = self.submissions.get(sid)
        if submission is None:
            return Reply(404, {"message": "Not Found", "error": 404})
        return Reply(200, [_listing([{"kind": "t3", "data": dict(submission)}]),
                           _listing(self._render(submission["name"], 0))])

    def _more_children(self, form: dict[str, str]) -> list[dict[str, Any]]:
        wanted = set(form.get("children", "").split(","))
        link = form.get("link_id", "")
        found = [c for c in self.comments.values() if c["id"] in wanted and c["link_id"] == link]
        # parents before children: order by depth in the thread, then time
        def depth(c: dict[str, Any]) -> int:
            d = 0
            while c["parent_id"].startswith("t1_"):
                c = self.comments[c["parent_id"][3:]]
                d += 1
            return d
        return [{"kind": "t1", "data": {**c, "depth": depth(c), "replies": ""}}
                for c in sorted(found, key=lambda c: (depth(c), self.times[c["id"]], c["id"]))]


def _search_terms(query: str) -> list[str]:
    """The wanted terms of a compile_reddit query: the parenthesised OR group."""
    group = re.match(r"\(([^)]*)\)", query)
    parts = group.group(1).split(" OR ") if group else [query]
    return [p.strip().strip('"').lower() for p in parts if p.strip()]
