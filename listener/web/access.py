"""Who may use the live view, and how: every rule in one ASGI middleware (AccessMiddleware).

* Bound to loopback without a token, a request must name a loopback host (``Host``), so
  a web page elsewhere cannot reach the view by DNS rebinding.
* With a token (the environment variable ``--token-env`` names; required to bind
  beyond loopback), every request must carry it: ``Authorization: Bearer TOKEN``, or
  once ``?token=TOKEN``, which sets an HttpOnly, SameSite=Strict cookie holding a value
  derived from the token and redirects to the URL without it. Comparisons are constant
  time (``hmac.compare_digest``); the token is never logged or echoed.
* Only GET, HEAD and POST. Every POST that reaches a route must come from this view's
  own pages (``Origin`` / ``Sec-Fetch-Site``), be a small url-encoded form, and carry the
  per-server CSRF token; the middleware reads and checks the form and hands it to the
  route as ``request.state.form`` (a dict, each field once). A route therefore never
  sees a write it did not get from its own page.
* Every answer carries the security headers (a strict CSP: scripts and styles only from
  this server, nothing inline) and ``Cache-Control: no-store``.
* The request log has the method, the path (never the query, which may hold the token;
  a token typed into the path is redacted) and the status.

What the routes may do is theirs (listener.web.app): read the database read-only, and
queue requests in the inbox the daemon applies.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.routing import BaseRoute, Match

from connectors.errors import REDACTED, excerpt
from listener.web.render import CSP, render_message

log = logging.getLogger("listener.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "listener_session"
MAX_FORM_BYTES = 8192
MAX_FIELDS = 20
LOOPBACK_NAMES = ("localhost",)
METHODS = ("GET", "HEAD", "POST")
# A path the token redirect may keep: no "//" or backslash a browser could read as another host.
SAFE_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9._~%-]*(/[A-Za-z0-9._~%-]+)*/?")
SECURITY_HEADERS = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null"
    # with every form POST (Fetch standard), so the view's own forms were refused as
    # cross-origin. same-origin still sends nothing to other sites.
    ("referrer-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
)


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


class Refused(Exception):
    """A request the access rules turn away, with the page that says why."""

    def __init__(self, status: HTTPStatus, title: str, text: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(text)
        self.status, self.title, self.text, self.headers = status, title, text, list(headers)


def _unauthorised() -> Refused:
    return Refused(HTTPStatus.UNAUTHORIZED, "Access token required",
                   "This view needs its access token: open it once as /?token=TOKEN (a cookie keeps it for "
                   "this browser), or send the header 'Authorization: Bearer TOKEN'.",
                   [("WWW-Authenticate", 'Bearer realm="listener"')])


class Headers:
    """A request's headers by lower-case name (the last of repeated ones)."""

    def __init__(self, scope: Scope) -> None:
        self._items = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}

    def get(self, name: str) -> str | None:
        return self._items.get(name)


