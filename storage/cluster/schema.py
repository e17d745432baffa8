"""The cluster's tables in PostgreSQL and their migrations.

Versioned like the DuckDB file (storage.migrations): ``cluster_meta.schema_version``
says which of MIGRATIONS ran; each migration runs in one transaction under an advisory
lock, so daemons starting at once migrate once and never see half a schema.
"""

from __future__ import annotations

import psycopg

from storage.cluster.connection import translated
from storage.errors import ClusterError

# Any fixed 64-bit number: the advisory lock every migrating process takes.
_MIGRATION_LOCK = 0x6C697374656E6572  # "listener"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: jobs with leases and fencing tokens, mentions committed under them, budgets
        "CREATE TABLE cluster_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # Every lease taken gets the next number: a commit must carry the job's current one.
        "CREATE SEQUENCE cluster_fence",
        """CREATE TABLE cluster_jobs (
               source TEXT NOT NULL, brand TEXT NOT NULL,
               due_at TIMESTAMPTZ NOT NULL DEFAULT now(),
               holder TEXT, token BIGINT, lease_expires_at TIMESTAMPTZ,
               cursor JSONB, committed_at TIMESTAMPTZ,
               PRIMARY KEY (source, brand))""",
        """CREATE TABLE cluster_mentions (
               source TEXT NOT NULL, id TEXT NOT NULL, brand TEXT NOT NULL,
               created_at TIMESTAMPTZ NOT NULL, text TEXT NOT NULL, author TEXT, url TEXT, lang TEXT,
               token BIGINT NOT NULL, holder TEXT NOT NULL, stored_at TIMESTAMPTZ NOT NULL DEFAULT now(),
               PRIMARY KEY (source, id, brand))""",
        """CREATE TABLE cluster_budgets (
               credential TEXT PRIMARY KEY, window_start TIMESTAMPTZ NOT NULL,
               used BIGINT NOT NULL DEFAULT 0)""",
    ),
    (  # lake (issue 17 item 3, storage.lake): what the publisher moved into Parquet
        # The committing transaction's id, for the publisher's watermark: ids below the
        # oldest transaction still running (txid_snapshot_xmin) are all finished, so a
        # row committed late by a slow transaction is never skipped, as it would be
        # behind a serial column or a time. txid_current() (not pg_current_xact_id()):
        # PostgreSQL 12 has it too.
        "ALTER TABLE cluster_mentions ADD COLUMN commit_txid BIGINT NOT NULL DEFAULT txid_current()",
        "CREATE INDEX cluster_mentions_commit_txid ON cluster_mentions (commit_txid)",
        # The committed files: a reader reads these and nothing else in the lake. kind:
        # mentions | scores; path relative to the lake's root; max_txid: the watermark
        # the file was published under (rows of transactions below it).
        """CREATE TABLE lake_files (
               path TEXT PRIMARY KEY, kind TEXT NOT NULL, brand TEXT NOT NULL, day DATE NOT NULL,
               rows BIGINT NOT NULL, max_txid BIGINT NOT NULL, token BIGINT NOT NULL,
               published_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
        "CREATE INDEX lake_files_brand_day ON lake_files (brand, day)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: psycopg.Connection) -> int:
    with translated("reading the cluster schema version"), conn.cursor() as cur:
        cur.execute("SELECT to_regclass('cluster_meta') IS NOT NULL")
        if not cur.fetchone()[0]:
            return 0
        cur.execute("SELECT value FROM cluster_meta WHERE key = 'schema_version'")
        row = cur.fetchone()
        return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection) -> int:
    """Bring the cluster tables to SCHEMA_VERSION; returns the version found before.
    A database from a newer release is refused rather than written to."""
    with translated("migrating the cluster tables"):
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            found = current_version(conn)
            if found > SCHEMA_VERSION:
                raise ClusterError(f"the cluster tables are at schema {found}, newer than this release's "
                                   f"{SCHEMA_VERSION}: upgrade listener on this machine")
            for statements in MIGRATIONS[found:]:
                for statement in statements:
                    cur.execute(statement)
            cur.execute("INSERT INTO cluster_meta VALUES ('schema_version', %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
    return found
