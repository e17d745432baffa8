"""`listener serve`, over HTTP: a real server process on 127.0.0.1 reading a DuckDB file
on disk, driven with http.client (no redirects followed, headers under our control).

What is checked: the view's numbers are `listener mood --json`'s; a token is required
beyond loopback and, when set, on every request (bearer, or ?token= turned into an
HttpOnly SameSite=Strict cookie); POST /label needs the page's CSRF token and a
same-origin browser, and only ever appends to the label inbox; no other method or path
changes anything; the server never opens the database read-write (this module holds a
read-only connection to it the whole time, which a read-write open would conflict with,
and the file's bytes never change); the daemon's snapshot is read, and re-read when a
new one is published.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

import duckdb
import pytest
from click.testing import CliRunner

from analysis.sentiment import Score, VaderScorer
from connectors.base import Mention
from listener.commands_serve import serve
from listener.web import bind_refusal, is_loopback, session_value, tokens_match
from storage.labels import LabelRequest, apply_label, inbox_path
from storage.rollup import rollup_pending
from storage.snapshot import snapshot_path
from storage.store import Store, to_db_time
from tests.timing import HANG_GUARD

AS_OF = datetime(2026, 11, 10, 12, 30, tzinfo=timezone.utc)
TOKEN = "s3cret-T0ken-for-tests-\u00e9"  # non-ASCII on purpose: compared as bytes
HOSTILE = ("<script>alert(1)</script><img src=x onerror=alert(2)> terrible awful horrible service "
           "\u0645\u0631\u062d\u0628\u0627 \u202eevil\u202c \U0001F620\U0001F525 ctrl:\x00\x07\x1b[31m end")
HOSTILE_ID = "hostile-1"
BIG_TEXT = "Globex is great. " + "x" * (1 << 20)
BRANDS = ("Acme", "Globex & Co", "Initech")

POSITIVE = ["love {b}, great stuff", "{b} is excellent, thank you", "happy with {b} today, wonderful"]
NEGATIVE = ["{b} is terrible, awful support", "hate the new {b} app, broken again", "{b} made me angry, bad"]
NEUTRAL = ["bought {b} on tuesday", "{b} store opens at nine", "does {b} ship to Norway"]

CONFIG = """
[database]
path = "listener.duckdb"

[[brands]]
name = "Acme"
terms = ["acme"]
competitors = ["Globex & Co"]

[[brands]]
name = "Globex & Co"
terms = ["globex"]

