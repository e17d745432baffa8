"""The workspace's routes in-process (Starlette TestClient) on a real database: the
stream page with its filters in the URL, hostile text as text, a label and an alert
action queued from it and back to the same filtered view, and bad input refused with
the field named."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from analysis.sentiment import VaderScorer
from listener.web import LiveApp, create_app
from storage.labels import inbox_path
from tests.system.live_site import AS_OF, HOSTILE_ID, build_database

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_database(tmp_path_factory.mktemp("workspace"))


@pytest.fixture
def client(world):
    state = LiveApp(database=world["database"], brands=(), scorer=VaderScorer(), clock=lambda: AS_OF, as_of=AS_OF)
    for path in world["database"].parent.glob("*inbox.jsonl"):
        path.unlink()
    with TestClient(create_app(state), base_url="http://127.0.0.1:8177", follow_redirects=False) as c:
        c.state = state
        yield c
    state.reader.close()


def _ids(page: str) -> list[str]:
    return re.findall(r'<li class="mention" data-id="([^"]*)"', page)


def test_the_stream_shows_what_its_url_asks_for(client):
    page = client.get("/stream").text
    assert len(_ids(page)) == 50 and 'rel="next"' in page
    acme_negative = client.get("/stream", params={"brand": "Acme", "label": "negative", "source": "mastodon"}).text
    assert _ids(acme_negative) and all(re.search(r'data-label="negative"', li) for li in
                                       re.findall(r'<li class="mention"[^>]*>', acme_negative))
    assert '<option value="Acme" selected>' in acme_negative  # the form shows the filter in effect
    found = client.get("/stream", params={"q": "onerror"}).text
    assert _ids(found) == [HOSTILE_ID]
    # the JSON of the same filter, and its next page by cursor
    data = client.get("/api/stream.json", params={"brand": "Initech"}).json()
    assert len(data["mentions"]) == 50 and {m["brand"] for m in data["mentions"]} == {"Initech"}
    older = client.get("/api/stream.json", params={"brand": "Initech", "after": data["next"]}).json()
    assert older["mentions"][0]["created_at"] <= data["mentions"][-1]["created_at"]
    assert not {m["id"] for m in older["mentions"]} & {m["id"] for m in data["mentions"]}


def test_a_conversation_link_lands_on_its_posts_and_the_menus_are_read_once(client):
    """A chart's conversation link (source and conversation=) opens that thread's posts,
    and the form keeps the thread; the filter menus are computed once per thing read
    (here: the view's copy) and minute, not for every page."""
    opened = client.get("/api/stream.json", params={"brand": "Acme"}).json()["mentions"]
    thread = next(m for m in opened if sum(o["conversation_id"] == m["conversation_id"] for o in opened) > 1)
    asked = {"source": thread["source"], "conversation": thread["conversation_id"]}
    found = client.get("/api/stream.json", params=asked).json()
    assert found["filter"] == asked
    assert {(m["source"], m["conversation_id"]) for m in found["mentions"]} == {tuple(asked.values())}
    assert {m["id"] for m in opened if m["conversation_id"] == thread["conversation_id"]} <= {
        m["id"] for m in found["mentions"]}
    page = client.get("/stream", params=asked).text
    assert f'name="conversation" value="{thread["conversation_id"]}"' in page
    assert set(_ids(page)) == {m["id"] for m in found["mentions"]}
    computed = dict(client.state.read_cache.computed)
    assert client.get("/stream", params=asked).text == page  # the same page again: read once
    client.get("/stream", params={"brand": "Initech"})  # another page: read
    assert client.state.read_cache.computed == {"stream_choices": 1, "stream_page": computed["stream_page"] + 1}


def test_the_overview_and_brand_pages_update_in_place_not_by_reloading(client):
    """The pages replace their live parts with a fresh copy's (static/app.js) instead of
    a full reload every 60 s: the reload is left only to browsers without scripts."""
    for path in ("/", "/brand/Acme"):
        page = client.get(path).text
        head, body = page.split("</head>")
        assert re.fullmatch(r'.*<noscript><meta http-equiv="refresh" content="60; url=[^"]*"></noscript>.*', head, re.S)
        assert head.count("http-equiv") == 2  # the CSP and the noscript reload
        assert f'data-live-page="60" data-live-url="{path}"' in body
        assert body.count("data-live-part=") == 2 and "updates itself every 60 s" in body


def test_hostile_text_in_the_stream_stays_text(client):
    page = client.get("/stream", params={"q": "onerror"}).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;b&gt;mallory&lt;/b&gt;" in page and "<b>mallory" not in page
    assert "javascript:" not in page and "<img" not in page
    assert all(s == '<script src="/static/app.js" defer>' for s in re.findall(r"<script\b[^>]*>", page))


@pytest.mark.parametrize("params, field", [
    ({"label": "ecstatic"}, "label"), ({"start": "yesterday"}, "start"), ({"after": "garbage"}, "after"),
    ({"duplicates": "sometimes"}, "duplicates"),
])
def test_a_bad_filter_is_refused_naming_the_field(client, params, field):
    answer = client.get("/stream", params=params)
    assert answer.status_code == 400 and f"{field}:" in answer.text
    assert client.get("/api/stream.json", params=params).status_code == 400


def _form_of(page: str, action: str, marker: str) -> dict[str, str]:
    form = next(f for f in re.findall(r'<form method="post" action="' + action + r'".*?</form>', page, re.S)
                if marker in f)
    return {k: v.replace("&amp;", "&") for k, v in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"',
                                                                form)}


