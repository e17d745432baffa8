"""The live view's Starlette app: its state (LiveApp), its routes, and ``create_app``.

    GET  /                 every brand: overview, alerts, freshness, each brand's details
    GET  /brand/NAME       one brand
    GET  /api/live.json    the numbers of the page as JSON (mood windows as `listener mood --json`)
    POST /label            queue a correction of a mention's label for the daemon, with how it
                           was asked for (labels.origin: web, or next:uncertain / next:random
                           from the "label these" panel)
    GET  /stream           the mention stream: filters in the URL (storage.stream), keyset pages,
                           open alerts on top, label buttons
    GET  /stream/new       the stream's live update: mentions newer than ?since=, as HTML items
    GET  /api/stream.json  a stream page as JSON
    POST /alert            queue acknowledging or resolving an alert (storage.alert_actions)
    GET  /static/...       the package's CSS and scripts (listener/web/static)

Access (host, token, CSRF, security headers, request log) is listener.web.access's one
middleware around all of it. The routes never write to the database: it is only ever
opened read-only (storage.live.LiveReader); a write is a line queued in an inbox the
daemon applies (storage.inbox).

Adding routes from another module (``register``): ``create_app`` imports
``listener.web.routes_charts`` when it exists and calls its ``register(app)``, which may

* add routes: ``app.router.routes.append(Route(...))`` (or ``app.add_route``); they sit
  behind the same middleware, and a POST route gets its checked form as
  ``request.state.form``;
* add scripts every page loads: ``app.state.scripts.append("/static/charts.js")``;
* read the data: ``live(request)`` is the LiveApp; ``with live(request).reader.reading()
  as reading:`` gives a read-only storage.store.Store as ``reading.store``;
* render a page: ``page(request, "charts/x.html", **context)``, a template that
  ``{% extends "base.html" %}``; the overview and brand pages include
  ``charts/area.html`` (when it exists) in their ``{% block charts %}``.
Sync endpoints run in Starlette's thread pool, each request on its own database
connection (storage.live.RequestStore), so a slow query blocks no other request. What is
read from a snapshot (or the view's copy) may be kept for the next request that asks the
same: ``live(request).read_cache`` (ReadCache), keyed by ``reading.version``.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from analysis.alerts import describe
from analysis.sentiment import Scorer
from connectors.base import Clock
from connectors.errors import register_secret
from listener.live_view import BrandView, build_view
from listener.web.access import AccessMiddleware, Refused
from listener.web.render import HERE, render, render_message, render_page
from storage.alert_actions import (
    AlertAction,
    UnknownAlertError,
    check_alert,
    queue_alert_action,
    queued_alert_actions,
)
from storage.errors import DatabaseLockedError, StorageError
from storage.labelling import ORIGIN_RANDOM, ORIGIN_UNCERTAIN
from storage.labels import CLEAR, LABELS, LabelRequest, UnknownMentionError, find_mentions, queue_label
from storage.live import LiveReader, Reading, known_brands, open_alerts, queued_label_count
from storage.stream import LABEL_CHOICES, Cursor, StreamFilter, StreamPage, stream_choices, stream_page, utc_time

ALERT_NOTICES = {"acknowledge": "Alert acknowledged: queued for the daemon, which records it after its next cycle.",
                 "resolve": "Alert resolved: queued for the daemon, which closes it after its next cycle."}
NOTICES = {label: f"Label '{label}' queued: the daemon applies it after its next cycle, and the figures "
                  f"change once the hourly stage has recomputed that hour." for label in (*LABELS, CLEAR)}
# How a label from the view was given (labels.origin): a thread's form, or the panel of
# mentions to label next (uncertain ones, or the random sample).
ORIGIN_WEB = "web"
WEB_ORIGINS = (ORIGIN_WEB, ORIGIN_UNCERTAIN, ORIGIN_RANDOM)
EXTENSIONS = ("listener.web.routes_charts", "listener.web.routes_care")
# Answers kept by ReadCache (a stream page of 50 mentions is ~50 kB).
READ_CACHE_SIZE = 256
T = TypeVar("T")
# Seconds between two live updates of the stream (at most the page's --refresh).
LIVE_INTERVAL = 30
# Where a form may send the browser back to: "/", a brand page as brand_path writes it, or
# the stream with a query as urlencode writes it.
BACK_PATH = re.compile(r"/(brand/[A-Za-z0-9._~%-]+)?|/stream(\?[A-Za-z0-9._~%=&+-]*)?")


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class ReadCache:
    """What requests read from one unchanging thing (a published snapshot, or the view's
    own copy: Reading.version, None for neither, which is never cached), by question: a
    snapshot never changes once published, so the same question asked again before the
    next one gets the same answer without a query. Answers that depend on the view's time
    are asked by the minute (as listener.web.routes_charts.AnswerCache's). Least recently
    used first out; ``computed`` counts what was read, by kind (for tests and logs)."""

    def __init__(self, size: int = READ_CACHE_SIZE) -> None:
        self.size = size
        self.computed: dict[str, int] = {}
        self._answers: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, reading: Reading, question: tuple, compute: Callable[[], T]) -> T:
        if reading.version is None:
            return compute()
        key = (reading.version, *question)
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
        answer = compute()
        with self._lock:
            self.computed[question[0]] = self.computed.get(question[0], 0) + 1
            self._answers[key] = answer
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
        return answer


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
    read_cache: ReadCache = field(init=False, default_factory=lambda: ReadCache())

    def __post_init__(self) -> None:
        self.reader = LiveReader(self.database)
        if self.token:
            # Whatever a client types (the token in a path, URL-encoded or not) is logged
            # through connectors.errors.excerpt, which redacts every form of it.
            register_secret(self.token)

    def now(self) -> datetime:
        return self.as_of or self.clock()

    def stream_choices(self, reading: Reading, now: datetime) -> dict[str, list[str]]:
        """What the stream's menus offer (storage.stream.stream_choices), read once per
        thing read and minute (every page of the stream shows them)."""
        return self.read_cache.get(reading, ("stream_choices", _minute(now)), lambda: stream_choices(reading.store, now))

    def stream_page(self, reading: Reading, chosen: StreamFilter, now: datetime, **cursors: Cursor | None) -> StreamPage:
        """storage.stream.stream_page, kept per thing read, filter, cursor and minute: the
        same page asked again (a reload, a colleague's shared link) is not read again."""
        key = ("stream_page", chosen, tuple(sorted(cursors.items())), _minute(now))
        return self.read_cache.get(reading, key, lambda: stream_page(reading.store, chosen, now=now, **cursors))

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


def live(request: Request) -> LiveApp:
    """The LiveApp behind ``request``'s app."""
    return request.app.state.live


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered as this app's page (its scripts, its CSRF token as ``csrf``)."""
    context.setdefault("csrf", live(request).csrf)
    return HTMLResponse(render(template, scripts=request.app.state.scripts, **context), status)


def message(status: int, title: str, text: str, headers: dict[str, str] | None = None,
            refresh: int | None = None) -> HTMLResponse:
    return HTMLResponse(render_message(title, text, refresh=refresh), status, headers=headers)


def _notice(request: Request) -> str | None:
    """The message a form's redirect asked for (queued=LABEL or alert=ACTION)."""
    return NOTICES.get(request.query_params.get("queued", "")) or ALERT_NOTICES.get(
        request.query_params.get("alert", ""))


def _back_with(form: dict[str, str], request: Request, **notice: str) -> str:
    """Where the form sends the browser back to, with ``notice`` in its query: only the
    view's own pages (no open redirect, no header injection), an older notice dropped."""
    back = form.get("back") or "/"
    if not request.app.state.back_allowed(back):
        back = "/"
    path, _, query = back.partition("?")
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] not in notice]
    return path + "?" + "&".join(kept + [urlencode(notice)])


