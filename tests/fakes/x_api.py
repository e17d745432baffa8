"""A fake X API v2 on 127.0.0.1, built on ``FakeServer``, for testing the x connector
through the real tweepy client.

It serves a scripted corpus of posts the way the documented API does:

* ``GET /2/tweets/search/recent``: newest first; ``since_id`` / ``until_id`` (exclusive),
  ``start_time`` (inclusive) / ``end_time`` (exclusive), ``max_results`` (10-100),
  ``next_token``; only posts created up to the fake's clock and within its 7-day
  window. Returns ``data[]`` with the default fields (id, text, edit_history_tweet_ids)
  plus the requested ``tweet.fields``, ``includes.users[]`` when ``expansions=author_id``
  (id, name, username plus the requested ``user.fields``), and ``meta`` {newest_id,
  oldest_id, result_count, next_token}. The query string is recorded, not evaluated:
  every post of the corpus matches, retweets included (as if ``-is:retweet`` slipped);
  with ``evaluate_queries=True`` the fake evaluates the operators the connector sends
  (``match_query``): words and quoted phrases, ``from:``, ``to:``, ``conversation_id:``,
  ``lang:``, ``is:retweet``, OR inside one parenthesised group, ``-`` negation.
* ``GET /2/tweets/counts/recent``: buckets per hour of the same corpus, paged by
  ``counts_page_size``.
* 400 with ``errors[]`` for the parameter mistakes X refuses (ids mixed with times,
  times or ids older than 7 days, max_results out of range, a query over 512 chars),
  401 problem JSON for a wrong bearer token, 429 once ``rate_limit`` requests were
  made in the 15-minute window; every answer carries x-rate-limit-limit / remaining /
  reset headers.

``script(*replies)`` queues replies (status, body, headers) that are played before the
corpus answers, for faults: 500s, 429s, malformed pages, repeated tokens.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.fakes.http import FakeServer, Reply, Request

SEARCH = "/2/tweets/search/recent"
COUNTS = "/2/tweets/counts/recent"
SNOWFLAKE_EPOCH_MS = 1288834974657
WINDOW = timedelta(days=7)
RATE_WINDOW = timedelta(minutes=15)
DEFAULT_TWEET_FIELDS = ("id", "text", "edit_history_tweet_ids")
DEFAULT_USER_FIELDS = ("id", "name", "username")


def snowflake(moment: datetime, sequence: int = 0) -> str:
    ms = int(moment.timestamp() * 1000) - SNOWFLAKE_EPOCH_MS
    return str((ms << 22) | (sequence & 0xFFF))


def id_time(post_id: str) -> datetime:
    return datetime.fromtimestamp(((int(post_id) >> 22) + SNOWFLAKE_EPOCH_MS) / 1000, tz=timezone.utc)


def x_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_x_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def user(user_id: str, username: str, followers: int = 10) -> dict[str, Any]:
    return {
        "id": user_id, "name": username.title(), "username": username,
        "public_metrics": {"followers_count": followers, "following_count": 5, "tweet_count": 100,
                           "listed_count": 0, "like_count": 3},
    }


def tweet(moment: datetime, text: str, *, author_id: str, sequence: int = 0, lang: str = "en",
          conversation_id: str | None = None, replied_to: str | None = None, quoted: str | None = None,
          retweeted: str | None = None, likes: int = 0, retweets: int = 0, replies: int = 0,
          quotes: int = 0, impressions: int = 0, in_reply_to_user_id: str = "999") -> dict[str, Any]:
    """A post in the documented v2 shape, with every field the connector may ask for."""
    post_id = snowflake(moment, sequence)
    refs = [{"type": kind, "id": ref} for kind, ref in
            (("replied_to", replied_to), ("quoted", quoted), ("retweeted", retweeted)) if ref]
    body: dict[str, Any] = {
        "id": post_id,
        "text": text,
        "edit_history_tweet_ids": [post_id],
        "created_at": x_time(moment),
        "lang": lang,
        "conversation_id": conversation_id or post_id,
        "author_id": author_id,
        "public_metrics": {"retweet_count": retweets, "reply_count": replies, "like_count": likes,
                           "quote_count": quotes, "bookmark_count": 0, "impression_count": impressions},
    }
    if refs:
        body["referenced_tweets"] = refs
    if replied_to:
        body["in_reply_to_user_id"] = in_reply_to_user_id
    return body


def problem(status: int, title: str, detail: str, kind: str = "about:blank") -> dict[str, Any]:
    return {"title": title, "detail": detail, "type": kind, "status": status}


def invalid_request(message: str, parameter: str, value: str) -> dict[str, Any]:
    return {
        "errors": [{"parameters": {parameter: [value]}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


class FakeXApi:
    def __init__(self, clock: Callable[[], datetime], *, bearer_token: str = "test-token",
                 rate_limit: int = 60, counts_page_size: int = 24, prefix: str = "",
                 evaluate_queries: bool = False) -> None:
        self.clock = clock
        self.evaluate_queries = evaluate_queries
        self.bearer_token = bearer_token
        self.rate_limit = rate_limit
        self.counts_page_size = counts_page_size
        self.prefix = prefix
        self.page_size: int | None = None
        """Posts per search page at most, below max_results (short pages, many of them)."""
        self.tweets: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.scripted: dict[str, deque[Reply]] = {SEARCH: deque(), COUNTS: deque()}
        self._calls: list[datetime] = []
        self._lock = threading.Lock()
        self.server = FakeServer()
        self.server.route("GET", prefix + SEARCH, self._answer(SEARCH, self._search))
        self.server.route("GET", prefix + COUNTS, self._answer(COUNTS, self._counts))

    # -- setup ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.server.url + self.prefix

    def __enter__(self) -> FakeXApi:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    def add_user(self, user_id: str, username: str, followers: int = 10) -> None:
        self.users[user_id] = user(user_id, username, followers)

    def add(self, *tweets: dict[str, Any]) -> None:
        self.tweets.extend(tweets)

    def script(self, *replies: Reply, path: str = SEARCH) -> None:
        """Replies played, in order, before the corpus answers again."""
        self.scripted[path].extend(replies)

    def requests(self, path: str = SEARCH) -> list[Request]:
        return [r for r in self.server.requests if r.path == self.prefix + path]

    def visible(self) -> list[dict[str, Any]]:
        """The corpus as search can see it now: created up to now, within 7 days."""
        now = self.clock()
        return [t for t in self.tweets if now - WINDOW <= parse_x_time(t["created_at"]) <= now]

    def page(self, tweets: list[dict[str, Any]], next_token: str | None = None) -> dict[str, Any]:
        """A search response page for exactly these posts (for scripted replies)."""
        authors = {t.get("author_id") for t in tweets if isinstance(t, dict)}
        body: dict[str, Any] = {"meta": {"result_count": len(tweets)}}
        if tweets:
            body["data"] = tweets
            body["includes"] = {"users": [self.users[a] for a in authors if a in self.users]}
            ids = [int(t["id"]) for t in tweets if isinstance(t, dict) and isinstance(t.get("id"), str)]
            if ids:
                body["meta"].update(newest_id=str(max(ids)), oldest_id=str(min(ids)))
        if next_token:
            body["meta"]["next_token"] = next_token
        return body

    # -- serving ----------------------------------------------------------------------------

    def rate_headers(self) -> dict[str, str]:
        now = self.clock()
        with self._lock:
            self._calls = [c for c in self._calls if c > now - RATE_WINDOW]
            used = len(self._calls)
            reset = (self._calls[0] if self._calls else now) + RATE_WINDOW
        return {"x-rate-limit-limit": str(self.rate_limit),
                "x-rate-limit-remaining": str(max(self.rate_limit - used, 0)),
                "x-rate-limit-reset": str(int(reset.timestamp()))}

    def _answer(self, path: str, serve: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
        def answer(request: Request) -> Reply:
            if request.headers.get("authorization") != f"Bearer {self.bearer_token}":
                return Reply(401, problem(401, "Unauthorized", "Unauthorized"))
            with self._lock:
                scripted = self.scripted[path].popleft() if self.scripted[path] else None
            if scripted is not None:
                return scripted
            headers = self.rate_headers()
            if int(headers["x-rate-limit-remaining"]) == 0:
                return Reply(429, problem(429, "Too Many Requests", "Too Many Requests"), headers)
            with self._lock:
                self._calls.append(self.clock())
            reply = serve(request)
            reply.headers = {**self.rate_headers(), **reply.headers}
            return reply

        return answer

    def _bad_params(self, q: dict[str, str], allowed: set[str]) -> Reply | None:
        now = self.clock()
        unknown = set(q) - allowed
        if unknown:
            name = sorted(unknown)[0]
            return Reply(400, invalid_request(f"The query parameter [{name}] is not one of {sorted(allowed)}",
                                              name, q[name]))
        query = q.get("query", "")
        if not query or len(query) > 512:
            return Reply(400, invalid_request(
                f"Invalid 'query':'{query[:40]}'. 'query' must be a non-empty string of at most 512 characters",
                "query", query))
        if ({"since_id", "until_id"} & set(q)) and ({"start_time", "end_time"} & set(q)):
            name = "since_id" if "since_id" in q else "until_id"
            return Reply(400, invalid_request(
                "Invalid use of 'since_id' or 'until_id' in conjunction with 'start_time' or 'end_time'.",
                name, q[name]))
        oldest = now - WINDOW
        if "start_time" in q and parse_x_time(q["start_time"]) < oldest:
            return Reply(400, invalid_request(
                f"Invalid 'start_time':'{q['start_time']}'. 'start_time' must be on or after {x_time(oldest)}",
                "start_time", q["start_time"]))
        if "since_id" in q and id_time(q["since_id"]) < oldest:
            return Reply(400, invalid_request(
                f"Invalid 'since_id':'{q['since_id']}'. 'since_id' must be a tweet id created after {x_time(oldest)}",
                "since_id", q["since_id"]))
        if "end_time" in q and parse_x_time(q["end_time"]) > now - timedelta(seconds=10):
            return Reply(400, invalid_request(
                f"Invalid 'end_time':'{q['end_time']}'. 'end_time' must be a minimum of 10 seconds prior "
                "to the request time.", "end_time", q["end_time"]))
        return None

    def _select(self, q: dict[str, str]) -> list[dict[str, Any]]:
        chosen = self.visible()
        if self.evaluate_queries:
            chosen = [t for t in chosen if match_query(q.get("query", ""), t, self.users)]
        if "since_id" in q:
            chosen = [t for t in chosen if int(t["id"]) > int(q["since_id"])]
        if "until_id" in q:
            chosen = [t for t in chosen if int(t["id"]) < int(q["until_id"])]
        if "start_time" in q:
            chosen = [t for t in chosen if parse_x_time(t["created_at"]) >= parse_x_time(q["start_time"])]
        if "end_time" in q:
            chosen = [t for t in chosen if parse_x_time(t["created_at"]) < parse_x_time(q["end_time"])]
        return sorted(chosen, key=lambda t: int(t["id"]), reverse=True)

    def _search(self, request: Request) -> Reply:
        q = {k: v[-1] for k, v in request.query.items()}
        bad = self._bad_params(q, {"query", "since_id", "until_id", "start_time", "end_time", "max_results",
                                   "next_token", "tweet.fields", "expansions", "user.fields", "sort_order"})
        if bad:
            return bad
        size = int(q.get("max_results", "10"))
        if not 10 <= size <= 100:
            return Reply(400, invalid_request(
                f"The `max_results` query parameter value [{size}] is not between 10 and 100",
                "max_results", str(size)))
        size = min(size, self.page_size or size)  # X may return fewer posts than asked for
        offset = _offset(q.get("next_token"))
        chosen = self._select(q)
        page = chosen[offset:offset + size]
        tweet_fields = set(DEFAULT_TWEET_FIELDS) | set(filter(None, q.get("tweet.fields", "").split(",")))
        shaped = [{k: v for k, v in t.items() if k in tweet_fields} for t in page]
        body: dict[str, Any] = {"meta": {"result_count": len(page)}}
        if page:
            body["data"] = shaped
            body["meta"].update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
            if "author_id" in q.get("expansions", "").split(","):
                user_fields = set(DEFAULT_USER_FIELDS) | set(filter(None, q.get("user.fields", "").split(",")))
                authors = dict.fromkeys(t["author_id"] for t in page)
                body["includes"] = {"users": [{k: v for k, v in self.users[a].items() if k in user_fields}
                                              for a in authors if a in self.users]}
        if offset + size < len(chosen):
            body["meta"]["next_token"] = _token(offset + size)
        return Reply(200, body)

    def _counts(self, request: Request) -> Reply:
        q = {k: v[-1] for k, v in request.query.items()}
        bad = self._bad_params(q, {"query", "since_id", "until_id", "start_time", "end_time", "granularity",
                                   "next_token"})
        if bad:
            return bad
        if q.get("granularity", "hour") != "hour":
            return Reply(400, invalid_request("only hour granularity is faked", "granularity", q["granularity"]))
        now = self.clock()
        start = parse_x_time(q["start_time"]) if "start_time" in q else now - WINDOW
        end = parse_x_time(q["end_time"]) if "end_time" in q else now - timedelta(seconds=30)
        buckets = []
        edge = start
        while edge < end:
            nxt = min(edge.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1), end)
            count = sum(1 for t in self.visible() if edge <= parse_x_time(t["created_at"]) < nxt)
            buckets.append({"end": x_time(nxt), "start": x_time(edge), "tweet_count": count})
            edge = nxt
        offset = _offset(q.get("next_token"))
        page = buckets[offset:offset + self.counts_page_size]
        meta: dict[str, Any] = {"total_tweet_count": sum(b["tweet_count"] for b in page)}
        if offset + self.counts_page_size < len(buckets):
            meta["next_token"] = _token(offset + self.counts_page_size)
        return Reply(200, {"data": page, "meta": meta})


_TERM = re.compile(r'-?"[^"]*"|-?\(|\)|-?[^\s()]+')


def match_query(query: str, post: dict[str, Any], users: dict[str, dict[str, Any]]) -> bool:
    """Whether ``post`` matches an X search ``query``: terms are ANDed, a parenthesised
    group is ORed, ``-`` negates; operators from:, to:, conversation_id:, lang:,
    is:retweet; other terms match whole words of the text, case-insensitively."""

    def name(user_id: Any) -> str:
        return str(users.get(user_id, {}).get("username", "")).casefold()

    def atom(term: str) -> bool:
        key, _, value = term.partition(":")
        value = value.casefold()
        if key == "from" and value:
            return name(post.get("author_id")) == value
        if key == "to" and value:
            return name(post.get("in_reply_to_user_id")) == value
        if key == "conversation_id" and value:
            return post.get("conversation_id") == value
        if key == "lang" and value:
            return post.get("lang") == value
        if term == "is:retweet":
            return any(r.get("type") == "retweeted" for r in post.get("referenced_tweets", []))
        phrase = term.strip('"').casefold()
        return re.search(r"(?<![\w])" + re.escape(phrase) + r"(?![\w])", post.get("text", "").casefold()) is not None

    tokens = _TERM.findall(query)
    result, index = True, 0
    while index < len(tokens):
        token = tokens[index]
        negate = token.startswith("-")
        token = token[1:] if negate else token
        if token == "(":
            group, index = [], index + 1
            while tokens[index] != ")":
                if tokens[index] != "OR":
                    group.append(tokens[index])
                index += 1
            value = any(atom(t) for t in group)
        else:
            value = atom(token)
        result = result and (value != negate)
        index += 1
    return result


def _token(offset: int) -> str:
    return f"b26v89c19zqg8o3f{offset:06x}"


def _offset(token: str | None) -> int:
    return int(token[-6:], 16) if token else 0
