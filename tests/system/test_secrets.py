"""Secrets never leave through anything ``listener`` writes or says (issue 7, part 4).

One module-scoped run plants a distinctive value in every secret the configuration can
name (X bearer token, Reddit client id and secret, Bluesky handle and app password,
Mastodon access token, the alert webhook URL and SMTP password, the live view's access
token, a feed URL's ``?key=``), plus the session tokens the fake platforms hand out in
exchange (Reddit's OAuth access token, Bluesky's JWTs). It then runs every command as
a user would (``python -m listener.cli -v ...`` subprocesses) against fake platforms on
127.0.0.1 that answer properly, with 401, 403 and 500, not in time, not at all
(connection refused), or with a 401 that repeats the credentials it was sent; runs the
daemon for two cycles; delivers alerts (``listener score``) to a webhook and an SMTP
server that fail and that succeed; and talks to ``listener serve`` bound to 0.0.0.0 over
HTTP (on 127.0.0.1: no traffic leaves loopback).

Then it looks for every secret, in every form it could travel in (as is, any case,
URL-encoded, base64 at each alignment, and each 12-character piece of it, so a
truncated copy is found too), in: every stdout and stderr, every file under the run's
folder as raw bytes (databases, snapshots, WAL files, exports, reports, inboxes), every
value of every table of every database and Parquet file read through DuckDB (DuckDB
compresses strings on disk, so raw bytes alone would miss some), and every HTTP answer
of the live view (status line, headers, body). The only places a secret may appear are
what the fake servers received as credentials: those are the platforms', not ours.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import duckdb
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from connectors.base import utc_now
from tests.fakes.bluesky_api import FakeBluesky, post_view
from tests.fakes.hn_api import FakeAlgolia, comment, story
from tests.fakes.http import FakeServer, Reply, Request
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.reddit_api import FakeReddit
from tests.fakes.x_api import FakeXApi, tweet
from tests.system.live_site import http_request
from tests.timing import HANG_GUARD

# -- the planted secrets ------------------------------------------------------------------


def _pieces(kind: str) -> list[str]:
    """Three 12-hex-digit pieces unique to ``kind``: fixed (no randomness in tests), and
    long enough that none turns up by chance in the data."""
    return [hashlib.sha256(f"test_secrets/{kind}/{i}".encode()).hexdigest()[:12] for i in range(3)]


def _planted(kind: str, *, url_safe: bool = False) -> str:
    a, b, c = _pieces(kind)
    # '+', '/' and '=' change under URL-encoding and base64 alphabets: the scan must
    # catch a secret in those forms too. Secrets that must sit in a URL path or query
    # as they are stay URL-safe.
    return f"SECRET-{kind}-{a}-{b}-{c}" if url_safe else f"SECRET-{kind}-{a}+{b}/{c}="


X_BEARER = _planted("x-bearer")
REDDIT_ID = _planted("reddit-client-id", url_safe=True)
REDDIT_SECRET = _planted("reddit-client-secret")
BSKY_HANDLE = "secret-bsky-handle-{}-{}-{}.example.org".format(*_pieces("bsky-handle"))
BSKY_PASSWORD = _planted("bsky-app-password")
MASTODON_TOKEN = _planted("mastodon-token")
WEBHOOK_GOOD = _planted("webhook-good", url_safe=True)
WEBHOOK_BAD = _planted("webhook-bad", url_safe=True)
SMTP_PASSWORD = _planted("smtp-password")
SERVE_TOKEN = _planted("serve-token")
FEED_KEY = _planted("feed-key", url_safe=True)
# What the platforms give back in exchange for the credentials: secrets as well.
REDDIT_ACCESS = _planted("reddit-access-token", url_safe=True)


def _jwt_signature(kind: str) -> str:
    """A JWT's third part: base64url without padding (the client decodes it)."""
    return base64.urlsafe_b64encode(_planted(kind, url_safe=True).encode()).decode().rstrip("=")


BSKY_ACCESS_SIG = _jwt_signature("bsky-access-jwt")
BSKY_REFRESH_SIG = _jwt_signature("bsky-refresh-jwt")

SECRETS: dict[str, str] = {
    "X bearer token": X_BEARER,
    "Reddit client id": REDDIT_ID,
    "Reddit client secret": REDDIT_SECRET,
    "Bluesky handle": BSKY_HANDLE,
    "Bluesky app password": BSKY_PASSWORD,
    "Mastodon access token": MASTODON_TOKEN,
    "webhook URL (succeeding)": WEBHOOK_GOOD,
    "webhook URL (failing)": WEBHOOK_BAD,
    "SMTP password": SMTP_PASSWORD,
    "live view token": SERVE_TOKEN,
    "feed URL key": FEED_KEY,
    "Reddit OAuth access token": REDDIT_ACCESS,
    "Bluesky access JWT": BSKY_ACCESS_SIG,
    "Bluesky refresh JWT": BSKY_REFRESH_SIG,
}

ENV_NAMES = {
    "X": "PLANTED_X_BEARER",
    "REDDIT_ID": "PLANTED_REDDIT_CLIENT_ID",
    "REDDIT_SECRET": "PLANTED_REDDIT_CLIENT_SECRET",
    "BSKY_HANDLE": "PLANTED_BSKY_HANDLE",
    "BSKY_PASSWORD": "PLANTED_BSKY_APP_PASSWORD",
    "MASTODON": "PLANTED_MASTODON_TOKEN",
    "WEBHOOK": "PLANTED_WEBHOOK_URL",
    "SMTP": "PLANTED_SMTP_PASSWORD",
    "SERVE": "PLANTED_SERVE_TOKEN",
}


def _base64_forms(value: str) -> list[str]:
    """The base64 text that stands for ``value`` wherever it sits in an encoded stream:
    for each of the three alignments, the encoding of its whole 3-byte groups (standard
    and URL-safe alphabets)."""
    raw = value.encode()
    forms = []
    for start in range(3):
        chunk = raw[start:]
        chunk = chunk[: len(chunk) - len(chunk) % 3]
        if len(chunk) >= 9:
            forms += [base64.b64encode(chunk).decode(), base64.urlsafe_b64encode(chunk).decode()]
    return forms


def needles(value: str) -> dict[str, str]:
    """Every form of a secret the scan looks for (lower-cased; haystacks are too)."""
    forms = {
        "as is": value,
        "URL-encoded": quote(value, safe=""),
        "URL-encoded (path)": quote(value),
        "form-encoded": quote_plus(value),
    }
    for i, form in enumerate(_base64_forms(value)):
        forms[f"base64 #{i}"] = form
    # A truncated or re-encoded copy still holds one of these pieces.
    pieces = re.findall(r"[0-9a-f]{12}", value) or [value[i:i + 16] for i in range(0, len(value) - 15, 16)]
    for piece in pieces:
        forms[f"piece {piece}"] = piece
    return {name: form.lower() for name, form in forms.items()}


NEEDLES: list[tuple[str, str, bytes]] = [
    (secret, form, text.encode()) for secret, value in SECRETS.items() for form, text in needles(value).items()
]


