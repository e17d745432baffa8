"""``listener model train|status|promote|rollback``: a mood scorer that learns from the
team's labels, switched on per brand only when it is better (listener.rescoring).

While the daemon holds the database, train, promote and rollback are queued beside it
(storage.models' inbox) and the daemon applies them after its cycle; they are checked
against the daemon's snapshot first, so a refusal comes at once.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from listener.cli_support import (
    CONTEXT_SETTINGS, clock_from, command_name, common_options, handle_errors, known_brands, open_existing,
    resolve_brand, settings_from,
)
from listener.config import Settings
from listener.pipeline import Pipeline
from listener.rescoring import (
    ChunkDone, TrainOutcome, promotable, promote, rollback, rollback_target, run_rescore, train_brand, with_workers,
)
from listener.scoring import build_scoring
from storage.errors import DatabaseLockedError
from storage.models import (
    Change, ModelRequest, StoredModel, active_models, brand_models, describe, label_set, labelled_brands,
    last_change, queue_request, random_sample_confusion, requests_path, rescore_jobs,
)
from storage.queries import stored_brands
from storage.snapshot import snapshot_path
from storage.store import Store

log = logging.getLogger("listener")

WORKERS = click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, metavar="N",
                       help="Score history with the model on N processes.")


@click.group(context_settings=CONTEXT_SETTINGS)
def model() -> None:
    """A mood scorer that learns from your labels: train, status, promote, rollback."""


# -- figures, for people ----------------------------------------------------------------------


def _ci(pair: Any) -> str:
    return "n/a" if not pair else f"{pair[0]:.2f}-{pair[1]:.2f}"


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def evaluation_lines(evaluation: dict[str, Any]) -> list[str]:
    """A model's stored cross-validated figures beside VADER's on the same folds."""
    folds = evaluation.get("folds", 0)
    model_f1, vader_f1 = evaluation.get("model_f1", []), evaluation.get("vader_f1", [])
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    verdict = "QUALIFIES" if evaluation.get("qualifies") else "does not qualify"
    lines = [
        f"cross-validated on {evaluation.get('labels', 0)} labels, {folds} folds (VADER judged on the same folds):",
        f"  macro-F1   model {_num(mean(model_f1))} (95 % CI {_ci(evaluation.get('model_f1_ci'))})   "
        f"VADER {_num(mean(vader_f1))} (95 % CI {_ci(evaluation.get('vader_f1_ci'))})",
        f"  gain {evaluation.get('mean_gain', 0):+.2f}, margin {evaluation.get('margin', 0):.2f}: {verdict} "
        f"({evaluation.get('reason', '')})",
        f"  {'class':<9} {'support':>7}   {'model precision':<22} {'model recall':<22} "
        f"{'VADER precision':<22} VADER recall",
    ]
    for label, figures in evaluation.get("model_classes", {}).items():
        vader = evaluation.get("vader_classes", {}).get(label, {})
        cells = [f"{_num(f.get('precision'))} [{_ci(f.get('precision_ci'))}]" for f in (figures, vader)]
        recall = [f"{_num(f.get('recall'))} [{_ci(f.get('recall_ci'))}]" for f in (figures, vader)]
        lines.append(f"  {label:<9} {figures.get('support', 0):>7}   {cells[0]:<22} {recall[0]:<22} "
                     f"{cells[1]:<22} {recall[1]}")
    return lines


def model_json(m: StoredModel) -> dict[str, Any]:
    return {"version": m.version, "scorer": m.scorer, "status": m.status, "trained_at": m.trained_at.isoformat(),
            "labels": m.labels, "labels_hash": m.labels_hash,
            "promoted_at": m.promoted_at and m.promoted_at.isoformat(),
            "retired_at": m.retired_at and m.retired_at.isoformat(), "qualifies": m.qualifies,
            "evaluation": m.evaluation, "params": m.params}


def accuracy_extra(store: Store, settings: Settings, brand: str | None) -> dict[str, Any]:
    """What ``listener accuracy`` adds to VADER's agreement: for each brand (or ``brand``)
    with a model in effect, its stored cross-validated figures beside VADER's on the same
    folds and the labels they came from; and, where the team labelled the honest random
    sample (origin 'next:random'), how far the scorer in effect agrees with it."""
    from analysis.agreement import agreement_report  # noqa: PLC0415

    models = []
    for m in brand_models(store, brand):
        if m.status != "active":
            continue
        now = label_set(store, m.brand)
        models.append({"brand": m.brand, "version": m.version, "scorer": m.scorer, "labels": m.labels,
                       "labels_hash": m.labels_hash, "labels_now": len(now.keys),
                       "labels_changed": now.hash != m.labels_hash, "qualifies": m.qualifies,
                       "evaluation": m.evaluation,
                       "in_effect": {b.name: b.scorer for b in settings.brands}.get(m.brand, "auto") == "auto"})
    sampled, confusion = random_sample_confusion(store, brand)
    sample = agreement_report(sampled, confusion).to_dict() if sampled else None
    return {"models": models, "random_sample": sample}


def accuracy_extra_lines(extra: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for m in extra["models"]:
        changed = (f"; {m['labels_now']} labels now, changed since: train again to use them"
                   if m["labels_changed"] else "")
        lines += ["", f"{m['brand']}: model {m['version']} in effect, trained on {m['labels']} labels "
                      f"(hash {m['labels_hash'][:12]}){changed}",
                  *("  " + line for line in evaluation_lines(m["evaluation"]))]
    sample = extra["random_sample"]
    if sample:
        low, high = sample["accuracy_ci95"] or (0, 0)
        lines += ["", f"The scorer in effect against the {sample['compared']} labels of the random sample "
                      f"('label next' random picks: an unbiased estimate)",
                  f"  agreement   {sample['accuracy']:.1%}  (95 % interval {low:.1%} to {high:.1%})"
                  if sample["accuracy"] is not None else "  agreement   n/a (none of them is scored)"]
    return lines


# -- the database, or the daemon's queue -----------------------------------------------------------


def _writable(settings: Settings) -> Store | None:
    """The database for writing, or None when the daemon holds it and has published a
    snapshot to check requests against (without one, the lock error stands)."""
    try:
        return Store.open(settings.database, create=False)
    except DatabaseLockedError:
        if not snapshot_path(settings.database).exists():
            raise
        return None


def _queue(settings: Settings, request: ModelRequest, what: str, clock: Any) -> None:
    inbox = queue_request(settings.database, request, clock())
    click.echo(f"The daemon holds the database: queued {what} in {inbox.name}; the daemon applies it after its "
               f"current cycle. Follow it with '{command_name()} model status'.")


def _follow(store: Store, settings: Settings, brand: str, clock: Any, workers: int) -> int:
    """Re-score the brand's history for the change just made, then recompute the hours."""
    scoring = build_scoring(settings, store)
    active = active_models(store).get(brand)
    parallel, opened = with_workers(scoring, {brand: active.payload} if active else {}, workers)
    jobs = rescore_jobs(store, brand)
    done = 0
    try:
        with click.progressbar(length=max(1, jobs[0].total - jobs[0].done if jobs else 1), label=f"Re-scoring {brand}'s history",
                               file=sys.stderr) as bar:
            def advance(step: ChunkDone) -> None:
                bar.update(step.mentions)

            done = run_rescore(store, parallel, brand, clock, progress=advance)
    finally:
        for pool in opened:
            pool.close()
    Pipeline(store, scoring, clock).score_hours()
    return done


