"""The report renderers (analysis/report_render.py): sections, numbers, escaping,
self-containedness and missing pieces.

They render the typed report: tests/analysis/report_sample.py builds it (the
simulator's "carry_over" scenario run through ``analyse_campaign``, with a hostile
campaign name, source name and brand note); a test that needs a missing piece replaces
it with ``dataclasses.replace``.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import numpy as np
import pytest

from analysis.report_render import (
    build_sections,
    plain_summary,
    md_escape,
    render,
    render_html,
    render_markdown,
)
from analysis.roi.campaign import Diagnostics, Efficiency, Headline
from analysis.roi.report import Report
from analysis.roi.verdict import CONFLICTING
from tests.analysis.report_sample import HOSTILE_SCRIPT, sample_report


@pytest.fixture(scope="module")
def report() -> Report:
    return sample_report()


def with_campaign(report: Report, **changes) -> Report:
    """``report`` with its one campaign's fields replaced."""
    return replace(report, campaigns=(replace(report.campaigns[0], **changes),))


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

SECTIONS = ["Campaign: ", "Conversations", "Last 48 hours: alerts", "For analysts", "Data", "Campaign ",
            "Verdict", "Effect on mood", "Volume and share of voice", "Carry-over",
            "Efficiency: reported versus incremental", "Diagnostics", "Caveats", "Method notes"]


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
    heads = [t for t, _ in p.tags if t in ("h1", "h2", "h3", "h4")]
    assert heads.count("h2") == 3 and heads.count("h4") == 7 and "h1" in heads
    text = " ".join(p.text)
    for s in SECTIONS:
        assert s in text


def _signed(x, d=1):
    return f"{x:+,.{d}f}"


