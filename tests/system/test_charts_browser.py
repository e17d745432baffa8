"""The workspace's charts in a real browser: Debian's headless Chromium, driven by
Playwright, loads a brand page from the real server (listener.web.server.LiveServer on
127.0.0.1), draws the charts from /api/charts, and a click on a day of the volume chart,
or a range brushed across the NSS chart, lands on the mention stream filtered to that
period. The console stays clean (no error, no CSP violation). A screenshot of the charts
is written for review.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``) and the [test] extra's
playwright, set up as tests/system/test_workspace_browser.py does (whose Tab it uses).
Screenshots go to $WORKSPACE_SCREENSHOTS, else the test's temporary directory.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from analysis.sentiment import Score, VaderScorer
from connectors.base import Mention
from listener.live_view import BrandView
from listener.web import LiveApp
from listener.web.server import LiveServer, start_in_thread
from storage.rollup import rollup_pending
from storage.store import Store
from tests.system.chromium import CHROMIUM, PLAYWRIGHT_ARGS, need_chromium
from tests.system.test_workspace_browser import Tab, sync_api

NOW = datetime(2026, 11, 10, 12, 30, tzinfo=timezone.utc)
DAY = timedelta(days=1)
HOSTILE = "<img src=x onerror=alert(1)>"  # in every author's name: must stay text
LABELS = [Score(0.6, 0.5, 0.5, 0, "positive"), Score(0.0, 0, 1, 0, "neutral"), Score(-0.6, 0, 0.5, 0.5, "negative")]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _database(path: Path) -> None:
    """Acme over 10 days, every hour, with a quiet night (sparse hours) and a bad day."""
    with Store.open(path) as store:
        for day in range(10, 0, -1):
            start = (NOW - day * DAY).replace(hour=0, minute=0)
            mentions, scores = [], []
            for hour in range(24):
                count = 2 if hour < 5 else 6
                for k in range(count):
                    at = start + timedelta(hours=hour, minutes=5 * k)
                    mentions.append(Mention(source="x", id=f"{day}-{hour}-{k}", brand="Acme", created_at=at,
                                            text=f"Acme post {day}/{hour}/{k}", author=f"{HOSTILE}u{k}",
                                            conversation_id=f"t{day}-{hour}"))
                    bad = day == 3
                    scores.append(LABELS[2] if bad and k % 3 else LABELS[(k + hour) % 3])
            store.save_batch(mentions, scores, source="x", brand="Acme", checkpoint=None, now=NOW,
                             scorer="vader", scorer_version="3.3.2")
        rollup_pending(store)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need_chromium()
    tmp = tmp_path_factory.mktemp("charts-browser")
    _database(tmp / "charts.duckdb")
    state = LiveApp(database=tmp / "charts.duckdb", brands=(BrandView("Acme"),), scorer=VaderScorer(),
                    clock=lambda: NOW, refresh=0)
    server = LiveServer(state, "127.0.0.1", 0)
    start_in_thread(server)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=PLAYWRIGHT_ARGS)
        try:
            yield {"browser": browser, "url": server.url.rstrip("/"),
                   "shots": Path(os.environ.get("WORKSPACE_SCREENSHOTS") or tmp / "screenshots")}
        finally:
            browser.close()
            server.shutdown()
            server.server_close()


@pytest.fixture
def charts(site):
    """A tab (tests/system/test_workspace_browser.Tab: console, page errors and alert()
    calls recorded) opening the brand page's charts; it must end with none of them."""
    tabs: list[Tab] = []

    def open_charts(query: str, width: int = 1200) -> Tab:
        tab = Tab(site, width=width, height=1400)
        tabs.append(tab)
        tab.open(f"/brand/Acme?{query}")
        tab.page.wait_for_selector("[data-chart=nss] canvas")
        tab.page.wait_for_selector(".talk-part[data-part=authors] ol")
        return tab

    yield open_charts
    problems = [p for tab in tabs for p in tab.close()]
    assert problems == [], "console errors, CSP violations or scripts that ran"


