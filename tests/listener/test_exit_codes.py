"""One rule for errors: an unknown brand, campaign, mention or database file is a usage
error (exit 2) in every command, with a message naming it.

The commands are found by walking the click group, and their required arguments are
made up from their declared types, so a new command (or a new --brand option) is
covered without editing this file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from listener.cli import cli
from tests.conftest import TWO_BRANDS

SPEND = Path(__file__).resolve().parents[1] / "fixtures" / "spend"
CONFIG = TWO_BRANDS + """
[[brands]]
name = "Kettle & Co"
terms = ["kettle"]
"""
MENTIONS = [
    {"id": "m1", "created_at": "2026-03-01T10:00:00Z", "text": "Brewly is lovely", "author": "ann"},
    {"id": "m2", "created_at": "2026-03-01T11:00:00Z", "text": "beanhaus is fine", "author": "bob"},
]
# Commands that create the database when it is missing (collecting is how one starts).
CREATES_THE_DATABASE = {"pull", "import", "campaigns import", "run", "demo", "init"}
UNKNOWN = {"brand": "Nope-Brand", "campaign": "nope-campaign", "mention_id": "no-such-mention"}


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):  # the root group loads its commands lazily
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


COMMANDS = dict(leaf_commands(cli))


def takes(command: click.Command, name: str) -> bool:
    return any(param.name == name for param in command.params)


def made_up(param: click.Parameter, world: dict[str, Path]) -> str:
    """A valid value for a required argument or option, from its declared type."""
    if param.name == "mention_id":
        return "m1"
    if "--to" in param.opts:  # migrate's PostgreSQL URL, never reached: the file is checked first
        return "postgresql://listener@127.0.0.1:9/listener"
    kind = param.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, click.Path):
        if kind.exists:
            return str(world["jsonl"])
        return str(world["dir"] / ("out" if not kind.file_okay else "out.txt"))
    return "survey"  # a name (import's --source)


def invocation(path: tuple[str, ...], world: dict[str, Path], **given: str) -> list[str]:
    """``listener --config C [--db D] PATH... ARGS``: every required parameter filled in, and
    ``given`` (a param name -> value) in place of the made-up one or as its option."""
    command = COMMANDS[path]
    args: list[str] = ["--config", str(world["config"]), *path]
    for param in command.params:
        value = given.pop(param.name, None)
        if isinstance(param, click.Argument):
            if value is not None or param.required:
                args.append(value if value is not None else made_up(param, world))
        elif value is not None or param.required:
            args += [param.opts[0], value if value is not None else made_up(param, world)]
    assert not given, f"{' '.join(path)} has no parameter {sorted(given)}"
    return args


def invoke(args: list[str]) -> click.testing.Result:
    runner = CliRunner(env={"LISTENER_DB": None, "LISTENER_CONFIG": None})
    return runner.invoke(cli, args)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A config with two brands and a database holding their mentions and campaign plans."""
    root = tmp_path_factory.mktemp("exit-codes")
    (root / "listener.toml").write_text(CONFIG)
    jsonl = root / "mentions.jsonl"
    jsonl.write_text("".join(json.dumps(m) + "\n" for m in MENTIONS))
    world = {"config": root / "listener.toml", "jsonl": jsonl, "dir": root, "db": root / "listener.duckdb"}
    for args in (["import", "--source", "survey", str(jsonl)],
                 ["campaigns", "import", str(SPEND / "google_ads_ui.csv"), "--plan", str(SPEND / "plan.csv")]):
        result = invoke(["--config", str(world["config"]), *args])
        assert result.exit_code == 0, result.output
    return world


CASES = [(path, name) for path, command in COMMANDS.items() for name in UNKNOWN if takes(command, name)]


def test_the_walk_finds_every_command_that_takes_a_brand_campaign_or_mention():
    found = {(" ".join(path), name) for path, name in CASES}
    expected = {(c, "brand") for c in ("pull", "import", "mood", "report", "alerts", "export", "label set",
                                       "label import", "label next", "accuracy")}
    assert expected | {("report", "campaign"), ("label set", "mention_id")} <= found


@pytest.mark.parametrize(("path", "name"), CASES, ids=[f"{' '.join(p)}-{n}" for p, n in CASES])
def test_an_unknown_name_is_a_usage_error_naming_it(world, path, name):
    value = UNKNOWN[name]
    result = invoke(invocation(path, world, **{name: value}))
    assert result.exit_code == 2, result.output
    assert value in result.output and "Traceback" not in result.output
    if name == "brand":
        assert "Brewly" in result.output and "Beanhaus" in result.output  # the known ones, listed
    if name == "campaign":
        assert "20311877402" in result.output


def test_a_known_name_in_another_case_is_the_stored_one(world):
    result = invoke(["--config", str(world["config"]), "mood", "--brand", "brewly", "--json"])
    assert result.exit_code == 0, result.output
    assert [b["brand"] for b in json.loads(result.stdout)["brands"]] == ["Brewly"]


# Commands that never open the database file (cluster mode: PostgreSQL only).
WITHOUT_THE_DATABASE = {"backfill"}
READERS = [path for path in COMMANDS if " ".join(path) not in CREATES_THE_DATABASE | WITHOUT_THE_DATABASE]


@pytest.mark.parametrize("path", READERS, ids=[" ".join(p) for p in READERS])
def test_a_missing_database_is_a_usage_error_naming_it(world, path):
    missing = world["dir"] / "nothere.duckdb"
    args = invocation(path, world)
    result = invoke([*args[:2], "--db", str(missing), *args[2:]])
    assert result.exit_code == 2, result.output
    assert str(missing) in result.output and "Traceback" not in result.output
    assert not missing.exists()
