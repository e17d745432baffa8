"""Render the campaign report (``analysis.roi.report.Report``, see docs/roi-method.md,
"Report") as Markdown, as one self-contained HTML page, or as report.json.

    render_markdown(report) -> str
    render_html(report) -> str
    render(report, "json" | "md" | "html") -> str

The renderers read the typed report (``Report``, ``CampaignResult`` and the estimates
it holds), never a dict copy of it; JSON comes from ``Report.to_json()`` alone. Markdown
and HTML are built from the same list of sections (``build_sections``): plain-text
titles, paragraphs, lists and tables, escaped only when written out (Markdown:
``md_escape``; HTML: ``html.escape``), so every string from the report (campaign and
brand names, sources, notes, caveats) is escaped exactly once and no markup is ever
built from it.

The HTML page needs no network: CSS is inline, charts are matplotlib SVGs inside
``<img src="data:...">`` (``analysis.report_charts``), there is no JavaScript, and a
Content-Security-Policy forbids any fetch but ``data:`` images.

Missing pieces (no campaigns, no competitors, an effect that could not be estimated,
carry-over not identified, no monitor) are said in words, never raised.
"""

from __future__ import annotations

import html
import json
import math
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta, timezone

from analysis.care import CareFigures, effect_sentences, goal_sentence, goal_text
from analysis.roi.campaign import KPI_LABELS, CampaignResult, Efficiency
from analysis.roi.effects import EffectEstimate
from analysis.roi.report import Monitor, Report, ScoredBy
from analysis.roi.verdict import CONFLICTING, EFFECT_DETECTED, NO_DETECTABLE_EFFECT, UNDERPOWERED, human_date, human_time

__all__ = ["FORMATS", "build_sections", "md_escape", "plain_summary", "render", "render_html", "render_markdown"]

METHOD_NAMES = {
    "naive": "Naive before/after",
    "its": "Interrupted time series (ITS)",
    "did": "Difference-in-differences (DiD)",
    "adstock": "Adstock (carry-over model)",
}
WINDOW_LABELS = {"baseline": "Baseline", "flight": "Flight", "washout": "Washout", "post": "After washout",
                 "flight_all_mentions": "Flight, tagged included"}

# ----------------------------------------------------------------------------------
# Document model
# ----------------------------------------------------------------------------------


@dataclass
class Block:
    kind: str                       # "p", "summary", "verdict", "list", "table", "chart", "kv"
    text: str = ""
    items: list = field(default_factory=list)
    headers: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    cls: str = ""                   # CSS class (HTML), e.g. "reported", "incremental", "missing"
    chart: str = ""                 # "mood", "volume", "carryover" (HTML only)
    caption: str = ""
    campaign: int = 0               # a chart's campaign (1-based)


@dataclass
class Section:
    title: str
    level: int = 2
    blocks: list = field(default_factory=list)
    anchor: str = ""


# ----------------------------------------------------------------------------------
# Number formatting
# ----------------------------------------------------------------------------------