def _screenshot(site, page, name: str) -> None:
    site["shots"].mkdir(parents=True, exist_ok=True)
    shot = site["shots"] / name
    page.locator("section[data-charts]").screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000  # the charts drew something


def _assert_stream_within(page, start: datetime, end: datetime) -> None:
    """The stream page lists posts, all of them created in [start, end)."""
    page.wait_for_selector("ol.stream li.mention")
    times = [datetime.fromisoformat(t) for t in page.locator("ol.stream li.mention time").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('datetime'))")]
    assert times and all(start <= t < end for t in times), (start, end, times[:3], times[-3:])


def _x_of(page, chart: str, moment: datetime, start: datetime, end: datetime) -> tuple[float, float]:
    """The page coordinates of ``moment`` on ``chart``'s time axis, half-way down."""
    box = page.locator(f"[data-chart={chart}] .u-over").bounding_box()
    x = box["x"] + box["width"] * (moment - start) / (end - start)
    return x, box["y"] + box["height"] / 2


def test_clicking_a_day_or_brushing_a_range_opens_the_stream_filtered_to_it(site, charts):
    tab = charts("range=7d&resolution=day")
    page = tab.page
    assert "per day" in page.locator(".chart-status").inner_text()
    start = (NOW - 7 * DAY).replace(hour=0, minute=0)
    end = start + 8 * DAY
    _screenshot(site, page, "charts-7d-per-day.png")
    # Hover shows the bucket's numbers and the link to its posts.
    bad_day = (NOW - 3 * DAY).replace(hour=0, minute=0)
    page.mouse.move(*_x_of(page, "nss", bad_day + DAY / 4, start, end))
    readout = page.locator(".chart-readout").inner_text()
    assert bad_day.strftime("%Y-%m-%d") in readout and "NSS -" in readout
    # A click on that day in the volume chart opens its posts.
    page.mouse.click(*_x_of(page, "volume", bad_day + DAY / 4, start, end))
    page.wait_for_url("**/stream?**")
    assert tab.query() == {"brand": ["Acme"], "start": [_iso(bad_day)], "end": [_iso(bad_day + DAY)]}
    _assert_stream_within(page, bad_day, bad_day + DAY)

    # A range brushed across the NSS chart opens the posts of the whole days it covers.
    tab = charts("range=7d&resolution=day")
    mouse = tab.page.mouse
    mouse.move(*_x_of(tab.page, "nss", start + 2 * DAY + DAY / 3, start, end))
    mouse.down()
    mouse.move(*_x_of(tab.page, "nss", start + 4 * DAY + DAY / 2, start, end), steps=8)
    mouse.up()
    tab.page.wait_for_url("**/stream?**")
    assert tab.query() == {"brand": ["Acme"], "start": [_iso(start + 2 * DAY)], "end": [_iso(start + 5 * DAY)]}
    _assert_stream_within(tab.page, start + 2 * DAY, start + 5 * DAY)


def test_sparse_night_hours_are_not_drawn_as_full_scale_moods(site, charts):
    start, end = (NOW - 2 * DAY).replace(hour=0, minute=0), (NOW - DAY).replace(hour=0, minute=0)
    page = charts(f"since={_iso(start)}&until={_iso(end)}&resolution=hour").page
    page.mouse.move(*_x_of(page, "nss", start + timedelta(hours=2, minutes=10), start, end))
    text = page.locator(".chart-readout").inner_text()
    assert "too few to tell the mood" in text and "2 mentions" in text
    _screenshot(site, page, "charts-night-per-hour.png")


def test_the_charts_fit_a_phone_and_hostile_names_stay_text(site, charts):
    page = charts("range=7d&resolution=day", width=390).page
    authors = page.locator(".talk-part[data-part=authors] li > a").all_inner_texts()
    assert authors and all(a.startswith(HOSTILE) for a in authors)
    assert page.locator("section[data-charts] img").count() == 0
    # Nothing drawn or written past the screen's right edge.
    past = page.locator("section[data-charts]").evaluate("""s => Array.from(s.querySelectorAll('*'))
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
    assert past == [], past[:5]
    _screenshot(site, page, "charts-phone.png")
