"""Jobs leased from PostgreSQL: which daemon pulls which (source, brand) now.

A job row holds its due time, its current lease (holder, fencing token, expiry) and its
cursor. ``take`` locks due, unleased (or expired) rows with ``FOR UPDATE SKIP LOCKED``,
so concurrent daemons never take the same job, and gives each lease the next number of
one sequence: its fencing token. ``commit`` stores a batch's mentions and its cursor in
one transaction only if the row still carries that token and the lease has not expired
(by the server's clock): a daemon paused or cut off past its lease has its late commit
refused (LeaseLostError) and stores nothing, while the job's new holder resumes from the
last cursor committed. Times are the server's ``now()``: daemons' clocks may differ.

Stages (the hourly stage and alerting, per period; the lake publisher's role,
``stage_job("lake")``, due at once after each round) are jobs too, keyed
``("stage", NAME)`` (``stage_job``): one holder at a time across the cluster, a period
stage due again at the next period boundary (``release_for_period``), their work
recorded under the lease's token (``fenced``: any transaction of the holder's own,
checked like a batch). Each name has one meaning and one cursor.

``committed`` reads back every mention committed since a watermark, whole, in commit
order: what a daemon's own file lacks (its crash between the two commits, or the other
daemons' batches) is caught up from there.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from connectors.base import Mention, ensure_utc
from storage.cluster.connection import translated
from storage.errors import ClusterError, LeaseLostError


# Rows per ``committed`` page: a page is held in memory (and staged whole by the lake).
COMMITTED_ROWS = 5000


@dataclass(frozen=True)
class Watermark:
    """Where a reader of ``Leases.committed`` stands: every row of the transactions below
    ``xid`` read, and of transaction ``xid`` those up to ``last`` (source, brand,
    created_at as ISO text, id) in read order; ``last`` None: none of ``xid`` read yet."""

    xid: int = 0
    last: tuple[str, str, str, str] | None = None

    def encode(self) -> str:
        """As text: the transaction id alone when no transaction is read in part."""
        return str(self.xid) if self.last is None else json.dumps([self.xid, *self.last])

    @classmethod
    def decode(cls, text: str) -> Watermark:
        if text.startswith("["):
            xid, *last = json.loads(text)
            return cls(int(xid), tuple(last))  # type: ignore[arg-type]
        return cls(int(text or 0))

    @classmethod
    def from_cursor(cls, cursor: dict[str, Any] | None) -> Watermark:
        """From a job's cursor ``{"txid": X}`` (with ``"last"`` when X is read in part)."""
        cursor = cursor or {}
        last = cursor.get("last")
        return cls(int(cursor.get("txid", 0)), tuple(last) if last else None)  # type: ignore[arg-type]

    def as_cursor(self) -> dict[str, Any]:
        return {"txid": self.xid} if self.last is None else {"txid": self.xid, "last": list(self.last)}


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

STAGE = "stage"
"""The ``source`` of a stage's job row: ``("stage", "hourly")``, ``("stage", "alerting")``..."""
# The period stages a daemon registers and runs (listener.cluster.Coordinator.stage). The
# lake publisher's job is another stage name ("lake", storage.lake.publisher.JOB) with a
# cursor of its own: no two users of one name.
STAGES = ("hourly", "alerting")

# A Mention's fields beyond cluster_mentions' columns, kept in its ``extra`` JSON.
_EXTRA = ("conversation_id", "parent_id", "metrics", "fetched_at", "thread_context", "own")
_COLUMNS = "source, id, brand, created_at, text, author, url, lang, token, holder, extra"


def stage_job(name: str) -> tuple[str, str]:
    """The job key of a stage: one holder at a time runs it, cluster-wide."""
    return (STAGE, name)


