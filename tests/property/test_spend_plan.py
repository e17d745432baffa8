"""The spend and plan parsers against hostile files.

Properties: ``read_spend`` and ``read_plan`` return their rows or raise InputFileError
(SpendError / PlanError) whose every problem names the file and, when it names a row,
a line that exists in the file; what they return is sane (spend >= 0, one currency,
lineage rows inside the file). Inputs: any bytes; CSV files in every known format with
the header's columns permuted, renamed by case/underscores/spaces and partly missing,
cells valid or hostile, three delimiters and three encodings; JSON of any shape; plans
as CSV and TOML with every field valid, wrong or missing; hostile command-line options.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import shutil
import json
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from inputs import spend
from inputs.plan import COLUMNS, OPTIONAL_COLUMNS, read_plan
from inputs.spend import InputFileError, read_spend
from tests.property.strategies import (
    SCRIPT, assert_names_the_problem, broken, has_surrogate, hostile_text, json_values, toml_document, toml_text,
    toml_values,
)

_DIR = Path(tempfile.mkdtemp(prefix="property-spend-"))
_FILES = itertools.count()


def teardown_module() -> None:
    shutil.rmtree(_DIR, ignore_errors=True)


def write(content: bytes, suffix: str = ".csv") -> Path:
    path = _DIR / f"f{next(_FILES)}{suffix}"
    path.write_bytes(content)
    return path


def _lines(path: Path) -> int:
    data = path.read_bytes()
    text = data.decode("utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8",
                       errors="replace")
    return text.count("\n") + text.count("\r") + 1


def check_input_error(exc: InputFileError, path: Path) -> None:
    assert_names_the_problem(exc)
    assert exc.problems
    assert path.name in str(exc)
    lines = _lines(path)
    for problem in exc.problems:
        assert problem.file == path.name
        assert problem.message.strip()
        if problem.row is not None:
            assert 1 <= problem.row <= lines, (problem, lines)


def spend_or_error(path: Path, **options):
    try:
        result = read_spend(path, **options)
    except InputFileError as exc:
        check_input_error(exc, path)
        return None
    lines = _lines(path)
    currencies = {row.currency for row in result.rows}
    assert len(currencies) <= 1
    for row in result.rows:
        assert isinstance(row.spend, Decimal) and row.spend >= 0
        assert row.currency is not None and len(row.currency) == 3
        assert row.campaign is not None
        assert 1 <= row.lineage.row <= lines
        assert row.hour is None or 0 <= row.hour <= 23
        for name in ("platform", "campaign_id", "campaign_name", "channel", "brand", "account_timezone"):
            value = getattr(row, name)
            assert value is None or not has_surrogate(value), (name, value)  # storable as UTF-8
    return result


# -- spend: any bytes, any JSON -----------------------------------------------------------

@given(content=st.binary(max_size=400))
@example(content=b"")
@example(content=b"\x0b\x00")  # row 2 by str.splitlines, which splits on \v: the file has one line
@example(content=b"\xff\xfe" + "date,spend\n".encode("utf-16-le"))
@example(content=b"\xef\xbb\xbfdate,spend,currency\n2026-03-02,1,USD\n")
def test_spend_of_any_bytes(content):
    spend_or_error(write(content))


@given(document=json_values, lines=st.booleans())
@example(document=[[[[[[]]]]]], lines=False)
@example(document=[{"date_start": "2026-03-02", "date_stop": "2026-03-02", "campaign_id": "1", "spend": "1",
                    "campaign_name": "Spring \ud800 \udc80", "account_currency": "USD"}], lines=False)
@example(document={"data": [{"date_start": "2026-03-02", "date_stop": "2026-03-02", "spend": "1",
                             "campaign_id": "1", "account_currency": "USD", "actions": [{"action_type": 1}]}]},
         lines=False)
def test_spend_of_any_json(document, lines):
    text = "\n".join(json.dumps(d) for d in document) if lines and isinstance(document, list) else json.dumps(document)
    spend_or_error(write(text.encode("utf-8", "surrogatepass"), ".json"))


def test_spend_json_nested_deeper_than_python_recurses():
    for text in ("[" * 100_000, '{"data": ' * 5_000 + "[]" + "}" * 5_000):
        spend_or_error(write(text.encode(), ".json"))


# -- spend: CSV in every format, header permuted, cells valid or hostile --------------------

_VALID_CELLS = {
    "date": st.sampled_from(["2026-03-02", "2026/03/03", "Mar 4, 2026", "March 5, 2026", "2026-03-06 00:00"]),
    "date_end": st.sampled_from(["2026-03-02", "2026-03-03"]),
    "platform": st.sampled_from(["google_ads", "Meta", "TikTok", "adwords"]),
    "campaign_id": st.sampled_from(["20311877401", "120210987654320001", "7"]),
    "campaign_name": st.sampled_from(["Brewly | Spring", "Brewly — Bright Mornings", SCRIPT]),
    "channel": st.sampled_from(["search", "social", ""]),
    "brand": st.sampled_from(["Brewly", ""]),
    "currency": st.sampled_from(["USD", "usd", "EUR"]),
    "spend": st.sampled_from(["412.37", "1,402.50", "0", "250", "(12.00)", "--", ""]),
    "spend_micros": st.sampled_from(["412370000", "0", "1234561234"]),
    "account_timezone": st.sampled_from(["America/New_York", "Europe/Berlin", "UTC", ""]),
    "hour": st.sampled_from(["0", "23", "13:00 - 13:59", ""]),
    "impressions": st.sampled_from(["9804", "9,804", "--", ""]),
    "reach": st.sampled_from(["118220", ""]),
    "clicks": st.sampled_from(["611", ""]),
    "engagements": st.sampled_from(["7905", "--"]),
}
_HOSTILE_CELLS = st.one_of(
    hostile_text,
    st.sampled_from(["²", "٣", "1e5", "1.234,56", "03/02/2026", "2026-03-01 - 2026-03-07", "9" * 5000,
                     "America", "a" * 300, "../../etc/passwd", "Etc/GMT+99", "-5", "24", "\x00{}", "Total: 3"]),
)
_RENAMES = [lambda s: s, str.upper, str.lower, lambda s: s.replace(" ", "_"), lambda s: f"  {s} ",
            lambda s: s.replace(".", " ").title()]


@st.composite
def spend_csv(draw):
    fmt = draw(st.sampled_from(sorted(spend._FORMATS)))
    columns = spend._FORMATS[fmt].columns
    fields = draw(st.lists(st.sampled_from(sorted(columns)), unique=True, min_size=1, max_size=len(columns)))
    header = [draw(st.sampled_from(_RENAMES))(draw(st.sampled_from(columns[f]))) for f in fields]
    if draw(st.booleans()):
        header.append(draw(st.one_of(hostile_text, st.just("Amount spent (USD)"))))
        fields.append("extra")
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        row = [draw(st.one_of(*[_VALID_CELLS.get(f, _HOSTILE_CELLS)] * 3, _HOSTILE_CELLS)) for f in fields]
        if draw(st.integers(0, 5)) == 0:
            row = row[: draw(st.integers(0, len(row)))] + draw(st.lists(hostile_text, max_size=2))
        rows.append(row)
    delimiter = draw(st.sampled_from([",", "\t", ";"]))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter)
    for line in draw(st.lists(st.sampled_from(["Campaign report", '"March 2, 2026 - March 4, 2026"', ""]),
                              max_size=2)):
        buffer.write(line + "\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
    return buffer.getvalue().encode(encoding, "surrogatepass")


@given(content=spend_csv())
@example(content=b"date,platform,campaign_id,currency,spend,hour\n2026-03-02,meta,1,USD,1,\xc2\xb2\n")
@example(content=b"date,platform,campaign_id,currency,spend,hour\n2026-03-02,meta,1,USD,1," + b"9" * 5000 + b"\n")
@example(content=b"date,platform,campaign_id,currency,spend,account_timezone\n2026-03-02,meta,1,USD,1,America\n")
@example(content=("date,platform,campaign_id,currency,spend,account_timezone\n2026-03-02,meta,1,USD,1,"
                  + "a" * 300 + "\n").encode())
def test_spend_csv_in_every_format(content):
    spend_or_error(write(content))


def test_the_fixtures_still_read():
    for name in ("canonical.csv", "google_ads_ui.csv", "google_ads_api.csv", "meta_ads_manager.csv",
                 "meta_insights_api.csv"):
        assert spend_or_error(Path(__file__).parents[1] / "fixtures" / "spend" / name).rows


_CANONICAL = b"date,platform,campaign_id,spend,account_timezone\n2026-03-02,meta,1,12.50,\n"


@given(currency=st.one_of(st.none(), hostile_text, st.just("usd")),
       platform=st.one_of(st.none(), hostile_text),
       account_timezone=st.one_of(st.none(), hostile_text, st.sampled_from(["America", "a" * 300, "Europe/"])))
@example(currency="us", platform=None, account_timezone=None)
@example(currency="USD", platform=None, account_timezone="America")
@example(currency="USD", platform=None, account_timezone="x" * 300)
def test_spend_options_from_the_command_line(currency, platform, account_timezone):
    """``listener campaigns import --currency/--platform/--timezone`` pass these through."""
    spend_or_error(write(_CANONICAL), currency=currency, platform=platform, account_timezone=account_timezone)


# -- plans ----------------------------------------------------------------------------------

def plan_or_error(path: Path):
    try:
        plans = read_plan(path)
    except InputFileError as exc:
        check_input_error(exc, path)
        return None
    for plan in plans:
        assert plan.flight_end >= plan.flight_start
        assert plan.washout_days >= 0 and plan.goal_value > 0
        assert plan.washout_end >= plan.flight_end  # computable: the report needs it
    return plans


@given(content=st.binary(max_size=300), toml=st.booleans())
def test_plan_of_any_bytes(content, toml):
    plan_or_error(write(content, ".toml" if toml else ".csv"))


_PLAN_CELLS = {
    "campaign_id": st.sampled_from(["20311877402", "7"]),
    "brand": st.sampled_from(["Brewly", SCRIPT]),
    "flight_start": st.sampled_from(["2026-03-02", "0001-01-01"]),
    "flight_end": st.sampled_from(["2026-03-15", "9999-12-31"]),
    "washout_days": st.sampled_from(["7", "0", "99999999999"]),
    "primary_kpi": st.sampled_from(["nss", "SOV", "mentions"]),
    "goal_direction": st.sampled_from(["increase", "decrease"]),
    "goal_value": st.sampled_from(["5", "2.5", "1e3"]),
    "competitors": st.sampled_from(["Beanhaus;Kettle & Co", "", "Brewly"]),
    "campaign_tags": st.sampled_from(["#BrightMornings;@brewly", "", "#a b"]),
    "account_timezone": st.sampled_from(["America/New_York", "", "America", "a" * 300]),
    "care_goals": st.sampled_from(["response_rate=0.6; reply_hours=2", "", "speed=1", "reply_hours=1e400",
                                   "response_rate", "resolved_share=.5;resolved_share=.5"]),
    "notes": hostile_text,
}


@st.composite
def plan_csv(draw):
    names = draw(st.permutations([*COLUMNS, *OPTIONAL_COLUMNS]))
    names = names[: draw(st.integers(len(COLUMNS) - 1, len(names)))]
    header = [draw(st.sampled_from(_RENAMES))(name) for name in names]
    rows = [[draw(st.one_of(*[_PLAN_CELLS[n]] * 3, _HOSTILE_CELLS)) for n in names]
            for _ in range(draw(st.integers(0, 3)))]
    buffer = io.StringIO(newline="")
    buffer.write(draw(st.sampled_from(["", "# a comment\n", "\n"])))
    csv.writer(buffer).writerows([header, *rows])
    return buffer.getvalue().encode("utf-8", "surrogatepass")


@given(content=plan_csv())
@example(content=("campaign_id,brand,flight_start,flight_end,washout_days,primary_kpi,goal_direction,goal_value,"
                  "competitors,campaign_tags,account_timezone\n7,Brewly,2026-03-02,2026-03-15," + "1" * 5000
                  + ",nss,increase,5,,,America\n").encode())
@example(content=("campaign_id,brand,flight_start,flight_end,washout_days,primary_kpi,goal_direction,goal_value,"
                  "competitors,campaign_tags\n7,Brewly,2026-03-02,9999-12-31,7,nss,increase,5,,\n").encode())
def test_plan_csv(content):
    plan_or_error(write(content))


PLAN = {
    "campaign_id": "20311877402", "brand": "Brewly", "flight_start": "2026-03-02", "flight_end": "2026-03-15",
    "washout_days": 7, "primary_kpi": "nss", "goal_direction": "increase", "goal_value": 5,
    "competitors": ["Beanhaus", "Kettle & Co"], "campaign_tags": ["#BrightMornings", "@brewly"],
    "account_timezone": "America/New_York",
}


@given(tables=st.lists(broken(PLAN, toml_values, toml_text), max_size=3),
       key=st.sampled_from(["campaign", "campaigns", "campaing"]), extra=st.dictionaries(toml_text, toml_values,
                                                                                          max_size=1))
@example(tables=[{**PLAN, "washout_days": 2**63 - 1}], key="campaign", extra={})
@example(tables=[{**PLAN, "account_timezone": "America"}], key="campaign", extra={})
def test_plan_toml(tables, key, extra):
    text = toml_document(extra) + "".join(f"[[{key}]]\n" + toml_document(table) for table in tables)
    plan_or_error(write(text.encode("utf-8"), ".toml"))


def test_the_plan_fixtures_still_read():
    for name in ("plan.csv", "plan.toml"):
        assert plan_or_error(Path(__file__).parents[1] / "fixtures" / "spend" / name)
