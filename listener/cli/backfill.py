"""``listener backfill``: an archive import split into shards that workers on any machine
lease from the cluster's PostgreSQL (cluster mode; listener.backfill, docs/cluster.md)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from analysis.sentiment import VaderScorer
from inputs.mentions import FileSource
from listener.cli.collect import brand_queries
from listener.cli_support import CliError, clock_from, common_options, handle_errors, settings_from
from listener.ingest import Preparer

if TYPE_CHECKING:
    from listener.backfill import ShardResult
    from storage.cluster.shards import Progress, Shards

LINE_FORMATS = ("auto", "jsonl", "twarc2")


def _progress_line(progress: Progress) -> str:
    return (f"backfill {progress.backfill} ({progress.path}): {progress.done}/{progress.shards} shards done, "
            f"{progress.leased} leased, {progress.mentions:,} mentions stored")


@click.command(name="backfill")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", "source", metavar="NAME",
              help="With FILE: source name the mentions are stored under (e.g. x, archive).")
@click.option("--shards", type=click.IntRange(1, 1_000_000), metavar="N",
              help="With FILE: split it into N shards of about equal size (a few per worker core).")
@click.option("--brand", "brand", metavar="NAME", help="With FILE: only this brand (default: every brand).")
@click.option("--format", "fmt", type=click.Choice(LINE_FORMATS), default="auto", show_default=True,
              help="jsonl (this project's format) or twarc2 (X API v2 pages); auto detects.")
@click.option("--own-account", "own_accounts", multiple=True, metavar="AUTHOR",
              help="With --brand: rows by AUTHOR are the brand's own posts. Repeatable.")
@click.option("--work", is_flag=True,
              help="Take shards of any backfill and store them until none is left (run it on every machine).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, metavar="N",
              help="With --work: parse, match, detect language and score on N processes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@common_options
@click.pass_context
@handle_errors
def backfill_command(ctx: click.Context, file: Path | None, source: str | None, shards: int | None,
                     brand: str | None, fmt: str, own_accounts: tuple[str, ...], work: bool, workers: int,
                     as_json: bool) -> None:
    """Spread an archive import over machines (cluster mode: database.url).

    'listener backfill FILE --source NAME --shards N' splits FILE (JSONL or twarc2,
    on storage every machine sees at the same path) into N shards registered in
    PostgreSQL; 'listener backfill --work' on any number of machines leases shards
    and stores their mentions and VADER scores in the cluster, each mention once. A
    worker killed mid-shard leaves nothing of it; its shard is retaken when its lease
    expires (database.lease_seconds). Without FILE or --work: each backfill's progress.
    """
    settings = settings_from(ctx)
    if brand:
        settings.brand(brand)  # an unknown name first, as in every command
    if file is None and (source or shards or brand or own_accounts):
        raise CliError("--source, --shards, --brand and --own-account describe a FILE to split: name the file", 2)
    if file is not None and (not source or not shards):
        raise CliError(f"{file}: --source and --shards are needed to split it "
                       "(e.g. listener backfill FILE --source archive --shards 32)", 2)
    if workers != 1 and not work:
        raise CliError("--workers applies to --work: the processes that prepare shards", 2)
    cluster = settings.cluster
    if cluster is None:
        raise CliError("listener backfill needs cluster mode: set database.url in the config (docs/cluster.md)", 2)
    queries = brand_queries(settings, source, brand, own_accounts) if file is not None else []
    reader = None
    if file is not None:
        reader = FileSource(file, source, fmt, {}, clock_from(ctx))
        if reader.format not in LINE_FORMATS:
            raise CliError(f"{file}: a CSV file cannot be split into shards (a row may span lines): convert it to "
                           "JSONL, or use listener import (read as CSV because its first line is not JSON; "
                           "--format jsonl if it is JSON lines)", 2)
    # Lazily: psycopg is the [cluster] extra, never imported by a single-machine install.
    from listener import backfill as backfills
    from storage.cluster import connect, holder_name, migrate
    from storage.cluster.shards import Shards

    spans = backfills.split(reader.path, shards) if reader is not None else []
    if reader is not None and not spans:
        raise CliError(f"{file}: the file is empty: nothing to backfill", 2)

    conn = connect(cluster.url, cluster.password(os.environ))
    try:
        migrate(conn)
        table = Shards(conn, holder_name())
        report: dict = {}
        if reader is not None:
            report["backfill"] = table.create(str(reader.path.resolve()), reader.path.stat().st_size, reader.name,
                                              reader.format, queries, clock_from(ctx)(), spans)
            report["shards"] = len(spans)
            click.echo(f"backfill {report['backfill']}: {file} split into {len(spans)} shard(s)"
                       + (f" (it has fewer lines than {shards})" if len(spans) < shards else ""), err=True)
        if work:
            report["worked"] = _work(table, workers, cluster.lease_seconds)
        progress = table.progress(report.get("backfill"))
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps({**report, "progress": [asdict(p) for p in progress]}, indent=2, default=str))
        return
    for each in progress:
        click.echo(_progress_line(each))
    if not progress:
        click.echo("No backfill registered: 'listener backfill FILE --source NAME --shards N' splits one.", err=True)


def _work(table: Shards, workers: int, lease_seconds: float) -> list[dict]:
    from listener import backfill as backfills

    def shown(result: ShardResult, progress: Progress) -> None:
        click.echo(f"backfill {result.backfill} shard {result.shard}: {result.read:,} read, {result.new:,} new "
                   f"mentions, {result.bad_lines:,} bad lines ({result.seconds:.1f}s); "
                   f"{progress.done}/{progress.shards} shards done", err=True)

    with Preparer(workers, VaderScorer()) as preparer:
        results = backfills.work(table, preparer, lease_seconds, report=shown)
    if not results:
        click.echo("No shard left to work on.", err=True)
    return [asdict(r) for r in results]