def holder_name() -> str:
    """Who holds a lease, as logs and the job and shard tables show it: host, pid and a
    nonce (two holders in one process are told apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pg_text(value: Any) -> Any:
    # PostgreSQL's text and jsonb cannot hold NUL (a DuckDB file keeps it: docs/analysts.md,
    # "Text as stored"); left in, the batch's commit would fail on every retry, forever.
    return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


def mention_key(mention: Mention) -> tuple[str, str, str]:
    """``mention``'s (source, id, brand) as PostgreSQL stores it (NUL removed): the key its
    cluster_scores rows carry too."""
    return (_pg_text(mention.source), _pg_text(mention.id), _pg_text(mention.brand))


def mention_row(mention: Mention, token: int, holder: str) -> tuple[Any, ...]:
    """``mention`` as a cluster_mentions row (_COLUMNS), committed under ``token``: every
    row committed to PostgreSQL (pulls, backfills, migrate) is made here, NUL removed."""
    extra = {name: _pg_text(getattr(mention, name)) for name in _EXTRA}
    extra["metrics"] = {_pg_text(key): value for key, value in mention.metrics.items()}
    extra["fetched_at"] = mention.fetched_at.isoformat() if mention.fetched_at else None
    return (*mention_key(mention), mention.created_at,
            *(_pg_text(v) for v in (mention.text, mention.author, mention.url, mention.lang)), token, holder,
            json.dumps(extra, sort_keys=True))


def insert_mentions(cur: psycopg.Cursor, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert cluster_mentions rows (mention_row), those already there left as they are;
    how many were new."""
    if not rows:
        return 0
    cur.executemany(f"INSERT INTO cluster_mentions ({_COLUMNS}) VALUES ({', '.join(['%s'] * 11)}) "
                    "ON CONFLICT DO NOTHING", rows)
    # executemany's rowcount is the sum over the batch (psycopg 3).
    return max(cur.rowcount, 0)


