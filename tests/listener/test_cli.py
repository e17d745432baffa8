"""The listener command, as users run it: real subprocesses on real files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from listener.cli import cli
from storage.store import Store

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-20T15:30:00+00:00"


def listener(*args, env=None, cwd=None, check=False):
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    run_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "listener.cli", *args], capture_output=True, text=True,
                          env=run_env, cwd=cwd, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo")
    proc = listener("demo", "--dir", str(directory), "--as-of", AS_OF, "--json", check=True)
    return directory, json.loads(proc.stdout), proc


def test_every_command_has_help_and_a_readme_entry():
    readme = (ROOT / "README.md").read_text()
    runner = CliRunner()
    assert runner.invoke(cli, ["-h"]).exit_code == 0
    for name, command in cli.commands.items():
        result = runner.invoke(cli, [name, "-h"])
        assert result.exit_code == 0, name
        assert command.help and len(command.help) > 20, f"{name} lacks a docstring"
        assert f"`listener {name}" in readme, f"README does not document 'listener {name}'"


def test_the_demo_end_to_end(demo_dir):
    directory, summary, proc = demo_dir
    assert (directory / "listener.duckdb").exists()
    assert (directory / "google-ads-campaign-report.csv").read_text().startswith("Campaign report")
    assert json.loads((directory / "demo-truth.json").read_text())["campaigns"][0]["nss_lift"] == 12.0
    assert set(summary["mentions"]) == {"Brewly", "Beanhaus", "Kettle & Co"}
    # ~800, 500 and 300 a day for 60 days
    assert 40_000 < summary["mentions"]["Brewly"] < 56_000
    assert 24_000 < summary["mentions"]["Beanhaus"] < 36_000
    assert 14_000 < summary["mentions"]["Kettle & Co"] < 22_000
    assert "Collecting and scoring" in proc.stderr
    mood = summary["mood"]
    assert mood["brand"] == "Brewly" and mood["as_of"] == AS_OF
    assert mood["baseline_7d"]["mentions"] > 4000


def test_mood_json_reads_the_demo_database(demo_dir):
    directory, summary, _ = demo_dir
    db = str(directory / "listener.duckdb")
    proc = listener("--db", db, "mood", "--json", "--as-of", AS_OF, check=True)
    brands = {b["brand"]: b for b in json.loads(proc.stdout)["brands"]}
    assert set(brands) == {"Brewly", "Beanhaus", "Kettle & Co"}
    brewly = brands["Brewly"]
    assert brewly == summary["mood"]
    day = brewly["last_24h"]
    assert day["positive"] + day["neutral"] + day["negative"] == day["scored"]
    assert day["scored"] + day["duplicates"] + day["unscored"] == day["mentions"]
    assert day["unscored"] == 0 and day["duplicates"] < 0.15 * day["mentions"]
    assert day["nss"] == pytest.approx(100 * (day["positive"] - day["negative"]) / day["scored"], abs=0.01)
    assert 0 < day["nss_se"] < 6
    # The same numbers straight from the file.
    with Store.open(directory / "listener.duckdb") as store, store.native() as con:
        count = con.execute(
            "SELECT count(*) FROM mentions WHERE brand = 'Brewly' AND created_at >= TIMESTAMP '2026-11-19 15:30' "
            "AND created_at < TIMESTAMP '2026-11-20 15:30'").fetchone()[0]
    assert count == day["mentions"]
    # --db after the command name, and LISTENER_DB, read the same database.
    after = listener("mood", "--brand", "brewly", "--db", db, "--as-of", AS_OF, "--json", check=True)
    env = listener("mood", "--brand", "Brewly", "--as-of", AS_OF, "--json", env={"LISTENER_DB": db}, check=True)
    assert json.loads(after.stdout) == json.loads(env.stdout) == {"brands": [brewly]}


def test_status_and_the_hourly_rollup_of_the_demo(demo_dir):
    directory, summary, _ = demo_dir
    report = json.loads(listener("status", "--json", "--db", str(directory / "listener.duckdb"), check=True).stdout)
    assert report["pending_hours"] == 0
    assert {r["kind"] for r in report["runs"]} == {"pull", "hourly"}
    assert all(r["status"] == "ok" for r in report["runs"])
    assert sum(r["mentions"] for r in report["sources"]) == sum(summary["mentions"].values())
    assert {c["brand"] for c in report["cursors"]} == {"Brewly", "Beanhaus", "Kettle & Co"}
    with Store.open(directory / "listener.duckdb") as store, store.native() as con:
        hourly = con.execute("SELECT sum(mentions) FROM hourly_mood").fetchone()[0]
        threads = con.execute("SELECT count(*), sum(mentions) FROM conversations").fetchone()
    assert hourly == sum(summary["mentions"].values())
    assert threads[1] == hourly and threads[0] < hourly


def test_a_rerun_replaces_the_demo_and_never_another_database(tmp_path, demo_dir):
    _, summary, _ = demo_dir
    again = json.loads(listener("demo", "--dir", str(tmp_path), "--as-of", AS_OF, "--json", check=True).stdout)
    again = json.loads(listener("demo", "--dir", str(tmp_path), "--as-of", AS_OF, "--json", check=True).stdout)
    assert again["mentions"] == summary["mentions"] and again["new"] == sum(summary["mentions"].values())

    other = tmp_path / "other"
    other.mkdir()
    Store.open(other / "listener.duckdb").close()
    proc = listener("demo", "--dir", str(other))
    assert proc.returncode == 1
    assert "was not made by 'listener demo'" in proc.stderr and "Traceback" not in proc.stderr
    assert (other / "listener.duckdb").exists()


def test_config_errors_exit_2_and_name_every_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[brands]]\nname = "Acme"\ncompetitors = ["Nobody"]\n[hourly]\nminute = 99\n')
    proc = listener("--config", str(bad), "mood")
    assert proc.returncode == 2
    assert "has 3 problems" in proc.stderr
    for key in ("brands[0] (Acme): needs at least one of terms", "brands (Acme).competitors: 'Nobody'", "hourly.minute:"):
        assert key in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_usage_errors_exit_2(tmp_path):
    assert listener("mood", "--as-of", "yesterday-ish").returncode == 2
    assert listener("no-such-command").returncode == 2
    assert listener("status", "--runs", "0").returncode == 2


def test_a_missing_database_is_a_usage_error(tmp_path):
    proc = listener("--db", str(tmp_path / "none.duckdb"), "status")
    assert proc.returncode == 2 and "no database at" in proc.stderr
    assert not (tmp_path / "none.duckdb").exists()


def test_init_writes_a_starter_that_loads_and_never_overwrites(tmp_path):
    path = tmp_path / "listener.toml"
    assert listener("init", str(path)).returncode == 0
    original = path.read_text()
    proc = listener("init", str(path))
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert path.read_text() == original
    # The default config file in the working directory is picked up.
    empty = listener("mood", cwd=tmp_path)
    assert empty.returncode == 2 and str(tmp_path / "listener.duckdb") in empty.stderr


def test_the_demo_report_detects_the_true_lift(demo_dir):
    directory, summary, proc = demo_dir
    truth = json.loads((directory / "demo-truth.json").read_text())["campaigns"][0]
    report = json.loads((directory / "report.json").read_text())
    (campaign,) = report["campaigns"]
    assert campaign["verdict"] == "effect detected"
    effect = campaign["headline_effect"]
    assert effect["ci_low"] < truth["nss_lift"] < effect["ci_high"], effect
    assert campaign["headline"]["method"] in ("did", "its")
    assert campaign["efficiency"]["cpinc"] is not None
    assert summary["campaigns"][0]["verdict"] == "effect detected"
    html = (directory / "report.html").read_text()
    assert "effect detected" in html and "http://" not in html and "https://" not in html.replace("https://demo.invalid", "")
    assert "effect detected" in (directory / "report.md").read_text()


def test_report_command_reads_the_demo_database(demo_dir, tmp_path):
    directory, _, _ = demo_dir
    db = str(directory / "listener.duckdb")
    as_json = json.loads(listener("--db", db, "report", "--format", "json", "--as-of", AS_OF, check=True).stdout)
    stored = json.loads((directory / "report.json").read_text())
    assert as_json["campaigns"][0]["headline_effect"] == stored["campaigns"][0]["headline_effect"]
    out = tmp_path / "r.html"
    assert listener("--db", db, "report", "--out", str(out), "--as-of", AS_OF).returncode == 0
    assert out.read_text().lstrip().lower().startswith("<!doctype html")
    bad = listener("--db", db, "report", "--campaign", "nope", "--format", "json")
    assert bad.returncode == 1 and "no plan for campaign 'nope'" in bad.stderr
    assert listener("--db", db, "report", "--timezone", "Mars/Olympus").returncode == 2
