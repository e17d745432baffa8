"""The ``demo`` connector: serves a simulated ``DemoWorld`` through the Connector protocol.

It behaves like an oldest-first timestamp API, so it exercises the same cursor path as
the real sources: the first run back-fills ``history_days``, later runs continue from
the saved cursor, and every batch carries a checkpoint that is safe to save because no
older mention can still arrive after it. Time comes from the injected clock, read once
per run, so the cursor never moves past the run's start (docs/design.md, "State and
idempotency") and tests control time completely.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from connectors.base import Batch, BrandQuery, Clock, Cursor, Mention, ensure_utc
from connectors.settings import Setting, settings_table, validated
from demo.world import EPOCH, DemoWorld, default_world

SETTINGS = settings_table(
    Setting("seed", int, 7, "Seed of the simulated world; the same seed gives the same mentions."),
    # At most the days since the world's EPOCH: checked in create(), which knows the clock.
    Setting("history_days", int, 60, "Days of history the first run back-fills (and the world spans).", min=1),
)


class DemoConnector:
    """Simulated mentions for any brand, fetched oldest-first in ``batch_hours`` chunks."""

    name = "demo"

    def __init__(self, world: DemoWorld, clock: Clock, history_days: int = 60,
                 batch_hours: int = 24) -> None:
        if history_days < 0 or batch_hours < 1:
            raise ValueError("history_days must be >= 0 and batch_hours >= 1")
        self.world = world
        self._clock = clock
        self.history_days = history_days
        self.batch_hours = batch_hours

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        """Yield the mentions created in [cursor, run start), one batch per chunk.

        Only non-empty chunks are yielded, except the last one, which always comes and
        checkpoints the run start so the cursor advances even through quiet hours.
        """
        run_start = ensure_utc(self._clock(), "clock()")
        if since and since.get("until"):
            window_start = _parse_until(since["until"])
        else:
            window_start = run_start - timedelta(days=self.history_days)
        # A cursor ahead of the clock (the clock went back) is pulled back to run_start:
        # the next run re-reads the stretch between, which idempotent storage skips.
        window_start = min(window_start, run_start)
        step = timedelta(hours=self.batch_hours)
        chunk_start = window_start
        while True:
            chunk_end = min(chunk_start + step, run_start)
            mentions = tuple(self._select(query, self.world.mentions_between(
                query.brand, chunk_start, chunk_end, fetched_at=run_start)))
            last = chunk_end >= run_start
            if mentions or last:
                yield Batch(mentions=mentions, checkpoint={"until": chunk_end.isoformat()})
            if last:
                return
            chunk_start = chunk_end

    @staticmethod
    def _select(query: BrandQuery, mentions: Iterable[Mention]) -> Iterable[Mention]:
        """Apply the parts of the query a simulated English source can honour:
        languages, excluded terms and excluded authors (brand terms always match)."""
        if query.languages and "en" not in {lang.lower() for lang in query.languages}:
            return ()
        excluded = tuple(term.casefold() for term in query.exclude if term)
        blocked = {author.lstrip("@").casefold() for author in query.exclude_authors}
        if not excluded and not blocked:
            return mentions
        return (m for m in mentions if not _excluded(m, excluded, blocked))


    def close(self) -> None:
        """Nothing to release: the world lives in memory."""


def _excluded(mention: Mention, terms: tuple[str, ...], authors: set[str]) -> bool:
    if authors and (mention.author or "").casefold() in authors:
        return True
    return any(term in mention.text.casefold() for term in terms)


def _parse_until(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"demo cursor 'until' must be an ISO-8601 string, got {value!r}")
    return ensure_utc(datetime.fromisoformat(value), "cursor 'until'")


def create(settings: Mapping[str, Any], clock: Clock) -> DemoConnector:
    """Entry-point factory: a connector over ``default_world`` ending now.

    The world's campaign dates follow the clock at creation (its flight ends 10 days
    before "now"), so a fresh demo always shows a recent campaign.
    """
    values = validated("demo", SETTINGS, settings)
    seed, history_days = values["seed"], values["history_days"]
    now = ensure_utc(clock(), "clock()")
    # The simulated world begins at its EPOCH: a longer history has nothing to show, and a
    # huge one would overflow datetime before the world could say so.
    most = (now - EPOCH).days
    if not 1 <= history_days <= most:
        raise ValueError(f"demo setting 'history_days' must be from 1 to {most} (the simulated world "
                         f"begins on {EPOCH.date()}), got {history_days}")
    world = default_world(end=now, seed=seed, days=history_days)
    return DemoConnector(world, clock, history_days=history_days)
