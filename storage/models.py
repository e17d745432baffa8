"""Models trained on a brand's labels, as stored in ``models`` (storage.schema), which
one is in effect, and the re-score jobs that make a brand's history follow a change.

The payload is read by analysis.learned.load_model, which takes no pickle: a model
file copied from elsewhere can at worst fail to load, never run code.

A brand's scorer in effect changes only through ``activate`` (promote or roll back):
one transaction that retires the model in effect, activates the next (or none: VADER),
records a ``runs`` row (kind promote | rollback, ``detail`` naming both) and (re)starts
the brand's re-score job. The job is then worked through by ``read_chunk`` /
``write_chunk`` (listener.rescoring), oldest mentions first; ``through`` is the creation
time up to which it is done, so a killed job resumes after its last committed chunk.

While the daemon holds the database, model requests are queued in a file beside it,
``NAME.models-inbox.jsonl`` (as labels are, storage.labels): one JSON object per line,
each checked field by field when the daemon applies it; a bad line is reported and dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from analysis.sentiment import LABELS, Score
from storage.inbox import Inbox, Taken, json_object
from storage.labels import label_confusion
from storage.store import Store, from_db_time, to_db_time


@dataclass(frozen=True, slots=True)
class ActiveModel:
    model_id: int
    brand: str
    version: str
    payload: bytes


def active_models(store: Store) -> dict[str, ActiveModel]:
    """The model in effect for each brand that has one (at most one per brand)."""
    with store.native() as db:
        rows = db.execute(
            "SELECT model_id, brand, version, payload FROM models WHERE status = 'active' ORDER BY model_id"
        ).fetchall()
    return {brand: ActiveModel(model_id, brand, version, bytes(payload)) for model_id, brand, version, payload in rows}


# -- the labels a model learns from --------------------------------------------------------


@dataclass(frozen=True)
class LabelSet:
    """A brand's labelled, non-duplicate mentions, in key order: ``keys`` are
    "source:id", ``vader`` VADER's stored score of each (None where it has none)."""

    brand: str
    keys: tuple[str, ...]
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    vader: tuple[Score | None, ...]

    @property
    def hash(self) -> str:
        """sha256 of the keys with their labels: two models with the same hash learned
        from the same labels."""
        digest = hashlib.sha256()
        for key, label in zip(self.keys, self.labels):
            digest.update(f"{key}\t{label}\n".encode())
        return digest.hexdigest()

    def class_counts(self) -> dict[str, int]:
        return {label: self.labels.count(label) for label in LABELS}


def label_set(store: Store, brand: str) -> LabelSet:
    """The brand's labelled mentions that count for mood (near-duplicates left out: a
    copy would teach the model its original twice and leak across folds)."""
    with store.native() as db:
        rows = db.execute(
            "SELECT m.source, m.id, m.text, l.label, v.compound, v.pos, v.neu, v.neg, v.label "
            "FROM labels l JOIN mentions m ON m.source = l.source AND m.id = l.id AND m.brand = l.brand "
            "AND m.created_at = l.created_at "
            "LEFT JOIN scores v ON v.source = m.source AND v.id = m.id AND v.brand = m.brand "
            "AND v.created_at = m.created_at AND v.scorer = 'vader' "
            "WHERE l.brand = $brand AND NOT m.duplicate ORDER BY m.source, m.id",
            {"brand": brand},
        ).fetchall()
    return LabelSet(
        brand,
        tuple(f"{r[0]}:{r[1]}" for r in rows),
        tuple(r[2] for r in rows),
        tuple(r[3] for r in rows),
        tuple(None if r[4] is None else Score(r[4], r[5], r[6], r[7], r[8]) for r in rows),
    )


def labelled_brands(store: Store) -> list[str]:
    with store.native() as db:
        return [r[0] for r in db.execute("SELECT DISTINCT brand FROM labels ORDER BY brand").fetchall()]