def _own_page(path: str) -> bool:
    """"/" or a brand page as brand_path writes it."""
    return BACK_PATH.fullmatch(path) is not None


# -- routes ---------------------------------------------------------------------------------


def overview(request: Request) -> Response:
    return _page(request, None, "/")


def brand(request: Request) -> Response:
    # The raw path, decoded strictly: the server's own decoding replaces bad UTF-8.
    raw = request.scope.get("raw_path") or request.url.path.encode()
    try:
        name = unquote(raw.decode("latin-1")[len("/brand/"):], errors="strict")
    except UnicodeDecodeError:
        raise Refused(HTTPStatus.BAD_REQUEST, "Bad request", "The address is not valid UTF-8.") from None
    return _page(request, name, "/brand/" + quote(name, safe=""))


def _page(request: Request, only: str | None, self_path: str) -> Response:
    app = live(request)
    try:
        view = app.view(only)
    except UnknownBrand:
        raise Refused(HTTPStatus.NOT_FOUND, "Unknown brand", f"No brand named {only!r} in this view.") from None
    view["workspace_alerts"] = workspace_alerts(
        [a for a in view.get("alerts") or [] if only is None or a["brand"] == only], app.database)
    html = render_page(view, csrf=app.csrf, refresh=app.refresh, notice=_notice(request), self_path=self_path,
                       only=only, scripts=request.app.state.scripts)
    return HTMLResponse(html)


