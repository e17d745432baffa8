"""The brand's own accounts and business hours in the config, the pipeline marking the
brand's posts however they were found, and ``listener care`` through click's CliRunner
on a real DuckDB file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from click.testing import CliRunner

from analysis.sentiment import VaderScorer
from connectors.base import Batch, BrandQuery, Cursor, Mention
from listener.cli import cli
from listener.config import load_file
from listener.errors import ConfigError
from listener.pipeline import Pipeline
from storage.store import Store
from tests.conftest import FixedClock
from tests.storage.test_care import MON, post, save

CONFIG = """
[database]
path = "{db}"

[[brands]]
name = "Acme"
terms = ["acme"]
own_accounts = {{ x = ["@Acme_Care"], mastodon = ["@acme@mastodon.social"] }}
business_hours = "Mon-Fri 09:00-18:00 Europe/Berlin"
care_goals = {{ response_rate = 0.4, reply_hours = 2 }}
"""


def write_config(tmp_path, text: str = CONFIG):
    path = tmp_path / "listener.toml"
    path.write_text(text.format(db=tmp_path / "l.duckdb"))
    return path


def test_own_accounts_and_business_hours_are_read(tmp_path):
    brand = load_file(write_config(tmp_path)).brand("Acme")
    assert brand.query.accounts_on("x") == ("@Acme_Care",) and brand.query.accounts_on("reddit") == ()
    assert str(brand.business_hours) == "Mon,Tue,Wed,Thu,Fri 09:00-18:00 Europe/Berlin"


@pytest.mark.parametrize(("line", "expected"), [
    ('own_accounts = { nope = ["a"] }', r"brands\[0\] \(Acme\)\.own_accounts\.nope: no connector named 'nope'"),
    ('own_accounts = { x = "acme" }', r"brands\[0\] \(Acme\)\.own_accounts\.x: must be a list of strings"),
    ('own_accounts = { mastodon = ["acme"] }', r"own_accounts\.mastodon: 'acme' is not a full Mastodon handle"),
    ('own_accounts = { x = ["has space"] }', r"own_accounts\.x: 'has space' is not an X user name"),
    ('own_accounts = ["acme"]', r"brands\[0\] \(Acme\)\.own_accounts: must be a table"),
    ('business_hours = "weekdays"', r"business_hours: 'weekdays' must look like"),
    ('business_hours = "Mon-Fri 18:00-09:00 UTC"', r"business_hours: .*must end after it starts"),
    ('business_hours = "Fri-Mon 09:00-18:00 UTC"', r"business_hours: .*runs backwards"),
    ('business_hours = "Mon-Fri 09:00-18:00 Mars/Olympus"', r"business_hours: .*'Mars/Olympus' is not a time zone"),
    ("business_hours = 9", r"business_hours: must be a string"),
    ("care_goals = { response_rate = 1.5 }", r"care_goals\.response_rate: must be between 0 and 1, got 1.5"),
    ("care_goals = { speed = 1 }", r"care_goals\.speed: unknown key \(expected one of: net_positive_per_1000, "),
])
def test_bad_own_accounts_or_business_hours_name_the_key(tmp_path, line, expected):
    text = CONFIG.replace('own_accounts = {{ x = ["@Acme_Care"], mastodon = ["@acme@mastodon.social"] }}\n', "")
    text = text.replace("care_goals = {{ response_rate = 0.4, reply_hours = 2 }}\n", "")
    text = text.replace('business_hours = "Mon-Fri 09:00-18:00 Europe/Berlin"\n', "")
    path = write_config(tmp_path, text + line.replace("{", "{{").replace("}", "}}") + "\n")
    with pytest.raises(ConfigError, match=expected):
        load_file(path)
    result = CliRunner().invoke(cli, ["care", "--config", str(path)])
    assert result.exit_code == 2


class Found:
    """A connector that returns what a platform search found, the brand's reply among it."""

    name = "x"

    def __init__(self, mentions: list[Mention]) -> None:
        self.mentions = mentions

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        yield Batch(tuple(self.mentions), checkpoint={"done": True})

    def close(self) -> None:
        pass


def test_a_post_by_a_brand_account_found_by_search_is_marked_own_and_kept(tmp_path):
    query = load_file(write_config(tmp_path)).brand("Acme").query
    found = [Mention("x", "1", "Acme", MON, "acme broke my order", author="carol", conversation_id="1"),
             # The brand's reply names no term: kept as its own, not rejected by the re-check.
             Mention("x", "2", "Acme", MON + timedelta(minutes=5), "So sorry, DM us!", author="acme_care",
                     conversation_id="1"),
             Mention("x", "3", "Acme", MON + timedelta(minutes=6), "unrelated", author="dave", conversation_id="9")]
    with Store.open(tmp_path / "p.duckdb") as store:
        result = Pipeline(store, VaderScorer(), FixedClock(MON)).pull(Found(found), query)
        with store.native() as db:
            rows = db.execute("SELECT id, own FROM mentions ORDER BY id").fetchall()
    assert rows == [("1", False), ("2", True)] and result.rejected == 1


@pytest.fixture
def database(tmp_path):
    path = write_config(tmp_path)
    with Store.open(tmp_path / "l.duckdb") as store:
        save(store, [
            post("a1", MON + timedelta(hours=1), "negative", "a"),
            post("a2", MON + timedelta(hours=1, minutes=30), "neutral", "a", own=True),
            post("a3", MON + timedelta(hours=2), "positive", "a"),
            post("b1", MON + timedelta(hours=3), "negative", "b"),
        ])
    return path


