"""Secrets that come back re-encoded never leave through what ``listener`` writes or says
(issue 11, item 5).

Peers on 127.0.0.1 repeat the credentials they were sent, the way error pages and
debugging proxies do, but not as they were sent: URL-decoded (a real X bearer token
holds ``%2B`` and ``%3D``), base64-encoded, inside an HTML page that the error message
quotes only the start of, in a redirect, in an XRPC error. (Mastodon.py keeps an error
body's text out of its exceptions, so a Mastodon peer has no way to echo one.) The
sources run through the real command (``python -m listener.cli -v ... pull``, then
``status --json``); stdout, stderr and every stored ``runs.error`` are searched for any
piece of any secret, in any case. The session tokens the platforms hand out (Reddit's
OAuth access token, Bluesky's JWTs) count as secrets too.

The live view logs each request's path: a token typed into the address must not be
logged, in any encoding.

Unlike tests/system/test_secrets.py this module runs no demo: only the pulls.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.client
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import duckdb
import pytest

from analysis.sentiment import VaderScorer
from listener.notify import Message, WebhookNotifier
from listener.web import LiveApp, LiveServer, start_in_thread
from storage.store import Store
from tests.fakes.bluesky_api import SEARCH_PATH, FakeBluesky, post_view
from tests.fakes.http import FakeServer, Reply, Request
from tests.fakes.reddit_api import SEARCH, FakeReddit


def _hex(kind: str, size: int = 64) -> str:
    return hashlib.sha256(f"test_secret_encodings/{kind}".encode()).hexdigest()[:size]


def _x_shaped(kind: str) -> str:
    """112 characters shaped like a real X app-only bearer token: URL-encoded '+', '/'
    and '=' inside, so decoding changes it."""
    h = _hex(kind)
    return f"AAAAAAAAAAAAAAAAAAAAA{h[:16]}%2B{h[16:32]}%2F{h[32:48]}%3D{h[48:64]}{_hex(kind + '/2', 22)}"


X_BEARER = _x_shaped("x-bearer")
FEED_KEY = f"fk{_hex('feed')[:24]}%2B{_hex('feed')[24:48]}"  # as it stands in the feed's URL
REDDIT_ID, REDDIT_SECRET = "rid-" + _hex("reddit-id", 20), "rsec-" + _hex("reddit-secret", 28)
REDDIT_ACCESS = "ract-" + _hex("reddit-access", 40)
BSKY_HANDLE, BSKY_PASSWORD = "listener-e2e.bsky.social", "app-" + _hex("bsky-password", 16)
BSKY_ACCESS_SIG = base64.urlsafe_b64encode(bytes.fromhex(_hex("bsky-access"))).decode().rstrip("=")
BSKY_REFRESH_SIG = base64.urlsafe_b64encode(bytes.fromhex(_hex("bsky-refresh"))).decode().rstrip("=")
SERVE_TOKEN = _x_shaped("serve-token")

SECRETS = {
    "X bearer token": X_BEARER,
    "feed URL key": FEED_KEY,
    "Reddit client id": REDDIT_ID,
    "Reddit client secret": REDDIT_SECRET,
    "Reddit OAuth access token": REDDIT_ACCESS,
    "Bluesky app password": BSKY_PASSWORD,
    "Bluesky access JWT": BSKY_ACCESS_SIG,
    "Bluesky refresh JWT": BSKY_REFRESH_SIG,
}
ENV = {"E2E_X_BEARER": X_BEARER, "E2E_REDDIT_ID": REDDIT_ID,
       "E2E_REDDIT_SECRET": REDDIT_SECRET, "E2E_BSKY_HANDLE": BSKY_HANDLE, "E2E_BSKY_PASSWORD": BSKY_PASSWORD}


def pieces(secret: str, size: int = 10) -> set[str]:
    """What a leak of ``secret`` would contain: each ``size``-character piece of it, as
    sent and URL-decoded, and of its base64 at each alignment (lower-cased: outputs are
    searched in any case)."""
    forms = {secret, unquote(secret)}
    raw = unquote(secret).encode()
    for start in range(3):
        chunk = raw[start:][: len(raw[start:]) - len(raw[start:]) % 3]
        forms |= {base64.b64encode(chunk).decode(), base64.urlsafe_b64encode(chunk).decode()}
    found = {form[i:i + size].lower() for form in forms for i in range(len(form) - size + 1)}
    return {p for p in found if p != "a" * size}  # every X token starts with A's


NEEDLES = {name: pieces(value) for name, value in SECRETS.items()}


def leaks(text: str) -> dict[str, list[str]]:
    lowered = text.lower()
    found = {name: sorted(p for p in needles if p in lowered) for name, needles in NEEDLES.items()}
    return {name: hits for name, hits in found.items() if hits}


def test_the_search_finds_every_form_it_looks_for():
    for name, value in SECRETS.items():
        for form in (value, unquote(value), base64.b64encode(b"user:" + unquote(value).encode()).decode(),
                     f"<p>{unquote(value)[:40]}"):
            assert name in leaks(f"error: {form.upper()} ..."), (name, form)
    assert leaks("error: 401 Unauthorized [redacted] AAAAAAAAAAAAAAAAAAAAA") == {}


# -- peers that repeat what they were sent, re-encoded -----------------------------------------------------


def _bearer(request: Request) -> str:
    return request.headers.get("authorization", "").split(" ", 1)[-1]


def _recording(server: FakeServer, reply) -> None:
    """Answer every request of ``server`` with ``reply(request)``, recording it (a tamper
    bypasses the routes, which record only what they answer)."""
    def tamper(request: Request, answer) -> Reply:
        server.requests.append(request)
        return reply(request)
    server.tamper = tamper


def _x_401_decoded(request: Request) -> Reply:
    """X's problem JSON naming the token it refused, URL-decoded (as a proxy that
    decodes the header before quoting it does)."""
    return Reply(401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                       "detail": f"Invalid or expired token: {unquote(_bearer(request))}"})


def _x_html_page(request: Request) -> Reply:
    """A captive portal's page, sent with 200, naming the token near its start: the
    error quotes the first 80 characters of it."""
    return Reply(200, f"<p>Token {_bearer(request)} is not allowed here.</p>" + "<p>Contact IT.</p>" * 20,
                 headers={"Content-Type": "text/html"})


class _PlantedReddit(FakeReddit):
    """Hands out a distinctive OAuth access token."""

    def _token_reply(self, request: Request) -> Reply:
        reply = super()._token_reply(request)
        if isinstance(reply.body, dict) and "access_token" in reply.body:
            self.tokens = {REDDIT_ACCESS}
            reply.body = {**reply.body, "access_token": REDDIT_ACCESS}
        return reply


def _reddit_redirect_naming_the_token(request: Request) -> Reply:
    return Reply(302, "", headers={"location": f"https://www.reddit.com/login/{_bearer(request)}/?dest=search"})


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass
class Outcome:
    pull: Run
    status: Run
    errors: list[str]
    peers: dict[str, FakeServer]


def _cli(root: Path, *args: str) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env.update(ENV)
    done = subprocess.run([sys.executable, "-m", "listener.cli", "-v", "--config", "listener.toml", *args],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)
    return Run(done.returncode, done.stdout, done.stderr)


def _pull(root: Path, sources: str, peers: dict[str, FakeServer]) -> Outcome:
    (root / "listener.toml").write_text(
        '[database]\npath = "listener.duckdb"\n[[brands]]\nname = "Brewly"\nterms = ["brewly"]\n'
        '[hourly]\nenabled = false\n' + sources, encoding="utf-8")
    pull = _cli(root, "pull")
    status = _cli(root, "status", "--json")
    with duckdb.connect(str(root / "listener.duckdb"), read_only=True) as db:
        errors = [row[0] for row in db.execute("SELECT error FROM runs WHERE error IS NOT NULL").fetchall()]
    return Outcome(pull, status, errors, peers)


@pytest.fixture(scope="module")
def echoed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """Every source with credentials against a peer that repeats them re-encoded."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with ExitStack() as stack:
        x = stack.enter_context(FakeServer())
        _recording(x, _x_401_decoded)
        feeds = stack.enter_context(FakeServer())
        # A 403 page quoting the key base64-encoded, decoded from the URL first.
        key_b64 = base64.b64encode(f"key={unquote(FEED_KEY)}".encode()).decode()
        feeds.route("GET", "/feed.xml", Reply(403, f"<html><p>Forbidden: {key_b64}</p></html>",
                                              headers={"Content-Type": "text/html"}))
        reddit = stack.enter_context(_PlantedReddit(now=now, client_id=REDDIT_ID, client_secret=REDDIT_SECRET))
        reddit.script("GET", SEARCH, _reddit_redirect_naming_the_token)
        bluesky_server = stack.enter_context(FakeServer())
        bluesky = FakeBluesky(bluesky_server, [post_view("3k1", "brewly", now - timedelta(hours=1))],
                              handle=BSKY_HANDLE, password=BSKY_PASSWORD)
        bluesky.access_jwt = bluesky.access_jwt.rsplit(".", 1)[0] + "." + BSKY_ACCESS_SIG
        bluesky.refresh_jwt = bluesky.refresh_jwt.rsplit(".", 1)[0] + "." + BSKY_REFRESH_SIG
        bluesky.script_search(Reply(400, {"error": "InvalidRequest",
                                          "message": f"unexpected header: Bearer {bluesky.access_jwt} "
                                                     f"(refresh with {bluesky.refresh_jwt})"}))
        sources = f"""
[sources.x]
bearer_token_env = "E2E_X_BEARER"
base_url = "{x.url}"
[sources.feeds]
urls = ["{feeds.url}/feed.xml?key={FEED_KEY}"]
[sources.reddit]
client_id_env = "E2E_REDDIT_ID"
client_secret_env = "E2E_REDDIT_SECRET"
base_url = "{reddit.url}"
auth_url = "{reddit.url}"
[sources.bluesky]
handle_env = "E2E_BSKY_HANDLE"
app_password_env = "E2E_BSKY_PASSWORD"
base_url = "{bluesky_server.url}"
"""
        yield _pull(tmp_path_factory.mktemp("echoed"), sources,
                    {"x": x, "feeds": feeds, "reddit": reddit, "bluesky": bluesky_server})