[[brands]]
name = "Initech"
terms = ["initech"]
"""


def _mentions(rng: random.Random, brand: str, source: str) -> list[Mention]:
    out = []
    start = AS_OF - timedelta(days=9)
    n = 0
    for hour in range(9 * 24):
        for _ in range(rng.randint(0, 5)):
            n += 1
            at = start + timedelta(hours=hour, seconds=rng.randint(0, 3599))
            if at >= AS_OF:
                continue
            bucket = rng.random()
            pool = POSITIVE if bucket < 0.45 else NEGATIVE if bucket < 0.75 else NEUTRAL
            thread = f"{brand[:2]}-{source}-{hour}-{rng.randint(0, 1)}"
            out.append(Mention(
                source=source, id=f"{brand[:2]}{source}{n}", brand=brand, created_at=at,
                text=rng.choice(pool).format(b=brand), author=f"u{rng.randint(1, 50)}",
                url=f"https://social.example/{source}/{n}", conversation_id=thread,
                metrics={"likes": rng.randint(0, 9), "reposts": 0, "replies": rng.randint(0, 3)},
            ))
    return out


def _save(store: Store, mentions: list[Mention], scores: list[Score | None], source: str, brand: str) -> None:
    store.save_batch(mentions, scores, source=source, brand=brand, checkpoint=None, scorer="vader",
                     scorer_version="test", now=AS_OF)


def build_database(directory: Path) -> dict:
    """A config and database on disk: three brands over 9 days from two sources, threads
    rolled up, a manual label, a hostile thread, a 1 MB post, pull runs and alerts;
    plus what `listener mood --json` says about it."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "listener.toml"
    config.write_text(CONFIG, encoding="utf-8")
    database = directory / "listener.duckdb"
    rng = random.Random(20261110)
    scorer = VaderScorer()
    with Store.open(database) as store:
        for brand in BRANDS:
            for source in ("mastodon", "reddit"):
                batch = sorted(_mentions(rng, brand, source), key=lambda m: m.created_at)
                _save(store, batch, scorer.score([m.text for m in batch]), source, brand)
        hostile = Mention(source="mastodon", id=HOSTILE_ID, brand="Acme", created_at=AS_OF - timedelta(hours=2),
                          text=HOSTILE, author="<b>mallory</b>", url="javascript:alert(3)",
                          conversation_id="hostile-thread", metrics={"likes": 50, "reposts": 9, "replies": 9})
        _save(store, [hostile], [Score(-0.99, 0.0, 0.1, 0.9, "negative")], "mastodon", "Acme")
        big = Mention(source="reddit", id="big-1", brand="Globex & Co", created_at=AS_OF - timedelta(hours=3),
                      text=BIG_TEXT, url="https://social.example/reddit/big", conversation_id="big-thread")
        _save(store, [big], [Score(0.99, 0.9, 0.1, 0.0, "positive")], "reddit", "Globex & Co")
        apply_label(store, LabelRequest(id="Acmastodon1", label="negative", source="mastodon", brand="Acme"), AS_OF)
        rollup_pending(store)
        ok = store.start_run("pull", now=AS_OF - timedelta(minutes=20), source="mastodon", brand="Acme")
        store.finish_run(ok, now=AS_OF - timedelta(minutes=19), status="ok", fetched=5, new=5)
        bad = store.start_run("pull", now=AS_OF - timedelta(minutes=10), source="reddit", brand="Acme")
        store.finish_run(bad, now=AS_OF - timedelta(minutes=10), status="failed",
                         error="<b>RetryableError</b>: 503 from the platform")
        with store.native() as db:
            db.execute(
                "INSERT INTO alerts (brand, metric, direction, hour, detected_at, value, baseline, statistic, "
                "control_limit, mentions, summary) VALUES "
                "('Acme', 'mood', 'dip', $h, $h, -40.0, 10.0, 4.5, 3.0, 12, $s), "
                "('Initech', 'volume', 'spike', $old, $old, 80.0, 20.0, 5.0, 3.0, 80, 'old and open'), "
                "('Initech', 'volume', 'spike', $h, $h, 80.0, 20.0, 5.0, 3.0, 80, 'closed one')",
                {"h": to_db_time(AS_OF - timedelta(hours=3)), "old": to_db_time(AS_OF - timedelta(days=8)),
                 "s": "NSS fell <script>alert(4)</script>"},
            )
            db.execute("UPDATE alerts SET closed_at = $t WHERE summary = 'closed one'", {"t": to_db_time(AS_OF)})
    mood = listener_cli("--config", str(config), "mood", "--json", "--as-of", AS_OF.isoformat())
    assert mood.returncode == 0, mood.stderr
    return {"config": config, "database": database, "mood": json.loads(mood.stdout)}


def listener_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    return subprocess.run([sys.executable, "-m", "listener.cli", *args], capture_output=True, text=True, env=env,
                          timeout=HANG_GUARD, check=False)


