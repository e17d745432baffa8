"""Reading the lake through the analysts' views (storage.views: same names, same columns).

``lake_catalog`` builds a small DuckDB file in a private temporary directory: the
listener schema at its current version (the real migrations, so every macro and view
is the one the single-file database has), in which the tables the lake holds are
replaced by views over the files the manifest lists (``read_parquet`` on that list,
never a directory listing: a file not committed is never read):

- ``mentions`` and ``scores``: the published files;
- ``hourly_mood`` and ``conversations``: the hourly stage's own SQL (storage.rollup)
  over those mentions, for every hour at once, computed when a query reads them. The
  cluster's hourly rows are per daemon (each daemon's file), not in PostgreSQL, so the
  lake derives them rather than copies them.

Campaign spend and plans (``listener campaigns import``, into one machine's file) are
copied in from ``local``, a database given by the caller (they are small); labels, alerts
and the rest stay empty: the cluster does not hold them in PostgreSQL yet. The catalog is a few hundred kilobytes whatever the lake's
size: nothing is copied.
"""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg

from storage import rollup
from storage.lake.publisher import KINDS, committed_files, sql_list
from storage.store import Store


def _whole_history(sql: str, todo: str, lo: str, hi: str) -> str:
    """The hourly stage's statement made a query over every hour: without its INSERT,
    its join to the hours to do (``todo``), and with an unbounded time window."""
    steps = ((r"INSERT INTO \w+( BY NAME)?\n", ""), (rf"JOIN {todo} t\s+ON [^\n]*\n", ""),
             (re.escape(lo) + r"\b", "TIMESTAMP '-infinity'"), (re.escape(hi) + r"\b", "TIMESTAMP 'infinity'"))
    for pattern, replacement in steps:
        sql, count = re.subn(pattern, replacement, sql)
        # storage.rollup changed shape: fail here, not with figures that differ.
        if count != 1:
            raise RuntimeError(f"storage.rollup's SQL no longer has one {pattern!r}: update storage.lake.reader")
    return sql


DERIVED: dict[str, str] = {
    "hourly_mood": _whole_history(rollup._HOURLY_SQL, "todo", "$lo", "$hi"),
    "conversations": _whole_history(rollup._CONVERSATIONS_SQL, "touched", "$since", "$until"),
}


# What the catalog takes from a local database: the campaigns a report reads.
LOCAL_TABLES = ("spend", "campaign_plans")


@dataclass(frozen=True, slots=True)
class LakeCatalog:
    """The catalog file to open, the lake it reads, and what the manifest listed."""

    path: Path
    lake: Path
    files: int
    mentions: int


def _replace_with_view(db: duckdb.DuckDBPyConnection, table: str, query: str) -> None:
    """``table`` becomes a view of ``query`` with the table's own columns and types."""
    columns = db.execute("SELECT column_name, data_type FROM information_schema.columns "
                         "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                         [table]).fetchall()
    select = ", ".join(f'CAST("{name}" AS {kind}) AS "{name}"' for name, kind in columns)
    db.execute(f"DROP TABLE {table}")
    db.execute(f"CREATE VIEW {table} AS SELECT {select} FROM ({query})")


@functools.cache
def _empty_database() -> bytes:
    """A new database file at the current schema, made once per process (the migrations
    take most of a catalog's making)."""
    directory = Path(tempfile.mkdtemp(prefix="listener-lake-"))
    try:
        Store.open(directory / "empty.duckdb").close()
        return (directory / "empty.duckdb").read_bytes()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def lake_catalog(conn: psycopg.Connection, lake: Path, local: Path | None = None) -> Iterator[LakeCatalog]:
    """A catalog file over the lake's committed files, removed on exit; with the
    campaigns (LOCAL_TABLES) of the database ``local``, when given."""
    lake = Path(lake).absolute()
    files = committed_files(conn)
    directory = Path(tempfile.mkdtemp(prefix="listener-lake-"))
    try:
        path = directory / "lake.duckdb"
        path.write_bytes(_empty_database())
        with Store.open(path) as store, store.native() as db:
            for kind in KINDS:
                listed = [lake / f.path for f in files if f.kind == kind]
                if listed:
                    _replace_with_view(db, kind, f"SELECT * FROM read_parquet({sql_list(listed)})")
            for table, query in DERIVED.items():
                _replace_with_view(db, table, query)
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
