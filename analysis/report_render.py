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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timezone

from analysis.care import CareFigures, effect_sentences, goal_sentence, goal_text
from analysis.roi.campaign import KPI_LABELS, CampaignResult, Efficiency
from analysis.roi.effects import EffectEstimate
from analysis.roi.report import Monitor, Report, ScoredBy

__all__ = ["FORMATS", "build_sections", "md_escape", "render", "render_html", "render_markdown"]

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
    kind: str                       # "p", "verdict", "list", "table", "chart", "kv"
    text: str = ""
    items: list = field(default_factory=list)
    headers: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    cls: str = ""                   # CSS class (HTML), e.g. "reported", "incremental", "missing"
    chart: str = ""                 # "mood", "volume", "carryover" (HTML only)
    caption: str = ""


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
    """Any value as a plain string (escaping happens at output); a date as ISO 8601."""
    return default if x is None else str(x)


def _method_name(m: str | None) -> str:
    if not m:
        return "n/a"
    return METHOD_NAMES.get(m, m)


# ----------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------


def build_sections(report: Report) -> tuple[str, list[Section]]:
    """The report's title and its sections, in order, as plain text."""
    title = report.title or f"{report.brand or 'Brand'}: campaign mood report"
    sections = [_header(report)]
    if not report.campaigns:
        sections.append(Section("Campaigns", 2, [Block(
            "p", "No campaign in this report: no pre-registered campaign overlaps the window, so there is no "
                 "scorecard, effect estimate or efficiency figure.", cls="missing")], anchor="campaigns"))
    for i, c in enumerate(report.campaigns, 1):
        sections.extend(_campaign_sections(c, i, report.care_of(c.campaign_id)))
    sections.append(_monitor(report.monitor))
    sections.append(_notes(report))
    return title, sections


def _header(r: Report) -> Section:
    comps = r.competitors
    left_out = {name for c in r.campaigns for name in c.excluded_competitors}
    rows = [
        ["Brand", r.brand or "not given"],
        ["Competitors", ", ".join(_s(c) + (" (no data in the window: left out)" if c in left_out else "")
                                  for c in comps) if comps else
         "none configured (no difference-in-differences or share of voice against competitors)"],
        ["Window", f"{r.window[0]} to {r.window[1]}" if r.window else "not given"],
        ["Time zone (account-local days)", r.timezone or "not given (UTC days)"],
        ["Generated", r.generated_at.astimezone(timezone.utc).isoformat()],
        ["Unscored mentions (in volume, not in mood)", _int(r.unscored)],
        ["Duplicates (in volume, not in mood)", _int(r.duplicates)],
        ["Mood scored by", _scored_by(r.scored_by)],
    ]
    gaps = sorted({(_s(day), _s(source)) for c in r.campaigns if c.diagnostics.gaps is not None
                   for day, source, _, _ in c.diagnostics.gaps.gaps})
    rows.append(["Connector gaps", "none" if not gaps else
                 f"{len(gaps)} source-day(s): " + ", ".join(f"{d} ({s})" for d, s in gaps[:10])
                 + (" ..." if len(gaps) > 10 else "")])
    blocks = [Block("kv", rows=rows)]
    fresh, counts = r.freshness, r.source_counts
    sources = list(dict.fromkeys([*fresh.keys(), *counts.keys()]))
    if sources:
        blocks.append(Block("table", headers=["Source", "Latest mention (UTC)", "Mentions"],
                            rows=[[_s(s), _s(fresh.get(s), "unknown"), _int(counts.get(s))] for s in sources],
                            caption="Data freshness and volume per source"))
    else:
        blocks.append(Block("p", "No per-source freshness or counts were given.", cls="missing"))
    return Section("Data", 2, blocks, anchor="data")


def _scored_by(scored_by: Mapping[str, ScoredBy]) -> str:
    """Which scorer(s) produced each brand's mood figures."""
    if not scored_by:
        return "not given"
    return "; ".join(f"{_s(brand)}: {p.text or '?'}" for brand, p in scored_by.items())


