"""Engagement goals set in a campaign plan (issue 15 item 4): read and checked like the
config's, stored (schema 9: campaign_plans.care_goals), and shown in the campaign
report's Conversations over the campaign's window, the brand's config filling in the
goals the plan does not set. CliRunner and real DuckDB files."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from analysis.campaign_plan import CampaignPlan
from analysis.care import goal_sentence
from inputs.plan import PlanError, read_plan
from listener.cli import cli
from listener.config import load_file
from listener.report import _campaign_care
from storage import report_data
from storage.campaigns import save_plans
from storage.store import Store
from tests.listener.test_care import database  # noqa: F401  (fixture: threads a and b of Acme on MON)
from tests.storage.test_care import MON

HEADER = ("campaign_id,brand,flight_start,flight_end,washout_days,primary_kpi,goal_direction,goal_value,"
          "competitors,campaign_tags,care_goals\n")
SPEND = ("date,platform,campaign_id,campaign_name,channel,brand,currency,spend,account_timezone\n"
         "2026-11-02,meta,c1,Care push,social,Acme,EUR,100,UTC\n")


def test_plan_goals_are_read_stored_and_override_the_brands_in_the_report(tmp_path, database):  # noqa: F811
    plan = tmp_path / "plan.csv"
    plan.write_text(HEADER + "c1,Acme,2026-11-02,2026-11-03,0,nss,increase,5,,,response_rate=0.9; resolved_share=.25\n")
    [read] = read_plan(plan)
    assert read.care_goals == (("response_rate", 0.9), ("resolved_share", 0.25))
    settings = load_file(database)
    with Store.open(settings.database) as store:
        save_plans(store, [read], MON)
        [stored] = report_data.plans(store)
        assert stored.care_goals == read.care_goals
        # What build_report gives each analysed campaign's Conversations (a two-thread
        # database is too small for the campaign analysis itself).
        care = _campaign_care(store, stored, ZoneInfo("UTC"), MON + timedelta(days=3), settings.brands)
    goals = {g.goal: g for g in care.figures.goals}
    # The plan's two goals, and the config's reply_hours (2 h) the plan does not set.
    assert {name: (g.target, g.set_by) for name, g in goals.items()} == {
        "response_rate": (0.9, "plan"), "reply_hours": (2.0, "config"), "resolved_share": (0.25, "plan")}
    # 1 of 2 answered, Wilson (9 %, 91 %): "not yet clear" against 90 %; 1 of 2 resolved
    # against 25 %: the same; the one reply took 0.5 business hours, within 2 h.
    assert [goals[n].verdict for n in ("response_rate", "resolved_share", "reply_hours")] == [
        "not yet clear", "not yet clear", "met"]
    assert care.to_json()["goals"][0]["set_by"] == "plan"
    # A file of version 8 gets the column (schema 9); its plans set no goals.
    with Store.open(settings.database) as store, store.native() as db:
        db.execute("ALTER TABLE campaign_plans DROP COLUMN care_goals")
        db.execute("DELETE FROM schema_version WHERE version > 8")
    with Store.open(settings.database) as store:
        assert [p.care_goals for p in report_data.plans(store)] == [()]
    assert "against a goal set in the campaign plan of at least 90%" in goal_sentence(goals["response_rate"])


@pytest.mark.parametrize(("cell", "expected"), [
    ("response_rate=1.5", "column 'care_goals': response_rate: must be between 0 and 1, got 1.5"),
    ("speed=1", "column 'care_goals': speed: unknown key (expected one of: net_positive_per_1000, "),
    ("reply_hours=soon", "column 'care_goals': reply_hours: must be a number, got 'soon'"),
    ("response_rate 0.5", "column 'care_goals': 'response_rate 0.5' is not goal=target"),
])
def test_a_bad_plan_goal_names_file_row_and_key_and_exits_2(tmp_path, cell, expected):
    plan, spend = tmp_path / "plan.csv", tmp_path / "spend.csv"
    plan.write_text(HEADER + f"c1,Acme,2026-11-02,2026-11-03,0,nss,increase,5,,,{cell}\n")
    spend.write_text(SPEND)
    config = tmp_path / "listener.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "c.duckdb"}"\n[[brands]]\nname = "Acme"\nterms = ["acme"]\n')
    result = CliRunner().invoke(cli, ["campaigns", "import", str(spend), "--plan", str(plan), "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert f"plan.csv, row 2, {expected}" in result.output
    assert not (tmp_path / "c.duckdb").exists()  # nothing stored


def test_a_plan_built_in_code_checks_its_goals_and_a_toml_plan_takes_a_table(tmp_path):
    with pytest.raises(ValueError, match=r"care_goals: reply_hours: must be between 0 and 720, got -1"):
        CampaignPlan("c1", "Acme", MON.date(), MON.date(), care_goals=(("reply_hours", -1),))
    plan = tmp_path / "plan.toml"
    plan.write_text('[[campaign]]\ncampaign_id = "c1"\nbrand = "Acme"\nflight_start = 2026-11-02\n'
                    'flight_end = 2026-11-03\nwashout_days = 0\nprimary_kpi = "nss"\ngoal_direction = "increase"\n'
                    'goal_value = 5\ncompetitors = []\ncampaign_tags = []\n'
                    'care_goals = { net_positive_per_1000 = 50, reply_hours = 4 }\n')
    assert read_plan(plan)[0].care_goals == (("reply_hours", 4.0), ("net_positive_per_1000", 50.0))
    plan.write_text(plan.read_text().replace("reply_hours = 4", "reply_hours = true"))
    with pytest.raises(PlanError, match=r"plan.toml, row 1, column 'care_goals': reply_hours: must be a number"):
        read_plan(plan)

