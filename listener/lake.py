"""The lake's side in the listener (docs/cluster.md, "The lake"): the publisher stages
new mentions exactly as a daemon stages a pulled batch (Pipeline.store_relevant: the
near-duplicate rule, every scorer's scores), and the analysts' commands open the lake
instead of a daemon's file when ``database.lake`` is set."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from analysis.scorers import Scoring
from analysis.sentiment import Scorer
from connectors.base import Clock, Mention
from listener.config import ClusterSettings, Settings
from listener.pipeline import Pipeline
from storage.cluster import SCHEMA_VERSION, ClusterError, connect, migrate
from storage.cluster.leases import holder_name
from storage.cluster.schema import current_version
from storage.lake import LakeCatalog, LakeChunk, LakePublisher, PublishResult, lake_catalog
from storage.store import Store


def lake_settings(settings: Settings) -> ClusterSettings | None:
    """The cluster settings when they name a lake, else None (read the daemon's file)."""
    return settings.cluster if settings.cluster is not None and settings.cluster.lake is not None else None


def publisher(cluster: ClusterSettings, scoring: Scoring | Scorer, clock: Clock, conn: Any = None,
              **options: Any) -> LakePublisher:
    """A publisher into ``database.lake`` scoring with ``scoring`` (the daemon's), on
    ``conn`` or a new connection; the cluster tables migrated first."""
    if cluster.lake is None:
        raise ValueError("database.lake is not set")
    conn = conn if conn is not None else connect(cluster.url, cluster.password(os.environ))
    migrate(conn)
    pipeline_scoring = Scoring.of(scoring)

    def prepare(chunk: LakeChunk, source: str, brand: str, mentions: list[Mention]) -> None:
        Pipeline(chunk, pipeline_scoring, clock).store_relevant(source, brand, mentions, None)  # type: ignore[arg-type]

    holder = holder_name()
    options.setdefault("lease_seconds", cluster.lease_seconds)
    return LakePublisher(conn, cluster.lake, prepare, holder=holder, clock=clock, **options)


def publish(cluster: ClusterSettings, scoring: Scoring | Scorer, clock: Clock, *,
            should_stop: Callable[[], bool] | None = None, clean: bool = False) -> PublishResult:
    """One round of publishing, if no other process holds the role (and, with ``clean``,
    the deletion of files dead publishers left)."""
    lake = publisher(cluster, scoring, clock)
    try:
        return lake.publish(should_stop=should_stop, clean=clean)
    finally:
        lake.close()
        lake.conn.close()


@contextmanager
def open_catalog(cluster: ClusterSettings, local: Path | None = None) -> Iterator[LakeCatalog]:
    """The lake's catalog (storage.lake.reader) from the manifest in PostgreSQL, with
    the campaigns of the database ``local`` when given."""
    conn = connect(cluster.url, cluster.password(os.environ))
    try:
        # Readers never migrate (an analyst's login may only read): older tables are refused.
        found = current_version(conn)
        if found < SCHEMA_VERSION:
            raise ClusterError(f"the cluster tables at {cluster.url} are at schema {found}, older than this "
                               f"release's {SCHEMA_VERSION}: no lake is published there yet (run a daemon of this "
                               "release first)")
        with lake_catalog(conn, cluster.lake, local) as catalog:  # type: ignore[arg-type]
            conn.close()
            yield catalog
    finally:
        conn.close()


@contextmanager
def lake_store(cluster: ClusterSettings, local: Path | None = None) -> Iterator[Store]:
    """The lake as a read-only Store (``listener campaigns report``), with the campaigns
    imported into ``local``."""
    with open_catalog(cluster, local) as catalog, Store.open(catalog.path, read_only=True) as store:
        yield store
