"""The campaign plan: pre-registered campaigns read and validated, every problem named
by file, row and column, all at once."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date
from pathlib import Path

import pytest

from analysis.campaign_plan import CampaignPlan
from inputs.plan import COLUMNS, PlanError, read_plan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "spend"
HEADER = ",".join(COLUMNS) + "\n"
GOOD = "20311877402,Brewly,2026-03-02,2026-03-15,7,nss,increase,5,Beanhaus;Kettle & Co,#BrightMornings;@brewly\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def without_lineage(plan: CampaignPlan) -> CampaignPlan:
    return dataclasses.replace(plan, lineage=None)


def test_csv_plan_fixture():
    path = FIXTURES / "plan.csv"
    plans = read_plan(path)
    assert [p.campaign_id for p in plans] == ["20311877402", "120210987654320001", "18800231"]
    first = plans[0]
    assert (first.brand, first.flight_start, first.flight_end) == ("Brewly", date(2026, 3, 2), date(2026, 3, 15))
    assert (first.washout_days, first.primary_kpi, first.goal_direction, first.goal_value) == (7, "nss", "increase", 5.0)
    assert first.competitors == ("Beanhaus", "Kettle & Co")
    assert first.campaign_tags == ("#BrightMornings", "@brewly")
    assert first.account_timezone == "America/New_York"
    assert first.flight_days == 14 and first.washout_end == date(2026, 3, 22) and first.signed_goal == 5.0
    assert plans[1].competitors == ("Beanhaus", "Kettle & Co")  # spaces around ';' are trimmed
    last = plans[2]
    assert (last.competitors, last.campaign_tags, last.signed_goal) == ((), (), -10.0)
    # lineage: the comment line and the blank line are counted
    assert [p.lineage.row for p in plans] == [3, 4, 6]
    assert {p.lineage.sha256 for p in plans} == {hashlib.sha256(path.read_bytes()).hexdigest()}
    assert {p.lineage.file for p in plans} == {"plan.csv"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.goal_value = 1.0  # type: ignore[misc]


def test_toml_plan_matches_csv_plan():
    toml_plans = read_plan(FIXTURES / "plan.toml")
    csv_plans = read_plan(FIXTURES / "plan.csv")
    assert [without_lineage(p) for p in toml_plans] == [without_lineage(p) for p in csv_plans]
    assert [p.lineage.row for p in toml_plans] == [3, 16, 29]  # the [[campaign]] lines


def test_header_names_are_case_and_space_insensitive(tmp_path):
    header = "Campaign ID,Brand,Flight Start,Flight End,Washout Days,Primary KPI,Goal Direction,Goal Value,Competitors,Campaign Tags,\n"
    (plan,) = read_plan(write(tmp_path, "plan.csv", header + GOOD.replace("nss", "NSS").rstrip("\n") + ",\n"))
    assert plan.primary_kpi == "nss" and plan.account_timezone is None


def test_header_only_plan_is_empty(tmp_path):
    assert read_plan(write(tmp_path, "plan.csv", HEADER)) == []


def cell(column: str, value: str) -> str:
    """GOOD with one column's cell replaced."""
    cells = GOOD.rstrip("\n").split(",")
    cells[COLUMNS.index(column)] = value
    return ",".join(cells) + "\n"


REJECTIONS = [
    ("end before start", cell("flight_end", "2026-03-01"), "flight_end", "flight_end 2026-03-01 is before flight_start"),
    ("bad date", cell("flight_start", "2026-3-2"), "flight_start", "not a date: '2026-3-2'"),
    ("impossible date", cell("flight_start", "2026-02-30"), "flight_start", "not a date"),
    ("negative washout", cell("washout_days", "-1"), "washout_days", "must be >= 0, got -1"),
    ("fractional washout", cell("washout_days", "2.5"), "washout_days", "whole number of days"),
    ("empty washout", cell("washout_days", ""), "washout_days", "is empty"),
    ("unknown kpi", cell("primary_kpi", "roas"), "primary_kpi",
     "'roas' is not one of nss, positive_mentions, net_positive, sov, mentions"),
    ("unknown direction", cell("goal_direction", "up"), "goal_direction", "'up' is not one of increase, decrease"),
    ("goal not a number", cell("goal_value", "five"), "goal_value", "not a number: 'five'"),
    ("goal with decimal comma", cell("goal_value", '"2,5"'), "goal_value", "not a number: '2,5'"),
    ("negative goal", cell("goal_value", "-5"), "goal_value", "goal is a magnitude"),
    ("zero goal", cell("goal_value", "0"), "goal_value", "must be > 0"),
    ("empty brand", cell("brand", ""), "brand", "brand is empty"),
    ("empty campaign", cell("campaign_id", " "), "campaign_id", "campaign_id is empty"),
    ("brand among competitors", cell("competitors", "Beanhaus;brewly"), "competitors",
     "'Brewly' is listed among its own competitors"),
    ("tag without prefix", cell("campaign_tags", "#ok;BrightMornings"), "campaign_tags",
     "'BrightMornings': each tag must be one #hashtag or @handle"),
    ("tag with a space", cell("campaign_tags", "#bright mornings"), "campaign_tags", "no spaces"),
]