ANY_NEEDLE = "|".join(re.escape(needle) for needle in sorted({needle.decode() for _, _, needle in NEEDLES}))
"""One regular expression matching any needle: DuckDB's RE2 reads each value once
for all of them, where a contains() per needle read it 113 times (37 s against 0.5 s on
the demo's database)."""


def find_secrets(data: str | bytes) -> list[str]:
    """'secret (form)' for every planted secret found in ``data``, in any case."""
    blob = (data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data).lower()
    return sorted({f"{secret} ({form})" for secret, form, needle in NEEDLES if needle in blob})


# -- fake platforms and channels -----------------------------------------------------------


class FakeRedditPlanted(FakeReddit):
    """FakeReddit handing out distinctive OAuth access tokens."""

    def _token_reply(self, request: Request) -> Reply:
        reply = super()._token_reply(request)
        if isinstance(reply.body, dict) and "access_token" in reply.body:
            issued = reply.body["access_token"]
            planted = f"{REDDIT_ACCESS}-{issued}"
            self.tokens.discard(issued)
            self.tokens.add(planted)
            reply.body = {**reply.body, "access_token": planted}
        return reply


def _with_signature(jwt: str, signature: str) -> str:
    return jwt.rsplit(".", 1)[0] + "." + signature


class Inbox:
    """An aiosmtpd handler: keeps messages and logins, accepts one password."""

    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.messages: list[Any] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == self.password, handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FAULTS = ("401", "403", "500", "timeout", "echo", "refused")
FAULT_TIMEOUT = 0.5
"""Client timeout in the fault configs; the 'timeout' peer answers after twice that."""


def fault_reply(kind: str, request: Request) -> Reply:
    """A platform-shaped refusal, the same whatever was asked (every client finds the
    keys it reads: X's problem JSON, Reddit's, Mastodon's, Bluesky's XRPC error).
    'echo' is a 401 that repeats what it was sent, credentials included, as debugging
    proxies and error pages do: the platform's message must not carry them on."""
    if kind == "timeout":
        return Reply(200, {}, delay=2 * FAULT_TIMEOUT)
    if kind == "echo":
        text = "refused: " + json.dumps({"authorization": request.headers.get("authorization"),
                                         "body": request.body.decode("latin-1"), "path": request.path,
                                         "query": request.query})
        return Reply(401, {"title": text, "detail": text, "type": "about:blank", "status": 401, "message": text,
                           "error": text})
    status = int(kind)
    text = {401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error"}[status]
    error = {401: "AuthenticationRequired", 403: "Forbidden", 500: "InternalServerError"}[status]
    return Reply(status, {"title": text, "detail": text, "type": "about:blank", "status": status,
                          "message": text, "error": error})


@dataclass
class Peers:
    x: FakeXApi
    reddit: FakeRedditPlanted
    bluesky_server: FakeServer
    bluesky: FakeBluesky
    mastodon_one: FakeMastodon
    mastodon_two: FakeMastodon
    hn: FakeServer
    feeds: FakeServer
    faults: dict[str, FakeServer]
    refused_url: str
    hook_good: FakeServer
    hook_bad: FakeServer
    smtp_good: Inbox
    smtp_bad: Inbox
    smtp_good_port: int
    smtp_bad_port: int

    @property
    def feed_url(self) -> str:
        return f"{self.feeds.url}/feed.xml?key={FEED_KEY}&format=rss"


def _rss(now: datetime) -> bytes:
    from email.utils import format_datetime

    guids = [  # the shapes whose ids are made from the feed's address
        ('<guid isPermaLink="false">1000</guid>', "<link>https://news.example/brewly/0</link>"),
        ("<guid>1001</guid>", "<link>https://news.example/brewly/1</link>"),  # relative: resolved
        ("<guid>#brewly-2</guid>", "<link>#brewly-2</link>"),  # fragment-only: resolved on the feed's URL
        ('<guid isPermaLink="false">#brewly-3</guid>', ""),
        ("", "<link>?p=4</link>"),  # no guid, a query-relative link
        ("<guid>https://news.example/brewly/5</guid>", "<link>https://news.example/brewly/5</link>"),
    ]
    items = []
    for i, (guid, link) in enumerate(guids):
        at = format_datetime(now - timedelta(hours=3 * i + 1), usegmt=True)
        items.append(f"<item><title>Brewly news {i}</title>{guid}{link}<description>Brewly coffee is lovely, "
                     f"item {i}</description><pubDate>{at}</pubDate></item>")
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>News</title><language>en</language>'
            f'{"".join(items)}</channel></rss>').encode()


def _answering(server: FakeServer, reply: Callable[[Request], Reply]) -> Callable[..., Reply]:
    """A tamper answering every request with ``reply(request)``, recording it (routes
    record only what they answer)."""
    def tamper(request: Request, answer: Callable[[], Reply]) -> Reply:
        server.requests.append(request)
        return reply(request)
    return tamper


def start_peers(stack: ExitStack, now: datetime) -> Peers:
    x = stack.enter_context(FakeXApi(utc_now, bearer_token=X_BEARER, rate_limit=10_000))
    x.add_user("7", "ann")
    x.add(*[tweet(now - timedelta(hours=20) + timedelta(minutes=37 * i), f"brewly is great, post {i}",
                  author_id="7", sequence=i) for i in range(30)])

    reddit = stack.enter_context(FakeRedditPlanted(now=now, client_id=REDDIT_ID, client_secret=REDDIT_SECRET))
    for i in range(6):
        at = now - timedelta(hours=10) + timedelta(minutes=50 * i)
        reddit.add_submission(f"s{i}", f"Brewly thoughts {i}", at=at, selftext="is brewly any good?")
        reddit.add_comment(f"s{i}", f"c{i}", f"brewly rocks {i}", at=at + timedelta(minutes=5))

    bluesky_server = stack.enter_context(FakeServer())
    bluesky = FakeBluesky(bluesky_server, [post_view(f"3k{i:03d}", f"brewly post {i}",
                                                     now - timedelta(hours=12) + timedelta(minutes=30 * i))
                                           for i in range(12)],
                          handle=BSKY_HANDLE, password=BSKY_PASSWORD)
    bluesky.access_jwt = _with_signature(bluesky.access_jwt, BSKY_ACCESS_SIG)
    bluesky.refresh_jwt = _with_signature(bluesky.refresh_jwt, BSKY_REFRESH_SIG)

    mastodon_one = stack.enter_context(FakeMastodon("one.example", token=MASTODON_TOKEN))
    mastodon_two = stack.enter_context(FakeMastodon("two.example", offset=7))  # anonymous: a token sent here is refused
    for i in range(8):
        status = mastodon_one.post(now - timedelta(hours=8) + timedelta(minutes=40 * i),
                                   f"<p>#brewly is nice, brewly {i}</p>", tags=["brewly"])
        if i % 2:
            mastodon_two.share(status, tags=["brewly"])

    hn = stack.enter_context(FakeServer())
    stamp = int(now.timestamp())
    FakeAlgolia([story(1, stamp - 20 * 3600, "Brewly launches")] +
                [comment(100 + i, stamp - 19 * 3600 + 900 * i, f"brewly {i}", story_id=1) for i in range(10)]
                ).install(hn)

    feeds = stack.enter_context(FakeServer())
    feeds.route("GET", "/feed.xml", Reply(200, _rss(now), headers={"Content-Type": "application/rss+xml"}))

    faults = {}
    for kind in FAULTS[:-1]:
        faults[kind] = stack.enter_context(FakeServer())
        faults[kind].tamper = _answering(faults[kind], lambda request, kind=kind: fault_reply(kind, request))

    hook_good = stack.enter_context(FakeServer())
    hook_good.route("POST", f"/hooks/{WEBHOOK_GOOD}", Reply(200, "ok"))
    hook_bad = stack.enter_context(FakeServer())
    # A failing proxy that names the request it could not pass on.
    hook_bad.tamper = _answering(hook_bad, lambda request: Reply(500, f"upstream failed for {request.method} "
                                                                      f"{request.path}"))

    smtp_good, smtp_bad = Inbox(SMTP_PASSWORD), Inbox("another password entirely")
    ports = []
    for inbox in (smtp_good, smtp_bad):
        port = free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                                auth_require_tls=False)
        controller.start()
        stack.callback(controller.stop)
        ports.append(port)
    refused_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connections are refused
    return Peers(x, reddit, bluesky_server, bluesky, mastodon_one, mastodon_two, hn, feeds, faults, refused_url,
                 hook_good, hook_bad, smtp_good, smtp_bad, *ports)


