"""Render the campaign report dict (see docs/roi-method.md, "Report") as Markdown or as one
self-contained HTML page.

    render_markdown(report) -> str
    render_html(report) -> str

Both are built from the same list of sections (``build_sections``): plain-text titles,
paragraphs, lists and tables, escaped only when written out (Markdown: ``md_escape``;
HTML: ``html.escape``), so every string from the report (campaign and brand names,
sources, notes, caveats) is escaped exactly once and no markup is ever built from it.

The HTML page needs no network: CSS is inline, charts are matplotlib SVGs inside
``<img src="data:...">`` (``analysis.report_charts``), there is no JavaScript, and a
Content-Security-Policy forbids any fetch but ``data:`` images.

Missing pieces (no campaigns, no competitors, an effect that could not be estimated,
carry-over not identified, no monitor) are said in words, never raised.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field

__all__ = ["build_sections", "md_escape", "render_html", "render_markdown"]

METHOD_NAMES = {
    "naive": "Naive before/after",
    "its": "Interrupted time series (ITS)",
    "did": "Difference-in-differences (DiD)",
    "adstock": "Adstock (carry-over model)",
}
KPI_LABELS = {
    "nss": "organic NSS", "mentions": "organic mentions", "positive_mentions": "positive mentions",
    "sov": "share of voice", "net_positive": "incremental net-positive conversations",
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
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


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


def _is_log(e: dict) -> bool:
    return e.get("lift") is not None or e.get("unit") in ("log volume", "log positive mentions")


def _digits(e: dict) -> int:
    return 0 if e.get("unit") == "net-positive conversations" else 1


def effect_value(e: dict | None) -> str:
    """"+8.3 NSS points" (or "+12.0 %" for log-scale models)."""
    if not e:
        return "not estimated"
    if _is_log(e):
        lift = e.get("lift")
        if lift is None and _ok(e.get("delta")):
            lift = math.expm1(e["delta"])
        return _pct(lift, 1, True)
    return f"{_num(e.get('delta'), _digits(e), True)} {e.get('unit') or ''}".strip()


def effect_ci(e: dict | None) -> str:
    if not e:
        return "n/a"
    if _is_log(e):
        lo, hi = e.get("lift_ci_low"), e.get("lift_ci_high")
        if lo is None and _ok(e.get("ci_low")):
            lo = math.expm1(e["ci_low"])
        if hi is None and _ok(e.get("ci_high")):
            hi = math.expm1(e["ci_high"])
        return f"{_pct(lo, 1, True)} to {_pct(hi, 1, True)}"
    d = _digits(e)
    return f"{_num(e.get('ci_low'), d, True)} to {_num(e.get('ci_high'), d, True)}"


def effect_text(e: dict | None) -> str:
    """"+8.3 NSS points (95 % CI +5.7 to +10.9)"."""
    if not e:
        return "not estimated"
    return f"{effect_value(e)} (95 % CI {effect_ci(e)})"


def _washout(e: dict | None) -> str:
    if not e or not _ok(e.get("washout_delta")):
        return "n/a"
    if _is_log(e):
        return _pct(math.expm1(e["washout_delta"]), 1, True)
    return _num(e["washout_delta"], _digits(e), True)


def _excludes_zero(e: dict) -> bool:
    if "excludes_zero" in e:
        return bool(e["excludes_zero"])
    lo, hi = e.get("ci_low"), e.get("ci_high")
    return _ok(lo) and _ok(hi) and (lo > 0 or hi < 0)


def _s(x, default: str = "") -> str:
    """Any value as a plain string (escaping happens at output)."""
    return default if x is None else str(x)


def _method_name(m: str | None) -> str:
    if not m:
        return "n/a"
    return METHOD_NAMES.get(m, m)


# ----------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------


def build_sections(report: dict) -> tuple[str, list[Section]]:
    """The report's title and its sections, in order, as plain text."""
    report = report or {}
    title = _s(report.get("title")) or f"{_s(report.get('brand'), 'Brand')}: campaign mood report"
    sections = [_header(report)]
    campaigns = report.get("campaigns") or []
    if not campaigns:
        sections.append(Section("Campaigns", 2, [Block(
            "p", "No campaign in this report: no pre-registered campaign overlaps the window, so there is no "
                 "scorecard, effect estimate or efficiency figure.", cls="missing")], anchor="campaigns"))
    for i, c in enumerate(campaigns, 1):
        sections.extend(_campaign_sections(c or {}, i))
    sections.append(_monitor(report.get("monitor")))
    sections.append(_notes(report))
    return title, sections


