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
    (  # backfill: an archive file split into shards leased like jobs (storage.cluster.shards)
        # The file and what to match are stored with the backfill: any machine's worker
        # reads the same shared file with the same brand queries, whatever its config.
        """CREATE TABLE cluster_backfills (
               id BIGSERIAL PRIMARY KEY, path TEXT NOT NULL, size BIGINT NOT NULL, source TEXT NOT NULL,
               format TEXT NOT NULL, queries JSONB NOT NULL, fetched_at TIMESTAMPTZ NOT NULL,
               created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
        # A shard: the lines starting in [start_byte, end_byte), the first being line first_line.
        """CREATE TABLE cluster_shards (
               backfill BIGINT NOT NULL REFERENCES cluster_backfills ON DELETE CASCADE, shard INT NOT NULL,
               start_byte BIGINT NOT NULL, end_byte BIGINT NOT NULL, first_line BIGINT NOT NULL,
               holder TEXT, token BIGINT, lease_expires_at TIMESTAMPTZ, attempts INT NOT NULL DEFAULT 0,
               done_at TIMESTAMPTZ, read BIGINT, bad_lines BIGINT, mentions BIGINT, new_mentions BIGINT,
               PRIMARY KEY (backfill, shard))""",
        # Scores committed with their mentions (a backfill's VADER scores, computed with them).
        """CREATE TABLE cluster_scores (
               source TEXT NOT NULL, id TEXT NOT NULL, brand TEXT NOT NULL, scorer TEXT NOT NULL,
               version TEXT NOT NULL, compound DOUBLE PRECISION NOT NULL, pos DOUBLE PRECISION NOT NULL,
               neu DOUBLE PRECISION NOT NULL, neg DOUBLE PRECISION NOT NULL, label TEXT NOT NULL,
               token BIGINT NOT NULL, PRIMARY KEY (source, id, brand, scorer))""",
    ),
    (  # clusterops: mentions whole (not only the columns above), in commit order for catching up
        # What the columns above leave out of a Mention (thread, metrics, own/context flags),
        # so a daemon's file can be rebuilt from PostgreSQL (storage.cluster.leases.committed).
        "ALTER TABLE cluster_mentions ADD COLUMN extra JSONB",
        # The committing transaction's id: rows below pg_snapshot_xmin of a later snapshot
        # are all committed and visible, which makes "everything since" exact without
        # locking out the collectors (a sequence's order is not commit order).
        "ALTER TABLE cluster_mentions ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id()",
        "CREATE INDEX cluster_mentions_xid ON cluster_mentions (xid)",
    ),
    (  # lake (issue 17 item 3, storage.lake): what the publisher moved into Parquet; its
        # watermark is in cluster_mentions.xid's numbers (Leases.committed)
        # The committed files: a reader reads these and nothing else in the lake. kind:
        # mentions | scores; path relative to the lake's root; max_txid: the watermark
        # the file was published under (rows of transactions below it).
        """CREATE TABLE lake_files (
               path TEXT PRIMARY KEY, kind TEXT NOT NULL, brand TEXT NOT NULL, day DATE NOT NULL,
               rows BIGINT NOT NULL, max_txid BIGINT NOT NULL, token BIGINT NOT NULL,
               published_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
        "CREATE INDEX lake_files_brand_day ON lake_files (brand, day)",
    ),
    (  # lake: files that left the manifest (replaced by a compaction or a day's new hourly
        # file), with when, by the server's clock: ``clean`` deletes them only once a reader
        # that listed them before has had the grace to finish (storage.lake.publisher).
        """CREATE TABLE lake_retired (
               path TEXT PRIMARY KEY, retired_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    ),
    (  # alerting: what was delivered, cluster-wide (storage.cluster.alerts). Each daemon's
        # file detects and keeps its own alerts; the stage moving to another daemon must
        # not deliver the same one again. Keyed as an alert is in a file.
        """CREATE TABLE cluster_alert_deliveries (
               brand TEXT NOT NULL, metric TEXT NOT NULL, direction TEXT NOT NULL, hour TIMESTAMPTZ NOT NULL,
               channel TEXT NOT NULL, token BIGINT NOT NULL, delivered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
               PRIMARY KEY (brand, metric, direction, hour, channel))""",
        # Leases.committed pages through a transaction (a backfill's shard is one) by this key.
        "CREATE INDEX cluster_mentions_xid_key ON cluster_mentions (xid, source, brand, created_at, id)",
        "DROP INDEX cluster_mentions_xid",
        # The lake publisher's job was ("stage", "publishing"), a name the period stages
        # used too: its cursor (when it is still the publisher's) moves to ("stage", "lake").
        """INSERT INTO cluster_jobs (source, brand, cursor)
               SELECT source, 'lake', cursor FROM cluster_jobs
                WHERE source = 'stage' AND brand = 'publishing' AND cursor ? 'txid'
               ON CONFLICT DO NOTHING""",
        "DELETE FROM cluster_jobs WHERE source = 'stage' AND brand IN ('publishing', 'compaction')",
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
