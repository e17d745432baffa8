"""Shared fixtures: a real DuckDB file on disk and a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from connectors.base import Mention
from storage.store import Store

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=timezone.utc)


def mention(i: int | str, text: str, at: datetime, *, brand: str = "Acme", source: str = "test",
            conversation: str | None = None, likes: int = 0, reposts: int = 0, replies: int = 0) -> Mention:
    return Mention(
        source=source, id=str(i), brand=brand, created_at=at, text=text, author=f"user{i}",
        conversation_id=conversation, metrics={"likes": likes, "reposts": reposts, "replies": replies},
    )


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = Store.open(tmp_path / "test.duckdb")
    yield s
    s.close()


class FixedClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()
