"""The ``listener`` command: a thin shell over the pipeline.

Data goes to stdout (a table, or JSON with ``--json``), messages and progress to
stderr. Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
Every command takes ``--config`` and ``--db``, before or after its name.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from analysis.sentiment import VaderScorer
from listener import formatting
from listener.config import DEFAULT_CONFIG_NAME, Settings
from connectors.errors import AuthError, ConnectorError
from inputs.mentions import FORMATS as FILE_FORMATS
from inputs.plan import read_plan
from inputs.spend import InputFileError, read_spend
from inputs.mentions import FileSource, ImportFormatError
from listener import ingest
from listener.pipeline import Pipeline
from listener.scoring import build_scoring
from storage import queries, report_data
from storage.campaigns import campaign_summary, save_plans, save_spend
from storage.rollup import RollupProgress
from storage.store import Store
from listener.cli_support import (
    CONTEXT_SETTINGS, CliError, _store_in_root, clock_from, common_options, handle_errors, open_existing,
    command_name, known_brands, parse_as_of, resolve_brand, resolve_campaign, settings_from,
)
from listener.commands_analyst import accuracy, export_command, label, sql
from listener.commands_serve import serve
from listener.commands_alerts import alerts_command
from listener.commands_model import model
from listener.commands_care import care_command

SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


class _WithoutRunLog(logging.Filter):
    """Drops the run log (``listener.runs``: each pull's and hourly stage's outcome)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("listener.runs")


WITHOUT_RUN_LOG = _WithoutRunLog()


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


@cli.command()
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


@cli.command()
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


def _progress_shown(ctx: click.Context) -> tuple[bool, bool]:
    """(stderr is a terminal, progress is shown): on a terminal, or with -v."""
    interactive = sys.stderr.isatty()
    return interactive, interactive or bool(ctx.find_root().params.get("verbose"))


@cli.command()
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


