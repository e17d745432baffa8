"""A fake Jetstream on 127.0.0.1: a real websocket server (the ``websockets`` library's).

    with FakeJetstream([post_event(...), ...]) as jetstream:
        ... connect to jetstream.url ...
        assert jetstream.connections[0]["cursor"] == "..."

Like Jetstream, ``/subscribe`` honours ``wantedCollections`` (commit events of other
collections are not sent; identity and account events go to everyone) and ``cursor``
(events with ``time_us >= cursor``; no cursor: everything). After the scripted events
the connection stays open and idle, as a live stream would between posts.

``drop_after=[3, None]`` drops the first connection abruptly (no close frame) after 3
events and leaves the second alone. ``refuse=[503, 503]`` answers the first handshakes
with those HTTP statuses. ``pace=0.2`` waits that long before each event (a slow
stream). A scripted item that is a ``RawEvent`` is sent verbatim (for malformed
messages; bytes go as a binary frame), ordered by the ``time_us`` given with it.

``SilentServer`` accepts TCP connections and never answers, not even the handshake.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve


@dataclass(frozen=True)
class RawEvent:
    time_us: int
    payload: str | bytes


def time_us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def post_event(at_us: int, rkey: str, text: str, *, did: str = "did:plc:alice", created_at: str | None = None,
               langs: list[str] | None = None, reply_root: str | None = None,
               reply_parent: str | None = None, operation: str = "create") -> dict[str, Any]:
    """A Jetstream commit event creating an ``app.bsky.feed.post`` (documented shape)."""
    if created_at is None:
        moment = datetime(1970, 1, 1, tzinfo=timezone.utc).timestamp() + at_us / 1_000_000
        created_at = datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", "createdAt": created_at, "text": text,
                              "langs": langs if langs is not None else ["en"]}
    if reply_root or reply_parent:
        root = reply_root or reply_parent
        record["reply"] = {"root": {"cid": "bafyreiroot", "uri": root},
                           "parent": {"cid": "bafyreiparent", "uri": reply_parent or root}}
    commit: dict[str, Any] = {"rev": f"3l{rkey}rev", "operation": operation, "collection": "app.bsky.feed.post",
                              "rkey": rkey}
    if operation != "delete":
        commit["record"] = record
        commit["cid"] = f"bafyrei{rkey}"
    return {"did": did, "time_us": at_us, "kind": "commit", "commit": commit}


def like_event(at_us: int, subject: str, *, did: str = "did:plc:bob") -> dict[str, Any]:
    return {"did": did, "time_us": at_us, "kind": "commit", "commit": {
        "rev": "3lrevlike", "operation": "create", "collection": "app.bsky.feed.like", "rkey": "3llike",
        "record": {"$type": "app.bsky.feed.like", "createdAt": "2026-11-01T09:00:00.000Z",
                   "subject": {"cid": "bafyreisubject", "uri": subject}},
        "cid": "bafyreilike"}}


def identity_event(at_us: int, *, did: str = "did:plc:carol") -> dict[str, Any]:
    return {"did": did, "time_us": at_us, "kind": "identity",
            "identity": {"did": did, "handle": "carol.bsky.social", "seq": 1, "time": "2026-11-01T09:00:00.000Z"}}


class FakeJetstream:
    def __init__(self, events: list[dict[str, Any] | RawEvent] | None = None, *,
                 drop_after: list[int | None] | None = None, refuse: list[int] | None = None,
                 pace: float = 0.0) -> None:
        self.events: list[dict[str, Any] | RawEvent] = list(events or [])
        self.pace = pace
        self.drop_after = list(drop_after or [])
        self.refuse = list(refuse or [])
        self.connections: list[dict[str, Any]] = []
        self.handshakes = 0
        self._lock = threading.Lock()
        self._server = serve(self._handle, "127.0.0.1", 0, process_request=self._process_request,
                             ping_interval=None)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    def __enter__(self) -> FakeJetstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def add(self, *events: dict[str, Any] | RawEvent) -> None:
        with self._lock:
            self.events.extend(events)

    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        with self._lock:
            index = self.handshakes
            self.handshakes += 1
        if index < len(self.refuse):
            return connection.respond(self.refuse[index], "Jetstream is busy\n")
        return None

    def _handle(self, connection: ServerConnection) -> None:
        parts = urlsplit(connection.request.path)
        query = parse_qs(parts.query)
        with self._lock:
            number = len(self.connections)
            self.connections.append({"path": parts.path, "cursor": (query.get("cursor") or [None])[-1],
                                     "wantedCollections": query.get("wantedCollections", [])})
            drop = self.drop_after[number] if number < len(self.drop_after) else None
            events = list(self.events)
        if parts.path != "/subscribe":
            connection.close(1008, "not found")
            return
        cursor = int(query["cursor"][-1]) if "cursor" in query else None
        wanted = set(query.get("wantedCollections", []))
        sent = 0
        for event in sorted(events, key=_time_of):
            if cursor is not None and _time_of(event) < cursor:
                continue
            if isinstance(event, dict) and event.get("kind") == "commit" and wanted \
                    and event["commit"].get("collection") not in wanted:
                continue
            if drop is not None and sent >= drop:
                break
            payload = event.payload if isinstance(event, RawEvent) else json.dumps(event)
            if self.pace:
                time.sleep(self.pace)
            try:
                connection.send(payload)
            except ConnectionClosed:
                return
            sent += 1
        if drop is not None and sent >= drop:
            # An abrupt drop: no close frame, as when a network path fails.
            connection.socket.shutdown(socket.SHUT_RDWR)
            return
        try:  # stay open and idle until the client or the server closes
            while True:
                connection.recv()
        except ConnectionClosed:
            pass


def _time_of(event: dict[str, Any] | RawEvent) -> int:
    return event.time_us if isinstance(event, RawEvent) else int(event["time_us"])


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte: a
    websocket (or HTTP) peer that hangs before its handshake."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    @property
    def accepted(self) -> int:
        return len(self._held)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for held in self._held:
            held.close()
        self._socket.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)  # held open, never read from or written to
