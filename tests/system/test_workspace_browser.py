"""The workspace as a person uses it: Debian's headless Chromium, driven by Playwright,
on a real `listener serve` over a real database. Filter the stream, search it, label a
mention and see it queued, acknowledge an alert; hostile mention text stays text (no
element, no script run); the console stays clean (no error, no CSP violation: a canary
shows a violation would be seen); the stream is usable at phone width (375 px).

Screenshots of the main views go to $WORKSPACE_SCREENSHOTS (else the test's temporary
directory) for review. Needs /usr/bin/chromium (`apt-get install -y chromium`) and the
[test] extra's playwright (its Python package only: no browser is downloaded).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from analysis.sentiment import VaderScorer
from connectors.base import Mention
from storage.labels import LabelRequest, inbox_path, queue_label
from storage.store import Store
from tests.system.chromium import CHROMIUM, PLAYWRIGHT_ARGS, need_chromium
from tests.system.live_site import AS_OF, HOSTILE, HOSTILE_ID, Server, build_database
from tests.timing import HANG_GUARD


sync_api = pytest.importorskip("playwright.sync_api", reason="needs the [test] extra (playwright)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need_chromium()
    tmp = tmp_path_factory.mktemp("workspace-browser")
    world = build_database(tmp / "db")
    server = Server(world["config"])
    shots = Path(os.environ.get("WORKSPACE_SCREENSHOTS") or tmp / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=PLAYWRIGHT_ARGS)
        try:
            yield {"world": world, "server": server, "url": f"http://127.0.0.1:{server.port}", "browser": browser,
                   "shots": shots}
        finally:
            browser.close()
            assert server.stop() == 0


class Tab:
    """A page that records every console message of type error or warning, page errors
    and calls to window.alert (a script that should never run)."""

    def __init__(self, site: dict, width: int = 1280, height: int = 900) -> None:
        self.context = site["browser"].new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.page.set_default_timeout(HANG_GUARD * 1000)
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"{m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        # Runs before the page's own scripts, outside its CSP: notes any alert() call.
        self.page.add_init_script("window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m));")
        self.url = site["url"]

    def open(self, path: str) -> None:
        answer = self.page.goto(self.url + path)
        assert answer is not None and answer.status == 200, (path, answer and answer.status)

    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.page.url).query)

    def close(self) -> list[str]:
        alerts = self.page.evaluate("window.__alerts")
        self.context.close()
        return self.problems + [f"alert() ran: {a}" for a in alerts]


@pytest.fixture
def tab(site):
    opened = Tab(site)
    yield opened
    assert opened.close() == [], "console errors, CSP violations or scripts that ran"


@pytest.fixture
def inboxes(site):
    database = site["world"]["database"]
    paths = (inbox_path(database), database.with_name("listener.alerts-inbox.jsonl"))
    for path in paths:
        path.unlink(missing_ok=True)
    yield paths
    for path in paths:
        path.unlink(missing_ok=True)


def _cards(tab: Tab) -> list[dict]:
    return tab.page.eval_on_selector_all(
        "li.mention", "els => els.map(e => ({id: e.dataset.id, label: e.dataset.label, "
        "brand: e.querySelector('.brand').innerText, text: e.querySelector('.text').innerText}))")


def test_filter_the_stream(site, tab):
    tab.open("/stream")
    assert len(_cards(tab)) == 50
    tab.page.select_option("select[name=brand]", "Acme")
    tab.page.select_option("select[name=label]", "negative")
    tab.page.select_option("select[name=source]", "mastodon")
    tab.page.click("form.filters button[type=submit]")
    tab.page.wait_for_url("**/stream?**")
    query = tab.query()
    assert (query["brand"], query["label"], query["source"]) == (["Acme"], ["negative"], ["mastodon"])
    cards = _cards(tab)
    assert cards and all(c["brand"] == "Acme" and c["label"] == "negative" for c in cards)
    tab.page.screenshot(path=site["shots"] / "stream-filtered.png", full_page=False)
    # the filtered view is a URL: opened again (shared), it shows the same
    tab.open("/stream?" + urlsplit(tab.page.url).query)
    assert _cards(tab) == cards
    # older mentions: the next page continues where this one ended
    if tab.page.locator("a.older").count():
        tab.page.click("a.older")
        tab.page.wait_for_url("**after=**")
        assert not {c["id"] for c in _cards(tab)} & {c["id"] for c in cards}


def test_search_finds_the_hostile_post_and_it_stays_text(site, tab):
    tab.open("/stream")
    tab.page.fill("input[name=q]", "onerror")
    tab.page.press("input[name=q]", "Enter")
    tab.page.wait_for_url("**q=onerror**")
    (card,) = _cards(tab)
    assert card["id"] == HOSTILE_ID
    shown = HOSTILE.replace("\x00", "\u2400").replace("\x07", "\u2407").replace("\x1b", "\u241b")
    assert card["text"] == shown  # the markup as characters, control characters as symbols
    main = tab.page.evaluate("""() => ({
        scripts: [...document.scripts].map(s => s.getAttribute('src')),
        images: document.querySelectorAll('main img').length,
        bold: document.querySelectorAll('main b').length,
        javascriptLinks: [...document.links].filter(a => a.protocol === 'javascript:').length,
        author: document.querySelector('li.mention .author').innerText})""")
    assert main == {"scripts": ["/static/app.js"], "images": 0, "bold": 0, "javascriptLinks": 0,
                    "author": "<b>mallory</b>"}


def test_label_a_mention_and_see_it_queued(site, tab, inboxes):
    tab.open("/stream?q=onerror&brand=Acme")
    tab.page.click(f"li.mention[data-id='{HOSTILE_ID}'] form.label button[value=positive]")
    tab.page.wait_for_url("**queued=positive**")
    assert tab.query() == {"q": ["onerror"], "brand": ["Acme"], "queued": ["positive"]}
    assert "queued" in tab.page.inner_text(".notice")
    assert "1 label(s) queued for the daemon" in tab.page.inner_text("main")
    (line,) = inboxes[0].read_text(encoding="utf-8").splitlines()
    queued = json.loads(line)
    assert (queued["id"], queued["label"], queued["brand"], queued["by"]) == (HOSTILE_ID, "positive", "Acme",
                                                                              "live view")


def test_acknowledge_an_alert(site, tab, inboxes):
    tab.open("/stream")
    alert = tab.page.locator("section.alerts-open li.alert").first
    assert "NSS fell <script>alert(4)</script>" in alert.inner_text()
    alert.locator("summary").click()  # its explanation opens
    assert "control limit" in alert.locator("p.why").inner_text()
    alert.locator("button[value=acknowledge]").click()
    tab.page.wait_for_url("**alert=acknowledge**")
    assert "Alert acknowledged" in tab.page.inner_text(".notice")
    assert "acknowledged, waiting for the daemon" in tab.page.inner_text("section.alerts-open")
    assert json.loads(inboxes[1].read_text(encoding="utf-8"))["action"] == "acknowledge"
    # the posts behind it: the stream filtered to its brand, window and sentiment
    tab.page.click("section.alerts-open a.posts")
    tab.page.wait_for_url("**/stream?**")
    assert tab.query()["brand"] == ["Acme"] and tab.query()["label"] == ["negative"]
    tab.page.screenshot(path=site["shots"] / "stream-alert-posts.png")


def test_the_console_would_show_a_csp_violation(site):
    """The canary: an inline script is refused by the page's CSP, and that is seen."""
    canary = Tab(site)
    canary.open("/stream")
    with pytest.raises(sync_api.Error):
        canary.page.add_script_tag(content="window.inlineRan = true")
    assert canary.page.evaluate("window.inlineRan === undefined")
    problems = canary.close()
    assert any("Content Security Policy" in p for p in problems), problems