def _ok(x) -> bool:
    """A finite number (numpy's included; a bool is not a number here)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _num(x, digits: int = 1, sign: bool = False) -> str:
    if not _ok(x):
        return "n/a"
    return f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"


def _int(x) -> str:
    return f"{round(x):,}" if _ok(x) else "n/a"


def _money(x, currency: str | None) -> str:
    if not _ok(x):
        return "n/a"
    return f"{x:,.2f} {currency}".strip() if currency else f"{x:,.2f}"


def _pct(x, digits: int = 1, sign: bool = False) -> str:
    """A share (0..1) as percent."""
    return "n/a" if not _ok(x) else _num(100 * x, digits, sign) + " %"


def _p(x) -> str:
    if not _ok(x):
        return "n/a"
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def _p_is(x) -> str:
    """"p = 0.093" or "p < 0.001"."""
    text = _p(x)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _is_log(e: EffectEstimate) -> bool:
    return e.lift is not None or e.unit in ("log volume", "log positive mentions")


def _digits(e: EffectEstimate) -> int:
    return 0 if e.unit == "net-positive conversations" else 1


def _expm1(x) -> float | None:
    return math.expm1(x) if _ok(x) else None


def effect_value(e: EffectEstimate | None) -> str:
    """"+8.3 NSS points" (or "+12.0 %" for log-scale models)."""
    if e is None:
        return "not estimated"
    if _is_log(e):
        return _pct(e.lift if e.lift is not None else _expm1(e.delta), 1, True)
    return f"{_num(e.delta, _digits(e), True)} {e.unit or ''}".strip()


def effect_ci(e: EffectEstimate | None) -> str:
    if e is None:
        return "n/a"
    if _is_log(e):
        lo = e.lift_ci_low if e.lift_ci_low is not None else _expm1(e.ci_low)
        hi = e.lift_ci_high if e.lift_ci_high is not None else _expm1(e.ci_high)
        return f"{_pct(lo, 1, True)} to {_pct(hi, 1, True)}"
    d = _digits(e)
    return f"{_num(e.ci_low, d, True)} to {_num(e.ci_high, d, True)}"


def effect_text(e: EffectEstimate | None) -> str:
    """"+8.3 NSS points (95 % CI +5.7 to +10.9)"."""
    if e is None:
        return "not estimated"
    return f"{effect_value(e)} (95 % CI {effect_ci(e)})"


def _washout(e: EffectEstimate | None) -> str:
    if e is None or not _ok(e.washout_delta):
        return "n/a"
    if _is_log(e):
        return _pct(math.expm1(e.washout_delta), 1, True)
    return _num(e.washout_delta, _digits(e), True)


def _s(x, default: str = "") -> str:
    """Any value as a plain string (escaping happens at output)."""
    return default if x is None else str(x)


def _day(x) -> str:
    """A date for people ("2 Nov 2026"), "?" when missing."""
    return "?" if x is None else human_date(x)


def _method_name(m: str | None) -> str:
    if not m:
        return "n/a"
    return METHOD_NAMES.get(m, m)


# ----------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------


def build_sections(report: Report) -> tuple[str, list[Section]]:
    """The report's title and its sections, in order, as plain text: first what a
    marketer reads (per campaign, one plain paragraph and its conversations; the last 48
    hours' alerts), then, apart and labelled, what an analyst checks (data, method,
    estimates, diagnostics, caveats, notes)."""
    title = report.title or f"{report.brand or 'Brand'}: campaign mood report"
    sections = []
    if not report.campaigns:
        sections.append(Section("Campaigns", 2, [Block(
            "p", "No campaign in this report: no pre-registered campaign overlaps the window, so there is no "
                 "verdict, effect estimate or cost figure.", cls="missing")], anchor="campaigns"))
    for i, c in enumerate(report.campaigns, 1):
        sections.append(Section(f"Campaign: {_campaign_name(c, i)}", 2, [_summary(c)], anchor=f"c{i}"))
        sections.append(Section("Conversations", 3, _conversations(report.care_of(c.campaign_id)),
                                anchor=f"c{i}-conversations"))
    sections.append(_monitor(report.monitor))
    sections.append(Section(ANALYSTS, 2, [Block(
        "p", "How the figures above were made and how far to trust them: the data, each estimator's result, the "
             "diagnostics and the caveats they raise. The paragraphs above are written from these.")],
        anchor="analysts"))
    sections.append(_header(report))
    for i, c in enumerate(report.campaigns, 1):
        sections.extend(_campaign_sections(c, i))
    sections.append(_notes(report))
    return title, sections


ANALYSTS = "For analysts: method, diagnostics and caveats"


def _campaign_name(c: CampaignResult, i: int) -> str:
    return c.name or c.campaign_id or f"campaign {i}"


# ----------------------------------------------------------------------------------
# The plain paragraph
# ----------------------------------------------------------------------------------

SURE = {EFFECT_DETECTED: "v-effect", NO_DETECTABLE_EFFECT: "v-none", CONFLICTING: "v-conflict"}


def _summary(c: CampaignResult) -> Block:
    return Block("summary", plain_summary(c), cls=SURE.get(c.verdict, "v-underpowered"))


def _points(x: float, digits: int = 1) -> str:
    """"10.2 points" ("1 point" singular), unsigned: the words carry the direction."""
    v = abs(x)
    return f"{v:,.{digits}f} point" + ("" if round(v, digits) == 1 else "s")


def _range(e: EffectEstimate) -> str:
    """"+7.1 and +13.3 points" (or percent, or conversations): the 95 % interval in plain numbers."""
    if _is_log(e):
        lo = e.lift_ci_low if e.lift_ci_low is not None else _expm1(e.ci_low)
        hi = e.lift_ci_high if e.lift_ci_high is not None else _expm1(e.ci_high)
        return f"{_pct(lo, 1, True)} and {_pct(hi, 1, True)}"
    unit = {"NSS points": "points", "net-positive conversations": "net-positive conversations",
            "share-of-voice points": "share-of-voice points"}.get(e.unit, e.unit)
    d = _digits(e)
    return f"{_num(e.ci_low, d, True)} and {_num(e.ci_high, d, True)} {unit}".strip()


def _change(e: EffectEstimate) -> str:
    """"+10.2 points" / "+12.0 %": the point estimate, signed, in the effect's unit."""
    if _is_log(e):
        return _pct(e.lift if e.lift is not None else _expm1(e.delta), 1, True)
    return f"{_num(e.delta, _digits(e), True)} {'points' if e.unit == 'NSS points' else e.unit}".strip()


def _disagreement_terms(c: CampaignResult) -> tuple[str, Callable[[float], str]]:
    """What the ITS/DiD disagreement is about and how to write its numbers: mood in
    points, or, for a mentions goal, mentions in percent (that disagreement is on the log
    of volume, campaign.py)."""
    if (c.kpi or "nss") in ("mentions", "positive_mentions"):
        return PLAIN_KPI[c.kpi], lambda x: _pct(_expm1(x), 1, True)
    return "mood", lambda x: f"{_num(x, 1, True)} points"


def _mood_sentence(c: CampaignResult) -> str:
    brand = c.brand or "The brand"
    when = f"during the flight ({human_date(c.flight_start)} to {human_date(c.flight_end)})"
    method = c.headline.method
    mood = c.effects.get(method)
    if mood is None or not _ok(mood.delta):
        return f"We could not estimate how {brand}'s mood changed {when}: too few days had data."
    way = "rose" if mood.delta > 0 else "fell"
    scale = "mood (net sentiment, on a scale from -100 to +100)"
    if method == "did":
        text = f"{brand}'s {scale} {way} by {_points(mood.delta)} more than its competitors' {when}"
    else:
        text = f"{brand}'s {scale} {way} by {_points(mood.delta)} against what its own history predicted {when}"
    dis = c.diagnostics.disagreement
    if method == "did" and c.verdict != CONFLICTING and dis is not None and dis.market_wide:
        shift = dis.competitor_shift
        what, fmt = _disagreement_terms(c)
        text += (f"; part of the raw change was a market-wide move: competitors' {what} "
                 f"{'rose' if shift.delta > 0 else 'fell'} by {fmt(shift.delta).lstrip('+-')} at the same time")
    volume = c.volume.get(method)
    if volume is not None and _ok(volume.delta):
        than = " relative to competitors'" if method == "did" else ""
        lift = volume.lift if volume.lift is not None else _expm1(volume.delta)
        if volume.excludes_zero and _ok(lift):
            text += f", and mentions {'rose' if lift > 0 else 'fell'} by about {abs(100 * lift):.0f} %{than}"
        else:
            text += ", and the number of mentions showed no clear change"
    return text + "."


PLAIN_KPI = {"nss": "mood", "mentions": "mentions", "positive_mentions": "positive mentions",
             "sov": "share of voice", "net_positive": "net-positive conversations"}


