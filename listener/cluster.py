"""The daemon's side of cluster mode (``database.url``; docs/cluster.md).

Each scheduled pull first leases its (source, brand) job from PostgreSQL
(storage.cluster.Leases): when another daemon holds it, or ran it less than an interval
ago, this daemon skips the tick. Under a lease the pull runs through the ordinary
Pipeline over a ``FencedStore``: the cursor comes from the job row, and each batch is
committed to PostgreSQL (mentions and cursor, fenced by the lease's token) before it is
stored in this daemon's own DuckDB file for its scoring, hourly stage and readers. A
refused commit (LeaseLostError) ends the run with nothing of that batch stored anywhere.

Stages run in one daemon at a time (``stage``): the hourly stage and alerting take
their stage job's lease, and the holder first catches its file up (``catch_up``) with
every batch committed to PostgreSQL that it lacks, so its hourly rows and alerts cover
every brand, whoever pulled it. A daemon also catches up when it starts: a batch
committed to PostgreSQL by a daemon that died before its own file's commit is stored
there then. Shared budgets (``database.budgets``) are reserved per request
(``SharedQuota``, handed to the source's connector).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from connectors.base import Connector, Cursor, Mention
from listener.config import ClusterSettings, SourceSettings
from listener.pipeline import Pipeline
from storage.cluster import Budget, Lease, Leases, connect, credential_key, migrate
from storage.cluster.alerts import SharedDeliveries
from storage.cluster.leases import STAGES, Watermark, holder_name, stage_job
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
        # what was collected) and this daemon's file gets it when it starts again
        # (Coordinator.catch_up).
        self._leases.commit(self._lease, mentions, checkpoint, renew_seconds=self._lease_seconds)
        return self._store.save_batch(mentions, scores, source=source, brand=brand, checkpoint=checkpoint, **rest)


# Where a daemon's file stands in PostgreSQL's commit order (Leases.committed), in its
# meta: "SERVER:XID", the server's system identifier and the transaction id read up to.
CAUGHT_UP_KEY = "cluster_caught_up_xid"


class SharedQuota:
    """A credential's budget in PostgreSQL (storage.cluster.Budget) as a connector's
    per-request Quota, on the calling thread's connection."""

    def __init__(self, coordinator: Coordinator, credential: str, posts: int, window_seconds: float) -> None:
        self._coordinator = coordinator
        self.credential = credential
        self.posts = posts
        self.window_seconds = window_seconds
        self._window = threading.local()

    def _budget(self) -> Budget:
        return Budget(self._coordinator._leases().conn, self.credential, self.posts, self.window_seconds)

    def reserve(self, wanted: int) -> int:
        granted, self._window.start = self._budget().reserve(wanted)
        return granted

    def refund(self, unused: int) -> None:
        # To the window the calling thread's last reservation came from (a connector
        # refunds on the thread that reserved): after a rollover, not the new window's.
        start = getattr(self._window, "start", None)
        if start is not None:
            self._budget().refund(unused, start)


class StageLease:
    """A stage held by this daemon: ``done`` records its work under the lease."""

    def __init__(self, leases: Leases, lease: Lease) -> None:
        self.leases = leases
        self.lease = lease
        self.recorded = False

    def check(self) -> None:
        """LeaseLostError unless the lease is still held (before work others would repeat)."""
        with self.leases.fenced(self.lease, "checking a stage lease"):
            pass

    def deliveries(self) -> SharedDeliveries:
        """The cluster's record of delivered alerts, written under this stage's lease."""
        return SharedDeliveries(self.leases, self.lease)

    def done(self, progress: dict[str, Any]) -> None:
        """Record the stage's work (its cursor), fenced: LeaseLostError when a paused
        holder lost the stage meanwhile, and then nothing is recorded."""
        self.leases.commit(self.lease, [], progress)
        self.recorded = True