# -- configuration ---------------------------------------------------------------------------

BRANDS = """
[[brands]]
name = "Brewly"
terms = ["brewly"]
hashtags = ["#brewly"]
competitors = ["Beanhaus"]

[[brands]]
name = "Beanhaus"
terms = ["beanhaus"]
"""


def sources_toml(x: str, reddit: str, bluesky: str, mastodon: list[str], hn: str, feed: str, *,
                 timeout: float = 10.0) -> str:
    return f"""
[sources.x]
every_minutes = 1
bearer_token_env = "{ENV_NAMES['X']}"
base_url = "{x}"
max_pages_per_run = 2
timeout_seconds = {timeout}

[sources.reddit]
every_minutes = 1
client_id_env = "{ENV_NAMES['REDDIT_ID']}"
client_secret_env = "{ENV_NAMES['REDDIT_SECRET']}"
base_url = "{reddit}"
auth_url = "{reddit}"
subreddits = ["coffee"]
request_timeout = {timeout}

[sources.bluesky]
every_minutes = 1
handle_env = "{ENV_NAMES['BSKY_HANDLE']}"
app_password_env = "{ENV_NAMES['BSKY_PASSWORD']}"
base_url = "{bluesky}"
timeout_seconds = {timeout}

[sources.mastodon]
every_minutes = 1
instances = {json.dumps(mastodon)}
access_token_env = "{ENV_NAMES['MASTODON']}"
timeout_seconds = {timeout}

[sources.hackernews]
every_minutes = 1
base_url = "{hn}"
history_days = 2
timeout_seconds = {timeout}

[sources.feeds]
every_minutes = 1
urls = ["{feed}"]
timeout_seconds = {timeout}
"""


def alerts_toml(peers: Peers, smtp_port: int, *, max_age_hours: int = 24) -> str:
    return f"""
[alerts]
deliver_max_age_hours = {max_age_hours}

[alerts.webhook]
url_env = "{ENV_NAMES['WEBHOOK']}"
timeout_seconds = 5.0
attempts = 2

[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
username = "listener"
password_env = "{ENV_NAMES['SMTP']}"
from = "listener@brewly.example"
to = ["brand-team@brewly.example"]
timeout_seconds = 5.0
attempts = 2
"""


def good_config(peers: Peers, database: str) -> str:
    return (f'[database]\npath = "{database}"\n' + BRANDS
            + sources_toml(peers.x.url, peers.reddit.url, peers.bluesky_server.url,
                           [peers.mastodon_one.url, peers.mastodon_two.url], peers.hn.url, peers.feed_url)
            + "\n[hourly]\nminute = 5\n" + alerts_toml(peers, peers.smtp_good_port))


def fault_config(peers: Peers, database: str, kinds: dict[str, str]) -> str:
    """Every source pointed at the fault peer named for it in ``kinds``."""
    url = {name: peers.refused_url if kind == "refused" else peers.faults[kind].url for name, kind in kinds.items()}
    return (f'[database]\npath = "{database}"\n[[brands]]\nname = "Brewly"\nterms = ["brewly"]\n'
            + sources_toml(url["x"], url["reddit"], url["bluesky"], [url["mastodon"]], url["hackernews"],
                           f"{url['feeds']}/feed.xml?key={FEED_KEY}", timeout=FAULT_TIMEOUT)
            + "\n[hourly]\nenabled = false\n")


# -- running commands ----------------------------------------------------------------------------


@dataclass
class Finished:
    what: str
    argv: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float
    expected: tuple[int, ...]


@dataclass
class Exchange:
    """One HTTP request to the live view and its whole answer."""

    what: str
    status: int
    head: str
    body: bytes

    def header(self, name: str) -> str | None:
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


@dataclass
class World:
    root: Path
    env: dict[str, str]
    peers: Peers
    finished: list[Finished] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    inputs: set[Path] = field(default_factory=set)
    facts: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def write_input(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.inputs.add(path)
        return path

    def run(self, what: str, args: list[str], *, expect: tuple[int, ...] = (0,), env: dict[str, str] | None = None,
            stdin: str | None = None, timeout: float = HANG_GUARD) -> Finished:
        argv = [sys.executable, "-m", "listener.cli", *args]
        started = time.perf_counter()
        done = subprocess.run(argv, check=False, cwd=self.root, env=env or self.env, input=stdin,
                              capture_output=True, text=True, timeout=timeout)
        result = Finished(what, argv, done.returncode, done.stdout, done.stderr, time.perf_counter() - started, expect)
        with self.lock:
            self.finished.append(result)
        return result

    def listener(self, what: str, *args: str, config: Path | None = None, db: Path | None = None,
                 **kwargs: Any) -> Finished:
        """``listener -v [--config C] [--db D] ARGS``."""
        head = ["-v"] + (["--config", str(config)] if config else []) + (["--db", str(db)] if db else [])
        return self.run(what, [*head, *args], **kwargs)


class Background:
    """A long-running command (the daemon, the live view); its output read as it comes."""

    def __init__(self, world: World, what: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.world, self.what = world, what
        self.argv = [sys.executable, "-m", "listener.cli", *args]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, cwd=world.root, env=env or world.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        self.out: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stderr, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stdout, False), daemon=True).start()

    def _pump(self, stream: Any, is_err: bool) -> None:
        for line in stream:
            (self.err if is_err else self.out).append(line)
            if is_err:
                self.lines.put(line)

    def wait_until(self, done: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = "".join(self.err)
            if done(text):
                return text
            if self.proc.poll() is not None and self.lines.empty():
                time.sleep(0.2)
                text = "".join(self.err)
                if done(text):
                    return text
                raise AssertionError(f"{self.what} exited {self.proc.returncode}:\n{text[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.what}: not done within {timeout}s:\n{text[-4000:]}")
            try:
                self.lines.get(timeout=0.2)
            except queue.Empty:
                pass

    def stop(self, expect: tuple[int, ...] = (0,)) -> Finished:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        time.sleep(0.1)  # let the pumps read the last lines
        result = Finished(self.what, self.argv, code, "".join(self.out), "".join(self.err),
                          time.perf_counter() - self.started, expect)
        with self.world.lock:
            self.world.finished.append(result)
        return result


# -- the run ---------------------------------------------------------------------------------------

AS_OF = (utc_now() - timedelta(days=2)).replace(minute=0, second=0, microsecond=0).isoformat()
"""The demo's end: two days ago, so that its one alert (Brewly's mood dip, about nine
days before its end) is recent enough to be delivered (alerts.deliver_max_age_hours)."""


def _sha256(*paths: Path) -> dict[str, str | None]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths}