def _header(r: dict) -> Section:
    comps = r.get("competitors") or []
    win = r.get("window") or {}
    left_out = {name for c in r.get("campaigns") or [] for name in (c or {}).get("excluded_competitors") or {}}
    rows = [
        ["Brand", _s(r.get("brand"), "not given")],
        ["Competitors", ", ".join(_s(c) + (" (no data in the window: left out)" if c in left_out else "")
                                  for c in comps) if comps else
         "none configured (no difference-in-differences or share of voice against competitors)"],
        ["Window", f"{_s(win.get('start'), '?')} to {_s(win.get('end'), '?')}" if win else "not given"],
        ["Time zone (account-local days)", _s(r.get("timezone"), "not given (UTC days)")],
        ["Generated", _s(r.get("generated_at"), "not given")],
        ["Unscored mentions (in volume, not in mood)", _int(r.get("unscored")) if r.get("unscored") is not None
         else "not given"],
        ["Duplicates (in volume, not in mood)", _int(r.get("duplicates")) if r.get("duplicates") is not None
         else "not given"],
        ["Mood scored by", _scored_by(r.get("scored_by"))],
    ]
    gaps = []
    for c in r.get("campaigns") or []:
        g = ((c or {}).get("diagnostics") or {}).get("gaps") or {}
        for item in g.get("gaps") or []:
            if isinstance(item, (list, tuple)) and len(item) >= 2:
                gaps.append((_s(item[0]), _s(item[1])))
    gaps = sorted(set(gaps))
    rows.append(["Connector gaps", "none" if not gaps else
                 f"{len(gaps)} source-day(s): " + ", ".join(f"{d} ({s})" for d, s in gaps[:10])
                 + (" ..." if len(gaps) > 10 else "")])
    blocks = [Block("kv", rows=rows)]
    fresh = r.get("freshness") or {}
    counts = r.get("source_counts") or {}
    sources = list(dict.fromkeys([*fresh.keys(), *counts.keys()]))
    if sources:
        blocks.append(Block("table", headers=["Source", "Latest mention (UTC)", "Mentions"],
                            rows=[[_s(s), _s(fresh.get(s), "unknown"), _int(counts.get(s))] for s in sources],
                            caption="Data freshness and volume per source"))
    else:
        blocks.append(Block("p", "No per-source freshness or counts were given.", cls="missing"))
    return Section("Data", 2, blocks, anchor="data")


def _scored_by(scored_by: dict | None) -> str:
    """Which scorer(s) produced each brand's mood figures (report["scored_by"])."""
    if not scored_by:
        return "not given"
    return "; ".join(f"{_s(brand)}: {_s((p or {}).get('text'), '?')}" for brand, p in scored_by.items())


def _campaign_sections(c: dict, i: int) -> list[Section]:
    name = _s(c.get("name")) or _s(c.get("campaign_id"), f"campaign {i}")
    a = f"c{i}"
    return [
        Section(f"Campaign: {name}", 2, [_scorecard(c)], anchor=f"{a}-scorecard"),
        Section("Verdict", 3, [_verdict(c)], anchor=f"{a}-verdict"),
        Section("Effect on mood", 3, _effects(c), anchor=f"{a}-effects"),
        Section("Volume and share of voice", 3, _volume(c), anchor=f"{a}-volume"),
        Section("Carry-over", 3, _carry_over(c), anchor=f"{a}-carryover"),
        Section("Efficiency: reported versus incremental", 3, _efficiency(c), anchor=f"{a}-efficiency"),
        Section("Diagnostics", 3, _diagnostics(c), anchor=f"{a}-diagnostics"),
        Section("Caveats", 3, _caveats(c), anchor=f"{a}-caveats"),
    ]


def verdict_sentence(c: dict) -> str:
    v = _s(c.get("verdict"), "no verdict")
    rule = c.get("verdict_rule")
    h = c.get("headline_effect")
    kpi = KPI_LABELS.get(c.get("kpi") or "nss", _s(c.get("kpi")))
    lift = f" Estimated effect on {kpi}: {effect_text(h)}." if h else f" No estimate of the effect on {kpi}."
    return f"Verdict: {v}" + (f" ({rule})." if rule else ".") + lift


def _verdict(c: dict) -> Block:
    v = _s(c.get("verdict"))
    cls = {"effect detected": "v-effect", "no detectable effect": "v-none", "conflicting": "v-conflict"}.get(
        v, "v-underpowered")
    return Block("verdict", verdict_sentence(c), cls=cls)


