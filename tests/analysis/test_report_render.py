"""The report renderers (analysis/report_render.py): sections, numbers, escaping,
self-containedness and missing pieces.

The fixture tests/fixtures/report/sample_report.json is the simulator's "carry_over"
scenario run through ``analyse_campaign``, with a hostile campaign name, source name
and brand note; ``python tests/analysis/test_report_render.py`` rebuilds it.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from analysis.report_render import (
    build_sections,
    md_escape,
    render_html,
    render_markdown,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "report" / "sample_report.json"
HOSTILE_SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def md(report) -> str:
    return render_markdown(report)


@pytest.fixture(scope="module")
def page(report) -> str:
    return render_html(report)


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Tags:
    p = _Tags()
    p.feed(page)
    p.close()
    return p


# ----------------------------------------------------------------------------------
# Sections and numbers
# ----------------------------------------------------------------------------------

SECTIONS = ["Data", "Campaign: ", "Verdict", "Effect on mood", "Volume and share of voice", "Carry-over",
            "Efficiency: reported versus incremental", "Diagnostics", "Caveats", "Last 48 hours: mood monitor",
            "Method notes"]


def test_markdown_sections_in_order(md):
    heads = [line.lstrip("#").strip() for line in md.splitlines() if line.startswith("#")]
    pos = []
    for s in SECTIONS:
        idx = [i for i, h in enumerate(heads) if h.startswith(s)]
        assert idx, f"section {s!r} missing from the Markdown"
        pos.append(idx[0])
    assert pos == sorted(pos)


def test_html_sections(page):
    p = _parse(page)
    heads = [t for t, _ in p.tags if t in ("h1", "h2", "h3")]
    assert heads.count("h3") == 7 and "h1" in heads
    text = " ".join(p.text)
    for s in SECTIONS:
        assert s in text


def _signed(x, d=1):
    return f"{x:+,.{d}f}"


def test_headline_numbers_match_fixture(report, md, page):
    c = report["campaigns"][0]
    h = c["headline_effect"]
    eff = c["efficiency"]
    headline = f"{_signed(h['delta'])} NSS points (95 % CI {_signed(h['ci_low'])} to {_signed(h['ci_high'])})"
    cpinc = f"{eff['cpinc']:,.2f} {eff['currency']}"
    spend = f"{eff['spend']:,.2f} {eff['currency']}"
    mde = f"{c['mde']['mde_display']:.1f} NSS points"
    theta = f"{c['carry_over']['theta']:.2f} (95 % CI {c['carry_over']['theta_ci'][0]:.2f}"
    verdict = f"Verdict: {c['verdict']} ({c['verdict_rule']})."
    text = " ".join(_parse(page).text)
    for needle in (headline, cpinc, spend, mde, theta, verdict, c["headline"]["reason"]):
        assert needle in text, needle
    md_plain = md.replace("\\", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    for needle in (headline, cpinc, spend, mde, theta, verdict):
        assert needle in md_plain, needle
    assert c["verdict"] == "effect detected"
    for k in ("naive", "its", "did", "adstock"):
        assert _signed(c["effects"][k]["delta"]) + " NSS points" in text
    for cav in c["caveats"]:
        assert cav in text


def test_efficiency_kinds_are_labelled_apart(page, md):
    p = _parse(page)
    classes = [a.get("class", "") for t, a in p.tags if t == "table"]
    assert any("reported" in c for c in classes) and any("incremental" in c for c in classes)
    assert "Reported by the ad platform (not incremental)" in md
    assert "different kinds of number" in md


def test_header_facts(report, md):
    assert "America/New\\_York" in md
    assert "2,900" in md and "2026-08-24 to 2026-11-21" in md
    assert "Beanhaus, Kettle &amp; Co" in md
    assert "2026-11-22T18:59:00+00:00" in md
    assert "44,667" in md or f"{report['source_counts']['x']:,}" in md


# ----------------------------------------------------------------------------------
# Escaping and self-containedness
# ----------------------------------------------------------------------------------

def test_hostile_strings_escaped_in_html(report, page):
    assert HOSTILE_SCRIPT in report["campaigns"][0]["name"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    low = page.lower()
    assert "<script" not in low
    assert "<b>tags" not in low and "<img src=x" not in low
    assert "&quot;quotes&quot; &amp; &lt;b&gt;tags&lt;/b&gt;" in page
    p = _parse(page)
    tags = {t for t, _ in p.tags}
    assert not tags & {"script", "iframe", "object", "embed", "link", "b", "base", "form"}
    for t, attrs in p.tags:
        for name in attrs:
            assert not name.startswith("on"), (t, name)
    text = "".join(p.text)
    assert HOSTILE_SCRIPT in text                      # shown to the reader as text
    assert "מבצע" in text and "☕" in text and "עברית" in text and "😀" in text


def test_hostile_strings_escaped_in_markdown(md):
    assert "<script" not in md.lower() and "<b>" not in md and "<img" not in md
    assert "&lt;script&gt;alert\\(1\\)" not in md   # parentheses are left alone
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    # a "|" in the campaign name cannot add a table column
    for line in md.splitlines():
        if line.startswith("| Campaign ID"):
            assert line.count(" | ") == 1


def test_md_escape():
    assert md_escape("*a* _b_ [c](d) `e` <f> & |g|") == \
        "\\*a\\* \\_b\\_ \\[c\\](d) \\`e\\` &lt;f&gt; &amp; \\|g\\|"
    assert md_escape("# x\nline") == "\\# x line"
    assert md_escape("- item", line_start=True) == "\\- item"
    assert md_escape("12. item", line_start=True) == "12\\. item"


_URL = re.compile(r"(?:https?:)?//[^\s\"'<>)]+", re.IGNORECASE)


def _external_refs(doc: str) -> list[str]:
    bad = []
    for m in re.finditer(r"""(?:src|href|xlink:href|action|poster|srcset)\s*=\s*["']?([^"'\s>]*)""", doc, re.IGNORECASE):
        v = m.group(1)
        if not (v.startswith(("#", "data:"))):
            bad.append(m.group(0))
    bad += re.findall(r"@import[^;]*", doc, re.IGNORECASE)
    bad += [u for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", doc, re.IGNORECASE) if not u.startswith(("#", "data:"))]
    return bad


def test_no_external_resources(page):
    assert "http://" not in page and "https://" not in page
    assert not _URL.search(page)
    markup = "".join(re.findall(r"<[^>]*>", page))              # tags only: escaped text cannot match
    style = "".join(re.findall(r"<style>(.*?)</style>", page, re.DOTALL))
    assert _external_refs(markup) == [] and _external_refs(style) == []
    p = _parse(page)
    for t, attrs in p.tags:
        for name in ("src", "href", "action", "srcset", "poster", "background"):
            if name in attrs:
                assert attrs[name].startswith(("#", "data:image/")), (t, name, attrs[name][:40])
    imgs = [a["src"] for t, a in p.tags if t == "img"]
    assert len(imgs) == 3
    for src in imgs:
        assert src.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(src.split(",", 1)[1]).decode("utf-8")
        assert svg.lstrip().startswith("<svg") and "<?xml" not in svg
        assert "<script" not in svg.lower() and "foreignobject" not in svg.lower()
        assert _external_refs(svg) == []
        # only the XML namespace names mention http (they are identifiers, never fetched)
        for u in re.findall(r"https?://[^\s\"'<>]+", svg):
            assert u.startswith(("http://www.w3.org/", "http://purl.org/dc/", "http://creativecommons.org/ns#")), u
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_charts_are_escaped_user_text(report):
    r = copy.deepcopy(report)
    r["campaigns"][0]["brand"] = "</svg><script>alert(3)</script>$x$"
    r["campaigns"][0]["competitors"] = ["Co <b>&</b>"]
    page = render_html(r)
    assert "alert(3)</script>" not in page
    for src in [a["src"] for t, a in _parse(page).tags if t == "img"]:
        svg = base64.b64decode(src.split(",", 1)[1]).decode("utf-8")
        assert "<script" not in svg.lower()
    assert "Chart not drawn" not in page     # a "$" in a name does not break mathtext


# ----------------------------------------------------------------------------------
# Missing pieces
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("empty", [{}, {"campaigns": [], "monitor": None, "notes": []}, None])
def test_empty_report(empty):
    md = render_markdown(empty)
    page = render_html(empty)
    for out in (md, page):
        assert "No campaign in this report" in out
        assert "No monitor data" in out
        assert "No method notes" in out
    assert "<script" not in page.lower()


def test_no_competitors_no_did_no_spend(report):
    r = copy.deepcopy(report)
    r["competitors"] = []
    c = r["campaigns"][0]
    c["competitors"] = []
    c["competitor_windows"] = {}
    del c["effects"]["did"]
    c["volume"] = {}
    c["headline"] = {"method": "its", "reason": "no competitor data, so no difference-in-differences",
                     "competitor_volume_ratio": None, "pretrend": None}
    c["kpi_method"] = "its"
    c["headline_effect"] = None
    c["carry_over"] = None
    del c["effects"]["adstock"]
    c["efficiency"] = {"spend": 0.0, "currency": "", "engagements": None, "cost_per_engagement": None,
                       "dnp": None, "cpinc": None, "cpinc_ci": None, "cpinc_status": "not estimable: no spend data"}
    c["dnp"] = None
    c["mde"] = None
    c["diagnostics"] = {"placebo": None, "ljung_box_p": None, "disagreement": None, "source_mix": None,
                        "gaps": None, "pretrend": None, "fit_notes": ["NSS its: model note"]}
    c["daily"]["competitor_nss"] = None
    c["daily"]["spend"] = [0.0] * len(c["daily"]["dates"])
    r["monitor"] = None
    md = render_markdown(r)
    page = render_html(r)
    for out in (md.replace("\\", ""), " ".join(_parse(page).text)):
        assert "none configured" in out
        assert "not estimated: no competitor data" in out
        assert "not estimated (too little data)" in out
        assert "Carry-over not estimated: no spend data" in out
        assert "No spend data: efficiency cannot be computed" in out
        assert "not estimable: no spend data" in out
        assert "not computed (baseline too short)" in out
        assert "No monitor data" in out
        assert "No competitors" in out
        assert "model note" in out
    assert page.count("<img ") == 2          # mood and volume charts; no profile without carry-over


def test_carry_over_not_identified_and_cpinc_not_estimable(report):
    r = copy.deepcopy(report)
    c = r["campaigns"][0]
    c["carry_over"]["identified"] = False
    c["carry_over"]["note"] = "flat profile"
    c["efficiency"]["cpinc"] = None
    c["efficiency"]["cpinc_ci"] = None
    c["efficiency"]["cpinc_status"] = "not estimable: the CI of dNP includes 0"
    c["effects"]["its"] = None
    md = render_markdown(r)
    assert "Carry-over not identified" in md and "flat profile" in md
    assert "not estimable: the CI of dNP includes 0" in md
    assert "Interrupted time series (ITS) | not estimated" in md
    assert "Carry-over not identified" in render_html(r, charts=False)


def test_monitor_alarms_from_alarm_flags(report):
    r = copy.deepcopy(report)
    m = r["monitor"]
    m.pop("alarms", None)
    m["alarm"] = [0] * (len(m["hours"]) - 2) + [1, -1]
    md = render_markdown(r)
    assert "| Alarm hours | 2 |" in md
    assert md_escape(m["hours"][-1]) in md


def test_sections_are_plain_text(report):
    title, sections = build_sections(report)
    assert title == report["title"]
    assert sections[0].title == "Data" and sections[-1].title == "Method notes"


# ----------------------------------------------------------------------------------
# Rebuilding the fixture
# ----------------------------------------------------------------------------------

def build_sample_report() -> dict:  # pragma: no cover - run by hand
    from dataclasses import replace
    from datetime import date

    import numpy as np

    from analysis.roi import analyse_campaign
    from analysis.roi.monitor import ewma_monitor
    from analysis.roi.simulate import scenario, simulate

    hostile = (HOSTILE_SCRIPT + ' "quotes" & <b>tags</b> \u05de\u05d1\u05e6\u05e2 \u0627\u0644\u0642\u0647\u0648\u0629 '
               "\u2615\U0001F680 | Bright Mornings")
    sc = scenario("carry_over", campaign_name=hostile, start=date(2026, 8, 24), gap_days=(12,))
    sim = simulate(sc, 0)
    spend = replace(sim.spend, engagements=np.where(sim.spend.spend > 0, np.round(sim.spend.spend * 0.9), 0.0))
    res = analyse_campaign(sim.plan, sim.brand, sim.competitors, spend, coverage=sim.coverage,
                           timezone=sc.timezone, engine="exact")
    d = res.to_dict()
    hc = simulate(scenario("effect", start=date(2026, 8, 24)), 7, hourly=True).hourly["Brewly"]
    n = 24 * 7
    mon = ewma_monitor(hc.hour_starts[-n:], hc.total[-n:], hc.positive[-n:], hc.negative[-n:],
                       baseline=slice(0, n - 48)).to_dict()
    mon = {k: (v[-48:] if isinstance(v, list) else v) for k, v in mon.items()}
    mon["alarms"] = [h for h, a in zip(mon["hours"], mon["alarm"]) if a]
    bad_source = "bluesky <img src=x onerror=alert(2)>"
    return {
        "title": "Brewly: campaign mood report",
        "generated_at": "2026-11-22T19:00:00+00:00",
        "brand": "Brewly", "competitors": ["Beanhaus", "Kettle & Co"],
        "timezone": "America/New_York",
        "window": {"start": d["daily"]["dates"][0], "end": d["daily"]["dates"][-1]},
        "freshness": {"x": "2026-11-22T18:59:00+00:00", "reddit": "2026-11-22T18:41:00+00:00",
                      "bluesky": "2026-11-22T18:57:00+00:00", bad_source: "2026-11-22T17:02:00+00:00"},
        "source_counts": {**d["source_counts"], bad_source: 12},
        "unscored": 0, "duplicates": 2900,
        "campaigns": [d],
        "monitor": mon,
        "notes": [("NSS = 100 (P - N) / T over scored organic mentions; duplicates and unscored mentions count "
                  "in volume only."),
                  ('Brand note: "quotes" & <b>tags</b> <script>alert(1)</script> \u05e2\u05d1\u05e8\u05d9\u05ea '
                  "\U0001F600")],
    }


if __name__ == "__main__":  # pragma: no cover
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(build_sample_report(), indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {FIXTURE}")
