"""The one Setting declaration: its checks, and the config and factories reading it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from connectors import x
from connectors.settings import TIMEOUT, Setting, check_values, declared_settings, settings_table, validated
from listener.config import parse_settings
from listener.errors import ConfigError


@pytest.mark.parametrize(("setting", "value", "problem"), [
    (Setting("n", int, 1, "doc"), True, "must be a whole number, got True"),
    (Setting("n", int, 1, "doc"), 1.5, "must be a whole number, got 1.5"),
    (Setting("n", int, 1, "doc", min=1), 0, "must be a whole number from 1 up, got 0"),
    (Setting("n", int, 1, "doc", min=1, max=9), 10, "must be a whole number from 1 to 9, got 10"),
    (Setting("t", float, 1.0, "doc", **TIMEOUT), 0, "must be a number above 0 and at most 3600, got 0"),
    (Setting("t", float, 1.0, "doc", **TIMEOUT), float("nan"), "must be a number above 0 and at most 3600, got nan"),
    (Setting("t", float, 1.0, "doc", min=0), float("inf"), "must be a number from 0 up, got inf"),
    (Setting("t", float, 1.0, "doc"), float("nan"), "must be a number (finite), got nan"),
    (Setting("b", bool, True, "doc"), 1, "must be true or false, got 1"),
    (Setting("l", list, [], "doc"), ["a", 2], "must be a list of strings"),
    (Setting("l", list, ["a"], "doc", required=True), [], "must not be empty, got []"),
    (Setting("s", str, "a", "doc"), 3, "must be a str, got 3"),
    (Setting("m", str, "a", "doc", choices=("a", "b")), "c", "must be one of 'a', 'b', got 'c'"),
    (Setting("u", str, "wss://a", "doc", schemes=("ws://", "wss://")), "https://a",
     "must start with ws:// or wss://, got 'https://a'"),
    (Setting("token_env", str, "", "doc"), "sk-12 34", "must name an environment variable"),
    (Setting("token_env", str, "T", "doc", required=True), " ", "must not be empty, got ' '"),
    (Setting("n", int, 0, "doc", check=lambda n: "odd" if n % 2 else None), 3, "odd"),
])
def test_each_constraint_names_what_is_wrong(setting, value, problem):
    assert (setting.problem(value) or "").startswith(problem)
    assert setting.problem(setting.default) is None


def test_values_in_bounds_and_empty_env_names_pass():
    assert Setting("t", float, 1.0, "doc", **TIMEOUT).problem(3600) is None
    assert Setting("n", int, 1, "doc", min=1, max=9).problem(9) is None
    assert Setting("token_env", str, "", "doc").problem("") is None  # "" = no secret (anonymous)


def test_check_values_fills_defaults_and_collects_every_problem():
    declared = settings_table(Setting("a", int, 1, "doc", min=1), Setting("b", list, ["x"], "doc"),
                              Setting("c", bool, False, "doc"))
    values, problems = check_values(declared, {"a": 0, "b": ["y"], "c": "no"})
    assert values == {"a": 1, "b": ("y",), "c": False}
    assert [key for key, _ in problems] == ["a", "c"]
    with pytest.raises(ValueError, match=r"^demo settings: a: .*; c: must be true or false"):
        validated("demo", declared, {"a": 0, "c": "no"})


def test_the_old_tuple_form_is_still_read_without_constraints():
    module = SimpleNamespace(SETTINGS={"n": (int, 3, "a third-party plugin's setting")})
    (setting,) = declared_settings(module).values()
    assert (setting.name, setting.type, setting.default, setting.min) == ("n", int, 3, None)
    assert setting.problem("3") == "must be a whole number, got '3'"


def test_the_config_checks_every_constraint_naming_sources_name_key(tmp_path: Path):
    """Range and choice problems surface when the config is read (exit 2), all at once,
    not only when the connector is built at collection time."""
    text = """
[[brands]]
name = "Brewly"
terms = ["brewly"]

[sources.x]
history_days = 0
timeout_seconds = 0
monthly_post_budget = 5

[sources.bluesky]
mode = "stream"
"""
    with pytest.raises(ConfigError) as caught:
        parse_settings(tomllib.loads(text), base_dir=tmp_path, origin="test.toml")
    message = str(caught.value)
    for key in ("sources.x.history_days", "sources.x.timeout_seconds", "sources.x.monthly_post_budget",
                "sources.bluesky.mode"):
        assert key in message, message


def test_a_factory_refuses_what_the_config_refuses():
    with pytest.raises(ValueError, match="x settings: max_posts_per_run: must be a whole number from 10 up"):
        x.create({"max_posts_per_run": 9}, lambda: None, env={"X_BEARER_TOKEN": "t"})