@pytest.fixture(scope="module")
def paged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """X behind a portal that answers (with 200) an HTML page naming the token near its
    start: the error quotes the first 80 characters; retries wait the policy's jitter."""
    with FakeServer() as x:
        _recording(x, _x_html_page)
        sources = f'[sources.x]\nbearer_token_env = "E2E_X_BEARER"\nbase_url = "{x.url}"\n'
        yield _pull(tmp_path_factory.mktemp("paged"), sources, {"x": x})


def test_the_peers_were_asked_and_the_runs_failed_naming_each_source(echoed, paged):
    # Exit 2 for the echoing run: Bluesky's 400 is a QueryError (connectors.bluesky.client), a
    # config error in listener.policy; every other failure here is a runtime one (exit 1).
    assert echoed.pull.code == 2 and paged.pull.code == 1, echoed.pull.stderr + paged.pull.stderr
    assert echoed.status.code == 0 and paged.status.code == 0
    for name, peer in {**echoed.peers, **paged.peers}.items():
        assert peer.requests, f"{name} was never asked"
    # The credentials did reach the peers (so they could echo them).
    assert _bearer(echoed.peers["x"].requests[0]) == X_BEARER
    assert any(_bearer(r) == REDDIT_ACCESS for r in echoed.peers["reddit"].requests)
    runs = json.loads(echoed.status.stdout)["runs"]
    failed = {run["source"] for run in runs if run["status"] == "failed"}
    assert {"x", "feeds", "reddit", "bluesky"} <= failed, runs
    assert [run["status"] for run in json.loads(paged.status.stdout)["runs"]] == ["failed"]
    assert len(echoed.errors) >= 4 and paged.errors
    # The errors still say what went wrong, with the secret's place marked.
    text = "\n".join(echoed.errors + paged.errors)
    assert text.count("[redacted]") >= 5 and "redirected" in text and "not JSON" in text


