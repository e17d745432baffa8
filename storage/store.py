"""The database: opening it, and the write path (batches, cursors, runs).

One ``Store`` holds one long-lived DuckDB connection. DuckDB lets a single process
open a file read-write and no other process open it at all meanwhile (docs/design.md), so
the writer keeps one connection for its life instead of reconnecting per batch, and
every call goes through one lock because the daemon's jobs run on threads.

Hot path: a batch is written as Arrow tables through DuckDB's native connection
(~1M rows/s) inside the SQLAlchemy transaction; schema and ordinary queries use
SQLAlchemy.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from connectors.base import ENGAGEMENT_METRICS, valid_text
from storage import schema
from storage.errors import DatabaseFileError, DatabaseLockedError, StorageError
from storage.migrations import LATEST_VERSION, migrate, stored_version

if TYPE_CHECKING:
    import pyarrow as pa

    from analysis.scorers import ScoreSet
    from analysis.sentiment import Score
    from connectors.base import Cursor, Mention

# Analysts' tools may bundle DuckDB 1.5, which cannot read 2.0's storage format.
STORAGE_COMPATIBILITY = "v1.5.0"
# DuckDB's default buffer pool is 80 % of RAM, which a daemon running for months would
# slowly fill; past this limit DuckDB spills large queries to disk instead. Measured on
# a 500k-mention ingest: peak RSS 459 MB at 256MB, 387 MB at 128MB, same speed.
MEMORY_LIMIT = "128MB"
# The writer's work is small batches, bound by Python (scoring, mapping); a second DuckDB
# thread only added per-thread buffers. Measured on a 1M-mention ingest: peak RSS 515 MB
# with DuckDB's default threads, 385 MB with one, and 10.3k mentions/s against 9.9k.
WRITER_THREADS = 1


@functools.cache
def _mention_schema() -> pa.Schema:
    # pyarrow (0.15 CPU s to import) only when a batch is saved: every 'listener' start
    # imports this module, most commands only read.
    import pyarrow as pa  # noqa: PLC0415

    return pa.schema(
        [
            ("source", pa.string()),
            ("id", pa.string()),
            ("brand", pa.string()),
            ("created_at", pa.timestamp("us")),
            ("text", pa.string()),
            ("author", pa.string()),
            ("url", pa.string()),
            ("conversation_id", pa.string()),
            ("parent_id", pa.string()),
            ("lang", pa.string()),
            ("likes", pa.int64()),
            ("reposts", pa.int64()),
            ("replies", pa.int64()),
            ("extra_metrics", pa.string()),
            ("fetched_at", pa.timestamp("us")),
            ("raw", pa.string()),
            ("thread_context", pa.bool_()),
            ("text_hash", pa.int64()),
            ("duplicate", pa.bool_()),
            ("own", pa.bool_()),
        ]
    )


@functools.cache
def _score_schema() -> pa.Schema:
    import pyarrow as pa  # noqa: PLC0415

    return pa.schema(
        [
            ("source", pa.string()),
            ("id", pa.string()),
            ("brand", pa.string()),
            ("created_at", pa.timestamp("us")),
            ("scorer", pa.string()),
            ("scorer_version", pa.string()),
            ("compound", pa.float64()),
            ("pos", pa.float64()),
            ("neu", pa.float64()),
            ("neg", pa.float64()),
            ("label", pa.string()),
            ("scored_at", pa.timestamp("us")),
            ("active", pa.bool_()),
        ]
    )


def to_db_time(moment: datetime | None) -> datetime | None:
    """tz-aware UTC -> naive UTC, the form stored in TIMESTAMP columns."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def from_db_time(moment: datetime | None) -> datetime | None:
    """naive UTC from the database -> tz-aware UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class SaveResult:
    fetched: int
    new: int

    @property
    def duplicates(self) -> int:
        return self.fetched - self.new


def _dumps(value: Any) -> str | None:
    if not value:
        return None
    # orjson: encoding each mention's raw payload with json.dumps was 40 % of save time.
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        # orjson refuses what a hostile payload can hold: surrogates (not encodable in
        # UTF-8), integers beyond 64 bits, keys that are not strings. The slow path
        # keeps all of it as valid JSON text (connectors.base.valid_text for the rest).
        return valid_text(json.dumps(_json_safe(value), default=str, ensure_ascii=False))


def _json_safe(value: Any) -> Any:
    """``value`` with keys as strings and non-finite floats as null, as orjson writes them."""
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_STANDARD_METRICS = frozenset(ENGAGEMENT_METRICS)


def _extra_metrics(metrics: Mapping[str, int]) -> str | None:
    # JSON-encoding every row's three standard metrics cost more than the insert itself.
    if metrics.keys() <= _STANDARD_METRICS:
        return None
    return _dumps({k: v for k, v in metrics.items() if k not in _STANDARD_METRICS})


def _naive(moment: datetime) -> datetime:
    # Mention guarantees UTC, so dropping the zone is all that is left to do.
    return moment.replace(tzinfo=None)


def _naive_column(moments: list[datetime | None]) -> pa.Array:
    """UTC datetimes (None: null) as the naive-UTC timestamps stored, converted by Arrow
    in C: a ``replace(tzinfo=None)`` per row cost a batch more than its insert."""
    import pyarrow as pa  # noqa: PLC0415  (see _mention_schema)
    return pa.array(moments, pa.timestamp("us", tz="UTC")).cast(_mention_schema().field("created_at").type)


def mentions_table(
    mentions: Sequence[Mention],
    text_hashes: Sequence[int | None] | None = None,
    duplicates: Sequence[bool] | None = None,
) -> pa.Table:
    import pyarrow as pa  # noqa: PLC0415  (see _mention_schema)
    n = len(mentions)
    return pa.table(
        {
            "source": [m.source for m in mentions],
            "id": [m.id for m in mentions],
            "brand": [m.brand for m in mentions],
            "created_at": _naive_column([m.created_at for m in mentions]),
            "text": [m.text for m in mentions],
            "author": [m.author for m in mentions],
            "url": [m.url for m in mentions],
            "conversation_id": [m.conversation_id for m in mentions],
            "parent_id": [m.parent_id for m in mentions],
            "lang": [m.lang for m in mentions],
            "likes": [m.metrics.get("likes") or 0 for m in mentions],
            "reposts": [m.metrics.get("reposts") or 0 for m in mentions],
            "replies": [m.metrics.get("replies") or 0 for m in mentions],
            "extra_metrics": [_extra_metrics(m.metrics) for m in mentions],
            "fetched_at": _naive_column([m.fetched_at for m in mentions]),
            "raw": [_dumps(m.raw) for m in mentions],
            "thread_context": [m.thread_context for m in mentions],
            "text_hash": list(text_hashes) if text_hashes is not None else [None] * n,
            "duplicate": list(duplicates) if duplicates is not None else [False] * n,
            "own": [m.own for m in mentions],
        },
        schema=_mention_schema(),
    )


def scores_table(mentions: Sequence[Mention], score_sets: Sequence[ScoreSet], scored_at: datetime) -> pa.Table:
    """Rows of every scorer's scores of the mentions (None: not scored by it, no row)."""
    import pyarrow as pa  # noqa: PLC0415  (see _mention_schema)
    stamp = to_db_time(scored_at)
    columns: dict[str, list[Any]] = {name: [] for name in _score_schema().names}
    for scores in score_sets:
        if len(scores.scores) != len(mentions):
            raise ValueError(f"{len(mentions)} mentions but {len(scores.scores)} {scores.scorer} scores")
        at = [i for i, score in enumerate(scores.scores) if score is not None]
        rows = [mentions[i] for i in at]
        got = [scores.scores[i] for i in at]
        columns["source"] += [m.source for m in rows]
        columns["id"] += [m.id for m in rows]
        columns["brand"] += [m.brand for m in rows]
        columns["created_at"] += [m.created_at for m in rows]
        columns["scorer"] += [scores.scorer] * len(at)
        columns["scorer_version"] += [scores.version] * len(at)
        columns["compound"] += [s.compound for s in got]
        columns["pos"] += [s.pos for s in got]
        columns["neu"] += [s.neu for s in got]
        columns["neg"] += [s.neg for s in got]
        columns["label"] += [s.label for s in got]
        columns["scored_at"] += [stamp] * len(at)
        columns["active"] += [scores.active[i] for i in at]
    return pa.table({**columns, "created_at": _naive_column(columns["created_at"])}, schema=_score_schema())