def _pull_commands(world: World, config: Path) -> None:
    world.listener("pull --source x", "pull", "--source", "x", config=config)
    world.listener("pull (every source)", "pull", config=config)
    world.listener("pull --json (every source)", "pull", "--json", config=config)


def _analyst_commands(world: World, config: Path) -> None:
    """Everything a user does with a database, on the one the good pulls filled."""
    now = utc_now()
    jsonl = "\n".join(json.dumps({"id": f"survey-{i}", "created_at": (now - timedelta(hours=i + 1)).isoformat(),
                                  "text": f"brewly survey answer {i}: fine coffee", "author": f"resp{i}",
                                  "url": f"https://survey.example/{i}"}) for i in range(5))
    survey = world.write_input("inputs/survey.jsonl", jsonl + "\n")
    world.listener("import", "import", str(survey), "--source", "survey", "--json", config=config)

    days = [(now - timedelta(days=d)).date() for d in range(12, 0, -1)]
    spend = world.write_input(
        "inputs/spend.csv", "date,platform,campaign_id,campaign_name,channel,brand,currency,spend\n"
        + "".join(f"{d},google_ads,c-1,Brewly Mornings,search,Brewly,USD,100.00\n" for d in days))
    plan = world.write_input("inputs/plan.csv", "campaign_id,brand,flight_start,flight_end,washout_days,primary_kpi,"
                             "goal_direction,goal_value,competitors,campaign_tags,account_timezone\n"
                             f"c-1,Brewly,{days[6]},{days[9]},1,nss,increase,5.0,Beanhaus,,UTC\n")
    world.listener("campaigns import", "campaigns", "import", str(spend), "--plan", str(plan), "--json", config=config)
    world.listener("campaigns list", "campaigns", "list", config=config)
    world.listener("score", "score", config=config)
    world.listener("mood", "mood", config=config)
    world.listener("mood --json", "mood", "--json", config=config)
    world.listener("status", "status", config=config)
    world.listener("status --json", "status", "--json", config=config)
    world.listener("sql cursors", "sql", "SELECT * FROM cursors", "--format", "csv", config=config)
    mentions = world.listener("sql mentions", "sql", "SELECT source, id, brand, url, author, raw FROM mentions",
                              "--format", "json", config=config)
    world.listener("sql shell", "sql", config=config, stdin=".tables\n.schema cursors\nSELECT * FROM cursors;\n"
                   "SELECT * FROM v_conversations;\n.quit\n")
    world.listener("export parquet", "export", "exports/parquet", "--format", "parquet", "--json", config=config)
    world.listener("export csv", "export", "exports/csv", "--format", "csv", config=config)
    rows = json.loads(mentions.stdout) if mentions.code == 0 else []
    world.facts["mention_sources"] = sorted({r["source"] for r in rows})
    for source in ("x", "feeds"):
        row = next((r for r in rows if r["source"] == source), None)
        if row is not None:
            world.listener(f"label ({source})", "label", f"{source}:{row['id']}", "negative", "--by", "tester",
                           config=config)
    world.listener("accuracy --json", "accuracy", "--json", config=config)
    for fmt in ("html", "md"):
        world.listener(f"report --format {fmt}", "report", "--format", fmt, "--out", f"reports/report.{fmt}",
                       config=config)
    world.listener("report --format json", "report", "--format", "json", config=config)


def _serve(world: World, config: Path, database: Path) -> None:
    """The live view bound beyond loopback: refused without a token, and with one,
    every request checked; nothing changes the database."""
    no_token_env = {k: v for k, v in world.env.items() if k != ENV_NAMES["SERVE"]}
    world.facts["serve_refused"] = world.listener(
        "serve --host 0.0.0.0 without a token", "serve", "--host", "0.0.0.0", "--port", "0",
        "--token-env", ENV_NAMES["SERVE"], config=config, env=no_token_env, expect=(2,))
    world.facts["serve_refused_empty"] = world.listener(
        "serve --host 0.0.0.0 with an empty token", "serve", "--host", "0.0.0.0", "--port", "0",
        "--token-env", "PLANTED_EMPTY", config=config, env={**world.env, "PLANTED_EMPTY": ""}, expect=(2,))
    before = _sha256(database, database.with_name(database.name + ".wal"))
    inbox = database.with_name(database.stem + ".labels-inbox.jsonl")
    inbox_before = inbox.read_bytes() if inbox.exists() else b""
    server = Background(world, "serve --host 0.0.0.0 with the token",
                        ["-v", "--config", str(config), "serve", "--host", "0.0.0.0", "--port", "0",
                         "--token-env", ENV_NAMES["SERVE"], "--refresh", "30"])
    try:
        text = server.wait_until(lambda t: "Serving the live view at" in t or "cannot listen" in t, HANG_GUARD)
        match = re.search(r"Serving the live view at http://([^/\s]+):(\d+)/", text)
        if match is None:
            pytest.fail(f"the live view could not bind beyond loopback here: {text[-2000:]}")
        world.facts["serve_bound"] = match.group(1)
        _talk_to_the_view(world, int(match.group(2)))
    finally:
        server.stop()
    world.facts["serve_db_before"] = before
    world.facts["serve_db_after"] = _sha256(database, database.with_name(database.name + ".wal"))
    world.facts["inbox_added"] = (inbox.read_bytes() if inbox.exists() else b"")[len(inbox_before):]
    world.facts["inbox_kept"] = (inbox.read_bytes() if inbox.exists() else b"").startswith(inbox_before)


def _request(world: World, port: int, what: str, method: str, path: str, headers: dict[str, str] | None = None,
             body: bytes | None = None) -> Exchange:
    """One request over its own connection to 127.0.0.1 (the server is bound to every
    address; traffic stays on loopback). The Host names another address, as a browser
    elsewhere on the network would."""
    response = http_request(port, method, path, headers, body, host=f"192.0.2.2:{port}", timeout=30)
    head = f"HTTP/1.1 {response.status} {response.reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in response.headers)
    exchange = Exchange(what, response.status, head, response.body)
    with world.lock:
        world.exchanges.append(exchange)
    return exchange


def _raw_request(world: World, port: int, what: str, payload: bytes) -> Exchange:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    if data.startswith(b"HTTP/"):
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
    else:  # an answer in HTTP/0.9 style: no status line, no headers
        head, body, status = b"", data, 0
    exchange = Exchange(what, status, head.decode("latin-1"), body)
    with world.lock:
        world.exchanges.append(exchange)
    return exchange


