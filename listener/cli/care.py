"""``listener care``: how each brand answers its customers, and whether answering turns
the thread (analysis.care, analysis.reply_effect; docs/care.md).

Registered in the CLI by listener/cli/__init__.py.
"""

from __future__ import annotations

import json

import click

from analysis.care import GOALS, CareSummary, GoalProgress, goal_progress, reply_hours, summarize
from analysis.reply_effect import MIN_PER_SIDE, ReplyEffect, estimate
from listener.cli_support import (
    CONTEXT_SETTINGS, CliError, clock_from, common_options, handle_errors, open_existing, resolve_brand, settings_from,
)
from listener.cli.alerts import parse_since
from listener.config import BrandSettings, Settings
from storage.care import care_threads, negative_threads
from storage.queries import label_counts, stored_brands

DEFAULT_PERIOD = "28d"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _hours(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} h"


def _effect_lines(effect: ReplyEffect) -> list[str]:
    if effect.effect is None or effect.ci is None:
        return [f"  Does answering turn the thread? Not enough comparable threads yet (a stratum needs "
                f"{MIN_PER_SIDE} answered and {MIN_PER_SIDE} unanswered threads that opened negative and went on)."]
    low, high = effect.ci
    verdict = ("customers' later posts were kinder after a reply" if low > 0
               else "customers' later posts were harsher after a reply" if high < 0
               else "no difference we can tell from chance")
    lines = [
        "  Does answering turn the thread?",
        f"    {effect.effect:+.1f} NSS points in customers' posts after the brand's first reply, against "
        f"comparable unanswered threads (95% CI {low:+.1f} to {high:+.1f}): {verdict}.",
        f"    From {effect.answered} answered and {effect.unanswered} unanswered threads that opened negative, "
        f"in {effect.strata} strata (brand, source, starting mood, size, time of day); "
        f"{effect.unmatched_answered} answered threads had no comparable unanswered ones.",
    ]
    lines += [f"    Caveat: {caveat}" for caveat in effect.caveats]
    return lines


def _goal_value(goal: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if goal in ("response_rate", "resolved_share"):
        return f"{100 * value:.0f}%"
    return f"{value:.1f} h" if goal == "reply_hours" else f"{value:+.0f}"


def _goal_lines(goals: list[GoalProgress]) -> list[str]:
    if not goals:
        return []
    lines = ["  Goals"]
    for g in goals:
        ci = "" if g.ci is None else f" (95% CI {_goal_value(g.goal, g.ci[0])} to {_goal_value(g.goal, g.ci[1])})"
        verdict = g.verdict or "no figure yet"
        lines.append(f"    {GOALS[g.goal][0]}: {_goal_value(g.goal, g.value)}{ci} against a goal of "
                     f"{'at least' if GOALS[g.goal][1] else 'at most'} {_goal_value(g.goal, g.target)}: {verdict}")
    return lines


def _text(summary: CareSummary, effect: ReplyEffect, goals: list[GoalProgress]) -> str:
    ci = summary.response_rate_ci
    rate = _percent(summary.response_rate) + (f" (95% CI {_percent(ci[0])}-{_percent(ci[1])})" if ci else "")
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
            hours = None if configured is None else configured.business_hours
            threads = care_threads(store, name, start, end)
            summary = summarize(name, start, end, threads, hours)
            zone = hours.timezone if hours is not None else "UTC"
            effect = estimate(negative_threads(store, name, start, end), zone=zone)
            goals: list[GoalProgress] = []
            if configured is not None and configured.care_goals:
                counts = label_counts(store, name, start, end)
                goals = goal_progress(configured.care_goals, summary, reply_hours(threads, hours),
                                      counts.positive, counts.negative, counts.mentions)
            results.append((summary, effect, goals))
    if as_json:
        click.echo(json.dumps({"brands": [{**s.to_json(), "goals": [g.to_json() for g in g_],
                                           "reply_effect": e.to_json()} for s, e, g_ in results]},
                              indent=2, ensure_ascii=False))
        return
    if not results:
        click.echo("No brands configured or stored yet.", err=True)
        return
    click.echo("\n\n".join(_text(s, e, g) for s, e, g in results))
