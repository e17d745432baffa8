"""Render the live mood view (listener.live_view's dict) as one HTML page.

    render_page(view, csrf=..., refresh=60, notice=None, self_path="/") -> str
    render_message(title, text) -> str

The rules of the campaign report (analysis.report_render): every string from the data
(brand names, thread titles, URLs, sources, errors) is escaped once, when written out,
with ``html.escape``; no markup is built from it. Besides, user text is shown as text
whatever it holds: control characters become visible symbols (U+2400...), right-to-left
and bidi-override text is isolated in ``<bdi>`` so it cannot reorder the page around it,
and long strings are cut. Links are only ``http(s)`` URLs.

No script, no external resource: CSS inline, charts hand-written inline SVG (a 48-hour
chart takes well under a millisecond, a matplotlib figure ~100 ms), self-refresh with
``<meta http-equiv="refresh">``, and a Content-Security-Policy that allows nothing but
inline styles, ``data:`` images and forms posting back to this server. The label forms
(one per thread, three buttons) need no script either.

Numbers that ``listener mood --json`` also prints are written in ``<data>`` elements
whose ``value`` is the JSON number, so a test (or a scraper) can compare them exactly.
"""

from __future__ import annotations

import html
import math
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["CSP", "render_message", "render_page", "visible_text"]

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
# frame-ancestors is ignored in a <meta> CSP (the server sends it as a header too).
_META_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'"

WINDOWS = (("last_hour", "Last hour"), ("last_24h", "Last 24 h"), ("baseline_7d", "7-day baseline"))
Z95 = 1.96
TITLE_LIMIT = 280
TEXT_LIMIT = 200

BRAND = "#1f5fa8"
BAND = "#1f5fa8"
VOLUME = "#8a8a8a"

# C0 controls (but tab and newline), DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def _control_picture(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ ... ␟
    return "\u2421" if code == 0x7F else "\ufffd"


def visible_text(value: Any, limit: int = TEXT_LIMIT) -> str:
    """A user string as plain visible text (not yet HTML-escaped): control characters
    as their symbols, newlines and tabs as spaces, cut to ``limit`` characters."""
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub(_control_picture, text)


def _h(value: Any, limit: int = TEXT_LIMIT) -> str:
    return html.escape(visible_text(value, limit), quote=True)


def _user(value: Any, limit: int = TEXT_LIMIT) -> str:
    """User text, escaped and isolated from the page's text direction."""
    return f"<bdi>{_h(value, limit)}</bdi>"


