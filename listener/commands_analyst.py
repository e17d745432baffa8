"""Commands for analysts and for correcting the scorer: sql, export, label, accuracy.

``sql`` and ``export`` open the database read-only, or the daemon's snapshot while the
daemon holds it, with no access to other files (storage.analyst), so nothing an analyst
types can change the data or write beside it. ``label`` writes a
correction, or queues it for the daemon when the daemon holds the database.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from analysis.agreement import agreement_report
from analysis.sentiment import LABELS, VaderScorer
from connectors.base import Clock
from inputs.spend import InputFileError
from listener import formatting
from listener.cli_support import (
    CONTEXT_SETTINGS, CliError, clock_from, common_options, handle_errors, known_brands, open_existing, resolve_brand,
    say_reading, settings_from,
)
from listener.pipeline import Pipeline
from listener.shell import MODES, render, run_shell
from storage.analyst import FORMATS, QueryError, export, read_only, reading_path, run_query, writable_directory
from storage.errors import DatabaseLockedError
from storage.labelling import check_import, read_label_file, suggestions
from storage.labels import (
    CLEAR, LabelRequest, UnknownMentionError, apply_resolved, find_mentions, label_confusion, queue_label, queue_labels,
)
from storage.queries import stored_brands
from storage.snapshot import snapshot_path
from storage.store import Store


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO date or time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option}: {value!r} is not an ISO-8601 date or time like 2026-11-01 or "
                       f"2026-11-01T08:00Z", 2) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


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

    Reads the daemon's snapshot while the daemon runs. The views v_mentions,
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
    source = reading_path(settings.database)
    say_reading(source)
    with read_only(source.path, write_dir=allowed) as db:
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
    column (created_at, hour, last_at, date).
    """
    settings = settings_from(ctx)
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start and end and start >= end:
        raise CliError(f"--since {since} is not before --until {until}", 2)
    source = reading_path(settings.database)
    say_reading(source)
    # The connection may write into DIRECTORY only: export's own COPY statements.
    with read_only(source.path, write_dir=Path(os.path.abspath(directory))) as db:
        if brand is not None:
            stored = [r[0] for r in db.execute("SELECT DISTINCT brand FROM mentions ORDER BY 1").fetchall()]
            brand = resolve_brand(brand, settings, stored)
        files = export(db, directory, fmt, brand=brand, since=start, until=end)
    if as_json:
        click.echo(json.dumps({"directory": str(directory), "format": fmt,
                               "files": [{"name": f.name, "path": str(f.path), "rows": f.rows} for f in files]},
                              indent=2))
        return
    for f in files:
        click.echo(f"{f.path}  {f.rows:,} rows")