def _stream_query(request: Request) -> tuple[StreamFilter, Cursor | None]:
    """The stream's filter and page cursor from the URL; Refused (400) naming a bad field."""
    params = request.query_params
    if any(len(params.getlist(k)) > 1 for k in params.keys()):
        raise Refused(HTTPStatus.BAD_REQUEST, "Bad filter", "Each filter may appear once in the address.")
    try:
        after = Cursor.decode(params["after"]) if params.get("after") else None
        return StreamFilter.from_query(params), after
    except ValueError as exc:
        raise Refused(HTTPStatus.BAD_REQUEST, "Bad filter", str(exc)) from None


def stream(request: Request) -> Response:
    """The mention stream: filters in the URL, newest first, keyset pages ("after")."""
    app = live(request)
    chosen, after = _stream_query(request)
    now = app.now()
    query = chosen.to_query()
    with app.reader.reading() as reading:
        found = app.stream_page(reading, chosen, now, after=after)
        choices = app.stream_choices(reading, now)
        alerts = open_alerts(reading.store, now)
    here = "/stream" + ("?" + urlencode({**query, **({"after": after.encode()} if after else {})}) if query or after
                        else "")
    next_url = "/stream?" + urlencode({**query, "after": found.next.encode()}) if found.next else None
    # The first page updates itself: newer mentions are asked for every LIVE_INTERVAL s.
    live_url = None if after is not None else "/stream/new?" + urlencode(
        {**query, **({"since": found.top.encode()} if found.top else {})})
    return page(request, "stream.html", title="Mentions", now=now, query=query, choices=choices,
                label_choices=LABEL_CHOICES, mentions=[m.to_json() for m in found.mentions], next_url=next_url,
                first_page=after is None, back=here,
                searched_to=found.next.created_at if found.next and found.next.id == "" else None, live_url=live_url, interval=min(app.refresh, LIVE_INTERVAL), alerts=workspace_alerts(alerts, app.database), error=None,
                notice=_notice(request),
                labels_queued=queued_label_count(app.database))


def workspace_alerts(alerts: list[dict[str, Any]], database: Path) -> list[dict[str, Any]]:
    """Open alerts as the workspace shows them: each with its explanation in words
    (analysis.alerts.describe, as `listener alerts` prints it), the stream of the posts
    behind it (its brand in the detector's window; a mood dip's negative ones, a rise's
    positive ones), and an acknowledgement or resolution still queued for the daemon."""
    queued = queued_alert_actions(database)
    out = []
    for alert in alerts:
        explanation: dict[str, Any] = {}
        try:
            parsed = json.loads(alert.get("explanation") or "{}")
            explanation = parsed if isinstance(parsed, dict) else {}
            lines = describe({**alert, "explanation": explanation})[1:]
        except (ValueError, KeyError, TypeError):
            lines = []
        window = explanation.get("window") or {}
        try:
            start, end = utc_time(window["start"]), utc_time(window["end"])
        except (KeyError, TypeError, ValueError):
            start = utc_time(alert["hour"])
            end = start + timedelta(hours=1)
        label = None if alert.get("metric") != "mood" else "negative" if alert.get("direction") == "dip" else "positive"
        chosen = StreamFilter(brand=alert["brand"], start=start, end=end, label=label)
        out.append({**alert, "explanation": "\n".join(lines), "stream_url": "/stream?" + urlencode(chosen.to_query()),
                    "queued": queued.get(alert["alert_id"])})
    return out


def alert_action(request: Request) -> Response:
    """Queue an acknowledgement or resolution of an alert (storage.alert_actions); the
    daemon applies it and records it in alerts. The form was checked by the middleware."""
    app = live(request)
    form: dict[str, str] = request.state.form
    try:
        action = AlertAction(alert_id=int(form.get("alert", "")), action=form.get("action", ""), by="live view")
    except ValueError as exc:
        raise Refused(HTTPStatus.BAD_REQUEST, "Bad form", f"Not an alert action: {exc}") from None
    with app.reader.reading() as reading:
        try:
            check_alert(reading.store, action.alert_id)
        except UnknownAlertError as exc:
            raise Refused(HTTPStatus.NOT_FOUND, "Unknown alert", str(exc)) from None
    queue_alert_action(app.database, action, app.clock())
    return RedirectResponse(_back_with(form, request, alert=action.action), status_code=303)


