"""The workspace's charts: JSON endpoints and the chart area of the overview and brand pages.

    GET /api/charts/trends         volume and NSS per bucket (each point with its SE,
                                   interval, sparse and filling flags), share of voice,
                                   sources; ?brand=B[&compare=C1,C2][&range=24h|7d|30d|90d |
                                   &since=ISO[&until=ISO]][&resolution=hour|day|week]
    GET /api/charts/terms          rising terms and hashtags      ?brand=B&range..|since..
    GET /api/charts/conversations  most active, negative, positive threads
    GET /api/charts/authors        authors with the most reach

The figures come from storage.workspace, the range logic from analysis.trends; this
module only parses the query, resolves the brands the view shows, and writes JSON.
listener/web/static/charts.js draws them (uPlot, vendored in static/vendor/) inside
templates/charts/area.html, and sends every click or brushed range to the stream
(``/stream?brand=..&since=..&until=..``, or ``q=``, ``conversation=``, ``author=``).

Errors are JSON ``{"error": "..."}`` naming the parameter: 400 for a bad range or
resolution, 404 for a brand the view does not show.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from analysis.alerts import term_exclusions
from analysis.trends import DEFAULT_PRESET, PRESETS, ChartRange, MoodPoint, RangeError, chart_range
from listener.web.app import live
from storage.live import known_brands
from storage.stream import utc_time
from storage.workspace import conversations, rising_terms, top_authors, trends

MAX_COMPARED = 8  # brands on one chart, the first included
TOP = 10
CACHE_ANSWERS = 512  # answers kept per app (AnswerCache), each up to twice; a 90-day chart of 3 brands is ~60 kB
QUICK_MAX_AGE = 60.0  # seconds a lock-free hit of AnswerCache may be old (its docstring)


class BadQuery(ValueError):
    """A query the endpoints refuse: ``status`` and a message naming the parameter."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _body(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _answer(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type="application/json; charset=utf-8")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    try:
        return utc_time(raw, name) if raw else None
    except ValueError as exc:
        raise BadQuery(HTTPStatus.BAD_REQUEST, str(exc)) from None


def _range(request: Request, now: datetime) -> ChartRange:
    try:
        return chart_range(now, preset=request.query_params.get("range") or None, since=_time(request, "since"),
                           until=_time(request, "until"), resolution=request.query_params.get("resolution") or None)
    except RangeError as exc:
        raise BadQuery(HTTPStatus.BAD_REQUEST, str(exc)) from None


def _shown_brands(request: Request, store: Any, now: datetime) -> dict[str, tuple[str, ...]]:
    """The brands the view shows, each with its competitors."""
    app = live(request)
    if app.brands:
        return {b.name: tuple(b.competitors) for b in app.brands}
    return {name: () for name in known_brands(store, now)}


def _brands(request: Request, shown: dict[str, tuple[str, ...]], compare: bool) -> list[str]:
    brand = request.query_params.get("brand", "")
    if brand not in shown:
        raise BadQuery(HTTPStatus.NOT_FOUND, f"brand: {brand[:100]!r} is not a brand this view shows")
    if not compare:
        return [brand]
    others = [c.strip() for c in request.query_params.get("compare", "").split(",") if c.strip()]
    for other in others:
        if other not in shown:
            raise BadQuery(HTTPStatus.NOT_FOUND, f"compare: {other[:100]!r} is not a brand this view shows")
    chosen = list(dict.fromkeys([brand, *others]))
    if len(chosen) > MAX_COMPARED:
        raise BadQuery(HTTPStatus.BAD_REQUEST, f"compare: at most {MAX_COMPARED - 1} brands beside {brand!r}")
    return chosen


class AnswerCache:
    """Answers computed from one published snapshot, by request: a snapshot never changes
    once published (the daemon renames a new one into place), so the same question asked
    again before the next publication (a dashboard reloaded, a colleague on the same
    brand) gets the same bytes without a query. Keyed by the snapshot's publication time,
    the endpoint, the query string and the view's time to the minute (what a chart's
    filling bucket and a preset's window depend on). Answers read from the database
    itself (no daemon) are kept only under the files' identities (below).

    The reader (storage.live.LiveReader) makes a request wait while it swaps to a new
    snapshot or copies the database, so an answer is also kept under the identities
    (inode, mtime, size) of the files the reader chooses from (LiveReader.files) as they
    were before and after it was computed, and looked up before taking the reader: while
    none of those files changed, the reader would read what it read then. For the one case the files do not show (a writer that
    stopped without touching them) such a lock-free hit is used for QUICK_MAX_AGE only."""

    def __init__(self, size: int = CACHE_ANSWERS, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._answers: OrderedDict[tuple, tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: tuple, max_age: float | None = None) -> bytes | None:
        with self._lock:
            found = self._answers.get(key)
            if found is None or (max_age is not None and self.clock() - found[1] > max_age):
                return None
            self._answers.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: tuple, body: bytes) -> None:
        with self._lock:
            self._answers[key] = (body, self.clock())
            self._answers.move_to_end(key)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)


def _endpoint(handler: Callable[[Request, Any, datetime], Any]) -> Callable[[Request], Response]:
    """A sync endpoint (Starlette runs it in its thread pool) reading the view's data."""

    def endpoint(request: Request) -> Response:
        app = live(request)
        cache: AnswerCache = request.app.state.chart_answers
        now = app.now()
        question = (handler.__name__, str(request.query_params), now.replace(second=0, microsecond=0))
        files = app.reader.files()
        body = cache.get(("files", files, *question), max_age=QUICK_MAX_AGE)
        if body is not None:
            return _answer(body)
        key = None
        try:
            with app.reader.reading() as reading:
                if reading.kind == "snapshot":
                    key = ("snapshot", reading.published_at, *question)
                    body = cache.get(key)
                if body is None:
                    body = _body(handler(request, reading.store, now))
        except BadQuery as exc:
            return _answer(_body({"error": str(exc)}), exc.status)
        if key is not None:
            cache.put(key, body)
        if app.reader.files() == files:  # nothing changed while it was read: what the reader read then
            cache.put(("files", files, *question), body)
        return _answer(body)

    endpoint.__name__ = handler.__name__
    return endpoint


