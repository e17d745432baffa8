"""The lake publisher: the cluster's committed mentions, scored, into Parquet files that
analysts read (issue 17 item 3; docs/cluster.md, "The lake").

One publisher at a time holds the role, through the job ('stage', 'lake') of the
cluster's lease table (storage.cluster.Leases): a lease with an expiry and a fencing
token, exactly as a (source, brand) pull takes its job. Its progress is that job's
cursor, ``{"txid": W}``: every row of ``cluster_mentions`` committed by a transaction
below W is in the lake (with ``"last"``, the key of the last row published of W itself:
a transaction larger than a chunk, a backfill's shard, is published in pages,
storage.cluster.leases.Watermark).

Each chunk of new rows (at most ``chunk_rows``, those committed by transactions from W up to the oldest one
still running, ``pg_snapshot_xmin``, so a slow transaction's rows are never skipped:
storage.cluster.leases.Leases.committed, which a daemon's catch-up reads through too)
goes through the pipeline's own staging (near-duplicates, every scorer's scores: the
``prepare`` callable, listener.lake; the lease renewed every ``stage_rows``), then into one Parquet file per kind (mentions,
scores), brand and day; each day the chunk touched gets its hourly rows recomputed from
that day's files by the hourly stage's SQL (storage.lake.catalog), a new file replacing
the day's previous one. Every file is written under a temporary name and renamed.
Then, in ONE PostgreSQL transaction, the fenced cursor update (Leases.commit, refused
when the lease was lost) and the files' manifest rows (``lake_files``) commit together.
Readers read the files the manifest lists and nothing else: a publisher killed between
its files and its commit leaves files nobody reads, which ``clean`` deletes later, and
the next holder publishes those rows again from the unchanged cursor, so each row is in
the lake once.

Cost follows the new rows: the chunk is found through the index on ``(xid, source, brand, created_at, id)``; the
near-duplicate check reads only the brand's files of the days within the duplicate
window (analysis.duplicates.WINDOW) of the chunk's mentions, and the hourly rows only
the touched days' files.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectors.base import Mention, utc_now
from storage.cluster.connection import translated
from storage.cluster.leases import Lease, Leases, Watermark, stage_job
from storage.errors import LeaseLostError
from storage.lake.catalog import HOURLY_QUERY, as_table, columns_of, new_database, parquet, point_at, sql_list
from storage.store import SaveResult, mentions_table, quiet, scores_table, to_db_time

# The publisher's role: a stage's job key (collectors taking any due job never take a
# stage's), its own name ("lake"), whose cursor is the publisher's {"txid"} alone.
JOB = stage_job("lake")
KINDS = ("mentions", "scores", "hourly_mood")
# Rows per chunk (a page of Leases.committed: a backfill shard's transaction is read in
# several): a chunk's rows are staged in memory.
CHUNK_ROWS = 5000
# Rows staged between two renewals of the lease: staging is the slow part (scoring).
STAGE_ROWS = 1000
# A brand's day in more files than this (a publish a minute adds one each) is merged into
# one: readers open every file they read, and 1,440 a day would make each query slow.
COMPACT_FILES = 16

# Stage one (source, brand) group of new mentions into ``chunk`` (listener.lake: the
# pipeline's store_relevant over a LakeChunk), as a daemon stages a batch into its file.
Prepare = Callable[["LakeChunk", str, str, list[Mention]], None]


@dataclass(frozen=True, slots=True)
class LakeFile:
    path: str  # relative to the lake's root
    kind: str
    brand: str
    day: date
    rows: int


@dataclass(frozen=True, slots=True)
class PublishResult:
    """``held``: False when another publisher holds the role (nothing done).
    ``rows``: mentions published; ``files``: files committed; ``watermark``: the cursor;
    ``compacted``: brands' days whose files were merged into one."""

    held: bool
    rows: int = 0
    files: int = 0
    chunks: int = 0
    watermark: int = 0
    compacted: int = 0  # brand-days whose files were merged