def _ok(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _num(x: Any, digits: int = 1, sign: bool = False) -> str:
    if not _ok(x):
        return "n/a"
    return f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"


def _int(x: Any) -> str:
    return f"{x:,}" if _ok(x) else "n/a"


def _data(value: Any, text: str, **attrs: str) -> str:
    """``<data value=...>`` carrying the exact JSON number behind a rounded display."""
    extra = "".join(f' data-{k}="{html.escape(str(v), quote=True)}"' for k, v in attrs.items())
    shown = "" if value is None else repr(value) if isinstance(value, float) else str(value)
    return f'<data value="{html.escape(shown, quote=True)}"{extra}>{html.escape(text)}</data>'


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _when(value: Any, now: datetime | None) -> str:
    """"2026-11-01 11:58 UTC (2 min ago)"."""
    moment = _time(value)
    if moment is None:
        return "never"
    text = f"{moment:%Y-%m-%d %H:%M} UTC"
    if now is not None:
        age = now - moment
        seconds = age.total_seconds()
        if seconds < 0:
            text += " (after the view's time)"
        elif seconds < 120:
            text += f" ({int(seconds)} s ago)"
        elif seconds < 7200:
            text += f" ({int(seconds // 60)} min ago)"
        elif seconds < 172800:
            text += f" ({seconds / 3600:.0f} h ago)"
        else:
            text += f" ({seconds / 86400:.0f} days ago)"
    return html.escape(text)


def _link(url: Any, text_html: str) -> str:
    """``text_html`` linked to ``url`` when that is an http(s) URL, else unlinked."""
    if not isinstance(url, str) or len(url) > 2048:
        return text_html
    try:
        parts = urlsplit(url)
    except ValueError:
        return text_html
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or _CONTROL.search(url) or " " in url:
        return text_html
    return f'<a href="{html.escape(url, quote=True)}" rel="noopener noreferrer nofollow" target="_blank">{text_html}</a>'


def brand_path(name: str) -> str:
    return "/brand/" + quote(name, safe="")


# -- charts (inline SVG) -----------------------------------------------------------------


def _svg_number(x: float) -> str:
    return f"{x:.1f}"


def window_chart(mood: dict) -> str:
    """The three mood windows as points with their 95 % intervals on one NSS axis, the
    baseline's value as a dashed line."""
    rows = [(label, mood.get(key) or {}) for key, label in WINDOWS]
    values = [(w.get("nss"), w.get("nss_se")) for _, w in rows]
    ends = [v for n, se in values if _ok(n) for v in (n - Z95 * (se or 0), n + Z95 * (se or 0))]
    if not ends:
        return '<p class="missing">No scored mentions in these windows.</p>'
    lo, hi = max(-100.0, min(ends + [0.0]) - 5), min(100.0, max(ends + [0.0]) + 5)
    width, height, left, right, top, step = 520, 116, 120, 20, 14, 28

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (width - left - right)

    parts = [(f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
              f'aria-label="NSS of each window with its 95 % interval">')]
    for tick in _ticks(lo, hi, 5):
        parts.append(f'<line x1="{_svg_number(x(tick))}" y1="{top - 6}" x2="{_svg_number(x(tick))}" '
                     f'y2="{top + 3 * step - 8}" stroke="#e4e4e4"/>'
                     f'<text x="{_svg_number(x(tick))}" y="{height - 4}" font-size="11" text-anchor="middle" '
                     f'fill="#555">{tick:+g}</text>')
    base = (mood.get("baseline_7d") or {}).get("nss")
    if _ok(base):
        parts.append(f'<line x1="{_svg_number(x(base))}" y1="{top - 8}" x2="{_svg_number(x(base))}" '
                     f'y2="{top + 3 * step - 6}" stroke="#888" stroke-dasharray="4 3"/>')
    for i, ((label, w), (nss, se)) in enumerate(zip(rows, values)):
        y = top + i * step
        parts.append(f'<text x="4" y="{y + 4}" font-size="12" fill="#1d1d1f">{html.escape(label)}</text>')
        if not _ok(nss):
            parts.append(f'<text x="{left}" y="{y + 4}" font-size="12" fill="#8a5a00">no scored mentions</text>')
            continue
        a, b = x(max(lo, nss - Z95 * (se or 0))), x(min(hi, nss + Z95 * (se or 0)))
        parts.append(f'<line x1="{_svg_number(a)}" y1="{y}" x2="{_svg_number(b)}" y2="{y}" stroke="{BAND}" '
                     f'stroke-width="3" stroke-opacity="0.45"/>'
                     f'<circle cx="{_svg_number(x(nss))}" cy="{y}" r="5" fill="{BRAND}">'
                     f'<title>{html.escape(f"{label}: NSS {nss:+.1f}, 95 % interval {nss - Z95 * (se or 0):+.1f} to {nss + Z95 * (se or 0):+.1f}")}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _ticks(lo: float, hi: float, count: int) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 6) for i in range(int((hi - first) / step) + 1)]


def hourly_chart(hours: list[dict]) -> str:
    """48 hours: NSS with its 95 % band (top) and volume bars (bottom); the current,
    partial hour drawn lighter. Hours without scored mentions break the line."""
    n = len(hours)
    if n == 0:
        return '<p class="missing">No hours to draw.</p>'
    width, left, right = 760, 46, 12
    top_h, gap, vol_h, axis = 150, 26, 70, 30
    height = top_h + gap + vol_h + axis
    slot = (width - left - right) / n
    scored = [(i, h) for i, h in enumerate(hours) if _ok(h.get("nss"))]
    ends = [v for _, h in scored for v in (h["nss"] - Z95 * (h.get("nss_se") or 0), h["nss"] + Z95 * (h.get("nss_se") or 0))]
    lo = max(-100.0, min(ends + [-10.0]))
    hi = min(100.0, max(ends + [10.0]))

    def y(v: float) -> float:
        return 8 + (hi - v) / (hi - lo) * (top_h - 8)

    def xc(i: int) -> float:
        return left + (i + 0.5) * slot

    parts = [(f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
              f'aria-label="Hourly NSS with its 95 % band, and hourly mentions, last {n} hours">')]
    for tick in _ticks(lo, hi, 4):
        parts.append(f'<line x1="{left}" y1="{_svg_number(y(tick))}" x2="{width - right}" y2="{_svg_number(y(tick))}" '
                     f'stroke="{"#bdbdbd" if tick == 0 else "#eeeeee"}"/>'
                     f'<text x="{left - 4}" y="{_svg_number(y(tick) + 4)}" font-size="10" text-anchor="end" '
                     f'fill="#555">{tick:+g}</text>')
    # Band and line per run of consecutive scored hours.
    runs: list[list[int]] = []
    for i, _ in scored:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs:
        upper = [(xc(i), y(min(hi, hours[i]["nss"] + Z95 * (hours[i].get("nss_se") or 0)))) for i in run]
        lower = [(xc(i), y(max(lo, hours[i]["nss"] - Z95 * (hours[i].get("nss_se") or 0)))) for i in run]
        if len(run) == 1:  # a lone hour: an error bar
            (xu, yu), (_, yl) = upper[0], lower[0]
            parts.append(f'<line x1="{_svg_number(xu)}" y1="{_svg_number(yu)}" x2="{_svg_number(xu)}" '
                         f'y2="{_svg_number(yl)}" stroke="{BAND}" stroke-opacity="0.4" stroke-width="3"/>')
        else:
            points = " ".join(f"{_svg_number(a)},{_svg_number(b)}" for a, b in upper + lower[::-1])
            parts.append(f'<polygon points="{points}" fill="{BAND}" fill-opacity="0.18" stroke="none"/>')
            line = " ".join(f"{_svg_number(xc(i))},{_svg_number(y(hours[i]['nss']))}" for i in run)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{BRAND}" stroke-width="2"/>')
    for i, h in scored:
        opacity = "0.45" if h.get("partial") else "1"
        tip = f"{_hour_label(h['hour'])} UTC: NSS {h['nss']:+.1f} ± {Z95 * (h.get('nss_se') or 0):.1f} (95 %), {h['scored']:,} scored"
        parts.append(f'<circle cx="{_svg_number(xc(i))}" cy="{_svg_number(y(h["nss"]))}" r="2.6" fill="{BRAND}" '
                     f'fill-opacity="{opacity}"><title>{html.escape(tip)}</title></circle>')
    # Volume.
    vmax = max([h.get("mentions") or 0 for h in hours] + [1])
    base = top_h + gap + vol_h
    parts.append(f'<text x="{left - 4}" y="{top_h + gap + 8}" font-size="10" text-anchor="end" fill="#555">'
                 f'{vmax:,}</text><line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="#bdbdbd"/>')
    for i, h in enumerate(hours):
        v = h.get("mentions") or 0
        if v <= 0:
            continue
        bar = v / vmax * vol_h
        opacity = "0.35" if h.get("partial") else "0.75"
        tip = f"{_hour_label(h['hour'])} UTC: {v:,} mentions" + (" (hour in progress)" if h.get("partial") else "")
        parts.append(f'<rect x="{_svg_number(left + i * slot + 0.5)}" y="{_svg_number(base - bar)}" '
                     f'width="{_svg_number(max(slot - 1, 0.5))}" height="{_svg_number(bar)}" fill="{VOLUME}" '
                     f'fill-opacity="{opacity}"><title>{html.escape(tip)}</title></rect>')
    for i, h in enumerate(hours):
        moment = _time(h.get("hour"))
        if moment is None or moment.hour % 6:
            continue
        label = f"{moment:%d %b}" if moment.hour == 0 else f"{moment:%H}:00"
        parts.append(f'<line x1="{_svg_number(left + i * slot)}" y1="{base}" x2="{_svg_number(left + i * slot)}" '
                     f'y2="{base + 4}" stroke="#888"/><text x="{_svg_number(left + i * slot)}" y="{base + 16}" '
                     f'font-size="10" text-anchor="middle" fill="#555">{html.escape(label)}</text>')
    parts.append(f'<text x="{left}" y="{top_h + gap - 6}" font-size="11" fill="#555">mentions per hour (UTC)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _hour_label(value: Any) -> str:
    moment = _time(value)
    return f"{moment:%Y-%m-%d %H:00}" if moment else "?"


# -- page sections -----------------------------------------------------------------------


def _nss_cell(brand: str, window: str, w: dict) -> str:
    nss, se = w.get("nss"), w.get("nss_se")
    if not _ok(nss):
        return f'<td class="num">{_data(None, "no data", brand=brand, window=window, field="nss")}</td>'
    return (f'<td class="num">{_data(nss, _num(nss, 1, True), brand=brand, window=window, field="nss")}'
            f' ± {_data(se, _num(se, 1), brand=brand, window=window, field="nss_se")}</td>')


def _count_cell(brand: str, window: str, w: dict, field: str) -> str:
    return f'<td class="num">{_data(w.get(field), _int(w.get(field)), brand=brand, window=window, field=field)}</td>'


def _mood_table(b: dict) -> str:
    name, mood = b["brand"], b.get("mood") or {}
    rows = []
    for key, label in WINDOWS:
        w = mood.get(key) or {}
        rows.append(f"<tr><th scope=\"row\">{html.escape(label)}</th>{_nss_cell(name, key, w)}"
                    + "".join(_count_cell(name, key, w, f)
                              for f in ("mentions", "scored", "positive", "neutral", "negative", "duplicates", "unscored"))
                    + "</tr>")
    change = mood.get("change_24h_vs_baseline")
    if change:
        change_html = (f'Last 24 h against the baseline: {_data(change.get("nss"), _num(change.get("nss"), 1, True), brand=name, window="change", field="nss")}'
                       f' ± {_data(change.get("se"), _num(change.get("se"), 1), brand=name, window="change", field="se")} NSS points'
                       + (" (more than twice its standard error)" if _ok(change.get("se")) and change.get("se")
                          and abs(change.get("nss") or 0) > 2 * change["se"] else ""))
    else:
        change_html = "Last 24 h against the baseline: not available (a window has no scored mentions)."
    return ("<table><thead><tr><th>window</th><th>NSS ± SE</th><th>mentions</th><th>scored</th><th>positive</th>"
            "<th>neutral</th><th>negative</th><th>near-duplicates</th><th>unscored</th></tr></thead><tbody>"
            + "".join(rows) + f"</tbody></table><p>{change_html}</p>")


def _share_table(b: dict) -> str:
    sov = b.get("share_of_voice") or {}
    day = {r["brand"]: r for r in sov.get("last_24h") or []}
    base = {r["brand"]: r for r in sov.get("baseline_7d") or []}
    names = sov.get("brands") or []
    if len(names) < 2:
        return '<p class="missing">No other tracked brand to compare with (add competitors to the config).</p>'
    rows = []
    for n in names:
        d, w = day.get(n) or {}, base.get(n) or {}
        share = d.get("share")
        meter = f'<meter min="0" max="1" value="{share:.4f}"></meter> ' if _ok(share) else ""
        cls = ' class="own"' if n == b["brand"] else ""
        rows.append(f"<tr{cls}><td>{_user(n)}</td><td class=\"num\">{_int(d.get('mentions'))}</td>"
                    f"<td class=\"num\">{meter}{_num(100 * share, 1) + ' %' if _ok(share) else 'n/a'}</td>"
                    f"<td class=\"num\">{_int(w.get('mentions'))}</td>"
                    f"<td class=\"num\">{_num(100 * w['share'], 1) + ' %' if _ok(w.get('share')) else 'n/a'}</td></tr>")
    return ("<table><thead><tr><th>brand</th><th>mentions, last 24 h</th><th>share of voice</th>"
            "<th>mentions, 7-day baseline</th><th>share then</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>")


def _label_form(b: dict, thread: dict, csrf: str | None, back: str) -> str:
    opening = thread.get("opening")
    if not csrf or not opening:
        return ""
    current = opening.get("label") or "unscored"
    manual = " (your label)" if opening.get("manual_label") else ""
    return _mention_form(b["brand"], opening, csrf, back, f"first post: {current}{manual}")


def _mention_form(brand: str, mention: dict, csrf: str, back: str, current: str, origin: str | None = None) -> str:
    """The three label buttons for one mention, posting to /label; ``origin`` says how
    the label was asked for (labels.origin; the server defaults to 'web')."""
    fields = [("csrf", csrf), ("source", mention["source"]), ("id", mention["id"]), ("brand", brand), ("back", back)]
    if origin:
        fields.append(("origin", origin))
    hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(str(v), quote=True)}">' for k, v in fields)
    buttons = "".join(
        f'<button type="submit" name="label" value="{v}"{" disabled" if v == mention.get("manual_label") else ""}>'
        f"{t}</button>"
        for v, t in (("positive", "positive"), ("neutral", "neutral"), ("negative", "negative"))
    )
    return (f'<form method="post" action="/label" class="label">{hidden}'
            f'<span class="current">{html.escape(current)}</span> {buttons}</form>')


def _provenance(b: dict) -> str:
    """Which scorer(s) produced the brand's mood figures (listener.formatting.provenance_json)."""
    scored_by = (b.get("mood") or {}).get("scored_by")
    if not scored_by:
        return ""
    return f'<p class="meta provenance">Mood figures of these 8 days: {_h(scored_by.get("text"), 500)}.</p>'


TO_LABEL_KINDS = (
    ("uncertain", "Least sure", "the scorer is least sure of these (uncertainty 1: on the edge between two labels): "
                                "their labels teach the model most"),
    ("random", "Random sample", "drawn uniformly at random from the last 24 h: their labels estimate how accurate "
                                "the scorer is, free of anyone's choice"),
)


def _labelling_panel(b: dict, csrf: str | None, back: str, now: datetime | None) -> str:
    """"Help the model: label these": a few uncertain mentions and a few random ones,
    each table saying which it is, with the label buttons (storage.labelling)."""
    panel = b.get("to_label") or {}
    parts = ["<h3>Help the model: label these</h3>"]
    for kind, caption, why in TO_LABEL_KINDS:
        chosen = panel.get(kind) or {}
        mentions = chosen.get("mentions") or []
        if not mentions:
            parts.append(f'<p class="quiet">{html.escape(caption)}: no scored mention in the last 24 h to offer.</p>')
            continue
        rows = []
        for m in mentions:
            current = f"{m.get('scorer')} says {m.get('scorer_label')}" + (
                f"; labelled {m['manual_label']}" if m.get("manual_label") else "")
            form = _mention_form(b["brand"], m, csrf, back, current, chosen.get("origin")) if csrf else ""
            rows.append(f"<tr><td class=\"title\">{_link(m.get('url'), _user(m.get('text'), TITLE_LIMIT))}</td>"
                        f"<td>{_h(m.get('source'), 40)}</td><td class=\"small\">{_when(m.get('created_at'), now)}</td>"
                        f"<td class=\"num\">{_num(m.get('uncertainty'), 2)}</td><td>{form}</td></tr>")
        parts.append(
            f'<table class="to-label" data-kind="{html.escape(kind, quote=True)}"><caption>{html.escape(caption)}: '
            f"{html.escape(why)}</caption><thead><tr><th>mention</th><th>source</th><th>posted</th>"
            "<th>uncertainty</th><th>your label</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    return "".join(parts)


def _conversation_table(b: dict, key: str, caption: str, csrf: str | None, back: str, now: datetime | None) -> str:
    threads = (b.get("conversations") or {}).get(key) or []
    if not threads:
        return f'<p class="missing">{html.escape(caption)}: no scored conversation active in the last 24 h.</p>'
    rows = []
    for t in threads:
        title = _link(t.get("url"), _user(t.get("title") or "(no text)", TITLE_LIMIT))
        people = _int(t.get("authors"))
        if t.get("voices") != t.get("authors"):
            people += f" ({_int(t.get('voices'))} person-hours)"
        rows.append(
            f"<tr><td class=\"num\">{_num(t.get('nss'), 1, True)} ± {_num(t.get('nss_se'), 1)}</td>"
            f"<td>{_h(t.get('label'), 20)}</td><td class=\"num\">{people}</td>"
            f"<td class=\"num\">{_int(t.get('mentions'))}</td>"
            f"<td class=\"num\">{_int(t.get('engagement'))}</td><td>{_h(t.get('source'), 40)}</td>"
            f"<td class=\"title\">{title}</td><td class=\"small\">{_when(t.get('last_at'), now)}</td>"
            f"<td>{_label_form(b, t, csrf, back)}</td></tr>"
        )
    # The NSS counts people (storage.rollup): an author's posts in one hour once, likes not at all.
    return (f"<table class=\"threads\"><caption>{html.escape(caption)}: NSS over the people in the thread, "
            "each author counted once per hour; engagement is shown beside it, not counted in it</caption>"
            "<thead><tr><th>NSS ± SE</th><th>label</th><th>people</th>"
            "<th>mentions</th><th>engagement</th><th>source</th><th>thread (first post)</th><th>last active</th>"
            "<th>correct the first post's label</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _alerts_table(alerts: list[dict], now: datetime | None, with_brand: bool) -> str:
    if not alerts:
        return '<p class="quiet">No open alerts in the last 7 days.</p>'
    head = ("<th>brand</th>" if with_brand else "") + ("<th>hour (UTC)</th><th>what</th><th>value</th>"
                                                      "<th>baseline</th><th>mentions</th><th>summary</th>")
    rows = []
    for a in alerts:
        brand = f"<td>{_user(a.get('brand'))}</td>" if with_brand else ""
        rows.append(f"<tr>{brand}<td>{_when(a.get('hour'), now)}</td>"
                    f"<td>{_h(a.get('metric'), 20)} {_h(a.get('direction'), 20)}</td>"
                    f"<td class=\"num\">{_num(a.get('value'), 1)}</td><td class=\"num\">{_num(a.get('baseline'), 1)}</td>"
                    f"<td class=\"num\">{_int(a.get('mentions'))}</td><td>{_user(a.get('summary'), 300)}</td></tr>")
    return f"<table class=\"alerts\"><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _freshness_table(rows: list[dict], now: datetime | None) -> str:
    if not rows:
        return '<p class="missing">No source has stored anything yet.</p>'
    out = []
    for r in rows:
        latest = _when(r.get("latest_mention"), now)
        if r.get("latest_mention") and not r.get("latest_mention_exact"):
            latest = "hour of " + latest
        error = _user(r.get("last_error"), 300) if r.get("last_error") else ""
        failures = r.get("failures_24h") or 0
        cls = ' class="stale"' if failures else ""
        out.append(f"<tr{cls}><td>{_h(r.get('source'), 40)}</td><td>{latest}</td>"
                   f"<td>{_when(r.get('last_ok_pull'), now)}</td><td>{_when(r.get('last_failed_pull'), now)}</td>"
                   f"<td class=\"num\">{_int(failures)}</td><td>{error}</td></tr>")
    return ("<table><thead><tr><th>source</th><th>latest mention</th><th>last successful pull</th>"
            "<th>last failed pull</th><th>failures, 24 h</th><th>last error</th></tr></thead><tbody>"
            + "".join(out) + "</tbody></table>")


def _overview_table(brands: list[dict]) -> str:
    rows = []
    for b in brands:
        name, mood = b["brand"], b.get("mood") or {}
        cells = "".join(_nss_cell(name, key, mood.get(key) or {}) + _count_cell(name, key, mood.get(key) or {}, "mentions")
                        for key, _ in WINDOWS)
        change = mood.get("change_24h_vs_baseline") or {}
        change_cell = (f"{_num(change.get('nss'), 1, True)} ± {_num(change.get('se'), 1)}" if change else "n/a")
        day = next((r for r in (b.get("share_of_voice") or {}).get("last_24h") or [] if r["brand"] == name), {})
        share = day.get("share")
        sov = _num(100 * share, 1) + " %" if _ok(share) and len((b.get("share_of_voice") or {}).get("brands") or []) > 1 else "n/a"
        rows.append(f'<tr><th scope="row"><a href="{html.escape(brand_path(name), quote=True)}">{_user(name)}</a></th>'
                    f"{cells}<td class=\"num\">{change_cell}</td><td class=\"num\">{sov}</td>"
                    f"<td class=\"num\">{len(b.get('alerts') or [])}</td></tr>")
    return ("<table><thead><tr><th>brand</th><th>NSS, last hour</th><th>mentions</th><th>NSS, last 24 h</th>"
            "<th>mentions</th><th>NSS, 7-day baseline</th><th>mentions</th><th>24 h vs baseline</th>"
            "<th>share of voice, 24 h</th><th>open alerts</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _brand_section(b: dict, csrf: str | None, back: str, now: datetime | None) -> str:
    name = b["brand"]
    competitors = b.get("competitors") or []
    against = ("against its competitors " + ", ".join(_user(c) for c in competitors) if competitors
               else "against the other tracked brands")
    return (
        f'<section class="brand" id="{html.escape("brand-" + quote(name, safe=""), quote=True)}">'
        f"<h2>{_user(name)}</h2>{_provenance(b)}"
        f"<h3>Mood now against the 7-day baseline</h3>{_mood_table(b)}"
        f"<figure>{window_chart(b.get('mood') or {})}<figcaption>NSS of each window with its 95 % interval "
        f"(± 1.96 SE); dashed: the baseline.</figcaption></figure>"
        f"<h3>The last 48 hours</h3><figure>{hourly_chart(b.get('hourly') or [])}<figcaption>Hourly NSS with its 95 % "
        f"band, and mentions per hour; the current hour (lighter) is still filling.</figcaption></figure>"
        f"<h3>Share of voice</h3><p>Mentions {against}, in the same windows as the mood.</p>{_share_table(b)}"
        f"<h3>Conversations active in the last 24 h</h3>"
        f"{_conversation_table(b, 'most_negative', 'Most negative', csrf, back, now)}"
        f"{_conversation_table(b, 'most_positive', 'Most positive', csrf, back, now)}"
        f"<h3>Open alerts</h3>{_alerts_table(b.get('alerts') or [], now, with_brand=False)}"
        f"{_labelling_panel(b, csrf, back, now)}"
        "</section>"
    )


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d1d1f;
 margin:0;background:#f6f6f4}
main{max-width:1180px;margin:0 auto;padding:18px 28px 48px;background:#fff}
h1{font-size:23px;margin:6px 0 8px}h2{font-size:20px;margin:30px 0 8px;padding-top:10px;border-top:2px solid #ddd}
h3{font-size:16px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d8d8d8;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0ee}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.title{max-width:460px;overflow-wrap:anywhere}td.small{font-size:12px;white-space:nowrap}
caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0;color:#444}
tr.own td{font-weight:600}tr.stale td{background:#fff8e1}
.missing{color:#8a5a00;background:#fffaf0;padding:5px 9px;border-radius:4px}.quiet{color:#555}
.meta{color:#555;font-size:13px}.notice{background:#e8f5e9;border-left:5px solid #2e7d32;padding:6px 10px}
figure{margin:6px 0 14px}figcaption{font-size:12px;color:#555}svg.chart{max-width:100%;height:auto;display:block}
form.label{margin:0;white-space:nowrap}form.label button{font-size:12px;padding:1px 6px;margin-left:2px}
.current{font-size:12px;color:#555}nav a{margin-right:12px}meter{width:70px}
"""


def _document(title: str, body: str, refresh: int | None = None, refresh_to: str | None = None) -> str:
    meta_refresh = ""
    if refresh:
        target = f"; url={refresh_to}" if refresh_to else ""
        meta_refresh = f'<meta http-equiv="refresh" content="{html.escape(f"{int(refresh)}{target}", quote=True)}">'
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_META_CSP}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        # same-origin: under no-referrer the browser posts the label forms with
        # "Origin: null", which the server refuses as cross-origin (listener.web).
        "<meta name=\"referrer\" content=\"same-origin\">"
        # An empty icon, so the browser does not ask the server for /favicon.ico.
        "<link rel=\"icon\" href=\"data:,\">"
        f"{meta_refresh}<title>{_h(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def render_page(
    view: dict,
    *,
    csrf: str | None = None,
    refresh: int | None = 60,
    notice: str | None = None,
    self_path: str = "/",
    only: str | None = None,
) -> str:
    """The overview (every brand) or, with ``only``, one brand's page. ``csrf`` is the
    token the label forms carry (no forms without it); ``notice`` a message shown once
    on top; ``self_path`` where the page lives (refresh and label forms come back here)."""
    now = _time(view.get("as_of"))
    brands = view.get("brands") or []
    shown = [b for b in brands if only is None or b["brand"] == only]
    data = view.get("data") or {}
    if data.get("kind") == "snapshot":
        source = f"the daemon's snapshot published {_when(data.get('published_at'), now)}"
    else:
        source = "the database (no daemon snapshot is being used)"
    generated = _time(view.get("generated_at"))
    as_of = f"{now:%Y-%m-%d %H:%M:%S} UTC" if now else "?"
    parts = [f"<h1>{'Brand mood, live' if only is None else _user(only) + ': mood, live'}</h1>"]
    parts.append(f'<p class="meta">As of {html.escape(as_of)}; read from {source}'
                 + (f"; refreshes every {int(refresh)} s" if refresh else "")
                 + (f"; page built {generated:%H:%M:%S} UTC" if generated and generated != now else "") + ".</p>")
    queued = view.get("labels_queued") or 0
    if queued:
        parts.append(f'<p class="meta">{_int(queued)} label(s) queued for the daemon, not yet applied.</p>')
    if notice:
        parts.append(f'<p class="notice">{_h(notice, 300)}</p>')
    names = view.get("tracked_brands") or [b["brand"] for b in brands]
    nav = ['<a href="/">overview</a>'] + [
        f'<a href="{html.escape(brand_path(n), quote=True)}">{_user(n, 60)}</a>' for n in names]
    parts.append("<nav>" + "".join(nav) + '<a href="/api/live.json">JSON</a></nav>')
    if not brands:
        parts.append('<p class="missing">No brands yet: configure brands and run the daemon, or run '
                     "'listener demo'.</p>")
    if only is None and brands:
        parts.append(f"<h2>Overview</h2>{_overview_table(brands)}")
        parts.append(f"<h3>Open alerts, last 7 days</h3>{_alerts_table(view.get('alerts') or [], now, with_brand=True)}")
        parts.append(f"<h3>Data freshness per source</h3>{_freshness_table(view.get('freshness') or [], now)}")
    for b in shown:
        parts.append(_brand_section(b, csrf, self_path, now))
    if only is not None:
        parts.append(f"<h3>Data freshness per source</h3>{_freshness_table(view.get('freshness') or [], now)}")
    title = "Brand mood, live" if only is None else f"{visible_text(only, 60)}: mood, live"
    return _document(title, "\n".join(parts), refresh, self_path)


def render_message(title: str, text: str, *, refresh: int | None = None, back: str | None = "/") -> str:
    """A short page: an error, or why access was refused. Escaped like the rest."""
    link = f'<p><a href="{html.escape(back, quote=True)}">Back to the live view</a></p>' if back else ""
    return _document(title, f"<h1>{_h(title)}</h1><p>{_h(text, 2000)}</p>{link}", refresh, back if refresh else None)

