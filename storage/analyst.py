"""The analysts' read path: a read-only connection, ad-hoc SQL, and exports.

Analysts never hold the database the daemon writes: while it runs they read the
snapshot it publishes after each cycle (storage.snapshot), and otherwise the database
itself. Every reading command opens it read-only and never migrates it, so a user who
may only read the file can run them, and a file that is not ours is refused untouched.

What an analyst types cannot write anywhere either: the SQL connection has DuckDB's
external access off (no COPY TO, ATTACH, read_csv of files, INSTALL), locked so that a
statement cannot SET it back. A COPY TO the live database or the label inbox beside
the snapshot would otherwise overwrite the one or inject labels into the other. Only a
directory the user names (``listener export DIR``, ``listener sql --allow-write-dir DIR``)
is opened to it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from storage.errors import DatabaseFileError, DatabaseLockedError, StorageError
from storage.migrations import require_current, stored_version
from storage.snapshot import snapshot_path
from storage.store import MEMORY_LIMIT, Store, quiet, translate_error


class QueryError(StorageError):
    """The analyst's SQL failed (syntax, unknown column, a write on a read-only file)."""


@dataclass(frozen=True, slots=True)
class ReadSource:
    """Which file a reader opened: the database itself, or the daemon's snapshot."""

    path: Path
    is_snapshot: bool
    published_at: datetime | None = None


def _check_readable(path: Path) -> None:
    """Open ``path`` read-only and check that it is a listener database at the current
    schema (storage.migrations): readers never migrate."""
    with Store.open(path, read_only=True) as store:
        require_current(store.version, path)


def reading_path(database: Path) -> ReadSource:
    """The file to read, checked: the database, unless the daemon holds it, then its
    latest snapshot. Raises DatabaseFileError for a path that is missing, a directory, not
    ours or at an older schema; DatabaseLockedError when the daemon holds the database and
    has not published a snapshot yet."""
    try:
        _check_readable(database)
    except DatabaseLockedError:
        snapshot = snapshot_path(database)
        if not snapshot.exists():
            raise DatabaseLockedError(
                f"{database} is in use by the daemon and it has not published a snapshot yet "
                f"({snapshot.name} appears after its first cycle)"
            ) from None
        # Not opened here: the daemon made it from the database, and whoever opens it
        # (read_only, cli_support.open_existing) checks its version then.
        published = datetime.fromtimestamp(snapshot.stat().st_mtime, timezone.utc)
        return ReadSource(snapshot, True, published)
    return ReadSource(database, False)


def writable_directory(directory: Path, database: Path) -> Path:
    """``directory``, absolute, as the one place ``listener sql`` may write. Refused when
    it is or holds the database's own directory, where the live database, its snapshot
    and the label inbox live."""
    target = Path(os.path.abspath(directory))
    home = Path(os.path.abspath(database)).parent
    if any(t == h or t in h.parents for t in (target, target.resolve()) for h in (home, home.resolve())):
        raise DatabaseFileError(
            f"{directory} holds the database's directory {home}: writing there could overwrite the database "
            f"or its label inbox; name a directory of its own"
        )
    return target


