"""The HTML report in a real browser: Debian's headless Chromium opens the file offline,
draws it (a non-blank screenshot), builds the DOM we expect (verdict text, the hostile
campaign name as text, no <script>) and logs no console error.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``); without it the tests fail
and say so. Chromium runs with networking features off and a throwaway profile.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from analysis.report_render import render_html
from analysis.roi.report import Report
from tests.analysis.report_sample import sample_report
from tests.system.chromium import need_chromium, run_chromium


@pytest.fixture(scope="module")
def report() -> Report:
    return sample_report()


@pytest.fixture(scope="module")
def pages(report, tmp_path_factory) -> dict:
    need_chromium()
    tmp = tmp_path_factory.mktemp("report-browser")
    page = tmp / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    blank = tmp / "blank.html"
    blank.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>blank</title></head><body></body>"
                     "</html>", encoding="utf-8")
    canary = tmp / "canary.html"
    canary.write_text("<!DOCTYPE html><html><body><p>canary</p><script>console.error('canary-console-error');"
                      "notDefinedAnywhere();</script></body></html>", encoding="utf-8")
    return {"tmp": tmp, "page": page, "blank": blank, "canary": canary}


def _screenshot(pages: dict, which: str) -> Path:
    out = pages["tmp"] / f"{which}.png"
    proc = run_chromium(pages["tmp"], f"--screenshot={out}", "--window-size=1280,2400", pages[which].as_uri())
    assert out.exists(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return out


def _console_lines(stderr: str, url: str) -> list[str]:
    """Console messages (and uncaught errors) Chromium logged for ``url``."""
    out = []
    for line in stderr.splitlines():
        if "Uncaught" in line or (":CONSOLE" in line and url in line):
            out.append(line)
    return out


def test_screenshot_is_not_blank(pages):
    shot = _screenshot(pages, "page")
    blank = _screenshot(pages, "blank")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000, f"screenshot only {len(data)} bytes"
    assert len(data) > 5 * len(blank.read_bytes())
    from PIL import Image  # Pillow comes with matplotlib, which the report needs anyway

    with Image.open(shot) as im:
        assert im.size == (1280, 2400)
        rgb = im.convert("RGB")
        extrema = rgb.getextrema()
        assert any(lo != hi for lo, hi in extrema), "every pixel has the same colour"
        colours = rgb.resize((320, 600)).getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50, "too few colours for text, tables and charts"
        # charts are drawn: the blue brand lines, counted at full size (a thin line fades
        # into its background when the picture is scaled down; links and text make about
        # 2,600 such pixels, the page with its charts about 10,000)
        full = rgb.getcolors(maxcolors=4_000_000)
        blue = sum(n for n, (r, g, b) in full if b > 140 and r < 90 and g < 130)
        assert blue > 6_000, f"only {blue} pixels of the brand's blue: no chart drawn?"


def test_dom_has_verdict_and_escaped_text_and_no_script(pages, report):
    proc = run_chromium(pages["tmp"], "--dump-dom", pages["page"].as_uri())
    dom = proc.stdout
    assert "<main>" in dom, f"no DOM dumped (exit {proc.returncode}): {proc.stderr[-2000:]}"
    c = report.campaigns[0]
    assert f"Verdict: {c.verdict}" in dom
    assert html.escape(c.headline.reason, quote=False) in dom
    # the hostile name is text: serialised escaped, never as an element
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert not re.search(r"<script\b", dom, re.IGNORECASE)
    assert not re.search(r"<b>tags", dom, re.IGNORECASE)
    assert not re.search(r"<img\s+src=x", dom, re.IGNORECASE)
    assert dom.count("<img ") == 3 and dom.count('src="data:image/svg+xml;base64,') == 3


def test_no_console_errors(pages):
    # the detector works: a page with a console.error and an uncaught error is caught
    canary = run_chromium(pages["tmp"], "--enable-logging=stderr", "--v=0", "--dump-dom", pages["canary"].as_uri())
    found = _console_lines(canary.stderr, pages["canary"].as_uri())
    assert any("canary-console-error" in x for x in found), canary.stderr[-2000:]
    assert any("Uncaught" in x for x in found)

    proc = run_chromium(pages["tmp"], "--enable-logging=stderr", "--v=0", "--dump-dom", pages["page"].as_uri())
    assert "<main>" in proc.stdout
    assert _console_lines(proc.stderr, pages["page"].as_uri()) == []
    assert "Content Security Policy" not in proc.stderr
    assert "net::ERR" not in proc.stderr