def _scorecard(c: dict) -> Block:
    eff = c.get("efficiency") or {}
    h = c.get("headline_effect")
    head = c.get("headline") or {}
    kpi = c.get("kpi") or "nss"
    goal = c.get("goal_value")
    direction = _s(c.get("goal_direction"), "increase")
    mde = c.get("mde")
    flight_days = ""
    daily = c.get("daily") or {}
    if daily.get("flight"):
        flight_days = f", {sum(1 for f in daily['flight'] if f)} days"
    rows = [
        ["Campaign ID", _s(c.get("campaign_id"), "n/a")],
        ["Brand", _s(c.get("brand"), "n/a")],
        ["Flight", (f"{_s(c.get('flight_start'), '?')} to {_s(c.get('flight_end'), '?')}{flight_days}; "
                   f"washout {_s(c.get('washout_days'), '?')} days")],
        ["Data analysed", f"{_s(c.get('data_start'), '?')} to {_s(c.get('data_end'), '?')}"
         + "".join(f"; {_s(d[0])} left out (partial day)" for d in c.get("dropped_days") or [] if d)
         + "".join(f"; competitor {_s(name)} left out (no data)" for name in c.get("excluded_competitors") or {})],
        ["Spend", _money(eff.get("spend"), eff.get("currency")) if eff.get("currency") or eff.get("spend")
         else "no spend data"],
        ["Goal", f"{direction} {KPI_LABELS.get(kpi, kpi)}" + (f" by {_num(abs(goal), 1)}" if _ok(goal) else
                                                                 " (no goal value in the plan)")],
        ["Lift (95 % CI)", effect_text(h) if h else "not estimated (too little data)"],
        ["Method", _method_name(c.get("kpi_method") or head.get("method"))
         + (f": {head['reason']}" if head.get("reason") else "")],
        ["Minimum detectable effect", f"{_num(mde.get('mde_display'), 1)} {_s(mde.get('unit'))}".strip()
         if mde else "not computed (baseline too short)"],
        ["Verdict", _s(c.get("verdict"), "none") + (f" ({c['verdict_rule']})" if c.get("verdict_rule") else "")],
        ["Cost per incremental net-positive conversation (CPINC)", _cpinc(eff)],
    ]
    return Block("kv", rows=rows, cls="scorecard")


def _cpinc(eff: dict) -> str:
    cur = eff.get("currency")
    if _ok(eff.get("cpinc")):
        ci = eff.get("cpinc_ci")
        ci_txt = f" (95 % CI {_money(ci[0], cur)} to {_money(ci[1], cur)})" if ci and len(ci) == 2 else ""
        return _money(eff["cpinc"], cur) + ci_txt
    status = _s(eff.get("cpinc_status"), "not estimable")
    return status if status.startswith("not estimable") else f"not estimable: {status}"


def _effects(c: dict) -> list[Block]:
    eff = c.get("effects") or {}
    has_comp = bool(c.get("competitors"))
    head = c.get("headline") or {}
    why_missing = {
        "naive": "no data before or during the flight",
        "its": "the model could not be fitted (see diagnostics)",
        # The analysis says why there is no DiD (which competitor had no data, what failed).
        "did": _s(head.get("reason")) if head.get("method") == "its" and head.get("reason") else
        "no competitor data" if not has_comp else "the model could not be fitted (see diagnostics)",
        "adstock": "no spend data, or the carry-over model could not be fitted",
    }
    rows = []
    for k in ("naive", "its", "did", "adstock"):
        e = eff.get(k)
        name = _method_name(k)
        if e is None:
            rows.append([name, "not estimated: " + why_missing[k], "", "", "", ""])
            continue
        rows.append([name, effect_value(e), effect_ci(e), _p(e.get("p_value")), _int(e.get("n_days")),
                     _washout(e)])
    blocks = [Block("chart", chart="mood",
                    caption="Daily organic NSS with ±1.96 SE band, counterfactual, competitors, flight (dark) "
                            "and washout (light) shading, spend bars"),
              Block("table", headers=["Estimator", "Effect (flight mean)", "95 % CI", "p", "Days", "Washout"],
                    rows=rows, caption="Effect on organic NSS (NSS points) by estimator")]
    kpi = c.get("kpi") or "nss"
    if kpi != "nss":
        ke = c.get("kpi_effects") or {}
        krows = [[_method_name(k), effect_value(e), effect_ci(e), _p(e.get("p_value"))] for k, e in ke.items() if e]
        blocks.append(Block("table", headers=["Estimator", "Effect", "95 % CI", "p"], rows=krows,
                            caption=f"Effect on the primary KPI: {KPI_LABELS.get(kpi, kpi)}")
                      if krows else Block("p", f"No estimate for the primary KPI ({KPI_LABELS.get(kpi, kpi)}).",
                                          cls="missing"))
    return blocks