@pytest.mark.parametrize(("line", "column", "fragment"), [case[1:] for case in REJECTIONS],
                         ids=[case[0] for case in REJECTIONS])
def test_rejections_name_file_row_and_column(tmp_path, line, column, fragment):
    path = write(tmp_path, "plan.csv", HEADER + GOOD.replace("20311877402", "1") + line)
    with pytest.raises(PlanError) as caught:
        read_plan(path)
    message = str(caught.value)
    assert f"plan.csv, row 3, column {column!r}: " in message, message
    assert fragment in message, message
    assert [(p.file, p.row, p.column) for p in caught.value.problems] == [("plan.csv", 3, column)]


def test_unknown_time_zone(tmp_path):
    path = write(tmp_path, "plan.csv", HEADER.rstrip("\n") + ",account_timezone\n" + GOOD.rstrip("\n") + ",Mars/Olympus\n")
    with pytest.raises(PlanError, match=r"plan.csv, row 2, column 'account_timezone': unknown time zone 'Mars/Olympus'"):
        read_plan(path)


def test_duplicate_campaign(tmp_path):
    path = write(tmp_path, "plan.csv", HEADER + GOOD + "\n" + GOOD)
    with pytest.raises(PlanError, match=r"plan.csv, row 4, column 'campaign_id': campaign 20311877402 is "
                                        r"already planned on row 2"):
        read_plan(path)


def test_header_problems_unknown_and_missing_columns(tmp_path):
    header = "campaign_id,brand,flight_start,flight_end,washout,primary_kpi,goal_direction,goal_value,competitors\n"
    with pytest.raises(PlanError) as caught:
        read_plan(write(tmp_path, "plan.csv", header + "1,Brewly,2026-03-02,2026-03-03,1,nss,increase,5,\n"))
    message = str(caught.value)
    assert "plan.csv, row 1, column 'washout': unknown column 'washout'" in message
    assert "plan.csv, row 1, column 'washout_days': missing required column washout_days; the header has:" in message
    assert "plan.csv, row 1, column 'campaign_tags': missing required column campaign_tags" in message
    assert len(caught.value.problems) == 3


def test_row_longer_than_header(tmp_path):
    path = write(tmp_path, "plan.csv", HEADER + GOOD.rstrip("\n") + ",extra\n")
    with pytest.raises(PlanError, match=r"plan.csv, row 2, column '\(field 11\)': the row has 11 fields"):
        read_plan(path)


def test_every_problem_reported_at_once(tmp_path):
    rows = (cell("primary_kpi", "roas")
            + cell("flight_end", "2026-01-01").replace("20311877402", "2").replace("increase", "sideways"))
    with pytest.raises(PlanError) as caught:
        read_plan(write(tmp_path, "plan.csv", HEADER + rows))
    assert [(p.row, p.column) for p in caught.value.problems] == [
        (2, "primary_kpi"), (3, "goal_direction"), (3, "flight_end")]
    assert str(caught.value).startswith("plan file plan.csv: 3 problems")


def test_toml_problems_point_at_the_campaign_table(tmp_path):
    text = (FIXTURES / "plan.toml").read_text(encoding="utf-8")
    text = text.replace('primary_kpi = "positive_mentions"', 'primary_kpi = "likes"')
    text = text.replace("washout_days = 0\n", "")
    text = text.replace('goal_value = 5\n', 'goal_value = 5\nbudget = 10000\n')
    with pytest.raises(PlanError) as caught:
        read_plan(write(tmp_path, "plan.toml", text))
    assert [(p.row, p.column) for p in caught.value.problems] == [
        (3, "budget"), (17, "primary_kpi"), (30, "washout_days")]  # budget shifts later lines
    message = str(caught.value)
    assert "plan.toml, row 3, column 'budget': unknown key 'budget'" in message
    assert "plan.toml, row 30, column 'washout_days': missing required key washout_days" in message


def test_invalid_toml_names_the_line(tmp_path):
    with pytest.raises(PlanError, match=r"plan.toml, row 2: not valid TOML"):
        read_plan(write(tmp_path, "plan.toml", '[[campaign]]\ncampaign_id = "1\n'))


def test_toml_rejects_datetimes_and_wrong_types(tmp_path):
    text = (FIXTURES / "plan.toml").read_text(encoding="utf-8")
    text = text[:text.index("[[campaign]]", text.index("[[campaign]]") + 1)]  # the first campaign only
    text = text.replace("flight_start = 2026-03-02", "flight_start = 2026-03-02T09:00:00")
    text = text.replace("washout_days = 7", "washout_days = true")
    with pytest.raises(PlanError) as caught:
        read_plan(write(tmp_path, "plan.toml", text))
    assert [(p.row, p.column) for p in caught.value.problems] == [(3, "flight_start"), (3, "washout_days")]
    assert "a date-time 2026-03-02T09:00:00" in str(caught.value)