def committed_files(conn: psycopg.Connection, kind: str | None = None, brand: str | None = None,
                    days: tuple[date, date] | None = None) -> list[LakeFile]:
    """The manifest: files committed to the lake (of ``kind``, ``brand``, days in the
    inclusive range ``days``), oldest first."""
    clauses, params = [], []
    if kind is not None:
        clauses.append("kind = %s")
        params.append(kind)
    if brand is not None:
        clauses.append("brand = %s")
        params.append(brand)
    if days is not None:
        clauses.append("day BETWEEN %s AND %s")
        params.extend(days)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    with translated("reading the lake's manifest"), conn.transaction(), conn.cursor() as cur:
        cur.execute(f"SELECT path, kind, brand, day, rows FROM lake_files{where} ORDER BY max_txid, path", params)
        return [LakeFile(*row) for row in cur.fetchall()]


@dataclass
class LakeChunk:
    """The Store calls Pipeline.store_relevant makes, answered for one chunk of the lake:
    staged tables instead of a transaction, and near-duplicates looked up in the lake's
    committed files and in what this chunk staged before."""

    publisher: LakePublisher
    mentions: list[pa.Table] = field(default_factory=list)
    scores: list[pa.Table] = field(default_factory=list)
    _staged: dict[tuple[str, int], list[datetime]] = field(default_factory=dict)

    def known_ids(self, mentions: Sequence[Mention]) -> set[str]:
        # cluster_mentions' primary key already holds each (source, id, brand) once, and
        # the watermark hands each row to one chunk.
        return set()

    def fingerprint_times(self, brand: str, hashes: Sequence[int], lo: datetime, hi: datetime
                          ) -> dict[int, list[datetime]]:
        found = self.publisher.lake_fingerprints(brand, hashes, lo, hi)
        wanted = set(hashes)
        for (staged_brand, text_hash), times in self._staged.items():
            if staged_brand == brand and text_hash in wanted:
                found.setdefault(text_hash, []).extend(t for t in times if lo <= t <= hi)
        return found

    def save_batch(self, mentions: Sequence[Mention], scores: Sequence[Any], *, source: str, brand: str,
                   checkpoint: Any, now: datetime, text_hashes: Sequence[int | None] | None = None,
                   duplicates: Sequence[bool] | None = None, **_: Any) -> SaveResult:
        if mentions:
            self.mentions.append(mentions_table(mentions, text_hashes, duplicates))
            self.scores.append(scores_table(mentions, scores, now))
            for mention, text_hash in zip(mentions, text_hashes or ()):
                if text_hash is not None:
                    self._staged.setdefault((mention.brand, text_hash), []).append(mention.created_at)
        return SaveResult(fetched=len(mentions), new=len(mentions))


def _retire(cur: psycopg.Cursor, paths: Sequence[str]) -> None:
    """Record that ``paths`` left the manifest now, in the transaction that removes them."""
    cur.executemany("INSERT INTO lake_retired (path) VALUES (%s) ON CONFLICT DO NOTHING", [(p,) for p in paths])


