"""What a reader may open and what an analyst's SQL may reach (storage.analyst), and how
a listener database is told from another application's (storage.migrations): real
DuckDB files on disk, checked byte for byte."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from storage import schema
from storage.analyst import (
    QueryError, list_tables, read_only, reading_path, run_query, table_columns, writable_directory,
)
from storage.errors import DatabaseFileError
from storage.labels import inbox_path
from storage.migrations import LATEST_VERSION, MARKER_KEY, MIGRATIONS
from storage.snapshot import snapshot_path
from storage.store import Store
from tests.timing import HANG_GUARD


def fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def tables(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall())


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "listener.duckdb"
    Store.open(path).close()
    return path


def make_foreign(path: Path) -> Path:
    """Another application's DuckDB file, with table names a listener database has too."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE runs (run_id INTEGER, status VARCHAR)")
        con.execute("INSERT INTO runs VALUES (1, 'running')")
        con.execute("CREATE TABLE schema_version (version INTEGER)")
        con.execute("INSERT INTO schema_version VALUES (1)")
        con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
    return path


def make_version_1(path: Path) -> Path:
    """A listener database as the first release left it: only migration 1 applied."""
    engine = sa.create_engine(f"duckdb:///{path}")
    number, description, step = MIGRATIONS[0]
    with engine.begin() as conn:
        schema.schema_version.create(conn)
        step(conn)
        conn.execute(schema.schema_version.insert().values(
            version=number, description=description, applied_at=datetime.now(timezone.utc).replace(tzinfo=None)))
    engine.dispose()
    return path


# -- what the analyst's SQL may reach -------------------------------------------------------


def published(database: Path) -> Path:
    """The snapshot readers use while the daemon holds the database (there, the live
    database is not the attached file, so DuckDB's own guard for it does not apply)."""
    snapshot = snapshot_path(database)
    shutil.copy(database, snapshot)
    return snapshot


@pytest.mark.parametrize("statement", [
    "COPY (SELECT 'x') TO '{db}' (FORMAT csv)",
    "COPY (SELECT '{{\"id\": \"a\", \"label\": \"negative\"}}') TO '{inbox}' (FORMAT csv, HEADER false, QUOTE '')",
    "COPY (SELECT 42) TO '{other}' (FORMAT csv)",
    "EXPORT DATABASE '{dir}/dump'",
    "ATTACH '{db}' AS live",
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_text('{secret}')",
    # DuckDB itself refuses to turn external access back on; these would open it wide.
    "SET lock_configuration = false",
    "SET allowed_directories = ['/']",
])
def test_the_sql_connection_reaches_no_other_file(tmp_path: Path, statement: str) -> None:
    database = tmp_path / "db" / "listener.duckdb"
    database.parent.mkdir()
    Store.open(database).close()
    snapshot = published(database)
    before = fingerprint(database)
    other = database.parent / "other.csv"
    secret = tmp_path / "secret.csv"
    secret.write_text("token\nhunter2\n")
    sql = statement.format(db=database, inbox=inbox_path(database), other=other, dir=database.parent, secret=secret)
    with read_only(snapshot) as db:
        with pytest.raises(QueryError) as raised:
            run_query(db, sql)
        assert "ATTACH or COPY" not in str(raised.value)
        assert run_query(db, "SELECT count(*) FROM mentions").rows == [(0,)]  # still a working connection
    assert fingerprint(database) == before
    assert not inbox_path(database).exists() and not other.exists()
    assert sorted(p.name for p in database.parent.iterdir()) == ["listener.duckdb", "listener.snapshot.duckdb"]


def test_a_named_directory_is_the_only_place_it_may_write(database: Path, tmp_path: Path) -> None:
    snapshot = published(database)
    out = tmp_path / "out"
    out.mkdir()
    with read_only(snapshot, write_dir=writable_directory(out, database)) as db:
        run_query(db, f"COPY (SELECT 1 AS one) TO '{out / 'one.csv'}' (FORMAT csv)")
        for target in (out / ".." / "escape.csv", database, inbox_path(database)):
            with pytest.raises(QueryError, match="disabled by configuration|belongs to an attached"):
                run_query(db, f"COPY (SELECT 1) TO '{target}' (FORMAT csv)")
    assert (out / "one.csv").read_text().splitlines() == ["one", "1"]
    assert not (tmp_path / "escape.csv").exists() and not inbox_path(database).exists()


def test_the_database_directory_cannot_be_named_for_writing(database: Path) -> None:
    for directory in (database.parent, database.parent.parent, database.parent / "sub" / ".."):
        with pytest.raises(DatabaseFileError, match="holds the database's directory"):
            writable_directory(directory, database)
    assert writable_directory(database.parent / "exports", database) == database.parent / "exports"


# -- what a reader may open --------------------------------------------------------------------


