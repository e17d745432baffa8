"""The schema's migrations: each recorded once, reopening a database harmless."""

from storage.migrations import LATEST_VERSION
from storage.store import Store


def test_migrations_are_recorded_and_reopening_is_harmless(tmp_path):
    path = tmp_path / "m.duckdb"
    Store.open(path).close()
    with Store.open(path) as store:
        with store.native() as db:
            versions = db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [v[0] for v in versions] == list(range(1, LATEST_VERSION + 1))
