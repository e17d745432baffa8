"""Turning results into what the CLI prints: text tables for people, JSON for tools."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from analysis.mood import Mood, difference_se
from listener.pipeline import MoodWindows


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def window_json(mood: Mood) -> dict[str, Any]:
    return {
        "mentions": mood.mentions,
        "duplicates": mood.duplicates,
        "unscored": mood.unscored,
        "scored": mood.scored,
        "positive": mood.positive,
        "neutral": mood.neutral,
        "negative": mood.negative,
        "nss": None if mood.nss is None else round(mood.nss, 2),
        "nss_se": None if mood.nss_se is None else round(mood.nss_se, 2),
    }


def mood_json(mood: MoodWindows) -> dict[str, Any]:
    change = None
    if mood.last_24h.nss is not None and mood.baseline_7d.nss is not None:
        change = {
            "nss": round(mood.last_24h.nss - mood.baseline_7d.nss, 2),
            "se": round(difference_se(mood.last_24h.nss_se, mood.baseline_7d.nss_se) or 0.0, 2),
        }
    return {
        "brand": mood.brand,
        "as_of": mood.as_of.isoformat(),
        "last_hour": window_json(mood.last_hour),
        "last_24h": window_json(mood.last_24h),
        "baseline_7d": window_json(mood.baseline_7d),
        "change_24h_vs_baseline": change,
    }


def nss_text(mood: Mood) -> str:
    if mood.nss is None:
        return f"{'no data':>16}"
    return f"{mood.nss:>+8.1f} ± {mood.nss_se:<5.1f}"


def mood_text(mood: MoodWindows) -> str:
    lines = [
        f"{mood.brand} — mood as of {mood.as_of:%Y-%m-%d %H:%M} UTC",
        f"  {'window':<16}{'mentions':>9}  {'NSS ± SE':>16}{'pos':>7}{'neu':>7}{'neg':>7}",
    ]
    for name, window in (("last hour", mood.last_hour), ("last 24 h", mood.last_24h), ("7-day baseline", mood.baseline_7d)):
        lines.append(
            f"  {name:<16}{window.mentions:>9,}  {nss_text(window)}{window.positive:>7,}{window.neutral:>7,}{window.negative:>7,}"
        )
    if mood.last_24h.nss is not None and mood.baseline_7d.nss is not None:
        diff = mood.last_24h.nss - mood.baseline_7d.nss
        se = difference_se(mood.last_24h.nss_se, mood.baseline_7d.nss_se) or 0.0
        lines.append(f"  last 24 h vs baseline: {diff:+.1f} ± {se:.1f} NSS points")
    left_out = mood.last_24h.duplicates + mood.last_24h.unscored
    if left_out:
        lines.append(
            f"  last 24 h: {mood.last_24h.unscored:,} not scored (not English), "
            f"{mood.last_24h.duplicates:,} near-duplicate copies; counted in volume, not in mood"
        )
    return "\n".join(lines)


def run_counts(row: dict[str, Any]) -> str:
    if row["fetched"] is None:
        return ""
    if row["kind"] in ("hourly", "rebuild"):
        # The hourly stage records hours recomputed as fetched, conversations as new.
        return f" hours={row['fetched']} conversations={row['new']}"
    return f" fetched={row['fetched']} new={row['new']} duplicates={row['duplicates']}"


def demo_json(summary: Any) -> dict[str, Any]:
    return {
        "database": str(summary.database),
        "spend_file": str(summary.spend_file),
        "truth_file": str(summary.truth_file),
        "mentions": summary.mentions,
        "new": summary.new,
        "mood": mood_json(summary.mood),
        "report_files": [str(p) for p in summary.report_files],
        "campaigns": [{"campaign_id": c["campaign_id"], "verdict": c["verdict"],
                       "headline_effect": c["headline_effect"]} for c in summary.report["campaigns"]],
        "seconds": round(summary.seconds, 2),
    }
