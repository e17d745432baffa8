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
import json
import os
import re
import select
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from storage.labels import inbox_path
from tests.system.chromium import CHROMIUM, FLAGS, need_chromium, run_chromium
from tests.system.live_site import AS_OF, HOSTILE, Server, build_database
from tests.timing import HANG_GUARD

FIELDS = ("nss", "nss_se", "mentions", "scored", "positive", "neutral", "negative", "duplicates", "unscored")


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
    need_chromium()
    tmp = tmp_path_factory.mktemp("serve-browser")
    world = build_database(tmp / "db")
    server = Server(world["config"])
    yield {"tmp": tmp, "world": world, "server": server, "url": f"http://127.0.0.1:{server.port}/"}
    assert server.stop() == 0


@pytest.fixture(scope="module")
def dom(site) -> str:
    proc = run_chromium(site["tmp"], "--dump-dom", site["url"])
    assert "<main>" in proc.stdout, f"no DOM dumped (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


def test_the_page_is_drawn(site):
    shot = site["tmp"] / "live.png"
    proc = run_chromium(site["tmp"], f"--screenshot={shot}", "--window-size=1280,2400", site["url"] + "brand/Acme")
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
    # no script but the server's own files (none inline, and none from the data)
    assert all(re.fullmatch(r'<script src="/static/[\w./-]+\.js" defer="">', s)
               for s in re.findall(r"<script\b[^>]*>", dom, re.IGNORECASE))
    assert not re.search(r"<img\b", dom, re.IGNORECASE)
    assert not re.search(r"<b>", dom, re.IGNORECASE)
    assert "javascript:" not in dom
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in dom  # the alert's summary
    assert "<bdi>" in dom  # right-to-left text is isolated


def test_no_console_errors(site, tmp_path):
    canary = tmp_path / "canary.html"
    canary.write_text("<!DOCTYPE html><html><body><p>canary</p><script>console.error('canary-console-error');"
                      "notDefinedAnywhere();</script></body></html>", encoding="utf-8")
    found = run_chromium(site["tmp"], "--enable-logging=stderr", "--v=0", "--dump-dom", canary.as_uri())
    assert "canary-console-error" in found.stderr and "Uncaught" in found.stderr, found.stderr[-2000:]
    for path in ("", "brand/Acme", "brand/Globex%20%26%20Co"):
        proc = run_chromium(site["tmp"], "--enable-logging=stderr", "--v=0", "--dump-dom", site["url"] + path)
        assert "<main>" in proc.stdout
        lines = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
        assert lines == [], path
        assert "Content Security Policy" not in proc.stderr
        assert "net::ERR" not in proc.stderr
    # and the server saw no request for anything but the pages, its own static files and
    # the charts' data (no favicon, nothing elsewhere)
    requested = [line for line in site["server"].log if " GET " in line]
    assert requested and all(re.search(r" GET (/|/brand/\S+|/static/[\w./-]+|/api/charts/\S+) (200|304)$", line.strip())
                             for line in requested), requested


class DevTools:
    """Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: it
    reads commands on fd 3 and answers on fd 4, NUL-separated JSON), so a test can click
    a real button and the browser sends the form as it would for a user: its own Origin,
    Sec-Fetch-Site and cookies."""

    def __init__(self, tmp: Path) -> None:
        to_browser, self._commands = os.pipe()
        self._answers, from_browser = os.pipe()

        def wire() -> None:  # in the child: the pipe ends at the fds Chromium expects
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile-devtools'}",
                                      "--remote-debugging-pipe"], preexec_fn=wire, close_fds=False,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "HOME": str(tmp)})
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._answers], [], [], HANG_GUARD)
            assert ready, "Chromium did not answer"
            chunk = os.read(self._answers, 1 << 16)
            assert chunk, "Chromium closed the pipe"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next_id:
                assert "error" not in answer, answer
                return answer["result"]
            self.events.append(answer)

    def wait_for(self, method: str) -> dict:
        while True:
            found = next((e for e in self.events if e.get("method") == method), None)
            if found:
                self.events.remove(found)
                return found
            self.events.append(self._read())

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)["result"].get(
            "value")

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def close(self) -> None:
        os.close(self._commands)
        try:
            self.proc.wait(timeout=HANG_GUARD)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self._answers)


def test_the_panel_of_mentions_to_label_stores_how_each_was_asked(site):
    """'Help the model: label these': the uncertain and the random mentions, each table
    saying which; a click on a random one's button queues the label for the daemon with
    origin next:random, from the browser's own form post (CSRF token and all)."""
    inbox = inbox_path(site["world"]["database"])
    inbox.unlink(missing_ok=True)
    browser = DevTools(site["tmp"])
    try:
        browser.open(site["url"] + "brand/Acme")
        panel = browser.evaluate(
            "[...document.querySelectorAll('table.to-label')].map(t => ({kind: t.dataset.kind, "
            "caption: t.caption.textContent, rows: t.tBodies[0].rows.length, "
            "origins: [...t.querySelectorAll('input[name=origin]')].map(i => i.value), "
            "ids: [...t.querySelectorAll('input[name=id]')].map(i => i.value)}))")
        assert [t["kind"] for t in panel] == ["uncertain", "random"]
        uncertain, drawn = panel
        assert uncertain["caption"].startswith("Least sure") and "teach the model" in uncertain["caption"]
        assert drawn["caption"].startswith("Random sample") and "at random" in drawn["caption"]
        assert uncertain["rows"] == drawn["rows"] == 3
        assert set(uncertain["origins"]) == {"next:uncertain"} and set(drawn["origins"]) == {"next:random"}
        assert "Help the model: label these" in browser.evaluate("document.body.innerText")
        browser.events.clear()
        browser.evaluate("document.querySelector('table.to-label[data-kind=random] button[value=negative]').click()")
        browser.wait_for("Page.loadEventFired")
        # Back on the brand's page, told what was queued (the charts keep their range and
        # comparison in the query too: they add range= and compare=).
        assert browser.evaluate("location.pathname + ' ' + new URLSearchParams(location.search).get('queued')") \
            == "/brand/Acme negative", browser.evaluate("document.body.innerText")
        assert "queued" in browser.evaluate("document.querySelector('.notice').textContent")
    finally:
        browser.close()
    (line,) = inbox.read_text(encoding="utf-8").splitlines()
    queued = json.loads(line)
    inbox.unlink()
    assert (queued["id"], queued["label"], queued["brand"], queued["origin"], queued["by"]) == (
        drawn["ids"][0], "negative", "Acme", "next:random", "live view")