def _sure_sentence(c: CampaignResult) -> str:
    h = c.headline_effect
    kpi = PLAIN_KPI.get(c.kpi or "nss", c.kpi)
    what = "" if (c.kpi or "nss") == "nss" else f" on the plan's measure ({kpi})"
    if c.verdict == CONFLICTING:
        dis = c.diagnostics.disagreement
        if dis is not None and dis.competitor_shift is not None:
            what, fmt = _disagreement_terms(c)
            return (f"We cannot tell how much of this the campaign did: competitors' {what} moved by "
                    f"{fmt(dis.competitor_shift.delta)} during the flight, and the data cannot show whether the "
                    f"whole market moved (then the campaign's effect is about {fmt(dis.did)}) or only the "
                    f"competitors did (then it is about {fmt(dis.its)}).")
        return "We cannot tell how much of this the campaign did: the methods disagree."
    if h is None or not (_ok(h.ci_low) and _ok(h.ci_high)):
        return f"We cannot tell yet{what}: there were too few days with data to estimate an effect."
    rng = f"the true effect{what} most plausibly lies between {_range(h)} (a 95 % range)"
    pl = c.diagnostics.placebo
    if c.verdict == EFFECT_DETECTED:
        if pl is not None and pl.possible:
            return (f"This is very likely the campaign's doing: {rng}, and no stretch of the weeks before the "
                    f"campaign moved as much.")
        return (f"This is likely the campaign's doing: {rng}; there was too little history before the flight to "
                f"check that ordinary swings never move this much.")
    if h.excludes_zero:  # the placebo check fired: as large as the series' ordinary swings
        return (f"We cannot credit the campaign with it: {rng}, but the brand's mood swung as much in ordinary "
                f"weeks before the campaign.")
    base = f"{rng}, a range that includes no change at all"
    mde = c.mde
    if c.verdict == NO_DETECTABLE_EFFECT:
        goal = c.goal_value
        tail = (f"; an effect as large as the plan's goal ({_goal(c)}) would probably have shown"
                if _ok(goal) else "")
        return f"We cannot tell this apart from no change: {base}{tail}."
    smallest = (f"; with this much data only a change of about {_num(mde.mde_display, 1)} "
                f"{'points' if mde.unit == 'NSS points' else mde.unit} or more shows clearly" if mde else "")
    return f"We cannot tell yet: {base}{smallest}."


def _cost_sentence(c: CampaignResult) -> str:
    eff = c.efficiency
    dnp = c.dnp
    if not eff.currency and not eff.spend:
        return "No spend was imported for it, so there is no cost per conversation."
    spent = _money(eff.spend, eff.currency)
    # Only a detected effect is priced: under any other verdict the paragraph has just said
    # we cannot tell what the campaign did, and a cost per conversation would claim it.
    detected = c.verdict == EFFECT_DETECTED
    if detected and _ok(eff.cpinc) and dnp is not None:
        ci = eff.cpinc_ci
        each = _money(eff.cpinc, eff.currency) + (
            f" (between {_money(ci[0], eff.currency)} and {_money(ci[1], eff.currency)})" if ci else "")
        return (f"It added about {_int(dnp.delta)} net-positive conversations (positive rather than negative "
                f"mentions beyond what was expected without it; between {_int(dnp.ci_low)} and {_int(dnp.ci_high)}), "
                f"so with {spent} spent each cost {each}.")
    if detected and dnp is not None and _ok(dnp.ci_high) and dnp.ci_high < 0:
        return (f"Net-positive conversations (positive rather than negative mentions) fell, by about "
                f"{_int(-dnp.delta)}, so the {spent} spent bought no extra ones.")
    return (f"With {spent} spent, we cannot put a cost on each extra net-positive conversation (a positive rather "
            f"than negative mention), because we cannot tell whether the campaign added any.")


GOAL_UNITS = {"nss": "points", "mentions": "% more mentions", "positive_mentions": "% more positive mentions",
              "sov": "share-of-voice points", "net_positive": "net-positive conversations"}


def _goal(c: CampaignResult) -> str:
    """"+5.0 points": the plan's goal, signed by its direction, in plain units."""
    sign = -1 if c.goal_direction == "decrease" else 1
    return f"{_num(sign * abs(c.goal_value), 1, True)} {GOAL_UNITS.get(c.kpi or 'nss', '')}".strip()


def _next_sentence(c: CampaignResult) -> str:
    h = c.headline_effect
    kpi = PLAIN_KPI.get(c.kpi or "nss", c.kpi)
    running = c.data_end < c.flight_end
    so_far = (f"The data end on {human_date(c.data_end)}, before the flight does, so this is a reading so far. "
              if running else "")
    if c.verdict == CONFLICTING:
        return so_far + ("Next: wait for the market to settle and run the report again, or judge the campaign on a "
                         "period without the market move, before deciding on more spend.")
    if c.verdict == EFFECT_DETECTED and h is not None:
        wanted = -1 if c.goal_direction == "decrease" else 1
        goal = c.goal_value
        if math.copysign(1, h.delta) != wanted:
            return so_far + (f"Next: the campaign moved {kpi} the wrong way; review its message and the replies it "
                             f"drew before spending more.")
        if not _ok(goal):
            return so_far + ("Next: worth repeating; set a goal in the plan so the next report can judge it against "
                             "one.")
        if abs(h.delta) >= abs(goal):
            return so_far + (f"Next: it met the plan's goal ({_goal(c)}); worth repeating, comparing its "
                             f"cost per conversation with other channels before scaling up.")
        return so_far + (f"Next: it fell short of the plan's goal ({_goal(c)}); keep what works but test "
                         f"a stronger message or audience before scaling up.")
    if c.verdict == NO_DETECTABLE_EFFECT:
        return so_far + (f"Next: if {kpi} is the aim, change the message or the audience before spending more on "
                         f"this campaign.")
    return so_far + ("Next: run it longer or to more people before judging it, or plan the next flight long enough "
                     "to show the change you aim for.")


def plain_summary(c: CampaignResult) -> str:
    """One paragraph a marketer reads: what happened to mood and volume, how sure we are
    (in words, with the 95 % range in plain numbers), what each extra net-positive
    conversation cost, and what to do next. Written from the same figures as the
    analysts' section; no statistics words (those are the analysts')."""
    return " ".join((_mood_sentence(c), _sure_sentence(c), _cost_sentence(c), _next_sentence(c)))


# ----------------------------------------------------------------------------------
# For analysts
# ----------------------------------------------------------------------------------