@pytest.mark.parametrize("path", ["/stream", "/", "/brand/Acme"])
def test_pages_work_at_phone_width(site, path):
    phone = Tab(site, width=375, height=812)
    phone.open(path)
    wide = phone.page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 375, f"{path} scrolls sideways at 375 px ({wide} px wide)"
    name = "stream" if path == "/stream" else "overview" if path == "/" else "brand"
    phone.page.screenshot(path=site["shots"] / f"{name}-phone.png", full_page=False)
    if path == "/stream":
        button = phone.page.locator("li.mention form.label button").first
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375 and box["height"] >= 24
        assert phone.page.locator("input[name=q]").bounding_box()["width"] >= 120
    assert phone.close() == []


def test_desktop_screenshots(site, tab):
    for path, name in (("/stream", "stream"), ("/", "overview")):
        tab.open(path)
        tab.page.screenshot(path=site["shots"] / f"{name}.png", full_page=False)
    assert (site["shots"] / "stream.png").stat().st_size > 10_000


def test_new_mentions_appear_without_a_reload(site, tab):
    """Stored while the page is open (here by this test, as the daemon would), a mention
    appears on top at the next live update (every 30 s, or when the tab is back in view:
    the test brings it back instead of waiting), and the page was not reloaded."""
    tab.open("/stream?brand=Acme")
    tab.page.evaluate("window.__sameDocument = true")
    before = [c["id"] for c in _cards(tab)]
    with Store.open(site["world"]["database"]) as store:
        fresh = Mention(source="mastodon", id="live-1", brand="Acme", created_at=AS_OF - timedelta(minutes=1),
                        text="just in: Acme live update", author="newcomer", conversation_id="live-1")
        store.save_batch([fresh], VaderScorer().score([fresh.text]), source="mastodon", brand="Acme",
                         checkpoint=None, scorer="vader", scorer_version="test", now=AS_OF)
    tab.page.evaluate("window.dispatchEvent(new Event('focus'))")
    tab.page.wait_for_selector("li.mention.new[data-id='live-1']")
    assert [c["id"] for c in _cards(tab)] == ["live-1", *before]
    assert tab.page.evaluate("window.__sameDocument") is True  # no reload
    assert "1 new" in tab.page.inner_text(".live-status")
    # its label buttons work like the others'
    tab.page.click("li.mention[data-id='live-1'] form.label button[value=neutral]")
    tab.page.wait_for_url("**queued=neutral**")
    inbox_path(site["world"]["database"]).unlink()


def test_the_overview_updates_without_a_reload(site, tab, inboxes):
    """The overview replaces its figures, alerts and tables with a fresh copy's (every
    --refresh seconds, or when the tab is back in view: the test brings it back instead
    of waiting) instead of reloading the whole page; the charts stay."""
    tab.open("/")
    tab.page.evaluate("window.__sameDocument = true")
    assert "label(s) queued" not in tab.page.inner_text("main")
    queue_label(site["world"]["database"], LabelRequest(id=HOSTILE_ID, label="negative", source="mastodon",
                                                        brand="Acme", by="test"), AS_OF)
    tab.page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    tab.page.wait_for_selector("html[data-live-updates='1']", state="attached")
    assert "1 label(s) queued for the daemon" in tab.page.inner_text("main")
    assert tab.page.evaluate("window.__sameDocument") is True  # no reload