class AccessMiddleware:
    """The access rules of the module docstring, around the whole app (static files
    included). ``routes`` is the app's live list of routes: a POST is checked (origin,
    form, CSRF) when one of them takes it; one that none takes goes on to the router's
    404 or 405 without its body being read."""

    def __init__(self, app: ASGIApp, *, token: str | None, csrf: str, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.token = token
        self.csrf = csrf
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets
            await send({"type": "websocket.close", "code": 1008})
            return
        status = [0]

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", [])]
                names = {k.lower() for k, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS if k.encode() not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._serve(scope, receive, send_secured)
        except Refused as refused:
            await self._refuse(scope, send_secured, refused)
        except Exception:
            log.exception("live view: %s %s failed", scope.get("method"), self._loggable(self._path(scope), 200))
            if not status[0]:
                await self._refuse(scope, send_secured, Refused(HTTPStatus.INTERNAL_SERVER_ERROR, "Error",
                                                                "The page could not be built; see the log."))
        finally:
            client = scope.get("client") or ("-", 0)
            log.info("%s %s %s %s", client[0], scope.get("method") or "-", self._loggable(self._path(scope), 200),
                     status[0] or "-")

    async def _refuse(self, scope: Scope, send: Send, refused: Refused) -> None:
        body = b"" if scope.get("method") == "HEAD" else \
            render_message(refused.title, refused.text).encode("utf-8", "replace")
        headers = [(b"content-type", b"text/html; charset=utf-8"),
                   (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in refused.headers]
        if refused.status >= 400 and scope.get("method") == "POST":
            headers.append((b"connection", b"close"))  # the unread body must not be taken for a request
        await send({"type": "http.response.start", "status": int(refused.status), "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _path(scope: Scope) -> str:
        raw = scope.get("raw_path")
        return raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path") or "-")

    def _loggable(self, text: str, limit: int) -> str:
        """``text`` for a log line: the token redacted in every form (connectors.errors,
        where LiveApp registered it), then cut. A token too short to register is still
        removed as it is."""
        return excerpt(text.replace(self.token, REDACTED) if self.token else text, limit)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in METHODS:
            raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed",
                          "This view is read-only: GET pages, and POST from its own forms.",
                          [("Allow", ", ".join(METHODS))])
        headers = Headers(scope)
        try:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True,
                             max_num_fields=MAX_FIELDS)
        except ValueError:
            raise Refused(HTTPStatus.BAD_REQUEST, "Bad request", "Too many query parameters.") from None
        cookie = self._authorise(method, headers, query)
        if cookie is not None:
            rest = {k: v for k, v in query.items() if k != "token"}
            path = self._path(scope)
            target = (path if SAFE_PATH.fullmatch(path) else "/") + ("?" + urlencode(rest, doseq=True) if rest else "")
            raise Refused(HTTPStatus.SEE_OTHER, "Signed in", "The access token is kept in a cookie.",
                          [("Location", target), ("Set-Cookie", cookie)])
        if method == "POST" and self._routed(scope):
            form = await self._form(headers, receive)
            if not tokens_match(form.get("csrf"), self.csrf):
                raise Refused(HTTPStatus.FORBIDDEN, "Form expired",
                              "The form's token does not match this server (was it restarted?). Reload the page "
                              "and try again.")
            scope.setdefault("state", {})["form"] = form
            receive = _replay(b"")
        await self.app(scope, receive, send)

    def _routed(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] == Match.FULL for route in self.routes)

    # -- token and host --------------------------------------------------------------------

    def _host_ok(self, headers: Headers) -> bool:
        """Without a token the view is loopback-only: the Host a browser sends must be a
        loopback name, or a DNS-rebinding page could read it."""
        if self.token:
            return True
        host = headers.get("host")
        if not host:
            return False
        try:
            name = urlsplit("//" + host).hostname or ""
        except ValueError:
            return False
        return is_loopback(name)

    def _authorise(self, method: str, headers: Headers, query: dict[str, list[str]]) -> str | None:
        """Raises Refused unless the request may proceed; returns a Set-Cookie value
        when the token came in the query (the caller redirects)."""
        if not self._host_ok(headers):
            raise Refused(HTTPStatus.MISDIRECTED_REQUEST, "Unknown host",
                          "This view answers only to localhost, 127.0.0.1 or [::1] unless it has an access token.")
        token = self.token
        if not token:
            return None
        auth = headers.get("authorization") or ""
        if auth[:7].lower() == "bearer ":
            if tokens_match(auth[7:].strip(), token):
                return None
            raise _unauthorised()
        cookie = _cookie(headers)
        if "token" not in query and cookie is not None and tokens_match(cookie, session_value(token)):
            return None
        given = query.get("token")
        if given and method in ("GET", "HEAD") and len(given) == 1 and tokens_match(given[0], token):
            return f"{COOKIE}={session_value(token)}; HttpOnly; SameSite=Strict; Path=/"
        raise _unauthorised()

    # -- forms -------------------------------------------------------------------------------

    @staticmethod
    def _same_origin(headers: Headers) -> bool:
        """A browser's Origin (or Sec-Fetch-Site) must say the form came from this view."""
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = headers.get("origin")
        if origin is None:
            return True  # not a browser, or an old one: the CSRF token still has to match
        host = headers.get("host") or ""
        return origin in (f"http://{host}", f"https://{host}")

    async def _form(self, headers: Headers, receive: Receive) -> dict[str, str]:
        if not self._same_origin(headers):
            raise Refused(HTTPStatus.FORBIDDEN, "Cross-origin form refused",
                          "Forms are only taken from this view's own pages.")
        kind = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "Unsupported form",
                          "POST takes the page's forms (application/x-www-form-urlencoded).")
        try:
            length = int(headers.get("content-length") or "")
        except ValueError:
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "Length required", "The form needs a Content-Length.") from None
        if length < 0 or length > MAX_FORM_BYTES:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Form too large",
                          f"A form is at most {MAX_FORM_BYTES} bytes.")
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refused(HTTPStatus.BAD_REQUEST, "Bad form", "The form was not sent whole.")
            body += message.get("body", b"")
            if len(body) > MAX_FORM_BYTES:
                raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Form too large",
                              f"A form is at most {MAX_FORM_BYTES} bytes.")
            if not message.get("more_body"):
                break
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body),
                              max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError):
            raise Refused(HTTPStatus.BAD_REQUEST, "Bad form", "The form could not be read.") from None
        if any(len(v) != 1 for v in fields.values()):
            raise Refused(HTTPStatus.BAD_REQUEST, "Bad form", "Each form field must appear once.")
        return {k: v[0] for k, v in fields.items()}


def _cookie(headers: Headers) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie()
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def _replay(body: bytes) -> Receive:
    """A ``receive`` for the route after the middleware consumed the body: the route
    reads the checked form from request.state.form, not the body."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
