"""Shared fixtures: a real DuckDB file on disk, a fixed clock, and one demo run."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

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


def readme_figures() -> ModuleType:
    """docs/readme_figures.py, the README's demo figures generator (a script, not a package)."""
    name = "readme_figures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "docs" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """One ``listener demo --dir listener-demo --as-of <fixed> --json`` for the whole
    session (tens of seconds, minutes under load): the run the README's figures are
    generated from. ``.directory`` holds its files, ``.summary`` its JSON, ``.stderr`` its
    messages; ``.listener(...)`` runs another command beside it. Read it, never change it:
    other tests share it."""
    return readme_figures().run_demo(tmp_path_factory.mktemp("demo"))
