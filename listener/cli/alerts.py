"""``listener alerts``: the alert history, with what drove each alert.

Registered on the root group in listener/cli/__init__.py.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from listener.cli_support import (
    CONTEXT_SETTINGS, CliError, clock_from, common_options, handle_errors, open_existing, resolve_brand, settings_from,
)
from storage.alerts import list_alerts
from storage.queries import stored_brands

_AGE = re.compile(r"(\d+)\s*([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime) -> datetime:
    """An ISO-8601 time (UTC when it has no zone) or an age like 48h, 7d, 2w."""
    match = _AGE.fullmatch(value.strip().lower())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"--since: {value!r} is neither an ISO-8601 time like 2026-11-20T18:00Z "
                       "nor an age like 48h, 7d or 2w", 2) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _json(alert: dict[str, Any]) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "alert_id": alert["alert_id"], "brand": alert["brand"], "metric": alert["metric"],
        "direction": alert["direction"], "hour": iso(alert["hour"]), "detected_at": iso(alert["detected_at"]),
        "open": alert["closed_at"] is None, "closed_at": iso(alert["closed_at"]),
        "value": alert["value"], "baseline": alert["baseline"], "statistic": alert["statistic"],
        "control_limit": alert["control_limit"], "mentions": alert["mentions"], "summary": alert["summary"],
        "explanation": alert["explanation"],
        "deliveries": [{**d, "attempted_at": iso(d["attempted_at"])} for d in alert["deliveries"]],
    }


def _delivery_text(deliveries: list[dict[str, Any]]) -> str:
    if not deliveries:
        return "not delivered (no channel configured, or older than alerts.deliver_max_age_hours)"
    parts = []
    for channel in dict.fromkeys(d["channel"] for d in deliveries):
        attempts = [d for d in deliveries if d["channel"] == channel]
        sent = next((d for d in attempts if d["status"] == "sent"), None)
        if sent is not None:
            parts.append(f"{channel} sent {sent['attempted_at']:%Y-%m-%d %H:%M} UTC")
        else:
            parts.append(f"{channel} failed ({len(attempts)} attempt(s); last: {attempts[-1]['error']})")
    return "; ".join(parts)


@click.command(name="alerts", context_settings=CONTEXT_SETTINGS)
@click.option("--brand", "brand", metavar="NAME", help="One brand (default: every brand).")
@click.option("--since", "since", metavar="TIME",
              help="Only alerts of hours at or after TIME: ISO 8601 (UTC if no zone) or an age like 48h, 7d, 2w.")
@click.option("--open", "open_only", is_flag=True, help="Only alerts still open (not yet back within limits).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
@click.pass_context
@handle_errors
def alerts_command(ctx: click.Context, brand: str | None, since: str | None, open_only: bool, as_json: bool) -> None:
    """Alert history: dips and spikes in each brand's mood and volume, newest first.

    Each alert shows the rule's figures (the EWMA statistic against its control
    limit), the distinctive terms, the sources and the conversations that drove it,
    whether it is still open, and its deliveries (webhook, e-mail). Alerts are found
    by the hourly stage; see docs/alerts.md for the rule.
    """
    settings = settings_from(ctx)
    moment = None if since is None else parse_since(since, clock_from(ctx)())
    with open_existing(settings) as store:
        brand = resolve_brand(brand, settings, stored_brands(store))
        rows = list_alerts(store, brand=brand, since=moment, open_only=open_only)
    if as_json:
        click.echo(json.dumps({"alerts": [_json(r) for r in rows]}, indent=2, ensure_ascii=False, default=str))
        return
    if not rows:
        click.echo("No alerts" + (" matching the filters." if brand or since or open_only else " yet."), err=True)
        return
    from analysis.alerts import describe  # numpy and the detector: only when alerts are shown

    blocks = []
    for row in rows:
        state = "OPEN" if row["closed_at"] is None else f"closed {row['closed_at']:%Y-%m-%d %H:%M} UTC"
        head = (f"#{row['alert_id']}  {row['hour']:%Y-%m-%d %H:00} UTC  {row['brand']}  "
                f"{row['metric']} {row['direction']}  {state}")
        body = [f"  {line}" for line in describe(row)]
        body.append(f"  Delivered: {_delivery_text(row['deliveries'])}")
        blocks.append("\n".join([head, *body]))
    click.echo("\n\n".join(blocks))