def _said(change: Change, done: int) -> str:
    verb = "Promoted" if change.kind == "promote" else "Rolled back"
    return (f"{verb}: {change.brand} is now scored by {describe(change.active)} (was {describe(change.previous)}); "
            f"{done:,} stored mentions re-scored, hourly mood recomputed.")


def _change_json(change: Change, done: int) -> dict[str, Any]:
    return {"brand": change.brand, "kind": change.kind, "in_effect": describe(change.active),
            "replaced": describe(change.previous), "run_id": change.run_id, "rescored": done}


# -- commands ----------------------------------------------------------------------------------------


@model.command(context_settings=CONTEXT_SETTINGS)
@click.option("--brand", metavar="NAME", help="Only this brand (default: every brand with labels).")
@click.option("--promote", "then_promote", is_flag=True, help="Promote the model when it qualifies.")
@WORKERS
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
@click.pass_context
@handle_errors
def train(ctx: click.Context, brand: str | None, then_promote: bool, workers: int, as_json: bool) -> None:
    """Train a brand's model on its labelled mentions and cross-validate it.

    The model (word and character n-grams with VADER's scores, a regularised
    linear model) is stored with the labels it learned from and its figures
    against VADER on the same folds. It is used only once promoted, and may be
    promoted only when its macro-F1 beats VADER's by more than the margin the
    folds' spread gives.
    """
    settings = settings_from(ctx)
    clock = clock_from(ctx)
    store = _writable(settings)
    if store is None:
        with Store.open(snapshot_path(settings.database), read_only=True) as published:
            brand = resolve_brand(brand, settings, stored_brands(published))
        what = f"training for {brand or 'every brand with labels'}" + (" (then promotion if it qualifies)"
                                                                       if then_promote else "")
        _queue(settings, ModelRequest("train", brand, promote=then_promote), what, clock)
        return
    results: list[dict[str, Any]] = []
    with store:
        brand = resolve_brand(brand, settings, stored_brands(store))
        labelled = labelled_brands(store)
        brands = [brand] if brand else [b for b in known_brands(settings, labelled) if b in labelled]
        if not brands:
            message = (f"No labels yet{' for ' + brand if brand else ''}: label mentions with "
                       f"'{command_name()} label next' or '{command_name()} label ID LABEL', then train.")
            click.echo(json.dumps([]) if as_json else message)
            if as_json:
                click.echo(message, err=True)
            return
        for name in brands:
            outcome = train_brand(store, name, clock, progress=lambda step, name=name: log.info("%s: %s", name, step))
            change, done = None, 0
            if then_promote and outcome.model is not None and outcome.model.qualifies:
                change = promote(store, settings, name, outcome.model.version, clock)
                done = _follow(store, settings, name, clock, workers)
            results.append({"outcome": outcome, "change": change, "done": done})
    if as_json:
        click.echo(json.dumps([_train_json(r["outcome"], r["change"], r["done"]) for r in results], indent=2))
        return
    for r in results:
        click.echo("\n".join(_train_text(r["outcome"], settings, r["change"], r["done"])))