def _campaign_sections(c: CampaignResult, i: int, care: CareFigures | None = None) -> list[Section]:
    name = c.name or c.campaign_id or f"campaign {i}"
    a = f"c{i}"
    return [
        Section(f"Campaign: {name}", 2, [_scorecard(c)], anchor=f"{a}-scorecard"),
        Section("Verdict", 3, [_verdict(c)], anchor=f"{a}-verdict"),
        Section("Effect on mood", 3, _effects(c), anchor=f"{a}-effects"),
        Section("Volume and share of voice", 3, _volume(c), anchor=f"{a}-volume"),
        Section("Conversations", 3, _conversations(care), anchor=f"{a}-conversations"),
        Section("Carry-over", 3, _carry_over(c), anchor=f"{a}-carryover"),
        Section("Efficiency: reported versus incremental", 3, _efficiency(c), anchor=f"{a}-efficiency"),
        Section("Diagnostics", 3, _diagnostics(c), anchor=f"{a}-diagnostics"),
        Section("Caveats", 3, _caveats(c), anchor=f"{a}-caveats"),
    ]


def verdict_sentence(c: CampaignResult) -> str:
    v = c.verdict or "no verdict"
    rule = c.verdict_rule
    h = c.headline_effect
    kpi = KPI_LABELS.get(c.kpi or "nss", c.kpi)
    lift = f" Estimated effect on {kpi}: {effect_text(h)}." if h else f" No estimate of the effect on {kpi}."
    return f"Verdict: {v}" + (f" ({rule})." if rule else ".") + lift


