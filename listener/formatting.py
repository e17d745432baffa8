"""Turning results into what the CLI prints: text tables for people, JSON for tools."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from analysis.mood import Mood, difference_se
from storage.analyst import plain
from storage.queries import Provenance

if TYPE_CHECKING:
    # Types only: listener.pipeline imports the writing side of storage (and pyarrow),
    # which the reading commands that format their output do not need.
    from analysis.agreement import AgreementReport
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


def _share(part: int, whole: int) -> str:
    share = 100 * part / whole
    if 0 < share < 0.5:
        return "<1 %"
    if 99.5 <= share < 100:
        return ">99 %"
    return f"{share:.0f} %"


def provenance_text(provenance: Provenance) -> str:
    """"scored by learned 1-abc123 (96 %), vader 3.3.2 (4 %); ...": which scorers the
    figures come from, the manual labels over them, and a re-scoring under way."""
    total = sum(s.mentions for s in provenance.scorers)
    if not total:
        text = "no scored mentions"
    else:
        text = "scored by " + ", ".join(f"{s.scorer} {s.version} ({_share(s.mentions, total)})"
                                        for s in provenance.scorers)
    if provenance.labelled:
        text += f"; {provenance.labelled:,} manual label(s) override the scorer"
    if provenance.rescoring:
        job = provenance.rescoring
        text += (f"; re-scoring history with {job.scorer} {job.version}: {100 * job.fraction:.0f} % done "
                 f"({job.done:,} of {job.total:,})")
    return text


def provenance_json(provenance: Provenance) -> dict[str, Any]:
    total = sum(s.mentions for s in provenance.scorers)
    job = provenance.rescoring
    return {
        "scorers": [{"scorer": s.scorer, "version": s.version, "mentions": s.mentions,
                     "share": round(s.mentions / total, 4)} for s in provenance.scorers],
        "labelled": provenance.labelled,
        "rescoring": None if job is None else {"scorer": job.scorer, "version": job.version, "total": job.total,
                                               "done": job.done, "fraction": round(job.fraction, 4)},
        "text": provenance_text(provenance),
    }


def mood_json(mood: MoodWindows, provenance: Provenance | None = None) -> dict[str, Any]:
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
        **({} if provenance is None else {"scored_by": provenance_json(provenance)}),
    }


def nss_text(mood: Mood) -> str:
    if mood.nss is None:
        return f"{'no data':>16}"
    return f"{mood.nss:>+8.1f} ± {mood.nss_se:<5.1f}"


def mood_text(mood: MoodWindows, provenance: Provenance | None = None) -> str:
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
    if provenance is not None:
        lines.append(f"  these 8 days: {provenance_text(provenance)}")
    return "\n".join(lines)


def run_counts(row: dict[str, Any]) -> str:
    if row["fetched"] is None:
        return ""
    if row["kind"] in ("hourly", "rebuild"):
        # The hourly stage records hours recomputed as fetched, conversations as new.
        return f" hours={row['fetched']} conversations={row['new']}"
    return f" fetched={row['fetched']} new={row['new']} duplicates={row['duplicates']}"


def demo_json(summary: Any) -> dict[str, Any]:
    from analysis.roi.campaign import to_jsonable  # lazily: the statistics stack; the demo loaded it

    return {
        "database": str(summary.database),
        "spend_file": str(summary.spend_file),
        "truth_file": str(summary.truth_file),
        "mentions": summary.mentions,
        "new": summary.new,
        "mood": mood_json(summary.mood, summary.mood_provenance),
        "report_files": [str(p) for p in summary.report_files],
        "campaigns": [{"campaign_id": c.campaign_id, "verdict": c.verdict,
                       "headline_effect": to_jsonable(c.headline_effect)} for c in summary.report.campaigns],
        "alerts": summary.alerts,
        "seconds": round(summary.seconds, 2),
    }


# -- query results (listener sql) -------------------------------------------------------

# Mention text is other people's: in a terminal, control characters (ANSI escapes above
# all) are shown as escapes, never sent raw.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
MAX_CELL = 60


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    value = plain(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False) if isinstance(
        value, (list, dict)) else str(value)
    return text.translate(_CONTROL)


def result_table(columns: list[str], rows: list[tuple[Any, ...]], max_cell: int = MAX_CELL) -> str:
    """An aligned text table; long cells are cut with an ellipsis."""
    cells = [[_cut(cell_text(v), max_cell) for v in row] for row in rows]
    widths = [max([len(name), *(len(r[i]) for r in cells)]) for i, name in enumerate(columns)]
    lines = ["  ".join(name.ljust(w) for name, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.append(f"({len(rows):,} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def result_csv(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """RFC 4180 CSV: every field with a comma, quote or line break is quoted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else _csv_value(plain(v)) for v in row])
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


