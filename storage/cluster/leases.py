"""Jobs leased from PostgreSQL: which daemon pulls which (source, brand) now.

A job row holds its due time, its current lease (holder, fencing token, expiry) and its
cursor. ``take`` locks due, unleased (or expired) rows with ``FOR UPDATE SKIP LOCKED``,
so concurrent daemons never take the same job, and gives each lease the next number of
one sequence: its fencing token. ``commit`` stores a batch's mentions and its cursor in
one transaction only if the row still carries that token and the lease has not expired
(by the server's clock): a daemon paused or cut off past its lease has its late commit
refused (LeaseLostError) and stores nothing, while the job's new holder resumes from the
last cursor committed. Times are the server's ``now()``: daemons' clocks may differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from connectors.base import Mention
from storage.cluster.connection import translated
from storage.errors import LeaseLostError


@dataclass(frozen=True)
class Lease:
    source: str
    brand: str
    token: int
    holder: str
    expires_at: datetime
    cursor: dict[str, Any] | None


_TAKE = """
    UPDATE cluster_jobs j
       SET holder = %(holder)s, token = nextval('cluster_fence'),
           lease_expires_at = now() + make_interval(secs => %(ttl)s)
      FROM (SELECT source, brand FROM cluster_jobs
             WHERE due_at <= now() AND (lease_expires_at IS NULL OR lease_expires_at <= now())
                   {only}
             ORDER BY due_at, source, brand
             LIMIT %(limit)s
             FOR UPDATE SKIP LOCKED) due
     WHERE j.source = due.source AND j.brand = due.brand
 RETURNING j.source, j.brand, j.token, j.holder, j.lease_expires_at, j.cursor
"""

# cluster_mentions' columns every writer fills (leases' batches, backfill shards).
_COLUMNS = "source, id, brand, created_at, text, author, url, lang, token, holder"


def mention_row(mention: Mention, token: int, holder: str) -> tuple[Any, ...]:
    """``mention`` as a cluster_mentions row (_COLUMNS), committed under ``token``."""
    return (mention.source, mention.id, mention.brand, mention.created_at, mention.text, mention.author,
            mention.url, mention.lang, token, holder)


def insert_mentions(cur: psycopg.Cursor, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert cluster_mentions rows (mention_row), those already there left as they are;
    how many were new."""
    if not rows:
        return 0
    cur.executemany(f"INSERT INTO cluster_mentions ({_COLUMNS}) VALUES ({', '.join(['%s'] * len(rows[0]))}) "
                    "ON CONFLICT DO NOTHING", rows)
    # executemany's rowcount is the sum over the batch (psycopg 3).
    return max(cur.rowcount, 0)


class Leases:
    """The job table on one connection (one per thread: psycopg connections are not
    shared between concurrent transactions)."""

    def __init__(self, conn: psycopg.Connection, holder: str) -> None:
        self.conn = conn
        self.holder = holder

    def register(self, jobs: Iterable[tuple[str, str]]) -> None:
        """Make sure every (source, brand) has a job row (due now if it is new)."""
        rows = list(jobs)
        with translated("registering jobs"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany("INSERT INTO cluster_jobs (source, brand) VALUES (%s, %s) ON CONFLICT DO NOTHING", rows)

    def take(self, ttl_seconds: float, limit: int = 1, job: tuple[str, str] | None = None) -> list[Lease]:
        """Lease up to ``limit`` due jobs (or only ``job``) for ``ttl_seconds``; none when
        every due job is held by a live lease or is not due."""
        only = "AND source = %(source)s AND brand = %(brand)s" if job else ""
        params = {"holder": self.holder, "ttl": ttl_seconds, "limit": limit,
                  "source": job[0] if job else None, "brand": job[1] if job else None}
        with translated("taking a job lease"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(_TAKE.format(only=only), params)
            return [Lease(*row) for row in cur.fetchall()]

    def commit(self, lease: Lease, mentions: Sequence[Mention], cursor: dict[str, Any] | None,
               renew_seconds: float | None = None) -> int:
        """Store ``mentions`` and the job's new ``cursor`` in one transaction, fenced by
        the lease's token; returns how many mentions were new. LeaseLostError, with
        nothing stored, when the lease expired or another holder took the job.
        ``renew_seconds``: the lease then runs that long from this commit, so a long
        pull keeps its job while its batches keep committing."""
        with translated("committing a batch"), self.conn.transaction(), self.conn.cursor() as cur:
            # The row lock taken here orders this commit against a concurrent take.
            cur.execute("SELECT token, lease_expires_at > now() FROM cluster_jobs "
                        "WHERE source = %s AND brand = %s FOR UPDATE", (lease.source, lease.brand))
            row = cur.fetchone()
            if row is None or row[0] != lease.token or not row[1]:
                raise LeaseLostError(
                    f"lease on ({lease.source}, {lease.brand}) with token {lease.token} is no longer held "
                    f"(current token {row[0] if row else None}, expired: {not row[1] if row else True}): "
                    "batch not stored")
            new = insert_mentions(cur, [mention_row(m, lease.token, lease.holder) for m in mentions])
            cur.execute("UPDATE cluster_jobs SET cursor = coalesce(%s::jsonb, cursor), committed_at = now(), "
                        "lease_expires_at = CASE WHEN %s::float8 IS NULL THEN lease_expires_at "
                        "ELSE now() + make_interval(secs => %s::float8) END "
                        "WHERE source = %s AND brand = %s",
                        (None if cursor is None else json.dumps(cursor, sort_keys=True), renew_seconds,
                         renew_seconds, lease.source, lease.brand))
            return new

    def release(self, lease: Lease, next_due_seconds: float) -> bool:
        """End the lease and make the job due again in ``next_due_seconds``; False when the
        lease was no longer held (then the row is left to its current holder)."""
        with translated("releasing a job lease"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("UPDATE cluster_jobs SET holder = NULL, lease_expires_at = NULL, "
                        "due_at = now() + make_interval(secs => %s) "
                        "WHERE source = %s AND brand = %s AND token = %s",
                        (next_due_seconds, lease.source, lease.brand, lease.token))
            return cur.rowcount == 1

    def cursor(self, source: str, brand: str) -> dict[str, Any] | None:
        """The job's last committed cursor."""
        with translated("reading a cursor"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SELECT cursor FROM cluster_jobs WHERE source = %s AND brand = %s", (source, brand))
            row = cur.fetchone()
            return row[0] if row else None
