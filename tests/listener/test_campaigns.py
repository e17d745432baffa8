"""listener campaigns import/list through the CLI, on a real database file."""

import json
from datetime import datetime, timezone
from pathlib import Path

from click.testing import CliRunner

from connectors.demo_spend import write_google_ads_export
from connectors.demo_world import default_world
from listener.cli import cli
from storage.store import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "spend"


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
