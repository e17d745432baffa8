"""The ``listener`` command: a thin shell over the pipeline.

Data goes to stdout (a table, or JSON with ``--json``), messages and progress to
stderr. Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error
(listener.policy decides which, for the CLI and the daemon alike). Every command takes
``--config`` and ``--db``, before or after its name.

This module is the root group and nothing else: each command group lives in a module
of its own (what it shares is in ``listener.cli_support``):

    demo       init, demo                     collect    pull, import, score, run
    backfill   backfill (cluster mode)
    mood       mood, status                   campaigns  campaigns import|list, report
    analyst    sql, export                    labels     label set|import|next, accuracy
    alerts     alerts                         model      model train|status|promote|rollback|rescore
    migrate    migrate --to URL (cluster mode)
    serve      (listener.commands_serve)
"""

from __future__ import annotations

import logging
import sys

import click

from listener.cli import alerts, analyst, backfill, campaigns, care, collect, demo, labels, migrate, model, mood
from listener.cli_support import CONTEXT_SETTINGS, WITHOUT_RUN_LOG, _store_in_root
from listener.commands_serve import serve
from listener.config import DEFAULT_CONFIG_NAME


@click.group(context_settings=CONTEXT_SETTINGS)
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


for _command in (demo.init, demo.demo, collect.pull, collect.import_file, collect.score, collect.run, mood.mood,
                 mood.status, campaigns.campaigns, campaigns.report, analyst.sql, analyst.export_command,
                 labels.label, labels.accuracy, alerts.alerts_command, model.model, serve, care.care_command,
                 backfill.backfill_command, migrate.migrate):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="listener")
