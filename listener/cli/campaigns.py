"""``listener campaigns import|list`` and ``listener report``: campaign spend and plans
in, the mood-ROI report out (listener.report builds it, analysis.report_render renders)."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from inputs.plan import read_plan
from inputs.spend import read_spend
from listener import formatting
from listener.cli.analyst import reading_store
from listener.cli_support import (
    CONTEXT_SETTINGS, CliError, clock_from, common_options, handle_errors, known_brands, open_existing, parse_as_of,
    resolve_brand, resolve_campaign, settings_from,
)
from storage import queries, report_data
from storage.campaigns import campaign_summary, save_plans, save_spend
from storage.store import Store


@click.group(context_settings=CONTEXT_SETTINGS)
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
    spend_file = read_spend(file, currency=currency, platform=platform, account_timezone=timezone_name,
                            brands=known)
    plans = read_plan(plan, brands=known) if plan else []
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



@click.command()
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
    with reading_store(settings) as store:
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