def mention_from_row(row: Sequence[Any]) -> Mention:
    """A cluster_mentions row (source, id, brand, created_at, text, author, url, lang,
    extra) as the Mention that was committed: mention_row's inverse."""
    source, id_, brand, created_at, text, author, url, lang, extra = row
    extra = dict(extra or {})  # rows committed before the extra column: the columns only
    if extra.get("fetched_at"):
        extra["fetched_at"] = datetime.fromisoformat(extra["fetched_at"])
    return Mention(source=source, id=id_, brand=brand, created_at=ensure_utc(created_at), text=text, author=author,
                   url=url, lang=lang, **{k: v for k, v in extra.items() if k in _EXTRA and v is not None})


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
        """Lease up to ``limit`` due jobs (or only ``job``, a stage's included) for
        ``ttl_seconds``; none when every due job is held by a live lease or is not due.
        Without ``job``, only (source, brand) pulls: stages are never taken by accident."""
        # Stages are taken by name only: a collector asking for any due job gets pulls.
        only = "AND source = %(source)s AND brand = %(brand)s" if job else "AND source <> %(stage)s"
        params = {"holder": self.holder, "ttl": ttl_seconds, "limit": limit,
                  "source": job[0] if job else None, "brand": job[1] if job else None, "stage": STAGE}
        with translated("taking a job lease"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(_TAKE.format(only=only), params)
            return [Lease(*row) for row in cur.fetchall()]

    @contextmanager
    def fenced(self, lease: Lease, what: str = "committing a batch") -> Iterator[psycopg.Cursor]:
        """A transaction that commits only while ``lease`` is held: the job row is locked
        and its token and expiry checked first, so what the caller writes with the cursor
        (a batch, a stage's progress, a publisher's manifest) commits with the check or
        not at all. LeaseLostError, with nothing written, when the lease expired or
        another holder took the job."""
        with translated(what), self.conn.transaction(), self.conn.cursor() as cur:
            # The row lock taken here orders this commit against a concurrent take.
            cur.execute("SELECT token, lease_expires_at > now() FROM cluster_jobs "
                        "WHERE source = %s AND brand = %s FOR UPDATE", (lease.source, lease.brand))
            row = cur.fetchone()
            if row is None or row[0] != lease.token or not row[1]:
                raise LeaseLostError(
                    f"lease on ({lease.source}, {lease.brand}) with token {lease.token} is no longer held "
                    f"(current token {row[0] if row else None}, expired: {not row[1] if row else True}): "
                    "nothing stored")
            yield cur

    def commit(self, lease: Lease, mentions: Sequence[Mention], cursor: dict[str, Any] | None,
               renew_seconds: float | None = None) -> int:
        """Store ``mentions`` and the job's new ``cursor`` in one transaction, fenced by
        the lease's token; returns how many mentions were new. LeaseLostError, with
        nothing stored, when the lease expired or another holder took the job.
        ``renew_seconds``: the lease then runs that long from this commit, so a long
        pull keeps its job while its batches keep committing."""
        with self.fenced(lease) as cur:
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

    def release_for_period(self, lease: Lease, period_seconds: float) -> bool:
        """End a stage's lease, the stage due again at the start of the next period (a
        multiple of ``period_seconds`` since the epoch, by the server's clock), so every
        daemon's tick in that period finds it, and none before; False as ``release``."""
        with translated("releasing a stage lease"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("UPDATE cluster_jobs SET holder = NULL, lease_expires_at = NULL, "
                        "due_at = to_timestamp((floor(extract(epoch FROM now()) / %s) + 1) * %s) "
                        "WHERE source = %s AND brand = %s AND token = %s",
                        (period_seconds, period_seconds, lease.source, lease.brand, lease.token))
            return cur.rowcount == 1

    def server_id(self) -> str:
        """The server's system identifier (one per initdb): transaction ids, and so
        ``committed``'s watermarks, are only comparable on one server."""
        with translated("reading the server's identity"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SELECT system_identifier::text FROM pg_control_system()")
            return cur.fetchone()[0]

    def committed(self, after: Watermark | int = 0, max_rows: int = COMMITTED_ROWS
                  ) -> tuple[list[Mention], Watermark, bool]:
        """Mentions committed from watermark ``after`` on (0: from the start), at most
        ``max_rows`` of them, oldest transaction first (within one, by source, brand,
        creation time and id); with the watermark to read from next and whether
        everything committed so far was read. A transaction larger than ``max_rows`` (a
        backfill's shard) is read in pages: the watermark then points inside it.

        ClusterError when ``after`` is beyond this server's transaction ids (a watermark
        from another server, as a restore onto a new one leaves the lake's cursor).

        Exact under concurrent commits: only transactions below the snapshot's xmin are
        read, and every one of those has committed or aborted, so none is seen half or
        skipped; later ones come with the next call."""
        after = after if isinstance(after, Watermark) else Watermark(after)
        with translated("reading committed mentions"), self.conn.transaction(), self.conn.cursor() as cur:
            # One snapshot for the horizon and the rows (pg_current_snapshot is the
            # transaction's under REPEATABLE READ).
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text, "
                        "pg_snapshot_xmax(pg_current_snapshot())::text")
            horizon, newest = (int(x) for x in cur.fetchone())
            if after.xid > newest:
                # A watermark no transaction of this server has reached: another server's
                # (a restore onto a new one). Reading on would find nothing, silently, until
                # this server's ids caught up with the old one's.
                raise ClusterError(
                    f"the watermark {after.xid} is beyond this server's newest transaction id ({newest}): it "
                    "is another server's (a restore onto a new server?); see docs/deploy.md, Restore")
            # Keyset pagination over the index (xid, source, brand, created_at, id).
            if after.last is None:
                start, params = "xid >= %s::text::xid8", [str(after.xid)]
            else:
                start = "(xid, source, brand, created_at, id) > (%s::text::xid8, %s, %s, %s::timestamptz, %s)"
                params = [str(after.xid), *after.last]
            cur.execute(f"SELECT source, id, brand, created_at, text, author, url, lang, extra, xid::text "
                        f"FROM cluster_mentions WHERE {start} AND xid < %s::text::xid8 "
                        "ORDER BY xid, source, brand, created_at, id LIMIT %s", (*params, str(horizon), max_rows))
            rows = cur.fetchall()
        found = [mention_from_row(row[:9]) for row in rows]
        if len(rows) < max_rows:
            return found, Watermark(max(after.xid, horizon)), True
        source, id_, brand, created_at, *_, xid = rows[-1]
        return found, Watermark(int(xid), (source, brand, created_at.isoformat(), id_)), False
