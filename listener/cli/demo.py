"""``listener init`` and ``listener demo``: a starter config, and the whole pipeline on
the built-in simulated source (listener.demo)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from listener import formatting
from listener.cli_support import CliError, clock_from, command_name, handle_errors, parse_as_of
from listener.config import DEFAULT_CONFIG_NAME


@click.command()
@click.argument("path", required=False, default=DEFAULT_CONFIG_NAME, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@handle_errors
def init(path: Path, force: bool) -> None:
    """Write a starter config file (default ./listener.toml).

    The starter listens to the built-in demo source for three example brands; edit
    the brands, then enable real sources (see config.example.toml).
    """
    from listener import demo as demo_module  # lazily: the CLI starts fast
    if path.exists() and not force:
        raise CliError(f"{path} already exists (use --force to overwrite)", 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(demo_module.starter_config_text(), encoding="utf-8")
    click.echo(f"Wrote {path}. Next: '{command_name()} --config {shlex.quote(str(path))} demo' or edit the brands.",
               err=True)


@click.command()
@click.option("--dir", "directory", default="listener-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the demo database and files.")
@click.option("--as-of", "as_of", metavar="TIME", help="End the simulated 60 days at this UTC time instead of now (ISO 8601).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
@handle_errors
def demo(ctx: click.Context, directory: Path, as_of: str | None, as_json: bool) -> None:
    """Run the whole pipeline on a built-in simulated source (offline).

    Writes DIR/listener.duckdb (60 days of mentions for a fictional brand and two
    competitors, scored and rolled up hourly) and the campaign's spend as a Google
    Ads export beside it. Re-running replaces an earlier demo's files.
    """
    from listener import demo as demo_module  # lazily: the CLI starts fast
    settings = demo_module.demo_settings(directory)
    total = demo_module.estimated_batches(settings)
    with click.progressbar(length=total, label="Collecting and scoring", file=sys.stderr) as bar:
        moment = parse_as_of(as_of)
        clock = clock_from(ctx) if moment is None else (lambda: moment)
        summary = demo_module.run_demo(directory, clock, progress=lambda _n: bar.update(1))
    database = shlex.quote(str(summary.database))
    next_step = (f"Done in {summary.seconds:.1f} s. Next: open {summary.report_files[-1]}, or "
                 f"{command_name()} --db {database} mood")
    if as_json:
        click.echo(json.dumps(formatting.demo_json(summary), indent=2))
        click.echo(next_step, err=True)  # on stderr, like the progress bar: stdout stays one JSON document
        return
    click.echo(f"Demo database: {summary.database}")
    click.echo(f"Campaign spend (Google Ads export): {summary.spend_file}")
    click.echo("Mentions per brand:")
    for brand, count in summary.mentions.items():
        click.echo(f"  {brand:<14} {count:>8,}")
    click.echo(formatting.mood_text(summary.mood, summary.mood_provenance))
    from analysis.report_render import effect_text  # loaded by the demo's report already

    for result in summary.report.campaigns:
        effect = result.headline_effect
        lift = f"{effect_text(effect)}, " if effect is not None else ""
        click.echo(f"Campaign {result.name or result.campaign_id}: {lift}{result.verdict}")
    click.echo(f"Report: {', '.join(str(p) for p in summary.report_files)}")
    click.echo(f"Alerts: {summary.alerts} (see '{command_name()} --db {database} alerts')")
    click.echo(next_step, err=True)