def random_sample_confusion(store: Store, brand: str | None) -> tuple[int, dict[str, dict[str, int]]]:
    """Over the labels given as the honest random sample (origin 'next:random'): how
    many, and ``confusion[manual][in effect]`` against the score in effect."""
    return label_confusion(store, brand, in_effect=True, origin="next:random")


# -- stored models ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredModel:
    """A row of ``models`` without its payload (``payload`` reads it)."""

    model_id: int
    brand: str
    scorer: str
    version: str
    trained_at: datetime
    labels: int
    labels_hash: str
    params: dict[str, Any]
    evaluation: dict[str, Any]
    status: str
    promoted_at: datetime | None
    retired_at: datetime | None
    replaced: int | None
    label_keys: tuple[str, ...] = field(default=(), repr=False)

    @property
    def qualifies(self) -> bool:
        return bool(self.evaluation.get("qualifies"))


_MODEL_COLUMNS = ("model_id, brand, scorer, version, trained_at, labels, labels_hash, params, evaluation, status, "
                  "promoted_at, retired_at, replaced, label_keys")


def _model(row: Sequence[Any]) -> StoredModel:
    return StoredModel(row[0], row[1], row[2], row[3], from_db_time(row[4]), row[5], row[6], json.loads(row[7]),
                       json.loads(row[8]), row[9], from_db_time(row[10]), from_db_time(row[11]), row[12],
                       tuple(json.loads(row[13])))


def save_model(store: Store, brand: str, scorer: str, version: str, labels: LabelSet, params: dict[str, Any],
               evaluation: dict[str, Any], payload: bytes, now: datetime) -> StoredModel:
    """Store a trained model (status trained), with the labels it learned from."""
    with store.native() as db:
        row = db.execute(
            "INSERT INTO models (brand, scorer, version, trained_at, labels, labels_hash, label_keys, params, "
            "evaluation, payload, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'trained') "
            f"RETURNING {_MODEL_COLUMNS}",
            [brand, scorer, version, to_db_time(now), len(labels.keys), labels.hash, json.dumps(list(labels.keys)),
             json.dumps(params, sort_keys=True), json.dumps(evaluation, sort_keys=True), payload],
        ).fetchall()[0]
    return _model(row)


def brand_models(store: Store, brand: str | None = None) -> list[StoredModel]:
    """The stored models (of ``brand``), oldest first."""
    with store.native() as db:
        rows = db.execute(f"SELECT {_MODEL_COLUMNS} FROM models WHERE $brand IS NULL OR brand = $brand "
                          "ORDER BY model_id", {"brand": brand}).fetchall()
    return [_model(row) for row in rows]


def model_payload(store: Store, model_id: int) -> bytes:
    with store.native() as db:
        return bytes(db.execute("SELECT payload FROM models WHERE model_id = ?", [model_id]).fetchall()[0][0])


@dataclass(frozen=True, slots=True)
class Change:
    """A promotion or rollback done: the model now in effect and the one it replaced
    (None: VADER), and the ``runs`` row recording it."""

    kind: str
    brand: str
    active: StoredModel | None
    previous: StoredModel | None
    run_id: int


def describe(model: StoredModel | None) -> str:
    return "VADER" if model is None else f"model {model.version}"