class Coordinator:
    """Leases for one daemon: a connection per scheduler thread (psycopg connections
    carry one transaction at a time)."""

    def __init__(self, settings: ClusterSettings, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self._environ = os.environ if environ is None else environ
        self._password = settings.password(self._environ)
        self.holder = holder_name()
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def start(self, jobs: Iterable[tuple[str, str]], sources: Iterable[tuple[SourceSettings, Connector]] = ()) -> None:
        """Migrate the cluster tables, register this daemon's jobs and the stages, and
        hand each budgeted source's connector its credential's shared quota."""
        migrate(self._leases().conn)
        self._leases().register([*jobs, *(stage_job(name) for name in STAGES)])
        for source, connector in sources:
            if source.name in self.settings.budgets:
                connector.quota = self.quota(source)  # type: ignore[attr-defined]

    def quota(self, source: SourceSettings) -> SharedQuota:
        """The shared budget of the credential ``source`` uses (``database.budgets``)."""
        posts, window_hours = self.settings.budgets[source.name]
        # The credential is what the source's ``*_env`` settings name; stored as a fingerprint.
        secret = "\0".join(self._environ.get(str(source.options[key]), "")
                           for key in sorted(source.options) if key.endswith("_env"))
        return SharedQuota(self, credential_key(source.name, secret), posts, window_hours * 3600)

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
        """A pipeline committing under the job's lease, or None when the job is held or
        not due. The lease is released at the end, the job due again an interval later,
        or at once when this daemon is ``stopping`` (its run may have ended early:
        another daemon resumes it from the committed cursor at its next tick)."""
        leases = self._leases()
        taken = leases.take(self.settings.lease_seconds, job=(source.name, brand))
        if not taken:
            log.debug("pull %s %s: held by another daemon or not due", source.name, brand)
            yield None
            return
        lease = taken[0]
        try:
            yield Pipeline(FencedStore(pipeline.store, leases, lease, self.settings.lease_seconds),  # type: ignore[arg-type]
                           pipeline.scoring, pipeline.clock)
        finally:
            if not leases.release(lease, 0 if stopping() else source.every_minutes * 60):
                log.warning("pull %s %s: lease token %d was lost before its release", source.name, brand, lease.token)

    @contextmanager
    def stage(self, name: str, period_seconds: float) -> Iterator[StageLease | None]:
        """The stage ``name`` for this period, or None when another daemon holds it or
        ran it this period. The holder records its work with ``StageLease.done`` (refused
        once the lease is lost: a paused holder's late work is not recorded); the stage is
        due again at the next period's start, or at once when its work was not done."""
        leases = self._leases()
        taken = leases.take(self.settings.lease_seconds, job=stage_job(name))
        if not taken:
            log.debug("stage %s: held by another daemon or done this period", name)
            yield None
            return
        held = StageLease(leases, taken[0])
        try:
            yield held
        finally:
            released = (leases.release_for_period(held.lease, period_seconds) if held.recorded
                        else leases.release(held.lease, 0))
            if not released:
                log.warning("stage %s: lease token %d was lost before its release", name, held.lease.token)

    def catch_up(self, pipeline: Pipeline, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Store in this daemon's file every mention committed to PostgreSQL that it lacks,
        from where it last caught up: scored by its pipeline like its own pulls, each
        chunk committed with the new watermark (a crash resumes there). Returns how many
        were new to the file."""
        store, leases = pipeline.store, self._leases()
        # Transaction ids are one server's: a watermark from another (a restore onto a new
        # server) starts over from 0, what the file has being skipped unscored.
        server = leases.server_id()
        # "SERVER:WATERMARK": the server's id has no colon, the watermark may.
        found_server, _, found_after = (store.get_meta(CAUGHT_UP_KEY) or "").partition(":")
        after = Watermark.decode(found_after) if found_server == server else Watermark()
        new = 0
        while not should_stop():
            found, after, complete = leases.committed(after)
            by_job: dict[tuple[str, str], list[Mention]] = {}
            for mention in found:
                by_job.setdefault((mention.source, mention.brand), []).append(mention)
            with store.transaction():  # the chunk and its watermark commit together
                for (source, brand), mentions in by_job.items():
                    new += pipeline.store_relevant(source, brand, mentions, None).new
                store.set_meta(CAUGHT_UP_KEY, f"{server}:{after.encode()}")
            if complete:
                break
        return new

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