# Insert the rows of a batch whose (source, id, brand) is not stored yet, once each.
# The existence check reads only the batch's [lo, hi] creation-time range: a stored
# copy of a post has the post's creation time, so it cannot lie outside it.
# Scores are keyed by scorer too ({key}).
_INSERT_NEW = """
INSERT INTO {table}
SELECT DISTINCT ON (b.source, b.id, b.brand{key}) b.* FROM {batch} b
WHERE NOT EXISTS (
    SELECT 1 FROM {table} t
    WHERE t.source = b.source AND t.id = b.id AND t.brand = b.brand{match}
      AND t.created_at >= $lo AND t.created_at <= $hi
)
RETURNING date_trunc('hour', created_at)
"""


def _time_range(mentions: Sequence[Mention]) -> tuple[datetime, datetime]:
    times = [m.created_at for m in mentions]
    return _naive(min(times)), _naive(max(times))


class Store:
    """The listener database. Open with ``Store.open(path)``; close when done."""

    def __init__(self, engine: sa.Engine, path: Path, version: int = LATEST_VERSION) -> None:
        self.engine = engine
        self.path = path
        self.version = version  # the schema version of the file (readers may open older ones)
        self._lock = threading.RLock()
        # The transaction open on the writer connection, if any. Only the thread that
        # holds _lock reads or sets it, so a thread that finds it set is inside its own.
        self._open: sa.Connection | None = None

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, read_only: bool = False) -> Store:
        """Open the database at ``path`` read-write, migrated to the latest schema (with
        create=False it must exist), or ``read_only``: then nothing is migrated or written
        (readers, snapshots), so a user who may only read the file can open it.

        Raises DatabaseFileError, having written nothing, when ``path`` is a directory,
        is missing (create=False or read_only), is not a DuckDB file, or is another
        application's database or a newer release's; DatabaseLockedError when another
        process holds it."""
        path = Path(path)
        if path.is_dir():
            raise DatabaseFileError(f"{path} is a directory, not a database file: check --db / LISTENER_DB / "
                                    f"database.path")
        if create and not read_only:
            _discard_unfinished_creation(path)
        if (read_only or not create) and not path.exists():
            raise DatabaseFileError(f"no database at {path}: check --db / LISTENER_DB / database.path, or create "
                                    f"one with 'listener demo'")
        if not read_only:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseFileError(f"cannot create the database's directory {path.parent}: "
                                        f"{exc.strerror or exc}") from None
        config = {"memory_limit": MEMORY_LIMIT, "threads": WRITER_THREADS}
        if read_only:
            config["access_mode"] = "READ_ONLY"
        else:
            config["storage_compatibility_version"] = STORAGE_COMPATIBILITY
        engine = sa.create_engine(f"duckdb:///{path}", poolclass=StaticPool, connect_args={"config": config})
        sa.event.listen(engine, "connect", lambda connection, _record: quiet(connection))
        try:
            if read_only:
                # Opens now, so a locked or unreadable file fails here; refuses a file
                # that is not ours before anyone reads it as if it were.
                with engine.connect() as conn:
                    version = stored_version(conn.connection.driver_connection, path)
            else:
                version = migrate(engine, path)
                _close_interrupted_runs(engine)
        except StorageError:
            engine.dispose()
            raise
        except Exception as exc:
            engine.dispose()
            raise translate_error(exc, path) from exc
        return cls(engine, path, version)

    def close(self) -> None:
        with self._lock:
            self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One transaction on the writer connection, serialised across threads.

        Re-entrant on one thread: inside an open transaction, ``transaction()`` and
        ``native()`` join it (the writer has one connection, and DuckDB cannot start a
        transaction within a transaction), so a function that opens its own may be
        called by one that holds one. What the inner block does commits or rolls back
        with the outer one."""
        with self._lock:
            if self._open is not None:
                try:
                    yield self._open
                except (sa.exc.DBAPIError, duckdb.Error) as exc:
                    raise translate_error(exc, self.path) from exc
                return
            try:
                with self.engine.begin() as conn:
                    self._open = conn
                    try:
                        yield conn
                    finally:
                        self._open = None
            except (sa.exc.DBAPIError, duckdb.Error) as exc:
                raise translate_error(exc, self.path) from exc

    def in_transaction(self) -> bool:
        """Whether this thread is inside ``transaction()``/``native()`` (work that
        commits in steps, such as the hourly stage's chunks, refuses to run there)."""
        with self._lock:
            return self._open is not None

    @contextmanager
    def native(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The native DuckDB connection inside a SQLAlchemy transaction (Arrow bulk
        path); joins the thread's open transaction like ``transaction()``."""
        with self.transaction() as conn:
            yield conn.connection.driver_connection

    # -- write path ---------------------------------------------------------------

    def known_ids(self, mentions: Sequence[Mention]) -> set[str]:
        """Ids of ``mentions`` already stored (for their source and brand), so the
        pipeline skips scoring them again. Scans only the batch's time range."""
        import pyarrow as pa  # noqa: PLC0415  (see _mention_schema)
        if not mentions:
            return set()
        probe = pa.table(
            {
                "source": pa.array([m.source for m in mentions], pa.string()),
                "id": pa.array([m.id for m in mentions], pa.string()),
                "brand": pa.array([m.brand for m in mentions], pa.string()),
            }
        )
        lo, hi = _time_range(mentions)
        with self.native() as db:
            db.register("probe_keys", probe)
            try:
                rows = db.execute(
                    "SELECT DISTINCT m.id FROM mentions m SEMI JOIN probe_keys p "
                    "ON m.source = p.source AND m.id = p.id AND m.brand = p.brand "
                    "WHERE m.created_at >= $lo AND m.created_at <= $hi",
                    {"lo": lo, "hi": hi},
                ).fetchall()
            finally:
                db.unregister("probe_keys")
        return {row[0] for row in rows}

    def fingerprint_times(
        self, brand: str, hashes: Sequence[int], lo: datetime, hi: datetime
    ) -> dict[int, list[datetime]]:
        """Creation times of stored mentions of ``brand`` in [lo, hi] having each of ``hashes``."""
        import pyarrow as pa  # noqa: PLC0415  (see _mention_schema)
        found: dict[int, list[datetime]] = {}
        if not hashes:
            return found
        probe = pa.table({"text_hash": pa.array(list(set(hashes)), pa.int64())})
        with self.native() as db:
            db.register("probe_hashes", probe)
            try:
                rows = db.execute(
                    "SELECT m.text_hash, m.created_at FROM mentions m SEMI JOIN probe_hashes p "
                    "ON m.text_hash = p.text_hash "
                    "WHERE m.brand = $brand AND m.created_at >= $lo AND m.created_at <= $hi",
                    {"brand": brand, "lo": to_db_time(lo), "hi": to_db_time(hi)},
                ).fetchall()
            finally:
                db.unregister("probe_hashes")
        for text_hash, created in rows:
            found.setdefault(text_hash, []).append(from_db_time(created))
        return found

    def save_batch(
        self,
        mentions: Sequence[Mention],
        scores: Sequence[Score | None] | Sequence[ScoreSet],
        *,
        source: str,
        brand: str,
        checkpoint: Cursor | None,
        now: datetime,
        scorer: str | None = None,
        scorer_version: str | None = None,
        text_hashes: Sequence[int | None] | None = None,
        duplicates: Sequence[bool] | None = None,
    ) -> SaveResult:
        """Store mentions, their scores and the checkpoint in one transaction.

        ``scores``: every scorer's ScoreSet (analysis.scorers), or, for one scorer in
        effect wherever it scored, its scores with ``scorer`` and ``scorer_version``
        (``scores[i]`` None: mention i is unscored). ``text_hashes``/``duplicates`` carry the near-duplicate verdicts (default: none).
        Idempotent: mentions already stored (same source, id, brand) are left as they
        are, so saving a batch twice stores it once. The hours that received new
        mentions are marked for the hourly stage in the same transaction.
        """
        if scorer is not None:
            from analysis.scorers import single_set  # noqa: PLC0415 - readers never import the scorers

            if len(scores) != len(mentions):
                raise ValueError(f"{len(mentions)} mentions but {len(scores)} scores")
            scores = [single_set(scorer, scorer_version or "", scores)]  # type: ignore[arg-type]
        inserted: list[tuple[datetime]] = []
        with self.native() as db:
            if mentions:
                lo, hi = _time_range(mentions)
                db.register("batch_mentions", mentions_table(mentions, text_hashes, duplicates))
                db.register("batch_scores", scores_table(mentions, scores, now))  # type: ignore[arg-type]
                try:
                    inserted = db.execute(_INSERT_NEW.format(table="mentions", batch="batch_mentions", key="",
                                                             match=""), {"lo": lo, "hi": hi}).fetchall()
                    db.execute(_INSERT_NEW.format(table="scores", batch="batch_scores", key=", b.scorer",
                                                  match=" AND t.scorer = b.scorer"), {"lo": lo, "hi": hi})
                finally:
                    db.unregister("batch_mentions")
                    db.unregister("batch_scores")
                new_hours = sorted({row[0] for row in inserted})
                if new_hours:
                    db.execute(
                        "INSERT INTO pending_hours SELECT $brand, $source, unnest($hours::TIMESTAMP[]) "
                        "ON CONFLICT DO NOTHING",
                        {"brand": brand, "source": source, "hours": new_hours},
                    )
            if checkpoint is not None:
                db.execute(
                    "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT (source, brand) "
                    "DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                    [source, brand, json.dumps(checkpoint, sort_keys=True), to_db_time(now)],
                )
        return SaveResult(fetched=len(mentions), new=len(inserted))

    def save_platform_volume(
        self, source: str, brand: str, counts: Sequence[tuple[datetime, int]], now: datetime
    ) -> None:
        """Upsert the platform's own posts-per-hour counts for a brand's query."""
        import pyarrow as pa  # noqa: PLC0415  (see _mention_schema)
        if not counts:
            return
        table = pa.table(
            {
                "hour": pa.array([to_db_time(hour) for hour, _ in counts], pa.timestamp("us")),
                "posts": pa.array([posts for _, posts in counts], pa.int64()),
            }
        )
        with self.native() as db:
            db.register("volume_rows", table)
            try:
                db.execute(
                    "INSERT INTO platform_volume SELECT $source, $brand, hour, posts, $now FROM volume_rows "
                    "ON CONFLICT (source, brand, hour) DO UPDATE SET posts = excluded.posts, "
                    "updated_at = excluded.updated_at",
                    {"source": source, "brand": brand, "now": to_db_time(now)},
                )
            finally:
                db.unregister("volume_rows")

    def get_cursor(self, source: str, brand: str) -> Cursor | None:
        with self.transaction() as conn:
            value = conn.execute(
                sa.select(schema.cursors.c.cursor).where(
                    schema.cursors.c.source == source, schema.cursors.c.brand == brand
                )
            ).scalar()
        return json.loads(value) if value is not None else None

    # -- runs ---------------------------------------------------------------------

    def start_run(self, kind: str, *, now: datetime, source: str | None = None, brand: str | None = None) -> int:
        with self.transaction() as conn:
            return conn.execute(
                schema.runs.insert()
                .values(kind=kind, source=source, brand=brand, started_at=to_db_time(now), status="running")
                .returning(schema.runs.c.run_id)
            ).scalar_one()

    def finish_run(
        self,
        run_id: int,
        *,
        now: datetime,
        status: str,
        fetched: int | None = None,
        new: int | None = None,
        duplicates: int | None = None,
        skipped: int | None = None,
        rejected: int | None = None,
        error: str | None = None,
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.run_id == run_id)
                .values(
                    finished_at=to_db_time(now),
                    status=status,
                    fetched=fetched,
                    new=new,
                    duplicates=duplicates,
                    skipped=skipped,
                    rejected=rejected,
                    error=error,
                )
            )

    # -- meta ---------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.transaction() as conn:
            return conn.execute(sa.select(schema.meta.c.value).where(schema.meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with self.native() as db:
            db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )


# DuckDB starts a new file with three 4 KiB headers (the main one carries "DUCK" at byte
# 8). A process killed while creating the database leaves a shorter file (0, 4096 or 8192
# bytes, seen in tests/system/test_crash_safety.py) that DuckDB refuses to open ever
# after ("not a valid DuckDB database file"), so the daemon could never start again.
_HEADERS_SIZE = 3 * 4096


def quiet(connection: Any) -> None:
    """Keep DuckDB off the terminal: it draws a progress bar on stdout for any query that
    runs over two seconds (a demo's rollup on a loaded machine, say), and stdout is a
    command's output, one JSON document with ``--json``. A per-connection setting, so
    every connection we open calls this."""
    connection.execute("SET enable_progress_bar = false")


def _close_interrupted_runs(engine: sa.Engine) -> None:
    """Runs still 'running' when the database is opened for writing belong to a process
    that was killed or crashed (one writer at a time): mark them, so status is true."""
    with engine.begin() as conn:
        conn.execute(
            schema.runs.update()
            .where(schema.runs.c.status == "running")
            .values(status="interrupted", error="the process ended before this run finished (killed or crashed)")
        )


def _discard_unfinished_creation(path: Path) -> None:
    """Remove a database file whose creation was cut short, so it is created again. It
    holds no data: it is shorter than DuckDB's headers and empty or a DuckDB header. A
    file another process holds (DuckDB's lock: it is being created now) or any other
    short file is left alone, for DuckDB's own error to name."""
    try:
        if path.stat().st_size >= _HEADERS_SIZE:
            return
        with open(path, "rb") as handle:
            head = handle.read(12)
            if head and head[8:12] != b"DUCK":
                return
            try:
                fcntl.lockf(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return
            path.unlink()  # under our lock; closing the file releases it
    except FileNotFoundError:
        return
    logging.getLogger(__name__).warning(
        "%s: removed an unfinished database file (a process was killed while creating it); creating it again", path)


def translate_error(exc: BaseException, path: Path) -> StorageError:
    """Turn DuckDB/SQLAlchemy errors into ours, naming the file."""
    message = str(getattr(exc, "orig", None) or exc)
    lowered = message.lower()
    if "lock" in lowered and ("conflicting" in lowered or "could not set" in lowered):
        return DatabaseLockedError(
            f"{path} is in use by another process (is 'listener run' running?): {message.splitlines()[0]}"
        )
    if "different configuration than existing connections" in lowered:
        # DuckDB keeps one instance per file and process: this process (a daemon thread)
        # holds it read-write and a reader asks for read-only, or the reverse. For a
        # reader that is the same as another process holding it: read the snapshot.
        return DatabaseLockedError(f"{path} is already open in this process with other settings: "
                                   f"{message.splitlines()[0]}")
    if "not a valid duckdb database file" in lowered:
        return DatabaseFileError(f"{path} is not a valid DuckDB database file: it is left untouched; check --db / "
                                 f"LISTENER_DB / database.path")
    return StorageError(f"{path}: {message}")