def test_reading_changes_nothing(database: Path) -> None:
    before = fingerprint(database)
    source = reading_path(database)
    assert source.path == database and not source.is_snapshot
    with read_only(source.path) as db:
        assert run_query(db, "SELECT max(version) FROM schema_version").rows == [(LATEST_VERSION,)]
    assert fingerprint(database) == before
    assert sorted(p.name for p in database.parent.iterdir()) == ["listener.duckdb"]


def test_a_foreign_database_is_refused_untouched_by_readers_and_writers(tmp_path: Path) -> None:
    path = make_foreign(tmp_path / "theirs.duckdb")
    before, names = fingerprint(path), tables(path)
    for opening in (lambda: reading_path(path), lambda: Store.open(path, read_only=True),
                    lambda: Store.open(path, create=False), lambda: Store.open(path)):
        with pytest.raises(DatabaseFileError, match="is not a listener database .*left untouched"):
            opening()
    assert fingerprint(path) == before and tables(path) == names
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT * FROM runs").fetchall() == [(1, "running")]


@pytest.mark.parametrize("kind", ["directory", "missing", "text"])
def test_a_path_that_is_no_database_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "listener.duckdb"
    if kind == "directory":
        path.mkdir()
    elif kind == "text":
        path.write_text("name,value\n")
    expected = {"directory": "is a directory", "missing": "no database at", "text": "not a valid DuckDB database file"}[kind]
    openings = [lambda: reading_path(path), lambda: Store.open(path, read_only=True),
                lambda: Store.open(path, create=False)]
    if kind != "missing":
        openings.append(lambda: Store.open(path))
    for opening in openings:
        with pytest.raises(DatabaseFileError, match=expected) as raised:
            opening()
        assert raised.value.exit_code == 2
    assert [p.name for p in tmp_path.iterdir()] == ([] if kind == "missing" else ["listener.duckdb"])


def test_an_older_schema_is_read_by_no_reader_and_upgraded_by_a_writer(tmp_path: Path) -> None:
    path = make_version_1(tmp_path / "listener.duckdb")
    before = fingerprint(path)
    with pytest.raises(DatabaseFileError, match="schema version 1; this release reads version .*'listener score'"):
        reading_path(path)
    with pytest.raises(DatabaseFileError, match="schema version 1"):
        with read_only(path):
            pass
    assert fingerprint(path) == before
    with Store.open(path, create=False) as store:
        assert store.version == LATEST_VERSION
    assert reading_path(path).path == path


def test_a_database_from_before_the_marker_is_still_ours_and_gets_it(database: Path) -> None:
    with duckdb.connect(str(database)) as con:
        con.execute("DELETE FROM meta WHERE key = ?", [MARKER_KEY])
    assert reading_path(database).path == database
    Store.open(database).close()
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("SELECT value FROM meta WHERE key = ?", [MARKER_KEY]).fetchone() == ("brandmood-listener",)


def test_an_empty_duckdb_file_is_created_by_a_writer_and_refused_by_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "listener.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(DatabaseFileError, match="holds no listener data yet"):
        reading_path(path)
    Store.open(path).close()
    assert reading_path(path).path == path


def test_the_shells_catalog_lists_views_first_and_a_tables_columns(database: Path) -> None:
    # The SQL behind the shell's .tables and .schema NAME lives here, not in the shell.
    with read_only(database) as db:
        listed = list_tables(db)
        mentions = table_columns(db, "v_mentions")
        odd = table_columns(db, "no such ' view")  # a name is a value, never spliced into the SQL
    assert listed.columns == ["name", "type"]
    kinds = [kind for _, kind in listed.rows]
    assert kinds == sorted(kinds, key=lambda kind: kind != "view") and ("v_mentions", "view") in listed.rows
    assert mentions.columns == ["column", "type"] and ("brand", "VARCHAR") in mentions.rows
    assert odd.rows == []


def test_no_connection_draws_duckdb_s_progress_bar_on_stdout(database):
    # DuckDB prints a progress bar on stdout for a query over two seconds unless told not
    # to: on a loaded machine the demo's '--json' output began with one. Its default
    # depends on the process (off under pytest's capture), so a process of its own asks.
    script = """
import sys
from pathlib import Path
from storage.analyst import read_only
from storage.store import Store

def progress_bar(db):
    db.execute("SELECT current_setting('enable_progress_bar')")
    return db.fetchone()[0]

path = Path(sys.argv[1])
seen = []
for read_only_store in (False, True):
    with Store.open(path, read_only=read_only_store) as store, store.native() as db:
        seen += [progress_bar(db), progress_bar(db.cursor())]
with read_only(path) as db:
    seen.append(progress_bar(db))
print(seen)
"""
    proc = subprocess.run([sys.executable, "-c", script, str(database)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[False, False, False, False, False]"
