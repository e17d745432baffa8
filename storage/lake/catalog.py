"""What the lake's publisher and readers share: the listener schema in a scratch DuckDB
file whose tables the lake holds are views over Parquet files, and the hourly stage's
SQL (storage.rollup) as queries over such views.

The schema is the real one (the migrations, made once per process), so every macro and
analysts' view over these tables is the single-file database's own.
"""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import duckdb

from storage import rollup
from storage.store import Store


def _whole_history(sql: str, todo: str, lo: str, hi: str) -> str:
    """The hourly stage's statement made a query over every hour of the tables: without
    its INSERT, its join to the hours to do (``todo``), and with an unbounded window."""
    steps = ((r"INSERT INTO \w+( BY NAME)?\n", ""), (rf"JOIN {todo} t\s+ON [^\n]*\n", ""),
             (re.escape(lo) + r"\b", "TIMESTAMP '-infinity'"), (re.escape(hi) + r"\b", "TIMESTAMP 'infinity'"))
    for pattern, replacement in steps:
        sql, count = re.subn(pattern, replacement, sql)
        # storage.rollup changed shape: fail here, not with figures that differ.
        if count != 1:
            raise RuntimeError(f"storage.rollup's SQL no longer has one {pattern!r}: update storage.lake.catalog")
    return sql


# The hourly rows and the threads of every mention in ``mentions`` (with ``scores`` and
# ``labels``), exactly as the hourly stage computes them hour by hour.
HOURLY_QUERY = _whole_history(rollup._HOURLY_SQL, "todo", "$lo", "$hi")
CONVERSATIONS_QUERY = _whole_history(rollup._CONVERSATIONS_SQL, "touched", "$since", "$until")


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


def new_database(path: Path) -> None:
    """An empty listener database at ``path`` (current schema)."""
    path.write_bytes(_empty_database())


def sql_list(paths: Iterable[Path]) -> str:
    """Paths as a DuckDB list literal of strings."""
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def columns_of(db: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return db.execute("SELECT column_name, data_type FROM information_schema.columns "
                      "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()


def as_table(columns: list[tuple[str, str]], query: str) -> str:
    """``query``'s rows with the table's ``columns`` (names, order, types)."""
    return "SELECT " + ", ".join(f'CAST("{n}" AS {t}) AS "{n}"' for n, t in columns) + f" FROM ({query})"


def point_at(db: duckdb.DuckDBPyConnection, table: str, query: str) -> None:
    """``table`` (a table or a view made by this) becomes a view of ``query``, with the
    schema's columns and types for it."""
    columns = columns_of(db, table)
    kind = db.execute("SELECT table_type FROM information_schema.tables WHERE table_schema = 'main' "
                      "AND table_name = ?", [table]).fetchone()[0]
    db.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {table}")
    db.execute(f"CREATE VIEW {table} AS {as_table(columns, query)}")


def parquet(paths: list[Path]) -> str:
    return f"SELECT * FROM read_parquet({sql_list(paths)})"
