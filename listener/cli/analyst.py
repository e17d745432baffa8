"""Commands for analysts: ``listener sql`` (and its shell) and ``listener export``.

Both open the database read-only, or the daemon's snapshot while the daemon holds it,
with no access to other files (storage.analyst), so nothing an analyst types can change
the data or write beside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import duckdb

from listener.cli.shell import MODES, render, run_shell
from listener.cli_support import (
    CONTEXT_SETTINGS, CliError, common_options, handle_errors, open_existing, parse_time, resolve_brand, say_reading,
    settings_from,
)
from listener.config import Settings
from storage.analyst import FORMATS, QueryError, export, read_only, reading_path, run_query, writable_directory
from storage.queries import brands_in
from storage.store import Store


@contextmanager
def reading(settings: Settings, write_dir: Path | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """The analysts' read-only connection (storage.analyst.read_only): to the lake when
    ``database.lake`` is set (its views over the published files, docs/cluster.md, with
    this machine's campaigns), else to the database or, while the daemon holds it, its
    snapshot."""
    if settings.cluster is None or settings.cluster.lake is None:
        source = reading_path(settings.database)
        say_reading(source)
        with read_only(source.path, write_dir=write_dir) as db:
            yield db
        return
    from listener.lake import open_catalog  # noqa: PLC0415 - psycopg only in cluster mode

    with open_catalog(settings.cluster, _local_campaigns(settings)) as catalog:
        click.echo(f"Reading the lake at {catalog.lake}: {catalog.mentions:,} mentions in {catalog.files:,} "
                   "published files.", err=True)
        with read_only(catalog.path, write_dir=write_dir, read_dir=catalog.lake) as db:
            yield db


@contextmanager
def reading_store(settings: Settings) -> Iterator[Store]:
    """The Store ``listener campaigns report`` reads: the lake when ``database.lake`` is
    set, with the campaigns imported into this machine's database (or its snapshot);
    else the database (cli_support.open_existing)."""
    if settings.cluster is None or settings.cluster.lake is None:
        with open_existing(settings) as store:
            yield store
        return
    from listener.lake import lake_store  # noqa: PLC0415 - psycopg only in cluster mode

    click.echo(f"Reading the lake at {settings.cluster.lake}.", err=True)
    with lake_store(settings.cluster, _local_campaigns(settings)) as store:
        yield store


def _local_campaigns(settings: Settings) -> Path | None:
    """The database whose campaigns (imported on this machine) the lake's readers show
    beside it: this machine's, or its daemon's snapshot; None when there is none."""
    return reading_path(settings.database).path if settings.database.exists() else None


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("query", required=False)
@click.option("--format", "fmt", type=click.Choice(MODES), default="table", show_default=True,
              help="Output format.")
@click.option("--limit", type=click.IntRange(1), default=None, metavar="N",
              help="At most N rows (default: all for csv/json, 1000 for table).")
@click.option("--allow-write-dir", "write_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Let COPY ... TO write files in DIR (not the database's directory); no other file is reachable.")
@common_options
@click.pass_context
@handle_errors
def sql(ctx: click.Context, query: str | None, fmt: str, limit: int | None, write_dir: Path | None) -> None:
    """Run read-only SQL on the database; without QUERY, an interactive shell.

    Reads the daemon's snapshot while the daemon runs, or the cluster's lake when the
    config sets database.lake (docs/cluster.md). The views v_mentions,
    v_hourly_mood, v_conversations and v_campaign_daily are documented in docs/analysts.md.
    No other file can be read or written (COPY, ATTACH, read_csv), except files in
    the directory --allow-write-dir names.

    \b
    listener sql "SELECT brand, avg(nss) FROM v_hourly_mood GROUP BY brand"
    listener sql --format csv "SELECT * FROM v_campaign_daily" > daily.csv
    listener sql            (then .help)
    """
    settings = settings_from(ctx)
    allowed = None if write_dir is None else writable_directory(write_dir, settings.database)
    if allowed is not None:
        allowed.mkdir(parents=True, exist_ok=True)
    with reading(settings, allowed) as db:
        if query is None:
            ctx.exit(run_shell(db, fmt))
        if limit is None and fmt == "table":
            limit = 1000
        try:
            result = run_query(db, query, limit=None if limit is None else limit + 1)
        except QueryError as exc:
            raise CliError(f"SQL: {exc}", 2) from exc
    if not result.columns:
        return
    rows = result.rows if limit is None else result.rows[:limit]
    # color=True: click would otherwise strip escape sequences from the data itself
    # (tables have them escaped already; CSV and JSON must stay faithful).
    click.echo(render(fmt, result.columns, rows), color=True)
    if limit is not None and len(result.rows) > limit:
        click.echo(f"(first {limit:,} rows shown; --limit N or --format csv for more)", err=True)


@click.command(name="export", context_settings=CONTEXT_SETTINGS)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="parquet", show_default=True,
              help="File format.")
@click.option("--brand", metavar="NAME", help="Only this brand.")
@click.option("--since", metavar="TIME", help="From this UTC date or time (ISO 8601), inclusive.")
@click.option("--until", metavar="TIME", help="Up to this UTC date or time (ISO 8601), exclusive.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@common_options
@click.pass_context
@handle_errors
def export_command(ctx: click.Context, directory: Path, fmt: str, brand: str | None, since: str | None,
                   until: str | None, as_json: bool) -> None:
    """Write the analysts' views to DIRECTORY as Parquet or CSV files.

    One file per view (mentions, hourly_mood, conversations, campaign_daily) plus
    manifest.json with the filters and row counts. Times filter each view's own time
    column (created_at, hour, last_at, date). With database.lake set, the views are
    the cluster's lake's (docs/cluster.md).
    """
    settings = settings_from(ctx)
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start and end and start >= end:
        raise CliError(f"--since {since} is not before --until {until}", 2)
    # The connection may write into DIRECTORY only: export's own COPY statements.
    with reading(settings, Path(os.path.abspath(directory))) as db:
        if brand is not None:
            brand = resolve_brand(brand, settings, brands_in(db))
        files = export(db, directory, fmt, brand=brand, since=start, until=end)
    if as_json:
        click.echo(json.dumps({"directory": str(directory), "format": fmt,
                               "files": [{"name": f.name, "path": str(f.path), "rows": f.rows} for f in files]},
                              indent=2))
        return
    for f in files:
        click.echo(f"{f.path}  {f.rows:,} rows")
