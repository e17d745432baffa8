"""Collecting and the hourly stage: ``listener pull``, ``import``, ``score`` and ``run``
(the daemon, listener.daemon). Each is wiring over listener.pipeline; what a failed
pull means (retry, park, fail with which exit code) is listener.policy's."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import click

from analysis.sentiment import VaderScorer
from connectors.base import BrandQuery
from connectors.errors import ConnectorError
from inputs.mentions import FORMATS as FILE_FORMATS
from inputs.mentions import FileSource
from listener.cli_support import (
    WITHOUT_RUN_LOG, CliError, clock_from, common_options, handle_errors, settings_from,
)
from listener import ingest
from listener.config import Settings
from listener.pipeline import Pipeline
from listener.policy import PARKED_EXIT_CODE, Action, exit_code, treatment
from listener.scoring import build_scoring
from storage.rollup import RollupProgress
from storage.store import Store

SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def _progress_shown(ctx: click.Context) -> tuple[bool, bool]:
    """(stderr is a terminal, progress is shown): on a terminal, or with -v."""
    interactive = sys.stderr.isatty()
    return interactive, interactive or bool(ctx.find_root().params.get("verbose"))



@click.command()
@click.option("--rebuild", is_flag=True, help="Recompute every hour, not only hours with new mentions.")
@common_options
@click.pass_context
@handle_errors
def score(ctx: click.Context, rebuild: bool) -> None:
    """Run the hourly stage now: conversation scores, hourly mood, alerts.

    Labels queued meanwhile are applied first. Only hours that received new
    mentions or labels since the last run are recomputed, unless --rebuild is
    given (e.g. after a scorer upgrade). Then alert detection runs on the hours
    whose collection is complete, and new alerts are delivered.
    """
    from listener.alerting import run_alerts  # lazily: scipy
    settings = settings_from(ctx)
    clock = clock_from(ctx)
    interactive, show = _progress_shown(ctx)
    with Store.open(settings.database, create=False) as store, contextlib.ExitStack() as stack:
        bar: list = []

        def on_chunk(step: RollupProgress) -> None:
            # A backlog takes many chunks (storage.rollup): a bar on a terminal, lines with -v.
            if interactive:
                if not bar:
                    bar.append(stack.enter_context(
                        click.progressbar(length=step.total, label="Hourly stage (hours)", file=sys.stderr)))
                bar[0].length = step.total
                bar[0].update(step.done - bar[0].pos)
            else:
                click.echo(f"Hourly stage: {step.done:,} of {step.total:,} hour(s) done, through "
                           f"{step.through:%Y-%m-%d %H:00} UTC (chunk {step.chunks}).", err=True)

        result = Pipeline(store, VaderScorer(), clock).score_hours(rebuild=rebuild, progress=on_chunk if show else None)
        stack.close()
        alerts = run_alerts(store, settings, clock)
    click.echo(f"Recomputed {result.hours} hour(s) and {result.conversations} conversation(s).")
    if settings.alerts.enabled:
        click.echo(f"Alerts: {alerts.hours_evaluated} hour(s) evaluated, {len(alerts.opened)} opened, "
                   f"{len(alerts.closed)} closed, {alerts.sent} delivered, {alerts.failed} deliveries failed"
                   + (f"; {alerts.hours_waiting} hour(s) wait for their sources" if alerts.hours_waiting else "")
                   + ".")
    for problem in alerts.problems:
        click.echo(f"Warning: {problem}", err=True)



@click.command()
@click.option("--brand", "brand", metavar="NAME", help="Only this brand (default: every brand).")
@click.option("--source", "source", metavar="NAME", help="Only this source (default: every enabled source).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@common_options
@click.pass_context
@handle_errors
def pull(ctx: click.Context, brand: str | None, source: str | None, as_json: bool) -> None:
    """Run one collection cycle by hand: each brand from each source, from its cursor.

    A source whose credentials are missing or rejected is reported and skipped; the
    others go on. Exit 1 if any pull failed, 2 if a brand's query cannot be expressed
    on a source (fix the brand in the config; the daemon stops that pull too).
    """
    settings = settings_from(ctx)
    brands = [settings.brand(brand)] if brand else list(settings.brands)
    if not brands:
        raise CliError("no brands configured: add [[brands]] to the config (see 'listener init')", 2)
    only = settings.source(source) if source else None
    if only is None and not settings.enabled_sources:
        raise CliError("no enabled sources in the config: add a [sources.NAME] table", 2)
    clock = clock_from(ctx)
    interactive, show = _progress_shown(ctx)
    results, failures = [], []
    codes: list[int] = []
    with Store.open(settings.database) as store:
        pipeline = Pipeline(store, build_scoring(settings, store), clock)
        opened = pipeline.start_sources(settings, only)
        try:
            for name, connector in list(opened.connectors.items()):
                for entry in brands:
                    # A first pull can take minutes (history, rate limits): say what runs,
                    # and on a terminal how far it got, as it goes.
                    what = f"{name} {entry.name}"
                    fetched = [0]

                    def on_batch(count: int, what: str = what, fetched: list[int] = fetched) -> None:
                        fetched[0] += count
                        click.echo(f"\r{what}: {fetched[0]:,} fetched ...", nl=False, err=True)

                    if show:
                        click.echo(f"{what}: pulling ...", nl=not interactive, err=True)
                    ended = "\r\x1b[K" if interactive else ""  # over the running count
                    try:
                        result = pipeline.collect(connector, entry.query, progress=on_batch if interactive else None)
                    except ConnectorError as exc:
                        # What a failed pull means is the policy's, as in the daemon.
                        treated = treatment(exc)
                        if treated.action is Action.PARK_SOURCE:
                            if show:
                                click.echo(f"{ended}{what}: credentials refused, skipping {name}", err=True)
                            opened.park(name, str(exc))
                            break
                        if show:
                            click.echo(f"{ended}{what}: failed", err=True)
                        failures.append({"source": name, "brand": entry.name, "error": str(exc)})
                        codes.append(exit_code(exc))
                        continue
                    if show:
                        click.echo(f"{ended}{what}: {result.fetched:,} fetched, {result.new:,} new, "
                                   f"{result.status} ({result.seconds:.1f}s)", err=True)
                    results.append(result)
        finally:
            opened.close()
    failures += [{"source": name, "brand": None, "error": why} for name, why in opened.parked.items()]
    if as_json:
        click.echo(json.dumps({"runs": [asdict(r) for r in results], "failures": failures}, indent=2))
    else:
        for r in results:
            click.echo(f"{r.source:<10} {r.brand:<16} fetched={r.fetched} new={r.new} duplicates={r.duplicates} "
                       f"rejected={r.rejected} skipped={r.skipped} ({r.seconds:.1f}s)")
        for f in failures:
            where = " ".join(filter(None, [f["source"], f["brand"]]))
            click.echo(f"Error: {where}: {f['error']}", err=True)
    if failures:
        # The worst failure decides: 2 when the config must change (listener.policy).
        ctx.exit(max(codes + [PARKED_EXIT_CODE] * len(opened.parked)))


def brand_queries(settings: Settings, source: str, brand: str | None, own_accounts: Sequence[str]) -> list[BrandQuery]:
    """What a file of ``source`` is matched against: every brand's query (or ``--brand``'s),
    with ``--own-account``'s authors as the brand's own; usage errors (exit 2) otherwise."""
    if not SOURCE_NAME.fullmatch(source):
        raise CliError(f"--source: {source!r} must be lower-case letters, digits, '-' or '_'", 2)
    brands = [settings.brand(brand)] if brand else list(settings.brands)
    if not brands:
        raise CliError("no brands configured: imports are matched against the brands' queries", 2)
    if own_accounts and not brand:
        raise CliError("--own-account needs --brand: whose own posts they are", 2)
    return [entry.query.with_accounts_on(source, own_accounts) if own_accounts else entry.query for entry in brands]


@click.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", "source", required=True, metavar="NAME",
              help="Source name the mentions are stored under (e.g. x, reddit, survey).")
@click.option("--brand", "brand", metavar="NAME", help="Only this brand (default: every brand the rows match).")
@click.option("--format", "fmt", type=click.Choice(FILE_FORMATS), default="auto", show_default=True,
              help="jsonl (this project's format), twarc2 (X API v2 pages), csv; auto detects.")
@click.option("--map", "mapping", multiple=True, metavar="FIELD=COLUMN",
              help="CSV: read FIELD (id, created_at, text, author, url, ...) from COLUMN. Repeatable.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, metavar="N",
              help="Parse, match, detect language and score on N processes while storing (about N times faster on N free cores).")
@click.option("--own-account", "own_accounts", multiple=True, metavar="AUTHOR",
              help="With --brand: rows by AUTHOR are the brand's own posts (kept in their threads, out of mood), "
                   "besides its own_accounts for this source. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@common_options
@click.pass_context
@handle_errors
def import_file(ctx: click.Context, file: Path, source: str, brand: str | None, fmt: str,
                mapping: tuple[str, ...], workers: int, own_accounts: tuple[str, ...], as_json: bool) -> None:
    """Import mentions from a JSONL or CSV file, through the normal pipeline.

    Every row is checked against each brand's query (or --brand's), scored and
    stored like a collected mention; re-importing the same file adds nothing. Bad
    rows are reported by line number and skipped. Large files stream in batches.
    Rows by the brand's own accounts (its own_accounts for --source, and
    --own-account) are stored as its own posts.
    """
    column_map = {}
    for item in mapping:
        field_name, sep, column = item.partition("=")
        if not sep or not field_name or not column:
            raise CliError(f"--map: {item!r} must look like field=column", 2)
        column_map[field_name.strip()] = column.strip()
    settings = settings_from(ctx)
    queries = brand_queries(settings, source, brand, own_accounts)
    clock = clock_from(ctx)
    reader = FileSource(file, source, fmt, column_map, clock)
    size = max(file.stat().st_size, 1)
    vader = ingest.ReadyVader()
    with Store.open(settings.database) as store:
        pipeline = Pipeline(store, build_scoring(settings, store, vader=vader), clock)
        with click.progressbar(length=size, label=f"Importing {file.name}", file=sys.stderr) as bar:
            results = ingest.import_file(pipeline, reader, queries, vader, workers,
                                         progress=lambda done: bar.update(done - bar.pos))
            bar.update(size - bar.pos)
    report = {"file": str(file), "format": reader.format, "bad_lines": len(reader.bad_lines),
              "runs": [asdict(r) for r in results]}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for r in results:
        click.echo(f"{r.brand:<16} new={r.new} already stored={r.duplicates} not this brand={r.rejected}")
    if reader.bad_lines:
        click.echo(f"{len(reader.bad_lines)} bad line(s) skipped (first: line {reader.bad_lines[0]}); see the "
                   "warnings above", err=True)


@click.command()
@common_options
@click.pass_context
@handle_errors
def run(ctx: click.Context) -> None:
    """Run the daemon: scheduled pulls per brand and source, and the hourly stage.

    Pulls run at start-up (catching up from the saved cursors) and then every
    sources.NAME.every_minutes; the hourly stage at hourly.minute past each hour.
    SIGTERM or Ctrl-C finishes the batch in flight and exits 0. Logs go to stderr.
    """
    from listener.daemon import run_daemon  # lazily: scipy (alerts)
    settings = settings_from(ctx)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in root.handlers:
        handler.removeFilter(WITHOUT_RUN_LOG)  # the daemon's log is where its runs show
    ctx.exit(run_daemon(settings, clock_from(ctx)))