def test_headline_numbers_match_the_report(report, md, page):
    (c,) = report.campaigns
    h = c.headline_effect
    eff = c.efficiency
    headline = f"{_signed(h.delta)} NSS points (95 % CI {_signed(h.ci_low)} to {_signed(h.ci_high)})"
    cpinc = f"{eff.cpinc:,.2f} {eff.currency}"
    spend = f"{eff.spend:,.2f} {eff.currency}"
    mde = f"{c.mde.mde_display:.1f} NSS points"
    theta = f"{c.carry_over.theta:.2f} (95 % CI {c.carry_over.theta_ci[0]:.2f}"
    verdict = f"Verdict: {c.verdict} ({c.verdict_rule})."
    text = " ".join(_parse(page).text)
    for needle in (headline, cpinc, spend, mde, theta, verdict, c.headline.reason):
        assert needle in text, needle
    md_plain = md.replace("\\", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    for needle in (headline, cpinc, spend, mde, theta, verdict):
        assert needle in md_plain, needle
    assert c.verdict == "effect detected"
    for k in ("naive", "its", "did", "adstock"):
        assert _signed(c.effects[k].delta) + " NSS points" in text
    for cav in c.caveats:
        assert cav in text


def test_json_is_the_models_own(report):
    """report.json's text is ``Report.to_json()``, and holds the figures the pages print."""
    data = json.loads(render(report, "json"))
    assert data == json.loads(json.dumps(report.to_json()))
    assert data["campaigns"][0]["headline_effect"]["delta"] == report.campaigns[0].headline_effect.delta
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        render(report, "pdf")


def test_efficiency_kinds_are_labelled_apart(page, md):
    p = _parse(page)
    classes = [a.get("class", "") for t, a in p.tags if t == "table"]
    assert any("reported" in c for c in classes) and any("incremental" in c for c in classes)
    assert "Reported by the ad platform (not incremental)" in md
    assert "different kinds of number" in md


def test_header_facts(report, md):
    assert "America/New\\_York" in md
    assert "2,900" in md and "24 Aug 2026 to 21 Nov 2026" in md
    assert "Beanhaus, Kettle &amp; Co" in md
    assert "| x | 22 Nov 2026, 18:59 UTC |" in md
    assert "| Generated | 22 Nov 2026, 19:00 UTC |" in md
    assert f"{report.source_counts['x']:,}" in md


# ----------------------------------------------------------------------------------
# Escaping and self-containedness
# ----------------------------------------------------------------------------------

def test_hostile_strings_escaped_in_html(report, page):
    assert HOSTILE_SCRIPT in report.campaigns[0].name
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
    r = with_campaign(report, brand="</svg><script>alert(3)</script>$x$", competitors=("Co <b>&</b>",))
    page = render_html(r)
    assert "alert(3)</script>" not in page
    for src in [a["src"] for t, a in _parse(page).tags if t == "img"]:
        svg = base64.b64decode(src.split(",", 1)[1]).decode("utf-8")
        assert "<script" not in svg.lower()
    assert "Chart not drawn" not in page     # a "$" in a name does not break mathtext


# ----------------------------------------------------------------------------------
# Missing pieces
# ----------------------------------------------------------------------------------

def test_empty_report():
    empty = Report(title="", generated_at=datetime(2026, 11, 22, 19, tzinfo=timezone.utc), brand="Brewly",
                   competitors=(), timezone="UTC", window=None, freshness={}, source_counts={}, unscored=0,
                   duplicates=0, scored_by={}, campaigns=(), monitor=None, notes=())
    md = render_markdown(empty)
    page = render_html(empty)
    for out in (md, page):
        assert "No campaign in this report" in out
        assert "No alert data" in out
        assert "No method notes" in out
        assert "Brewly: campaign mood report" in out
    assert "<script" not in page.lower()


def test_no_competitors_no_did_no_spend(report):
    c = report.campaigns[0]
    no_competitors = {k: e for k, e in c.effects.items() if k not in ("did", "adstock")}
    r = replace(report, competitors=(), monitor=None, campaigns=(replace(
        c, competitors=(), competitor_windows={}, effects=no_competitors, volume={},
        headline=Headline("its", "no competitor data, so no difference-in-differences", None, None),
        kpi_method="its", headline_effect=None, carry_over=None,
        efficiency=Efficiency(spend=0.0, currency="", engagements=None, cost_per_engagement=None,
                              cpinc=None, cpinc_ci=None, cpinc_status="not estimable: no spend data"),
        dnp=None, mde=None,
        diagnostics=Diagnostics(None, None, None, None, None, None, ("NSS its: model note",)),
        daily=replace(c.daily, competitor_nss=None, spend=np.zeros(len(c.daily.dates)))),))
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
        assert "No alert data" in out
        assert "No competitors" in out
        assert "model note" in out
    assert page.count("<img ") == 2          # mood and volume charts; no profile without carry-over


def test_carry_over_not_identified_and_cpinc_not_estimable(report):
    c = report.campaigns[0]
    r = with_campaign(
        report, carry_over=replace(c.carry_over, identified=False, note="flat profile"),
        efficiency=replace(c.efficiency, cpinc=None, cpinc_ci=None,
                           cpinc_status="not estimable: the CI of dNP includes 0"),
        effects={k: e for k, e in c.effects.items() if k != "its"})
    md = render_markdown(r)
    assert "Carry-over not identified" in md and "flat profile" in md
    assert "not estimable: the CI of dNP includes 0" in md
    assert "Interrupted time series (ITS) | not estimated" in md
    assert "Carry-over not identified" in render_html(r, charts=False)


def test_the_monitor_lists_the_stored_alerts_and_says_when_there_are_none(report, md):
    """The last 48 hours are the stored alerts (the ones `listener alerts` lists), not an
    alarm notion of the report's own."""
    m = report.monitor
    section = md[md.index("## Last 48 hours: alerts"):md.index("## For analysts")]
    assert "1 alert for Brewly from 20 Nov 2026, 19:00 UTC to 22 Nov 2026, 19:00 UTC" in section
    assert md_escape(m.alerts[0].summary, line_start=True) in section and "over by 21 Nov 2026, 14:00 UTC" in section
    assert report.to_json()["monitor"]["alerts"][0]["alert_id"] == 7
    quiet = render_markdown(replace(report, monitor=replace(m, alerts=())))
    assert "No alert for Brewly from 20 Nov 2026, 19:00 UTC" in quiet and "hours checked up to 22 Nov 2026, 17:00 UTC" in quiet
    assert "The hours after 22 Nov 2026, 17:00 UTC are not checked yet" in quiet  # 18:00-19:00 is not
    assert "usual hourly range in the hours checked" in quiet
    done = render_markdown(replace(report, monitor=replace(m, alerts=(), evaluated_through=m.end.replace(
        hour=18, minute=0, second=0, microsecond=0))))
    assert "not checked yet" not in done and "stayed within their usual hourly range (hours checked" in done
    never = render_markdown(replace(report, monitor=replace(m, alerts=(), evaluated_through=None)))
    assert "Alerts have not been evaluated for Brewly yet" in never and "No alert for" not in never


def test_sections_are_plain_text(report):
    title, sections = build_sections(report)
    assert title == report.title
    assert sections[0].title.startswith("Campaign: ") and sections[-1].title == "Method notes"


# --- Conversations (issue 15 item 4) ---------------------------------------------------------


def _care_report(report: Report) -> Report:
    """``report`` with hand-made care figures for its campaign: 4 threads needing a reply,
    3 answered after 1, 2 and 6 hours, goals on response rate and reply time."""
    from analysis.care import CareFigures, CareThread, goal_progress, reply_hours, summarize
    from analysis.reply_effect import ReplyEffect
    from analysis.roi.report import CampaignCare

    t0 = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)
    threads = [CareThread("x", f"c{i}", "Brewly", t0, "negative", False, True, 3, int(wait is not None),
                          None if wait is None else t0 + timedelta(hours=wait), "neutral", True)
               for i, wait in enumerate((1, 2, 6, None))]
    summary = summarize("Brewly", t0, t0 + timedelta(days=21), threads)
    goals = goal_progress((("response_rate", 0.5), ("reply_hours", 24)), summary, reply_hours(threads), 10, 5, 40)
    effect = ReplyEffect(12.5, (4.0, 21.0), 30, 40, 2, 3)
    care = CampaignCare(report.campaigns[0].campaign_id, CareFigures(summary, effect, tuple(goals)))
    return replace(report, conversations=(care,))