def _talk_to_the_view(world: World, port: int) -> None:
    bearer = {"Authorization": f"Bearer {SERVE_TOKEN}"}
    wrong = {"Authorization": f"Bearer {SERVE_TOKEN[:-4]}nope"}
    r = world.facts.setdefault("responses", {})
    for path in ("/", "/api/live.json", "/brand/Brewly", "/label", "/nowhere"):
        r[f"GET {path} without token"] = _request(world, port, f"GET {path} without token", "GET", path).status
        r[f"GET {path} wrong token"] = _request(world, port, f"GET {path} wrong token", "GET", path, wrong).status
    r["GET /?token=wrong"] = _request(world, port, "GET /?token=wrong", "GET",
                                      "/?" + urlencode({"token": SERVE_TOKEN + "x"})).status
    r["GET / wrong cookie"] = _request(world, port, "GET / wrong cookie", "GET", "/",
                                       {"Cookie": "listener_session=" + "0" * 64}).status
    page = _request(world, port, "GET / with token", "GET", "/", bearer)
    r["GET / with token"] = page.status
    for path in ("/api/live.json", "/brand/Brewly", "/brand/Beanhaus", "/nowhere", "/brand/Nobody"):
        r[f"GET {path} with token"] = _request(world, port, f"GET {path} with token", "GET", path, bearer).status
    r["HEAD / with token"] = _request(world, port, "HEAD / with token", "HEAD", "/", bearer).status
    # The token in the address: a redirect that drops it, with a cookie that is not it.
    entry = _request(world, port, "GET /api/live.json?token=", "GET",
                     "/api/live.json?" + urlencode({"token": SERVE_TOKEN, "x": "1"}))
    r["GET ?token=right"] = entry.status
    world.facts["token_redirect"] = entry
    cookie = (entry.header("Set-Cookie") or "").split(";")[0]
    r["GET / with the cookie"] = _request(world, port, "GET / with the cookie", "GET", "/", {"Cookie": cookie}).status
    # Methods that are not GET/HEAD/POST, with and without the token.
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        r[f"{method} / with token"] = _request(world, port, f"{method} / with token", method, "/", bearer,
                                               b"x=1").status
        r[f"{method} / without token"] = _request(world, port, f"{method} / without token", method, "/",
                                                  None, b"x=1").status
    # A label: the page's own form, then without its pieces.
    html_page = page.body.decode("utf-8", "replace")
    form = re.search(r'<form method="post" action="/label"[^>]*>(.*?)</form>', html_page, re.DOTALL)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(1))) if form else {}
    world.facts["label_form"] = fields
    import html as html_module

    fields = {k: html_module.unescape(v) for k, v in fields.items()}
    good = {**fields, "label": "negative"}
    form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    posts = {
        "POST /label without token": ({**form_headers}, good),
        "POST /label wrong token": ({**form_headers, **wrong}, good),
        "POST /label?token= (query is for GET)": ({**form_headers}, good),
        "POST /label without csrf": ({**form_headers, **bearer}, {k: v for k, v in good.items() if k != "csrf"}),
        "POST /label wrong csrf": ({**form_headers, **bearer}, {**good, "csrf": "x" * 43}),
        "POST /label cross-origin": ({**form_headers, **bearer, "Origin": "http://evil.example"}, good),
        "POST / with token": ({**form_headers, **bearer}, good),
        "POST /api/live.json with token": ({**form_headers, **bearer}, good),
        "POST /label with token and csrf": ({**form_headers, **bearer}, good),
    }
    for what, (headers, data) in posts.items():
        path = "/label" if "/label" in what else what.split()[1]
        if "?token=" in what:
            path = "/label?" + urlencode({"token": SERVE_TOKEN})
        r[what] = _request(world, port, what, "POST", path, headers, urlencode(data).encode()).status
    # A request line the server cannot parse, carrying the token: the error answer and
    # the log must not repeat it.
    r["malformed request line with token"] = _raw_request(
        world, port, "malformed request line with token",
        f"GET /?token={quote(SERVE_TOKEN, safe='')} HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n".encode()).status
    r["bad request version with token"] = _raw_request(
        world, port, "bad request version with token",
        f"GET / HTTP/{quote(SERVE_TOKEN, safe='')}\r\nHost: 127.0.0.1\r\n\r\n".encode()).status
    r["token as header name"] = _raw_request(
        world, port, "token in a broken header",
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SERVE_TOKEN}\r\nX-{SERVE_TOKEN}\r\n\r\n"
        .encode()).status


def _daemon(world: World, config: Path, *, cycles: int, hourly: bool = True, label_config: Path | None = None) -> None:
    """``listener run`` until every source has pulled ``cycles`` times, then SIGTERM."""
    names = ("x", "reddit", "bluesky", "mastodon", "hackernews", "feeds")
    daemon = Background(world, f"run ({config.stem})", ["-v", "--config", str(config), "run"])
    try:
        def pulled(text: str, n: int) -> bool:
            return all(text.count(f"pull source={s} brand=Brewly ") + text.count(f"source {s} parked") >= n
                       for s in names)

        daemon.wait_until(lambda t: pulled(t, 1) and (not hourly or "hourly hours=" in t), HANG_GUARD)
        if label_config is not None:
            world.listener("status --json (daemon running)", "status", "--json", config=label_config)
            world.listener("label (daemon running: queued)", "label", f"x:{world.peers.x.tweets[0]['id']}",
                           "positive", config=label_config)
        if cycles > 1:
            daemon.wait_until(lambda t: pulled(t, cycles), HANG_GUARD)
    finally:
        world.facts[f"daemon {config.stem}"] = daemon.stop()


def _faults(world: World, peers: Peers) -> None:
    """Every source against peers that refuse (401, 403), fail (500) or never answer."""
    def one(kind: str) -> None:
        config = world.write_input(f"faults-{kind}.toml", fault_config(
            peers, f"faults-{kind}.duckdb", {s: kind for s in ("x", "reddit", "bluesky", "mastodon", "hackernews",
                                                              "feeds")}))
        as_json = ["--json"] if kind in ("403", "500") else []
        world.listener(f"pull ({kind} everywhere)", "pull", *as_json, config=config, expect=(1,))
        if kind in ("401", "500"):
            world.listener(f"status ({kind})", "status", *(["--json"] if kind == "500" else []), config=config)

    with ThreadPoolExecutor(max_workers=len(FAULTS)) as pool:
        for future in [pool.submit(one, kind) for kind in FAULTS]:
            future.result()