def _train_json(outcome: TrainOutcome, change: Change | None, done: int) -> dict[str, Any]:
    out: dict[str, Any] = {"brand": outcome.brand, "labels": len(outcome.labels.keys),
                           "labels_hash": outcome.labels.hash, "class_counts": outcome.labels.class_counts(),
                           "trained": outcome.model is not None, "too_few": outcome.short}
    if outcome.model is not None:
        out["model"] = model_json(outcome.model)
    if change is not None:
        out["promotion"] = _change_json(change, done)
    return out


def _train_text(outcome: TrainOutcome, settings: Settings, change: Change | None, done: int) -> list[str]:
    name = outcome.brand
    if outcome.model is None:
        return [f"{name}: not trained: {outcome.short}."]
    m = outcome.model
    lines = [f"{name}: trained model {m.version} on {m.labels} labels (labels hash {m.labels_hash[:12]})",
             *("  " + line for line in evaluation_lines(m.evaluation))]
    if change is not None:
        lines.append("  " + _said(change, done))
    elif m.qualifies:
        lines.append(f"  It is better than VADER on your labels. Next: '{command_name()} model promote --brand {name}' "
                     f"switches {name}'s mood to it and re-scores its history.")
    else:
        lines.append(f"  Not better than VADER by the margin yet: VADER stays in effect. Next: label more mentions "
                     f"('{command_name()} label next --brand {name}') and train again.")
    return lines