def activate(store: Store, brand: str, model: StoredModel | None, kind: str, now: datetime, *,
             in_effect: tuple[str, str]) -> Change:
    """Put ``model`` (None: VADER) in effect for ``brand`` in one transaction: the model in
    effect is retired; a promotion records what it replaced (a rollback restores that, and
    leaves the restored model's own ``replaced`` as it was, so rollbacks walk back the
    chain); a ``runs`` row of ``kind`` names both; the brand's re-score job starts over,
    for ``in_effect`` (scorer, version): the scorer that now leads the brand's chain."""
    stamp = to_db_time(now)
    with store.transaction():
        with store.native() as db:
            current = db.execute(f"SELECT {_MODEL_COLUMNS} FROM models WHERE brand = ? AND status = 'active'",
                                 [brand]).fetchall()
            previous = _model(current[0]) if current else None
            if previous is not None:
                db.execute("UPDATE models SET status = 'retired', retired_at = ? WHERE model_id = ?",
                           [stamp, previous.model_id])
            if model is not None:
                replaced = model.replaced if kind == "rollback" else (previous and previous.model_id)
                db.execute("UPDATE models SET status = 'active', promoted_at = ?, retired_at = NULL, replaced = ? "
                           "WHERE model_id = ?", [stamp, replaced, model.model_id])
            run_id = store.start_run(kind, now=now, brand=brand)
            detail = f"{describe(model)} in effect, replacing {describe(previous)}"
            db.execute("UPDATE runs SET status = 'ok', finished_at = ?, detail = ? WHERE run_id = ?",
                       [stamp, detail, run_id])
            total = db.execute("SELECT count(*) FROM mentions WHERE brand = ?", [brand]).fetchall()[0][0]
            db.execute("INSERT OR REPLACE INTO rescore_jobs VALUES (?, ?, ?, ?, ?, 0, NULL)",
                       [brand, in_effect[0], in_effect[1], stamp, total])
            active = None if model is None else _model(db.execute(
                f"SELECT {_MODEL_COLUMNS} FROM models WHERE model_id = ?", [model.model_id]).fetchall()[0])
    return Change(kind, brand, active, previous, run_id)


def last_change(store: Store, brand: str) -> tuple[str, datetime, str] | None:
    """The brand's latest promotion or rollback: (kind, when, detail)."""
    with store.native() as db:
        rows = db.execute("SELECT kind, started_at, detail FROM runs WHERE brand = ? AND kind IN ('promote', "
                         "'rollback') ORDER BY run_id DESC LIMIT 1", [brand]).fetchall()
    return (rows[0][0], from_db_time(rows[0][1]), rows[0][2]) if rows else None


# -- re-score jobs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RescoreJob:
    brand: str
    scorer: str
    version: str
    requested_at: datetime
    total: int
    done: int
    through: datetime | None


def rescore_jobs(store: Store, brand: str | None = None) -> list[RescoreJob]:
    with store.native() as db:
        rows = db.execute("SELECT brand, scorer, version, requested_at, total, done, through FROM rescore_jobs "
                          "WHERE $brand IS NULL OR brand = $brand ORDER BY requested_at, brand",
                          {"brand": brand}).fetchall()
    return [RescoreJob(r[0], r[1], r[2], from_db_time(r[3]), r[4], r[5], from_db_time(r[6])) for r in rows]


@dataclass(frozen=True)
class Chunk:
    """The next mentions of a job, oldest first: those created in (after, through]."""

    job: RescoreJob
    through: datetime
    sources: tuple[str, ...]
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    langs: tuple[str | None, ...]
    duplicate: tuple[bool, ...]
    # (scorer, version) -> {position: Score}: the rows already stored for these mentions.
    stored: dict[tuple[str, str], dict[int, Score]]

    def __len__(self) -> int:
        return len(self.ids)


def read_chunk(store: Store, job: RescoreJob, size: int) -> Chunk | None:
    """The job's next chunk, about ``size`` mentions (every mention created at the
    chunk's last instant is in it, so ``through`` alone says where the job is), or None
    when it is done."""
    after = to_db_time(job.through)
    with store.native() as db:
        row = db.execute(
            "SELECT created_at FROM mentions WHERE brand = $brand AND ($after::TIMESTAMP IS NULL OR created_at > $after) "
            "ORDER BY created_at LIMIT 1 OFFSET $skip", {"brand": job.brand, "after": after, "skip": size - 1},
        ).fetchall()
        if not row:
            row = db.execute("SELECT max(created_at) FROM mentions WHERE brand = $brand AND "
                             "($after::TIMESTAMP IS NULL OR created_at > $after)",
                             {"brand": job.brand, "after": after}).fetchall()
        through = row[0][0]
        if through is None:
            return None
        span = {"brand": job.brand, "after": after, "through": through}
        mentions = db.execute(
            "SELECT source, id, text, lang, duplicate FROM mentions WHERE brand = $brand "
            "AND ($after::TIMESTAMP IS NULL OR created_at > $after) AND created_at <= $through "
            "ORDER BY created_at, source, id", span).fetchall()
        position = {(m[0], m[1]): i for i, m in enumerate(mentions)}
        stored: dict[tuple[str, str], dict[int, Score]] = {}
        for source, mention_id, scorer, version, compound, pos, neu, neg, label in db.execute(
            "SELECT source, id, scorer, scorer_version, compound, pos, neu, neg, label FROM scores "
            "WHERE brand = $brand AND ($after::TIMESTAMP IS NULL OR created_at > $after) AND created_at <= $through",
            span,
        ).fetchall():
            stored.setdefault((scorer, version), {})[position[(source, mention_id)]] = Score(
                compound, pos, neu, neg, label)
    return Chunk(job, from_db_time(through), tuple(m[0] for m in mentions), tuple(m[1] for m in mentions),
                 tuple(m[2] for m in mentions), tuple(m[3] for m in mentions), tuple(m[4] for m in mentions), stored)