def _verdict(c: CampaignResult) -> Block:
    cls = {"effect detected": "v-effect", "no detectable effect": "v-none", "conflicting": "v-conflict"}.get(
        c.verdict, "v-underpowered")
    return Block("verdict", verdict_sentence(c), cls=cls)


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
        ["Flight", f"{c.flight_start} to {c.flight_end}{flight_days}; washout {c.washout_days} days"],
        ["Data analysed", f"{c.data_start} to {c.data_end}"
         + "".join(f"; {_s(day)} left out (partial day)" for day, _ in c.dropped_days)
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


def _effects(c: CampaignResult) -> list[Block]:
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
    blocks = [Block("chart", chart="mood",
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


def _volume(c: CampaignResult) -> list[Block]:
    blocks = [Block("chart", chart="volume", caption="Daily organic mentions and share of voice by window")]
    rows = []
    for k, w in c.windows.items():
        nss = f"{_num(w.nss, 1)} ± {_num(w.nss_se, 1)}" if _ok(w.nss) else "n/a"
        rows.append([WINDOW_LABELS.get(k, k), f"{_s(w.start, '?')} to {_s(w.end, '?')}",
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


def _carry_over(c: CampaignResult) -> list[Block]:
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
            ["Incremental net-positive conversations incl. carry-over (dNP)", effect_text(co.dnp)],
        ]
        if co.note:
            rows.append(["Note", co.note])
        blocks.append(Block("kv", rows=rows))
    blocks.append(Block("chart", chart="carryover", caption="Theta profile likelihood"))
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
        shown = ", ".join(_s(d) for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
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
    dnp = eff.dnp or c.dnp
    incremental = [
        ["Incremental net-positive conversations (dNP)", effect_text(dnp) if dnp else "not estimated"],
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
    rows.append(["Ljung-Box (residual autocorrelation)", f"p = {_p(lb)}" if _ok(lb) else "n/a",
                 _yes(lb < 0.05) if _ok(lb) else ""])
    pt = d.pretrend
    if pt is not None:
        res = (f"slope {_num(pt.slope_per_week, 2, True)} per week, p = {_p(pt.p_value)}, "
               f"{_int(pt.n_weeks)} weeks") if pt.p_value is not None else \
            f"could not run: {pt.reason or 'unknown'}"
        rows.append(["Pre-trend (brand minus competitors)", res, _yes(not pt.passed)])
    else:
        rows.append(["Pre-trend (brand minus competitors)", "not run (no competitors)", ""])
    dis = d.disagreement
    if dis is not None:
        shift = dis.competitor_shift
        rows.append(["ITS vs DiD", (f"ITS {_num(dis.its, 1, True)}, DiD {_num(dis.did, 1, True)}; "
                                   f"conclusions differ: {_yes(dis.conclusions_differ)}; competitors "
                                   f"moved {effect_text(shift) if shift else 'n/a'}"), _yes(dis.fired)])
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
                            rows=[[_s(day), _s(source), _num(expected, 0), _num(observed, 0)]
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
        ["Window (threads opened, UTC)", f"{s.start:%Y-%m-%d %H:%M} to {s.end:%Y-%m-%d %H:%M}"],
        ["Threads", _int(s.threads)],
        ["Needing a reply (opened negative or asking)", _int(s.needing_reply)],
        ["Answered by the brand", f"{_int(s.answered)} of {_int(s.needing_reply)}: "
                                  f"{goal_text('response_rate', s.response_rate)}"
                                  + (f" (95% CI {goal_text('response_rate', ci[0])} to "
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
    hours = [h.isoformat() for h in m.shown_hours] if m is not None else []
    if not hours:
        return Section("Last 48 hours: mood monitor", 2, [Block(
            "p", "No monitor data: the hourly EWMA monitor was not run for this report.", cls="missing")],
            anchor="monitor")
    ewma = [float(v) for v in m.ewma]
    alarms = [h.isoformat() for h in m.alarm_hours]
    last_e = next((v for v in reversed(ewma) if _ok(v)), None)
    last_n = next((float(v) for v in reversed(m.nss) if _ok(v)), None)
    finite_e = [v for v in ewma if _ok(v)]
    rows = [
        ["Hours covered", f"{len(hours)} ({hours[0]} to {hours[-1]})"],
        ["Latest hourly NSS", _num(last_n, 1)],
        ["Latest EWMA of standardised NSS", f"{_num(last_e, 2, True)} (control limits ±{_num(m.result.limit, 2)})"],
        ["EWMA range", f"{_num(min(finite_e), 2, True)} to {_num(max(finite_e), 2, True)}" if finite_e else "n/a"],
        ["Alarm hours", str(len(alarms)) if alarms else "none"],
    ]
    blocks = [Block("kv", rows=rows),
              Block("p", "Monitoring, not causal inference: an alarm says mood moved beyond its usual hourly range, "
                         "not that a campaign caused it.")]
    if alarms:
        blocks.append(Block("list", items=alarms[:48], caption="Hours outside the control limits (UTC)"))
    return Section("Last 48 hours: mood monitor", 2, blocks, anchor="monitor")


def _notes(r: Report) -> Section:
    notes = [_s(n) for n in r.notes if n]
    blocks = [Block("list", items=notes)] if notes else [Block("p", "No method notes.")]
    return Section("Method notes", 2, blocks, anchor="notes")


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
            if b.kind == "p":
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
    ci = 0
    for sec in sections:
        if sec.anchor.endswith("-scorecard"):
            ci += 1
        tag = f"h{min(max(sec.level, 1), 6)}"
        body.append(f'<section id="{_h(sec.anchor)}"><{tag}>{_h(sec.title)}</{tag}>' if sec.anchor else
                    f"<section><{tag}>{_h(sec.title)}</{tag}>")
        for b in sec.blocks:
            if b.kind == "p":
                cls = f' class="{_h(b.cls)}"' if b.cls else ""
                body.append(f"<p{cls}>{_h(b.text)}</p>")
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
                # Charts sit in a campaign's sections: the ci-th campaign's.
                body.append(_chart(b.chart, campaigns[ci - 1], b.caption))
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