def stream_new(request: Request) -> Response:
    """The live update of the stream's first page: the mentions newer than ``since`` (the
    newest one the page shows) under the same filter, as the page's own <li> items, and
    the new ``since``. JSON: {"count", "html", "since"}."""
    app = live(request)
    chosen, _ = _stream_query(request)
    try:
        since = Cursor.decode(request.query_params["since"]) if request.query_params.get("since") else None
    except ValueError as exc:
        raise Refused(HTTPStatus.BAD_REQUEST, "Bad filter", str(exc).replace("after:", "since:")) from None
    now = app.now()
    with app.reader.reading() as reading:
        found = app.stream_page(reading, chosen, now, newer_than=since)
    query = chosen.to_query()
    html = render("stream_items.html", mentions=[m.to_json() for m in found.mentions], now=now, csrf=app.csrf,
                  back="/stream" + ("?" + urlencode(query) if query else ""))
    top = found.top or since
    body = {"count": len(found.mentions), "html": html, "since": top.encode() if top else None}
    return Response(json.dumps(body, ensure_ascii=False).encode("utf-8"), media_type="application/json; charset=utf-8")


def stream_json(request: Request) -> Response:
    """The stream's page as JSON (the same filter and cursor as /stream)."""
    app = live(request)
    chosen, after = _stream_query(request)
    with app.reader.reading() as reading:
        found = app.stream_page(reading, chosen, app.now(), after=after)
    body = {"filter": chosen.to_query(), "mentions": [m.to_json() for m in found.mentions],
            "next": found.next.encode() if found.next else None}
    return Response(json.dumps(body, ensure_ascii=False).encode("utf-8"), media_type="application/json; charset=utf-8")


def live_json(request: Request) -> Response:
    body = json.dumps(live(request).view(), indent=2, ensure_ascii=False).encode("utf-8", "replace")
    return Response(body, media_type="application/json; charset=utf-8")


def label(request: Request) -> Response:
    """Queue a label for the daemon; the form was checked by the middleware (CSRF, origin)."""
    app = live(request)
    form: dict[str, str] = request.state.form
    value = form.get("label", "")
    if value not in LABELS and value != CLEAR:
        raise Refused(HTTPStatus.BAD_REQUEST, "Bad label", "The label must be positive, neutral or negative.")
    mention_id, source, brand_name = form.get("id", ""), form.get("source") or None, form.get("brand") or None
    if not mention_id or len(mention_id) > 2048 or len(source or "") > 200 or len(brand_name or "") > 500:
        raise Refused(HTTPStatus.BAD_REQUEST, "Bad mention", "The form does not name a mention.")
    origin = form.get("origin") or ORIGIN_WEB
    if origin not in WEB_ORIGINS:
        raise Refused(HTTPStatus.BAD_REQUEST, "Bad form", "The form's origin is not one of this view's.")
    labelled = LabelRequest(id=mention_id, label=value, source=source, brand=brand_name, by="live view", origin=origin)
    try:
        app.check_label(labelled)
    except UnknownMentionError as exc:
        raise Refused(HTTPStatus.NOT_FOUND, "Unknown mention", str(exc)) from None
    queue_label(app.database, labelled, app.clock())
    return RedirectResponse(_back_with(form, request, queued=value), status_code=303)


# -- errors ----------------------------------------------------------------------------------


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {404: ("Not found", "No such page in the live view."),
              405: ("Method not allowed", "This address does not take that method.")}
    title, text = titles.get(exc.status_code, (HTTPStatus(exc.status_code).phrase, str(exc.detail)))
    return message(exc.status_code, title, text, dict(exc.headers or {}))


def _locked(request: Request, exc: Exception) -> Response:
    return message(503, "Waiting for the daemon",
                   "The daemon holds the database and has not published its snapshot yet; this page retries in 10 s.",
                   {"Retry-After": "10"}, refresh=10)


def _storage_error(request: Request, exc: Exception) -> Response:
    logging.getLogger("listener.web").error("live view: %s", exc)
    return message(500, "Cannot read the database", str(exc))


def create_app(state: LiveApp) -> Starlette:
    """The app: routes, static files, the access middleware, and what the modules in
    EXTENSIONS ``register`` (see the module docstring)."""
    routes = [
        Route("/", overview, methods=["GET"]),
        Route("/brand/{name:path}", brand, methods=["GET"]),
        Route("/api/live.json", live_json, methods=["GET"]),
        Route("/stream", stream, methods=["GET"]),
        Route("/api/stream.json", stream_json, methods=["GET"]),
        Route("/stream/new", stream_new, methods=["GET"]),
        Route("/label", label, methods=["POST"]),
        Route("/alert", alert_action, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={
        HTTPException: _http_error, DatabaseLockedError: _locked, StorageError: _storage_error})
    app.state.live = state
    app.state.scripts = []
    # Where a form may send the browser back to; a route module may widen it.
    app.state.back_allowed = _own_page
    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)
    app.add_middleware(AccessMiddleware, token=state.token, csrf=state.csrf, routes=app.router.routes)
    return app
