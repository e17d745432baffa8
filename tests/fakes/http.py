"""A fake API server on 127.0.0.1 for testing connectors through their real clients.

    with FakeServer() as server:
        server.route("GET", "/2/tweets/search/recent", Reply(200, {...}), Reply(429, headers={...}))
        ... point the client at server.url ...
        assert server.requests[0].query["query"] == [...]

Each route plays its replies in order and repeats the last one. A reply may be a
callable taking the Request and returning a Reply, for answers that depend on the
request (paging). Exactly one Date header is sent (Mastodon.py breaks on two).

``server.tamper = f`` puts a fault in front of every route (also of fakes built on this
server): ``f(request, answer)`` returns the reply sent; ``answer()`` is the route's own
(recorded in ``requests`` only when called), to pass on, change or replace (429s, 5xx,
delays, truncated or malformed bodies, broken paging).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    """dict/list -> JSON; str/bytes sent as is (for malformed or truncated bodies)."""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (to trigger client timeouts)."""
    truncate_to: int | None = None
    """Send only this many bytes of the body, announced with the whole body's
    Content-Length, then close the connection (a peer that dies mid-answer)."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8", "replace"))


Responder = Reply | Callable[[Request], Reply]


class FakeServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Responder]] = {}
        self.served: dict[tuple[str, str], int] = {}
        self.requests: list[Request] = []
        self.tamper: Callable[[Request, Callable[[], Reply]], Reply] | None = None
        """A fault in front of every route: ``tamper(request, answer)`` returns the reply sent."""
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # serve_forever's default half-second poll made each server's shutdown take 0.5 s.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path: str, *replies: Responder) -> None:
        with self._lock:
            self.routes[(method.upper(), path)] = list(replies)
            self.served[(method.upper(), path)] = 0

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_reply(self, request: Request) -> Reply:
        key = (request.method, request.path)
        with self._lock:
            self.requests.append(request)
            replies = self.routes.get(key)
            if not replies:
                return Reply(404, {"error": f"no route for {request.method} {request.path}"})
            index = min(self.served[key], len(replies) - 1)
            self.served[key] += 1
        responder = replies[index]
        return responder(request) if callable(responder) else responder

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def send_header(self, keyword: str, value: str) -> None:
                # BaseHTTPRequestHandler adds its own Date; we send ours once below.
                if keyword.lower() == "date" and getattr(self, "_date_sent", False):
                    return
                if keyword.lower() == "date":
                    self._date_sent = True
                super().send_header(keyword, value)

            def _serve(self) -> None:
                self._date_sent = False
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                if fake.tamper is not None:
                    reply = fake.tamper(request, lambda: fake._next_reply(request))
                else:
                    reply = fake._next_reply(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if isinstance(reply.body, (dict, list)):
                    payload = json.dumps(reply.body).encode()
                    content_type = "application/json"
                elif isinstance(reply.body, str):
                    payload, content_type = reply.body.encode(), "application/json"
                else:
                    payload, content_type = reply.body or b"", "application/json"
                headers = {"Content-Type": content_type, **reply.headers}
                self.send_response(reply.status)
                if "Date" not in headers:
                    self.send_header("Date", formatdate(usegmt=True))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if reply.truncate_to is not None:
                    payload = payload[:reply.truncate_to]
                    self.close_connection = True  # the rest never comes
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler


class Sleeps(list):
    """The retry loop's injected sleep: records what it would have waited, waits not at all."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
