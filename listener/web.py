"""The live mood view's HTTP server (``listener serve``).

The standard library's ``ThreadingHTTPServer`` serves it: a small read-only view with
four routes needs no framework, and the access rules below are easier to check in
one file than spread over a framework's middleware.

    GET  /                 every brand: overview, alerts, freshness, each brand's details
    GET  /brand/NAME       one brand
    GET  /api/live.json    the numbers of the page as JSON (mood windows as `listener mood --json`)
    POST /label            queue a correction of a mention's label for the daemon, with how it
                           was asked for (labels.origin: web, or next:uncertain / next:random
                           from the "label these" panel)

Access:
* Bound to loopback without a token, a request must name a loopback host (``Host``), so
  a web page elsewhere cannot reach the view by DNS rebinding.
* With a token (the environment variable ``--token-env`` names; required to bind
  beyond loopback), every request must carry it: ``Authorization: Bearer TOKEN``, or
  once ``?token=TOKEN``, which sets an HttpOnly, SameSite=Strict cookie holding a value
  derived from the token and redirects to the URL without it. Comparisons are constant
  time (``hmac.compare_digest``); the token is never logged or echoed.
* Nothing can write to the database: it is only ever opened read-only
  (storage.live.LiveReader). ``POST /label`` only appends to the label inbox the daemon
  applies (storage.labels.queue_label), and only with the per-server CSRF token the
  page's forms carry, from a same-origin page.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from analysis.live_render import CSP, render_message, render_page
from analysis.sentiment import Scorer
from connectors.base import Clock
from connectors.errors import REDACTED, excerpt, register_secret
from listener.live_view import BrandView, build_view
from storage.errors import DatabaseLockedError, StorageError
from storage.labels import (
    CLEAR,
    LABELS,
    LabelRequest,
    UnknownMentionError,
    find_mentions,
    queue_label,
)
from storage.labelling import ORIGIN_RANDOM, ORIGIN_UNCERTAIN
from storage.live import LiveReader, known_brands, queued_label_count

log = logging.getLogger("listener.web")

COOKIE = "listener_session"
MAX_FORM_BYTES = 8192
NOTICES = {label: f"Label '{label}' queued: the daemon applies it after its next cycle, and the figures "
                  f"change once the hourly stage has recomputed that hour." for label in (*LABELS, CLEAR)}
LOOPBACK_NAMES = ("localhost",)
# How a label from the view was given (labels.origin): a thread's form, or the panel of
# mentions to label next (uncertain ones, or the random sample).
ORIGIN_WEB = "web"
WEB_ORIGINS = (ORIGIN_WEB, ORIGIN_UNCERTAIN, ORIGIN_RANDOM)
# Where a label form may send the browser back to: "/" or a brand page as brand_path writes it.
BACK_PATH = re.compile(r"/(brand/[A-Za-z0-9._~%-]+)?")
# A path the token redirect may keep: no "//" or backslash a browser could read as another host.
SAFE_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9._~%-]*(/[A-Za-z0-9._~%-]+)*/?")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine: 'localhost' or a
    loopback address (127.0.0.0/8, ::1). Any other name counts as beyond loopback."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bind_refusal(host: str, token: str | None, token_env: str) -> str | None:
    """Why serving on ``host`` with (or without) ``token`` is refused, or None."""
    if is_loopback(host) or token:
        return None
    return (f"--host {host} is beyond loopback: anyone who can reach it could read the view. Set an access "
            f"token in the environment variable {token_env} (e.g. `export {token_env}=$(openssl rand -hex 32)`), "
            f"or bind 127.0.0.1")


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison (hmac.compare_digest) of two strings of any length and
    characters."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def session_value(token: str) -> str:
    """What the cookie holds: derived from the token, so the cookie is not the token."""
    return hmac.new(token.encode("utf-8", "surrogatepass"), b"listener-serve-session-v1", hashlib.sha256).hexdigest()


@dataclass
class LiveApp:
    """Everything a request needs; shared by the server's threads (read-only after start)."""

    database: Path
    brands: tuple[BrandView, ...]  # empty: the brands stored in the database
    scorer: Scorer
    clock: Clock
    token: str | None = None
    refresh: int = 60
    as_of: datetime | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    reader: LiveReader = field(init=False)

    def __post_init__(self) -> None:
        self.reader = LiveReader(self.database)
        if self.token:
            # Whatever a client types (the token in a path, URL-encoded or not) is logged
            # through connectors.errors.excerpt, which redacts every form of it.
            register_secret(self.token)

    def now(self) -> datetime:
        return self.as_of or self.clock()

    def view(self, only: str | None = None) -> dict[str, Any]:
        """The view of every brand, or of brand ``only`` (UnknownBrand when unknown)."""
        now = self.now()
        with self.reader.reading() as reading:
            brands = self.brands or tuple(BrandView(n) for n in known_brands(reading.store, now))
            shown = brands if only is None else tuple(b for b in brands if b.name == only)
            if not shown and only is not None:
                raise UnknownBrand(only)
            return build_view(reading, shown, self.scorer, now, generated_at=self.clock(),
                              labels_queued=queued_label_count(self.database), tracked=[b.name for b in brands])

    def check_label(self, request: LabelRequest) -> None:
        """Raises UnknownMentionError when what the view reads has no such mention."""
        with self.reader.reading() as reading:
            find_mentions(reading.store, request)


