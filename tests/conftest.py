"""Shared fixtures: a real DuckDB file on disk, a fixed clock, and one demo run; the
hypothesis profiles; and how the suite reports progress and orders its files.

Hypothesis profiles. ``ci`` (the default) is deterministic: ``derandomize=True`` derives
every example from the test itself, so the same command draws the same examples on every
machine and run, and no example database is written into the checkout. (Hypothesis also
mixes in constants it reads from the source of the project modules imported, so running
a subset, ``-k`` or one file, may draw other examples than the whole suite: both are
reproducible.) No deadlines: on 2 shared cores wall-clock deadlines make a suite flaky.
``dev`` searches harder and at random, keeping failures in the local example database:
``HYPOTHESIS_PROFILE=dev .venv/bin/python -m pytest tests/property``. A failure found
there goes into the test as an explicit ``@example`` so that ``ci`` covers it from then on.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from connectors.base import Mention
from storage.store import Store

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

pytest_plugins = ["tests.progress"]

# System suites: they start the daemon, the demo, a browser or dozens of processes. They
# are marked ``slow``, so ``pytest -m "not slow"`` is the quick subset (README): every file
# under tests/system/, and the files named here. A new system test file goes under
# tests/system/ (it is then marked) and into this list at the place its cost gives it.
SLOW_FILES = (
    "tests/system/test_secrets.py",
    "tests/system/test_crash_safety.py",
    "tests/listener/test_cli.py",
    "tests/system/test_daemon.py",
    "tests/system/test_faulty_peers.py",
    "tests/system/test_concurrent_readers.py",
    "tests/system/test_readme_claims.py",
    "tests/listener/test_serve.py",
    "tests/system/test_workspace_browser.py",
    "tests/system/test_charts_browser.py",
    "tests/system/test_serve_while_daemon_starts.py",
    "tests/analysis/test_alerts.py",
    "tests/system/test_serve_browser.py",
    "tests/system/test_parallel_scoring.py",
    "tests/system/test_models_daemon.py",
    "tests/system/test_secret_encodings.py",
    "tests/system/test_hourly_backlog.py",
    "tests/system/test_report_browser.py",
    "tests/cluster/test_leases.py",
    "tests/cluster/test_daemons.py",
)
# Unit test files long enough (tens of CPU seconds) that starting one late would leave
# a worker running it alone at the end.
LONG_FILES = (
    "tests/listener/test_analyst_commands.py",
    "tests/analysis/test_roi_recovery.py",
    "tests/storage/test_rollup.py",
    "tests/listener/test_alerting.py",
    "tests/listener/test_models.py",
    "tests/listener/test_labelling.py",
    "tests/connectors/test_contract.py",
)
# The order files run in: under ``--dist loadfile`` (.ci/run) each worker takes the next
# whole file as it frees up, so the costliest go first, roughly by their CPU time in a
# whole run (with 2 cores and 3 workers the suite is CPU-bound), and the many short files
# fill in around them, instead of a long file starting last and running on alone.
ORDER = SLOW_FILES + LONG_FILES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A moved or renamed file would silently lose its mark and its place: say so instead.
    missing = [path for path in ORDER if not (config.rootpath / path).is_file()]
    if missing:
        raise pytest.UsageError(f"tests/conftest.py SLOW_FILES or LONG_FILES names no such file: {', '.join(missing)}")
    rank = {path: n for n, path in enumerate(ORDER)}
    for item in items:
        path = item.nodeid.split("::")[0]
        if path in SLOW_FILES or path.startswith("tests/system/"):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


T0 = datetime(2026, 11, 1, 10, 0, tzinfo=timezone.utc)

TWO_BRANDS = """
[database]
path = "listener.duckdb"

[[brands]]
name = "Brewly"
terms = ["brewly"]

[[brands]]
name = "Beanhaus"
terms = ["beanhaus"]
"""
"""The start of a config: the database beside it and two brands (add sources after it)."""


def mention(i: int | str, text: str, at: datetime, *, brand: str = "Acme", source: str = "test",
            conversation: str | None = None, likes: int = 0, reposts: int = 0, replies: int = 0) -> Mention:
    return Mention(
        source=source, id=str(i), brand=brand, created_at=at, text=text, author=f"user{i}",
        conversation_id=conversation, metrics={"likes": likes, "reposts": reposts, "replies": replies},
    )


@pytest.fixture(scope="session")
def empty_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed database file with the current schema and nothing in it, made once per
    process. Copy it (``fresh_database``) rather than creating a new file: creating one
    runs every migration, several times the cost of the copy, and dozens of tests need
    an empty database (creating and migrating are tests of their own, in tests/storage)."""
    path = tmp_path_factory.mktemp("empty") / "empty.duckdb"
    Store.open(path).close()
    return path


def fresh_database(empty_database: Path, path: Path) -> Path:
    """A new, empty database file at ``path``: a copy of ``empty_database``."""
    shutil.copyfile(empty_database, path)
    return path


@pytest.fixture
def store(tmp_path: Path, empty_database: Path) -> Iterator[Store]:
    s = Store.open(fresh_database(empty_database, tmp_path / "test.duckdb"))
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


@contextmanager
def daemon_holding(path: Path) -> Iterator[None]:
    """Another process holding the database read-write, as the daemon does."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
                               "sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=120)


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
def demo_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str):
    """One ``listener demo --dir listener-demo --as-of <fixed> --json`` for the whole
    session, shared by every pytest-xdist worker (the first to need it runs it under a
    lock, the others wait and read it): tens of seconds, minutes under load. It is the
    run the README's figures are generated from. ``.directory`` holds its files,
    ``.summary`` its JSON, ``.stderr`` its messages; ``.listener(...)`` runs another
    command beside it. Read it, never change it (open its database read-only): other
    tests, in other processes, share it."""
    generator = readme_figures()
    if worker_id == "master":  # not distributed
        return generator.run_demo(tmp_path_factory.mktemp("demo"))
    shared = tmp_path_factory.getbasetemp().parent / "demo"  # this run's, common to its workers
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return generator.load_demo(shared) or generator.run_demo(shared)