def _header(r: Report) -> Section:
    comps = r.competitors
    left_out = {name for c in r.campaigns for name in c.excluded_competitors}
    rows = [
        ["Brand", r.brand or "not given"],
        ["Competitors", ", ".join(_s(c) + (" (no data in the window: left out)" if c in left_out else "")
                                  for c in comps) if comps else
         "none configured (no difference-in-differences or share of voice against competitors)"],
        ["Window", f"{human_date(r.window[0])} to {human_date(r.window[1])}" if r.window else "not given"],
        ["Time zone (account-local days)", r.timezone or "not given (UTC days)"],
        ["Generated", human_time(r.generated_at)],
        ["Unscored mentions (in volume, not in mood)", _int(r.unscored)],
        ["Duplicates (in volume, not in mood)", _int(r.duplicates)],
        ["Mood scored by", _scored_by(r.scored_by)],
    ]
    gaps = sorted({(day, _s(source)) for c in r.campaigns if c.diagnostics.gaps is not None
                   for day, source, _, _ in c.diagnostics.gaps.gaps})
    rows.append(["Connector gaps", "none" if not gaps else
                 f"{len(gaps)} source-day(s): " + ", ".join(f"{human_date(d)} ({s})" for d, s in gaps[:10])
                 + (" ..." if len(gaps) > 10 else "")])
    blocks = [Block("kv", rows=rows)]
    fresh, counts = r.freshness, r.source_counts
    sources = list(dict.fromkeys([*fresh.keys(), *counts.keys()]))
    if sources:
        blocks.append(Block("table", headers=["Source", "Latest mention", "Mentions"],
                            rows=[[_s(s), human_time(fresh.get(s)), _int(counts.get(s))] for s in sources],
                            caption="Data freshness and volume per source"))
    else:
        blocks.append(Block("p", "No per-source freshness or counts were given.", cls="missing"))
    return Section("Data", 3, blocks, anchor="data")


def _scored_by(scored_by: Mapping[str, ScoredBy]) -> str:
    """Which scorer(s) produced each brand's mood figures."""
    if not scored_by:
        return "not given"
    return "; ".join(f"{_s(brand)}: {p.text or '?'}" for brand, p in scored_by.items())


def _campaign_sections(c: CampaignResult, i: int) -> list[Section]:
    a = f"c{i}"
    return [
        Section(f"Campaign {_campaign_name(c, i)}: scorecard", 3, [_scorecard(c)], anchor=f"{a}-scorecard"),
        Section("Verdict", 4, [_verdict(c)], anchor=f"{a}-verdict"),
        Section("Effect on mood", 4, _effects(c, i), anchor=f"{a}-effects"),
        Section("Volume and share of voice", 4, _volume(c, i), anchor=f"{a}-volume"),
        Section("Carry-over", 4, _carry_over(c, i), anchor=f"{a}-carryover"),
        Section("Efficiency: reported versus incremental", 4, _efficiency(c), anchor=f"{a}-efficiency"),
        Section("Diagnostics", 4, _diagnostics(c), anchor=f"{a}-diagnostics"),
        Section("Caveats", 4, _caveats(c), anchor=f"{a}-caveats"),
    ]


def verdict_sentence(c: CampaignResult) -> str:
    v = c.verdict or "no verdict"
    rule = c.verdict_rule
    h = c.headline_effect
    kpi = KPI_LABELS.get(c.kpi or "nss", c.kpi)
    lift = f" Estimated effect on {kpi}: {effect_text(h)}." if h else f" No estimate of the effect on {kpi}."
    return f"Verdict: {v}" + (f" ({rule})." if rule else ".") + lift


def _verdict(c: CampaignResult) -> Block:
    return Block("verdict", verdict_sentence(c), cls=SURE.get(c.verdict, "v-underpowered"))


def _scorecard(c: CampaignResult) -> Block:
    eff = c.efficiency
    h = c.headline_effect
    head = c.headline
    kpi = c.kpi or "nss"
    goal = c.goal_value
    mde = c.mde
    flight = c.daily.flight
    flight_days = f", {int(sum(1 for f in flight if f))} days" if len(flight) else ""
    rows = [
        ["Campaign ID", c.campaign_id or "n/a"],
        ["Brand", c.brand or "n/a"],
        ["Flight", f"{human_date(c.flight_start)} to {human_date(c.flight_end)}{flight_days}; "
                   f"washout {c.washout_days} days"],
        ["Data analysed", f"{human_date(c.data_start)} to {human_date(c.data_end)}"
         + "".join(f"; {human_date(day)} left out (partial day)" for day, _ in c.dropped_days)
         + "".join(f"; competitor {_s(name)} left out (no data)" for name in c.excluded_competitors)],
        ["Spend", _money(eff.spend, eff.currency) if eff.currency or eff.spend else "no spend data"],
        ["Goal", f"{c.goal_direction or 'increase'} {KPI_LABELS.get(kpi, kpi)}"
         + (f" by {_num(abs(goal), 1)}" if _ok(goal) else " (no goal value in the plan)")],
        ["Lift (95 % CI)", effect_text(h) if h else "not estimated (too little data)"],
        ["Method", _method_name(c.kpi_method or head.method) + (f": {head.reason}" if head.reason else "")],
        ["Minimum detectable effect", f"{_num(mde.mde_display, 1)} {mde.unit}".strip()
         if mde else "not computed (baseline too short)"],
        ["Verdict", (c.verdict or "none") + (f" ({c.verdict_rule})" if c.verdict_rule else "")],
        ["Cost per incremental net-positive conversation (CPINC)", _cpinc(eff)],
    ]
    return Block("kv", rows=rows, cls="scorecard")


def _cpinc(eff: Efficiency) -> str:
    cur = eff.currency
    if _ok(eff.cpinc):
        ci = eff.cpinc_ci
        ci_txt = f" (95 % CI {_money(ci[0], cur)} to {_money(ci[1], cur)})" if ci else ""
        return _money(eff.cpinc, cur) + ci_txt
    status = eff.cpinc_status or "not estimable"
    return status if status.startswith("not estimable") else f"not estimable: {status}"


