"""Manual labels: a user's correction of a mention's sentiment, and VADER's agreement.

A label is stored in ``labels``, apart from VADER's row in ``scores`` (which stays as
VADER scored it). Every aggregate reads the manual label first (storage.rollup,
storage.queries, storage.report_data, the ``v_`` views). Setting or clearing a label
marks the mention's hour pending, so the next hourly stage recomputes that hour and
its conversations.

While the daemon holds the database no other process may write to it (docs/design.md), so
a label given meanwhile (by ``listener label`` or the live view) is appended to an
inbox file beside the database, ``NAME.labels-inbox.jsonl``; the daemon applies the
inbox after each cycle. Applying is idempotent: the inbox is renamed before it is read,
so a line appended meanwhile goes to a new inbox, and a crash leaves the renamed file
to be applied again next time. Each line is checked field by field before it is applied:
a malformed one (bad JSON, an unknown label, a field of the wrong type) is reported by
number and dropped, and never stops the others or the hourly stage.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from analysis.sentiment import LABELS
from storage.errors import StorageError
from storage.inbox import Inbox, json_object
from storage.store import Store, from_db_time, to_db_time

CLEAR = "clear"


class UnknownMentionError(StorageError):
    """No stored mention has the given id (or it is ambiguous across sources)."""


@dataclass(frozen=True, slots=True)
class MentionKey:
    source: str
    id: str
    brand: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LabelRequest:
    """What a user asked: label mention ``id`` (of ``source``/``brand`` if given)."""

    id: str
    label: str  # positive | neutral | negative | clear
    source: str | None = None
    brand: str | None = None
    by: str | None = None
    # How it was given (schema version 5): cli | web | import | next:uncertain | next:random.
    origin: str | None = None

    def __post_init__(self) -> None:
        if self.label not in LABELS and self.label != CLEAR:
            raise ValueError(f"label must be one of {', '.join(LABELS)} or {CLEAR}, not {self.label!r}")
        if not self.id:
            raise ValueError("the mention id is empty")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "source": self.source, "brand": self.brand, "by": self.by,
                "origin": self.origin}


def find_mentions(store: Store, request: LabelRequest) -> list[MentionKey]:
    """The stored mentions the request names: one per brand the post was stored for,
    unless ``brand`` narrows it. Raises UnknownMentionError when none matches, or when
    the id exists in several sources and ``source`` does not say which."""
    found = resolve_requests(store, [request])[0]
    if isinstance(found, UnknownMentionError):
        raise found
    return found


def resolve_requests(store: Store, requests: Sequence[LabelRequest]) -> list[list[MentionKey] | UnknownMentionError]:
    """``find_mentions`` for many requests in one query (a join of the requests with
    the mentions, not one scan of the mentions per request): per request, its mentions,
    or the UnknownMentionError saying why it names none."""
    if not requests:
        return []
    # "SOURCE:ID" is accepted too, unless the whole string is itself a stored id
    # (Mastodon ids are URIs, which contain colons): the split form is a second pass,
    # used only for a request whose whole id matched nothing.
    import pyarrow as pa  # noqa: PLC0415  (only when writing: see storage.store._mention_schema)

    split = [r.id.split(":", 1) if r.source is None and ":" in r.id else (None, None) for r in requests]
    table = pa.table({
        "n": pa.array(range(len(requests)), pa.int64()),
        "id": pa.array([r.id for r in requests], pa.string()),
        "source": pa.array([r.source for r in requests], pa.string()),
        "brand": pa.array([r.brand for r in requests], pa.string()),
        "alt_source": pa.array([s[0] for s in split], pa.string()),
        "alt_id": pa.array([s[1] for s in split], pa.string()),
    })
    name = f"label_requests_{uuid.uuid4().hex}"
    with store.native() as db:
        db.register(name, table)
        try:
            rows = db.execute(
                f"SELECT r.n, 0, m.source, m.id, m.brand, m.created_at FROM {name} r JOIN mentions m ON m.id = r.id "
                "AND (r.source IS NULL OR m.source = r.source) AND (r.brand IS NULL OR lower(m.brand) = lower(r.brand)) "
                "UNION ALL "
                f"SELECT r.n, 1, m.source, m.id, m.brand, m.created_at FROM {name} r JOIN mentions m "
                "ON m.id = r.alt_id AND m.source = r.alt_source "
                "AND (r.brand IS NULL OR lower(m.brand) = lower(r.brand)) "
                "ORDER BY 1, 2, 3, 5"
            ).fetchall()
        finally:
            db.unregister(name)
    by_request: dict[int, list[tuple]] = {}
    for n, attempt, source, mention_id, brand, created in rows:
        kept = by_request.setdefault(n, [])
        if kept and kept[0][0] < attempt:
            continue  # the whole id matched: the split form is not looked at
        kept.append((attempt, source, mention_id, brand, created))
    out: list[list[MentionKey] | UnknownMentionError] = []
    for n, request in enumerate(requests):
        found = by_request.get(n)
        if not found:
            where = "".join(f" {name} {value!r}" for name, value in
                            (("in source", request.source), ("for brand", request.brand)) if value)
            out.append(UnknownMentionError(f"no stored mention has id {request.id!r}{where}"))
            continue
        sources = sorted({row[1] for row in found})
        if len(sources) > 1:
            out.append(UnknownMentionError(
                f"id {request.id!r} exists in several sources ({', '.join(sources)}): say which with --source "
                f"or as SOURCE:ID"))
            continue
        out.append([MentionKey(r[1], r[2], r[3], from_db_time(r[4])) for r in found])
    return out


def apply_label(store: Store, request: LabelRequest, now: datetime) -> list[MentionKey]:
    """Set (or clear) the label of the mentions the request names, and mark their hours
    for the hourly stage; returns them. One transaction."""
    keys = find_mentions(store, request)
    apply_resolved(store, [(request, keys)], now)
    return keys


def apply_resolved(store: Store, resolved: Sequence[tuple[LabelRequest, Sequence[MentionKey]]],
                   now: datetime) -> int:
    """Apply requests already resolved to their mentions, in order (a later request for
    the same mention wins, as if applied one after the other), in one transaction and
    a few set-based statements; marks the mentions' hours pending. Returns how many
    mentions' labels were set or cleared."""
    final: dict[tuple[str, str, str], tuple[LabelRequest, MentionKey]] = {}
    for request, keys in resolved:
        for key in keys:
            final.pop((key.source, key.id, key.brand), None)  # re-insert: keeps the order of the last request
            final[(key.source, key.id, key.brand)] = (request, key)
    if not final:
        return 0
    items = list(final.values())
    import pyarrow as pa  # noqa: PLC0415  (only when writing: see storage.store._mention_schema)
    table = pa.table({
        "source": pa.array([k.source for _, k in items], pa.string()),
        "id": pa.array([k.id for _, k in items], pa.string()),
        "brand": pa.array([k.brand for _, k in items], pa.string()),
        "created_at": pa.array([to_db_time(k.created_at) for _, k in items], pa.timestamp("us")),
        "label": pa.array([r.label for r, _ in items], pa.string()),
        "labelled_by": pa.array([r.by for r, _ in items], pa.string()),
        "origin": pa.array([r.origin for r, _ in items], pa.string()),
    })
    name = f"label_rows_{uuid.uuid4().hex}"
    with store.native() as db:
        db.register(name, table)
        try:
            db.execute(f"DELETE FROM labels l USING {name} t WHERE t.label = '{CLEAR}' AND l.source = t.source "
                       "AND l.id = t.id AND l.brand = t.brand")
            db.execute(
                "INSERT INTO labels (source, id, brand, created_at, label, labelled_at, labelled_by, origin) "
                f"SELECT source, id, brand, created_at, label, $now, labelled_by, origin FROM {name} "
                f"WHERE label <> '{CLEAR}' "
                "ON CONFLICT (source, id, brand) DO UPDATE SET label = excluded.label, "
                "labelled_at = excluded.labelled_at, labelled_by = excluded.labelled_by, origin = excluded.origin",
                {"now": to_db_time(now)},
            )
            db.execute(f"INSERT INTO pending_hours SELECT DISTINCT brand, source, date_trunc('hour', created_at) "
                       f"FROM {name} ON CONFLICT DO NOTHING")
        finally:
            db.unregister(name)
    return len(items)


