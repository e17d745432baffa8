"""The listener command, as users run it: real subprocesses on real files."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import click
import duckdb
import pytest
from click.testing import CliRunner

from connectors.base import utc_now
from listener.cli import cli
from storage.store import Store
from tests.fakes.hn_api import FakeAlgolia
from tests.fakes.http import FakeServer, Reply
from tests.fakes.x_api import COUNTS, FakeXApi, problem

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
def demo_dir(demo_run):
    """The suite's one demo run (tests/conftest.py), shared with other processes: read only."""
    assert AS_OF == demo_run.summary["mood"]["as_of"]
    return demo_run.directory, demo_run.summary, demo_run


def read_only(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def test_every_command_has_help_and_a_readme_entry():
    readme = (ROOT / "README.md").read_text()
    runner = CliRunner()
    assert runner.invoke(cli, ["-h"]).exit_code == 0
    for name in cli.list_commands(click.Context(cli)):  # loads each command (they load lazily)
        command = cli.get_command(click.Context(cli), name)
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
    with read_only(directory / "listener.duckdb") as con:
        count = con.execute(
            "SELECT count(*) FROM mentions WHERE brand = 'Brewly' AND created_at >= TIMESTAMP '2026-11-19 15:30' "
            "AND created_at < TIMESTAMP '2026-11-20 15:30' AND NOT own").fetchone()[0]  # the brand's replies are not mood
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
    with read_only(directory / "listener.duckdb") as con:
        hourly = con.execute("SELECT sum(mentions) FROM hourly_mood").fetchone()[0]
        threads = con.execute("SELECT count(*), sum(mentions) FROM conversations").fetchone()
    assert hourly == sum(summary["mentions"].values())
    assert threads[1] == hourly and threads[0] < hourly


def test_the_demo_never_replaces_another_database(tmp_path):
    # That a rerun replaces an earlier demo's database: tests/system/test_secrets.py,
    # whose demo runs over a copy of the suite's shared one (a demo costs tens of CPU seconds).
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
    assert bad.returncode == 2 and "--campaign: no campaign named 'nope'" in bad.stderr
    assert listener("--db", db, "report", "--timezone", "Mars/Olympus").returncode == 2


# -- a failed run leaves a trace, and one clear line ------------------------------------

PULL_CONFIG = """
[database]
path = "listener.duckdb"
[[brands]]
name = "Brewly"
terms = ["brewly"]
"""
UNIX_TIME = re.compile(r"\b1[0-9]{9}\b")
ISO_WINDOW = re.compile(r"\[20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ, 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ\)")


def runs_of(config):
    status = CliRunner(env={"LISTENER_DB": None}).invoke(cli, ["--config", str(config), "status", "--json"])
    assert status.exit_code == 0, status.output
    return json.loads(status.stdout)["runs"]


def test_a_source_that_cannot_start_is_recorded_as_a_failed_run(tmp_path):
    config = tmp_path / "listener.toml"
    config.write_text(PULL_CONFIG + '[sources.x]\nbearer_token_env = "NO_SUCH_X_TOKEN_VARIABLE"\n')
    runner = CliRunner(env={"LISTENER_DB": None, "NO_SUCH_X_TOKEN_VARIABLE": None})
    result = runner.invoke(cli, ["--config", str(config), "pull"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: x: no X bearer token: the environment variable NO_SUCH_X_TOKEN_VARIABLE is not set or empty "
        "(check NO_SUCH_X_TOKEN_VARIABLE)"]
    (run,) = runs_of(config)
    assert (run["kind"], run["source"], run["brand"], run["status"]) == ("start", "x", None, "failed")
    assert "NO_SUCH_X_TOKEN_VARIABLE" in run["error"] and run["finished_at"] is not None


def test_a_setting_out_of_its_declared_range_is_a_config_error_before_anything_is_written(tmp_path):
    config = tmp_path / "listener.toml"
    config.write_text(PULL_CONFIG + "[sources.hackernews]\nhits_per_page = 0\n")
    result = CliRunner(env={"LISTENER_DB": None}).invoke(cli, ["--config", str(config), "pull"])
    assert result.exit_code == 2 and "sources.hackernews.hits_per_page: must be a whole number" in result.stderr
    assert not (tmp_path / "listener.duckdb").exists()


def test_a_setting_the_connector_refuses_at_start_is_a_config_error_recorded_as_a_failed_run(tmp_path):
    # Only the demo can judge its history against the clock: the simulated world's start.
    config = tmp_path / "listener.toml"
    config.write_text(PULL_CONFIG + "[sources.demo]\nhistory_days = 100000\n")
    result = CliRunner(env={"LISTENER_DB": None}).invoke(cli, ["--config", str(config), "pull"])
    assert result.exit_code == 2 and "history_days" in result.stderr, result.stderr
    (run,) = runs_of(config)
    assert (run["kind"], run["source"], run["status"]) == ("start", "demo", "failed")
    assert "history_days" in run["error"]


def test_a_failure_of_the_platform_counts_after_a_pull_is_recorded_too(tmp_path):
    with FakeXApi(utc_now, bearer_token="token-for-the-fake") as api:
        api.script(Reply(404, problem(404, "Not Found", "gone")), path=COUNTS)
        config = tmp_path / "listener.toml"
        config.write_text(PULL_CONFIG + f'[sources.x]\nbase_url = "{api.url}"\nbearer_token_env = "FAKE_X_TOKEN"\n')
        runner = CliRunner(env={"LISTENER_DB": None, "FAKE_X_TOKEN": "token-for-the-fake"})
        result = runner.invoke(cli, ["--config", str(config), "pull"])
    assert result.exit_code == 1 and "Error: x Brewly: x counts: X answered 404" in result.stderr
    runs = {run["kind"]: run for run in runs_of(config)}
    assert runs["pull"]["status"] == "ok"
    assert runs["volume"]["status"] == "failed" and "x counts: X answered 404" in runs["volume"]["error"]


def test_a_network_failure_is_one_line_with_iso_times_and_no_doubled_label(tmp_path):
    with FakeServer() as server:
        FakeAlgolia().install(server, *[Reply(503, "busy", headers={"Retry-After": "0"})] * 8)  # 2 runs of 4 tries
        config = tmp_path / "listener.toml"
        config.write_text(PULL_CONFIG + f'[sources.hackernews]\nbase_url = "{server.url}"\n')
        quiet = listener("--config", str(config), "pull", cwd=tmp_path)
        verbose = listener("--config", str(config), "-v", "pull", cwd=tmp_path)
        attempts = len(server.requests)
    assert quiet.returncode == 1 and verbose.returncode == 1 and attempts == 8
    (line,) = quiet.stderr.splitlines()
    assert line.startswith("Error: hackernews Brewly: hackernews search 'brewly' [") and "HTTP 503" in line
    assert ISO_WINDOW.search(line) and not UNIX_TIME.search(quiet.stderr), line
    # With -v the retries show, each naming its request once.
    retries = [entry for entry in verbose.stderr.splitlines() if "; retry " in entry]
    assert len(retries) == 3 and all(entry.count("hackernews search") == 1 for entry in retries), retries
    assert ISO_WINDOW.search(retries[0]) and not UNIX_TIME.search(verbose.stderr)


def test_a_retried_x_search_names_itself_once(tmp_path):
    with FakeXApi(utc_now, bearer_token="token-for-the-fake") as api:
        reset = {"x-rate-limit-reset": str(int(time.time()))}  # "now": each retry waits about a second
        api.script(*[Reply(429, problem(429, "Too Many Requests", "Too Many Requests"), reset)] * 4)
        config = tmp_path / "listener.toml"
        config.write_text(PULL_CONFIG + f'[sources.x]\nbase_url = "{api.url}"\nbearer_token_env = "FAKE_X_TOKEN"\n')
        proc = listener("--config", str(config), "-v", "pull", cwd=tmp_path, env={"FAKE_X_TOKEN": "token-for-the-fake"})
    assert proc.returncode == 1
    retries = [entry for entry in proc.stderr.splitlines() if "; retry " in entry]
    assert len(retries) == 3, proc.stderr
    assert all("x search: 429 rate limited by X; retry" in entry for entry in retries), retries
    assert "x search: x search" not in proc.stderr


@pytest.mark.parametrize("module", sorted(
    ["listener.cli", "listener.cli_support", "listener.commands_serve"]
    + [f"listener.cli.{path.stem}" for path in (ROOT / "listener" / "cli").glob("*.py")
       if path.stem not in ("__init__", "__main__")]))
def test_every_command_module_imports_first_in_a_fresh_interpreter(module):
    # listener.cli's __init__ imports every command module: one that imported the package
    # back (listener.commands_serve once did, through listener.cli's support module) loads
    # when listener.cli comes first and fails when it comes first itself.
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
