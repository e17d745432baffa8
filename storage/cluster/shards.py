"""Backfills spread over machines: an archive file's shards leased from PostgreSQL.

``create`` registers a backfill (the file on shared storage, its format, the brand
queries to match, one ``fetched_at``) and its shards: line-aligned byte ranges of the
file (listener.backfill.split). Workers on any machine ``take`` a shard like a job
(storage.cluster.leases): ``FOR UPDATE SKIP LOCKED`` on an unfinished shard whose lease is
free or expired, with the next fencing token of the one sequence. While a worker prepares
its shard it ``stage``s the results in temporary tables of its own session (nothing
shared, memory bounded; each staging renews the lease, or raises LeaseLostError at once
when the shard was lost). ``complete`` then moves the staged mentions and scores into
``cluster_mentions``/``cluster_scores`` and marks the shard done in ONE transaction, only
while the lease still carries this token and has not expired: a worker killed mid-shard
leaves nothing (its session and staging die with it) and its shard is retaken once the
lease expires; a paused one's late ``complete`` is refused. Inserts skip keys already
stored (``ON CONFLICT DO NOTHING``), so a post in two shards, or already collected by a
daemon, is stored once.

Times are the server's ``now()``; ``now`` (a clock) replaces it for tests, so a lease can
expire without waiting.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg

from analysis.sentiment import Score
from connectors.base import BrandQuery, Mention
from storage.cluster.connection import translated
# The same row as a collector's batch (leases): whatever cluster_mentions keeps of a mention.
from storage.cluster.leases import _COLUMNS as MENTION_COLUMNS
from storage.cluster.leases import mention_key, mention_row
from storage.errors import LeaseLostError

SCORE_COLUMNS = ("source", "id", "brand", "scorer", "version", "compound", "pos", "neu", "neg", "label")
_NOW = "coalesce(%(now)s::timestamptz, now())"


@dataclass(frozen=True)
class Backfill:
    id: int
    path: str
    size: int
    source: str
    format: str
    queries: tuple[BrandQuery, ...]
    fetched_at: datetime


@dataclass(frozen=True)
class ShardLease:
    backfill: Backfill
    shard: int
    start_byte: int
    end_byte: int
    first_line: int
    token: int
    holder: str
    expires_at: datetime


@dataclass(frozen=True)
class Progress:
    backfill: int
    path: str
    shards: int
    done: int
    leased: int
    mentions: int


def _query_from_json(data: dict[str, Any]) -> BrandQuery:
    """A BrandQuery back from its JSON (lists become the tuples it holds)."""
    fields = {key: tuple(value) for key, value in data.items() if key not in ("brand", "own_accounts")}
    own = tuple((source, tuple(accounts)) for source, accounts in data.get("own_accounts", ()))
    return BrandQuery(brand=data["brand"], own_accounts=own, **fields)


class Shards:
    """The shard table on one connection (one per worker process or thread)."""

    def __init__(self, conn: psycopg.Connection, holder: str, now: Callable[[], datetime] | None = None) -> None:
        self.conn = conn
        self.holder = holder
        self._now = now
        self._backfills: dict[int, Backfill] = {}
        self._staging = False

    def _params(self, **params: Any) -> dict[str, Any]:
        return {"now": self._now() if self._now else None, "holder": self.holder, **params}

    def create(self, path: str, size: int, source: str, fmt: str, queries: Sequence[BrandQuery],
               fetched_at: datetime, spans: Sequence[tuple[int, int, int]]) -> int:
        """Register a backfill of ``path`` with one shard per (start byte, end byte, first
        line) of ``spans``; returns its id."""
        with translated("registering a backfill"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("INSERT INTO cluster_backfills (path, size, source, format, queries, fetched_at) "
                        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                        (path, size, source, fmt, json.dumps([asdict(q) for q in queries]), fetched_at))
            backfill = cur.fetchone()[0]
            cur.executemany("INSERT INTO cluster_shards (backfill, shard, start_byte, end_byte, first_line) "
                            "VALUES (%s, %s, %s, %s, %s)",
                            [(backfill, number, *span) for number, span in enumerate(spans, start=1)])
            return backfill

    def take(self, ttl_seconds: float) -> ShardLease | None:
        """Lease the first unfinished shard that is free (or whose lease expired) for
        ``ttl_seconds``; None when every unfinished shard is held."""
        with translated("taking a shard lease"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(f"""
                UPDATE cluster_shards s
                   SET holder = %(holder)s, token = nextval('cluster_fence'), attempts = s.attempts + 1,
                       lease_expires_at = {_NOW} + make_interval(secs => %(ttl)s)
                  FROM (SELECT backfill, shard FROM cluster_shards
                         WHERE done_at IS NULL AND (lease_expires_at IS NULL OR lease_expires_at <= {_NOW})
                         ORDER BY backfill, shard LIMIT 1
                         FOR UPDATE SKIP LOCKED) free
                 WHERE s.backfill = free.backfill AND s.shard = free.shard
             RETURNING s.backfill, s.shard, s.start_byte, s.end_byte, s.first_line, s.token, s.holder,
                       s.lease_expires_at""", self._params(ttl=ttl_seconds))
            row = cur.fetchone()
            if row is None:
                return None
            return ShardLease(self._backfill(cur, row[0]), *row[1:])

    def _backfill(self, cur: psycopg.Cursor, backfill: int) -> Backfill:
        if backfill not in self._backfills:
            cur.execute("SELECT id, path, size, source, format, queries, fetched_at FROM cluster_backfills "
                        "WHERE id = %s", (backfill,))
            row = cur.fetchone()
            self._backfills[backfill] = Backfill(*row[:5], tuple(_query_from_json(q) for q in row[5]), row[6])
        return self._backfills[backfill]

    def discard_staged(self) -> None:
        """Empty this session's staging (before a shard: what a failed one left)."""
        with translated("preparing the staging tables"), self.conn.transaction(), self.conn.cursor() as cur:
            if not self._staging:
                # Temporary: private to this session, and gone with it when the worker dies.
                # Only the columns staged, typed as in the cluster's tables, no constraints.
                cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS staged_mentions AS "
                            f"SELECT {MENTION_COLUMNS} FROM cluster_mentions WITH NO DATA")
                cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS staged_scores AS "
                            f"SELECT {', '.join(SCORE_COLUMNS)} FROM cluster_scores WITH NO DATA")
                self._staging = True
            cur.execute("TRUNCATE staged_mentions, staged_scores")

    def stage(self, lease: ShardLease, mentions: Sequence[Mention], scores: Sequence[tuple[Mention, str, str, Score]],
              ttl_seconds: float) -> None:
        """Add part of the shard's result to this session's staging, and renew the lease
        for ``ttl_seconds``; LeaseLostError when it is no longer held (stop working on it)."""
        with translated("staging a shard's mentions"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(f"UPDATE cluster_shards SET lease_expires_at = {_NOW} + make_interval(secs => %(ttl)s) "
                        f"WHERE backfill = %(backfill)s AND shard = %(shard)s AND token = %(token)s "
                        f"AND done_at IS NULL AND lease_expires_at > {_NOW}",
                        self._params(ttl=ttl_seconds, backfill=lease.backfill.id, shard=lease.shard,
                                     token=lease.token))
            if cur.rowcount != 1:
                raise LeaseLostError(f"lease on shard {lease.shard} of backfill {lease.backfill.id} with token "
                                     f"{lease.token} is no longer held: shard abandoned")
            with cur.copy(f"COPY staged_mentions ({MENTION_COLUMNS}) FROM STDIN") as copy:
                for m in mentions:
                    copy.write_row(mention_row(m, lease.token, lease.holder))
            with cur.copy(f"COPY staged_scores ({', '.join(SCORE_COLUMNS)}) FROM STDIN") as copy:
                for m, scorer, version, s in scores:
                    copy.write_row((*mention_key(m), scorer, version, s.compound, s.pos, s.neu, s.neg,
                                    s.label))

    def complete(self, lease: ShardLease, read: int, bad_lines: int) -> int:
        """Store the staged mentions and scores and mark the shard done, in one
        transaction fenced by the lease's token; returns how many mentions were new.
        LeaseLostError, with nothing stored, when the lease expired or was retaken."""
        key = {"backfill": lease.backfill.id, "shard": lease.shard}
        with translated("committing a shard"), self.conn.transaction(), self.conn.cursor() as cur:
            # The row lock orders this commit against a concurrent take of the shard.
            cur.execute(f"SELECT token, lease_expires_at > {_NOW}, done_at IS NOT NULL FROM cluster_shards "
                        "WHERE backfill = %(backfill)s AND shard = %(shard)s FOR UPDATE", self._params(**key))
            token, live, done = cur.fetchone()
            if token != lease.token or not live or done:
                raise LeaseLostError(
                    f"lease on shard {lease.shard} of backfill {lease.backfill.id} with token {lease.token} is no "
                    f"longer held (current token {token}, expired: {not live}, done: {done}): shard not stored")
            # In key order: concurrent shards holding the same posts lock them in one order.
            cur.execute(f"INSERT INTO cluster_mentions ({MENTION_COLUMNS}) SELECT {MENTION_COLUMNS} "
                        "FROM staged_mentions ORDER BY source, id, brand ON CONFLICT DO NOTHING")
            new = max(cur.rowcount, 0)
            cur.execute("SELECT count(*) FROM staged_mentions")
            mentions = cur.fetchone()[0]
            columns = ", ".join(SCORE_COLUMNS)
            cur.execute(f"INSERT INTO cluster_scores ({columns}, token) SELECT {columns}, %(token)s "
                        "FROM staged_scores ORDER BY source, id, brand, scorer ON CONFLICT DO NOTHING",
                        {"token": lease.token})
            cur.execute("UPDATE cluster_shards SET done_at = now(), lease_expires_at = NULL, read = %(read)s, "
                        "bad_lines = %(bad)s, mentions = %(mentions)s, new_mentions = %(new)s "
                        "WHERE backfill = %(backfill)s AND shard = %(shard)s",
                        {**key, "read": read, "bad": bad_lines, "mentions": mentions, "new": new})
            cur.execute("TRUNCATE staged_mentions, staged_scores")
            return new

    def release(self, lease: ShardLease) -> None:
        """Give the shard back at once (this worker cannot do it: another may)."""
        with translated("releasing a shard lease"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("UPDATE cluster_shards SET holder = NULL, lease_expires_at = NULL "
                        "WHERE backfill = %s AND shard = %s AND token = %s AND done_at IS NULL",
                        (lease.backfill.id, lease.shard, lease.token))

    def progress(self, backfill: int | None = None) -> list[Progress]:
        """Each backfill's (or ``backfill``'s) shards: how many, done, leased now; mentions stored."""
        with translated("reading backfill progress"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(f"""
                SELECT b.id, b.path, count(*), count(s.done_at),
                       count(*) FILTER (WHERE s.done_at IS NULL AND s.lease_expires_at > {_NOW}),
                       coalesce(sum(s.new_mentions), 0)
                  FROM cluster_backfills b JOIN cluster_shards s ON s.backfill = b.id
                 WHERE %(backfill)s::bigint IS NULL OR b.id = %(backfill)s
                 GROUP BY b.id, b.path ORDER BY b.id""", self._params(backfill=backfill))
            return [Progress(*row) for row in cur.fetchall()]