def test_the_conversations_section_shows_care_goals_and_the_reply_effect(report):
    cared = _care_report(report)
    md = render_markdown(cared)
    section = md[md.index("### Conversations"):]
    section = section[:section.index("\n### ", 5)]
    assert "| Answered by the brand | 3 of 4: 75% (95 % range 30% to 95%) |" in section
    assert "median 2.0 h, 90th percentile 6.0 h, in wall-clock hours" in section
    # Wilson 3/4 is 30%-95%: neither wholly above nor below 50%; the median 2 h is under 24 h.
    assert ("share of threads needing a reply that the brand answered: 75% (95 % range 30% to 95%) against a goal "
            "of at least 50%: not yet clear") in section
    assert "against a goal of at most 24.0 h: met" in section
    assert "+12.5 NSS points" in section and "(95 % range +4.0 to +21.0): customers' later posts were kinder" in section
    assert "Brands choose whom to answer" in section
    assert json.loads(render(cared, "json"))["conversations"][0]["goals"][1]["verdict"] == "met"
    assert "Conversations" in render_html(cared)


def test_a_report_without_care_figures_says_so(md):
    section = md[md.index("### Conversations"):]
    assert "No care figures" in section[:section.index("\n### ", 5)]


# --- What a marketer reads (issue 15 item 6) ---------------------------------------------

JARGON = re.compile(r"\bCI\b|\bITS\b|\bDiD\b|\bdNP\b|\bMDE\b|\bSE\b|EWMA|\bp [=<]|(?i:placebo|theta|ljung|"
                    r"standard error|difference-in-differences|interrupted time series|counterfactual|confidence)")


def _above_analysts(md: str) -> str:
    """The Markdown a marketer reads: everything before the analysts' section."""
    return md[:md.index("## For analysts")]


def _analysed(name: str, seed: int, **overrides):
    from analysis.roi import analyse_campaign
    from analysis.roi.simulate import scenario, simulate

    sim = simulate(scenario(name, **overrides), seed)
    return analyse_campaign(sim.plan, sim.brand, sim.competitors, sim.spend, engine="exact", adstock=False)


def test_each_campaign_opens_with_one_plain_paragraph_without_statistics_words(report, md, page):
    (c,) = report.campaigns
    top = md[:md.index("### Conversations")]
    paragraphs = [p for p in top.split("\n\n")[2:] if p.strip()]
    assert len(paragraphs) == 1, paragraphs                       # title, heading, then one paragraph
    text = paragraphs[0]
    assert "rose by 4.9 points more than its competitors'" in text
    assert "very likely the campaign's doing" in text
    assert f"between {c.headline_effect.ci_low:+.1f} and {c.headline_effect.ci_high:+.1f} points" in text
    assert f"each cost {c.efficiency.cpinc:,.2f} USD" in text and f"about {c.dnp.delta:,.0f} net-positive" in text
    assert "Next: it fell short of the plan's goal (+5.0 points)" in text
    assert not JARGON.search(_above_analysts(md)), JARGON.search(_above_analysts(md))
    html_top = " ".join(_parse(page[:page.index('id="analysts"')]).text)
    assert not JARGON.search(html_top)
    assert 'class="summary v-effect"' in page


