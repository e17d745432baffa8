"""``database.url`` and its companions in the config: cluster mode on, with its password
from the environment only; every mistake named by its key, exit 2, nothing written."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from listener.cli import cli
from listener.config import ClusterSettings, ConfigError, parse_settings

pytestmark = pytest.mark.cluster

BRAND = '[[brands]]\nname = "Brewly"\nterms = ["brewly"]\n[sources.demo]\nseed = 1\nhistory_days = 1\n'


def settings(database: dict):
    return parse_settings({"database": database}, base_dir=Path("/tmp"), origin="listener.toml")


def test_without_a_url_nothing_changes():
    assert settings({"path": "x.duckdb"}).cluster is None
    assert parse_settings({}, base_dir=Path("/tmp"), origin="-").cluster is None


def test_a_url_switches_cluster_mode_on_with_the_password_from_the_environment():
    cluster = settings({"url": "postgresql://listener@db.example:5432/listen", "password_env": "PG_PASS",
                        "lease_seconds": 60}).cluster
    assert cluster == ClusterSettings("postgresql://listener@db.example:5432/listen", "PG_PASS", 60)
    assert cluster.password({"PG_PASS": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="database.password_env: environment variable PG_PASS is not set"):
        cluster.password({})


@pytest.mark.parametrize(("database", "problem"), [
    ({"url": "postgresql://listener:s3cret@db/listen"}, "database.url: must not contain the password"),
    ({"url": "postgresql://db/listen?password=s3cret"}, "database.url: must not contain the password"),
    ({"url": "mysql://db/listen"}, "database.url: must be a PostgreSQL URL"),
    ({"url": 5}, "database.url: must be a str"),
    ({"url": "postgresql://db/x", "password": "s3cret"}, "database.password: secrets must not be written"),
    ({"url": "postgresql://db/x", "password_env": "not a name"}, "database.password_env: must name an environment"),
    ({"url": "postgresql://db/x", "lease_seconds": 1}, "database.lease_seconds: must be a whole number from 5 to 86400"),
    ({"password_env": "PG_PASS"}, "database.password_env: only applies with database.url"),
    ({"budgets": {"x": {"posts": 5}}}, "database.budgets: only applies with database.url"),
    ({"url": "postgresql://db/x", "budgets": {"x": {"posts": 5}}}, "database.budgets.x: no [sources.x] table"),
    ({"url": "postgresql://db/x", "budgets": {"x": {"posts": 0}}}, "database.budgets.x.posts: must be a whole number from 1"),
    ({"url": "postgresql://db/x", "budgets": {"x": {"post": 5}}}, "database.budgets.x.post: unknown key"),
    ({"path": ""}, "database.path: must not be empty"),
    ({"snapshot_max_age_seconds": 0}, "database.snapshot_max_age_seconds: must be a whole number from 1 to 3600"),
])
def test_each_mistake_is_named_by_its_key(database, problem):
    with pytest.raises(ConfigError) as raised:
        settings(database)
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_run_refuses_a_password_in_the_url_with_exit_2_and_writes_nothing(tmp_path):
    (tmp_path / "listener.toml").write_text(f'[database]\npath = "listener.duckdb"\nurl = "postgresql://u:pw@127.0.0.1/x"\n{BRAND}')
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "listener.toml"), "run"])
    assert result.exit_code == 2 and "database.url: must not contain the password" in result.output
    assert not (tmp_path / "listener.duckdb").exists()


def test_run_with_an_unset_password_variable_exits_2_naming_the_key_before_any_write(tmp_path, monkeypatch):
    monkeypatch.delenv("LISTENER_TEST_PG_PASS", raising=False)
    (tmp_path / "listener.toml").write_text(
        f'[database]\npath = "listener.duckdb"\nurl = "postgresql://u@127.0.0.1/x"\npassword_env = "LISTENER_TEST_PG_PASS"\n{BRAND}')
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "listener.toml"), "run"])
    assert result.exit_code == 2, result.output
    assert "database.password_env: environment variable LISTENER_TEST_PG_PASS is not set" in result.output
    assert not (tmp_path / "listener.duckdb").exists()


def test_run_against_an_unreachable_server_is_a_runtime_error_exit_1(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"postgresql://listener@127.0.0.1:{s.getsockname()[1]}/listener"
    (tmp_path / "listener.toml").write_text(f'[database]\npath = "listener.duckdb"\nurl = "{url}"\n{BRAND}')
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "listener.toml"), "run"])
    assert result.exit_code == 1, result.output
    assert "PostgreSQL: connecting failed" in result.output


def test_a_budget_is_per_source_with_a_window():
    cluster = parse_settings({"database": {"url": "postgresql://db/x", "budgets": {"x": {"posts": 5000}}},
                              "sources": {"x": {}}}, base_dir=Path("/tmp"), origin="-").cluster
    assert dict(cluster.budgets) == {"x": (5000, 720)}


def test_a_budget_needs_a_source_that_caps_its_runs():
    with pytest.raises(ConfigError, match="database.budgets.demo: sources.demo is not billed per post"):
        parse_settings({"database": {"url": "postgresql://db/x", "budgets": {"demo": {"posts": 50}}},
                        "sources": {"demo": {}}}, base_dir=Path("/tmp"), origin="-")


def test_cluster_mode_without_the_cluster_extra_is_a_setup_error_naming_it(tmp_path):
    # A single-machine install has no psycopg: asking for cluster mode says which extra to
    # install (exit 2) instead of a traceback, before anything is written. A process of its
    # own, where psycopg cannot be imported.
    import subprocess
    import sys

    from tests.timing import HANG_GUARD

    (tmp_path / "listener.toml").write_text(
        '[database]\npath = "l.duckdb"\nurl = "postgresql://listener@127.0.0.1:9/listener"\n\n'
        '[[brands]]\nname = "Brewly"\nterms = ["brewly"]\n', encoding="utf-8")
    script = ("import sys; sys.modules['psycopg'] = None; sys.argv = ['listener', *sys.argv[1:]]; "
              "from listener.cli import main; main()")
    for args in (["run"], ["migrate", "--to", "postgresql://listener@127.0.0.1:9/listener"]):
        proc = subprocess.run([sys.executable, "-c", script, *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=HANG_GUARD)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "needs the [cluster] extra" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["listener.toml"]
