"""The demo connector's cursor contract over the simulated world (demo/world.py, tested in
tests/demo/): back-fill with safe checkpoints, resuming after a crash, only what is new,
language and exclusions, and its settings."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from connectors.base import BrandQuery, Connector
from connectors.demo import SETTINGS, DemoConnector, create
from demo.world import default_world
from tests.conftest import FixedClock

END = datetime(2026, 11, 21, 15, 30, tzinfo=timezone.utc)


def until(batch) -> datetime:
    return datetime.fromisoformat(batch.checkpoint["until"])


def test_connector_first_run_back_fills_history_with_safe_checkpoints():
    clock = FixedClock(END)
    world = default_world(END, days=10)
    connector = DemoConnector(world, clock, history_days=10)
    assert isinstance(connector, Connector) and connector.name == "demo"
    batches = list(connector.fetch(BrandQuery("Kettle & Co"), None))
    marks = [until(b) for b in batches]
    assert marks == sorted(marks) and len(set(marks)) == len(marks)
    assert all(mark <= END for mark in marks) and marks[-1] == END
    mentions = [m for b in batches for m in b.mentions]
    expected = world.mentions_between("Kettle & Co", END - timedelta(days=10), END, fetched_at=END)
    assert mentions == list(expected)
    previous = END - timedelta(days=10)
    for batch, mark in zip(batches, marks):  # a checkpoint covers exactly what came before it
        assert all(previous <= m.created_at < mark for m in batch.mentions)
        previous = mark
    assert all(m.fetched_at == END for m in mentions)
    connector.close()


def test_connector_resumes_after_a_crash_without_losing_or_doubling():
    world = default_world(END, days=5)
    first = DemoConnector(world, FixedClock(END - timedelta(hours=30)), history_days=5, batch_hours=7)
    crashed = []
    for i, batch in enumerate(first.fetch(BrandQuery("Beanhaus"), None)):
        crashed.append(batch)
        if i == 4:
            break  # the process dies here; the cursor saved with batch 4 survives
    cursor = crashed[-1].checkpoint
    second = DemoConnector(world, FixedClock(END), history_days=5, batch_hours=7)
    resumed = list(second.fetch(BrandQuery("Beanhaus"), cursor))
    ids = [m.id for b in crashed + resumed for m in b.mentions]
    expected = [m.id for m in world.mentions_between(
        "Beanhaus", END - timedelta(hours=30) - timedelta(days=5), END)]
    assert ids == expected
    assert until(resumed[-1]) == END


def test_connector_next_run_fetches_only_what_is_new():
    world = default_world(END, days=3)
    clock = FixedClock(END - timedelta(hours=5))
    connector = DemoConnector(world, clock, history_days=3)
    first = list(connector.fetch(BrandQuery("Brewly"), None))
    clock.now = END
    second = list(connector.fetch(BrandQuery("Brewly"), first[-1].checkpoint))
    assert len(second) == 1 and until(second[0]) == END
    assert second[0].mentions == tuple(
        world.mentions_between("Brewly", END - timedelta(hours=5), END, fetched_at=END))
    third = list(connector.fetch(BrandQuery("Brewly"), second[-1].checkpoint))
    assert [(b.mentions, until(b)) for b in third] == [((), END)]


def test_connector_never_checkpoints_past_the_run_start():
    world = default_world(END, days=3)
    connector = DemoConnector(world, FixedClock(END), history_days=3)
    future = {"until": (END + timedelta(days=1)).isoformat()}
    batches = list(connector.fetch(BrandQuery("Brewly"), future))
    assert all(until(b) <= END for b in batches)
    with pytest.raises(ValueError):
        list(connector.fetch(BrandQuery("Brewly"), {"until": "2026-11-01T00:00:00"}))  # naive


def test_connector_honours_language_and_exclusions():
    world = default_world(END, days=2)
    connector = DemoConnector(world, FixedClock(END), history_days=1)
    french = list(connector.fetch(BrandQuery("Brewly", languages=("fr",)), None))
    assert [b.mentions for b in french] == [()]
    all_ = [m for b in connector.fetch(BrandQuery("Brewly"), None) for m in b.mentions]
    author = Counter(m.author for m in all_).most_common(1)[0][0]
    query = BrandQuery("Brewly", exclude=("latte",), exclude_authors=(author,))
    kept = [m for b in connector.fetch(query, None) for m in b.mentions]
    assert kept and len(kept) < len(all_)
    assert all("latte" not in m.text.lower() and m.author != author for m in kept)


def test_factory_reads_and_validates_settings():
    clock = FixedClock(END)
    connector = create({}, clock)
    assert connector.history_days == SETTINGS["history_days"].default == 60
    assert connector.world.seed == SETTINGS["seed"].default == 7
    assert connector.world.campaigns == default_world(END).campaigns
    other = create({"seed": 3, "history_days": 14}, clock)
    assert (other.world.seed, other.history_days, other.world.start) == (3, 14, END - timedelta(days=14))
    for bad in ({"seed": "7"}, {"history_days": True}, {"history_days": 0}):
        with pytest.raises(ValueError):
            create(bad, clock)
    assert all(isinstance(spec.doc, str) and spec.doc for spec in SETTINGS.values())
