"""A fake Mastodon instance on ``FakeServer``, speaking the wire format Mastodon.py reads.

    with FakeMastodon("one.example") as one:
        status = one.post(T0, "<p>I love #acme</p>", tags=["acme"])
        connector = create({"instances": [one.url]}, clock)

Routes (shapes from docs.joinmastodon.org):

* ``/api/v1/instance/`` and ``/api/v2/instance/`` (with and without the slash): the
  version Mastodon.py checks before ``search_v2`` (its version lookup goes wrong without them).
* ``/api/v1/timelines/tag/{tag}``: newest first, ``limit`` (default 20, at most 40),
  ``max_id`` / ``since_id`` / ``min_id`` as Mastodon paginates them (``min_id``: the page
  just above the id), and ``Link`` headers: ``rel="next"`` (``max_id`` = the page's
  oldest id) when the page is full, ``rel="prev"`` (``min_id`` = its newest id) when the
  page is not empty.
* ``/api/v2/search``: ``type=statuses``, ``q`` (a case-insensitive substring of the
  text; quotes dropped), ``min_id`` / ``max_id`` filters, ``offset`` / ``limit``, newest
  first; without a valid token no statuses (and 401 for ``offset``/``resolve``), as
  Mastodon does.
* ``/api/v1/statuses/{id}/context``: ancestors (root first) and descendants.
* ``/api/v1/accounts/lookup?acct=``: the account of a local (``name`` or
  ``name@this.domain``) or known remote (``name@home``) author, 404 otherwise; and
  ``/api/v1/accounts/{id}/statuses``: that account's statuses, newest first, with
  ``exclude_reblogs``, ``limit``, ``max_id`` / ``min_id`` and ``Link`` headers as tag
  timelines have them.

Every live answer carries ``X-RateLimit-Limit/Remaining/Reset`` (reset as ISO 8601 on
the wall clock, as Mastodon sends it) and exactly one ``Date`` header (FakeServer). A
request with a wrong bearer token gets 401. ``script(path, *replies)`` plays scripted
replies (429, 500, malformed bodies, ...) before the live route takes over again.

Ids are Mastodon snowflakes made from ``created_at`` (milliseconds << 16), plus a
per-instance offset, so the same post has different local ids on two instances and the
same ``uri`` everywhere.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.fakes.http import FakeServer, Reply, Request, Responder

MAX_LIMIT = 40
DEFAULT_LIMIT = 20


def snowflake(moment: datetime, offset: int = 0) -> str:
    return str((int(moment.timestamp() * 1000) << 16) + offset)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _id_key(status_id: str) -> tuple[int, str]:
    return (len(status_id), status_id)


def _plain(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


class FakeMastodon:
    """One fake instance. ``offset`` shifts its local ids (two instances, two id spaces)."""

    def __init__(self, domain: str = "one.example", *, token: str | None = None, version: str = "4.3.0",
                 offset: int = 0) -> None:
        self.domain = domain
        self.token = token
        self.version = version
        self.offset = offset
        self.server = FakeServer()
        self.statuses: dict[str, dict[str, Any]] = {}
        self.tagged: dict[str, list[str]] = {}
        self.remaining = 300
        self.scripted: dict[str, list[Responder]] = {}

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> FakeMastodon:
        self.server.__enter__()
        info_v1 = {"uri": self.domain, "title": f"Fake {self.domain}", "version": self.version,
                   "urls": {"streaming_api": f"wss://{self.domain}"}}
        info_v2 = {"domain": self.domain, "title": f"Fake {self.domain}", "version": self.version,
                   "api_versions": {"mastodon": 2},
                   "configuration": {"timelines_access": {
                       "live_feeds": {"local": "public", "remote": "public"},
                       "hashtag_feeds": {"local": "public", "remote": "public"},
                       "trending_link_feeds": {"local": "public", "remote": "public"}}}}
        for path, body in (("/api/v1/instance", info_v1), ("/api/v2/instance", info_v2)):
            for variant in (path, path + "/"):
                self.server.route("GET", variant, self._live(lambda request, body=body: Reply(200, body)))
        self.server.route("GET", "/api/v2/search", self._live(self._search))
        self.server.route("GET", "/api/v1/accounts/lookup", self._live(self._lookup))
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.server.requests if r.path == path]

    # -- content ------------------------------------------------------------------------

    def post(self, created_at: datetime, content: str, *, tags: Iterable[str] = (), author: str = "alice",
             home: str | None = None, reply_to: dict[str, Any] | None = None, language: str | None = "en",
             spoiler_text: str = "", likes: int = 0, reblogs: int = 0, replies: int = 0,
             reblog_of: dict[str, Any] | None = None) -> dict[str, Any]:
        """Publish a status on this instance (its author's home is ``home``, by default this
        instance) and return it as served."""
        home = home or self.domain
        local_id = snowflake(created_at, self.offset)
        while local_id in self.statuses:
            local_id = str(int(local_id) + 1)
        canonical = snowflake(created_at)
        acct = author if home == self.domain else f"{author}@{home}"
        status: dict[str, Any] = {
            "id": local_id,
            "uri": f"https://{home}/users/{author}/statuses/{canonical}",
            "url": f"https://{home}/@{author}/{canonical}",
            "created_at": iso(created_at),
            "account": {"id": f"{abs(hash((author, home))) % 10**9}", "username": author, "acct": acct,
                        "url": f"https://{home}/@{author}", "display_name": author.title()},
            "content": content,
            "spoiler_text": spoiler_text,
            "language": language,
            "visibility": "public",
            "in_reply_to_id": reply_to["id"] if reply_to else None,
            "in_reply_to_account_id": reply_to["account"]["id"] if reply_to else None,
            "reblog": copy.deepcopy(reblog_of),
            "favourites_count": likes,
            "reblogs_count": reblogs,
            "replies_count": replies,
            "tags": [{"name": t, "url": f"https://{self.domain}/tags/{t}"} for t in tags],
            "media_attachments": [],
            "mentions": [],
            "emojis": [],
        }
        self._store(status, tags)
        return status

    def share(self, status: dict[str, Any], *, tags: Iterable[str] = ()) -> dict[str, Any]:
        """The same post (same uri) as it federated to this instance, under a local id here."""
        copied = copy.deepcopy(status)
        local_id = str(int(status["id"]) - int(status["id"]) % (1 << 16) + self.offset)
        while local_id in self.statuses:
            local_id = str(int(local_id) + 1)
        copied["id"] = local_id
        acct = copied["account"]["acct"]
        if "@" not in acct:
            copied["account"]["acct"] = f"{acct}@{copied['account']['url'].split('/')[2]}"
        self._store(copied, tags)
        return copied

    def add_raw(self, tag: str, item: Any, created_at: datetime) -> None:
        """Serve ``item`` (malformed on purpose) in a tag timeline, at the position of ``created_at``."""
        key = snowflake(created_at, self.offset)
        self.statuses[key] = {"__raw__": item, "id": key}
        self._tag(tag, key)

    def _store(self, status: dict[str, Any], tags: Iterable[str]) -> None:
        self.statuses[status["id"]] = status
        account_id = status["account"]["id"]
        self.server.route("GET", f"/api/v1/accounts/{account_id}/statuses",
                          self._live(lambda request, aid=account_id: self._account_statuses(request, aid)))
        self.server.route("GET", f"/api/v1/statuses/{status['id']}/context",
                          *self.scripted.get(f"/api/v1/statuses/{status['id']}/context", []),
                          self._live(lambda request, sid=status["id"]: self._context(sid)))
        for tag in tags:
            self._tag(tag, status["id"])

    def _tag(self, tag: str, status_id: str) -> None:
        path = f"/api/v1/timelines/tag/{tag}"
        if tag not in self.tagged:
            self.tagged[tag] = []
            self.server.route("GET", path, *self.scripted.get(path, []),
                              self._live(lambda request, tag=tag: self._timeline(request, tag)))
        self.tagged[tag].append(status_id)

    def delete(self, status: dict[str, Any]) -> None:
        self.statuses.pop(status["id"], None)
        for ids in self.tagged.values():
            if status["id"] in ids:
                ids.remove(status["id"])

    # -- scripted failures -------------------------------------------------------------------

    def script(self, path: str, *replies: Reply) -> None:
        """Play ``replies`` for ``path`` first; then the live route answers again."""
        self.scripted[path] = list(replies)
        if path.startswith("/api/v1/timelines/tag/"):
            tag = path.rsplit("/", 1)[1]
            self.tagged.setdefault(tag, [])
            live = self._live(lambda request: self._timeline(request, tag))
        elif path.endswith("/context"):
            sid = path.split("/")[4]
            live = self._live(lambda request: self._context(sid))
        elif path == "/api/v2/search":
            live = self._live(self._search)
        else:
            raise ValueError(f"no live route for {path}")
        self.server.route("GET", path, *replies, live)

    def rate_limit_headers(self, reset_in: float = 300.0, remaining: int | None = None) -> dict[str, str]:
        reset = datetime.now(timezone.utc) + timedelta(seconds=reset_in)
        return {"X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": str(self.remaining if remaining is None else remaining),
                "X-RateLimit-Reset": iso(reset)}

    # -- live answers --------------------------------------------------------------------------

    def _live(self, answer: Any) -> Any:
        def respond(request: Request) -> Reply:
            auth = request.headers.get("authorization")
            if auth is not None and (self.token is None or auth != f"Bearer {self.token}"):
                return Reply(401, {"error": "The access token is invalid"}, headers=self.rate_limit_headers())
            self.remaining = max(self.remaining - 1, 0)
            reply = answer(request)
            reply.headers = {**self.rate_limit_headers(), **reply.headers}
            return reply

        return respond

    def _served(self, status_id: str) -> Any:
        status = self.statuses[status_id]
        return status["__raw__"] if "__raw__" in status else status

    def _lookup(self, request: Request) -> Reply:
        acct = request.query.get("acct", [""])[0].lstrip("@").casefold()
        if acct.endswith(f"@{self.domain}"):
            acct = acct.rsplit("@", 1)[0]
        for status in self.statuses.values():
            account = status.get("account") if "__raw__" not in status else None
            if account is not None and account["acct"].casefold() == acct:
                return Reply(200, account)
        return Reply(404, {"error": "Record not found"})

    def _account_statuses(self, request: Request, account_id: str) -> Reply:
        exclude_reblogs = request.query.get("exclude_reblogs", ["false"])[0] in ("true", "1")
        ids = [i for i, s in self.statuses.items() if "__raw__" not in s and s["account"]["id"] == account_id
               and not (exclude_reblogs and s.get("reblog"))]
        return self._paged(request, ids, f"{self.url}/api/v1/accounts/{account_id}/statuses")

    def _timeline(self, request: Request, tag: str) -> Reply:
        return self._paged(request, self.tagged.get(tag, []), f"{self.url}/api/v1/timelines/tag/{tag}")

    def _paged(self, request: Request, status_ids: list[str], base: str) -> Reply:
        q = request.query
        limit = min(int(q.get("limit", [DEFAULT_LIMIT])[0]), MAX_LIMIT)
        ids = sorted(status_ids, key=_id_key, reverse=True)
        if "min_id" in q:
            bound = _id_key(q["min_id"][0])
            above = sorted((i for i in ids if _id_key(i) > bound), key=_id_key)[:limit]
            page = sorted(above, key=_id_key, reverse=True)
        else:
            if "max_id" in q:
                ids = [i for i in ids if _id_key(i) < _id_key(q["max_id"][0])]
            if "since_id" in q:
                ids = [i for i in ids if _id_key(i) > _id_key(q["since_id"][0])]
            page = ids[:limit]
        headers = {}
        links = []
        if len(page) == limit:
            links.append(f'<{base}?max_id={page[-1]}>; rel="next"')
        if page:
            links.append(f'<{base}?min_id={page[0]}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
        return Reply(200, [self._served(i) for i in page], headers=headers)

    def _context(self, status_id: str) -> Reply:
        if status_id not in self.statuses:
            return Reply(404, {"error": "Record not found"})
        ancestors = []
        parent = self.statuses[status_id].get("in_reply_to_id")
        while parent is not None and parent in self.statuses:
            ancestors.insert(0, self.statuses[parent])
            parent = self.statuses[parent].get("in_reply_to_id")
        descendants = [s for i, s in sorted(self.statuses.items(), key=lambda kv: _id_key(kv[0]))
                       if "__raw__" not in s and self._descends_from(i, status_id)]
        return Reply(200, {"ancestors": ancestors, "descendants": descendants})

    def _descends_from(self, status_id: str, ancestor: str) -> bool:
        parent = self.statuses[status_id].get("in_reply_to_id")
        while parent is not None:
            if parent == ancestor:
                return True
            parent = self.statuses.get(parent, {}).get("in_reply_to_id")
        return False

    def _search(self, request: Request) -> Reply:
        q = request.query
        authorized = self.token is not None and request.headers.get("authorization") == f"Bearer {self.token}"
        if not authorized and ("offset" in q or q.get("resolve") == ["true"]):
            return Reply(401, {"error": "Search queries pagination is not supported without authentication"})
        if q.get("type", ["statuses"])[0] != "statuses" or not authorized:
            return Reply(200, {"accounts": [], "statuses": [], "hashtags": []})
        needle = q.get("q", [""])[0].replace('"', "").casefold()
        ids = sorted((i for i, s in self.statuses.items()
                      if "__raw__" not in s and s.get("reblog") is None and needle in _plain(s["content"]).casefold()),
                     key=_id_key, reverse=True)
        if "min_id" in q:
            ids = [i for i in ids if _id_key(i) > _id_key(q["min_id"][0])]
        if "max_id" in q:
            ids = [i for i in ids if _id_key(i) < _id_key(q["max_id"][0])]
        offset = int(q.get("offset", ["0"])[0])
        limit = min(int(q.get("limit", [DEFAULT_LIMIT])[0]), MAX_LIMIT)
        page = ids[offset:offset + limit]
        return Reply(200, {"accounts": [], "statuses": [self.statuses[i] for i in page], "hashtags": []})
