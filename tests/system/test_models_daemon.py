"""Model requests while the daemon holds the database: queued by the commands, applied by
a running ``listener run`` (a subprocess, real signals, a real database file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from storage.models import requests_path
from tests.system.daemon import Daemon, wait_for_snapshot
from tests.listener.model_db import db_rows, expected_hourly, make_db, stored_hourly


def listener(directory: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    return subprocess.run([sys.executable, "-m", "listener.cli", "--config", str(directory / "listener.toml"), *args],
                          capture_output=True, text=True, env=env, timeout=600, cwd=directory)


def test_the_daemon_trains_promotes_and_rescores_what_is_queued(tmp_path):
    directory = make_db(tmp_path / "acme", extra_config="[hourly]\nminute = 5\n")
    daemon = Daemon(directory)
    daemon.wait_for("listening:")

    queued = listener(directory, "model", "train", "--brand", "acme")
    assert queued.returncode == 0, queued.stderr
    assert "queued training for Acme" in queued.stdout and "model status" in queued.stdout
    trained = daemon.wait_for("model train brand=Acme version=")
    version = trained[0].split("version=")[1].split()[0]
    wait_for_snapshot(directory, trained)

    queued = listener(directory, "model", "promote", "--brand", "Acme")
    assert queued.returncode == 0, queued.stderr
    assert f"queued the promotion of model {version} for Acme" in queued.stdout
    with open(requests_path(directory / "listener.duckdb"), "a", encoding="utf-8") as inbox:
        inbox.write('{"action": "promote", "brand": 5}\n')
    daemon.wait_for("model request not applied")
    done = daemon.wait_for("rescore done")
    daemon.wait_for(f"model promote brand=Acme: model {version} in effect, replacing VADER")
    wait_for_snapshot(directory, done)
    status = json.loads(listener(directory, "model", "status", "--json").stdout)["brands"][0]
    assert status["in_effect"]["scorer"] == "learned" and status["in_effect"]["version"] == version
    assert status["rescore"] is None

    assert daemon.stop() == 0
    assert db_rows(directory, "SELECT DISTINCT scorer, scorer_version FROM scores WHERE active") == [
        ("learned", version)]
    assert db_rows(directory, "SELECT kind, detail FROM runs WHERE kind = 'promote'") == [
        ("promote", f"model {version} in effect, replacing VADER")]
    assert stored_hourly(directory) == expected_hourly(directory)
    assert not requests_path(directory / "listener.duckdb").exists()