@contextmanager
def read_only(path: Path, write_dir: Path | None = None,
              read_dir: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A native read-only connection to ``path`` (the database or a snapshot, checked by
    ``reading_path``) with no access to any other file, except into ``write_dir`` when
    given (see ``writable_directory``) and ``read_dir`` (the lake whose files ``path``'s
    views read: DuckDB's allowed directories are writable too, so analysts' accounts
    should have read-only permissions there). Settings are locked: a query cannot undo them."""
    # DuckDB spills large queries into a temporary directory beside the file, which it
    # also lets queries write into; a private one elsewhere keeps both away from the
    # database, and works where the user may not write beside it.
    spill = Path(tempfile.mkdtemp(prefix="listener-sql-"))
    try:
        try:
            db = duckdb.connect(str(path), read_only=True,
                                config={"memory_limit": MEMORY_LIMIT, "temp_directory": str(spill)})
        except duckdb.Error as exc:
            raise translate_error(exc, path) from exc
        try:
            # allowed_directories can only be set while external access is on, so the
            # order matters; nothing the user typed has run yet.
            quiet(db)
            allowed = [str(d).rstrip(os.sep) + os.sep for d in (write_dir, read_dir) if d is not None]
            if allowed:
                db.execute("SET allowed_directories = ?", [allowed])
            db.execute("SET enable_external_access = false")
            db.execute("SET lock_configuration = true")
            require_current(stored_version(db, path), path)
            yield db
        finally:
            db.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)


@dataclass(slots=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


def run_query(db: duckdb.DuckDBPyConnection, sql: str, limit: int | None = None,
              parameters: Sequence[Any] | None = None) -> QueryResult:
    """Run one or more statements; the result is the last statement's rows."""
    try:
        cursor = db.execute(sql) if parameters is None else db.execute(sql, parameters)
        if cursor.description is None:
            return QueryResult([], [])
        columns = [d[0] for d in cursor.description]
        types = [str(d[1]) for d in cursor.description]
        rows = cursor.fetchall() if limit is None else cursor.fetchmany(limit)
    except duckdb.Error as exc:
        message = str(exc).strip()
        lowered = message.lower()
        if "read-only" in lowered or "read only" in lowered:
            message += " (the listener's database is read-only here)"
        elif "disabled by configuration" in lowered or "configuration has been locked" in lowered:
            message += (" (listener sql reads only the listener's database; to write query results to files, "
                        "use --format csv or json, 'listener export DIR', or --allow-write-dir DIR)")
        raise QueryError(message) from exc
    return QueryResult(columns, types, rows)


def list_tables(db: duckdb.DuckDBPyConnection, limit: int | None = None) -> QueryResult:
    """The database's tables and views, views first (the shell's ``.tables``)."""
    return run_query(db, "SELECT table_name AS name, lower(table_type) AS type FROM information_schema.tables "
                         "WHERE table_schema = 'main' ORDER BY table_type DESC, table_name", limit)


def table_columns(db: duckdb.DuckDBPyConnection, name: str, limit: int | None = None) -> QueryResult:
    """The columns of table or view ``name`` and their types (the shell's ``.schema NAME``);
    no rows for a name that is neither."""
    return run_query(db, "SELECT column_name AS column, data_type AS type FROM information_schema.columns "
                         "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", limit, [name])


def plain(value: Any) -> Any:
    """A value as JSON: times in ISO 8601 (UTC columns get their 'Z'), decimals as numbers."""
    if isinstance(value, datetime):
        return (value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


# -- export ---------------------------------------------------------------------------

# What `listener export` writes: a file per view, each filtered by brand and time.
# The time filter applies to the column that says when the row happened.
EXPORTS: dict[str, tuple[str, str]] = {
    "mentions": ("v_mentions", "created_at"),
    "hourly_mood": ("v_hourly_mood", "hour"),
    "conversations": ("v_conversations", "last_at"),
    "campaign_daily": ("v_campaign_daily", "date"),
}
FORMATS = ("parquet", "csv")


@dataclass(frozen=True, slots=True)
class ExportedFile:
    name: str
    path: Path
    rows: int


def _where(time_column: str, brand: str | None, since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    """The filter of one export. A day column (campaign_daily's account-local date) keeps
    the days from since's date up to until's date, exclusive."""
    clauses, params = [], []
    cast = "::DATE" if time_column == "date" else "::TIMESTAMP"
    if brand is not None:
        clauses.append("lower(brand) = lower(?)")
        params.append(brand)
    if since is not None:
        clauses.append(f"{time_column} >= ?{cast}")
        params.append(since.astimezone(timezone.utc).replace(tzinfo=None))
    if until is not None:
        clauses.append(f"{time_column} < ?{cast}")
        params.append(until.astimezone(timezone.utc).replace(tzinfo=None))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def export(
    db: duckdb.DuckDBPyConnection,
    directory: Path,
    fmt: str,
    *,
    brand: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    names: Sequence[str] = tuple(EXPORTS),
) -> list[ExportedFile]:
    """Write each view as ``NAME.parquet`` or ``NAME.csv`` in ``directory``, plus
    ``manifest.json`` (filters, row counts, schema version). Each file is written under
    a temporary name and renamed, so a reader never sees half a file."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    directory.mkdir(parents=True, exist_ok=True)
    options = "(FORMAT parquet, COMPRESSION zstd)" if fmt == "parquet" else "(FORMAT csv, HEADER true)"
    written = []
    for name in names:
        view, time_column = EXPORTS[name]
        where, params = _where(time_column, brand, since, until)
        target = directory / f"{name}.{fmt}"
        partial = directory / f".{name}.{fmt}.partial"
        try:
            # The views' times are UTC without a zone: say so in the file. Parquet gets
            # TIMESTAMPTZ (isAdjustedToUTC); CSV gets ISO 8601 text ending in Z, the same
            # in every reader's session time zone.
            stamps = [row[0] for row in db.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()
                      if row[1] == "TIMESTAMP"]
            utc = ("timezone('UTC', {c})" if fmt == "parquet" else "strftime({c}, '%Y-%m-%dT%H:%M:%S.%fZ')")
            replace = (" REPLACE (" + ", ".join(f"{utc.format(c=_ident(c))} AS {_ident(c)}" for c in stamps) + ")"
                       if stamps else "")
            rows = db.execute(
                f"COPY (SELECT *{replace} FROM {view}{where} ORDER BY brand, {time_column}) "
                f"TO '{_sql_path(partial)}' {options}", params
            ).fetchone()[0]
        except duckdb.Error as exc:
            raise StorageError(f"exporting {name} to {target}: {exc}") from exc
        os.replace(partial, target)
        written.append(ExportedFile(name, target, rows))
    version = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    manifest = {
        "format": fmt,
        "schema_version": version,
        "filters": {"brand": brand, "since": plain(since), "until": plain(until)},
        "files": {f.name: {"file": f.path.name, "rows": f.rows} for f in written},
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return written


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")



def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
