"""Charts for the campaign report, drawn with matplotlib (no pyplot, no global backend
change) and returned as ``data:image/svg+xml;base64,...`` URIs for ``<img src>``.

An SVG inside ``<img>`` is inert (no script runs, nothing is fetched, its ids cannot
clash with the page's), and matplotlib's SVG writer escapes the text it embeds. User
strings (brand names) are still passed through ``_label`` so a ``$`` cannot start
mathtext. Each function takes one ``CampaignResult`` (its ``daily`` view, windows and
carry-over) and returns None when it has nothing to draw.
"""

from __future__ import annotations

import base64
import io
import math
import re
from datetime import date

import matplotlib
from matplotlib.figure import Figure

from analysis.roi.campaign import CampaignResult

_PROLOG = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_COMMENTS = re.compile(r"<!--.*?-->", re.DOTALL)

BRAND = "#1f5fa8"
COMPETITOR = "#8a8a8a"
COUNTERFACTUAL = "#d9822b"
SPEND = "#6bb36b"
FLIGHT = "#f3d36b"


def _label(s) -> str:
    """A user string safe for matplotlib text (no mathtext)."""
    return str(s).replace("\\", "\\\\").replace("$", r"\$")


def _floats(values, n: int) -> list[float]:
    """The first ``n`` values as floats, NaN where missing or not finite, padded to ``n``."""
    out = [float(v) if math.isfinite(v) else math.nan for v in (values if values is not None else [])[:n]]
    return out + [math.nan] * (n - len(out))


def _has(values) -> bool:
    """An optional daily series that is there and not empty."""
    return values is not None and len(values) > 0


def _to_uri(fig: Figure) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "brandmood-report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    svg = _COMMENTS.sub("", _PROLOG.sub("", buf.getvalue(), count=1))
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _shade(ax, days: list[date], flags, color: str, alpha: float, label: str) -> None:
    """Shade runs of True days (each day spans [d - 0.5, d + 0.5])."""
    import matplotlib.dates as mdates
    labelled = False
    start = None
    flags = list(flags) if flags is not None else []
    for i, d in enumerate(days):
        on = bool(flags[i]) if i < len(flags) else False
        if on and start is None:
            start = d
        if start is not None and (not on or i == len(days) - 1):
            end = d if on else days[i - 1]
            ax.axvspan(mdates.date2num(start) - 0.5, mdates.date2num(end) + 0.5, color=color, alpha=alpha,
                       lw=0, label=None if labelled else label, zorder=0)
            labelled = True
            start = None


def _new_fig(height: float = 4.2) -> Figure:
    fig = Figure(figsize=(11, height), dpi=100)
    return fig


def _finish_dates(ax) -> None:
    import matplotlib.dates as mdates
    loc = mdates.AutoDateLocator(maxticks=12)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.grid(axis="y", color="#e4e4e4", lw=0.8)
    for side in ("top",):
        ax.spines[side].set_visible(False)


def mood_chart(campaign: CampaignResult) -> str | None:
    """Daily organic NSS of the brand with its +-1.96 SE band, the counterfactual on
    flight and washout days, pooled competitors' NSS, flight/washout shading and spend
    bars on a second axis."""
    daily = campaign.daily
    days = list(daily.dates)
    n = len(days)
    if n == 0:
        return None
    nss = _floats(daily.nss, n)
    se = _floats(daily.nss_se, n)
    lo = [y - 1.96 * s for y, s in zip(nss, se)]
    hi = [y + 1.96 * s for y, s in zip(nss, se)]
    flight = [bool(f) for f in daily.flight] if _has(daily.flight) else [False] * n
    washout = [bool(w) for w in daily.washout] if _has(daily.washout) else [False] * n
    fig = _new_fig()
    ax = fig.add_subplot()
    spend = _floats(daily.spend, n)
    ax2 = None
    if any(math.isfinite(s) and s > 0 for s in spend):
        ax2 = ax.twinx()
        ax2.bar(days, [s if math.isfinite(s) else 0 for s in spend], width=0.8, color=SPEND, alpha=0.35,
                label="spend (right axis)", zorder=1)
        cur = campaign.efficiency.currency or ""
        ax2.set_ylabel(_label(f"daily spend {cur}".strip()))
        ax2.set_ylim(0, max(s for s in spend if math.isfinite(s)) * 3.0)  # bars in the lower third
        ax2.spines["top"].set_visible(False)
        ax.set_zorder(ax2.get_zorder() + 1)
        ax.patch.set_visible(False)
    _shade(ax, days, flight, FLIGHT, 0.45, "flight")
    _shade(ax, days, washout, FLIGHT, 0.18, "washout")
    brand = _label(campaign.brand or "brand")
    ax.fill_between(days, lo, hi, color=BRAND, alpha=0.18, lw=0, label=f"{brand} ±1.96 SE")
    ax.plot(days, nss, color=BRAND, lw=1.6, label=f"{brand} NSS")
    cf = _floats(daily.counterfactual_nss, n)
    active = [bool(f) or bool(w) for f, w in zip(flight + [False] * n, washout + [False] * n)][:n]
    if any(active) and any(math.isfinite(v) for v in cf):
        shown = [cf[i] if active[i] or (i + 1 < n and active[i + 1]) else math.nan for i in range(n)]
        ax.plot(days, shown, color=COUNTERFACTUAL, lw=1.6, ls="--", label="counterfactual (no campaign)")
    comp = daily.competitor_nss
    if _has(comp):
        names = ", ".join(_label(c) for c in campaign.competitors) or "competitors"
        ax.plot(days, _floats(comp, n), color=COMPETITOR, lw=1.2, label=f"competitors pooled ({names})")
    ax.set_ylabel("net sentiment score (NSS points)")
    ax.set_title("Daily organic NSS", loc="left", fontsize=11)
    _finish_dates(ax)
    handles, labels = ax.get_legend_handles_labels()
    if ax2 is not None:
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper left", fontsize=8, ncol=3, frameon=False, bbox_to_anchor=(0, -0.1))
    return _to_uri(fig)