@pytest.mark.parametrize("what", ["pull stdout", "pull stderr", "status --json", "runs.error"])
def test_no_piece_of_any_secret_leaves_in_any_encoding(echoed, paged, what):
    for outcome in (echoed, paged):
        text = {"pull stdout": outcome.pull.stdout, "pull stderr": outcome.pull.stderr,
                "status --json": outcome.status.stdout + outcome.status.stderr,
                "runs.error": "\n".join(outcome.errors)}[what]
        if what != "pull stdout":  # a failed pull prints its summary on stderr
            assert text.strip(), f"{what} is empty: nothing was checked"
        assert leaks(text) == {}, f"{what}:\n{text}"


# -- the live view's request log ------------------------------------------------------------------------


@contextmanager
def _serving(database_dir: Path, token: str) -> Iterator[LiveServer]:
    database = database_dir / "view.duckdb"
    if not database.exists():
        Store.open(database).close()
    server = LiveServer(LiveApp(database=database, brands=(), scorer=VaderScorer(),
                                clock=lambda: datetime.now(timezone.utc), token=token), "127.0.0.1", 0)
    start_in_thread(server)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def live_view(tmp_path: Path) -> Iterator[LiveServer]:
    with _serving(tmp_path, SERVE_TOKEN) as server:
        yield server