def _estimate_rows(effects: Mapping[str, EffectEstimate | None]) -> list[list[str]]:
    """Estimator, effect, CI and p of each estimate (the volume and KPI tables)."""
    return [[_method_name(k), effect_value(e), effect_ci(e), _p(e.p_value)] for k, e in effects.items() if e]


def _effects(c: CampaignResult, i: int = 1) -> list[Block]:
    eff = c.effects
    head = c.headline
    why_missing = {
        "naive": "no data before or during the flight",
        "its": "the model could not be fitted (see diagnostics)",
        # The analysis says why there is no DiD (which competitor had no data, what failed).
        "did": head.reason if head.method == "its" and head.reason else
        "no competitor data" if not c.competitors else "the model could not be fitted (see diagnostics)",
        "adstock": "no spend data, or the carry-over model could not be fitted",
    }
    rows = []
    for k in ("naive", "its", "did", "adstock"):
        e = eff.get(k)
        name = _method_name(k)
        if e is None:
            rows.append([name, "not estimated: " + why_missing[k], "", "", "", ""])
            continue
        rows.append([name, effect_value(e), effect_ci(e), _p(e.p_value), _int(e.n_days), _washout(e)])
    blocks = [Block("chart", chart="mood", campaign=i,
                    caption="Daily organic NSS with ±1.96 SE band, counterfactual, competitors, flight (dark) "
                            "and washout (light) shading, spend bars"),
              Block("table", headers=["Estimator", "Effect (flight mean)", "95 % CI", "p", "Days", "Washout"],
                    rows=rows, caption="Effect on organic NSS (NSS points) by estimator")]
    kpi = c.kpi or "nss"
    if kpi != "nss":
        krows = _estimate_rows(c.kpi_effects)
        blocks.append(Block("table", headers=["Estimator", "Effect", "95 % CI", "p"], rows=krows,
                            caption=f"Effect on the primary KPI: {KPI_LABELS.get(kpi, kpi)}")
                      if krows else Block("p", f"No estimate for the primary KPI ({KPI_LABELS.get(kpi, kpi)}).",
                                          cls="missing"))
    return blocks


def _volume(c: CampaignResult, i: int = 1) -> list[Block]:
    blocks = [Block("chart", chart="volume", campaign=i, caption="Daily organic mentions and share of voice by window")]
    rows = []
    for k, w in c.windows.items():
        nss = f"{_num(w.nss, 1)} ± {_num(w.nss_se, 1)}" if _ok(w.nss) else "n/a"
        rows.append([WINDOW_LABELS.get(k, k), f"{_day(w.start)} to {_day(w.end)}",
                     _int(w.days), _int(w.mentions), nss, _pct(w.opinion_rate), _pct(w.share_of_voice)])
    if rows:
        blocks.append(Block("table", headers=["Window", "Dates", "Days", "Mentions", "NSS ± SE", "Opinion rate",
                                              "Share of voice"], rows=rows,
                            caption=f"{c.brand or 'Brand'}: organic mentions by window"))
    else:
        blocks.append(Block("p", "No window metrics.", cls="missing"))
    if c.competitor_windows:
        crows = []
        for comp, ws in c.competitor_windows.items():
            b, f = ws.get("baseline"), ws.get("flight")
            crows.append([_s(comp), _num(b and b.nss, 1), _num(f and f.nss, 1),
                          _pct(b and b.share_of_voice), _pct(f and f.share_of_voice)])
        blocks.append(Block("table", headers=["Competitor", "Baseline NSS", "Flight NSS", "Baseline share of voice",
                                              "Flight share of voice"], rows=crows, caption="Competitors"))
    else:
        blocks.append(Block("p", "No competitors: share of voice against competitors is not available.",
                            cls="missing"))
    vrows = _estimate_rows(c.volume)
    if vrows:
        blocks.append(Block("table", headers=["Estimator", "Volume lift", "95 % CI", "p"], rows=vrows,
                            caption="Effect on organic mention volume"))
    else:
        blocks.append(Block("p", "The volume effect could not be estimated.", cls="missing"))
    t = c.tagged
    if t is not None:
        blocks.append(Block("p", f"Campaign-tagged mentions during the flight (counted apart, not in the headline): "
                                 f"{_int(t.mentions)}, NSS {_num(t.nss, 1)}."))
    return blocks


def _carry_over(c: CampaignResult, i: int = 1) -> list[Block]:
    co = c.carry_over
    if co is None:
        why = "no spend data" if not c.efficiency.currency else \
            "the carry-over model was not run or could not be fitted"
        return [Block("p", f"Carry-over not estimated: {why}.", cls="missing")]
    blocks = []
    if not co.identified:
        blocks.append(Block("p", "Carry-over not identified: the data cannot tell how long the effect lasts"
                                 + (f" ({co.note})" if co.note else "") + ". The theta profile below is "
                                 "flat over its range.", cls="missing"))
    else:
        th_ci, hl_ci = co.theta_ci, co.half_life_ci
        rows = [
            ["Theta (share carried to the next day)", (f"{_num(co.theta, 2)} (95 % CI {_num(th_ci[0], 2)} "
                                                      f"to {_num(th_ci[1], 2)})")],
            ["Half-life", (f"{_num(co.half_life, 1)} days (95 % CI {_num(hl_ci[0], 1)} to "
                          f"{_num(hl_ci[1], 1)})")],
            ["Effect per unit of adstock (beta)", f"{_num(co.beta, 1)} ± {_num(co.beta_se, 1)}"],
            ["Adstock effect (flight mean)", effect_text(co.effect)],
            # Not the report's dNP (Efficiency): this model's own count, named by how it differs.
            ["Net-positive conversations as the carry-over model counts them (mood change only, no volume "
             "change; from the flight's first day to the end of the data)", effect_text(co.dnp)],
        ]
        if co.note:
            rows.append(["Note", co.note])
        blocks.append(Block("kv", rows=rows))
    blocks.append(Block("chart", chart="carryover", campaign=i, caption="Theta profile likelihood"))
    return blocks