def test_a_campaign_without_a_detectable_effect_says_so_in_plain_words(report):
    c = _analysed("no_effect", 0)
    assert c.verdict == "no detectable effect"
    text = render_markdown(replace(report, campaigns=(c,)))
    top = _above_analysts(text)
    assert "We cannot tell this apart from no change" in top and "includes no change at all" in top
    assert f"between {c.headline_effect.ci_low:+.1f} and {c.headline_effect.ci_high:+.1f} points" in top
    assert "we cannot put a cost on each extra net-positive conversation" in top
    assert "Next: if mood is the aim, change the message" in top
    assert "very likely" not in top and not JARGON.search(top)


def test_methods_that_disagree_say_what_can_still_be_concluded(report):
    """A market-wide move: the paragraph follows DiD and says part of the raw change was
    the market's. No shared market: it says we cannot tell, with what each reading gives."""
    market = _analysed("shock_no_effect", 0)
    dis = market.diagnostics.disagreement
    assert market.verdict != "conflicting" and dis.fired and dis.market_wide
    top = _above_analysts(render_markdown(replace(report, campaigns=(market,))))
    assert "more than its competitors'" in top and "part of the raw change was a market-wide move" in top
    assert "competitors' mood rose by" in top
    alone = _analysed("shock_no_effect", 1, market_sd=0.0)
    assert alone.verdict == "conflicting"
    dis = alone.diagnostics.disagreement
    top = _above_analysts(render_markdown(replace(report, campaigns=(alone,))))
    assert "We cannot tell how much of this the campaign did" in top
    assert f"about {dis.did:+.1f} points) or only the competitors did (then it is about {dis.its:+.1f} points)" in top
    assert not JARGON.search(top)


def test_one_incremental_figure(report, md):
    """dNP has one home (CampaignResult.dnp): the paragraph and the efficiency table show
    it; the carry-over model's own count only appears to analysts, named by how it differs."""
    (c,) = report.campaigns
    headline, carried = f"{c.dnp.delta:,.0f}", f"{c.carry_over.dnp.delta:,.0f}"
    assert headline != carried
    assert f"about {headline} net-positive conversations" in md
    assert f"| Incremental net-positive conversations (dNP; flight and washout, mood and volume effects) | +{headline} " in md
    lines = [line for line in md.splitlines() if f"+{carried} net-positive" in line]
    assert len(lines) == 1 and "carry-over model counts them (mood change only, no volume change" in lines[0]
    assert "dnp" not in json.loads(render(report, "json"))["campaigns"][0]["efficiency"]


def test_times_are_written_for_people(md, page):
    for out in (md, " ".join(_parse(page).text)):
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", out), re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", out)
        assert not re.search(r":\d\d\.\d{3,6}", out)
        assert "22 Nov 2026, 19:00 UTC" in out


def _disagreeing(kpi: str, its: float, did: float, shift: float, verdict: str = CONFLICTING):
    """The sample campaign with an ITS/DiD disagreement on ``kpi``'s scale (log volume for
    mentions) and the given verdict; efficiency (its cost per conversation) kept."""
    from analysis.roi.diagnostics import Disagreement
    from analysis.roi.effects import EffectEstimate

    unit = "log volume" if kpi == "mentions" else "NSS points"
    est = EffectEstimate("its", kpi, unit, shift, shift - 0.05, shift + 0.05, 0.025, 0.001, 90)
    dis = Disagreement(its=its, did=did, competitor_shift=est, conclusions_differ=True, fired=True,
                       comovement=0.1, comovement_p=0.4)
    c = sample_report().campaigns[0]
    return replace(c, kpi=kpi, verdict=verdict, diagnostics=replace(c.diagnostics, disagreement=dis))


def test_a_conflicting_verdict_puts_no_price_on_conversations():
    """The paragraph has just said we cannot tell what the campaign did: a cost per
    net-positive conversation would claim it did (review of issue 15)."""
    c = _disagreeing("nss", 8.9, 2.9, 6.5)
    assert c.efficiency.cpinc is not None and c.dnp is not None
    text = plain_summary(c)
    assert "each cost" not in text and "we cannot put a cost on each extra net-positive conversation" in text


def test_a_mentions_goal_writes_the_disagreement_in_mentions_not_mood_points():
    """For a mentions goal the disagreement is on log volume: +0.23 is about +25.9 % more
    mentions, not "mood moved by +0.2 points"."""
    text = plain_summary(_disagreeing("mentions", 0.25, 0.02, 0.23))
    assert "competitors' mentions moved by +25.9 %" in text, text
    assert "about +2.0 %) or only the competitors did (then it is about +28.4 %)" in text
    assert "mood moved by" not in text
