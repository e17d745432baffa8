"""Rendering of the live view: the Jinja2 environment (autoescape on), the filters the
templates use to show user text safely, and the small inline-SVG charts.

    render_page(view, csrf=..., refresh=60, notice=None, self_path="/", only=None) -> str
    render_message(title, text, refresh=None, back="/") -> str
    render(template, **context) -> str

The rules (as in the campaign report): every string from the data (brand names, mention
text, URLs, sources, errors) is escaped once, by Jinja's autoescape, when written out;
no markup is built from it (the SVG charts escape their few strings with html.escape).
Besides, user text is shown as text whatever it holds: ``visible`` turns control
characters into visible symbols (U+2400...) and cuts long strings; templates wrap it in
``<bdi>`` so right-to-left and bidi-override text cannot reorder the page around it.
Links are only ``http(s)`` URLs (``safe_url``).

Scripts and styles come only from the package's static/ directory (the CSP allows
'self' and nothing inline); the charts drawn here are inline SVG, which needs neither.

Numbers that ``listener mood --json`` also prints are written in ``<data>`` elements
whose ``value`` is the JSON number, so a test (or a scraper) can compare them exactly.
"""

from __future__ import annotations

import html
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from storage.stream import utc_time

__all__ = ["CSP", "render", "render_message", "render_page", "safe_url", "visible_text"]

HERE = Path(__file__).resolve().parent
# Scripts and styles from this server only (static/), nothing inline; images only inline
# (data: for the empty favicon); fetches only back here (live updates).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# frame-ancestors is ignored in a <meta> CSP (the server sends it as a header too).
META_CSP = CSP.replace("; frame-ancestors 'none'", "")

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


def _ok(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _num(x: Any, digits: int = 1, sign: bool = False) -> str:
    if not _ok(x):
        return "n/a"
    return f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"


def _int(x: Any) -> str:
    return f"{x:,}" if _ok(x) else "n/a"


def _time(value: Any) -> datetime | None:
    if isinstance(value, (datetime, str)):
        try:
            return utc_time(value)
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
    return text


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


def visible_lines(value: Any, limit: int = 2000) -> str:
    """Like visible_text, keeping the line breaks (an alert's explanation, shown with
    white-space: pre-line)."""
    text = "" if value is None else str(value)
    return "\n".join(visible_text(line, limit) for line in text[:limit].split("\n"))


def safe_url(url: Any) -> bool:
    """Whether ``url`` may be a link: an absolute http(s) URL without control characters
    or spaces (no javascript:, data:, protocol-relative or broken ones)."""
    if not isinstance(url, str) or len(url) > 2048:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc) and not _CONTROL.search(url) \
        and " " not in url


def data_value(value: Any) -> str:
    """The exact JSON number behind a rounded display, for ``<data value=...>``."""
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


TO_LABEL_KINDS = (
    ("uncertain", "Least sure", "the scorer is least sure of these (uncertainty 1: on the edge between two labels): "
                                "their labels teach the model most"),
    ("random", "Random sample", "drawn uniformly at random from the last 24 h: their labels estimate how accurate "
                                "the scorer is, free of anyone's choice"),
)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(visible=visible_text, visible_lines=visible_lines, num=_num, int=_int, when=_when, safe_url=safe_url,
                       data_value=data_value, brand_path=brand_path, ok=_ok,
                       url_part=lambda v: quote(str(v), safe=""))
    env.globals.update(WINDOWS=WINDOWS, TO_LABEL_KINDS=TO_LABEL_KINDS, TITLE_LIMIT=TITLE_LIMIT, META_CSP=META_CSP,
                       Z95=Z95, window_chart=lambda mood: Markup(window_chart(mood)),
                       hourly_chart=lambda hours: Markup(hourly_chart(hours)), as_time=_time)
    return env


ENV = _environment()


def render(template: str, **context: Any) -> str:
    """``template`` (under templates/) rendered with ``context``; the base template's
    variables default here (``scripts``: extra script URLs, ``refresh``: seconds)."""
    context.setdefault("scripts", [])
    context.setdefault("refresh", None)
    context.setdefault("refresh_to", None)
    context.setdefault("live", False)
    return ENV.get_template(template).render(**context)


def render_page(
    view: dict,
    *,
    csrf: str | None = None,
    refresh: int | None = 60,
    notice: str | None = None,
    self_path: str = "/",
    only: str | None = None,
    scripts: list[str] | None = None,
) -> str:
    """The overview (every brand) or, with ``only``, one brand's page. ``csrf`` is the
    token the label forms carry (no forms without it); ``notice`` a message shown once
    on top; ``self_path`` where the page lives (refresh and label forms come back here)."""
    now = _time(view.get("as_of"))
    brands = view.get("brands") or []
    return render(
        "page.html", view=view, now=now, brands=brands, shown=[b for b in brands if only is None or b["brand"] == only],
        only=only, csrf=csrf, refresh=refresh, refresh_to=self_path, live=True, notice=notice, back=self_path,
        generated=_time(view.get("generated_at")), names=view.get("tracked_brands") or [b["brand"] for b in brands],
        scripts=scripts or [],
        title="Brand mood, live" if only is None else f"{visible_text(only, 60)}: mood, live",
    )


def render_message(title: str, text: str, *, refresh: int | None = None, back: str | None = "/") -> str:
    """A short page: an error, or why access was refused. Escaped like the rest."""
    return render("message.html", title=title, text=text, back=back, refresh=refresh,
                  refresh_to=back if refresh else None)