class LakePublisher:
    """Publishes from one connection, as ``holder``, into the directory ``lake``."""

    def __init__(self, conn: psycopg.Connection, lake: Path, prepare: Prepare, *, holder: str,
                 lease_seconds: float = 300, chunk_rows: int = CHUNK_ROWS, stage_rows: int = STAGE_ROWS,
                 compact_files: int = COMPACT_FILES,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.conn = conn
        self.lake = Path(lake)
        self.prepare = prepare
        self.leases = Leases(conn, holder)
        self.lease_seconds = lease_seconds
        self.chunk_rows = chunk_rows
        self.stage_rows = stage_rows
        self.compact_files = compact_files
        self.clock = clock
        # A scratch database with the listener schema, whose tables become views over the
        # lake's files: the near-duplicate lookups and the hourly rows are read there. In
        # memory, so a publisher that dies leaves nothing behind.
        self._duck = duckdb.connect(config={"threads": 1})
        quiet(self._duck)
        schema = Path(tempfile.mkdtemp(prefix="listener-lake-publisher-"))
        try:
            new_database(schema / "schema.duckdb")
            self._duck.execute(f"ATTACH {sql_list([schema / 'schema.duckdb'])[1:-1]} AS schema_source (READ_ONLY)")
            self._duck.execute("COPY FROM DATABASE schema_source TO memory")
            self._duck.execute("DETACH schema_source")
        finally:
            shutil.rmtree(schema, ignore_errors=True)
        self._duck.execute("CREATE TABLE no_scores AS SELECT * FROM scores LIMIT 0")
        self._hourly_columns = columns_of(self._duck, "hourly_mood")

    def close(self) -> None:
        self._duck.close()

    def publish(self, *, should_stop: Callable[[], bool] | None = None,
                before_commit: Callable[[list[LakeFile]], None] | None = None, clean: bool = False) -> PublishResult:
        """Publish every row committed since the cursor, chunk by chunk, if this process
        can take the role, then, with ``clean``, delete what dead publishers left
        (``clean``); ``before_commit`` is called with each chunk's files once they are
        written (the tests' kill point). LeaseLostError when the lease was lost mid-way
        (that chunk is not committed; the new holder publishes it)."""
        self.leases.register([JOB])
        taken = self.leases.take(self.lease_seconds, job=JOB)
        if not taken:
            return PublishResult(held=False)
        lease = taken[0]
        watermark = Watermark.from_cursor(lease.cursor)
        rows = files = chunks = 0
        try:
            done = False
            while not done and (should_stop is None or not should_stop()):
                fresh, upper, done = self.leases.committed(watermark, self.chunk_rows)
                # Nothing new: the cursor stays (moving it past transactions without
                # rows would only commit transactions of its own, forever).
                if not fresh:
                    break
                written = self._write(self._stage(fresh, lease), lease, watermark.xid, upper.xid)
                written += self._hourly(written, lease, watermark.xid, upper.xid)
                if before_commit is not None:
                    before_commit(written)
                self._commit(lease, written, upper)
                watermark = upper
                rows += len(fresh)
                files += len(written)
                chunks += 1
            compacted = self._compact(lease)
            if clean:
                self.clean()
        finally:
            self.leases.release(lease, 0)
        return PublishResult(held=True, rows=rows, files=files, chunks=chunks, watermark=watermark.xid,
                             compacted=compacted)

    def _stage(self, fresh: list[Mention], lease: Lease) -> LakeChunk:
        """Stage the chunk's mentions in commit order, a run of one (source, brand) at a
        time (a collector's batch), so "stored earlier" means what it means in a daemon's
        file: which copy of a near-duplicate counts does not depend on chunking. The
        lease is renewed after every ``stage_rows`` staged (fenced: LeaseLostError once lost),
        so a chunk that stages slowly keeps its role."""
        chunk = LakeChunk(self)
        for (source, brand), run in itertools.groupby(fresh, key=lambda m: (m.source, m.brand)):
            group = list(run)
            for start in range(0, len(group), self.stage_rows):
                self.prepare(chunk, source, brand, group[start:start + self.stage_rows])
                self.leases.commit(lease, [], None, renew_seconds=self.lease_seconds)
        return chunk

    def _write(self, chunk: LakeChunk, lease: Lease, lo: int, hi: int) -> list[LakeFile]:
        """One file per kind, brand and day, under its final name once complete."""
        written: list[LakeFile] = []
        for kind, tables in (("mentions", chunk.mentions), ("scores", chunk.scores)):
            if not tables:
                continue
            table = pa.concat_tables(tables)
            # The day in the file too, as the path has it: tools reading the directory
            # as a Hive-partitioned dataset see one schema.
            table = table.append_column("day", pc.cast(table["created_at"], pa.date32()))
            days = table["day"].to_pylist()
            groups: dict[tuple[str, date], list[int]] = {}
            for i, key in enumerate(zip(table["brand"].to_pylist(), days)):
                groups.setdefault(key, []).append(i)
            for (brand, day), at in sorted(groups.items()):
                relative, partial = self._new_file(kind, brand, day, lease, lo, hi)
                pq.write_table(table.take(pa.array(at)).sort_by("created_at"), partial, compression="zstd")
                os.replace(partial, self.lake / relative)
                written.append(LakeFile(relative, kind, brand, day, len(at)))
        return written

    def _new_file(self, kind: str, brand: str, day: date, lease: Lease, lo: int, hi: int) -> tuple[str, Path]:
        """A new file's path in the lake (relative) and the temporary name to write it under."""
        relative = (f"{kind}/brand={quote(brand, safe='')}/day={day.isoformat()}/"
                    f"{kind}-{lo}-{hi}-t{lease.token}-{uuid.uuid4().hex[:8]}.parquet")
        target = self.lake / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return relative, target.with_name(f".{target.name}.partial")

    def _hourly(self, written: list[LakeFile], lease: Lease, lo: int, hi: int) -> list[LakeFile]:
        """The hourly rows of every brand and day the chunk touched, recomputed from that
        day's files (committed and new) by the hourly stage's SQL: a day's file replaces
        the one before it at the commit. An hour's rows depend on its mentions only, so
        a day is exact, and its cost is the day's mentions, not the archive's."""
        hourly = []
        for brand, day in sorted({(f.brand, f.day) for f in written if f.kind == "mentions"}):
            files = {kind: [self.lake / f.path for f in committed_files(self.conn, kind, brand, (day, day))]
                     + [self.lake / f.path for f in written if (f.kind, f.brand, f.day) == (kind, brand, day)]
                     for kind in ("mentions", "scores")}
            point_at(self._duck, "mentions", parquet(files["mentions"]))
            point_at(self._duck, "scores", parquet(files["scores"]) if files["scores"] else "SELECT * FROM no_scores")
            relative, partial = self._new_file("hourly_mood", brand, day, lease, lo, hi)
            rows = self._duck.execute(
                f"COPY (SELECT *, CAST(hour AS DATE) AS day FROM ({as_table(self._hourly_columns, HOURLY_QUERY)}) "
                f"ORDER BY hour, source) TO {sql_list([partial])[1:-1]} (FORMAT parquet, COMPRESSION zstd)"
            ).fetchone()[0]
            os.replace(partial, self.lake / relative)
            hourly.append(LakeFile(relative, "hourly_mood", brand, day, rows))
        return hourly

    def _commit(self, lease: Lease, files: list[LakeFile], upper: Watermark) -> None:
        """The chunk's manifest rows and the cursor, in one transaction fenced by the lease."""
        with translated("committing lake files"), self.conn.transaction(), self.conn.cursor() as cur:
            # Fenced first: it locks the job row and raises LeaseLostError (rolling all of
            # this back) unless this lease is still the job's.
            self.leases.commit(lease, [], upper.as_cursor(), renew_seconds=self.lease_seconds)
            # A day's new hourly file replaces its old one (retired: left for ``clean``).
            for f in files:
                if f.kind == "hourly_mood":
                    cur.execute("DELETE FROM lake_files WHERE kind = 'hourly_mood' AND brand = %s AND day = %s "
                                "RETURNING path", (f.brand, f.day))
                    _retire(cur, [row[0] for row in cur.fetchall()])
            cur.executemany("INSERT INTO lake_files (path, kind, brand, day, rows, max_txid, token) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            [(f.path, f.kind, f.brand, f.day, f.rows, upper.xid, lease.token) for f in files])

    def _compact(self, lease: Lease) -> int:
        """Merge the files of each brand's day listed more than ``compact_files`` times
        (mentions, scores) into one; the new file replaces them in one fenced commit, so
        readers see either the old files or the new one, each row once. Their files stay
        until ``clean``: a reader that listed them still finds them."""
        with translated("reading the lake's manifest"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SELECT kind, brand, day, array_agg(path ORDER BY path), min(max_txid), max(max_txid) "
                        "FROM lake_files WHERE kind IN ('mentions', 'scores') GROUP BY kind, brand, day "
                        "HAVING count(*) > %s ORDER BY kind, brand, day", (self.compact_files,))
            crowded = cur.fetchall()
        for kind, brand, day, paths, lo, hi in crowded:
            relative, partial = self._new_file(kind, brand, day, lease, lo, hi)
            rows = self._duck.execute(
                f"COPY (SELECT * FROM read_parquet({sql_list(self.lake / p for p in paths)}) ORDER BY created_at) "
                f"TO {sql_list([partial])[1:-1]} (FORMAT parquet, COMPRESSION zstd)").fetchone()[0]
            os.replace(partial, self.lake / relative)
            with translated("committing a compaction"), self.conn.transaction(), self.conn.cursor() as cur:
                self.leases.commit(lease, [], None, renew_seconds=self.lease_seconds)  # fenced; the cursor stays
                cur.execute("DELETE FROM lake_files WHERE path = ANY(%s)", (paths,))
                if cur.rowcount != len(paths):
                    raise LeaseLostError(f"the files of {kind} {brand} {day} changed while they were merged")
                _retire(cur, paths)
                cur.execute("INSERT INTO lake_files (path, kind, brand, day, rows, max_txid, token) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s)", (relative, kind, brand, day, rows, hi, lease.token))
        return len(crowded)

    def lake_fingerprints(self, brand: str, hashes: Sequence[int], lo: datetime, hi: datetime
                          ) -> dict[int, list[datetime]]:
        """Creation times of the lake's mentions of ``brand`` in [lo, hi] having each of
        ``hashes`` (Store.fingerprint_times, for the lake): reads only those days' files."""
        found: dict[int, list[datetime]] = {}
        files = committed_files(self.conn, "mentions", brand, (lo.date(), hi.date()))
        if not hashes or not files:
            return found
        rows = self._duck.execute(
            f"SELECT text_hash, created_at FROM read_parquet({sql_list(self.lake / f.path for f in files)}) "
            "WHERE list_contains($hashes, text_hash) AND created_at >= $lo AND created_at <= $hi",
            {"hashes": list(set(hashes)), "lo": to_db_time(lo), "hi": to_db_time(hi)}).fetchall()
        for text_hash, created in rows:
            found.setdefault(text_hash, []).append(created.replace(tzinfo=timezone.utc))
        return found

    def clean(self, older_than: timedelta | None = None) -> list[Path]:
        """Delete the lake's files the manifest does not list, once ``older_than`` past
        (default: two leases): a file retired from the manifest (replaced by a compaction
        or a newer hourly file) that long after it left it, by the server's clock, so a
        reader that listed it before has had that long to read it; a file never listed
        (left by a publisher that died before its commit) that long after it was written,
        past any holder that could still commit it. Returns them."""
        grace = timedelta(seconds=2 * self.lease_seconds) if older_than is None else older_than
        limit = time.time() - grace.total_seconds()
        with translated("reading the lake's manifest"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SELECT path FROM lake_files")
            listed = {row[0] for row in cur.fetchall()}
            cur.execute("SELECT path, retired_at <= now() - %s FROM lake_retired", (grace,))
            retired = dict(cur.fetchall())
        removed = []
        for kind in KINDS:
            for path in sorted((self.lake / kind).rglob("*")):
                relative = path.relative_to(self.lake).as_posix()
                if not path.is_file() or relative in listed:
                    continue
                if retired[relative] if relative in retired else path.stat().st_mtime <= limit:
                    path.unlink()
                    removed.append(path)
        gone = [p for p, due in retired.items() if due and not (self.lake / p).exists()]
        if gone:
            with translated("forgetting deleted lake files"), self.conn.transaction(), self.conn.cursor() as cur:
                cur.execute("DELETE FROM lake_retired WHERE path = ANY(%s)", (gone,))
        return removed