def _demo_and_alerts(world: World, peers: Peers, earlier_demo: Path) -> None:
    """The demo, run again over an earlier demo's folder (the suite's shared run, ending
    on another day), then its alert delivered through channels that fail, then succeed."""
    shutil.copytree(earlier_demo, world.root / "demo")
    world.facts["demo"] = world.listener("demo", "demo", "--dir", "demo", "--as-of", AS_OF, "--json")
    database = world.root / "demo" / "listener.duckdb"
    failing = world.write_input("alerts-failing.toml", '[database]\npath = "demo/listener.duckdb"\n'
                                + alerts_toml(peers, peers.smtp_bad_port, max_age_hours=24 * 30))
    succeeding = world.write_input("alerts-succeeding.toml", '[database]\npath = "demo/listener.duckdb"\n'
                                   + alerts_toml(peers, peers.smtp_good_port, max_age_hours=24 * 30))
    # 'listener score' runs the hourly stage, then alerting: detection and delivery.
    world.listener("score: alert delivery (channels failing)", "score", config=failing,
                   env={**world.env, ENV_NAMES["WEBHOOK"]: f"{peers.hook_bad.url}/hooks/{WEBHOOK_BAD}"})
    world.listener("score: alert delivery (channels working)", "score", config=succeeding,
                   env={**world.env, ENV_NAMES["WEBHOOK"]: f"{peers.hook_good.url}/hooks/{WEBHOOK_GOOD}"})
    world.facts["alerts_json"] = world.listener("alerts --json", "alerts", "--json", db=database)
    world.listener("alerts --open --since 30d", "alerts", "--open", "--since", "30d", db=database)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, demo_run: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("secrets")
    started = time.perf_counter()
    with ExitStack() as stack:
        now = utc_now()
        peers = start_peers(stack, now)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTENER_", "PLANTED_"))}
        env.update({
            ENV_NAMES["X"]: X_BEARER, ENV_NAMES["REDDIT_ID"]: REDDIT_ID, ENV_NAMES["REDDIT_SECRET"]: REDDIT_SECRET,
            ENV_NAMES["BSKY_HANDLE"]: BSKY_HANDLE, ENV_NAMES["BSKY_PASSWORD"]: BSKY_PASSWORD,
            ENV_NAMES["MASTODON"]: MASTODON_TOKEN, ENV_NAMES["SMTP"]: SMTP_PASSWORD, ENV_NAMES["SERVE"]: SERVE_TOKEN,
            ENV_NAMES["WEBHOOK"]: f"{peers.hook_good.url}/hooks/{WEBHOOK_GOOD}",
        })
        w = World(root, env, peers)
        config = w.write_input("listener.toml", good_config(peers, "listener.duckdb"))
        daemon_config = w.write_input("daemon.toml", good_config(peers, "daemon.duckdb"))
        faulty_daemon = w.write_input("daemon-faults.toml", fault_config(
            peers, "daemon-faults.duckdb",
            {"x": "401", "reddit": "403", "bluesky": "500", "mastodon": "timeout", "hackernews": "500",
             "feeds": "401"}))

        def main_line() -> None:
            (root / "init").mkdir()
            (root / "reports").mkdir()
            w.listener("init", "init", "init/listener.toml")
            _pull_commands(w, config)
            _analyst_commands(w, config)
            _serve(w, config, root / "listener.duckdb")

        with ThreadPoolExecutor(max_workers=5) as pool:
            jobs = [pool.submit(main_line), pool.submit(_demo_and_alerts, w, peers, demo_run.directory), pool.submit(_faults, w, peers),
                    pool.submit(_daemon, w, daemon_config, cycles=2, label_config=daemon_config),
                    pool.submit(_daemon, w, faulty_daemon, cycles=1, hourly=False)]
            for job in jobs:
                job.result()
        w.facts["seconds"] = time.perf_counter() - started
        yield w


# -- scanning ------------------------------------------------------------------------------------------


def _tables(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, list[str]]]:
    rows = conn.execute(
        "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_catalog, table_schema, table_name) "
        "WHERE t.table_type = 'BASE TABLE' AND c.table_catalog = current_database() "
        "ORDER BY c.table_schema, c.table_name, c.ordinal_position").fetchall()
    tables: dict[str, list[str]] = {}
    for schema, table, column in rows:
        tables.setdefault(f'"{schema}"."{table}"', []).append(column)
    return list(tables.items())


def _values_with_secrets(conn: duckdb.DuckDBPyConnection, relation: str, columns: list[str]) -> list[str]:
    """Rows of ``relation`` (all columns as text, lower-cased) holding any needle."""
    joined = ", ".join(f'coalesce(CAST("{c}" AS VARCHAR), \'\')' for c in columns)
    query = (f"SELECT _row FROM (SELECT lower(concat_ws(chr(31), {joined})) AS _row FROM {relation}) "
             "WHERE regexp_matches(_row, ?)")
    return [row[0] for row in conn.execute(query, [ANY_NEEDLE]).fetchall()]


def scan_database(path: Path) -> list[str]:
    found = []
    with duckdb.connect(str(path), read_only=True) as conn:
        for relation, columns in _tables(conn):
            for row in _values_with_secrets(conn, relation, columns):
                found.append(f"{path.name} {relation}: {find_secrets(row)} in {row[:300]!r}")
    return found


def scan_parquet(path: Path) -> list[str]:
    with duckdb.connect() as conn:
        relation = f"read_parquet('{path}')"
        columns = [d[0] for d in conn.execute(f"SELECT * FROM {relation} LIMIT 0").description]
        rows = _values_with_secrets(conn, relation, columns)
    return [f"{path.name}: {find_secrets(row)} in {row[:300]!r}" for row in rows]