def test_listener_care_prints_the_figures_and_json(database):
    runner = CliRunner()
    now, since = (MON + timedelta(days=2)).isoformat(), MON.isoformat()
    result = runner.invoke(cli, ["care", "--config", str(database), "--since", since, "--until", now, "--json"])
    assert result.exit_code == 0, result.output
    acme = json.loads(result.stdout)["brands"][0]
    assert (acme["needing_reply"], acme["answered"], acme["resolved"], acme["started_negative"]) == (2, 1, 1, 2)
    assert acme["reply_hours_median"] == pytest.approx(0.5)  # Monday 10:00-10:30 Berlin
    assert acme["reply_effect"]["effect_nss_points"] is None  # two threads: nothing to compare yet
    assert [(g["goal"], g["target"], g["verdict"]) for g in acme["goals"]] == [
        ("response_rate", 0.4, "not yet clear"), ("reply_hours", 2.0, "met")]
    text = runner.invoke(cli, ["care", "--config", str(database), "--brand", "acme", "--since", since, "--until", now])
    assert text.exit_code == 0, text.output
    assert "Answered by the brand   1 of 2: 50%" in text.stdout
    assert "business hours: Mon,Tue,Wed,Thu,Fri 09:00-18:00 Europe/Berlin" in text.stdout
    assert "Not enough comparable threads" in text.stdout
    assert "median time to first reply, hours: 0.5 h (95 % range 0.5 h to 0.5 h) against a goal of at most 2.0 h: met" \
        in text.stdout


def test_listener_care_refuses_an_unknown_brand_and_a_backwards_period(database):
    runner = CliRunner()
    unknown = runner.invoke(cli, ["care", "--config", str(database), "--brand", "Nope"])
    assert unknown.exit_code == 2 and "Nope" in unknown.output
    backwards = runner.invoke(cli, ["care", "--config", str(database), "--since", "1d", "--until", "7d"])
    assert backwards.exit_code == 2 and "--until" in backwards.output


def test_the_demo_tells_the_care_story(demo_run):
    """Issue 15 item 5: the demo's care team answers threads with a known effect
    (demo-truth.json); ``listener care`` on the demo database recovers it within its
    interval, and the demo's report shows the care figures for the campaign's window."""
    truth = json.loads((demo_run.directory / "demo-truth.json").read_text())["care"][0]
    known = truth["effect"]
    proc = demo_run.listener("--db", str(demo_run.directory / "listener.duckdb"), "care", "--brand", truth["brand"],
                             "--since", known["start"], "--until", known["end"], "--json")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)["brands"][0]
    assert 0.2 < figures["response_rate"] < 0.45  # 60 % of negative, 35 % of questions, in business hours
    effect = figures["reply_effect"]
    low, high = effect["ci95"]
    assert low <= known["effect_nss_points"] <= high and low > 0
    report = json.loads((demo_run.directory / "report.json").read_text())
    (campaign,) = report["conversations"]
    assert campaign["business_hours"] == "Mon,Tue,Wed,Thu,Fri 09:00-18:00 America/New_York"
    assert campaign["answered"] > 100 and campaign["reply_effect"]["effect_nss_points"] is not None
    markdown = (demo_run.directory / "report.md").read_text()
    assert "### Conversations" in markdown and "Does answering turn the thread? +" in markdown


def test_import_marks_the_brands_own_posts_by_author(tmp_path):
    """``listener import --own-account``: a help-desk export whose agents' posts are the
    brand's own (no connector collects that source, so own_accounts cannot name it)."""
    config = write_config(tmp_path)
    rows = [
        {"id": "t1", "created_at": "2026-11-02T10:00:00Z", "text": "acme lost my order again, awful", "author": "ann",
         "conversation_id": "t1"},
        {"id": "t2", "created_at": "2026-11-02T10:30:00Z", "text": "@ann so sorry, we are on it", "author": "Agent.Jo",
         "conversation_id": "t1", "parent_id": "t1"},
        {"id": "t3", "created_at": "2026-11-02T11:00:00Z", "text": "acme fixed it, thanks!", "author": "ann",
         "conversation_id": "t1", "parent_id": "t2"},
    ]
    export = tmp_path / "helpdesk.jsonl"
    export.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runner = CliRunner()
    refused = runner.invoke(cli, ["--config", str(config), "import", str(export), "--source", "helpdesk",
                                  "--own-account", "agent.jo"])
    assert refused.exit_code == 2 and "--own-account needs --brand" in refused.output
    done = runner.invoke(cli, ["--config", str(config), "import", str(export), "--source", "helpdesk", "--brand", "Acme",
                               "--own-account", "agent.jo", "--json"])
    assert done.exit_code == 0, done.output
    with Store.open(tmp_path / "l.duckdb", read_only=True) as store, store.native() as db:
        own = dict(db.execute("SELECT id, own FROM mentions ORDER BY id").fetchall())
    # The agent's reply names no brand: kept as the brand's own post in its thread.
    assert own == {"t1": False, "t2": True, "t3": False}
    care = runner.invoke(cli, ["--config", str(config), "care", "--brand", "Acme", "--since", "2026-11-01",
                               "--until", "2026-11-03", "--json"])
    figures = json.loads(care.output)["brands"][0]
    assert (figures["needing_reply"], figures["answered"], figures["resolved"]) == (1, 1, 1)
