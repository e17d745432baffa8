"""The chart endpoints and the chart area (listener.web.routes_charts) through Starlette's
TestClient, on a real DuckDB file read the way the view reads it (read-only)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from starlette.testclient import TestClient

from analysis.mood import net_sentiment
from analysis.sentiment import Score, VaderScorer
from connectors.base import Mention
from listener.live_view import BrandView
from listener.web import LiveApp, create_app
from storage.rollup import rollup_pending
from storage.snapshot import publish_snapshot
from storage.store import Store
from tests.timing import HANG_GUARD

NOW = datetime(2026, 11, 10, 12, 30, tzinfo=timezone.utc)
LOCAL = "http://127.0.0.1:8177"
POS, NEU, NEG = Score(0.6, 0.5, 0.5, 0, "positive"), Score(0.0, 0, 1, 0, "neutral"), Score(-0.6, 0, 0.5, 0.5, "negative")


def _fill(database):
    with Store.open(database) as store:
        rows: list[tuple[Mention, Score]] = []
        for day in range(1, 8):
            at = NOW - timedelta(days=day)
            for k in range(20):
                brand = "Acme" if k < 15 else "Rival"
                rows.append((Mention(source="x" if k % 3 else "reddit", id=f"{day}-{k}", brand=brand,
                                     created_at=at + timedelta(minutes=k), author=f"<b>u{k % 4}</b>",
                                     text=f"{brand} recall news #Recall{day} <script>alert(1)</script>",
                                     conversation_id=f"t{day}-{k // 5}", metrics={"likes": k}),
                             [POS, NEU, NEG, POS][k % 4]))
        for brand in ("Acme", "Rival"):
            mine = [r for r in rows if r[0].brand == brand]
            for source in ("x", "reddit"):
                part = [r for r in mine if r[0].source == source]
                store.save_batch([r[0] for r in part], [r[1] for r in part], source=source, brand=brand,
                                 checkpoint=None, now=NOW, scorer="vader", scorer_version="3.3.2")
        rollup_pending(store)
    return rows


@pytest.fixture
def client(tmp_path):
    database = tmp_path / "charts.duckdb"
    rows = _fill(database)
    state = LiveApp(database=database, brands=(BrandView("Acme", ("Rival",)), BrandView("Rival")),
                    scorer=VaderScorer(), clock=lambda: NOW)
    with TestClient(create_app(state), base_url=LOCAL, follow_redirects=False) as c:
        yield c, rows


def test_the_trends_endpoint_gives_columns_checked_against_the_python_nss(client):
    c, rows = client
    answer = c.get("/api/charts/trends", params={"brand": "Acme", "compare": "Rival", "range": "7d",
                                                  "resolution": "day"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["brands"] == ["Acme", "Rival"] and body["range"]["resolution"] == "day"
    assert body["range"]["step_seconds"] == 86400
    acme, rival = body["series"]
    assert len(acme["t"]) == 8 and acme["filling"][-1] and not any(acme["filling"][:-1])
    day = datetime.fromtimestamp(acme["t"][1], timezone.utc)
    mine = [s for m, s in rows if m.brand == "Acme" and day <= m.created_at < day + timedelta(days=1)]
    labels = [s.label for s in mine]
    assert acme["mentions"][1] == len(mine) == 15
    assert acme["raw_nss"][1] == round(net_sentiment(labels.count("positive"), labels.count("negative"), len(mine)), 2)
    assert acme["nss"][1] == acme["raw_nss"][1] and not acme["sparse"][1]
    assert rival["sparse"][1] and rival["nss"][1] is None and rival["raw_nss"][1] is not None  # 5 mentions
    assert rival["low"][1] < rival["high"][1]
    assert body["share_of_voice"]["shares"]["Acme"][1] == 0.75
    assert {s["source"] for s in body["sources"] if s["brand"] == "Acme"} == {"x", "reddit"}


def test_bad_queries_are_refused_naming_the_parameter(client):
    c, _ = client
    cases = [({"brand": "Nobody"}, 404, "brand:"), ({"brand": "Acme", "compare": "Ghost"}, 404, "compare:"),
             ({"brand": "Acme", "range": "1y"}, 400, "range:"), ({"brand": "Acme", "resolution": "minute"}, 400,
                                                                  "resolution:"),
             ({"brand": "Acme", "since": "yesterday"}, 400, "since:"),
             ({"brand": "Acme", "range": "90d", "resolution": "hour", "since": "2025-01-01T00:00:00Z"}, 400,
              "resolution:")]
    for params, status, field in cases:
        for path in ("trends", "terms", "conversations", "authors"):
            if path != "trends" and field in ("compare:",):
                continue
            answer = c.get(f"/api/charts/{path}", params=params)
            assert answer.status_code == status, (path, params)
            assert answer.json()["error"].startswith(field), (path, params, answer.json())


def test_talk_endpoints_for_a_range(client):
    c, _ = client
    since = (NOW - timedelta(days=2)).isoformat().replace("+00:00", "Z")
    terms = c.get("/api/charts/terms", params={"brand": "Acme", "since": since}).json()
    assert terms["start"] == since and terms["end"] == NOW.isoformat().replace("+00:00", "Z")
    # One rule for times across the view: without a zone, UTC (as the stream reads its filters).
    assert c.get("/api/charts/terms", params={"brand": "Acme", "since": since[:-1]}).json() == terms
    assert {t["term"] for t in terms["hashtags"]} <= {"#recall1", "#recall2"}
    threads = c.get("/api/charts/conversations", params={"brand": "Acme", "since": since}).json()
    assert threads["most_active"] and all(t["conversation_id"].startswith(("t1-", "t2-")) for t in threads["most_active"])
    assert all(t["negative"] > 0 for t in threads["most_negative"])
    authors = c.get("/api/charts/authors", params={"brand": "Acme", "range": "7d"}).json()["authors"]
    assert [a["author"] for a in authors][0] == "<b>u2</b>"  # the most likes; the text is data, not markup
    assert authors[0]["engagement"] == sum(k for k in range(15) if k % 4 == 2) * 7


def test_the_pages_carry_the_chart_area_and_its_scripts_without_inline_script(client):
    c, _ = client
    for path in ("/", "/brand/Acme"):
        html = c.get(path).text
        assert 'data-charts data-api="/api/charts" data-stream="/stream"' in html
        assert 'data-brand="Acme"' in html and "data-competitors='[\"Rival\"]'" in html
        assert '<script src="/static/vendor/uPlot.iife.min.js" defer></script>' in html
        assert html.index("uPlot.iife.min.js") < html.index("/static/charts.js")
        assert "<script>" not in html
    assert 'data-brand="Rival"' in c.get("/brand/Rival").text
    for asset in ("/static/charts.js", "/static/charts.css", "/static/vendor/uPlot.iife.min.js",
                  "/static/vendor/uPlot.min.css"):
        assert c.get(asset).status_code == 200, asset


WEEK = {"brand": "Acme", "range": "7d", "resolution": "day"}


@pytest.fixture
def published(tmp_path):
    """The test database with the daemon's snapshot published beside it, its app's
    state and a client."""
    database = tmp_path / "snap.duckdb"
    _fill(database)
    with Store.open(database) as store:
        publish_snapshot(store)
    state = LiveApp(database=database, brands=(BrandView("Acme"),), scorer=VaderScorer(), clock=lambda: NOW)
    with TestClient(create_app(state), base_url=LOCAL) as c:
        yield database, state, c


def test_answers_from_a_snapshot_are_reused_until_the_next_one_is_published(published):
    database, _, c = published
    cache = c.app.state.chart_answers
    first = c.get("/api/charts/trends", params=WEEK).json()
    assert c.get("/api/charts/trends", params=WEEK).json() == first and cache.hits == 1
    assert sum(first["series"][0]["mentions"]) == 105
    with Store.open(database) as store:  # the daemon stores more and publishes again
        store.save_batch([Mention(source="x", id="late", brand="Acme", created_at=NOW - timedelta(hours=2),
                                  text="late", conversation_id="late")], [POS], source="x", brand="Acme",
                         checkpoint=None, now=NOW, scorer="vader", scorer_version="3.3.2")
        publish_snapshot(store)
    again = c.get("/api/charts/trends", params=WEEK).json()
    assert sum(again["series"][0]["mentions"]) == 106 and cache.hits == 1


def test_a_repeated_question_is_answered_without_waiting_for_the_reader(published):
    """An answer already computed from files that have not changed since is given again
    without taking the reader (listener.web.routes_charts.AnswerCache), which may make a
    request wait while it swaps to a new snapshot or copies the database."""
    _, state, c = published
    first = c.get("/api/charts/trends", params=WEEK).json()
    answered, got = threading.Event(), []

    def ask() -> None:
        got.append(c.get("/api/charts/trends", params=WEEK).json())
        answered.set()

    with state.reader.reading():  # another request's queries hold the reader meanwhile
        asking = threading.Thread(target=ask)
        asking.start()
        assert answered.wait(HANG_GUARD), "the repeated question waited for the reader"
    asking.join(HANG_GUARD)
    assert got == [first]
