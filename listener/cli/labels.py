"""Correcting the scorer: ``listener label set|import|next`` and ``listener accuracy``.

``label`` writes a correction, or queues it for the daemon when the daemon holds the
database (checked against its snapshot first).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from analysis.agreement import agreement_report
from analysis.sentiment import LABELS, VaderScorer
from connectors.base import Clock
from inputs.spend import InputFileError
from listener import formatting
from listener.cli_support import (
    CONTEXT_SETTINGS, CliError, clock_from, common_options, handle_errors, known_brands, open_existing, parse_time,
    resolve_brand, settings_from,
)
from listener.pipeline import Pipeline
from storage.errors import DatabaseLockedError
from storage.labelling import check_import, read_label_file, suggestions
from storage.labels import (
    CLEAR, LabelRequest, UnknownMentionError, apply_resolved, find_mentions, label_confusion, queue_label, queue_labels,
)
from storage.queries import stored_brands
from storage.snapshot import snapshot_path
from storage.store import Store


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
    from listener.cli.model import accuracy_extra, accuracy_extra_lines  # noqa: PLC0415

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
