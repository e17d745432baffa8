"""What the live mood view shows, as one JSON-able dict (``build_view``).

The page (listener.web.render) and ``/api/live.json`` are both drawn from it. The mood
windows are ``Pipeline.mood`` formatted by ``formatting.mood_json``, exactly what
``listener mood --json`` prints; everything else comes from storage.live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from analysis.care import BusinessHours
from analysis.mood import mood_from_counts
from analysis.sentiment import Scorer
from listener.formatting import jsonable, mood_json
from listener.pipeline import Pipeline
from storage import live
from storage.labelling import suggestions
from storage.live import Reading
from storage.queries import MOOD_HISTORY, provenance

HOURS = 48
CONVERSATIONS = 5
TO_LABEL = 3  # mentions of each kind in the "label these" panel
TEXT_LIMIT = 1000  # characters of a mention's text in that panel's data


@dataclass(frozen=True, slots=True)
class BrandView:
    """A brand on the page and whom its share of voice is measured against; its
    business hours and engagement goals (the config's) for the care page."""

    name: str
    competitors: tuple[str, ...] = ()
    business_hours: BusinessHours | None = None
    care_goals: tuple[tuple[str, float], ...] = ()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def hourly_series(reading: Reading, brand: str, now: datetime) -> list[dict[str, Any]]:
    """The last HOURS UTC hours up to and including the current (partial) one, every
    hour present (zeros where nothing was stored)."""
    current = now.replace(minute=0, second=0, microsecond=0)
    start = current - timedelta(hours=HOURS - 1)
    found = {row.hour: row for row in live.hourly_counts(reading.store, brand, start, now)}
    series = []
    for n in range(HOURS):
        hour = start + timedelta(hours=n)
        row = found.get(hour)
        counts = (0, 0, 0, 0, 0, 0) if row is None else (
            row.mentions, row.positive, row.neutral, row.negative, row.duplicates, row.unscored)
        mood = mood_from_counts(*counts)
        series.append({
            "hour": hour, "partial": hour == current, "mentions": mood.mentions, "scored": mood.scored,
            "positive": mood.positive, "neutral": mood.neutral, "negative": mood.negative,
            "nss": _round(mood.nss), "nss_se": _round(mood.nss_se),
        })
    return series


def share_of_voice(reading: Reading, brand: str, against: Sequence[str], now: datetime) -> dict[str, Any]:
    """Mentions of the brand and of ``against`` in the mood windows (last 24 h, and the 7
    days before), each with its share of their sum."""
    names = [brand, *[n for n in against if n != brand]]
    day_ago = now - timedelta(hours=24)
    windows = {"last_24h": (day_ago, now), "baseline_7d": (day_ago - timedelta(days=7), day_ago)}
    out: dict[str, Any] = {"brands": names}
    for key, (start, end) in windows.items():
        volume = live.mention_volume(reading.store, names, start, end)
        total = sum(volume.values())
        out[key] = [{"brand": n, "mentions": volume[n], "share": round(volume[n] / total, 4) if total else None}
                    for n in names]
    return out


def to_label(reading: Reading, brand: str, now: datetime) -> dict[str, Any]:
    """The panel of mentions to label next (storage.labelling.suggestions): the few the
    scorer in effect is least sure of and a few drawn at random, from the last 24 h (what
    the team is looking at, and a bounded scan). The random draw's seed is the hour, so
    the sample stays put while the page refreshes, and is another one the next hour."""
    start = now - timedelta(hours=24)
    uncertain = suggestions(reading.store, brand, TO_LABEL, start=start, end=now)
    drawn = suggestions(reading.store, brand, TO_LABEL, random=True, seed=int(now.timestamp() // 3600),
                        start=start, end=now)
    return {kind: {"origin": chosen.origin, "candidates": chosen.candidates, "seed": chosen.seed,
                   # the page shows 280 characters of a post: no need to send a 1 MB one whole
                   "mentions": [{**m.to_json(), "text": m.text[:TEXT_LIMIT]} for m in chosen.mentions]}
            for kind, chosen in (("uncertain", uncertain), ("random", drawn))}


def build_view(
    reading: Reading,
    brands: Sequence[BrandView],
    scorer: Scorer,
    now: datetime,
    *,
    generated_at: datetime | None = None,
    labels_queued: int = 0,
    tracked: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Everything the page shows for ``brands`` as of ``now`` (tz-aware UTC). A brand
    without competitors is compared with the other ``tracked`` brands (default:
    ``brands``)."""
    pipeline = Pipeline(reading.store, scorer, lambda: now)
    alerts = live.open_alerts(reading.store, now)
    tracked = list(tracked) if tracked is not None else [b.name for b in brands]
    out_brands = []
    for brand in brands:
        against = list(brand.competitors) or [n for n in tracked if n != brand.name]
        out_brands.append({
            "brand": brand.name,
            "competitors": list(brand.competitors),
            "mood": mood_json(pipeline.mood(brand.name, as_of=now),
                              provenance(reading.store, brand.name, now - MOOD_HISTORY, now)),
            "hourly": hourly_series(reading, brand.name, now),
            "share_of_voice": share_of_voice(reading, brand.name, against, now),
            "conversations": live.active_conversations(reading.store, brand.name, now - timedelta(hours=24), now,
                                                       limit=CONVERSATIONS),
            "alerts": [a for a in alerts if a["brand"] == brand.name],
            "to_label": to_label(reading, brand.name, now),
        })
    return jsonable({
        "as_of": now,
        "generated_at": generated_at or now,
        "data": {"kind": reading.kind, "published_at": reading.published_at},
        "brands": out_brands,
        "tracked_brands": tracked,
        "alerts": alerts,
        "freshness": live.source_freshness(reading.store, now),
        "labels_queued": labels_queued,
    })