def volume_chart(campaign: CampaignResult) -> str | None:
    """Daily organic mentions (and campaign-tagged ones), with the brand's share of voice
    per window (baseline, flight, washout, post) as steps on a second axis."""
    daily = campaign.daily
    days = list(daily.dates)
    n = len(days)
    if n == 0:
        return None
    fig = _new_fig(3.6)
    ax = fig.add_subplot()
    _shade(ax, days, daily.flight, FLIGHT, 0.45, "flight")
    _shade(ax, days, daily.washout, FLIGHT, 0.18, "washout")
    brand = _label(campaign.brand or "brand")
    ax.plot(days, _floats(daily.mentions, n), color=BRAND, lw=1.5, label=f"{brand} organic mentions")
    if _has(daily.tagged_mentions):
        ax.plot(days, _floats(daily.tagged_mentions, n), color=COUNTERFACTUAL, lw=1.2,
                label="campaign-tagged mentions")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("mentions per day")
    ax.set_title("Daily volume and share of voice", loc="left", fontsize=11)
    _finish_dates(ax)
    handles, labels = ax.get_legend_handles_labels()
    segs = []
    for key in ("baseline", "flight", "washout", "post"):
        w = campaign.windows.get(key)
        if w is None or w.share_of_voice is None or w.start is None or w.end is None:
            continue
        segs.append((w.start, w.end, 100 * float(w.share_of_voice)))
    if segs:
        import matplotlib.dates as mdates
        ax2 = ax.twinx()
        for i, (a, b, v) in enumerate(segs):
            ax2.hlines(v, mdates.date2num(a) - 0.5, mdates.date2num(b) + 0.5, color="#7a3fa0", lw=2.2,
                       label="share of voice by window (right axis)" if i == 0 else None)
        ax2.set_ylim(0, 100)
        ax2.set_ylabel("share of voice (%)")
        ax2.spines["top"].set_visible(False)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper left", fontsize=8, ncol=3, frameon=False, bbox_to_anchor=(0, -0.12))
    return _to_uri(fig)


def carryover_chart(campaign: CampaignResult) -> str | None:
    """The adstock theta profile: log-likelihood drop from the maximum against theta,
    with the estimate and its CI marked."""
    co = campaign.carry_over
    if co is None:
        return None
    prof = [(theta, ll) for theta, ll in co.profile if math.isfinite(theta) and math.isfinite(ll)]
    if len(prof) < 2:
        return None
    th = [float(p[0]) for p in prof]
    best = max(float(p[1]) for p in prof)
    drop = [float(p[1]) - best for p in prof]
    fig = _new_fig(3.0)
    fig.set_size_inches(7, 3.0)
    ax = fig.add_subplot()
    ci = co.theta_ci
    if all(math.isfinite(v) for v in ci):
        ax.axvspan(ci[0], ci[1], color=BRAND, alpha=0.12, lw=0, label="95 % CI of theta")
    ax.plot(th, drop, "o-", color=BRAND, lw=1.5, ms=4, label="profile log-likelihood")
    if math.isfinite(co.theta):
        ax.axvline(co.theta, color=COUNTERFACTUAL, lw=1.2, ls="--", label=f"theta = {co.theta:.2f}")
    ax.axhline(-1.92, color=COMPETITOR, lw=0.8, ls=":", label="-1.92 (95 % cut-off)")
    ax.set_xlabel("theta (share of the effect carried to the next day)")
    ax.set_ylabel("log-likelihood − max")
    ax.set_title("Carry-over: theta profile", loc="left", fontsize=11)
    ax.grid(color="#e4e4e4", lw=0.8)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    return _to_uri(fig)
