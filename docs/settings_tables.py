"""The sources' settings in their documentation pages and config.example.toml, generated
from the connectors' Setting declarations (connectors/settings.py) so they cannot drift.

    python docs/settings_tables.py           # rewrite the blocks of docs/sources/*.md and config.example.toml
    python docs/settings_tables.py --check   # exit 1 if any differs from what would be written

Each installed connector's ``SETTINGS`` gives:

* in its page docs/sources/NAME.md, between ``<!-- settings-NAME:start -->`` and
  ``<!-- settings-NAME:end -->``: a ``[sources.NAME]`` example with every key at its
  default, and a table of key, meaning (the Setting's doc), what it accepts and default;
* in docs/configuration.md, between ``<!-- settings-database:start -->`` and its end
  marker: the ``[database]`` keys' table (listener.config's DATABASE_SETTINGS);
* in config.example.toml, between ``# settings-NAME:start`` and ``# settings-NAME:end``
  (inside its ``[sources.NAME]`` table): every key with its doc as a comment and its
  default (or its ``example`` where the default is no example).

tests/docs/test_settings_tables.py fails when a page or the config differs from this output.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # readme_figures, beside this script

from readme_figures import HTML_COMMENT, TOML_COMMENT, read_block, write_block  # noqa: E402

from connectors.registry import available  # noqa: E402
from connectors.settings import Setting, declared_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE_PAGES = ROOT / "docs" / "sources"
EXAMPLE_CONFIG = ROOT / "config.example.toml"
CONFIGURATION_PAGE = ROOT / "docs" / "configuration.md"
DATABASE_BLOCK = "settings-database"
COMMENT_WIDTH = 88


def block_name(source: str) -> str:
    return f"settings-{source}"


def page_path(source: str) -> Path:
    """The documentation page of one source, which holds its settings block."""
    return SOURCE_PAGES / f"{source}.md"


def read_pages() -> dict[str, str]:
    """Every installed source's page, by source name."""
    return {source: page_path(source).read_text(encoding="utf-8") for source in sorted(available())}


def toml_value(value: Any) -> str:
    """``value`` written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is JSON's string syntax for these
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def shown_default(setting: Setting) -> str:
    return setting.shown_default or f"`{toml_value(setting.default)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def page_block(source: str, declared: Mapping[str, Setting]) -> str:
    """The example table and settings table of one source, on its page."""
    lines = ["```toml", f"[sources.{source}]", "enabled = true", "every_minutes = 15",
             "# every key below is optional; these are the defaults (or, where noted, an example)"]
    for setting in declared.values():
        if setting.example is None:
            lines.append(f"{setting.name} = {toml_value(setting.default)}")
        else:
            lines.append(f"{setting.name} = {toml_value(setting.example)}  # an example; default: "
                         f"{setting.shown_default or toml_value(setting.default)}")
    lines += ["```", "", "| key | meaning | accepts | default |", "|---|---|---|---|"]
    for setting in declared.values():
        lines.append(f"| `{setting.name}` | {_cell(setting.doc)} | {_cell(setting.accepts())} "
                     f"| {_cell(shown_default(setting))} |")
    return "\n".join(lines)


def config_block(declared: Mapping[str, Setting]) -> str:
    """config.example.toml's keys of one source, each under its doc."""
    lines: list[str] = []
    for setting in declared.values():
        lines += textwrap.wrap(setting.doc, COMMENT_WIDTH, initial_indent="# ", subsequent_indent="# ")
        value = setting.example if setting.example is not None else setting.default
        lines.append(f"{setting.name} = {toml_value(value)}")
    return "\n".join(lines)


def database_block() -> str:
    """docs/configuration.md's table of the ``[database]`` keys (listener.config's
    DATABASE_SETTINGS, and BUDGET_SETTINGS for each ``[database.budgets.SOURCE]``)."""
    from listener.config import BUDGET_SETTINGS, DATABASE_SETTINGS  # noqa: PLC0415

    lines = ["| key | meaning | accepts | default |", "|---|---|---|---|"]
    for prefix, declared in (("database", DATABASE_SETTINGS), ("database.budgets.SOURCE", BUDGET_SETTINGS)):
        for setting in declared.values():
            lines.append(f"| `{prefix}.{setting.name}` | {_cell(setting.doc)} | {_cell(setting.accepts())} "
                         f"| {_cell(shown_default(setting))} |")
    return "\n".join(lines)


def database_drift(page: str) -> bool:
    """Whether docs/configuration.md's ``[database]`` table differs from the declarations."""
    return read_block(page, DATABASE_BLOCK) != database_block()


def generate(pages: Mapping[str, str], config: str) -> tuple[dict[str, str], str]:
    """Each source page's text (by source name) and config.example.toml's, with every
    source's block rewritten."""
    written = dict(pages)
    for source, module in sorted(available().items()):
        declared = declared_settings(module)
        written[source] = write_block(pages[source], block_name(source), page_block(source, declared), HTML_COMMENT)
        config = write_block(config, block_name(source), config_block(declared), TOML_COMMENT)
    return written, config


def drift(pages: Mapping[str, str], config: str) -> list[str]:
    """The blocks that differ from what :func:`generate` writes, as 'FILE: block' lines."""
    expected_pages, expected_config = generate(pages, config)
    found = []
    for source in sorted(available()):
        name = block_name(source)
        if read_block(pages[source], name) != read_block(expected_pages[source], name):
            found.append(f"{page_path(source).relative_to(ROOT)}: {name}")
    for source in sorted(available()):
        name = block_name(source)
        if read_block(config, name, TOML_COMMENT) != read_block(expected_config, name, TOML_COMMENT):
            found.append(f"{EXAMPLE_CONFIG.name}: {name}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 if a block differs from the declarations.")
    args = parser.parse_args(argv)
    pages, config = read_pages(), EXAMPLE_CONFIG.read_text(encoding="utf-8")
    if args.check:
        stale = drift(pages, config)
        if database_drift(CONFIGURATION_PAGE.read_text(encoding="utf-8")):
            stale.append(f"{CONFIGURATION_PAGE.relative_to(ROOT)}: {DATABASE_BLOCK}")
        for line in stale:
            print(f"{line} differs from the Setting declarations; run 'python docs/settings_tables.py'",
                  file=sys.stderr)
        return 1 if stale else 0
    new_pages, new_config = generate(pages, config)
    for source, text in new_pages.items():
        page_path(source).write_text(text, encoding="utf-8")
    EXAMPLE_CONFIG.write_text(new_config, encoding="utf-8")
    page = CONFIGURATION_PAGE.read_text(encoding="utf-8")
    CONFIGURATION_PAGE.write_text(write_block(page, DATABASE_BLOCK, database_block()), encoding="utf-8")
    print(f"Rewrote the settings blocks of {SOURCE_PAGES.relative_to(ROOT)}/*.md and {EXAMPLE_CONFIG.name}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
