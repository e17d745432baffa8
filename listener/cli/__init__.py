"""The ``listener`` command: a thin shell over the pipeline.

Data goes to stdout (a table, or JSON with ``--json``), messages and progress to
stderr. Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error
(listener.policy decides which, for the CLI and the daemon alike). Every command takes
``--config`` and ``--db``, before or after its name.

This module is the root group and nothing else: each command group lives in a module
of its own (what it shares is in ``listener.cli_support``), and COMMANDS below says
where each command lives.

Commands load lazily: a start imports only the module of the command it runs. Every
start of ``listener`` (the daemon, each test that runs it as a subprocess) used to
import every command module and everything they import (numpy, pyarrow, the report,
the analyst shell, ...), about 0.2-0.3 CPU seconds of a 0.6 s start for nothing.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from listener.cli_support import CONTEXT_SETTINGS, WITHOUT_RUN_LOG, _store_in_root
from listener.config import DEFAULT_CONFIG_NAME

# name -> ("module:attribute", the first paragraph of its help). One line per command.
# The help is what 'listener --help' lists without importing every command module;
# tests/listener/test_cli.py checks it against each command's own docstring.
COMMANDS: dict[str, tuple[str, str]] = {
    "accuracy": ("listener.cli.labels:accuracy", "How far VADER, and each brand's model, agree with your team's manual labels."),
    "alerts": ("listener.cli.alerts:alerts_command", "Alert history: dips and spikes in each brand's mood and volume, newest first."),
    "backfill": ("listener.cli.backfill:backfill_command", "Spread an archive import over machines (cluster mode: database.url)."),
    "campaigns": ("listener.cli.campaigns:campaigns", "Campaign spend and plans: import ad-platform exports, list what is stored."),
    "care": ("listener.cli.care:care_command", "Customer care per brand: threads needing a reply, response rate, time to first reply, threads resolved, progress against the brand's care_goals, and whether answering turns the thread."),
    "demo": ("listener.cli.demo:demo", "Run the whole pipeline on a built-in simulated source (offline)."),
    "export": ("listener.cli.analyst:export_command", "Write the analysts' views to DIRECTORY as Parquet or CSV files."),
    "import": ("listener.cli.collect:import_file", "Import mentions from a JSONL or CSV file, through the normal pipeline."),
    "init": ("listener.cli.demo:init", "Write a starter config file (default ./listener.toml)."),
    "label": ("listener.cli.labels:label", "Correct mentions' sentiment: one (set, the default), a file of them (import), or the ones worth labelling next (next)."),
    "migrate": ("listener.cli.migrate:migrate", "Copy this database's mentions and cursors into cluster mode's PostgreSQL."),
    "model": ("listener.cli.model:model", "A mood scorer that learns from your labels: train, status, promote, rollback."),
    "mood": ("listener.cli.mood:mood", "Brand mood now: last hour, last 24 h and the 7-day baseline before them."),
    "pull": ("listener.cli.collect:pull", "Run one collection cycle by hand: each brand from each source, from its cursor."),
    "report": ("listener.cli.campaigns:report", "The campaign mood-ROI report: did the spend move how people feel?"),
    "run": ("listener.cli.collect:run", "Run the daemon: scheduled pulls per brand and source, and the hourly stage."),
    "score": ("listener.cli.collect:score", "Run the hourly stage now: conversation scores, hourly mood, alerts."),
    "serve": ("listener.commands_serve:serve", "The workspace: the mention stream, open alerts and the live mood per brand."),
    "sql": ("listener.cli.analyst:sql", "Run read-only SQL on the database; without QUERY, an interactive shell."),
    "status": ("listener.cli.mood:status", "Recent runs, cursors, and mention counts per source and brand."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is run (click's
    documented lazy-loading pattern); its help lists COMMANDS' short helps."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Click's own listing, given stand-ins that carry only the help text: it shortens
        # them to the terminal's width exactly as it would the commands themselves.
        rows = {name: self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
                for name in self.list_commands(ctx)}
        click.Group(self.name, commands=rows).format_commands(ctx, formatter)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.option("--config", "config", metavar="PATH", default=None, expose_value=False, callback=_store_in_root,
              help=f"Config file (default: LISTENER_CONFIG, else ./{DEFAULT_CONFIG_NAME} if present).")
@click.option("--db", "db", metavar="PATH", default=None, expose_value=False, callback=_store_in_root,
              help="Database file (default: LISTENER_DB, else the config's database.path, else ./listener.duckdb).")
@click.option("-v", "--verbose", is_flag=True, help="Log each run to stderr.")
@click.version_option(package_name="brandmood-listener", prog_name="listener")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Social listening and brand mood, on your own server.

    Start with 'listener demo' (no credentials, no network), then
    'listener --db listener-demo/listener.duckdb mood'.
    """
    ctx.ensure_object(dict)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    if not verbose:
        # Commands report each run's outcome themselves (one line per failure): the
        # run log would repeat it.
        handler.addFilter(WITHOUT_RUN_LOG)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


def main() -> None:
    cli(prog_name="listener")
