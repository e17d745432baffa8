"""``listener care``: how each brand answers its customers, and whether answering turns
the thread (analysis.care, analysis.reply_effect; docs/care.md).

Registered in the CLI by listener/cli/__init__.py.
"""

from __future__ import annotations

import json

import click

from analysis.care import CareSummary, GoalProgress, effect_sentences, goal_sentence
from analysis.reply_effect import ReplyEffect
from listener.cli_support import (
    CONTEXT_SETTINGS, CliError, clock_from, common_options, handle_errors, open_existing, resolve_brand, settings_from,
)
from listener.cli.alerts import parse_since
from listener.config import BrandSettings, Settings
from storage.care import care_figures
from storage.queries import stored_brands

DEFAULT_PERIOD = "28d"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _hours(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} h"


def _effect_lines(effect: ReplyEffect) -> list[str]:
    first, *rest = effect_sentences(effect)
    if not rest:
        return [f"  Does answering turn the thread? {first}"]
    lines = ["  Does answering turn the thread?", *(f"    {line}" for line in (first, *rest))]
    return lines + [f"    Caveat: {caveat}" for caveat in effect.caveats]


def _goal_lines(goals: list[GoalProgress]) -> list[str]:
    return ["  Goals", *(f"    {goal_sentence(g)}" for g in goals)] if goals else []


def _text(summary: CareSummary, effect: ReplyEffect, goals: list[GoalProgress]) -> str:
    ci = summary.response_rate_ci
    rate = _percent(summary.response_rate) + (f" (95 % range {_percent(ci[0])}-{_percent(ci[1])})" if ci else "")
    clock = f"business hours: {summary.business_hours}" if summary.business_hours else "wall-clock hours"
    lines = [
        f"{summary.brand}  threads opened {summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC",
        f"  Threads                 {summary.threads}",
        f"  Needing a reply         {summary.needing_reply} (opened negative or asking)",
        f"  Answered by the brand   {summary.answered} of {summary.needing_reply}: {rate}",
        f"  Time to first reply     median {_hours(summary.reply_hours_median)}, "
        f"90th percentile {_hours(summary.reply_hours_p90)} ({clock})",
        f"  Resolved                {summary.resolved} of {summary.started_negative} threads that opened negative "
        f"({_percent(summary.resolved_share)}): the last customer post positive or neutral",
    ]
    return "\n".join(lines + _goal_lines(goals) + _effect_lines(effect))


def _configured(settings: Settings, brand: str) -> BrandSettings | None:
    return {b.name: b for b in settings.brands}.get(brand)


@click.command(name="care", context_settings=CONTEXT_SETTINGS)
@click.option("--brand", "brand", metavar="NAME", help="One brand (default: every brand).")
@click.option("--since", "since", metavar="TIME", default=DEFAULT_PERIOD, show_default=True,
              help="Threads opened at or after TIME: ISO 8601 (UTC if no zone) or an age like 48h, 7d, 2w.")
@click.option("--until", "until", metavar="TIME",
              help="Threads opened before TIME (ISO 8601 or an age; default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
@click.pass_context
@handle_errors
def care_command(ctx: click.Context, brand: str | None, since: str, until: str | None, as_json: bool) -> None:
    """Customer care per brand: threads needing a reply, response rate, time to first
    reply, threads resolved, progress against the brand's care_goals, and whether
    answering turns the thread.

    A thread needs a reply when its first customer post is negative or asks ('?'); the
    brand's posts are those of its own_accounts. Time to first reply counts the brand's
    business_hours where the config gives them. See docs/care.md.
    """
    settings = settings_from(ctx)
    now = clock_from(ctx)()
    start = parse_since(since, now)
    end = now if until is None else parse_since(until, now)
    if end <= start:
        raise CliError(f"--until ({end:%Y-%m-%d %H:%M}) must come after --since ({start:%Y-%m-%d %H:%M})", 2)
    with open_existing(settings) as store:
        stored = stored_brands(store)
        chosen = resolve_brand(brand, settings, stored)
        brands = [chosen] if chosen else list(dict.fromkeys([*(b.name for b in settings.brands), *stored]))
        results = []
        for name in brands:
            configured = _configured(settings, name)
            results.append(care_figures(store, name, start, end, configured.business_hours if configured else None,
                                        configured.care_goals if configured else ()))
    if as_json:
        click.echo(json.dumps({"brands": [r.to_json() for r in results]}, indent=2, ensure_ascii=False))
        return
    if not results:
        click.echo("No brands configured or stored yet.", err=True)
        return
    click.echo("\n\n".join(_text(r.summary, r.effect, list(r.goals)) for r in results))
