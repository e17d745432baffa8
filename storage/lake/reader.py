"""Reading the lake through the analysts' views (storage.views: same names, same columns).

``lake_catalog`` builds a small DuckDB file in a private temporary directory: the
listener schema at its current version (storage.lake.catalog), in which the tables the
lake holds are views over the files the manifest lists (``read_parquet`` on that list,
never a directory listing: a file not committed is never read):

- ``mentions``, ``scores`` and ``hourly_mood``: the published files;
- ``conversations``: the hourly stage's own SQL over those mentions, computed when a
  query reads it (a thread spans days, so its row is not a day's to publish).

Campaign spend and plans (``listener campaigns import``, into one machine's file) are
copied in from ``local``, a database the caller names (they are small); labels, alerts
and the rest stay empty: the cluster does not hold them in PostgreSQL yet. The catalog
is a few hundred kilobytes whatever the lake's size: nothing of the lake is copied.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from storage.lake.catalog import CONVERSATIONS_QUERY, new_database, parquet, point_at, sql_list
from storage.lake.publisher import KINDS, committed_files
from storage.store import Store

# What the catalog takes from a local database: the campaigns a report reads.
LOCAL_TABLES = ("spend", "campaign_plans")


@dataclass(frozen=True, slots=True)
class LakeCatalog:
    """The catalog file to open, the lake it reads, and what the manifest listed."""

    path: Path
    lake: Path
    files: int
    mentions: int


@contextmanager
def lake_catalog(conn: psycopg.Connection, lake: Path, local: Path | None = None) -> Iterator[LakeCatalog]:
    """A catalog file over the lake's committed files, removed on exit; with the
    campaigns (LOCAL_TABLES) of the database ``local``, when given."""
    lake = Path(lake).absolute()
    files = committed_files(conn)
    directory = Path(tempfile.mkdtemp(prefix="listener-lake-"))
    try:
        path = directory / "lake.duckdb"
        new_database(path)
        with Store.open(path) as store, store.native() as db:
            for kind in KINDS:
                listed = [lake / f.path for f in files if f.kind == kind]
                if listed:
                    point_at(db, kind, parquet(listed))
            point_at(db, "conversations", CONVERSATIONS_QUERY)
            if local is not None:
                db.execute(f"ATTACH {sql_list([local])[1:-1]} AS local_db (READ_ONLY)")
                try:
                    for table in LOCAL_TABLES:
                        db.execute(f"INSERT INTO {table} BY NAME SELECT * FROM local_db.{table}")
                finally:
                    db.execute("DETACH local_db")
        yield LakeCatalog(path, lake, len(files), sum(f.rows for f in files if f.kind == "mentions"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
