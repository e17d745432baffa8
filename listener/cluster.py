"""The daemon's side of cluster mode (``database.url``; docs/cluster.md).

Each scheduled pull first leases its (source, brand) job from PostgreSQL
(storage.cluster.Leases): when another daemon holds it, or ran it less than an interval
ago, this daemon skips the tick. Under a lease the pull runs through the ordinary
Pipeline over a ``FencedStore``: the cursor comes from the job row, and each batch is
committed to PostgreSQL (mentions and cursor, fenced by the lease's token) before it is
stored in this daemon's own DuckDB file for its scoring, hourly stage and readers. A
refused commit (LeaseLostError) ends the run with nothing of that batch stored anywhere.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from connectors.base import Cursor, Mention
from listener.config import ClusterSettings, SourceSettings
from listener.pipeline import Pipeline, PullResult
from storage.cluster import Budget, Lease, Leases, connect, credential_key, migrate
from storage.store import SaveResult, Store

log = logging.getLogger("listener")


class FencedStore:
    """A Store whose cursor and batch commits go through one lease: every other call is
    the daemon's own Store's."""

    def __init__(self, store: Store, leases: Leases, lease: Lease, lease_seconds: float) -> None:
        self._store = store
        self._leases = leases
        self._lease = lease
        self._lease_seconds = lease_seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get_cursor(self, source: str, brand: str) -> Cursor | None:
        return self._lease.cursor

    def save_batch(self, mentions: Sequence[Mention], scores: Sequence[Any], *, source: str, brand: str,
                   checkpoint: Cursor | None, **rest: Any) -> SaveResult:
        # PostgreSQL first: a refused commit raises before anything is stored locally. If
        # this process dies between the two, the batch is in the cluster (the record of
        # what was collected) and only this daemon's local copy misses it.
        self._leases.commit(self._lease, mentions, checkpoint, renew_seconds=self._lease_seconds)
        return self._store.save_batch(mentions, scores, source=source, brand=brand, checkpoint=checkpoint, **rest)


class _CountingPipeline(Pipeline):
    """A Pipeline that counts the posts its pulls read (fetched and skipped), for the
    refund of what a budgeted run reserved but did not read."""

    started = finished = False
    read = 0

    def pull(self, *args: Any, **kwargs: Any) -> PullResult:
        self.started = True
        result = super().pull(*args, **kwargs)
        self.read += result.fetched + result.skipped
        self.finished = True
        return result


class Coordinator:
    """Leases for one daemon: a connection per scheduler thread (psycopg connections
    carry one transaction at a time)."""

    def __init__(self, settings: ClusterSettings, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self._environ = os.environ if environ is None else environ
        self._password = settings.password(self._environ)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def start(self, jobs: Iterable[tuple[str, str]]) -> None:
        """Migrate the cluster tables and register this daemon's jobs."""
        migrate(self._leases().conn)
        self._leases().register(jobs)

    def _leases(self) -> Leases:
        leases = getattr(self._local, "leases", None)
        # A connection broken by a server restart or a network cut is replaced: pulls
        # resume on their own once PostgreSQL is back.
        if leases is None or leases.conn.broken or leases.conn.closed:
            conn = connect(self.settings.url, self._password)
            with self._lock:
                self._connections.append(conn)
            leases = self._local.leases = Leases(conn, self.holder)
        return leases

    @contextmanager
    def leased(self, source: SourceSettings, brand: str, pipeline: Pipeline,
               stopping: Callable[[], bool] = lambda: False) -> Iterator[Pipeline | None]:
        """A pipeline committing under the job's lease, or None when the job is held, not
        due, or its credential's shared budget (``database.budgets``) cannot cover the
        run's ``max_posts_per_run``. The lease is released at the end, the job due again an
        interval later, or at once when this daemon is ``stopping`` (its run may have ended
        early: another daemon resumes it from the committed cursor at its next tick)."""
        leases = self._leases()
        every_seconds = source.every_minutes * 60
        taken = leases.take(self.settings.lease_seconds, job=(source.name, brand))
        if not taken:
            log.debug("pull %s %s: held by another daemon or not due", source.name, brand)
            yield None
            return
        lease = taken[0]
        leased = _CountingPipeline(FencedStore(pipeline.store, leases, lease, self.settings.lease_seconds),  # type: ignore[arg-type]
                                   pipeline.scoring, pipeline.clock)
        budget, reserved = None, 0
        try:
            budget, reserved = self._reserve(leases, source)
            if budget is not None and reserved < source.options["max_posts_per_run"]:
                log.warning("pull %s %s skipped: the credential's shared budget (%d posts per %d h) is spent",
                            source.name, brand, budget.limit, budget.window_seconds // 3600)
                yield None
            else:
                yield leased
        finally:
            if budget is not None:
                # A run that failed may have read up to its whole reservation: kept.
                budget.refund(reserved - leased.read if leased.finished or not leased.started else 0)
            if not leases.release(lease, 0 if stopping() else every_seconds):
                log.warning("pull %s %s: lease token %d was lost before its release", source.name, brand, lease.token)

    def _reserve(self, leases: Leases, source: SourceSettings) -> tuple[Budget | None, int]:
        """The source's shared budget and what this run reserved of it (its whole
        ``max_posts_per_run``, or what was left)."""
        if source.name not in self.settings.budgets:
            return None, 0
        posts, window_hours = self.settings.budgets[source.name]
        # The credential is what the source's ``*_env`` settings name; stored as a fingerprint.
        secret = "\0".join(self._environ.get(str(source.options[key]), "")
                           for key in sorted(source.options) if key.endswith("_env"))
        budget = Budget(leases.conn, credential_key(source.name, secret), posts, window_hours * 3600)
        return budget, budget.reserve(int(source.options["max_posts_per_run"]))

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