def test_a_label_from_the_stream_is_queued_and_leads_back_to_the_same_view(client, world):
    page = client.get("/stream", params={"q": "onerror", "brand": "Acme"}).text
    fields = _form_of(page, "/label", f'value="{HOSTILE_ID}"')
    answer = client.post("/label", data={**fields, "label": "neutral"}, headers=FORM)
    assert answer.status_code == 303
    target = urlsplit(answer.headers["location"])
    assert target.path == "/stream" and parse_qs(target.query) == {"q": ["onerror"], "brand": ["Acme"],
                                                                   "queued": ["neutral"]}
    (line,) = inbox_path(world["database"]).read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["id"] == HOSTILE_ID and json.loads(line)["label"] == "neutral"
    back = client.get(answer.headers["location"]).text
    assert "Label &#39;neutral&#39; queued" in back and "1 label(s) queued" in back


def test_alerts_sit_on_top_and_are_acknowledged_through_the_inbox(client, world):
    page = client.get("/stream").text
    top = page[:page.index('<form method="get" action="/stream"')]
    assert "Open alerts" in top and "NSS fell &lt;script&gt;alert(4)&lt;/script&gt;" in top
    posts = re.search(r'<a href="([^"]+)" class="posts">', top).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(posts).query) == {"brand": ["Acme"], "label": ["negative"],
                                               "start": ["2026-11-10T09:30"], "end": ["2026-11-10T10:30"]}
    assert client.get(posts).status_code == 200
    fields = _form_of(top, "/alert", 'name="alert"')
    answer = client.post("/alert", data={**fields, "action": "acknowledge"}, headers=FORM)
    assert answer.status_code == 303 and answer.headers["location"] == "/stream?alert=acknowledge"
    inbox = world["database"].with_name("listener.alerts-inbox.jsonl")
    assert json.loads(inbox.read_text(encoding="utf-8"))["action"] == "acknowledge"
    after = client.get("/stream?alert=acknowledge").text
    assert "Alert acknowledged" in after and "acknowledged, waiting for the daemon" in after
    assert 'value="acknowledge"' not in after[:after.index('<form method="get"')]
    for bad, status in (({**fields, "alert": "999"}, 404), ({**fields, "action": "delete"}, 400),
                        ({**fields, "alert": "x"}, 400)):
        assert client.post("/alert", data={**bad, "action": bad.get("action", "resolve")},
                           headers=FORM).status_code == status
    assert len(inbox.read_text(encoding="utf-8").splitlines()) == 1


def test_the_first_page_updates_itself_with_what_is_newer(client, world):
    page = client.get("/stream", params={"brand": "Acme"}).text
    live = re.search(r'data-live="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(live).query)["brand"] == ["Acme"]
    ids = _ids(page)
    assert client.get(live).json() == {"count": 0, "html": "", "since": parse_qs(urlsplit(live).query)["since"][0]}
    # from the third mention's place, the two newer ones come back as the page's own items
    third = client.get("/api/stream.json", params={"brand": "Acme"}).json()["mentions"][2]
    older = client.get("/api/stream.json", params={"brand": "Acme", "after": _cursor(third)}).json()
    assert older["mentions"][0]["id"] == ids[3]
    update = client.get("/stream/new", params={"brand": "Acme", "since": _cursor(third)}).json()
    assert update["count"] == 2 and _ids(update["html"]) == ids[:2]
    assert 'action="/label"' in update["html"] and "/stream?brand=Acme" in update["html"]
    assert client.get("/stream/new", params={"since": "garbage"}).status_code == 400
    # a page further down does not update itself (its top is not the newest)
    assert "data-live" not in client.get("/stream", params={"after": _cursor(third)}).text


def _cursor(mention: dict) -> str:
    from datetime import datetime

    from storage.stream import Cursor

    return Cursor(datetime.fromisoformat(mention["created_at"]), mention["source"], mention["id"],
                  mention["brand"]).encode()