class UnknownBrand(LookupError):
    """The address names a brand the view does not show."""


class Refused(Exception):
    def __init__(self, status: HTTPStatus, title: str, text: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(text)
        self.status, self.title, self.text, self.headers = status, title, text, list(headers)


class LiveHandler(BaseHTTPRequestHandler):
    server_version = "listener"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 20  # a client that stalls mid-request does not hold a thread for long

    @property
    def app(self) -> LiveApp:
        return self.server.app  # type: ignore[attr-defined]

    # -- responses -------------------------------------------------------------------

    def _send(self, status: HTTPStatus, body: bytes, content_type: str,
              headers: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null"
        # with every form POST (Fetch standard), so the view's own label forms were refused
        # as cross-origin. same-origin still sends nothing to other sites.
        self.send_header("Referrer-Policy", "same-origin")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _html(self, status: HTTPStatus, page: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        self._send(status, page.encode("utf-8", "replace"), "text/html; charset=utf-8", headers)

    def _message(self, status: HTTPStatus, title: str, text: str, headers: Sequence[tuple[str, str]] = (),
                 refresh: int | None = None) -> None:
        self._html(status, render_message(title, text, refresh=refresh), headers)

    def _redirect(self, location: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain; charset=utf-8", [("Location", location), *headers])

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The path only: a query string may hold the access token. A request line that
        # could not be parsed leaves no path (nor command). A token typed into the path
        # is redacted (before the cut: a cut token would no longer be recognised).
        path = getattr(self, "path", None)
        path = urlsplit(path).path if isinstance(path, str) else "-"
        log.info("%s %s %s %s", self.address_string(), getattr(self, "command", None) or "-", self._loggable(path, 200),
                 code)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Only the standard library calls this, for requests it cannot parse; its message
        # quotes what the client sent ("Bad request version ('...')"), which may hold the
        # access token, URL-encoded or not, and goes into the status line, the page and
        # the log. Keep the reason, drop the quote.
        super().send_error(code, message.split(" (", 1)[0] if message else None, explain)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), self._loggable(format % args, 300))

    def _loggable(self, text: str, limit: int) -> str:
        """``text`` for a log line: the token redacted in every form (connectors.errors,
        where LiveApp registered it), then cut. A token too short to register is still
        removed as it is."""
        token = self.app.token
        return excerpt(text.replace(token, REDACTED) if token else text, limit)

    # -- access --------------------------------------------------------------------------

    def _host_ok(self) -> bool:
        """Without a token the view is loopback-only: the Host a browser sends must be a
        loopback name, or a DNS-rebinding page could read it."""
        if self.app.token:
            return True
        host = self.headers.get("Host")
        if not host:
            return False
        try:
            name = urlsplit("//" + host).hostname or ""
        except ValueError:
            return False
        return is_loopback(name)

    def _authorise(self, query: dict[str, list[str]]) -> str | None:
        """Raises Refused unless the request may proceed; returns a Set-Cookie value
        when the token came in the query (the caller redirects)."""
        if not self._host_ok():
            raise Refused(HTTPStatus.MISDIRECTED_REQUEST, "Unknown host",
                          "This view answers only to localhost, 127.0.0.1 or [::1] unless it has an access token.")
        token = self.app.token
        if not token:
            return None
        auth = self.headers.get("Authorization") or ""
        if auth[:7].lower() == "bearer ":
            if tokens_match(auth[7:].strip(), token):
                return None
            raise self._unauthorised()
        cookie = self._cookie()
        if "token" not in query and cookie is not None and tokens_match(cookie, session_value(token)):
            return None
        given = query.get("token")
        if given and self.command in ("GET", "HEAD") and len(given) == 1 and tokens_match(given[0], token):
            return f"{COOKIE}={session_value(token)}; HttpOnly; SameSite=Strict; Path=/"
        raise self._unauthorised()

    def _unauthorised(self) -> Refused:
        return Refused(HTTPStatus.UNAUTHORIZED, "Access token required",
                       "This view needs its access token: open it once as /?token=TOKEN (a cookie keeps it for "
                       "this browser), or send the header 'Authorization: Bearer TOKEN'.",
                       [("WWW-Authenticate", 'Bearer realm="listener"')])

    def _cookie(self) -> str | None:
        raw = self.headers.get("Cookie")
        if not raw:
            return None
        try:
            jar = SimpleCookie()
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(COOKIE)
        return morsel.value if morsel is not None else None

    # -- methods -------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._message(HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed",
                      "This view is read-only: GET pages, and POST /label from its own forms.",
                      [("Allow", "GET, HEAD, POST")])

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _dispatch(self) -> None:
        try:
            parts = urlsplit(self.path)
            try:
                query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=20)
            except ValueError:
                raise Refused(HTTPStatus.BAD_REQUEST, "Bad request", "Too many query parameters.") from None
            cookie = self._authorise(query)
            if cookie is not None:
                rest = {k: v for k, v in query.items() if k != "token"}
                target = parts.path + ("?" + urlencode(rest, doseq=True) if rest else "")
                self._redirect(target if SAFE_PATH.fullmatch(parts.path) else "/", [("Set-Cookie", cookie)])
                return
            path = parts.path
            if self.command == "POST":
                if path != "/label":
                    raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed",
                                  "Only /label accepts POST.", [("Allow", "GET, HEAD")])
                self._label()
                return
            if path == "/label":
                raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed",
                              "/label takes the page's forms (POST).", [("Allow", "POST")])
            if path == "/":
                self._page(None, "/", query)
            elif path.startswith("/brand/"):
                self._page(unquote(path[len("/brand/"):], errors="strict"), path, query)
            elif path == "/api/live.json":
                body = json.dumps(self.app.view(), indent=2, ensure_ascii=False).encode("utf-8", "replace")
                self._send(HTTPStatus.OK, body, "application/json; charset=utf-8")
            else:
                raise Refused(HTTPStatus.NOT_FOUND, "Not found", "No such page in the live view.")
        except Refused as refused:
            if refused.status >= 400 and self.command == "POST":
                self.close_connection = True
            self._message(refused.status, refused.title, refused.text, refused.headers)
        except UnicodeDecodeError:
            self._message(HTTPStatus.BAD_REQUEST, "Bad request", "The address is not valid UTF-8.")
        except DatabaseLockedError:
            self._message(HTTPStatus.SERVICE_UNAVAILABLE, "Waiting for the daemon",
                          "The daemon holds the database and has not published its snapshot yet; this page "
                          "retries in 10 s.", [("Retry-After", "10")], refresh=10)
        except StorageError as exc:
            log.error("live view: %s", exc)
            self._message(HTTPStatus.INTERNAL_SERVER_ERROR, "Cannot read the database", str(exc))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:
            log.exception("live view: %s %s failed", self.command, self._loggable(urlsplit(self.path).path, 200))
            self._message(HTTPStatus.INTERNAL_SERVER_ERROR, "Error", "The page could not be built; see the log.")

    def _page(self, only: str | None, self_path: str, query: dict[str, list[str]]) -> None:
        try:
            view = self.app.view(only)
        except UnknownBrand:
            raise Refused(HTTPStatus.NOT_FOUND, "Unknown brand", f"No brand named {only!r} in this view.") from None
        notice = NOTICES.get((query.get("queued") or [""])[0])
        page = render_page(view, csrf=self.app.csrf, refresh=self.app.refresh, notice=notice,
                           self_path=self_path if only is None else "/brand/" + quote(only, safe=""), only=only)
        self._html(HTTPStatus.OK, page)

    # -- the one action ---------------------------------------------------------------------

    def _same_origin(self) -> bool:
        """A browser's Origin (or Sec-Fetch-Site) must say the form came from this view."""
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = self.headers.get("Origin")
        if origin is None:
            return True  # not a browser, or an old one: the CSRF token still has to match
        host = self.headers.get("Host") or ""
        return origin in (f"http://{host}", f"https://{host}")

    def _form(self) -> dict[str, str]:
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "Unsupported form",
                          "POST /label takes the page's form (application/x-www-form-urlencoded).")
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "Length required", "The form needs a Content-Length.") from None
        if length < 0 or length > MAX_FORM_BYTES:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Form too large",
                          f"A label form is at most {MAX_FORM_BYTES} bytes.")
        body = self.rfile.read(length)
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body),
                              max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            raise Refused(HTTPStatus.BAD_REQUEST, "Bad form", "The form could not be read.") from None
        if any(len(v) != 1 for v in fields.values()):
            raise Refused(HTTPStatus.BAD_REQUEST, "Bad form", "Each form field must appear once.")
        return {k: v[0] for k, v in fields.items()}

    def _label(self) -> None:
        if not self._same_origin():
            raise Refused(HTTPStatus.FORBIDDEN, "Cross-origin form refused",
                          "Labels can only be given from this view's own pages.")
        form = self._form()
        if not tokens_match(form.get("csrf"), self.app.csrf):
            raise Refused(HTTPStatus.FORBIDDEN, "Form expired",
                          "The form's token does not match this server (was it restarted?). Reload the page and "
                          "try again.")
        label = form.get("label", "")
        if label not in LABELS and label != CLEAR:
            raise Refused(HTTPStatus.BAD_REQUEST, "Bad label", "The label must be positive, neutral or negative.")
        mention_id, source, brand = form.get("id", ""), form.get("source") or None, form.get("brand") or None
        if not mention_id or len(mention_id) > 2048 or len(source or "") > 200 or len(brand or "") > 500:
            raise Refused(HTTPStatus.BAD_REQUEST, "Bad mention", "The form does not name a mention.")
        origin = form.get("origin") or ORIGIN_WEB
        if origin not in WEB_ORIGINS:
            raise Refused(HTTPStatus.BAD_REQUEST, "Bad form", "The form's origin is not one of this view's.")
        request = LabelRequest(id=mention_id, label=label, source=source, brand=brand, by="live view", origin=origin)
        try:
            self.app.check_label(request)
        except UnknownMentionError as exc:
            raise Refused(HTTPStatus.NOT_FOUND, "Unknown mention", str(exc)) from None
        queue_label(self.app.database, request, self.app.clock())
        back = form.get("back") or "/"
        if not BACK_PATH.fullmatch(back):  # only the view's own pages: no open redirect, no header injection
            back = "/"
        self._redirect(f"{back}?queued={label}")


class LiveServer(ThreadingHTTPServer):
    """The HTTP server, bound at construction; ``serve_forever`` serves, ``shutdown``
    stops it (from another thread)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 32

    def __init__(self, app: LiveApp, host: str, port: int) -> None:
        self.app = app
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        self.address_family = infos[0][0]
        super().__init__(infos[0][4][:2], LiveHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"

    def server_close(self) -> None:
        super().server_close()
        self.app.reader.close()


def start_in_thread(server: LiveServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="listener-serve", daemon=True)
    thread.start()
    return thread