def _points(points: tuple[MoodPoint, ...]) -> dict[str, list]:
    """A series as columns (what uPlot draws): epoch seconds, counts, the NSS the line may
    show (None when sparse), the plain NSS and SE, the interval and the flags."""
    return {
        "t": [int(p.start.timestamp()) for p in points],
        "mentions": [p.mood.mentions for p in points],
        "scored": [p.mood.scored for p in points],
        "positive": [p.mood.positive for p in points],
        "neutral": [p.mood.neutral for p in points],
        "negative": [p.mood.negative for p in points],
        "nss": [_round(p.shown) for p in points],
        "raw_nss": [_round(p.mood.nss) for p in points],
        "nss_se": [_round(p.mood.nss_se) for p in points],
        "low": [_round(p.low) for p in points],
        "high": [_round(p.high) for p in points],
        "sparse": [p.sparse for p in points],
        "filling": [p.filling for p in points],
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _trends(request: Request, store: Any, now: datetime) -> dict[str, Any]:
    span = _range(request, now)
    brands = _brands(request, _shown_brands(request, store, now), compare=True)
    found = trends(store, brands, span, now)
    return {
        "brands": brands,
        "now": _iso(now),
        "range": {"start": _iso(span.start), "end": _iso(span.end), "resolution": span.resolution,
                  "step_seconds": int(span.step.total_seconds())},
        "series": [{"brand": s.brand, **_points(s.points)} for s in found.series],
        "share_of_voice": {
            "t": [int(p.start.timestamp()) for p in found.share_of_voice],
            "volumes": {b: [p.volumes[b] for p in found.share_of_voice] for b in brands},
            "shares": {b: [_round(p.shares[b], 4) for p in found.share_of_voice] for b in brands},
        },
        "sources": [{"brand": s.brand, "source": s.source, "mentions": s.point.mood.mentions, "share": _round(s.share, 4),
                     "scored": s.point.mood.scored, "nss": _round(s.point.mood.nss),
                     "nss_se": _round(s.point.mood.nss_se), "low": _round(s.point.low), "high": _round(s.point.high),
                     "sparse": s.point.sparse}
                    for s in found.sources],
    }


def _window(request: Request, now: datetime) -> tuple[str, datetime, datetime]:
    _range(request, now)  # the same checks as a chart's
    # The talk sections read exactly the range asked for, not widened to whole buckets.
    since, until = _time(request, "since"), _time(request, "until")
    end = (until or now).astimezone(timezone.utc)
    start = since.astimezone(timezone.utc) if since is not None else end - PRESETS[
        request.query_params.get("range") or DEFAULT_PRESET][0]
    return request.query_params.get("brand", ""), start, end


def _terms(request: Request, store: Any, now: datetime) -> dict[str, Any]:
    _brands(request, _shown_brands(request, store, now), compare=False)
    brand, start, end = _window(request, now)
    found = rising_terms(store, brand, start, end, exclude=term_exclusions([brand]), top=TOP)
    as_json = lambda terms: [{"term": t.term, "mentions": t.mentions, "share": t.share,  # noqa: E731
                              "baseline_share": t.baseline_share, "z": t.z} for t in terms]
    return {"brand": brand, "start": _iso(start), "end": _iso(end), "baseline_start": _iso(found.baseline_start),
            "terms": as_json(found.terms), "hashtags": as_json(found.hashtags)}


def _conversations(request: Request, store: Any, now: datetime) -> dict[str, Any]:
    _brands(request, _shown_brands(request, store, now), compare=False)
    brand, start, end = _window(request, now)
    found = conversations(store, brand, start, end, top=TOP)

    def as_json(threads):
        return [{name: (_iso(v) if isinstance(v, datetime) else v) for name, v in
                 ((n, getattr(c, n)) for n in c.__slots__)} for c in threads]

    return {"brand": brand, "start": _iso(start), "end": _iso(end), "most_active": as_json(found.most_active),
            "most_negative": as_json(found.most_negative), "most_positive": as_json(found.most_positive)}


def _authors(request: Request, store: Any, now: datetime) -> dict[str, Any]:
    _brands(request, _shown_brands(request, store, now), compare=False)
    brand, start, end = _window(request, now)
    found = top_authors(store, brand, start, end, now, limit=TOP)
    return {"brand": brand, "start": _iso(start), "end": _iso(end), "authors": [
        {"author": a.author, "sources": list(a.sources), "engagement": a.engagement, "mentions": a.point.mood.mentions,
         "scored": a.point.mood.scored, "nss": _round(a.point.mood.nss), "low": _round(a.point.low),
         "high": _round(a.point.high), "sparse": a.point.sparse} for a in found]}


def register(app: Starlette) -> None:
    """Add the endpoints and the answer cache (listener.web.app's extension hook)."""
    for path, handler in (("trends", _trends), ("terms", _terms), ("conversations", _conversations),
                          ("authors", _authors)):
        app.router.routes.append(Route(f"/api/charts/{path}", _endpoint(handler), methods=["GET"]))
    # The scripts are not added to app.state.scripts (every page): only the pages with
    # a chart area load them, from templates/charts/area.html.
    app.state.chart_answers = AnswerCache()