def _efficiency(c: CampaignResult) -> list[Block]:
    eff = c.efficiency
    cur = eff.currency
    if not cur and not eff.spend:
        return [Block("p", "No spend data: efficiency cannot be computed. " + _cpinc(eff), cls="missing")]
    missing = eff.engagement_days_missing
    days = eff.engagement_days
    partial = ""
    if missing and days:
        shown = ", ".join(human_date(d) for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
        partial = f" on {_int(days)} of {_int(days + len(missing))} days with spend (not reported on {shown})"
    if eff.engagements is None:
        engagements, cpe = "not reported", "n/a (no engagements reported)"
    else:
        engagements = _int(eff.engagements) + partial
        cpe = ("n/a (0 engagements reported)" if eff.cost_per_engagement is None else
               _money(eff.cost_per_engagement, cur)
               + (f" (the {_money(eff.engagement_spend, cur)} spent on the {_int(days)} days that "
                  "reported engagements, over their engagements)" if partial else ""))
    reported = [
        ["Spend", _money(eff.spend, cur)],
        ["Engagements (platform-reported)", engagements],
        ["Cost per engagement", cpe],
    ]
    dnp = c.dnp
    incremental = [
        ["Incremental net-positive conversations (dNP; flight and washout, mood and volume effects)",
         effect_text(dnp) if dnp else "not estimated"],
        ["Cost per incremental net-positive conversation (CPINC)", _cpinc(eff)],
    ]
    return [
        Block("p", "Two different kinds of number. Reported: what the ad platform counted (every engagement, "
                   "whether or not the ad caused it). Incremental: what the campaign added to organic "
                   "conversations, estimated against the counterfactual. They are not comparable and must not be "
                   "added or divided into each other."),
        Block("kv", rows=reported, cls="reported", caption="Reported by the ad platform (not incremental)"),
        Block("kv", rows=incremental, cls="incremental", caption="Incremental (estimated, with uncertainty)"),
    ]


def _yes(b) -> str:
    return "yes" if b else "no"


def _diagnostics(c: CampaignResult) -> list[Block]:
    d = c.diagnostics
    rows = []
    pl = d.placebo
    if pl is None:
        rows.append(["Placebo windows", "not run", ""])
    elif not pl.possible:
        rows.append(["Placebo windows", (f"not possible: only {_int(pl.n_windows)} baseline windows "
                                        f"(19 needed for a 5 % rank)"), ""])
    else:
        rows.append(["Placebo windows", (f"rank {_pct(pl.rank)} ({_int(pl.exceeding)} of "
                                        f"{_int(pl.n_windows)} baseline windows moved as much)"),
                     _yes(pl.fired)])
    lb = d.ljung_box_p
    rows.append(["Ljung-Box (residual autocorrelation)", _p_is(lb) if _ok(lb) else "n/a",
                 _yes(lb < 0.05) if _ok(lb) else ""])
    pt = d.pretrend
    if pt is not None:
        res = (f"slope {_num(pt.slope_per_week, 2, True)} per week, {_p_is(pt.p_value)}, "
               f"{_int(pt.n_weeks)} weeks") if pt.p_value is not None else \
            f"could not run: {pt.reason or 'unknown'}"
        rows.append(["Pre-trend (brand minus competitors)", res, _yes(not pt.passed)])
    else:
        rows.append(["Pre-trend (brand minus competitors)", "not run (no competitors)", ""])
    dis = d.disagreement
    if dis is not None:
        shift = dis.competitor_shift
        together = ("n/a" if dis.comovement is None else
                    f"correlation {_num(dis.comovement, 2)} ({_p_is(dis.comovement_p)})")
        rows.append(["ITS vs DiD", (f"ITS {_num(dis.its, 1, True)}, DiD {_num(dis.did, 1, True)}; "
                                   f"conclusions differ: {_yes(dis.conclusions_differ)}; competitors "
                                   f"moved {effect_text(shift) if shift else 'n/a'}; brand and competitors before "
                                   f"the flight: {together}; market-wide move: {_yes(dis.market_wide)}"),
                     _yes(dis.fired)])
    else:
        rows.append(["ITS vs DiD", "not compared (needs both models)", ""])
    mix = d.source_mix
    if mix is not None:
        rows.append(["Source mix", (f"total variation {_pct(mix.tvd)}; NSS shift from mix alone "
                                   f"{_num(mix.mix_nss_shift, 1, True)} points"), _yes(mix.fired)])
    else:
        rows.append(["Source mix", "no per-source data", ""])
    g = d.gaps
    if g is not None:
        rows.append(["Connector gaps", (f"{len(g.gaps)} source-day(s) short; {_int(g.in_baseline)} in baseline, "
                                       f"{_int(g.in_flight)} in flight, {_int(g.in_washout)} in "
                                       f"washout"), _yes(g.fired)])
    else:
        rows.append(["Connector gaps", "no coverage data", ""])
    blocks = [Block("table", headers=["Check", "Result", "Fired"], rows=rows)]
    if mix is not None and mix.baseline_shares:
        srcs = list(dict.fromkeys([*mix.baseline_shares, *mix.flight_shares]))
        blocks.append(Block("table", headers=["Source", "Baseline share", "Flight share", "Baseline NSS"],
                            rows=[[_s(s), _pct(mix.baseline_shares.get(s)), _pct(mix.flight_shares.get(s)),
                                   _num(mix.baseline_nss.get(s), 1)] for s in srcs],
                            caption="Source mix"))
    if g is not None and g.gaps:
        blocks.append(Block("table", headers=["Day", "Source", "Expected hours", "Delivered hours"],
                            rows=[[human_date(day), _s(source), _num(expected, 0), _num(observed, 0)]
                                  for day, source, expected, observed in g.gaps], caption="Connector gaps"))
    if d.fit_notes:
        blocks.append(Block("list", items=[_s(n) for n in d.fit_notes], caption="Model fitting notes"))
    return blocks


def _conversations(care: CareFigures | None) -> list[Block]:
    """How the brand answered its customers over the campaign's window, its engagement
    goals and whether answering turned the threads (analysis.care; docs/care.md)."""
    if care is None:
        return [Block("p", "No care figures: they need the campaign's brand to have stored threads.", cls="missing")]
    s = care.summary
    if not s.threads:
        return [Block("p", "No threads opened in the campaign's window.", cls="missing")]
    ci = s.response_rate_ci
    clock = f"business hours ({s.business_hours})" if s.business_hours else "wall-clock hours"
    rows = [
        ["Window (threads opened)", f"{human_time(s.start)} to {human_time(s.end)}"],
        ["Threads", _int(s.threads)],
        ["Needing a reply (opened negative or asking)", _int(s.needing_reply)],
        ["Answered by the brand", f"{_int(s.answered)} of {_int(s.needing_reply)}: "
                                  f"{goal_text('response_rate', s.response_rate)}"
                                  + (f" (95 % range {goal_text('response_rate', ci[0])} to "
                                     f"{goal_text('response_rate', ci[1])})" if ci else "")],
        ["Time to first reply", f"median {goal_text('reply_hours', s.reply_hours_median)}, 90th percentile "
                                f"{goal_text('reply_hours', s.reply_hours_p90)}, in {clock}"],
        ["Resolved (opened negative, last customer post positive or neutral)",
         f"{_int(s.resolved)} of {_int(s.started_negative)} ({goal_text('resolved_share', s.resolved_share)})"],
    ]
    blocks = [Block("kv", rows=rows, caption="Customer care over the campaign's window")]
    if care.goals:
        blocks.append(Block("list", items=[goal_sentence(g) for g in care.goals],
                            caption="Engagement goals (met: the whole 95% interval is on the goal's side)"))
    else:
        blocks.append(Block("p", "No engagement goal is set: give the brand care_goals in the config, or the "
                                 "campaign care_goals in its plan (docs/care.md), to see progress against one.",
                            cls="missing"))
    blocks.append(Block("p", "Does answering turn the thread? " + " ".join(effect_sentences(care.effect))))
    if care.effect.effect is not None:
        blocks.append(Block("list", items=list(care.effect.caveats), caption="What this estimate cannot rule out"))
    return blocks


def _caveats(c: CampaignResult) -> list[Block]:
    cav = [_s(x) for x in c.caveats if x]
    if not cav:
        return [Block("p", "No check fired: no caveat.")]
    return [Block("list", items=cav)]


def _monitor(m: Monitor | None) -> Section:
    """The last 48 hours' alerts: the stored ones, which ``listener alerts`` and the live
    view show too (one notion of alarm)."""
    title = "Last 48 hours: alerts"
    if m is None:
        return Section(title, 2, [Block("p", "No alert data: alerts were not read for this report.", cls="missing")],
                       anchor="monitor")
    span = f"{human_time(m.start)} to {human_time(m.end)}"
    if m.evaluated_through is None:
        return Section(title, 2, [Block("p", f"Alerts have not been evaluated for {m.brand} yet: the hourly stage "
                                             f"finds them (docs/alerts.md), so there is no reading for {span}.",
                                        cls="missing")], anchor="monitor")
    ev = m.evaluated_through
    checked = f"hours checked up to {human_time(ev)}"
    # The last complete hour before the window's end: alerting evaluates whole hours only,
    # so an evaluated_through before it leaves hours nobody has looked at.
    last_hour = m.end.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    if ev < m.start:
        return Section(title, 2, [Block("p", f"Alerting has not checked any hour from {span} for {m.brand} yet "
                                             f"({checked}), so there is no reading for them.", cls="missing")],
                       anchor="monitor")
    later = "" if ev >= last_hour else f" The hours after {human_time(ev)} are not checked yet."
    if not m.alerts:
        where = "" if not later else " in the hours checked"
        return Section(title, 2, [Block("p", f"No alert for {m.brand} from {span}: mood and volume stayed within "
                                             f"their usual hourly range{where} ({checked}).{later}")],
                       anchor="monitor")
    items = [f"{a.summary} ({'still open' if a.closed_at is None else 'over by ' + human_time(a.closed_at)})"
             for a in m.alerts]
    return Section(title, 2, [
        Block("p", f"{len(m.alerts)} alert{'s' * (len(m.alerts) != 1)} for {m.brand} from {span} ({checked}).{later} "
                   "An alert says mood or volume left its usual hourly range, not that a campaign caused it."),
        Block("list", items=items)], anchor="monitor")


def _notes(r: Report) -> Section:
    notes = [_s(n) for n in r.notes if n]
    blocks = [Block("list", items=notes)] if notes else [Block("p", "No method notes.")]
    return Section("Method notes", 3, blocks, anchor="notes")


# ----------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#!|~])")
_MD_LEADING = re.compile(r"^(\s*)(?:([-+=])|(\d+)([.)]))")


def md_escape(s, line_start: bool = False) -> str:
    """Escape a plain string for Markdown text or a table cell: HTML-significant
    characters become entities, Markdown punctuation is backslash-escaped, newlines
    become spaces (a cell or list item stays one line). With ``line_start`` (a paragraph),
    a leading "-", "+", "=" or "1." is escaped too, so it cannot start a list or heading."""
    s = _s(s).replace("\r", " ").replace("\n", " ")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    if line_start:
        s = _MD_LEADING.sub(lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\{m.group(4)}"),
                            s)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md_table(headers: list, rows: list) -> list[str]:
    out = ["| " + " | ".join(md_escape(h) for h in headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(md_escape(x) for x in r) + " |")
    return out


def render_markdown(report: Report) -> str:
    title, sections = build_sections(report)
    out = [f"# {md_escape(title)}", ""]
    for sec in sections:
        out += ["#" * sec.level + " " + md_escape(sec.title), ""]
        for b in sec.blocks:
            if b.kind == "chart":
                continue  # charts are in the HTML report
            if b.caption:
                out += [f"*{md_escape(b.caption)}*", ""]
            if b.kind in ("p", "summary"):
                out += [md_escape(b.text, line_start=True), ""]
            elif b.kind == "verdict":
                out += [f"**{md_escape(b.text)}**", ""]
            elif b.kind == "list":
                # line_start: an item's text starts a line too ("- 1. x" would nest a list).
                out += [f"- {md_escape(x, line_start=True)}" for x in b.items] + [""]
            elif b.kind == "kv":
                out += _md_table(["Item", "Value"], b.rows) + [""]
            elif b.kind == "table":
                out += (_md_table(b.headers, b.rows) if b.rows else ["(none)"]) + [""]
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d1d1f;
 margin:0;background:#f6f6f4}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:26px;margin:8px 0 16px}h2{font-size:21px;margin:36px 0 10px;padding-top:10px;border-top:2px solid #ddd}
h3{font-size:17px;margin:24px 0 8px}
table{border-collapse:collapse;margin:6px 0 14px;min-width:50%;font-size:14px}
th,td{border:1px solid #d8d8d8;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f0f0ee}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{width:34%;font-weight:600}
caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0;color:#444}
.verdict{font-size:17px;font-weight:600;padding:10px 14px;border-radius:6px;border-left:6px solid}
.v-effect{background:#e8f5e9;border-color:#2e7d32}.v-none{background:#eef2f7;border-color:#546e7a}
.v-underpowered{background:#fff8e1;border-color:#f9a825}.v-conflict{background:#fdecea;border-color:#c62828}
.summary{font-size:16px;padding:12px 16px;border-radius:6px;border-left:6px solid}
#analysts h2{background:#eceff1;padding:8px 12px;border-radius:4px;border-top:none;margin-top:48px}
h4{font-size:15px;margin:18px 0 6px}
.missing{color:#8a5a00;background:#fffaf0;padding:6px 10px;border-radius:4px}
table.reported{border-left:6px solid #9e9e9e}table.reported caption{color:#616161}
table.incremental{border-left:6px solid #1f5fa8}table.incremental caption{color:#1f5fa8}
figure{margin:10px 0 18px}figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:13px;color:#555}
nav ul{columns:3;font-size:13px;padding-left:18px}
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _h(s) -> str:
    return html.escape(_s(s), quote=True)


_NUMERIC = re.compile(r"^[+\-−]?[\d,]+(\.\d+)?( ?%)?$|^n/a$")


def _html_table(headers: list, rows: list, cls: str = "", caption: str = "") -> str:
    parts = [f'<table class="{_h(cls)}">' if cls else "<table>"]
    if caption:
        parts.append(f"<caption>{_h(caption)}</caption>")
    if headers:
        parts.append("<thead><tr>" + "".join(f"<th>{_h(x)}</th>" for x in headers) + "</tr></thead>")
    parts.append("<tbody>")
    for r in rows:
        cells = []
        for j, x in enumerate(r):
            num = ' class="num"' if j > 0 and _NUMERIC.match(_s(x)) else ""
            cells.append(f"<td{num}>{_h(x)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _html_kv(rows: list, cls: str = "", caption: str = "") -> str:
    parts = [f'<table class="kv {_h(cls)}">']
    if caption:
        parts.append(f"<caption>{_h(caption)}</caption>")
    parts.append("<tbody>")
    for k, v in rows:
        parts.append(f"<tr><th scope=\"row\">{_h(k)}</th><td>{_h(v)}</td></tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


_DATA_URI = re.compile(r"^data:image/(svg\+xml|png);base64,[A-Za-z0-9+/=]+$")


def _chart(kind: str, campaign: CampaignResult, caption: str) -> str:
    try:
        from analysis import report_charts
        fn = {"mood": report_charts.mood_chart, "volume": report_charts.volume_chart,
              "carryover": report_charts.carryover_chart}[kind]
        uri = fn(campaign)
    except Exception as exc:  # noqa: BLE001 - a chart must never sink the report
        return f'<p class="missing">Chart not drawn: {_h(type(exc).__name__)}: {_h(exc)}</p>'
    if not uri:
        return f'<p class="missing">No data for the chart: {_h(caption)}.</p>'
    if not _DATA_URI.match(uri):
        return '<p class="missing">Chart not drawn: unexpected image data.</p>'
    return f'<figure><img src="{uri}" alt="{_h(caption)}"><figcaption>{_h(caption)}</figcaption></figure>'


def render_html(report: Report, *, charts: bool = True) -> str:
    """One self-contained HTML page (no script, no external resource)."""
    title, sections = build_sections(report)
    campaigns = report.campaigns
    body = [f"<h1>{_h(title)}</h1>"]
    body.append("<nav><ul>" + "".join(f'<li><a href="#{_h(s.anchor)}">{_h(s.title)}</a></li>'
                                      for s in sections if s.level == 2 and s.anchor) + "</ul></nav>")
    for sec in sections:
        tag = f"h{min(max(sec.level, 1), 6)}"
        body.append(f'<section id="{_h(sec.anchor)}"><{tag}>{_h(sec.title)}</{tag}>' if sec.anchor else
                    f"<section><{tag}>{_h(sec.title)}</{tag}>")
        for b in sec.blocks:
            if b.kind == "p":
                cls = f' class="{_h(b.cls)}"' if b.cls else ""
                body.append(f"<p{cls}>{_h(b.text)}</p>")
            elif b.kind == "summary":
                body.append(f'<p class="summary {_h(b.cls)}">{_h(b.text)}</p>')
            elif b.kind == "verdict":
                body.append(f'<p class="verdict {_h(b.cls)}">{_h(b.text)}</p>')
            elif b.kind == "list":
                if b.caption:
                    body.append(f"<p><strong>{_h(b.caption)}</strong></p>")
                body.append("<ul>" + "".join(f"<li>{_h(x)}</li>" for x in b.items) + "</ul>")
            elif b.kind == "kv":
                body.append(_html_kv(b.rows, b.cls, b.caption))
            elif b.kind == "table":
                body.append(_html_table(b.headers, b.rows, b.cls, b.caption) if b.rows else
                            '<p class="missing">(none)</p>')
            elif b.kind == "chart" and charts:
                body.append(_chart(b.chart, campaigns[b.campaign - 1], b.caption))
        body.append("</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        f"<title>{_h(title)}</title><style>{_CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )


FORMATS = ("html", "md", "json")


def render(report: Report, fmt: str) -> str:
    """The report in ``fmt`` (one of ``FORMATS``): the HTML page, the Markdown, or
    report.json's text (``Report.to_json()``)."""
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2, ensure_ascii=False)
    if fmt == "md":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    raise ValueError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")
