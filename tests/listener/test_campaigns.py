"""listener campaigns import/list through the CLI, on a real database file."""

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analysis.sentiment import VaderScorer
from demo.exports import write_google_ads_export
from demo.world import default_world
from listener.cli import cli
from storage import views
from storage.store import Store
from tests.conftest import mention

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "spend"
BRANDS = ("Brewly", "Beanhaus", "Kettle & Co")


@pytest.fixture(autouse=True)
def config(tmp_path, monkeypatch):
    """The brands the fixtures' files name, configured (an unknown brand is refused)."""
    path = tmp_path / "listener.toml"
    path.write_text("".join(f'[[brands]]\nname = "{b}"\nterms = ["{b.lower()}"]\n' for b in BRANDS))
    monkeypatch.setenv("LISTENER_CONFIG", str(path))
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [*args], catch_exceptions=False)


def spend_rows(db):
    with Store.open(db) as store, store.native() as con:
        return con.execute("SELECT campaign_id, date, spend::DOUBLE, file, file_row FROM spend ORDER BY ALL").fetchall()


def test_import_is_idempotent_keeps_lineage_and_stores_the_plan(tmp_path):
    db = str(tmp_path / "c.duckdb")
    first = invoke("campaigns", "import", str(FIXTURES / "google_ads_ui.csv"), "--plan", str(FIXTURES / "plan.csv"),
                   "--db", db, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["rows"] == 6
    before = spend_rows(db)
    assert invoke("campaigns", "import", str(FIXTURES / "google_ads_ui.csv"), "--db", db).exit_code == 0
    assert spend_rows(db) == before and len(before) == 6
    assert all(row[3] == "google_ads_ui.csv" and row[4] > 2 for row in before)  # lines below the title lines
    listed = json.loads(invoke("campaigns", "list", "--db", db, "--json").output)
    assert {r["campaign_id"] for r in listed} == {r[0] for r in before}
    assert any(r["flight_start"] for r in listed)


def test_a_bad_file_is_rejected_whole_with_file_row_and_column(tmp_path):
    db = str(tmp_path / "c.duckdb")
    invoke("campaigns", "import", str(FIXTURES / "google_ads_ui.csv"), "--db", db)
    before = spend_rows(db)
    bad = tmp_path / "bad.csv"
    bad.write_text("date,campaign_id,spend,currency\n2026-03-02,20311877401,12.00,USD\n2026-03-03,20311877401,-5,USD\n")
    result = CliRunner().invoke(cli, ["campaigns", "import", str(bad), "--db", db])
    assert result.exit_code == 2
    assert "bad.csv, row 3, column 'spend': negative spend" in result.output
    assert spend_rows(db) == before  # nothing of the bad file, nothing lost


def test_the_demo_export_imports_to_the_cent(tmp_path):
    world = default_world(datetime(2026, 11, 20, tzinfo=timezone.utc))
    path = write_google_ads_export(tmp_path / "demo.csv", world)
    db = str(tmp_path / "c.duckdb")
    assert invoke("campaigns", "import", str(path), "--db", db).exit_code == 0
    (campaign,) = world.campaigns
    expected = world.daily_spend(campaign)
    stored = {row[1]: row[2] for row in spend_rows(db)}
    assert stored.keys() == expected.keys()
    assert all(abs(stored[d] - float(expected[d])) < 0.005 for d in expected)


def test_a_plan_naming_an_unknown_competitor_is_refused_with_file_row_and_known_brands(tmp_path):
    db = str(tmp_path / "c.duckdb")
    plan = tmp_path / "plan.csv"
    plan.write_text((FIXTURES / "plan.csv").read_text().replace("Beanhaus;Kettle & Co", "Beanhaus;Telwick"))
    result = CliRunner().invoke(cli, ["campaigns", "import", str(FIXTURES / "google_ads_ui.csv"), "--plan", str(plan),
                                      "--db", db])
    assert result.exit_code == 2, result.output
    assert ("plan.csv, row 3, column 'competitors': unknown brand 'Telwick'; the known brands are: "
            "Brewly, Beanhaus, Kettle & Co") in result.output
    assert "row 4" not in result.output  # "Beanhaus; Kettle & Co" there is fine
    with Store.open(db) as store, store.native() as con:  # nothing of either file stored
        assert con.execute("SELECT count(*) FROM spend").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM campaign_plans").fetchone() == (0,)


def test_a_spend_file_or_plan_for_an_unknown_brand_is_refused(tmp_path):
    db = str(tmp_path / "c.duckdb")
    spend = tmp_path / "spend.csv"
    spend.write_text((FIXTURES / "canonical.csv").read_text().replace(",Brewly,USD,250,", ",Nope,USD,250,"))
    result = CliRunner().invoke(cli, ["campaigns", "import", str(spend), "--db", db])
    assert result.exit_code == 2, result.output
    assert "spend.csv, row 4, column 'brand': unknown brand 'Nope'; the known brands are: Brewly" in result.output
    plan = tmp_path / "plan.toml"
    plan.write_text((FIXTURES / "plan.toml").read_text().replace('"Beanhaus"', '"Beenhaus"', 1))
    result = CliRunner().invoke(cli, ["campaigns", "import", str(FIXTURES / "canonical.csv"), "--plan", str(plan),
                                      "--db", db])
    assert result.exit_code == 2 and "unknown brand 'Beenhaus'" in result.output, result.output


def test_without_configured_brands_the_stored_ones_are_known(tmp_path, monkeypatch):
    monkeypatch.delenv("LISTENER_CONFIG")
    db = tmp_path / "c.duckdb"
    refused = CliRunner().invoke(cli, ["campaigns", "import", str(FIXTURES / "canonical.csv"), "--db", str(db)])
    assert refused.exit_code == 2 and "no brand is configured or has stored mentions" in refused.output
    with Store.open(db) as store:
        save(store, [mention("b1", "Brewly is great", datetime(2026, 3, 2, 12, tzinfo=timezone.utc),
                             brand="Brewly")])
    assert invoke("campaigns", "import", str(FIXTURES / "canonical.csv"), "--db", str(db)).exit_code == 0


def test_a_brand_with_stored_mentions_is_known_to_the_import_as_to_every_command(tmp_path):
    """One rule (listener.cli_support.known_brands): configured brands and those with
    stored mentions, for 'campaigns import' as for every --brand."""
    db = tmp_path / "c.duckdb"
    with Store.open(db) as store:
        save(store, [mention("t1", "Telwick is fine", datetime(2026, 3, 2, 12, tzinfo=timezone.utc),
                             brand="Telwick")])
    plan = tmp_path / "plan.csv"
    plan.write_text((FIXTURES / "plan.csv").read_text().replace("Beanhaus;Kettle & Co", "Beanhaus;Telwick"))
    assert invoke("mood", "--brand", "telwick", "--db", str(db)).exit_code == 0
    imported = invoke("campaigns", "import", str(FIXTURES / "google_ads_ui.csv"), "--plan", str(plan), "--db", str(db))
    assert imported.exit_code == 0, imported.output


SCORER = VaderScorer()


def save(store, mentions):
    store.save_batch(mentions, SCORER.score([m.text for m in mentions]), source="test", brand=mentions[0].brand,
                     checkpoint=None, scorer=SCORER.name, scorer_version=SCORER.version,
                     now=datetime(2026, 3, 5, tzinfo=timezone.utc))


def test_campaign_daily_spend_is_exact_decimal_also_after_upgrading_a_v2_database(tmp_path):
    db = tmp_path / "c.duckdb"
    assert invoke("campaigns", "import", str(FIXTURES / "canonical.csv"), "--db", str(db)).exit_code == 0
    query = "SELECT typeof(spend), sum(spend)::VARCHAR FROM v_campaign_daily GROUP BY 1"
    with Store.open(db) as store, store.native() as con:
        assert con.execute(query).fetchall() == [("DECIMAL(38,6)", "3840.040000")]
        # A database made by the previous release: the v2 view summed spend as DOUBLE.
        con.execute(views.V_CAMPAIGN_DAILY.replace("sum(spend) AS spend", "sum(spend)::DOUBLE AS spend")
                    .replace("coalesce(sd.spend, 0) AS spend", "coalesce(sd.spend, 0.0) AS spend"))
        assert con.execute(query).fetchall()[0][0] == "DOUBLE"
        con.execute("DELETE FROM schema_version WHERE version > 2")
    with Store.open(db) as store, store.native() as con:  # opening migrates it
        assert con.execute(query).fetchall() == [("DECIMAL(38,6)", "3840.040000")]


def test_exports_write_utc_times_with_their_zone(tmp_path):
    db = tmp_path / "c.duckdb"
    at = datetime(2026, 3, 2, 6, 0, 0, 250000, tzinfo=timezone.utc)
    with Store.open(db) as store:
        save(store, [mention("p1", "Brewly is great", at, brand="Brewly"),
                     mention("p2", "Brewly is awful", at + timedelta(hours=5), brand="Brewly")])
    for fmt in ("csv", "parquet"):
        result = CliRunner().invoke(cli, ["export", "--format", fmt, str(tmp_path / fmt), "--db", str(db)])
        assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "csv" / "mentions.csv").read_text())))
    assert [r["created_at"] for r in rows] == ["2026-03-02T06:00:00.250000Z", "2026-03-02T11:00:00.250000Z"]
    hours = list(csv.DictReader(io.StringIO((tmp_path / "csv" / "hourly_mood.csv").read_text())))
    assert all(r["hour"].endswith("Z") for r in hours)
    # Read in another session time zone, the CSV still gives the same instants.
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")
    assert con.execute(f"SELECT min(created_at) FROM read_csv_auto('{tmp_path / 'csv' / 'mentions.csv'}')"
                       ).fetchone()[0] == at
    table = pq.read_table(tmp_path / "parquet" / "mentions.parquet")
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    assert table.column("created_at").to_pylist()[0] == at