# -- the inbox, for labels given while the daemon holds the database ----------------------


def _inbox(database: Path) -> Inbox:
    return Inbox(database, "labels", "label")


def inbox_path(database: Path) -> Path:
    return _inbox(database).path


def has_queued(database: Path) -> bool:
    """Whether labels wait to be applied (a new inbox, or one a crash left half applied)."""
    return _inbox(database).waiting()


def queue_label(database: Path, request: LabelRequest, now: datetime) -> Path:
    """Append the request to the database's label inbox; the daemon applies it."""
    return queue_labels(database, [request], now)


def queue_labels(database: Path, requests: Sequence[LabelRequest], now: datetime) -> Path:
    """Append the requests to the database's label inbox in one locked append, so the
    daemon takes all of them or none (storage.inbox)."""
    at = now.isoformat()
    return _inbox(database).append([{**r.to_json(), "at": at} for r in requests])


@dataclass(frozen=True, slots=True)
class InboxResult:
    applied: int
    errors: list[str]


def _request_from_line(line: str) -> LabelRequest:
    """The label request one inbox line holds; ValueError naming what is wrong. Anyone
    who can write beside the database can write here, so nothing is taken on trust."""
    fields = json_object(line)
    for name in ("id", "label"):
        if not isinstance(fields.get(name), str):
            raise ValueError(f"{name!r} must be a string, not {fields.get(name)!r}")
    for name in ("source", "brand", "by", "origin"):
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise ValueError(f"{name!r} must be a string or null, not {fields[name]!r}")
    return LabelRequest(id=fields["id"], label=fields["label"], source=fields.get("source"),
                        brand=fields.get("brand"), by=fields.get("by"), origin=fields.get("origin"))