_NEW_SCORES = pa.schema([("source", pa.string()), ("id", pa.string()), ("scorer", pa.string()),
                         ("scorer_version", pa.string()), ("compound", pa.float64()), ("pos", pa.float64()),
                         ("neu", pa.float64()), ("neg", pa.float64()), ("label", pa.string())])
_EFFECT = pa.schema([("source", pa.string()), ("id", pa.string()), ("scorer", pa.string()),
                     ("scorer_version", pa.string())])


def end_job(store: Store, job: RescoreJob) -> None:
    """Drop a job with nothing (left) to re-score, unless it was restarted meanwhile."""
    with store.native() as db:
        db.execute("DELETE FROM rescore_jobs WHERE brand = ? AND requested_at = ?",
                   [job.brand, to_db_time(job.requested_at)])


def write_chunk(store: Store, chunk: Chunk, new: dict[tuple[str, str], dict[int, Score]],
                in_effect: Sequence[tuple[str, str] | None], now: datetime) -> bool:
    """Commit one chunk in one transaction: store the ``new`` scores, mark exactly the
    score ``in_effect[i]`` (scorer, version; None: none) active for each mention i, mark
    the chunk's hours pending, and move the job on (deleted when this was its last
    chunk). Returns False, writing nothing, when the job changed meanwhile (another
    promotion or rollback restarted it): the chunk was scored for a chain no longer
    wanted."""
    job = chunk.job
    rows: dict[str, list[Any]] = {name: [] for name in _NEW_SCORES.names}
    for (scorer, version), scores in new.items():
        for i, score in scores.items():
            for name, value in zip(_NEW_SCORES.names, (chunk.sources[i], chunk.ids[i], scorer, version,
                                                       score.compound, score.pos, score.neu, score.neg,
                                                       score.label)):
                rows[name].append(value)
    effect = pa.table({"source": list(chunk.sources), "id": list(chunk.ids),
                       "scorer": [e and e[0] for e in in_effect], "scorer_version": [e and e[1] for e in in_effect]},
                      schema=_EFFECT)
    span = {"brand": job.brand, "after": to_db_time(job.through), "through": to_db_time(chunk.through)}
    with store.native() as db:
        current = db.execute("SELECT requested_at, done FROM rescore_jobs WHERE brand = ?", [job.brand]).fetchall()
        if not current or (from_db_time(current[0][0]), current[0][1]) != (job.requested_at, job.done):
            return False
        db.register("chunk_new_scores", pa.table(rows, schema=_NEW_SCORES))
        db.register("chunk_effect", effect)
        try:
            # created_at from the mention, as save_batch stores it; a row of the same
            # scorer and version is never stored twice (a re-run chunk finds it stored).
            db.execute(
                "INSERT INTO scores SELECT n.source, n.id, m.brand, m.created_at, n.scorer, n.scorer_version, "
                "n.compound, n.pos, n.neu, n.neg, n.label, $now, false FROM chunk_new_scores n "
                "JOIN mentions m ON m.source = n.source AND m.id = n.id AND m.brand = $brand "
                "AND ($after::TIMESTAMP IS NULL OR m.created_at > $after) AND m.created_at <= $through "
                "WHERE NOT EXISTS (SELECT 1 FROM scores s WHERE s.source = n.source AND s.id = n.id "
                "AND s.brand = $brand AND s.scorer = n.scorer AND s.scorer_version = n.scorer_version "
                "AND ($after::TIMESTAMP IS NULL OR s.created_at > $after) AND s.created_at <= $through)",
                {**span, "now": to_db_time(now)},
            )
            db.execute(
                "UPDATE scores s SET active = coalesce(s.scorer = e.scorer AND s.scorer_version = e.scorer_version, "
                "false) FROM chunk_effect e WHERE s.brand = $brand AND s.source = e.source AND s.id = e.id "
                "AND ($after::TIMESTAMP IS NULL OR s.created_at > $after) AND s.created_at <= $through", span)
        finally:
            db.unregister("chunk_new_scores")
            db.unregister("chunk_effect")
        db.execute(
            "INSERT INTO pending_hours SELECT DISTINCT brand, source, date_trunc('hour', created_at) FROM mentions "
            "WHERE brand = $brand AND ($after::TIMESTAMP IS NULL OR created_at > $after) AND created_at <= $through "
            "ON CONFLICT DO NOTHING", span)
        left = db.execute("SELECT count(*) FROM mentions WHERE brand = $brand AND created_at > $through",
                          {"brand": job.brand, "through": span["through"]}).fetchall()[0][0]
        if left:
            db.execute("UPDATE rescore_jobs SET done = done + ?, through = ?, total = greatest(total, done + ? + ?) "
                       "WHERE brand = ?", [len(chunk), span["through"], len(chunk), left, job.brand])
        else:
            db.execute("DELETE FROM rescore_jobs WHERE brand = ?", [job.brand])
    return True