def _is_duckdb(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(12)[8:12] == b"DUCK"


# -- the tests -----------------------------------------------------------------------------------------


def test_the_scan_finds_a_secret_in_every_form_it_looks_for():
    value = SMTP_PASSWORD
    samples = {
        "as is": f"xx{value}yy",
        "upper case": value.upper(),
        "URL-encoded": "a=" + quote(value, safe=""),
        "form-encoded": quote_plus(value),
        "truncated": value[:40],
        "base64 (AUTH PLAIN)": base64.b64encode(f"\0listener\0{value}".encode()).decode(),
        "base64 (Basic)": base64.b64encode(f"{REDDIT_ID}:{REDDIT_SECRET}".encode()).decode(),
        "base64 (URL-safe, shifted)": base64.urlsafe_b64encode(b"ab" + value.encode()).decode(),
        "JSON": json.dumps({"error": value}),
    }
    for name, text in samples.items():
        assert find_secrets(text), f"the scan misses a secret written {name}"
        assert find_secrets(text.encode()), f"the scan misses a secret written {name} (bytes)"
    clean = "nothing to see, SECRET- alone is not a secret, 0123456789ab neither"
    assert find_secrets(clean) == []
    # The same through DuckDB, as stored values are scanned: each sample, and every needle
    # in upper case between other text, is found; the clean text is not.
    stored = [*samples.values(), *(f"x{needle.decode().upper()}y" for _, _, needle in NEEDLES)]
    with duckdb.connect() as conn:
        conn.execute("CREATE TABLE t (n INTEGER, v VARCHAR)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate([clean, *stored])))
        found = _values_with_secrets(conn, "t", ["n", "v"])
    assert len(found) == len(stored) and not any(clean in row for row in found)


def test_every_command_ran_and_ended_as_expected(world):
    commands = {f.what for f in world.finished}
    for expected in ("init", "demo", "pull --source x", "pull (every source)", "pull --json (every source)",
                     "import", "campaigns import", "campaigns list", "score", "mood", "mood --json", "status",
                     "status --json", "sql cursors", "sql mentions", "sql shell", "export parquet", "export csv",
                     "label (x)", "label (feeds)", "accuracy --json", "report --format html", "report --format md",
                     "report --format json", "alerts --json", "alerts --open --since 30d",
                     "score: alert delivery (channels failing)", "score: alert delivery (channels working)",
                     "serve --host 0.0.0.0 with the token", "run (daemon)", "run (daemon-faults)",
                     *(f"pull ({kind} everywhere)" for kind in FAULTS)):
        assert expected in commands, f"{expected!r} did not run"
    wrong = [f"{f.what}: exit {f.code}, expected {f.expected}\n{f.stderr[-3000:]}" for f in world.finished
             if f.code not in f.expected]
    assert not wrong, "\n\n".join(wrong)
    crashes = [f"{f.what}:\n{f.stderr[-3000:]}" for f in world.finished if "Traceback" in f.stderr]
    assert not crashes, "\n\n".join(crashes)
    # Every source collected through the planted credentials, and every fault was met.
    stored = set(world.facts["mention_sources"])
    assert {"x", "reddit", "bluesky", "mastodon", "hackernews", "feeds", "survey"} <= stored
    faulty = [f for f in world.finished if f.what.startswith("pull (")]
    for f in faulty:
        for source in ("x", "reddit", "bluesky", "mastodon", "hackernews", "feeds"):
            assert source in f.stdout + f.stderr, f"{f.what}: no word of {source}"


def test_the_credentials_reached_the_platforms_and_only_theirs(world):
    """The scan is not vacuous: every planted credential was really used."""
    peers: Peers = world.peers
    assert any(r.headers.get("authorization") == f"Bearer {X_BEARER}" for r in peers.x.server.requests)
    basic = base64.b64encode(f"{REDDIT_ID}:{REDDIT_SECRET}".encode()).decode()
    assert any(r.headers.get("authorization") == f"Basic {basic}" for r in peers.reddit.requests)
    assert any(r.headers.get("authorization", "").startswith(f"bearer {REDDIT_ACCESS}") for r in peers.reddit.requests)
    sessions = [json.loads(r.body) for r in peers.bluesky_server.requests if r.path.endswith("createSession")]
    assert {"identifier": BSKY_HANDLE, "password": BSKY_PASSWORD}.items() <= sessions[0].items()
    assert any(r.headers.get("authorization") == f"Bearer {peers.bluesky.access_jwt}"
               for r in peers.bluesky_server.requests)
    assert any(r.headers.get("authorization") == f"Bearer {MASTODON_TOKEN}" for r in peers.mastodon_one.requests)
    # A token belongs to its instance: the second one never sees it.
    assert peers.mastodon_two.requests and not any("authorization" in r.headers for r in peers.mastodon_two.requests)
    assert any(r.query.get("key") == [FEED_KEY] for r in peers.feeds.requests)
    assert [r.path for r in peers.hook_good.requests] and all(r.path == f"/hooks/{WEBHOOK_GOOD}"
                                                              for r in peers.hook_good.requests)
    assert [r.path for r in peers.hook_bad.requests] == [f"/hooks/{WEBHOOK_BAD}"] * 2  # attempts = 2
    assert (b"listener", SMTP_PASSWORD.encode()) in peers.smtp_good.logins and peers.smtp_good.messages
    assert (b"listener", SMTP_PASSWORD.encode()) in peers.smtp_bad.logins and not peers.smtp_bad.messages
    for kind in FAULTS[:-1]:
        seen = peers.faults[kind].requests
        assert any(r.headers.get("authorization") == f"Bearer {X_BEARER}" for r in seen), kind
    assert world.facts["responses"]["GET / with token"] == 200


def test_no_secret_in_any_command_output(world):
    leaks = []
    for f in world.finished:
        for stream, text in (("stdout", f.stdout), ("stderr", f.stderr)):
            found = find_secrets(text)
            if found:
                where = [line for line in text.splitlines() if find_secrets(line)][:3]
                leaks.append(f"{f.what} {stream}: {found}\n    " + "\n    ".join(w[:400] for w in where))
    assert not leaks, "secrets in command output:\n" + "\n".join(leaks)


def _output_files(world: World) -> list[Path]:
    files = [p for p in sorted(world.root.rglob("*")) if p.is_file() and p not in world.inputs]
    assert len(files) > 20
    return files


def test_no_secret_in_any_file_written(world):
    leaks = []
    names = set()
    for path in _output_files(world):
        names.add(path.name)
        found = find_secrets(path.read_bytes())
        if found:
            leaks.append(f"{path.relative_to(world.root)}: {found}")
    # What was scanned: databases, snapshot, exports, reports, the label inbox, the starter config.
    assert {"listener.duckdb", "daemon.snapshot.duckdb", "mentions.parquet", "mentions.csv", "report.html",
            "report.md", "manifest.json"} <= names, sorted(names)
    assert "listener.labels-inbox.jsonl" in names, "no label inbox was written"
    assert not leaks, "secrets in files:\n" + "\n".join(leaks)


def test_no_secret_in_any_stored_value(world):
    """Every value of every table of every database, and of every Parquet export, read
    through DuckDB: compressed strings are invisible to a byte scan."""
    leaks = []
    scanned = 0
    for path in _output_files(world):
        if path.suffix == ".parquet":
            leaks += scan_parquet(path)
            scanned += 1
        elif path.stat().st_size >= 12 and _is_duckdb(path):
            leaks += scan_database(path)
            scanned += 1
    assert scanned >= 8
    assert not leaks, "secrets in stored values:\n" + "\n".join(leaks)


def test_no_secret_in_any_answer_of_the_live_view(world):
    assert len(world.exchanges) > 40
    leaks = [f"{e.what}: {find_secrets(e.head.encode() + e.body)}" for e in world.exchanges
             if find_secrets(e.head.encode() + e.body)]
    assert not leaks, "secrets in HTTP answers:\n" + "\n".join(leaks)


def test_the_live_view_refuses_to_bind_beyond_loopback_without_a_token(world):
    for key in ("serve_refused", "serve_refused_empty"):
        refused: Finished = world.facts[key]
        assert refused.code == 2, refused.stderr
        assert "beyond loopback" in refused.stderr and "Serving" not in refused.stderr
    assert ENV_NAMES["SERVE"] in world.facts["serve_refused"].stderr
    assert world.facts["serve_bound"] == "0.0.0.0"


def test_beyond_loopback_every_request_needs_the_token(world):
    r = world.facts["responses"]
    for path in ("/", "/api/live.json", "/brand/Brewly", "/label", "/nowhere"):
        assert r[f"GET {path} without token"] == 401, path
        assert r[f"GET {path} wrong token"] == 401, path
    assert r["GET /?token=wrong"] == 401 and r["GET / wrong cookie"] == 401
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        assert r[f"{method} / without token"] in (401, 405), method
    assert r["POST /label without token"] == 401 and r["POST /label wrong token"] == 401
    assert r["POST /label?token= (query is for GET)"] == 401
    refusal = next(e for e in world.exchanges if e.what == "GET / without token")
    assert refusal.header("WWW-Authenticate") == 'Bearer realm="listener"'


def test_with_the_token_the_view_serves_and_its_cookie_is_not_the_token(world):
    r = world.facts["responses"]
    for what in ("GET / with token", "GET /api/live.json with token", "GET /brand/Brewly with token",
                 "GET /brand/Beanhaus with token", "HEAD / with token", "GET / with the cookie"):
        assert r[what] == 200, what
    assert r["GET /nowhere with token"] == 404 and r["GET /brand/Nobody with token"] == 404
    live = next(e for e in world.exchanges if e.what == "GET /api/live.json with token")
    assert {b["brand"] for b in json.loads(live.body)["brands"]} >= {"Brewly", "Beanhaus"}
    redirect: Exchange = world.facts["token_redirect"]
    assert r["GET ?token=right"] == 303
    assert redirect.header("Location") == "/api/live.json?x=1"
    cookie = redirect.header("Set-Cookie") or ""
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and not find_secrets(cookie)


def test_nothing_the_view_is_sent_changes_the_database_and_a_label_only_queues(world):
    r = world.facts["responses"]
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        assert r[f"{method} / with token"] == 405, method
    assert r["POST / with token"] == 405 and r["POST /api/live.json with token"] == 405
    assert r["POST /label without csrf"] == 403 and r["POST /label wrong csrf"] == 403
    assert r["POST /label cross-origin"] == 403
    for what in ("malformed request line with token", "bad request version with token"):
        answer = next(e for e in world.exchanges if e.what == what)
        assert r[what] == 400 or (r[what] == 0 and b"Error code: 400" in answer.body), what  # 0: HTTP/0.9 style
    assert world.facts["label_form"].get("csrf"), "the page offered no label form"
    assert r["POST /label with token and csrf"] == 303
    before, after = world.facts["serve_db_before"], world.facts["serve_db_after"]
    assert before["listener.duckdb"] is not None and before == after, "the live view changed the database"
    added = world.facts["inbox_added"].decode().splitlines()
    assert world.facts["inbox_kept"] and len(added) == 1, added
    queued = json.loads(added[0])
    assert queued["label"] == "negative" and queued["by"] == "live view"


def test_the_daemon_ran_two_cycles_parked_refused_sources_and_stopped_cleanly(world):
    good: Finished = world.facts["daemon daemon"]
    assert good.code == 0, good.stderr[-3000:]
    for source in ("x", "reddit", "bluesky", "mastodon", "hackernews", "feeds"):
        assert good.stderr.count(f"pull source={source} brand=Brewly status=ok") >= 2, source
    faulty: Finished = world.facts["daemon daemon-faults"]
    assert faulty.code == 0, faulty.stderr[-3000:]
    for source in ("x", "reddit", "feeds"):
        assert f"source {source} parked" in faulty.stderr or f"pull source={source} " in faulty.stderr, source
    assert "source x parked" in faulty.stderr and ENV_NAMES["X"] in faulty.stderr


def test_alert_deliveries_failed_then_succeeded_and_were_recorded(world):
    shown: Finished = world.facts["alerts_json"]
    alerts = json.loads(shown.stdout)["alerts"]
    deliveries = [d for a in alerts for d in a["deliveries"]]
    outcomes = {(d["channel"], d["status"]) for d in deliveries}
    assert outcomes == {("webhook", "failed"), ("webhook", "sent"), ("email", "failed"), ("email", "sent")}, deliveries
    errors = " ".join(d["error"] or "" for d in deliveries)
    assert "HTTP 500" in errors and "refused the login" in errors


def test_a_demo_rerun_replaces_the_earlier_demo(world, demo_run):
    # The demo ran over a copy of the suite's shared demo, which ended on another day:
    # every mention it reports is new and the database holds exactly those (the earlier
    # run's file was replaced, not added to). Brewly's own replies are stored beside them.
    again = json.loads(world.facts["demo"].stdout)
    assert again["mood"]["as_of"] != demo_run.summary["mood"]["as_of"]
    with duckdb.connect(str(world.root / "demo" / "listener.duckdb"), read_only=True) as con:
        stored, own = con.execute("SELECT count(*), count(*) FILTER (WHERE own) FROM mentions").fetchone()
        per_brand = dict(con.execute("SELECT brand, count(*) FROM mentions WHERE NOT own GROUP BY brand").fetchall())
    assert own > 0 and again["new"] == stored == sum(again["mentions"].values()) + own
    assert per_brand == again["mentions"]


def test_the_run_took_a_reasonable_time(world):
    # Not a speed target (bench/ has those): a guard against a module that creeps up on
    # the suite's time. Reported in the test's output.
    print(f"secrets run: {world.facts['seconds']:.1f} s, {len(world.finished)} commands, "
          f"{len(world.exchanges)} HTTP requests; slowest:")
    for f in sorted(world.finished, key=lambda f: -f.seconds)[:12]:
        print(f"  {f.seconds:6.1f} s  {f.what}")
    assert world.facts["seconds"] < 600


# -- the feeds connector on its own: quick checks of the fix the run above relies on ------------


def test_a_feed_url_s_query_string_reaches_no_cursor_id_link_payload_or_log(caplog):
    """A feed URL's query string may hold a token: it is never stored (cursor, ids,
    links, raw payload) nor logged, also when the feed cannot be reached; a cursor saved
    under the whole URL by an earlier version is still read, then rewritten."""
    import logging

    from connectors.base import BrandQuery
    from connectors.feeds import create
    from connectors.retry import RetryPolicy

    query = BrandQuery("Brewly", terms=("brewly",))
    # INFO: the most 'listener -v' logs (urllib3's DEBUG lines name whole URLs).
    with FakeServer() as server, caplog.at_level(logging.INFO):
        server.route("GET", "/feed.xml", Reply(200, _rss(utc_now()), headers={"Content-Type": "application/rss+xml"}))
        url = f"{server.url}/feed.xml?key={FEED_KEY}&format=rss"
        other = f"{server.url}/feed.xml?key=another-{FEED_KEY}"  # the same feed path, another query
        refused = f"http://127.0.0.1:{free_port()}/feed.xml?key={FEED_KEY}"
        connector = create({"urls": [url, other, refused]}, utc_now, retry=RetryPolicy(sleep=lambda s: None))
        batches = list(connector.fetch(query, None))
        mentions = [m for b in batches for m in b.mentions]
        cursor = batches[-1].checkpoint
        assert len(mentions) >= 6 and [b.skipped for b in batches] == [0, 0, 1]  # the refused feed
        assert set(cursor["feeds"]) == {f"{server.url}/feed.xml?...#1", f"{server.url}/feed.xml?...#2"}
        stored = json.dumps([cursor, [(m.id, m.url, m.conversation_id, m.raw) for m in mentions]])
        assert find_secrets(stored) == [] and find_secrets(caplog.text) == [], (stored, caplog.text)
        assert "Connection refused" in caplog.text or "ConnectionError" in caplog.text

        # An earlier version's cursor, under the whole URL: its entries are not read again.
        alone = create({"urls": [url]}, utc_now, retry=RetryPolicy(sleep=lambda s: None))
        first = list(alone.fetch(query, None))
        old_state = first[-1].checkpoint["feeds"][f"{server.url}/feed.xml?..."]
        again = list(alone.fetch(query, {"feeds": {url: old_state}}))
        assert [m for b in again for m in b.mentions] == []
        assert again[-1].checkpoint == {"feeds": {f"{server.url}/feed.xml?...": old_state}}