def apply_inbox(store: Store, now: datetime) -> InboxResult:
    """Apply every queued label, oldest first; a line that names no stored mention or
    cannot be read is reported in ``errors`` (by number, with its start) and dropped.
    Something other than a file at the inbox's name is reported and left alone."""
    with _inbox(store.path).take(_request_from_line) as taken:
        # All lines in one lookup and one transaction, in their order (a later line for
        # the same mention wins): an import of 100k labels queued while the daemon ran is
        # applied in seconds, not one scan of the mentions per line.
        resolved = []
        for line, found in zip(taken.lines, resolve_requests(store, taken.values)):
            if isinstance(found, UnknownMentionError):
                taken.refuse(line.number, line.text, found)
            else:
                resolved.append((line.value, found))
        apply_resolved(store, resolved, now)
    return InboxResult(len(resolved), taken.errors)


# -- agreement of VADER with the users' labels ------------------------------------------


def label_confusion(store: Store, brand: str | None = None, *, in_effect: bool = False,
                    origin: str | None = None) -> tuple[int, dict[str, dict[str, int]]]:
    """How many mentions carry a manual label (of ``origin`` only, when given), and
    ``confusion[manual][scored]`` over those scored: against VADER's own score, or with
    ``in_effect`` against the score in effect (a brand's model). analysis.agreement turns
    them into figures."""
    scores, which = ("scores_in_effect", "true") if in_effect else ("scores", "s.scorer = 'vader'")
    params = {"brand": brand, "origin": origin}
    with store.native() as db:
        labelled = db.execute(
            "SELECT count(*) FROM labels WHERE ($brand IS NULL OR lower(brand) = lower($brand)) "
            "AND ($origin IS NULL OR origin = $origin)", params
        ).fetchone()[0]
        rows = db.execute(
            f"SELECT l.label, s.label, count(*) FROM labels l "
            f"JOIN {scores} s ON s.source = l.source AND s.id = l.id AND s.brand = l.brand "
            f"AND s.created_at = l.created_at AND {which} "
            f"WHERE ($brand IS NULL OR lower(l.brand) = lower($brand)) AND ($origin IS NULL OR l.origin = $origin) "
            f"GROUP BY ALL",
            params,
        ).fetchall()
    confusion = {manual: {scored: 0 for scored in LABELS} for manual in LABELS}
    for manual, scored, count in rows:
        confusion[manual][scored] = count
    return labelled, confusion