def result_json(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    return json.dumps([dict(zip(columns, (plain(v) for v in row))) for row in rows], ensure_ascii=False, indent=2)


def agreement_text(report: AgreementReport, brand: str | None) -> str:
    scope = f"{brand}'s" if brand else "all"
    if not report.compared:
        return (f"No labelled mentions with a VADER score among {scope} labels ({report.labelled} labelled): "
                f"label some with 'listener label MENTION_ID positive|neutral|negative'.")
    low, high = report.accuracy_ci
    lines = [
        f"VADER against {report.compared:,} of {scope} manually labelled mentions"
        + (f" ({report.labelled - report.compared:,} more are labelled but VADER did not score them)"
           if report.labelled > report.compared else ""),
        f"  agreement   {report.accuracy:.1%}  (95 % interval {low:.1%} to {high:.1%})",
        f"  kappa       {report.kappa:.2f}" if report.kappa is not None else "  kappa       undefined (one label only)",
        f"  NSS         VADER {report.nss_vader:+.1f}, your labels {report.nss_manual:+.1f}",
        "",
        f"  {'your label':<12}{'VADER: positive':>17}{'neutral':>9}{'negative':>10}{'recall':>9}",
    ]
    for truth in ("positive", "neutral", "negative"):
        row = report.confusion[truth]
        recall = report.recall[truth]
        lines.append(f"  {truth:<12}{row['positive']:>17,}{row['neutral']:>9,}{row['negative']:>10,}"
                     f"{'' if recall is None else f'{recall:.0%}':>9}")
    precision = "".join(f"{'' if report.precision[l] is None else f'{report.precision[l]:.0%}':>{w}}"
                        for l, w in (("positive", 17), ("neutral", 9), ("negative", 10)))
    lines.append(f"  {'precision':<12}{precision}")
    if not report.enough:
        lines.append(f"\n  Only {report.compared} compared: the interval is wide; label at least 50 for a "
                     f"figure to lean on.")
    lines.append("  Labels are the mentions your team chose to check, not a random sample.")
    return "\n".join(lines)


# -- label next ---------------------------------------------------------------------------


def suggestions_heading(chosen: Any) -> str:
    """What ``listener label next`` shows (storage.labelling.Suggestions) and why."""
    shown = len(chosen.mentions)
    if chosen.kind == "random":
        return (f"{shown} of {chosen.brand}'s {chosen.candidates:,} scored mentions, drawn uniformly at random "
                f"(seed {chosen.seed}; --seed {chosen.seed} draws them again): labels of a random sample estimate "
                f"how accurate the scorer is, free of the team's choice of mentions. Stored with origin "
                f"{chosen.origin}.")
    if not shown:
        return f"No unlabelled scored mention of {chosen.brand} is left to suggest."
    return (f"The {shown} of {chosen.brand}'s {chosen.candidates:,} unlabelled scored mentions whose labels would "
            f"teach the model most: those the scorer in effect is least sure of (uncertainty 1: on the edge "
            f"between two labels), spread over sources and days. Stored with origin {chosen.origin}; "
            f"'listener label next --random' draws a random sample for estimating accuracy instead.")


def _current(mention: Any) -> str:
    current = f"{mention.scorer} {mention.scorer_version} says {mention.scorer_label} ({mention.compound:+.2f})"
    if mention.manual_label:
        current += f"; labelled {mention.manual_label} ({mention.manual_origin or 'label'})"
    return current


def suggestion_text(mention: Any, number: int, total: int) -> str:
    """One suggested mention, for the question ``label next`` asks."""
    return "\n".join([
        f"[{number}/{total}] {mention.source}:{mention.id}  {mention.created_at:%Y-%m-%d %H:%M} UTC  "
        f"uncertainty {mention.uncertainty:.2f}",
        f"  {_cut(cell_text(mention.text), 500)}",
        f"  {_current(mention)}",
    ])


def suggestions_table(chosen: Any) -> str:
    columns = ["mention", "created (UTC)", "uncertainty", "scorer in effect", "text"]
    rows = [(f"{m.source}:{m.id}", f"{m.created_at:%Y-%m-%d %H:%M}", f"{m.uncertainty:.2f}", _current(m), m.text)
            for m in chosen.mentions]
    return result_table(columns, rows)