def test_stored_plans_come_back_as_the_same_typed_plans(tmp_path):
    """One plan model through storage: what the plan file gave is what the report loads
    (lineage and account time zone included), not dicts to rebuild by hand."""
    from inputs.plan import read_plan
    from storage.campaigns import save_plans
    from storage.report_data import plans

    read = read_plan(FIXTURES / "plan.csv")
    with Store.open(tmp_path / "m.duckdb") as store:
        save_plans(store, read, datetime(2026, 4, 1, tzinfo=timezone.utc))
        loaded = plans(store)
    key = lambda p: (p.flight_start, p.campaign_id)  # noqa: E731 - the load order
    assert loaded == sorted(read, key=key)


def test_a_plan_built_in_code_is_checked_by_the_same_rules_as_a_plan_file(tmp_path):
    from analysis.roi import CampaignPlan  # the plan the analysis takes is the plan file's
    from inputs.plan import PlanError, read_plan

    with pytest.raises(ValueError, match=r"goal_value: must be > 0, got -5"):
        CampaignPlan("c1", "Brewly", datetime(2026, 3, 1).date(), datetime(2026, 3, 9).date(), goal_value=-5)
    plan = tmp_path / "plan.csv"
    text = (FIXTURES / "plan.csv").read_text()
    assert ",5," in text
    plan.write_text(text.replace(",5,", ",-5,", 1))
    with pytest.raises(PlanError, match=r"must be > 0, got -5"):
        read_plan(plan)
