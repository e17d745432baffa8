"""The live view in a real browser: Debian's headless Chromium loads it from a real
`listener serve` on 127.0.0.1 and draws it (a non-blank screenshot with the charts),
builds a DOM whose numbers are `listener mood --json`'s on the same database and
time, shows hostile mention text (markup, right-to-left, emoji, control characters) as
text, and logs no console error or CSP violation.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``); without it the tests fail
and say so. Chromium runs with networking features off and a throwaway profile.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.listener.test_serve import AS_OF, HOSTILE, Server, build_database
from tests.timing import HANG_GUARD

CHROMIUM = os.environ.get("REPORT_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--mute-audio"]
FIELDS = ("nss", "nss_se", "mentions", "scored", "positive", "neutral", "negative", "duplicates", "unscored")


def _need_chromium() -> None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} not found: the browser test needs Debian's Chromium. Install it with "
                    f"`apt-get update && apt-get install -y chromium` (or set REPORT_TEST_CHROMIUM).",
                    pytrace=False)


def _run(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    env = {**os.environ, "HOME": str(tmp)}
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], check=False, capture_output=True,
                          text=True, timeout=HANG_GUARD, env=env, stdin=subprocess.DEVNULL)


class DataParser(HTMLParser):
    """Every <data> element of the DOM: its attributes and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "data":
            self._open = {**dict(attrs), "text": ""}
            self.items.append(self._open)

    def handle_endtag(self, tag: str) -> None:
        if tag == "data":
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] += data


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    _need_chromium()
    tmp = tmp_path_factory.mktemp("serve-browser")
    world = build_database(tmp / "db")
    server = Server(world["config"])
    yield {"tmp": tmp, "world": world, "server": server, "url": f"http://127.0.0.1:{server.port}/"}
    assert server.stop() == 0


@pytest.fixture(scope="module")
def dom(site) -> str:
    proc = _run(site["tmp"], "--dump-dom", site["url"])
    assert "<main>" in proc.stdout, f"no DOM dumped (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


def test_the_page_is_drawn(site):
    shot = site["tmp"] / "live.png"
    proc = _run(site["tmp"], f"--screenshot={shot}", "--window-size=1280,2400", site["url"] + "brand/Acme")
    assert shot.exists(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    from PIL import Image  # Pillow comes with matplotlib

    with Image.open(shot) as im:
        assert im.size == (1280, 2400)
        rgb = im.convert("RGB")
        assert any(lo != hi for lo, hi in rgb.getextrema()), "every pixel has the same colour"
        colours = rgb.resize((320, 600)).getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50, "too few colours for text, tables and charts"
        # the charts are drawn: the brand's blue line and band exist
        blue = sum(n for n, (r, g, b) in colours if b > 140 and r < 90 and g < 130)
        assert blue > 20


def test_the_numbers_in_the_dom_are_those_of_listener_mood(site, dom):
    parser = DataParser()
    parser.feed(dom)
    found = {(d["data-brand"], d["data-window"], d["data-field"]): d for d in parser.items}
    brands = site["world"]["mood"]["brands"]
    assert brands and all(b["as_of"] == AS_OF.isoformat() for b in brands)
    checked = 0
    for mood in brands:
        for window in ("last_hour", "last_24h", "baseline_7d"):
            for field in FIELDS:
                expected = mood[window][field]
                item = found[(mood["brand"], window, field)]
                if expected is None:
                    assert item["value"] == "" and item["text"] == "no data"
                    continue
                assert float(item["value"]) == expected, (mood["brand"], window, field)
                shown = f"{expected:+,.1f}" if field == "nss" else f"{expected:,.1f}" if field == "nss_se" \
                    else f"{expected:,}"
                assert item["text"] == shown, (mood["brand"], window, field)
                checked += 1
        change = mood["change_24h_vs_baseline"]
        assert float(found[(mood["brand"], "change", "nss")]["value"]) == change["nss"]
        assert float(found[(mood["brand"], "change", "se")]["value"]) == change["se"]
    assert checked >= 3 * 3 * 7


def test_hostile_text_is_text(dom):
    # the DOM holds the text as text: serialised escaped, never as an element
    shown = HOSTILE.replace("\x00", "\u2400").replace("\x07", "\u2407").replace("\x1b", "\u241b")
    assert html.escape(shown, quote=False) in dom
    assert not re.search(r"<script\b", dom, re.IGNORECASE)
    assert not re.search(r"<img\b", dom, re.IGNORECASE)
    assert not re.search(r"<b>", dom, re.IGNORECASE)
    assert "javascript:" not in dom
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in dom  # the alert's summary
    assert "<bdi>" in dom  # right-to-left text is isolated


def test_no_console_errors(site, tmp_path):
    canary = tmp_path / "canary.html"
    canary.write_text("<!DOCTYPE html><html><body><p>canary</p><script>console.error('canary-console-error');"
                      "notDefinedAnywhere();</script></body></html>", encoding="utf-8")
    found = _run(site["tmp"], "--enable-logging=stderr", "--v=0", "--dump-dom", canary.as_uri())
    assert "canary-console-error" in found.stderr and "Uncaught" in found.stderr, found.stderr[-2000:]
    for path in ("", "brand/Acme", "brand/Globex%20%26%20Co"):
        proc = _run(site["tmp"], "--enable-logging=stderr", "--v=0", "--dump-dom", site["url"] + path)
        assert "<main>" in proc.stdout
        lines = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
        assert lines == [], path
        assert "Content Security Policy" not in proc.stderr
        assert "net::ERR" not in proc.stderr
    # and the server saw no request for anything but the pages (no favicon, no asset)
    requested = [line for line in site["server"].log if " GET " in line]
    assert requested and all(re.search(r" GET (/|/brand/\S+) 200$", line.strip()) for line in requested), requested