class _LabelGroup(click.Group):
    """``listener label ID LABEL`` is ``listener label set ID LABEL``: whatever does not
    name a subcommand goes to ``set`` (an id that is itself 'import' or 'next' is given
    as SOURCE:ID, or after 'set')."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["set", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_LabelGroup, context_settings=CONTEXT_SETTINGS)
def label() -> None:
    """Correct mentions' sentiment: one (set, the default), a file of them (import), or
    the ones worth labelling next (next).

    \b
    listener label MENTION_ID negative [--by NAME]
    listener label import labels.csv [--by NAME]
    listener label next [--brand B] [-n 20] [--random]
    """


@contextmanager
def _writable_or_snapshot(settings: Any) -> Iterator[tuple[Store, bool]]:
    """The database to label in, or, while the daemon holds it, its published snapshot
    (read-only) to check labels against before queueing them: (store, queued)."""
    try:
        store = Store.open(settings.database, create=False)
    except DatabaseLockedError:
        snapshot = snapshot_path(settings.database)
        if not snapshot.exists():
            raise
        with Store.open(snapshot, read_only=True) as published:
            yield published, True
        return
    with store:
        yield store, False


@label.command(name="set", context_settings=CONTEXT_SETTINGS)
@click.argument("mention_id", metavar="MENTION_ID")
@click.argument("label", type=click.Choice([*LABELS, CLEAR]))
@click.option("--source", metavar="NAME", help="The mention's source, when the id exists in several.")
@click.option("--brand", metavar="NAME", help="Only for this brand (default: every brand the post was stored for).")
@click.option("--by", "by", metavar="NAME", help="Who labels (kept with the label).")
@common_options
@click.pass_context
@handle_errors
def label_set(ctx: click.Context, mention_id: str, label: str, source: str | None, brand: str | None,
              by: str | None) -> None:
    """Correct a mention's sentiment: positive, neutral or negative (clear removes it).

    MENTION_ID is the platform's id (v_mentions.id), or SOURCE:ID. The label
    overrides VADER in every aggregate from the next hourly stage on (at once
    when the daemon is not running); VADER's own score is kept. While the daemon
    runs, the label is queued and the daemon applies it after its next cycle.
    """
    settings = settings_from(ctx)
    clock = clock_from(ctx)
    with _writable_or_snapshot(settings) as (store, queued):
        known = resolve_brand(brand, settings, stored_brands(store))
        try:
            request = LabelRequest(id=mention_id, label=label, source=source, brand=known, by=by, origin="cli")
        except ValueError as exc:  # an empty MENTION_ID
            raise CliError(f"MENTION_ID: {exc}", 2) from exc
        click.echo(_give(store, queued, settings.database, request, clock))


def _give(store: Store, queued: bool, database: Path, request: LabelRequest, clock: Clock) -> str:
    """Apply one label (and run the hourly stage), or queue it while the daemon holds the
    database (``store`` is then its snapshot); what happened, in words."""
    try:
        keys = find_mentions(store, request)
    except UnknownMentionError as exc:
        raise CliError(f"{exc} (in the daemon's latest snapshot)" if queued else str(exc), 2) from exc
    if queued:
        inbox = queue_label(database, request, clock())
        return (f"The daemon holds the database: queued {request.label} for {_names(keys)} in {inbox.name}; "
                f"the daemon applies it after its next cycle.")
    apply_resolved(store, [(request, keys)], clock())
    Pipeline(store, VaderScorer(), clock).score_hours()
    verb = "Cleared the label of" if request.label == CLEAR else f"Labelled {request.label}:"
    return f"{verb} {_names(keys)}; hourly mood and conversations recomputed."


def _names(keys: list) -> str:
    return ", ".join(f"{k.source}:{k.id} ({k.brand})" for k in keys)


@label.command(name="import", context_settings=CONTEXT_SETTINGS)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--by", "by", metavar="NAME", help="Who labelled, for rows without a 'by' column value.")
@click.option("--brand", metavar="NAME", help="The brand, for rows without a 'brand' column value "
                                              "(default: every brand the post was stored for).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@common_options
@click.pass_context
@handle_errors
def label_import(ctx: click.Context, file: Path, by: str | None, brand: str | None, as_json: bool) -> None:
    """Import the labels a team already has from a CSV file.

    The header names the columns: id (a mention id, or SOURCE:ID) and label
    (positive, neutral, negative or clear), optionally by, source and brand. The
    whole file is checked first: every bad row is named by its line and nothing is
    stored (exit 2). Then every label is applied in one transaction and the hourly
    stage runs; while the daemon runs, they are queued for it, all at once.
    """
    settings = settings_from(ctx)
    clock = clock_from(ctx)
    started = time.perf_counter()
    with _writable_or_snapshot(settings) as (store, queued):
        known = resolve_brand(brand, settings, stored_brands(store)) if brand is not None else None
        try:
            checked = check_import(store, read_label_file(file, by=by, brand=known))
        except InputFileError as exc:
            raise CliError(str(exc) + ("\n(checked against the daemon's latest snapshot)" if queued else "")
                           + "\nNothing was stored.", 2) from exc
        requests = [request for request, _ in checked.resolved]
        if queued:
            inbox = queue_labels(settings.database, requests, clock())
        else:
            mentions = apply_resolved(store, checked.resolved, clock())
            hours = Pipeline(store, VaderScorer(), clock).score_hours().hours
    counts = {name: sum(r.label == name for r in requests) for name in (*LABELS, CLEAR)}
    summary = {
        "file": str(file), "rows": len(requests), "repeated_rows": checked.repeated, "labels": counts,
        "queued": queued, "inbox": str(inbox) if queued else None,
        "mentions": None if queued else mentions, "hours_recomputed": None if queued else hours,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    given = ", ".join(f"{counts[name]:,} {name}" for name in (*LABELS, CLEAR) if counts[name])
    if queued:
        click.echo(f"The daemon holds the database: queued {len(requests):,} label(s) from {file.name} ({given}) "
                   f"in {inbox.name}; the daemon applies them after its next cycle.")
        return
    click.echo(f"Imported {len(requests):,} label(s) from {file.name} ({given or 'none'}) on {mentions:,} "
               f"mention(s)" + (f"; {checked.repeated:,} row(s) repeated an earlier one" if checked.repeated else "")
               + f"; {hours:,} hour(s) of mood and conversations recomputed.")


ANSWERS = {"p": "positive", "u": "neutral", "n": "negative"}


@label.command(name="next", context_settings=CONTEXT_SETTINGS)
@click.option("--brand", metavar="NAME", help="The brand (default: the only one, else required).")
@click.option("-n", "count", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="How many mentions.")
@click.option("--random", "random_sample", is_flag=True,
              help="A uniform random sample instead, for estimating accuracy.")
@click.option("--seed", type=int, metavar="S", help="The random sample's seed (default: drawn and printed).")
@click.option("--since", metavar="TIME", help="Only mentions from this UTC date or time on (default: all history).")
@click.option("--ask/--no-ask", default=None,
              help="Ask for each label (default: when run on a terminal without --json).")
@click.option("--by", "by", metavar="NAME", help="Who labels (kept with the label).")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON, without asking.")
@common_options
@click.pass_context
@handle_errors
def label_next(ctx: click.Context, brand: str | None, count: int, random_sample: bool, seed: int | None,
               since: str | None, ask: bool | None, by: str | None, as_json: bool) -> None:
    """The mentions worth labelling next, and (on a terminal) ask for their labels.

    By default the ones the scorer in effect is least sure of, spread over sources
    and days: their labels teach a model most. With --random, a uniform random
    sample (seeded) instead: their labels estimate the scorer's accuracy honestly.
    Answer p (positive), u (neutral), n (negative), s (skip) or q (quit); each
    answer is stored at once (queued while the daemon runs).
    """
    settings = settings_from(ctx)
    clock = clock_from(ctx)
    start = parse_time(since, "--since")
    with _writable_or_snapshot(settings) as (store, _):
        stored = stored_brands(store)
        names = known_brands(settings, stored)
        if brand is None and len(names) != 1:
            raise CliError(f"--brand: say which brand ({', '.join(names)})" if names else
                           "no brand has stored mentions yet: nothing to label", 2)
        name = resolve_brand(brand, settings, stored) or names[0]
        chosen = suggestions(store, name, count, random=random_sample, seed=seed, start=start)
    if ask is None:
        ask = not as_json and sys.stdin.isatty() and sys.stdout.isatty()
    if as_json:
        click.echo(json.dumps({"kind": chosen.kind, "brand": chosen.brand, "seed": chosen.seed,
                               "candidates": chosen.candidates, "origin": chosen.origin,
                               "mentions": [m.to_json() for m in chosen.mentions]}, indent=2, ensure_ascii=False))
        return
    click.echo(formatting.suggestions_heading(chosen))
    if not ask:
        click.echo(formatting.suggestions_table(chosen))
        return
    given = 0
    for number, mention in enumerate(chosen.mentions, start=1):
        click.echo("\n" + formatting.suggestion_text(mention, number, len(chosen.mentions)))
        answer = click.prompt("  label: p(ositive) u (neutral) n(egative) s(kip) q(uit)",
                              type=click.Choice([*ANSWERS, "s", "q"]), show_choices=False)
        if answer == "q":
            break
        if answer == "s":
            continue
        request = LabelRequest(id=mention.id, label=ANSWERS[answer], source=mention.source, brand=mention.brand,
                               by=by, origin=chosen.origin)
        # Opened per answer: a labelling session does not keep the daemon from starting.
        with _writable_or_snapshot(settings) as (store, queued):
            click.echo("  " + _give(store, queued, settings.database, request, clock))
        given += 1
    click.echo(f"\n{given} label(s) given, origin {chosen.origin}.")


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--brand", metavar="NAME", help="Only this brand's labels.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
@click.pass_context
@handle_errors
def accuracy(ctx: click.Context, brand: str | None, as_json: bool) -> None:
    """How far VADER, and each brand's model, agree with your team's manual labels.

    Accuracy with a 95 % interval, Cohen's kappa, precision and recall per
    label, the confusion matrix, and NSS on the labelled mentions by VADER and
    by your labels: how far to trust the mood figures on your own data. For a
    brand whose mood a model scores: its cross-validated figures beside VADER's
    on the same folds, per class with intervals, and the labels used. Labels
    from the random sample ('listener label next') also give the scorer in
    effect's agreement on an unbiased sample.
    """
    from listener.commands_model import accuracy_extra, accuracy_extra_lines  # noqa: PLC0415

    settings = settings_from(ctx)
    with open_existing(settings) as store:
        brand = resolve_brand(brand, settings, stored_brands(store))
        labelled, confusion = label_confusion(store, brand)
        extra = accuracy_extra(store, settings, brand)
    report = agreement_report(labelled, confusion)
    if as_json:
        click.echo(json.dumps({"brand": brand, **report.to_dict(), **extra}, indent=2))
        return
    click.echo("\n".join([formatting.agreement_text(report, brand), *accuracy_extra_lines(extra)]))