# -- requests queued while the daemon holds the database ----------------------------------

ACTIONS = ("train", "promote", "rollback")


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """``listener model train|promote|rollback`` for ``brand`` (train: None, every
    brand with labels), to be applied by the daemon."""

    action: str
    brand: str | None
    model: str | None = None  # promote: the version (None: the newest trained)
    promote: bool = False  # train: promote the model if it qualifies

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {self.action!r}")
        if self.brand is None and self.action != "train":
            raise ValueError(f"{self.action} needs a brand")


def _inbox(database: Path) -> Inbox:
    return Inbox(database, "models", "model request")


def requests_path(database: Path) -> Path:
    return _inbox(database).path


def has_requests(database: Path) -> bool:
    return _inbox(database).waiting()


def queue_request(database: Path, request: ModelRequest, now: datetime) -> Path:
    """Append the request to the database's model inbox; the daemon applies it."""
    return _inbox(database).append([{"action": request.action, "brand": request.brand, "model": request.model,
                                     "promote": request.promote, "at": now.isoformat()}])


def _request_from_line(line: str) -> ModelRequest:
    """The request one inbox line holds; ValueError naming what is wrong. Anyone who
    can write beside the database can write here, so nothing is taken on trust."""
    fields = json_object(line)
    if not isinstance(fields.get("action"), str):
        raise ValueError(f"'action' must be a string, not {fields.get('action')!r}")
    for name in ("brand", "model"):
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise ValueError(f"{name!r} must be a string or null, not {fields[name]!r}")
    if not isinstance(fields.get("promote", False), bool):
        raise ValueError(f"'promote' must be true or false, not {fields['promote']!r}")
    return ModelRequest(fields["action"], fields.get("brand"), fields.get("model"), fields.get("promote", False))


def take_requests(database: Path) -> AbstractContextManager[Taken[ModelRequest]]:
    """Every queued request, oldest first, and the lines that could not be read (by
    number, with their start), which are dropped; the inbox is cleared when the block
    that applies them ends (storage.inbox)."""
    return _inbox(database).take(_request_from_line)
