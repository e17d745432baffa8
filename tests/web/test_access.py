"""The access middleware (listener.web.access) through Starlette's TestClient: one set of
rules for every route, including one a route module adds later (as routes_charts does).

The end-to-end checks against a real `listener serve` process are in
tests/listener/test_serve.py; these pin the middleware's own decisions."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from analysis.sentiment import VaderScorer
from listener.web import LiveApp, create_app, session_value
from storage.store import Store

TOKEN = "web-test-token-42"  # ASCII: the test client sends headers as ASCII (non-ASCII: tests/listener/test_serve.py)
LOCAL = "http://127.0.0.1:8177"


def _app(tmp_path: Path, token: str | None = None):
    database = tmp_path / "web.duckdb"
    if not database.exists():
        Store.open(database).close()
    state = LiveApp(database=database, brands=(), scorer=VaderScorer(),
                    clock=lambda: datetime(2026, 11, 10, 12, tzinfo=timezone.utc), token=token)
    app = create_app(state)
    seen: list[dict] = []

    def echo(request: Request) -> PlainTextResponse:  # a route added after create_app, as a route module would
        seen.append(request.state.form)
        return PlainTextResponse("ok")

    app.router.routes.append(Route("/echo", echo, methods=["POST"]))
    return app, state, seen


@pytest.fixture
def local(tmp_path):
    app, state, seen = _app(tmp_path)
    with TestClient(app, base_url=LOCAL, follow_redirects=False) as client:
        yield client, state, seen


def test_every_answer_carries_the_security_headers(local):
    client, _, _ = local
    for path in ("/", "/static/app.css", "/nowhere", "/api/live.json"):
        answer = client.get(path)
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_without_a_token_only_loopback_hosts_are_answered(local):
    client, _, _ = local
    for host in ("127.0.0.1:8177", "localhost", "[::1]:8177", "127.0.0.2"):
        assert client.get("/", headers={"host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8177", "127.0.0.1.evil.example", "", "[::1"):
        assert client.get("/", headers={"host": host}).status_code == 421, host


def test_only_get_head_and_post(local):
    client, _, _ = local
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        answer = client.request(method, "/echo")
        assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD, POST"
    assert client.head("/").status_code == 200


def _form(client, path, fields, **headers):
    base = {"content-type": "application/x-www-form-urlencoded", "origin": LOCAL, "sec-fetch-site": "same-origin"}
    return client.post(path, content="&".join(f"{k}={v}" for k, v in fields.items()),
                       headers={**base, **headers})


def test_every_post_route_gets_a_checked_form_or_nothing(local):
    """CSRF, origin, type and size are checked once, for the app's routes and for a route
    added later; the route sees the parsed form."""
    client, state, seen = local
    good = {"csrf": state.csrf, "x": "1"}
    assert _form(client, "/echo", good).text == "ok" and seen == [good]
    refused = [
        ({"x": "1"}, {}, 403),
        ({**good, "csrf": "forged"}, {}, 403),
        (good, {"origin": "http://evil.example"}, 403),
        (good, {"origin": "null"}, 403),
        (good, {"sec-fetch-site": "cross-site"}, 403),
        (good, {"content-type": "application/json"}, 415),
        ({**good, "pad": "x" * 9000}, {}, 413),
    ]
    for fields, headers, status in refused:
        assert _form(client, "/echo", fields, **headers).status_code == status, (fields.keys(), headers)
    assert client.post("/echo", content=f"csrf={state.csrf}&x=1&x=2",
                       headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 400
    assert len(seen) == 1, "a refused form reached the route"
    # a POST no route takes is not read: the router answers 404 or 405
    assert _form(client, "/", good).status_code == 405
    assert _form(client, "/nowhere", good).status_code == 404


def test_a_token_opens_the_view_by_header_or_once_by_query(tmp_path):
    app, state, seen = _app(tmp_path, TOKEN)
    with TestClient(app, base_url="http://view.example", follow_redirects=False) as client:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"cookie": "listener_session=" + "0" * 64},
                        {"cookie": f"listener_session={TOKEN}"}, {"authorization": "Basic x"}):
            answer = client.get("/api/live.json", headers=headers)
            assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in answer.text
        # any Host is fine with a token (it is the token that keeps others out)
        assert client.get("/api/live.json", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        answer = client.get("/brand/x", params={"token": TOKEN, "keep": "1"})
        assert answer.status_code == 303 and answer.headers["location"] == "/brand/x?keep=1"
        cookie = answer.headers["set-cookie"]
        assert cookie == f"listener_session={session_value(TOKEN)}; HttpOnly; SameSite=Strict; Path=/"
        # a path a browser could read as another host is not kept
        answer = client.get("//evil.example/", params={"token": TOKEN})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        jar = {"cookie": f"listener_session={session_value(TOKEN)}"}
        assert client.get("/", headers=jar).status_code == 200
        # the form still needs its CSRF token, the cookie alone is not enough
        assert _form(client, "/echo", {"x": "1"}, origin="http://view.example", **jar).status_code == 403
        assert _form(client, "/echo", {"csrf": state.csrf}, origin="http://view.example",
                     **jar).status_code == 200
        # a token in a POST's query is not taken
        assert client.post(f"/echo?token={TOKEN}", content=f"csrf={state.csrf}",
                           headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 401
    assert len(seen) == 1