class Server:
    """`listener serve` in a child process on a free port; its stderr is collected."""

    def __init__(self, config: Path, *args: str, token: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
        if token is not None:
            env["LISTENER_SERVE_TOKEN"] = token
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "listener.commands_serve", "--config", str(config), "--port", "0",
             "--as-of", AS_OF.isoformat(), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        first = self.proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", first)
        if not match:
            self.proc.kill()
            raise AssertionError(f"the server did not start: {first}{self.proc.stderr.read()}")
        self.port = int(match.group(1))
        self.log: list[str] = [first]
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line)

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
                host: str | None = None) -> tuple[int, dict, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HANG_GUARD)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", f"127.0.0.1:{self.port}" if host is None else host)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, \
                response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=HANG_GUARD)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FormParser(HTMLParser):
    """The label forms of a page: their hidden fields and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "method": a.get("method"), "fields": {}, "buttons": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"].append((a.get("name"), a.get("value")))


def label_forms(page: str) -> list[dict]:
    parser = FormParser()
    parser.feed(page)
    return parser.forms


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    info = build_database(tmp_path_factory.mktemp("serve"))
    # Held read-only for the whole module: a read-write open by the server would fail.
    holder = duckdb.connect(str(info["database"]), read_only=True)
    info["sha256"] = sha256(info["database"])
    yield info
    holder.close()
    assert sha256(info["database"]) == info["sha256"], "the server changed the database file"


@pytest.fixture(scope="module")
def open_server(world):
    server = Server(world["config"])
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def token_server(world):
    server = Server(world["config"], token=TOKEN)
    yield server
    assert server.stop() == 0
    assert not any(TOKEN in line or session_value(TOKEN) in line for line in server.log), "the token was logged"


@pytest.fixture
def clean_inbox(world):
    inbox = inbox_path(world["database"])
    inbox.unlink(missing_ok=True)
    yield inbox
    inbox.unlink(missing_ok=True)


# -- binding and tokens -------------------------------------------------------------------


def test_loopback_is_told_apart_from_everything_else():
    for host in ("127.0.0.1", "127.10.0.3", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.com", "localhost.example.com", ""):
        assert not is_loopback(host), host


def test_binding_beyond_loopback_needs_a_token():
    assert bind_refusal("127.0.0.1", None, "LISTENER_SERVE_TOKEN") is None
    assert bind_refusal("0.0.0.0", "t", "LISTENER_SERVE_TOKEN") is None
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.com"):
        why = bind_refusal(host, None, "MY_TOKEN")
        assert why and "MY_TOKEN" in why and host in why


def test_the_command_refuses_a_public_bind_without_a_token_with_exit_2(world):
    runner = CliRunner()
    env = {"LISTENER_SERVE_TOKEN": "", "OTHER_TOKEN": ""}
    result = runner.invoke(serve, ["--config", str(world["config"]), "--host", "0.0.0.0", "--port", "0"], env=env)
    assert result.exit_code == 2, result.output
    assert "LISTENER_SERVE_TOKEN" in result.output and "beyond loopback" in result.output
    result = runner.invoke(serve, ["--config", str(world["config"]), "--host", "192.168.1.5",
                                   "--token-env", "OTHER_TOKEN"], env=env)
    assert result.exit_code == 2 and "OTHER_TOKEN" in result.output
    result = runner.invoke(serve, ["--db", str(world["database"].with_name("missing.duckdb"))], env=env)
    assert result.exit_code == 2 and "no database" in result.output


def test_tokens_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((type(a), type(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert tokens_match(TOKEN, TOKEN)
    for wrong in ("", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "\udcff", "\ud800", "x" * 10_000, None):
        assert not tokens_match(wrong, TOKEN)
    # every comparison that had a string went through compare_digest, on bytes
    assert len(calls) == 8 and all(t == (bytes, bytes) for t in calls)


def test_requests_without_the_token_are_refused(token_server):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
                    {"Authorization": "Basic " + TOKEN}, {"Cookie": "listener_session=" + "0" * 64},
                    {"Cookie": f"listener_session={TOKEN}"}):
        for path in ("/", "/api/live.json", "/brand/Acme", "/nothing"):
            status, head, body = token_server.request("GET", path, headers)
            assert status == 401, (headers, path)
            assert head["www-authenticate"].startswith("Bearer")
            assert TOKEN not in body and "Acme" not in body
    status, _, _ = token_server.request("GET", "/?token=wrong")
    assert status == 401


def test_the_right_token_opens_the_view(token_server):
    status, _, body = token_server.request("GET", "/api/live.json", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and json.loads(body)["brands"]
    status, head, _ = token_server.request("GET", "/brand/Acme?" + urlencode({"token": TOKEN, "queued": "x"}))
    assert status == 303
    assert head["location"] == "/brand/Acme?queued=x"  # the token leaves the address bar
    cookie = head["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie
    for sneaky in ("//evil.example/", "/\\evil.example/"):  # no open redirect
        status, head, _ = token_server.request("GET", sneaky + "?" + urlencode({"token": TOKEN}))
        location = head["location"]
        assert status == 303 and location.startswith("/") and not location.startswith(("//", "/\\")), location
    value = cookie.split(";")[0]
    status, _, body = token_server.request("GET", "/", {"Cookie": value})
    assert status == 200 and "Acme" in body
    assert TOKEN not in body


def test_a_loopback_server_without_token_answers_only_to_loopback_names(open_server):
    for host in ("evil.example", "evil.example:80", "192.168.1.5", ""):
        status, _, body = open_server.request("GET", "/", host=host)
        assert status == 421, host
        assert "Acme" not in body
    for host in (f"localhost:{open_server.port}", f"127.0.0.1:{open_server.port}", f"[::1]:{open_server.port}"):
        status, _, _ = open_server.request("GET", "/api/live.json", host=host)
        assert status == 200, host


# -- what the view shows ------------------------------------------------------------------


def test_the_numbers_are_those_of_listener_mood(world, open_server):
    status, head, body = open_server.request("GET", "/api/live.json")
    assert status == 200 and head["content-type"].startswith("application/json")
    view = json.loads(body)
    assert view["as_of"] == AS_OF.isoformat()
    assert view["data"]["kind"] == "database"
    cli = {b["brand"]: b for b in world["mood"]["brands"]}
    assert [b["brand"] for b in view["brands"]] == list(BRANDS) == list(cli)
    for b in view["brands"]:
        assert b["mood"] == cli[b["brand"]]
    acme = view["brands"][0]
    # the manual label and the hostile thread are in the figures
    assert acme["mood"]["last_24h"]["negative"] >= 1
    hours = acme["hourly"]
    assert len(hours) == 48 and hours[-1]["partial"] and not hours[0]["partial"]
    assert hours[-1]["hour"] == "2026-11-10T12:00:00+00:00"
    # the last 24 h hold about the same mentions as the window (the hourly series is hour-aligned)
    assert sum(h["mentions"] for h in hours[-24:]) >= acme["mood"]["last_hour"]["mentions"]
    sov = acme["share_of_voice"]
    assert sov["brands"] == ["Acme", "Globex & Co"]  # its configured competitor only
    assert sov["last_24h"][0]["mentions"] == acme["mood"]["last_24h"]["mentions"]
    assert sum(r["share"] for r in sov["last_24h"]) == pytest.approx(1, abs=1e-3)
    initech = view["brands"][2]
    assert initech["share_of_voice"]["brands"] == ["Initech", "Acme", "Globex & Co"]  # no competitors: all brands
    negative = acme["conversations"]["most_negative"]
    assert negative[0]["conversation_id"] == "hostile-thread" and negative[0]["title"] == HOSTILE
    assert negative[0]["opening"]["id"] == HOSTILE_ID
    scores = [c["score"] for c in negative]
    assert scores == sorted(scores)
    positive = acme["conversations"]["most_positive"]
    assert [c["score"] for c in positive] == sorted((c["score"] for c in positive), reverse=True)
    assert all(c["last_at"] >= (AS_OF - timedelta(hours=24)).isoformat() for c in negative + positive)
    assert [a["summary"] for a in view["alerts"]] == ["NSS fell <script>alert(4)</script>"]
    fresh = {f["source"]: f for f in view["freshness"]}
    assert set(fresh) == {"mastodon", "reddit"}
    assert fresh["reddit"]["last_error"].startswith("<b>RetryableError")
    assert fresh["mastodon"]["last_ok_pull"] == (AS_OF - timedelta(minutes=19)).isoformat()


def test_the_page_shows_hostile_text_as_text(open_server):
    status, head, page = open_server.request("GET", "/")
    assert status == 200 and head["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in head["content-security-policy"]
    assert "frame-ancestors 'none'" in head["content-security-policy"]
    assert head["x-content-type-options"] == "nosniff"
    # scripts only from the server's own static files, none inline (the CSP allows 'self' only)
    assert "script-src 'self'" in head["content-security-policy"]
    scripts = re.findall(r"<script\b[^>]*>", page, re.IGNORECASE)
    assert scripts and all(re.fullmatch(r'<script src="/static/[\w./-]+\.js" defer>', s) for s in scripts), scripts
    assert not re.search(r"<script\b[^>]*>[^<]", page, re.IGNORECASE)
    assert not re.search(r"<img\b", page, re.IGNORECASE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in page and "&lt;b&gt;RetryableError" in page
    assert "javascript:" not in page  # the hostile thread's URL is not a link
    assert "\x00" not in page and "\x07" not in page and "\x1b" not in page
    assert "\u2400\u2407\u241b[31m" in page  # control characters as their symbols
    assert "\u0645\u0631\u062d\u0628\u0627" in page and "\U0001F620" in page
    assert "<bdi>" in page
    assert len(page) < 300_000  # the 1 MB post is cut
    head_part = page.split("<body>")[0]
    assert 'http-equiv="refresh"' in head_part and not re.search(r"https?://", head_part)  # nothing external


def test_every_brand_has_its_page_and_unknown_ones_are_404(open_server):
    status, _, page = open_server.request("GET", "/brand/Globex%20%26%20Co")
    assert status == 200 and "Globex &amp; Co: mood, live" in page
    assert 'url=/brand/Globex%20%26%20Co"' in page  # it refreshes itself, not the overview
    status, _, page = open_server.request("GET", "/brand/Nobody%3Cscript%3E")
    assert status == 404 and "<script" not in page
    status, _, _ = open_server.request("GET", "/brand/%ff%fe")
    assert status == 400


# -- labels ------------------------------------------------------------------------------


def _form_for(server: Server, mention_id: str, headers: dict | None = None) -> dict:
    status, _, page = server.request("GET", "/brand/Acme", headers)
    assert status == 200
    forms = [f for f in label_forms(page) if f["fields"].get("id") == mention_id]
    assert forms, f"no label form for {mention_id}"
    form = forms[0]
    assert form["action"] == "/label" and form["method"] == "post"
    assert [b[1] for b in form["buttons"]] == ["positive", "neutral", "negative"]
    return form["fields"]


def _post(server: Server, fields: dict, headers: dict | None = None) -> tuple[int, dict, str]:
    body = urlencode(fields).encode()
    base = {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{server.port}",
            "Sec-Fetch-Site": "same-origin"}
    return server.request("POST", "/label", {**base, **(headers or {})}, body)


def test_a_label_from_the_page_is_queued_for_the_daemon(world, open_server, clean_inbox):
    fields = _form_for(open_server, HOSTILE_ID)
    assert fields["source"] == "mastodon" and fields["brand"] == "Acme" and fields["back"] == "/brand/Acme"
    status, head, _ = _post(open_server, {**fields, "label": "positive"})
    assert status == 303 and head["location"] == "/brand/Acme?queued=positive"
    lines = [json.loads(line) for line in clean_inbox.read_text(encoding="utf-8").splitlines()]
    assert lines == [{"id": HOSTILE_ID, "label": "positive", "source": "mastodon", "brand": "Acme",
                      "by": "live view", "origin": "web", "at": lines[0]["at"]}]
    status, _, page = open_server.request("GET", head["location"])
    assert "Label &#39;positive&#39; queued" in page and "1 label(s) queued" in page


def test_label_posts_without_the_page_s_token_or_from_elsewhere_are_refused(world, open_server, clean_inbox):
    fields = {**_form_for(open_server, HOSTILE_ID), "label": "neutral"}
    cases = [
        ({k: v for k, v in fields.items() if k != "csrf"}, {}, 403),
        ({**fields, "csrf": "forged"}, {}, 403),
        ({**fields, "csrf": fields["csrf"][:-1]}, {}, 403),
        (fields, {"Origin": "http://evil.example"}, 403),
        (fields, {"Origin": "null"}, 403),
        (fields, {"Sec-Fetch-Site": "cross-site"}, 403),
        (fields, {"Sec-Fetch-Site": "same-site"}, 403),
        (fields, {"Content-Type": "application/json"}, 415),
        ({**fields, "label": "ecstatic"}, {}, 400),
        ({**fields, "id": "no-such-mention"}, {}, 404),
        ({**fields, "id": ""}, {}, 400),
    ]
    for form, headers, expected in cases:
        status, _, page = _post(open_server, form, headers)
        assert status == expected, (form.get("csrf", "")[:4], form.get("label"), form.get("id"), headers)
        assert "<script" not in page
    status, _, _ = open_server.request("POST", "/label", {"Content-Type": "application/x-www-form-urlencoded",
                                                          "Content-Length": "100000"})
    assert status == 413
    status, _, _ = _post(open_server, {**fields, "extra": "x" * 9000})
    assert status == 413
    assert not clean_inbox.exists(), "a refused request reached the inbox"
    # the way back only leads to the view's own pages, and cannot smuggle a header
    for back in ("https://evil.example/", "//evil.example", "/brand/x\r\nSet-Cookie: a=b", "/api/live.json"):
        status, head, _ = _post(open_server, {**fields, "back": back})
        assert status == 303 and head["location"] == "/?queued=neutral" and "a=b" not in head.get("set-cookie", "")
    lines = clean_inbox.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4


def test_with_a_token_a_label_needs_the_token_too(token_server, clean_inbox):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    fields = {**_form_for(token_server, HOSTILE_ID, auth), "label": "negative"}
    status, _, _ = _post(token_server, fields)
    assert status == 401 and not clean_inbox.exists()
    status, _, _ = _post(token_server, fields, auth)
    assert status == 303 and clean_inbox.exists()


def test_nothing_else_can_change_anything(world, open_server, clean_inbox):
    before = sha256(world["database"])
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        for path in ("/", "/label", "/api/live.json"):
            status, head, _ = open_server.request(method, path, body=b"label=positive")
            assert status == 405, (method, path)
            assert "GET" in head["allow"]
    for path in ("/", "/api/live.json", "/brand/Acme", "/../listener.duckdb"):
        status, _, _ = open_server.request("POST", path, {"Content-Type": "application/x-www-form-urlencoded"},
                                           b"label=positive&id=" + HOSTILE_ID.encode())
        assert status in (404, 405), path
    status, _, _ = open_server.request("GET", "/label?id=x&label=positive")
    assert status == 405
    status, _, _ = open_server.request("GET", "/listener.duckdb")
    assert status == 404
    status, head, body = open_server.request("HEAD", "/")
    assert status == 200 and body == "" and int(head["content-length"]) > 1000
    assert not clean_inbox.exists()
    assert sha256(world["database"]) == before


# -- snapshot and locks -------------------------------------------------------------------


def _publish(source: Path, database: Path) -> None:
    """What storage.snapshot.publish_snapshot does: copy in a child process, rename."""
    target = snapshot_path(database)
    partial = target.with_name(target.name + ".partial")
    subprocess.run(["cp", str(source), str(partial)], check=True)
    os.replace(partial, target)


def test_the_snapshot_is_read_and_reread_when_a_new_one_is_published(world, tmp_path):
    directory = tmp_path / "snap"
    directory.mkdir()
    shutil.copy(world["config"], directory / "listener.toml")
    database = directory / "listener.duckdb"
    subprocess.run(["cp", str(world["database"]), str(database)], check=True)
    time.sleep(0.02)
    _publish(database, database)
    server = Server(directory / "listener.toml")
    try:
        status, _, body = server.request("GET", "/api/live.json")
        first = json.loads(body)
        assert status == 200 and first["data"]["kind"] == "snapshot"
        assert first["brands"][0]["mood"] == world["mood"]["brands"][0]
        # the daemon publishes a new snapshot with three more mentions in the last hour
        newer = tmp_path / "newer.duckdb"
        subprocess.run(["cp", str(world["database"]), str(newer)], check=True)
        with Store.open(newer) as store:
            extra = [Mention(source="mastodon", id=f"new{i}", brand="Acme", created_at=AS_OF - timedelta(minutes=i + 1),
                             text="love acme", conversation_id=f"new{i}") for i in range(3)]
            _save(store, extra, VaderScorer().score([m.text for m in extra]), "mastodon", "Acme")
        time.sleep(0.02)
        _publish(newer, database)
        status, _, body = server.request("GET", "/api/live.json")
        second = json.loads(body)
        assert second["data"]["kind"] == "snapshot"
        assert second["data"]["published_at"] >= first["data"]["published_at"]
        assert second["brands"][0]["mood"]["last_hour"]["mentions"] == \
            first["brands"][0]["mood"]["last_hour"]["mentions"] + 3
        # while the "daemon" holds the database, a write after the snapshot is not waited for
        with Store.open(database):
            os.utime(database, None)
            status, _, body = server.request("GET", "/api/live.json")
            assert status == 200 and json.loads(body)["data"]["kind"] == "snapshot"
        # the daemon stopped and something wrote to the database: the snapshot is stale
        future = time.time() + 5
        os.utime(database, (future, future))
        status, _, body = server.request("GET", "/api/live.json")
        assert json.loads(body)["data"]["kind"] == "database"
        # no snapshot and the database held by another process: a page that waits
        snapshot_path(database).unlink()
        with Store.open(database):
            status, head, page = server.request("GET", "/")
            assert status == 503 and head["retry-after"] == "10" and 'http-equiv="refresh"' in page
        status, _, _ = server.request("GET", "/")
        assert status == 200
    finally:
        assert server.stop() == 0


def test_the_server_does_not_hold_the_database_between_requests(world, tmp_path):
    directory = tmp_path / "free"
    directory.mkdir()
    shutil.copy(world["config"], directory / "listener.toml")
    database = directory / "listener.duckdb"
    subprocess.run(["cp", str(world["database"]), str(database)], check=True)
    server = Server(directory / "listener.toml")
    try:
        status, _, _ = server.request("GET", "/")
        assert status == 200
        # a daemon could start now: the file opens read-write
        with Store.open(database) as store, store.native() as db:
            assert db.execute("SELECT count(*) FROM mentions").fetchone()[0] > 1000
    finally:
        assert server.stop() == 0


# -- rendering edge cases ------------------------------------------------------------------


def _empty_window() -> dict:
    return {"mentions": 0, "duplicates": 0, "unscored": 0, "scored": 0, "positive": 0, "neutral": 0,
            "negative": 0, "nss": None, "nss_se": None}


def test_a_brand_without_data_renders_and_says_so():
    from listener.web.render import render_page

    hours = [{"hour": (AS_OF - timedelta(hours=47 - i)).replace(minute=0).isoformat(), "partial": i == 47,
              "mentions": 0, "scored": 0, "positive": 0, "neutral": 0, "negative": 0, "nss": None, "nss_se": None}
             for i in range(48)]
    name = "Quiet \u202e<i>Brand</i> " + "x" * 500
    view = {"as_of": AS_OF.isoformat(), "generated_at": AS_OF.isoformat(), "data": {"kind": "database"},
            "brands": [{"brand": name, "competitors": [],
                        "mood": {"brand": name, "as_of": AS_OF.isoformat(), "last_hour": _empty_window(),
                                 "last_24h": _empty_window(), "baseline_7d": _empty_window(),
                                 "change_24h_vs_baseline": None},
                        "hourly": hours, "share_of_voice": {"brands": [name], "last_24h": [], "baseline_7d": []},
                        "conversations": {"most_negative": [], "most_positive": []}, "alerts": []}],
            "tracked_brands": [name], "alerts": [], "freshness": [], "labels_queued": 0}
    page = render_page(view, csrf="c", only=None)
    assert "No scored mentions in these windows." in page
    assert "no scored conversation active in the last 24 h" in page
    assert "No open alerts" in page and "No source has stored anything yet." in page
    assert "<i>" not in page and "&lt;i&gt;Brand&lt;/i&gt;" in page
    assert 'value="" data-brand=' in page  # no number where there is none
    empty = render_page({"as_of": AS_OF.isoformat(), "brands": [], "data": {}}, csrf="c")
    assert "No brands yet" in empty


def test_links_are_only_http_and_text_is_made_visible():
    from listener.web.render import ENV, visible_text

    link = ENV.from_string('{% from "macros.html" import link %}{% call link(url) %}t{% endcall %}')
    assert link.render(url="https://x.example/a?b=1&c=2") == \
        '<a href="https://x.example/a?b=1&amp;c=2" rel="noopener noreferrer nofollow" target="_blank">t</a>'
    for url in ("javascript:alert(1)", "JAVASCRIPT:alert(1)", " javascript:alert(1)", "data:text/html,x",
                "vbscript:x", "//evil.example", "http://", "https://a.example/\x00", "http://a b", None, 5):
        assert link.render(url=url) == "t", url
    assert visible_text("a\x00b\x1bc\x7fd\x85e\tf\ng") == "a\u2400b\u241bc\u2421d\ufffde f g"
    assert visible_text("é" * 300, 10) == "é" * 10 + "…"


def test_an_empty_database_without_config_shows_a_hint(tmp_path):
    Store.open(tmp_path / "empty.duckdb").close()
    config = tmp_path / "listener.toml"
    config.write_text('[database]\npath = "empty.duckdb"\n', encoding="utf-8")
    server = Server(config)
    try:
        status, _, page = server.request("GET", "/")
        assert status == 200 and "No brands yet" in page
        status, _, body = server.request("GET", "/api/live.json")
        assert status == 200 and json.loads(body)["brands"] == []
    finally:
        assert server.stop() == 0