def _get(server: LiveServer, path: str, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=60)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_token_typed_into_the_live_view_s_address_is_never_logged(live_view, caplog):
    caplog.set_level(logging.INFO, logger="listener.web")
    decoded = unquote(SERVE_TOKEN)
    paths = [f"/{SERVE_TOKEN}", f"/brand/{SERVE_TOKEN}", f"/brand/{quote(decoded, safe='')}",
             f"/{quote(SERVE_TOKEN, safe='')}", "/x" * 90 + f"/{SERVE_TOKEN}",  # straddling the 200-character cut
             f"/brand/{html.escape(decoded)}"]
    authorised = {"Authorization": f"Bearer {SERVE_TOKEN}"}
    statuses = [_get(live_view, path, headers) for path in paths for headers in ({}, authorised)]
    assert 401 in statuses and 404 in statuses  # refused without the token, not found with it
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged.count("GET") >= len(paths) * 2 and "[redacted]" in logged
    needles = pieces(SERVE_TOKEN)
    assert not [p for p in needles if p in logged.lower()], logged
    assert not re.search(re.escape(decoded[21:40]), logged, re.IGNORECASE)


def test_a_token_too_short_to_register_is_still_kept_out_of_the_log(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="listener.web")
    with _serving(tmp_path, "Zq7") as server:
        assert _get(server, "/brand/Zq7", {"Authorization": "Bearer Zq7"}) == 404
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /brand/[redacted]" in logged and "Zq7" not in logged


# -- alert delivery ----------------------------------------------------------------------------------


@pytest.mark.parametrize("encode", [str, quote_plus], ids=["as sent", "form-encoded"])
def test_a_webhook_error_page_quoting_the_url_leaves_no_piece_of_it_in_the_attempt(encode):
    """The webhook URL's path is the secret (whoever has it can post). A failing proxy
    quotes it where the attempt's error cuts the page (200 characters): the secret
    straddles the cut."""
    secret = _hex(f"webhook/{encode.__name__}", 40)
    secret_path = f"/services/T0/B0/{secret}"
    NEEDLES["webhook URL"] = pieces(secret)

    def failing_proxy(request: Request) -> Reply:
        quoted = encode(request.path)
        head = "<html><body>upstream failed: "
        filler = "." * (180 - len(head) - quoted.index(secret[:8]))  # the secret starts 20 characters before the cut
        return Reply(502, f"{head}{filler}{quoted}</body></html>", headers={"Content-Type": "text/html"})

    try:
        with FakeServer() as hook:
            hook.route("POST", secret_path, failing_proxy)
            notifier = WebhookNotifier(hook.url + secret_path, timeout=30, attempts=1,
                                       clock=lambda: datetime.now(timezone.utc), sleep=lambda _: None)
            [attempt] = notifier.send(Message("alert", "Brewly mood dipped", {"text": "Brewly mood dipped"}))
        assert hook.requests and attempt.status == "failed" and attempt.error.startswith("HTTP 502")
        assert "[redacted]" in attempt.error and leaks(attempt.error) == {}, attempt.error
    finally:
        del NEEDLES["webhook URL"]