@model.command(context_settings=CONTEXT_SETTINGS)
@click.option("--brand", metavar="NAME", help="Only this brand.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
@click.pass_context
@handle_errors
def status(ctx: click.Context, brand: str | None, as_json: bool) -> None:
    """Which scorer each brand's mood uses, its models and any re-score in progress."""
    settings = settings_from(ctx)
    with open_existing(settings) as store:
        brand = resolve_brand(brand, settings, stored_brands(store))
        models = brand_models(store, brand)
        jobs = {j.brand: j for j in rescore_jobs(store, brand)}
        brands = [brand] if brand else known_brands(settings, [*stored_brands(store), *(m.brand for m in models)])
        rows = [_status_row(store, settings, name, [m for m in models if m.brand == name], jobs.get(name))
                for name in brands]
    queued = requests_path(settings.database)
    waiting = sum(1 for line in queued.read_text(encoding="utf-8").splitlines() if line.strip()) \
        if queued.is_file() else 0
    if as_json:
        click.echo(json.dumps({"brands": rows, "queued_requests": waiting}, indent=2))
        return
    for row in rows:
        effect = row["in_effect"]
        since = f" since {effect['since'][:16].replace('T', ' ')} UTC" if effect["since"] else ""
        click.echo(f"{row['brand']}: mood scored by {effect['scorer']} {effect['version']}{since}"
                   + ("" if row["configured_scorer"] == "auto" else f" (config: scorer = {row['configured_scorer']!r})"))
        for m in row["models"]:
            mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
            ev = m["evaluation"]
            click.echo(f"  model {m['version']:<16} {m['status']:<8} trained {m['trained_at'][:16].replace('T', ' ')}"
                       f"  {m['labels']:>5} labels  macro-F1 {_num(mean(ev.get('model_f1', [])))} vs VADER "
                       f"{_num(mean(ev.get('vader_f1', [])))}  {'qualifies' if m['qualifies'] else 'does not qualify'}")
        if not row["models"]:
            click.echo("  no model yet")
        job = row["rescore"]
        if job:
            click.echo(f"  re-scoring history for {job['scorer']} {job['version']}: {job['done']:,}/{job['total']:,} "
                       f"mentions (the daemon goes on with it; without one, '{command_name()} model rescore')")
    if waiting:
        click.echo(f"{waiting} model request(s) queued for the daemon in {queued.name}.")


def _status_row(store: Store, settings: Settings, name: str, models: list[StoredModel], job: Any) -> dict[str, Any]:
    active = [m for m in models if m.status == "active"]
    configured = {b.name: b.scorer for b in settings.brands}.get(name, "auto")
    if active and configured == "auto":
        effect = {"scorer": active[0].scorer, "version": active[0].version,
                  "since": active[0].promoted_at.isoformat()}
    else:
        changed = last_change(store, name)
        effect = {"scorer": "vader" if configured == "auto" else configured, "version": "" if configured != "auto"
                  else _vader_version(), "since": changed[1].isoformat() if changed and not active else None}
    return {"brand": name, "configured_scorer": configured, "in_effect": effect,
            "models": [model_json(m) for m in reversed(models)],
            "rescore": None if job is None else {"scorer": job.scorer, "version": job.version, "done": job.done,
                                                 "total": job.total, "requested_at": job.requested_at.isoformat()}}


def _vader_version() -> str:
    from analysis.sentiment import VaderScorer  # noqa: PLC0415 - loads the lexicon: only when shown

    return VaderScorer().version


@model.command(name="promote", context_settings=CONTEXT_SETTINGS)
@click.option("--brand", metavar="NAME", required=True, help="The brand.")
@click.option("--model", "version", metavar="VERSION", help="The model (default: the newest trained one).")
@WORKERS
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
@click.pass_context
@handle_errors
def promote_command(ctx: click.Context, brand: str, version: str | None, workers: int, as_json: bool) -> None:
    """Switch a brand's mood to its model and re-score its history.

    Refused (exit 2) unless the model qualifies by its stored figures and the
    brand's configured scorer is "auto". Recorded in runs; 'listener model
    rollback' undoes it.
    """
    _change(ctx, "promote", brand, version, workers, as_json)


@model.command(name="rollback", context_settings=CONTEXT_SETTINGS)
@click.option("--brand", metavar="NAME", required=True, help="The brand.")
@WORKERS
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
@click.pass_context
@handle_errors
def rollback_command(ctx: click.Context, brand: str, workers: int, as_json: bool) -> None:
    """Undo the brand's last promotion: back to the model (or VADER) it replaced.

    History is re-scored (back to VADER: its stored scores are put back in
    effect, nothing is scored). Recorded in runs.
    """
    _change(ctx, "rollback", brand, None, workers, as_json)


@model.command(name="rescore", context_settings=CONTEXT_SETTINGS)
@click.option("--brand", metavar="NAME", help="Only this brand.")
@WORKERS
@common_options
@click.pass_context
@handle_errors
def rescore_command(ctx: click.Context, brand: str | None, workers: int) -> None:
    """Finish re-scoring history left unfinished (a promote or rollback cut short).

    The daemon does this by itself when it starts; this is for a database no
    daemon runs on. 'listener model status' shows what is left.
    """
    settings = settings_from(ctx)
    clock = clock_from(ctx)
    with Store.open(settings.database, create=False) as store:
        brand = resolve_brand(brand, settings, stored_brands(store))
        jobs = rescore_jobs(store, brand)
        for job in jobs:
            done = _follow(store, settings, job.brand, clock, workers)
            click.echo(f"{job.brand}: {done:,} more stored mentions re-scored for {job.scorer} {job.version}; "
                       f"hourly mood recomputed.")
    if not jobs:
        click.echo("Nothing to re-score: every brand's history is scored by its scorer in effect.")


def _change(ctx: click.Context, kind: str, brand: str, version: str | None, workers: int, as_json: bool) -> None:
    settings = settings_from(ctx)
    clock = clock_from(ctx)
    store = _writable(settings)
    if store is None:
        with Store.open(snapshot_path(settings.database), read_only=True) as published:
            brand = resolve_brand(brand, settings, stored_brands(published))
            if kind == "promote":
                chosen = promotable(published, settings, brand, version)
                what = f"the promotion of model {chosen.version} for {brand}"
                version = chosen.version
            else:
                _, target = rollback_target(published, brand)
                what = f"the rollback of {brand} to {describe(target)}"
        _queue(settings, ModelRequest(kind, brand, version), what, clock)
        return
    with store:
        brand = resolve_brand(brand, settings, stored_brands(store))
        change = (promote(store, settings, brand, version, clock) if kind == "promote"
                  else rollback(store, settings, brand, clock))
        done = _follow(store, settings, brand, clock, workers)
    if as_json:
        click.echo(json.dumps(_change_json(change, done), indent=2))
        return
    click.echo(_said(change, done))