@cli.command()
@click.option("--brand", "brand", metavar="NAME", help="One brand (default: every brand).")
@click.option("--as-of", "as_of", metavar="TIME", help="Evaluate at this UTC time instead of now (ISO 8601).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
@click.pass_context
@handle_errors
def mood(ctx: click.Context, brand: str | None, as_of: str | None, as_json: bool) -> None:
    """Brand mood now: last hour, last 24 h and the 7-day baseline before them.

    Each window shows its Net Sentiment Score, NSS = 100 (positive - negative) /
    scored, with its standard error and mention counts.
    """
    settings = settings_from(ctx)
    moment = parse_as_of(as_of)
    with open_existing(settings) as store:
        stored = queries.stored_brands(store)
        names = [b.name for b in settings.brands] or stored
        if brand is not None:
            names = [resolve_brand(brand, settings, stored)]
        pipeline = Pipeline(store, VaderScorer(), clock_from(ctx))
        moods = [pipeline.mood(name, as_of=moment) for name in names]
        sources = [queries.provenance(store, m.brand, m.as_of - queries.MOOD_HISTORY, m.as_of) for m in moods]
    if as_json:
        click.echo(json.dumps({"brands": [formatting.mood_json(m, p) for m, p in zip(moods, sources)]},
                              indent=2))
        return
    if not moods:
        click.echo("No brands yet: configure brands and run 'listener pull', or run 'listener demo'.", err=True)
    click.echo("\n\n".join(formatting.mood_text(m, p) for m, p in zip(moods, sources)))


@cli.command()
@click.option("--runs", "recent", default=20, show_default=True, type=click.IntRange(1, 10_000), help="How many recent runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
@click.pass_context
@handle_errors
def status(ctx: click.Context, recent: int, as_json: bool) -> None:
    """Recent runs, cursors, and mention counts per source and brand."""
    settings = settings_from(ctx)
    with open_existing(settings) as store:
        report = queries.status(store, recent_runs=recent)
    if as_json:
        click.echo(json.dumps(formatting.jsonable({"database": str(settings.database), **report}), indent=2))
        return
    click.echo(f"Database: {settings.database}")
    click.echo("Mentions per source and brand:")
    for row in report["sources"]:
        click.echo(
            f"  {row['source']:<10} {row['brand']:<14} {row['mentions']:>9,} mentions, {row['scored']:>9,} scored, "
            f"latest {row['last_at']:%Y-%m-%d %H:%M} UTC"
        )
    click.echo(f"Hours waiting for the hourly stage: {report['pending_hours']}")
    if report["coverage_24h"]:
        click.echo("Coverage, last 24 h of platform counts (stored search hits / posts the platform counted):")
        for row in report["coverage_24h"]:
            share = f"{100 * row['stored'] / row['platform_posts']:.0f} %" if row["platform_posts"] else "-"
            click.echo(f"  {row['source']:<10} {row['brand']:<14} {row['stored']:>8,} / {row['platform_posts']:<8,} {share}")
    click.echo("Cursors:")
    for row in report["cursors"]:
        click.echo(f"  {row['source']:<10} {row['brand']:<14} {row['cursor']}  (saved {row['updated_at']:%Y-%m-%d %H:%M} UTC)")
    click.echo("Recent runs:")
    for row in report["runs"]:
        where = " ".join(filter(None, [row["source"], row["brand"]])) or "-"
        counts = formatting.run_counts(row)
        error = f"  error: {row['error']}" if row["error"] else ""
        click.echo(f"  #{row['run_id']:<5} {row['kind']:<8} {where:<24} {row['status']:<8} {row['started_at']:%Y-%m-%d %H:%M}{counts}{error}")


@cli.command()
@click.option("--brand", "brand", metavar="NAME", help="Only this brand (default: every brand).")
@click.option("--source", "source", metavar="NAME", help="Only this source (default: every enabled source).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@common_options
@click.pass_context
@handle_errors
def pull(ctx: click.Context, brand: str | None, source: str | None, as_json: bool) -> None:
    """Run one collection cycle by hand: each brand from each source, from its cursor.

    A source whose credentials are missing or rejected is reported and skipped; the
    others go on. Exit 1 if any pull failed.
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
                    except AuthError as exc:
                        if show:
                            click.echo(f"{ended}{what}: credentials refused, skipping {name}", err=True)
                        opened.park(name, str(exc))
                        break
                    except ConnectorError as exc:
                        if show:
                            click.echo(f"{ended}{what}: failed", err=True)
                        failures.append({"source": name, "brand": entry.name, "error": str(exc)})
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
        ctx.exit(1)


@cli.command(name="import")
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
    if not SOURCE_NAME.fullmatch(source):
        raise CliError(f"--source: {source!r} must be lower-case letters, digits, '-' or '_'", 2)
    column_map = {}
    for item in mapping:
        field_name, sep, column = item.partition("=")
        if not sep or not field_name or not column:
            raise CliError(f"--map: {item!r} must look like field=column", 2)
        column_map[field_name.strip()] = column.strip()
    settings = settings_from(ctx)
    brands = [settings.brand(brand)] if brand else list(settings.brands)
    if not brands:
        raise CliError("no brands configured: imports are matched against the brands' queries", 2)
    if own_accounts and not brand:
        raise CliError("--own-account needs --brand: whose own posts they are", 2)
    queries = [entry.query.with_accounts_on(source, own_accounts) if own_accounts else entry.query
               for entry in brands]
    clock = clock_from(ctx)
    try:
        reader = FileSource(file, source, fmt, column_map, clock)
    except ImportFormatError as exc:
        raise CliError(str(exc), 2) from exc
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


@cli.group(context_settings=CONTEXT_SETTINGS)
def campaigns() -> None:
    """Campaign spend and plans: import ad-platform exports, list what is stored."""


@campaigns.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--plan", "plan", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A plan file pre-registering each campaign's flight, washout, goal, competitors, tags.")
@click.option("--currency", metavar="CODE", help="The currency, when the export does not say (ISO 4217).")
@click.option("--timezone", "timezone_name", metavar="TZ", help="The ad account's time zone (e.g. America/New_York).")
@click.option("--platform", metavar="NAME", help="The platform, when the export does not say.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@common_options
@click.pass_context
@handle_errors
def campaigns_import(ctx: click.Context, file: Path, plan: Path | None, currency: str | None,
                     timezone_name: str | None, platform: str | None, as_json: bool) -> None:
    """Import a spend export (Google Ads UI or API, Meta Ads Manager or Insights
    API, or the canonical CSV) and optionally a plan file.

    A file with any bad row is rejected whole, each problem named by file, row and
    column (exit 2); nothing is stored. A brand (spend file's brand column, plan's
    brand or competitors) must be a configured brand or one with stored mentions.
    Re-importing replaces the same days.
    """
    settings = settings_from(ctx)
    stored: list[str] = []
    if settings.database.exists():
        with Store.open(settings.database) as store:
            stored = queries.stored_brands(store)
    known = known_brands(settings, stored)
    try:
        spend_file = read_spend(file, currency=currency, platform=platform, account_timezone=timezone_name,
                                brands=known)
        plans = read_plan(plan, brands=known) if plan else []
    except InputFileError as exc:
        raise CliError(str(exc), 2) from exc
    now = clock_from(ctx)()
    with Store.open(settings.database) as store:
        stored = save_spend(store, spend_file.rows, now)
        planned = save_plans(store, plans, now)
    result = {"file": str(file), "format": spend_file.format, "sha256": spend_file.sha256, "rows": stored,
              "currency": spend_file.currency, "plans": planned}
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{file.name}: {stored} spend row(s) ({spend_file.format}, {spend_file.currency})"
                   + (f"; {planned} campaign plan(s)" if plan else ""))


@campaigns.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
@click.pass_context
@handle_errors
def campaigns_list(ctx: click.Context, as_json: bool) -> None:
    """Campaigns with stored spend: dates, total spend, and their plan if imported."""
    settings = settings_from(ctx)
    with open_existing(settings) as store:
        rows = campaign_summary(store)
    if as_json:
        click.echo(json.dumps(formatting.jsonable(rows), indent=2, default=str))
        return
    for r in rows:
        flight = f"flight {r['flight_start']}..{r['flight_end']} ({r['plan_brand']})" if r["flight_start"] else "no plan"
        click.echo(f"{r['platform']:<11} {r['campaign_id']:<14} {r['first_day']}..{r['last_day']} "
                   f"{r['spend']:>12,.2f} {r['currency']}  {flight}  {r['campaign_name'] or ''}")


@cli.command()
@click.option("--brand", "brand", metavar="NAME", help="The brand (default: the first plan's brand).")
@click.option("--campaign", "campaign", metavar="ID", help="Only this campaign.")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "json"]), default="html", show_default=True,
              help="One self-contained HTML page, Markdown, or the JSON the others are rendered from.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@click.option("--timezone", "timezone_name", metavar="TZ", help="Cut days in this time zone (default: the plan's).")
@click.option("--as-of", "as_of", metavar="TIME", help="Report as of this UTC time instead of now (ISO 8601).")
@common_options
@click.pass_context
@handle_errors
def report(ctx: click.Context, brand: str | None, campaign: str | None, fmt: str, out: Path | None,
           timezone_name: str | None, as_of: str | None) -> None:
    """The campaign mood-ROI report: did the spend move how people feel?

    For each imported campaign plan: NSS with its standard error, share of voice,
    interrupted time series and difference-in-differences with AR(1) errors, volume
    lift, carry-over, incremental net-positive conversations and their cost, the
    minimum detectable effect, diagnostics, and a verdict with its caveats.
    """
    from listener.report import build_report  # lazily: statsmodels and scipy
    from analysis.report_render import render

    if timezone_name is not None:
        try:
            ZoneInfo(timezone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise CliError(f"--timezone: {timezone_name!r} is not a time zone name like America/New_York", 2) from None
    settings = settings_from(ctx)
    now = parse_as_of(as_of) or clock_from(ctx)()
    with open_existing(settings) as store:
        brand = resolve_brand(brand, settings, queries.stored_brands(store))
        campaign = resolve_campaign(campaign, [plan.campaign_id for plan in report_data.plans(store)])
        built = build_report(store, now, brand=brand, campaign=campaign, timezone_name=timezone_name,
                             brands=settings.brands)
    text = render(built, fmt)
    if out is None:
        click.echo(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {out}", err=True)


@cli.command()
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


# Commands that live in their own modules.
for _command in (sql, export_command, label, accuracy, serve, alerts_command, model, care_command):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="listener")


if __name__ == "__main__":  # pragma: no cover
    main()