def _volume(c: dict) -> list[Block]:
    blocks = [Block("chart", chart="volume", caption="Daily organic mentions and share of voice by window")]
    wins = c.get("windows") or {}
    rows = []
    for k, w in wins.items():
        if not w:
            continue
        nss = f"{_num(w.get('nss'), 1)} ± {_num(w.get('nss_se'), 1)}" if _ok(w.get("nss")) else "n/a"
        rows.append([WINDOW_LABELS.get(k, k), f"{_s(w.get('start'), '?')} to {_s(w.get('end'), '?')}",
                     _int(w.get("days")), _int(w.get("mentions")), nss, _pct(w.get("opinion_rate")),
                     _pct(w.get("share_of_voice"))])
    if rows:
        blocks.append(Block("table", headers=["Window", "Dates", "Days", "Mentions", "NSS ± SE", "Opinion rate",
                                              "Share of voice"], rows=rows,
                            caption=f"{_s(c.get('brand'), 'Brand')}: organic mentions by window"))
    else:
        blocks.append(Block("p", "No window metrics.", cls="missing"))
    cw = c.get("competitor_windows") or {}
    if cw:
        crows = []
        for comp, ws in cw.items():
            b, f = (ws or {}).get("baseline") or {}, (ws or {}).get("flight") or {}
            crows.append([_s(comp), _num(b.get("nss"), 1), _num(f.get("nss"), 1), _pct(b.get("share_of_voice")),
                          _pct(f.get("share_of_voice"))])
        blocks.append(Block("table", headers=["Competitor", "Baseline NSS", "Flight NSS", "Baseline share of voice",
                                              "Flight share of voice"], rows=crows, caption="Competitors"))
    else:
        blocks.append(Block("p", "No competitors: share of voice against competitors is not available.",
                            cls="missing"))
    vol = c.get("volume") or {}
    vrows = [[_method_name(k), effect_value(e), effect_ci(e), _p(e.get("p_value"))] for k, e in vol.items() if e]
    if vrows:
        blocks.append(Block("table", headers=["Estimator", "Volume lift", "95 % CI", "p"], rows=vrows,
                            caption="Effect on organic mention volume"))
    else:
        blocks.append(Block("p", "The volume effect could not be estimated.", cls="missing"))
    t = c.get("tagged")
    if t:
        blocks.append(Block("p", f"Campaign-tagged mentions during the flight (counted apart, not in the headline): "
                                 f"{_int(t.get('mentions'))}, NSS {_num(t.get('nss'), 1)}."))
    return blocks


def _carry_over(c: dict) -> list[Block]:
    co = c.get("carry_over")
    if not co:
        why = "no spend data" if not (c.get("efficiency") or {}).get("currency") else \
            "the carry-over model was not run or could not be fitted"
        return [Block("p", f"Carry-over not estimated: {why}.", cls="missing")]
    blocks = []
    if not co.get("identified"):
        blocks.append(Block("p", "Carry-over not identified: the data cannot tell how long the effect lasts"
                                 + (f" ({co['note']})" if co.get("note") else "") + ". The theta profile below is "
                                 "flat over its range.", cls="missing"))
    else:
        th_ci = co.get("theta_ci") or [None, None]
        hl_ci = co.get("half_life_ci") or [None, None]
        dnp = co.get("dnp")
        rows = [
            ["Theta (share carried to the next day)", (f"{_num(co.get('theta'), 2)} (95 % CI {_num(th_ci[0], 2)} "
                                                      f"to {_num(th_ci[1], 2)})")],
            ["Half-life", (f"{_num(co.get('half_life'), 1)} days (95 % CI {_num(hl_ci[0], 1)} to "
                          f"{_num(hl_ci[1], 1)})")],
            ["Effect per unit of adstock (beta)", f"{_num(co.get('beta'), 1)} ± {_num(co.get('beta_se'), 1)}"],
            ["Adstock effect (flight mean)", effect_text(co.get("effect"))],
            ["Incremental net-positive conversations incl. carry-over (dNP)", effect_text(dnp)],
        ]
        if co.get("note"):
            rows.append(["Note", _s(co["note"])])
        blocks.append(Block("kv", rows=rows))
    blocks.append(Block("chart", chart="carryover", caption="Theta profile likelihood"))
    return blocks


