"""The campaign plan: each campaign pre-registered before its results are seen.

``read_plan(path)`` reads a CSV (any other suffix) or TOML (``.toml``) plan and returns
one validated ``CampaignPlan`` per campaign, or raises ``PlanError`` listing every
problem at once, each naming file, row (1-based line) and column.

CSV: a header row, then one campaign per row. Column names are matched case-,
whitespace- and underscore-insensitively; unknown columns are an error (a typo in a
pre-registration should not pass silently). Blank lines and lines whose first cell
starts with ``#`` are skipped, so a plan can carry comments::

    campaign_id,brand,flight_start,flight_end,washout_days,primary_kpi,goal_direction,goal_value,competitors,campaign_tags
    21874530912,Brewly,2026-02-05,2026-02-18,7,nss,increase,5,Beanhaus;Kettle & Co,#BrightMornings;@brewly

TOML: an array of ``[[campaign]]`` (or ``[[campaigns]]``) tables with the same keys;
dates as TOML dates or ``"YYYY-MM-DD"`` strings, ``competitors`` / ``campaign_tags`` as
arrays or semicolon-separated strings; the row of a campaign is the line of its
``[[campaign]]`` header.

Columns (all of the first ten must be present; cells of the last two may be empty):

==================  =========================================================================
campaign_id         the ad platform's campaign id (the key spend rows join on); unique
brand               the brand the campaign promotes (as configured in the listener)
flight_start/_end   first and last flight date, YYYY-MM-DD, in the ad account's time zone;
                    end >= start; from 1970-01-01 to 2999-12-31
washout_days        whole days from 0 to 3650 after the flight still counted as the campaign's effect
primary_kpi         nss | positive_mentions | net_positive | sov | mentions
goal_direction      increase | decrease
goal_value          the pre-registered effect size, a number > 0 (a magnitude; the direction
                    gives the sign, see ``signed_goal``) in the KPI's unit as the ROI
                    analysis reads it: NSS points (nss), percent lift (mentions,
                    positive_mentions), incremental net-positive conversations over the
                    effect window (net_positive), share-of-voice points (sov)
competitors         semicolon-separated brand names (not the brand itself), for DiD and SOV
campaign_tags       semicolon-separated #hashtags and @handles that mark campaign-driven
                    mentions (counted apart from organic ones)
account_timezone    optional: the ad account's IANA time zone (e.g. America/New_York), for
                    spend files that do not say it
care_goals          optional: engagement goals over the campaign's window, as the config's
                    care_goals (docs/care.md): ``response_rate=0.6; reply_hours=2`` (TOML:
                    that text or a table); they override the brand's for the goals set
notes               optional free text, ignored
==================  =========================================================================
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from analysis.campaign_plan import MAX_WASHOUT_DAYS, CampaignPlan, Lineage, plan_problems
from analysis.care_goals import parse_goals
from inputs.spend import InputFileError, Problem, normalize_header, unknown_brand

__all__ = ["COLUMNS", "OPTIONAL_COLUMNS", "PlanError", "read_plan"]

COLUMNS = ("campaign_id", "brand", "flight_start", "flight_end", "washout_days", "primary_kpi",
           "goal_direction", "goal_value", "competitors", "campaign_tags")
"""Required columns, in the order a template lists them."""
OPTIONAL_COLUMNS = ("account_timezone", "care_goals", "notes")


class PlanError(InputFileError):
    """A plan file that cannot be used; ``problems`` lists everything wrong with it."""

    kind = "plan file"


# --- cells: each parser turns a raw cell into the field's type; the plan's rules are
# ``plan_problems`` (analysis.campaign_plan), checked once the cells are converted.


class _Bad(ValueError):
    pass


def _required_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Bad(f"expected text, got {value!r}")
    text = str(value).strip()
    if not text:
        raise _Bad("is empty")
    return text


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        raise _Bad(f"expected a date, got a date-time {value.isoformat()}")
    if isinstance(value, date):
        return value
    text = _required_text(value)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise _Bad(f"not a date: {text!r} (expected YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise _Bad(f"not a date: {text!r} ({exc})") from None


def _washout(value: Any) -> int:
    if isinstance(value, bool):
        raise _Bad(f"expected a whole number of days, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[-+]?\d+", text):
            raise _Bad(f"expected a whole number of days, got {text!r}" if text else "is empty")
        if len(text) > 12:  # int() refuses over 4300 digits; no washout is that long anyway
            raise _Bad(f"must be at most {MAX_WASHOUT_DAYS}, got {text[:12]}... ({len(text)} digits)")
        value = int(text)
    if not isinstance(value, int):
        raise _Bad(f"expected a whole number of days, got {value!r}")
    return value


def _choice(value: Any) -> str:
    return _required_text(value).casefold()


def _goal(value: Any) -> float:
    if isinstance(value, bool):
        raise _Bad(f"expected a number, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)", text):
            raise _Bad(f"not a number: {text!r} (expected e.g. 5 or 2.5, '.' as decimal separator)"
                       if text else "is empty")
        value = float(text)
    if not isinstance(value, (int, float)):
        raise _Bad(f"not a number: {value!r}")
    return float(value)


def _list(value: Any) -> tuple[str, ...]:
    """Semicolon-separated text or a list of strings, without blanks and repeats (case-blind)."""
    if value is None:
        items = []
    elif isinstance(value, str):
        items = [item.strip() for item in value.split(";") if item.strip()]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = [item.strip() for item in value if item.strip()]
    else:
        raise _Bad(f"expected semicolon-separated text or a list of strings, got {value!r}")
    seen, out = set(), []
    for item in items:
        if item.casefold() not in seen:
            seen.add(item.casefold())
            out.append(item)
    return tuple(out)


def _timezone(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _required_text(value)


def _care_goals(value: Any) -> dict[str, Any]:
    """``"response_rate=0.6; reply_hours=2"`` or a TOML table; the targets are checked by
    plan_problems (analysis.care_goals, as the config's)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise _Bad(f"expected goal=target pairs like 'response_rate=0.6; reply_hours=2', got {value!r}")
    try:
        return parse_goals(value)
    except ValueError as exc:
        raise _Bad(str(exc)) from None


_PARSERS = {
    "campaign_id": _required_text,
    "brand": _required_text,
    "flight_start": _date,
    "flight_end": _date,
    "washout_days": _washout,
    "primary_kpi": _choice,
    "goal_direction": _choice,
    "goal_value": _goal,
    "competitors": _list,
    "campaign_tags": _list,
    "account_timezone": _timezone,
    "care_goals": _care_goals,
}


# --- records --------------------------------------------------------------------------


def _campaign(record: Mapping[str, Any], columns: Mapping[str, str], lineage: Lineage,
              problems: list[Problem], brands: Sequence[str] | None = None) -> CampaignPlan | None:
    """``record`` maps field names to raw values; ``columns`` gives each field's name
    as the file wrote it."""
    file, row, before = lineage.file, lineage.row, len(problems)
    values: dict[str, Any] = {}
    for name, parse in _PARSERS.items():
        if name in COLUMNS and name not in record:  # a TOML table without the key
            problems.append(Problem(file, row, name, f"missing required key {name}"))
            continue
        try:
            values[name] = parse(record.get(name))
        except _Bad as exc:
            problems.append(Problem(file, row, columns.get(name, name), f"{name} {exc}"
                                    if str(exc) == "is empty" else str(exc)))
    for name, message in plan_problems(values):
        problems.append(Problem(file, row, columns.get(name, name), message))
    brand = values.get("brand")
    competitors = values.get("competitors", ())
    if brands is not None:
        # A misspelt competitor ("Telwick") would otherwise turn DiD into ITS unnoticed.
        named = ([("brand", brand)] if brand is not None else []) + [("competitors", c) for c in competitors]
        for column, name in named:
            problem = unknown_brand(name, brands)
            if problem is not None:
                problems.append(Problem(file, row, columns.get(column, column), problem))
    if len(problems) > before:
        return None
    return CampaignPlan(lineage=lineage, **values)


def _csv_records(text: str, file: str, sha256: str,
                 problems: list[Problem]) -> list[tuple[Lineage, dict[str, Any], dict[str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    records, header, columns, line = [], None, {}, 0
    try:
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = cells
                known = (*COLUMNS, *OPTIONAL_COLUMNS)
                by_norm = {normalize_header(name): name for name in known}
                for cell in cells:
                    if not cell.strip():
                        continue  # spreadsheets leave empty trailing header cells
                    name = by_norm.get(normalize_header(cell))
                    if name is None:
                        problems.append(Problem(file, start, cell.strip(),
                                                f"unknown column {cell.strip()!r}; the plan's columns "
                                                f"are: {', '.join(known)}"))
                    elif name in columns:
                        problems.append(Problem(file, start, cell.strip(),
                                                f"column {name} appears twice"))
                    else:
                        columns[name] = cell.strip()
                missing = [name for name in COLUMNS if name not in columns]
                if missing:
                    had = ", ".join(repr(c.strip()) for c in cells if c.strip())
                    for name in missing:
                        problems.append(Problem(file, start, name,
                                                f"missing required column {name}; the header has: {had}"))
                if problems:
                    return []
                index = {name: [normalize_header(c) for c in cells].index(normalize_header(original))
                         for name, original in columns.items()}
                continue
            if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
                problems.append(Problem(file, start, f"(field {len(header) + 1})",
                                        f"the row has {len(cells)} fields but the header has {len(header)} "
                                        "(quote cells that contain commas)"))
                continue
            record = {name: cells[i] if i < len(cells) else "" for name, i in index.items()}
            records.append((Lineage(file, sha256, start), record, columns))
    except csv.Error as exc:
        problems.append(Problem(file, line + 1, None, f"not readable as CSV: {exc}"))
    if header is None and not problems:
        problems.append(Problem(file, None, None, "the file has no header row; expected: "
                                + ", ".join(COLUMNS)))
    return records


_TABLE_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*(campaigns?)[ \t]*\]\]", re.MULTILINE)


def _toml_records(text: str, file: str, sha256: str,
                  problems: list[Problem]) -> list[tuple[Lineage, dict[str, Any], dict[str, str]]]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        problems.append(Problem(file, int(match.group(1)) if match else None, None, f"not valid TOML: {exc}"))
        return []
    lines = [text.count("\n", 0, m.start()) + 1 for m in _TABLE_HEADER.finditer(text)]
    records = []
    for key, value in document.items():
        if key not in ("campaign", "campaigns") or not isinstance(value, list):
            problems.append(Problem(file, None, key, f"unexpected top-level key {key!r}; list campaigns "
                                    "as [[campaign]] tables"))
            continue
        for i, table in enumerate(value):
            row = lines[i] if i < len(lines) else None
            if not isinstance(table, dict):  # e.g. campaign = [1, 2]
                problems.append(Problem(file, row, key, "expected [[campaign]] tables"))
                continue
            for name in table:
                if name not in COLUMNS and name not in OPTIONAL_COLUMNS:
                    problems.append(Problem(file, row, name, f"unknown key {name!r}; the plan's keys are: "
                                            + ", ".join((*COLUMNS, *OPTIONAL_COLUMNS))))
            records.append((Lineage(file, sha256, row or 0), table, {}))
    return records


def read_plan(path: str | Path, *, brands: Sequence[str] | None = None) -> list[CampaignPlan]:
    """Read and validate a plan file (CSV, or TOML for a ``.toml`` path); campaigns in
    file order. ``brands``, when given, are the known brands: a brand or competitor
    that is not one of them is a problem. Raises ``PlanError`` with every problem found."""
    path = Path(path)
    file = path.name
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(path, [Problem(file, data[: exc.start].count(b"\n") + 1, None,
                                       "not UTF-8 text; save the plan as UTF-8")]) from exc
    problems: list[Problem] = []
    reader = _toml_records if path.suffix.casefold() == ".toml" else _csv_records
    records = reader(text, file, sha256, problems)
    plans: list[CampaignPlan] = []
    first_row: dict[str, int] = {}
    for lineage, record, columns in records:
        plan = _campaign(record, columns, lineage, problems, brands)
        if plan is None:
            continue
        if plan.campaign_id in first_row:
            problems.append(Problem(file, lineage.row, columns.get("campaign_id", "campaign_id"),
                                    f"campaign {plan.campaign_id} is already planned on row "
                                    f"{first_row[plan.campaign_id]}"))
            continue
        first_row[plan.campaign_id] = lineage.row
        plans.append(plan)
    if problems:
        raise PlanError(path, problems)
    return plans
