"""One error policy (listener.policy) for ``listener pull`` and the daemon: each error
class means one action and one exit code, whoever meets it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from connectors.base import utc_now
from connectors.errors import (
    AuthError, ConnectorError, FatalError, MalformedPayloadError, QueryError, RateLimitedError, RetryableError,
)
from inputs.mentions import ImportFormatError
from inputs.spend import InputFileError
from listener.cli import cli
from listener.errors import ConfigError, ListenerError, UnknownNameError
from listener.policy import Action, exit_code, treatment
from storage.analyst import QueryError as SqlError
from storage.errors import DatabaseFileError, DatabaseLockedError, StorageError
from tests.fakes.x_api import FakeXApi

CONFIG = """
[database]
path = "listener.duckdb"
[[brands]]
name = "Brewly"
terms = ["brewly"]
[[brands]]
name = "Quoted"
terms = ['say "hi"']
"""


@pytest.mark.parametrize(("error", "action", "code"), [
    (AuthError("refused"), Action.PARK_SOURCE, 1),
    (QueryError("cannot be searched for"), Action.PARK_QUERY, 2),
    (RateLimitedError("429"), Action.RETRY, 1),
    (RetryableError("503"), Action.RETRY, 1),
    (FatalError("404"), Action.RETRY, 1),
    (MalformedPayloadError("bad item"), Action.RETRY, 1),
    (ConnectorError("other"), Action.RETRY, 1),
    (StorageError("disk full"), Action.FAIL, 1),
    (DatabaseLockedError("held"), Action.FAIL, 1),
    (DatabaseFileError("not ours"), Action.FAIL, 2),
    (SqlError("syntax"), Action.FAIL, 1),
    (ListenerError("failed"), Action.FAIL, 1),
    (ConfigError(["brands: missing"]), Action.FAIL, 2),
    (UnknownNameError("--brand", "brand", "Nope", ["Brewly"]), Action.FAIL, 2),
    (InputFileError("spend.csv", []), Action.FAIL, 2),
    (ImportFormatError("not JSONL"), Action.FAIL, 2),
])
def test_each_error_class_has_one_action_and_one_exit_code(error, action, code):
    assert treatment(error).action is action
    assert exit_code(error) == code


def test_an_error_the_policy_does_not_know_is_left_alone():
    assert treatment(KeyError("bug")) is None and exit_code(KeyError("bug")) == 1


def test_a_query_the_platform_cannot_express_is_a_config_error_in_pull_as_in_the_daemon(tmp_path):
    # The daemon stops such a (source, brand) "until the config is fixed"; pull used to
    # exit 1 for it, like a network failure. Now both follow the policy: a config error
    # (exit 2), and the other brands go on.
    with FakeXApi(utc_now, bearer_token="token-for-the-fake") as api:
        config = tmp_path / "listener.toml"
        config.write_text(CONFIG + f'[sources.x]\nbase_url = "{api.url}"\nbearer_token_env = "FAKE_X_TOKEN"\n')
        runner = CliRunner(env={"LISTENER_DB": None, "FAKE_X_TOKEN": "token-for-the-fake"})
        result = runner.invoke(cli, ["--config", str(config), "pull", "--json"])
    assert result.exit_code == 2, result.output
    pulled = json.loads(result.stdout)
    assert [(r["source"], r["brand"]) for r in pulled["runs"]] == [("x", "Brewly")]
    (failure,) = pulled["failures"]
    assert (failure["source"], failure["brand"]) == ("x", "Quoted")
    assert "double quotes cannot be searched for" in failure["error"]
