"""Campaign spend files: the ad platforms' own exports, read into one daily shape.

``read_spend(path)`` detects the format from the header row and returns a
``SpendFile`` of ``SpendRow``s, one per date x platform x campaign (x hour, when the
file is hourly), each with its lineage (file name, file sha256, line number).

Formats (detected from the header; names are matched case-, whitespace- and
underscore-insensitively, so ``Campaign ID``, ``campaign_id`` and ``CAMPAIGN  ID``
are the same column):

===================  ==========  ===========================================================
format               platform    how it is recognised / what is special
===================  ==========  ===========================================================
canonical            column      a ``date``, ``spend`` or ``platform`` column; one row per
                                 date x platform x campaign (x hour)
google_ads_ui        google_ads  ``Day``/``Cost``/``Impr.``/``Currency code``/``Campaign``;
                                 title lines above the header, ``Total: ...`` rows skipped
google_ads_api       google_ads  any ``segments.*``/``metrics.*`` column; ``metrics.cost_micros``
                                 divided by 1,000,000; also the REST JSON (nested objects,
                                 ``results`` arrays, searchStream batches)
meta_ads_manager     meta        ``Reporting starts``/``Reporting ends``; currency from
                                 ``Amount spent (USD)``; rows without campaign id and name
                                 (the summary row) skipped
meta_insights_api    meta        ``date_start``/``date_stop``; CSV, or JSON: an array of rows,
                                 a response page ``{"data": [...], "paging": ...}``, or JSON
                                 Lines of either (one row or one page per line)
===================  ==========  ===========================================================

Header aliases (``field: Alias | Alias``; the first alias present wins when a file has
several; ``Cost (XXX)``, ``Spend (XXX)`` and ``Amount spent (XXX)`` also give the
file's currency). The code's ``_FORMATS`` table is the authority.

* canonical: date* ``date | day``; platform ``platform | ad platform``; campaign_id**
  ``campaign_id``; campaign_name** ``campaign_name | campaign``; channel ``channel |
  campaign type``; brand ``brand``; currency*** ``currency | currency_code``; spend*
  ``spend | cost | amount spent``; account_timezone ``account_timezone | timezone |
  time_zone``; hour ``hour | hour of day``; impressions ``impressions | impr.``; reach
  ``reach``; clicks ``clicks | link clicks``; engagements ``engagements | post engagements``.
* google_ads_ui: date* ``Day | Date``; campaign_id** ``Campaign ID``; campaign_name**
  ``Campaign | Campaign name``; channel ``Campaign type | Advertising channel type``;
  currency*** ``Currency code | Currency``; spend* ``Cost``; account_timezone ``Time zone
  | Account time zone``; hour ``Hour of day | Hour``; impressions ``Impr. | Impressions``;
  clicks ``Clicks``; engagements ``Engagements``.
* google_ads_api: date* ``segments.date``; hour ``segments.hour``; campaign_id**
  ``campaign.id``; campaign_name** ``campaign.name``; channel
  ``campaign.advertising_channel_type``; currency*** ``customer.currency_code``;
  account_timezone ``customer.time_zone``; spend* ``metrics.cost_micros`` (/ 1,000,000);
  impressions / clicks / engagements ``metrics.<name>``. REST JSON camelCase spellings
  (``metrics.costMicros``, ``customer.currencyCode``...) are accepted too.
* meta_ads_manager: date* ``Reporting starts``; date end* ``Reporting ends``;
  campaign_id** ``Campaign ID``; campaign_name** ``Campaign name``; currency***
  ``Currency`` or the spend header; spend* ``Amount spent (XXX) | Amount spent``; hour
  ``Time of day (ad account time zone)``; impressions ``Impressions``; reach ``Reach``;
  clicks ``Link clicks | Clicks (all)``; engagements ``Post engagements | Post engagement``.
* meta_insights_api: date* ``date_start``; date end* ``date_stop``; campaign_id**
  ``campaign_id``; campaign_name** ``campaign_name``; currency*** ``account_currency``;
  spend* ``spend``; account_timezone ``account_timezone | timezone_name``; hour
  ``hourly_stats_aggregated_by_advertiser_time_zone``; impressions ``impressions``; reach
  ``reach``; clicks ``inline_link_clicks | clicks``; engagements ``inline_post_engagement
  | actions:post_engagement`` (from the JSON ``actions`` list).

``*`` required. ``**`` at least one of campaign_id / campaign_name. ``***`` required
unless the spend header carries it (``Amount spent (USD)``) or ``read_spend(...,
currency="USD")`` gives it. ``read_spend(..., platform=, account_timezone=)`` fill
columns a file lacks (a column, when present, wins for platform and time zone; a
currency column must agree with the given currency). A canonical file without a
platform column gets platform ``"unknown"``; known names are normalised (``Google
Ads``/``adwords`` -> ``google_ads``, ``Facebook``/``Meta Ads`` -> ``meta``; others
lower snake case).

Values: blank or ``--`` means unknown (``None``), never 0, for every optional field.
Numbers take ``,`` thousands separators (``1,234.56`` quoted or ``1234.56``); a
decimal comma (``1.234,56``, ``12,5``) is rejected, as is anything but a plain number
(no currency symbols, no exponents). Accounting negatives ``(12.00)`` are read as
negative (and then rejected as spend). Counts must be whole and >= 0. Dates are
``YYYY-MM-DD``, ``YYYY/MM/DD`` or ``Mar 2, 2026``/``March 2, 2026`` (a midnight time
part is tolerated); ``03/02/2026`` is rejected as ambiguous; a range in a date cell
(``2026-03-01 - 2026-03-07``) is a multi-day row. Dates are the ad account's own dates,
taken as they are: platforms report in the account's time zone.

Rejected (``SpendError``, every problem listed at once, each naming file, row = 1-based
line in the file, and column): negative spend, multi-day rows, mixed currencies, a
file mixing daily and hourly rows for one campaign-day, conflicting duplicates (same
date + platform + campaign (+ hour) with any differing value; identical duplicates are
merged into the first), unparseable dates / numbers / hours / time zones / currency
codes, rows longer than the header (an unquoted ``1,234.56``), missing required columns
(naming the aliases accepted and the columns the header had), a file with no
recognisable header. A header-only file reads as zero rows.

Text is UTF-8 (with or without BOM) or UTF-16 with a BOM (Google Ads' "Excel CSV");
comma, tab and semicolon delimiters are detected. Spend files are small (days x
campaigns), so the file is read whole; its sha256 is of the bytes on disk.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from analysis.campaign_plan import Lineage
from connectors.base import valid_text

__all__ = [
    "FORMATS", "InputFileError", "Lineage", "Problem", "SpendError", "SpendFile", "SpendRow",
    "normalize_header", "read_spend", "unknown_brand",
]

FORMATS = ("canonical", "google_ads_ui", "google_ads_api", "meta_ads_manager", "meta_insights_api")
MAX_LISTED_PROBLEMS = 20
"""Problems written into an error's message; the rest are counted (all are in ``.problems``)."""
HEADER_SEARCH_ROWS = 10
"""Rows searched for the header (Google Ads puts one or two title lines above it)."""
UNKNOWN_PLATFORM = "unknown"
MICROS = Decimal(1_000_000)


# --- public types ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One day's (or one hour's) spend on one campaign, in the ad account's dates."""

    date: date
    platform: str
    campaign_id: str | None
    campaign_name: str | None
    channel: str | None
    brand: str | None
    currency: str
    spend: Decimal
    account_timezone: str | None
    hour: int | None
    impressions: int | None
    reach: int | None
    clicks: int | None
    engagements: int | None
    lineage: Lineage

    @property
    def campaign(self) -> str:
        """The campaign's key: its id, or its name when the export has no ids."""
        return self.campaign_id if self.campaign_id is not None else self.campaign_name  # type: ignore[return-value]


@dataclass(frozen=True)
class SpendFile:
    """A parsed spend file: its path, the sha256 of its bytes, the detected format and
    its rows in file order (identical duplicates merged into the first)."""

    path: Path
    sha256: str
    format: str
    rows: list[SpendRow]

    @property
    def currency(self) -> str | None:
        """The file's one currency (None for a file without rows)."""
        return self.rows[0].currency if self.rows else None

    def daily_totals(self, campaign: str | None = None) -> dict[date, Decimal]:
        """Spend per date (hours and platforms summed), for one campaign (id, or name
        when ids are absent) or for all; dates in ascending order."""
        totals: dict[date, Decimal] = {}
        for row in self.rows:
            if campaign is None or row.campaign == campaign:
                totals[row.date] = totals.get(row.date, Decimal(0)) + row.spend
        return dict(sorted(totals.items()))

    def daily_metric(self, name: str, campaign: str | None = None) -> dict[date, int | None]:
        """``impressions``, ``reach``, ``clicks`` or ``engagements`` per date, summed like
        ``daily_totals``; a date is None (unknown) if any of its rows lacks the metric,
        never a partial sum. (Reach does not add up across hours or campaigns: sum it
        only where each date has one row.)"""
        if name not in ("impressions", "reach", "clicks", "engagements"):
            raise ValueError(f"not a platform metric: {name!r}")
        totals: dict[date, int | None] = {}
        for row in self.rows:
            if campaign is None or row.campaign == campaign:
                value, so_far = getattr(row, name), totals.get(row.date, 0)
                totals[row.date] = None if value is None or so_far is None else so_far + value
        return dict(sorted(totals.items()))


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input file; ``row`` is a 1-based line number."""

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}"


class InputFileError(ValueError):
    """An input file (spend, plan) that cannot be used as it is. ``problems`` lists
    every problem found, so the file can be fixed in one pass; the message lists the
    first ``MAX_LISTED_PROBLEMS`` and counts the rest."""

    kind = "input file"

    def __init__(self, path: str | Path, problems: Sequence[Problem]) -> None:
        self.path = Path(path)
        self.problems = tuple(sorted(problems, key=lambda p: (p.row is not None, p.row or 0)))
        count = len(self.problems)
        lines = [f"{self.kind} {self.path.name}: {count} problem{'s' if count != 1 else ''}"]
        lines += [f"  {problem}" for problem in self.problems[:MAX_LISTED_PROBLEMS]]
        if count > MAX_LISTED_PROBLEMS:
            lines.append(f"  ... and {count - MAX_LISTED_PROBLEMS} more")
        super().__init__("\n".join(lines))


def unknown_brand(name: str, known: Sequence[str]) -> str | None:
    """The problem with a brand named in an input file, or None when it is one of the
    ``known`` brands (matched case-insensitively): the report can only pair spend with
    brands whose mentions are collected."""
    if name.casefold() in {k.casefold() for k in known}:
        return None
    if not known:
        return (f"unknown brand {name!r}: no brand is configured or has stored mentions (add a [[brands]] "
                "entry for it to the config)")
    return f"unknown brand {name!r}; the known brands are: {', '.join(known)}"


class SpendError(InputFileError):
    """A spend file that cannot be read; fix the file (or the options) and retry."""

    kind = "spend file"


# --- headers and aliases --------------------------------------------------------------


def normalize_header(name: str) -> str:
    """``' Campaign_ID '`` -> ``'campaign id'``: casefolded, BOM and surrounding space
    stripped, underscores read as spaces, runs of whitespace collapsed."""
    return " ".join(name.replace("\ufeff", "").replace("_", " ").casefold().split())


def _aliases(*names: str) -> tuple[str, ...]:
    """Header names as the platform spells them (shown in messages; matched normalized)."""
    return names


_SPEND_WITH_CURRENCY = re.compile(r"^(?:amount spent|spend|cost) \(([a-z]{3})\)$")


@dataclass(frozen=True)
class _Format:
    name: str
    platform: str | None  # None: from the platform column (canonical)
    columns: Mapping[str, tuple[str, ...]]
    vendor: bool = True  # skips totals / summary rows

    def date_end(self) -> bool:
        return "date_end" in self.columns


_FORMATS: dict[str, _Format] = {
    f.name: f for f in (
        _Format("google_ads_api", "google_ads", {
            "date": _aliases("segments.date"),
            "hour": _aliases("segments.hour"),
            "campaign_id": _aliases("campaign.id"),
            "campaign_name": _aliases("campaign.name"),
            "channel": _aliases("campaign.advertising_channel_type", "campaign.advertisingChannelType"),
            "currency": _aliases("customer.currency_code", "customer.currencyCode"),
            "account_timezone": _aliases("customer.time_zone", "customer.timeZone"),
            "spend_micros": _aliases("metrics.cost_micros", "metrics.costMicros"),
            "impressions": _aliases("metrics.impressions"),
            "clicks": _aliases("metrics.clicks"),
            "engagements": _aliases("metrics.engagements"),
        }),
        _Format("meta_ads_manager", "meta", {
            "date": _aliases("Reporting starts"),
            "date_end": _aliases("Reporting ends"),
            "campaign_id": _aliases("Campaign ID"),
            "campaign_name": _aliases("Campaign name"),
            "currency": _aliases("Currency"),
            "spend": _aliases("Amount spent"),
            "hour": _aliases("Time of day (ad account time zone)"),
            "impressions": _aliases("Impressions"),
            "reach": _aliases("Reach"),
            "clicks": _aliases("Link clicks", "Clicks (all)"),
            "engagements": _aliases("Post engagements", "Post engagement"),
        }),
        _Format("meta_insights_api", "meta", {
            "date": _aliases("date_start"),
            "date_end": _aliases("date_stop"),
            "campaign_id": _aliases("campaign_id"),
            "campaign_name": _aliases("campaign_name"),
            "currency": _aliases("account_currency"),
            "spend": _aliases("spend"),
            "account_timezone": _aliases("account_timezone", "timezone_name"),
            "hour": _aliases("hourly_stats_aggregated_by_advertiser_time_zone"),
            "impressions": _aliases("impressions"),
            "reach": _aliases("reach"),
            "clicks": _aliases("inline_link_clicks", "clicks"),
            "engagements": _aliases("inline_post_engagement", "actions:post_engagement"),
        }),
        _Format("canonical", None, {
            "date": _aliases("date", "day"),
            "platform": _aliases("platform", "ad platform"),
            "campaign_id": _aliases("campaign_id"),
            "campaign_name": _aliases("campaign_name", "campaign"),
            "channel": _aliases("channel", "campaign type"),
            "brand": _aliases("brand"),
            "currency": _aliases("currency", "currency_code"),
            "spend": _aliases("spend", "cost", "amount spent"),
            "account_timezone": _aliases("account_timezone", "timezone", "time_zone"),
            "hour": _aliases("hour", "hour of day"),
            "impressions": _aliases("impressions", "impr."),
            "reach": _aliases("reach"),
            "clicks": _aliases("clicks", "link clicks"),
            "engagements": _aliases("engagements", "post engagements"),
        }, vendor=False),
        _Format("google_ads_ui", "google_ads", {
            "date": _aliases("Day", "Date"),
            "campaign_id": _aliases("Campaign ID"),
            "campaign_name": _aliases("Campaign", "Campaign name"),
            "channel": _aliases("Campaign type", "Advertising channel type"),
            "currency": _aliases("Currency code", "Currency"),
            "spend": _aliases("Cost"),
            "account_timezone": _aliases("Time zone", "Account time zone"),
            "hour": _aliases("Hour of day", "Hour"),
            "impressions": _aliases("Impr.", "Impressions"),
            "clicks": _aliases("Clicks"),
            "engagements": _aliases("Engagements"),
        }),
    )
}

# Period columns that mean the export is not daily (named in the "missing date" message).
_PERIOD_COLUMNS = frozenset(normalize_header(n) for n in ("Week", "Month", "Quarter", "Year", "Day of week",
                           "segments.week", "segments.month", "segments.quarter", "segments.year",
                           "segments.day_of_week"))


def _detect(header: Sequence[str]) -> _Format | None:
    """The format a header row belongs to, or None if it is not a spend header."""
    names = {normalize_header(cell) for cell in header if cell.strip()}
    if any(n.startswith(("segments.", "metrics.")) for n in names):
        return _FORMATS["google_ads_api"]
    if names & {"reporting starts", "reporting ends"}:
        return _FORMATS["meta_ads_manager"]
    if names & {"date start", "date stop"}:
        return _FORMATS["meta_insights_api"]
    if names & {"date", "spend", "platform"} or any(n.startswith("spend (") for n in names):
        return _FORMATS["canonical"]
    if names & {"day", "cost", "impr.", "currency code", "campaign"} \
            or any(n.startswith("cost (") for n in names):
        return _FORMATS["google_ads_ui"]
    return None


@dataclass
class _Layout:
    """Which cell holds which field, plus the currency the spend header names."""

    fmt: _Format
    header: list[str]
    header_row: int
    index: dict[str, int] = field(default_factory=dict)
    header_currency: str | None = None

    def column(self, name: str) -> str:
        """The header's own text for a field (for messages)."""
        if name in self.index:
            return self.header[self.index[name]].strip()
        return name


def _layout(fmt: _Format, header: list[str], header_row: int) -> _Layout:
    layout = _Layout(fmt, header, header_row)
    normalized = [normalize_header(cell) for cell in header]
    for name, aliases in fmt.columns.items():
        for alias in map(normalize_header, aliases):  # first present wins (Link clicks over Clicks (all))
            if alias in normalized:
                layout.index[name] = normalized.index(alias)
                break
    if "spend" in fmt.columns and "spend" not in layout.index:
        for i, cell in enumerate(normalized):
            match = _SPEND_WITH_CURRENCY.match(cell)
            if match:
                layout.index["spend"] = i
                layout.header_currency = match.group(1).upper()
                break
    return layout


def _missing_columns(layout: _Layout, file: str, currency_given: bool) -> list[Problem]:
    fmt, problems = layout.fmt, []
    had = ", ".join(repr(cell.strip()) for cell in layout.header if cell.strip()) or "nothing"

    def missing(column: str, accepted: Iterable[str], hint: str = "") -> None:
        accepted_text = " or ".join(repr(a) for a in accepted)
        problems.append(Problem(file, layout.header_row, column,
                                f"missing required column {column} ({fmt.name} format; accepted "
                                f"names: {accepted_text}){hint}; the header has: {had}"))

    spend_names = fmt.columns.get("spend", ())

    if "date" not in layout.index:
        periods = [cell.strip() for cell in layout.header if normalize_header(cell) in _PERIOD_COLUMNS]
        hint = (f"; spend must be daily, and the header has {', '.join(periods)}: export with the "
                "Day segment / daily breakdown") if periods else ""
        missing("date", fmt.columns["date"], hint)
    if fmt.date_end() and "date_end" not in layout.index:
        missing("date_end", fmt.columns["date_end"], " (needed to check each row covers one day)")
    if "campaign_id" not in layout.index and "campaign_name" not in layout.index:
        missing("campaign_id", (*fmt.columns["campaign_id"], *fmt.columns["campaign_name"]),
                " (a campaign id or name column)")
    if "spend" not in layout.index and "spend_micros" not in layout.index:
        accepted = fmt.columns.get("spend_micros") or (*spend_names, f"{spend_names[0]} (XXX)")
        missing("spend", accepted)
    if "currency" not in layout.index and layout.header_currency is None and not currency_given:
        hint = f", or the currency in the spend header like '{spend_names[0]} (USD)'" if spend_names else ""
        missing("currency", fmt.columns["currency"], f"{hint}, or pass read_spend(..., currency=)")
    return problems


# --- reading the file -----------------------------------------------------------------


def _decode(data: bytes, file: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpendError(file, [Problem(file, line, None,
                                        f"not {encoding.upper().replace('-SIG', '')} text "
                                        f"(byte {exc.start}); save the export as UTF-8 CSV")]) from exc


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line of the record, cells) for every record, blank lines included."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    line = 0
    for cells in reader:
        yield line + 1, cells
        line = reader.line_num


def _find_csv_header(text: str, file: str) -> tuple[list[tuple[int, list[str]]], int]:
    """All records (read with the delimiter that finds a header) and the header's index."""
    for delimiter in (",", "\t", ";"):
        records: list[tuple[int, list[str]]] = []
        try:
            for record in _csv_records(text, delimiter):
                records.append(record)
                if len(records) >= HEADER_SEARCH_ROWS:
                    break
        except csv.Error:
            continue
        for i, (_, cells) in enumerate(records):
            if _detect(cells) is not None:
                try:
                    return list(_csv_records(text, delimiter)), i
                except csv.Error as exc:
                    raise SpendError(file, [Problem(file, None, None, f"not readable as CSV: {exc}")]) from exc
    # Lines as the csv reader counts them (splitlines would also split on \v, \f, \x1c...).
    first = next(((n, line) for n, line in enumerate(re.split(r"\r\n?|\n", text), 1) if line.strip()), None)
    seen = f"row {first[0]} reads {first[1][:200]!r}" if first else "the file is empty"
    raise SpendError(file, [Problem(file, first[0] if first else None, None,
                                    f"no spend header found in the first {HEADER_SEARCH_ROWS} rows ({seen}); "
                                    "expected the canonical columns (date, platform, campaign_id, "
                                    "campaign_name, channel, brand, currency, spend), a Google Ads "
                                    "(UI or API) or a Meta (Ads Manager or Insights API) export")])


_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def _ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def _json_rows(text: str, pos: int) -> Iterator[tuple[int, dict]]:
    """Row objects (with their start offsets) in the JSON value at ``pos``; arrays and
    ``data``/``results`` arrays of page objects are descended into. Returns the end."""
    if text.startswith("[", pos):
        pos = _ws(text, pos + 1)
        if text.startswith("]", pos):
            return pos + 1
        while True:
            pos = yield from _json_rows(text, pos)
            pos = _ws(text, pos)
            if text.startswith(",", pos):
                pos = _ws(text, pos + 1)
            elif text.startswith("]", pos):
                return pos + 1
            else:
                raise json.JSONDecodeError("expected ',' or ']'", text, pos)
    if not text.startswith("{", pos):
        raise json.JSONDecodeError("expected an object or an array of objects", text, pos)
    start, obj, is_page = pos, {}, False
    pos = _ws(text, pos + 1)
    if text.startswith("}", pos):
        return pos + 1
    while True:
        key, pos = _DECODER.raw_decode(text, pos)
        if not isinstance(key, str):
            raise json.JSONDecodeError("expected a key", text, pos)
        pos = _ws(text, pos)
        if not text.startswith(":", pos):
            raise json.JSONDecodeError("expected ':'", text, pos)
        pos = _ws(text, pos + 1)
        if key in ("data", "results") and text.startswith("[", pos):
            is_page = True
            pos = yield from _json_rows(text, pos)
        else:
            obj[key], pos = _DECODER.raw_decode(text, pos)
        pos = _ws(text, pos)
        if text.startswith(",", pos):
            pos = _ws(text, pos + 1)
        elif text.startswith("}", pos):
            pos += 1
            break
        else:
            raise json.JSONDecodeError("expected ',' or '}'", text, pos)
    if not is_page:
        yield start, obj
    return pos


def _flatten(obj: Mapping, prefix: str = "") -> dict[str, object]:
    """Nested objects as dotted keys (Google's REST JSON); Meta ``actions`` lists as
    ``actions:<action_type>``."""
    flat: dict[str, object] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, list) and all(isinstance(v, Mapping) and "action_type" in v for v in value):
            for action in value:
                flat[f"{name}:{action['action_type']}"] = action.get("value")
        else:
            flat[name] = value
    return flat