def _efficiency(c: dict) -> list[Block]:
    eff = c.get("efficiency") or {}
    cur = eff.get("currency")
    if not cur and not eff.get("spend"):
        return [Block("p", "No spend data: efficiency cannot be computed. "
                           + _cpinc(eff) if eff else "No spend data: efficiency cannot be computed.",
                      cls="missing")]
    missing = eff.get("engagement_days_missing") or []
    days = eff.get("engagement_days")
    partial = ""
    if missing and days:
        shown = ", ".join(_s(d) for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
        partial = f" on {_int(days)} of {_int(days + len(missing))} days with spend (not reported on {shown})"
    if eff.get("engagements") is None:
        engagements, cpe = "not reported", "n/a (no engagements reported)"
    else:
        engagements = _int(eff.get("engagements")) + partial
        cpe = ("n/a (0 engagements reported)" if eff.get("cost_per_engagement") is None else
               _money(eff.get("cost_per_engagement"), cur)
               + (f" (the {_money(eff.get('engagement_spend'), cur)} spent on the {_int(days)} days that "
                  "reported engagements, over their engagements)" if partial else ""))
    reported = [
        ["Spend", _money(eff.get("spend"), cur)],
        ["Engagements (platform-reported)", engagements],
        ["Cost per engagement", cpe],
    ]
    dnp = eff.get("dnp") or c.get("dnp")
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


def _diagnostics(c: dict) -> list[Block]:
    d = c.get("diagnostics") or {}
    rows = []
    pl = d.get("placebo")
    if not pl:
        rows.append(["Placebo windows", "not run", ""])
    elif not pl.get("possible"):
        rows.append(["Placebo windows", (f"not possible: only {_int(pl.get('n_windows'))} baseline windows "
                                        f"(19 needed for a 5 % rank)"), ""])
    else:
        rows.append(["Placebo windows", (f"rank {_pct(pl.get('rank'))} ({_int(pl.get('exceeding'))} of "
                                        f"{_int(pl.get('n_windows'))} baseline windows moved as much)"),
                     _yes(pl.get("fired"))])
    lb = d.get("ljung_box_p")
    rows.append(["Ljung-Box (residual autocorrelation)", f"p = {_p(lb)}" if _ok(lb) else "n/a",
                 _yes(_ok(lb) and lb < 0.05) if _ok(lb) else ""])
    pt = d.get("pretrend")
    if pt:
        res = (f"slope {_num(pt.get('slope_per_week'), 2, True)} per week, p = {_p(pt.get('p_value'))}, "
               f"{_int(pt.get('n_weeks'))} weeks") if pt.get("p_value") is not None else \
            f"could not run: {_s(pt.get('reason'), 'unknown')}"
        rows.append(["Pre-trend (brand minus competitors)", res, _yes(not pt.get("passed"))])
    else:
        rows.append(["Pre-trend (brand minus competitors)", "not run (no competitors)", ""])
    dis = d.get("disagreement")
    if dis:
        shift = dis.get("competitor_shift")
        rows.append(["ITS vs DiD", (f"ITS {_num(dis.get('its'), 1, True)}, DiD {_num(dis.get('did'), 1, True)}; "
                                   f"conclusions differ: {_yes(dis.get('conclusions_differ'))}; competitors "
                                   f"moved {effect_text(shift) if shift else 'n/a'}"), _yes(dis.get("fired"))])
    else:
        rows.append(["ITS vs DiD", "not compared (needs both models)", ""])
    mix = d.get("source_mix")
    if mix:
        rows.append(["Source mix", (f"total variation {_pct(mix.get('tvd'))}; NSS shift from mix alone "
                                   f"{_num(mix.get('mix_nss_shift'), 1, True)} points"), _yes(mix.get("fired"))])
    else:
        rows.append(["Source mix", "no per-source data", ""])
    g = d.get("gaps")
    if g:
        n = len(g.get("gaps") or [])
        rows.append(["Connector gaps", (f"{n} source-day(s) short; {_int(g.get('in_baseline'))} in baseline, "
                                       f"{_int(g.get('in_flight'))} in flight, {_int(g.get('in_washout'))} in "
                                       f"washout"), _yes(g.get("fired"))])
    else:
        rows.append(["Connector gaps", "no coverage data", ""])
    blocks = [Block("table", headers=["Check", "Result", "Fired"], rows=rows)]
    if mix and mix.get("baseline_shares"):
        srcs = list(dict.fromkeys([*mix.get("baseline_shares", {}), *mix.get("flight_shares", {})]))
        blocks.append(Block("table", headers=["Source", "Baseline share", "Flight share", "Baseline NSS"],
                            rows=[[_s(s), _pct((mix.get("baseline_shares") or {}).get(s)),
                                   _pct((mix.get("flight_shares") or {}).get(s)),
                                   _num((mix.get("baseline_nss") or {}).get(s), 1)] for s in srcs],
                            caption="Source mix"))
    gl = (g or {}).get("gaps") or []
    if gl:
        blocks.append(Block("table", headers=["Day", "Source", "Expected hours", "Delivered hours"],
                            rows=[[_s(x[0]), _s(x[1]), _num(x[2], 0), _num(x[3], 0)] for x in gl
                                  if isinstance(x, (list, tuple)) and len(x) >= 4], caption="Connector gaps"))
    notes = d.get("fit_notes") or []
    if notes:
        blocks.append(Block("list", items=[_s(n) for n in notes], caption="Model fitting notes"))
    return blocks


def _caveats(c: dict) -> list[Block]:
    cav = [_s(x) for x in c.get("caveats") or [] if x]
    if not cav:
        return [Block("p", "No check fired: no caveat.")]
    return [Block("list", items=cav)]


def _monitor(m: dict | None) -> Section:
    if not m or not m.get("hours"):
        return Section("Last 48 hours: mood monitor", 2, [Block(
            "p", "No monitor data: the hourly EWMA monitor was not run for this report.", cls="missing")],
            anchor="monitor")
    hours = list(m.get("hours") or [])
    ewma = list(m.get("ewma") or [])
    nss = list(m.get("nss") or [])
    limit = m.get("limit")
    alarms = m.get("alarms")
    if alarms is None and m.get("alarm") is not None:
        alarms = [h for h, a in zip(hours, m["alarm"]) if a]
    alarms = [_s(a) for a in alarms or []]
    last_e = next((v for v in reversed(ewma) if _ok(v)), None)
    last_n = next((v for v in reversed(nss) if _ok(v)), None)
    finite_e = [v for v in ewma if _ok(v)]
    rows = [
        ["Hours covered", f"{len(hours)} ({_s(hours[0])} to {_s(hours[-1])})"],
        ["Latest hourly NSS", _num(last_n, 1)],
        ["Latest EWMA of standardised NSS", f"{_num(last_e, 2, True)} (control limits ±{_num(limit, 2)})"],
        ["EWMA range", f"{_num(min(finite_e), 2, True)} to {_num(max(finite_e), 2, True)}" if finite_e else "n/a"],
        ["Alarm hours", str(len(alarms)) if alarms else "none"],
    ]
    blocks = [Block("kv", rows=rows),
              Block("p", "Monitoring, not causal inference: an alarm says mood moved beyond its usual hourly range, "
                         "not that a campaign caused it.")]
    if alarms:
        blocks.append(Block("list", items=alarms[:48], caption="Hours outside the control limits (UTC)"))
    return Section("Last 48 hours: mood monitor", 2, blocks, anchor="monitor")


def _notes(r: dict) -> Section:
    notes = [_s(n) for n in r.get("notes") or [] if n]
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


def render_markdown(report: dict) -> str:
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


def _chart(kind: str, campaign: dict, caption: str) -> str:
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


def render_html(report: dict, *, charts: bool = True) -> str:
    """One self-contained HTML page (no script, no external resource)."""
    report = report or {}
    title, sections = build_sections(report)
    campaigns = report.get("campaigns") or []
    body = [f"<h1>{_h(title)}</h1>"]
    body.append("<nav><ul>" + "".join(f'<li><a href="#{_h(s.anchor)}">{_h(s.title)}</a></li>'
                                      for s in sections if s.level == 2 and s.anchor) + "</ul></nav>")
    ci = 0
    for sec in sections:
        if sec.anchor.endswith("-scorecard"):
            ci += 1
        camp = campaigns[ci - 1] if 0 < ci <= len(campaigns) else {}
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
                body.append(_chart(b.chart, camp or {}, b.caption))
        body.append("</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        f"<title>{_h(title)}</title><style>{_CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )
