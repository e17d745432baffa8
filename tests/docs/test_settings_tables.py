"""The source pages' settings (docs/sources/NAME.md) and config.example.toml's source keys are
generated from the connectors' Setting declarations by docs/settings_tables.py: they must not
drift."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

from connectors.registry import available

ROOT = Path(__file__).resolve().parents[2]


def settings_tables() -> ModuleType:
    name = "settings_tables"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def texts() -> tuple[dict[str, str], str]:
    return settings_tables().read_pages(), (ROOT / "config.example.toml").read_text(encoding="utf-8")


def test_the_source_pages_and_the_example_config_match_the_setting_declarations():
    stale = settings_tables().drift(*texts())
    assert not stale, (f"{stale}: run 'python docs/settings_tables.py' and commit docs/sources/ and "
                       "config.example.toml")


def test_a_hand_edit_or_a_changed_declaration_is_caught():
    generator = settings_tables()
    pages, config = texts()
    edited = pages["x"].replace("| `max_posts_per_run` |", "| `max_posts_per_run` | edited by hand", 1)
    assert edited != pages["x"]
    assert generator.drift({**pages, "x": edited}, config) == ["docs/sources/x.md: settings-x"]
    edited = config.replace("max_entries_per_feed = 100", "max_entries_per_feed = 50", 1)
    assert edited != config
    assert generator.drift(pages, edited) == ["config.example.toml: settings-feeds"]


def test_every_key_of_every_source_is_in_its_blocks_with_its_default():
    generator = settings_tables()
    pages, config = texts()
    parsed = tomllib.loads(config)["sources"]
    for name, module in available().items():
        table = generator.read_block(pages[name], generator.block_name(name))
        for key, setting in module.SETTINGS.items():
            assert f"| `{key}` |" in table, f"docs/sources/{name}.md's table lacks {key}"
            shown = setting.example if setting.example is not None else setting.default
            assert parsed[name][key] == shown, f"config.example.toml: sources.{name}.{key}"



def test_the_database_table_of_the_configuration_page_matches_its_declarations():
    generator = settings_tables()
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert not generator.database_drift(page), "run 'python docs/settings_tables.py' and commit docs/configuration.md"
    assert generator.database_drift(page.replace("| `database.lease_seconds` |", "| `database.lease_seconds` | x", 1))