def _json_records(text: str, file: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A JSON file as a header (keys in order of first appearance) and records."""
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    objects: list[tuple[int, dict]] = []

    def collect() -> Iterator[tuple[int, dict]]:
        pos = _ws(text, 0)
        while pos < len(text):  # JSON Lines: values one after another
            pos = yield from _json_rows(text, pos)
            pos = _ws(text, pos)

    try:
        for offset, obj in collect():
            objects.append((bisect.bisect_left(newlines, offset) + 1, _flatten(obj)))
    except (json.JSONDecodeError, ValueError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
        raise SpendError(file, [Problem(file, line, None, f"not valid JSON: {exc}")]) from exc
    except RecursionError:
        raise SpendError(file, [Problem(file, None, None, "not a spend export: JSON nested too deeply")]) from None
    header: list[str] = []
    seen: set[str] = set()
    for _, obj in objects:
        for key in obj:
            if key not in seen:
                seen.add(key)
                header.append(key)
    records = []
    for line, obj in objects:
        cells = []
        for key in header:
            value = obj.get(key)
            if value is None:
                cells.append("")
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
                # A JSON "\ud800" escape decodes to a lone surrogate, which no database or
                # terminal takes: U+FFFD instead, the rule Mention applies (docs/analysts.md).
                cells.append(valid_text(str(value)))
            else:
                cells.append(f"\x00{json.dumps(value)}")  # non-scalar: an error if the field is used
        records.append((line, cells))
    return [valid_text(name) for name in header], records


# --- values ---------------------------------------------------------------------------


class _Bad(ValueError):
    """A cell that cannot be read; the message says why."""


_EMPTY = ("", "--")
_PLAIN_NUMBER = re.compile(r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)?(?:\.(?P<frac>\d+))?")
_DIGITS_AND_SEPARATORS = re.compile(r"[\d.,]*,[\d.,]*")


def _is_empty(raw: str) -> bool:
    return raw.strip() in _EMPTY


def _number(raw: str) -> Decimal:
    text = raw.strip()
    if text.startswith("\x00"):
        raise _Bad(f"expected a number, got {text[1:]}")
    negative = False
    if text.startswith("(") and text.endswith(")"):  # accounting negative
        negative, text = True, text[1:-1].strip()
    if text and text[0] in "+-":
        negative, text = negative ^ (text[0] == "-"), text[1:]
    match = _PLAIN_NUMBER.fullmatch(text)
    if match and (match.group("int") or match.group("frac")):
        value = Decimal(text.replace(",", ""))
        return -value if negative else value
    if _DIGITS_AND_SEPARATORS.fullmatch(text):
        raise _Bad(f"ambiguous number {raw.strip()!r}: it looks like a decimal comma; export "
                   "numbers with '.' as the decimal separator (e.g. 1234.56 or \"1,234.56\")")
    raise _Bad(f"not a number: {raw.strip()!r} (expected e.g. 1234.56 or \"1,234.56\", "
               "no currency symbols)")


def _count(raw: str) -> int | None:
    if _is_empty(raw):
        return None
    value = _number(raw)
    if value != value.to_integral_value():
        raise _Bad(f"expected a whole count, got {raw.strip()!r}")
    if value < 0:
        raise _Bad(f"a count cannot be negative, got {raw.strip()!r}")
    return int(value)


_ISO_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?")
_SLASH_DATE = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}")
_RANGE = re.compile(r"(.+?)\s*(?:\.\.|\u2013|\u2014|\s-\s|\sto\s)\s*(.+)", re.IGNORECASE)


def _date(raw: str) -> date:
    text = raw.strip()
    if not text or text == "--":
        raise _Bad("date is empty")
    match = _ISO_DATE.fullmatch(text)
    if match:
        try:
            return date(*map(int, match.groups()))
        except ValueError as exc:
            raise _Bad(f"not a date: {text!r} ({exc})") from None
    for pattern in ("%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            pass
    match = _RANGE.fullmatch(text)
    if match:
        try:
            first, last = _date(match.group(1)), _date(match.group(2))
        except _Bad:
            pass
        else:
            raise _Bad(f"multi-day row: the date is a range ({first} to {last}); export one row per day")
    if _SLASH_DATE.fullmatch(text):
        raise _Bad(f"ambiguous date {text!r} (month/day or day/month?); use YYYY-MM-DD")
    raise _Bad(f"not a date: {text!r} (expected YYYY-MM-DD)")


_HOUR_RANGE = re.compile(r"(\d{1,2}):00(?::00)?\s*-\s*(\d{1,2}):59(?::59)?")


def _hour(raw: str) -> int | None:
    text = raw.strip()
    if _is_empty(text):
        return None
    match = _HOUR_RANGE.fullmatch(text)
    if match:
        if int(match.group(1)) != int(match.group(2)):
            raise _Bad(f"an hour range must cover one hour, got {text!r}")
        text = match.group(1)
    # isascii: "²".isdigit() is True but int() refuses it; len: int() refuses 4300+ digits.
    if not (text.isascii() and text.isdigit() and len(text) <= 4) or not 0 <= int(text) <= 23:
        raise _Bad(f"not an hour of the day (0-23): {text!r}")
    return int(text)


_CURRENCY = re.compile(r"[A-Z]{3}")


def _currency(raw: str) -> str:
    code = raw.strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise _Bad(f"not an ISO 4217 currency code: {raw.strip()!r} (expected e.g. USD)")
    return code


@lru_cache(maxsize=64)
def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder, a long name
        raise _Bad(f"unknown time zone {name!r} (expected an IANA name like America/New_York)") from None
    return name


_PLATFORMS = {
    "google": "google_ads", "google ads": "google_ads", "googleads": "google_ads",
    "adwords": "google_ads", "google adwords": "google_ads",
    "meta": "meta", "meta ads": "meta", "facebook": "meta", "facebook ads": "meta", "fb": "meta",
}


def _platform(raw: str) -> str:
    key = normalize_header(raw.replace("-", " "))
    return _PLATFORMS.get(key, key.replace(" ", "_"))


def _text(raw: str) -> str | None:
    text = raw.strip()
    if text.startswith("\x00"):
        raise _Bad(f"expected text, got {text[1:]}")
    return None if text in _EMPTY else text


# --- rows -----------------------------------------------------------------------------


@dataclass
class _Options:
    currency: str | None
    platform: str | None
    account_timezone: str | None


_TOTAL = re.compile(r"\s*total\s*(?::.*)?", re.IGNORECASE | re.DOTALL)


def _is_skipped(layout: _Layout, cells: list[str]) -> bool:
    """Blank rows, Google's ``Total: ...`` rows, Meta's summary row (no campaign)."""
    fmt = layout.fmt
    if not any(cell.strip() for cell in cells):
        return True
    if not fmt.vendor:
        return False
    if _TOTAL.fullmatch(cells[0]):
        return True
    campaign_cells = [cells[layout.index[k]] for k in ("campaign_id", "campaign_name")
                      if k in layout.index and layout.index[k] < len(cells)]
    return fmt.platform == "meta" and all(_is_empty(c) for c in campaign_cells)


def _parse_row(layout: _Layout, line: int, cells: list[str], lineage: Lineage, file: str,
               options: _Options, problems: list[Problem]) -> SpendRow | None:
    fmt, index = layout.fmt, layout.index
    before = len(problems)
    if len(cells) > len(layout.header):
        extra = [c for c in cells[len(layout.header):] if c.strip()]
        if extra:
            problems.append(Problem(file, line, f"(field {len(layout.header) + 1})",
                                    f"the row has {len(cells)} fields but the header has "
                                    f"{len(layout.header)} (an unquoted number with a thousands "
                                    "separator, like 1,234.56, splits into two fields)"))
            return None

    def cell(name: str) -> str:
        i = index.get(name)
        return cells[i] if i is not None and i < len(cells) else ""

    def read(name, parse, *args):
        try:
            return parse(cell(name), *args)
        except _Bad as exc:
            problems.append(Problem(file, line, layout.column(name), str(exc)))
            return None

    day = read("date", _date)
    if fmt.date_end():
        end = read("date_end", _date)
        if day is not None and end is not None and end != day:
            problems.append(Problem(file, line, layout.column("date_end"),
                                    f"multi-day row: {layout.column('date')} {day} but "
                                    f"{layout.column('date_end')} {end}; export with a daily "
                                    "breakdown (Breakdown > By time > Day / time_increment=1)"))

    campaign_problems = len(problems)
    campaign_id = read("campaign_id", _text)
    campaign_name = read("campaign_name", _text)
    if campaign_id is None and campaign_name is None and len(problems) == campaign_problems:
        column = "campaign_id" if "campaign_id" in index else "campaign_name"
        problems.append(Problem(file, line, layout.column(column), "no campaign id or name"))

    if "spend_micros" in index:
        micros = read("spend_micros", _micros)
        spend = None if micros is None else micros / MICROS
        spend_column = "spend_micros"
    else:
        spend = read("spend", _spend)
        spend_column = "spend"
    if spend is not None and spend < 0:
        problems.append(Problem(file, line, layout.column(spend_column), f"negative spend {spend}"))

    currency, currency_unreadable = None, False
    if "currency" in index and not _is_empty(cell("currency")):
        currency = read("currency", _currency)
        currency_unreadable = currency is None
    declared = layout.header_currency or options.currency
    if currency is not None and declared is not None and currency != declared:
        origin = (f"the spend header {layout.column('spend')!r}" if layout.header_currency
                  else "the currency given")
        problems.append(Problem(file, line, layout.column("currency"),
                                f"mixed currencies: {currency} here, {declared} in {origin}"))
    currency = currency or declared
    if currency is None and not currency_unreadable:  # no declared currency: the column exists
        problems.append(Problem(file, line, layout.column("currency"), "currency is empty"))

    timezone = read("account_timezone", _text) or options.account_timezone
    if timezone is not None:
        try:
            _check_timezone(timezone)
        except _Bad as exc:
            problems.append(Problem(file, line, layout.column("account_timezone"), str(exc)))

    if fmt.platform is not None:
        platform = fmt.platform
    else:
        given = read("platform", _text)
        platform = _platform(given) if given else options.platform or UNKNOWN_PLATFORM

    channel, brand, hour = read("channel", _text), read("brand", _text), read("hour", _hour)
    impressions, reach = read("impressions", _count), read("reach", _count)
    clicks, engagements = read("clicks", _count), read("engagements", _count)
    if len(problems) > before:
        return None
    return SpendRow(date=day, platform=platform, campaign_id=campaign_id, campaign_name=campaign_name,
                    channel=channel, brand=brand, currency=currency, spend=spend,
                    account_timezone=timezone, hour=hour, impressions=impressions, reach=reach,
                    clicks=clicks, engagements=engagements, lineage=lineage)


def _spend(raw: str) -> Decimal:
    if _is_empty(raw):
        raise _Bad("spend is empty")
    return _number(raw)


def _micros(raw: str) -> Decimal:
    if _is_empty(raw):
        raise _Bad("cost_micros is empty")
    value = _number(raw)
    if value != value.to_integral_value():
        raise _Bad(f"cost_micros must be a whole number of micros, got {raw.strip()!r}")
    return value


_COMPARED = ("spend", "currency", "campaign_name", "campaign_id", "channel", "brand",
             "account_timezone", "impressions", "reach", "clicks", "engagements")


def _file_checks(rows: list[SpendRow], layout: _Layout, file: str,
                 problems: list[Problem]) -> list[SpendRow]:
    """Mixed currencies, daily-and-hourly mixes and duplicates: checks across rows."""
    currency_column = layout.column("currency")
    first_currency = rows[0] if rows else None
    kept: dict[tuple, SpendRow] = {}
    grain: dict[tuple, SpendRow] = {}
    for row in rows:
        if first_currency is not None and row.currency != first_currency.currency:
            problems.append(Problem(file, row.lineage.row, currency_column,
                                    f"mixed currencies: {row.currency} here, {first_currency.currency} "
                                    f"from row {first_currency.lineage.row}; a spend file holds one currency"))
        day_key = (row.date, row.platform, row.campaign)
        other = grain.setdefault(day_key, row)
        if (other.hour is None) != (row.hour is None):
            problems.append(Problem(file, row.lineage.row, layout.column("hour"),
                                    f"row {other.lineage.row} gives {row.campaign} on {row.date} "
                                    f"{'daily' if other.hour is None else 'by hour'}, this row "
                                    f"{'daily' if row.hour is None else 'by hour'}: a campaign-day is "
                                    "either daily or hourly"))
            continue
        key = (*day_key, row.hour)
        first = kept.get(key)
        if first is None:
            kept[key] = row
            continue
        differing = [name for name in _COMPARED if getattr(row, name) != getattr(first, name)]
        if differing:
            name = differing[0]
            column = layout.column("spend_micros" if name == "spend" and "spend_micros" in layout.index
                                   else name)
            hour = f" hour {row.hour}" if row.hour is not None else ""
            problems.append(Problem(file, row.lineage.row, column,
                                    f"conflicting duplicate of row {first.lineage.row} ({row.date}{hour}, "
                                    f"{row.platform}, campaign {row.campaign}): {name} "
                                    f"{getattr(row, name)} here, {getattr(first, name)} there"))
    return list(kept.values())


def read_spend(path: str | Path, *, currency: str | None = None, platform: str | None = None,
               account_timezone: str | None = None, brands: Sequence[str] | None = None) -> SpendFile:
    """Read a spend export (see the module docstring for formats and rules).

    ``currency``, ``platform`` and ``account_timezone`` fill in what the file does not
    say. ``brands``, when given, are the known brands: a row whose brand column names
    another is a problem. Raises ``SpendError`` listing every problem found, each with file, row (line)
    and column; ``FileNotFoundError`` if there is no file.
    """
    path = Path(path)
    file = path.name
    option_problems = []
    checked: dict[str, str | None] = {}
    for name, value, check in (("currency", currency, _currency), ("platform", platform, _platform),
                               ("account_timezone", account_timezone, _check_timezone)):
        try:
            checked[name] = check(value) if value is not None else None
        except _Bad as exc:  # an option, not a cell: no row or column to name
            option_problems.append(Problem(file, None, None, f"the {name} given: {exc}"))
    if option_problems:
        raise SpendError(path, option_problems)
    options = _Options(**checked)
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    text = _decode(data, file)
    if not text.strip():
        raise SpendError(path, [Problem(file, None, None, "the file is empty")])

    if text.lstrip()[:1] in ("[", "{"):
        header, records = _json_records(text, file)
        layout_fmt = _detect(header)
        if layout_fmt is None:
            raise SpendError(path, [Problem(file, records[0][0] if records else None, None,
                                            "no spend fields found in the JSON rows; they have: "
                                            + (", ".join(header) or "nothing"))])
        layout = _layout(layout_fmt, header, records[0][0] if records else 1)
        body = records
    else:
        records, header_at = _find_csv_header(text, file)
        header_line, header = records[header_at]
        layout = _layout(_detect(header), header, header_line)  # type: ignore[arg-type]
        body = records[header_at + 1:]

    missing = _missing_columns(layout, file, options.currency is not None)
    if missing:
        raise SpendError(path, missing)

    problems: list[Problem] = []
    rows: list[SpendRow] = []
    for line, cells in body:
        if _is_skipped(layout, cells):
            continue
        row = _parse_row(layout, line, cells, Lineage(file, sha256, line), file, options, problems)
        if row is not None and brands is not None and row.brand is not None:
            problem = unknown_brand(row.brand, brands)
            if problem is not None:
                problems.append(Problem(file, line, layout.column("brand"), problem))
                continue
        if row is not None:
            rows.append(row)
    rows = _file_checks(rows, layout, file, problems)
    if problems:
        raise SpendError(path, problems)
    return SpendFile(path=path, sha256=sha256, format=layout.fmt.name, rows=rows)
