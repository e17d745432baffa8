"""The search-mode cursor: one state per query (``records._QueryState``), read from a saved
search cursor, from a Jetstream cursor (a switch of mode), or for a first run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from connectors.base import Cursor
from connectors.bluesky.records import _bad_cursor, _parse_query_state, _QueryState, from_time_us


# -- cursor -----------------------------------------------------------------------------


def parse_search_cursor(since: Cursor | None, queries: list[str], brand: str,
                        first_since: datetime) -> dict[str, _QueryState]:
    """The state of each query: from the cursor, from a Jetstream cursor, or a first run
    from ``first_since`` (a query added to the brand since the last run starts there too)."""
    if since is None:
        return {q: _QueryState(first_since) for q in queries}
    if not isinstance(since, Mapping):
        raise _bad_cursor(since, brand, "not an object")
    if "time_us" in since and "queries" not in since:
        time_us = since["time_us"]
        if isinstance(time_us, bool) or not isinstance(time_us, int) or time_us < 0:
            raise _bad_cursor(since, brand, "time_us is not a count of microseconds")
        return {q: _QueryState(from_time_us(time_us)) for q in queries}
    saved = since.get("queries")
    if not isinstance(saved, Mapping):
        raise _bad_cursor(since, brand, "no 'queries' object")
    return {q: _parse_query_state(saved[q], since, brand) if q in saved else _QueryState(first_since)
            for q in queries}


def search_cursor(states: Mapping[str, _QueryState]) -> Cursor:
    return {"queries": {q: state.to_dict() for q, state in states.items()}}
