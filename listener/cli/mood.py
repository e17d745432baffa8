"""``listener mood`` and ``listener status``: how each brand feels now, and what the
pipeline has done (runs, cursors, counts)."""

from __future__ import annotations

import json

import click

from listener import formatting
from listener.cli_support import (
    clock_from, common_options, handle_errors, open_existing, parse_as_of, resolve_brand, settings_from,
)
from storage import queries


@click.command()
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
    # Here, not at the top: 'listener status' shares this module and needs neither the
    # pipeline (its writing side: multiprocessing, pyarrow) nor the scorer.
    from analysis.sentiment import VaderScorer  # noqa: PLC0415
    from listener.pipeline import Pipeline  # noqa: PLC0415

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


@click.command()
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

