"""File import: JSONL and CSV files read as a source, through the normal pipeline.

Formats (``--format``, detected from the file when ``auto``):

* ``jsonl``: the project's own format, one mention per line:
  ``{"id", "created_at" (ISO 8601), "text", "author", "url", "conversation_id",
  "parent_id", "lang", "metrics": {"likes", "reposts", "replies", ...}, "raw"}``
  (``id``, ``created_at`` and ``text`` are required; ``source``/``brand`` are ignored:
  the command line names them).
* ``twarc2``: X API v2 response pages, one per line, as ``twarc2 search`` writes them;
  mapped by the X connector's own code (``connectors.x.mentions_from_page``).
* ``csv``: a header row and one mention per row. Columns are taken by field name, or
  mapped with ``--map field=column`` (e.g. ``--map text=body --map created_at=date``).
  Without an id column, the id is a hash of (created_at, author, text), so re-importing
  the same file adds nothing.

The file is read as a stream in batches (memory stays bounded whatever its size).
A bad line is skipped, counted, and logged with its line number; the import goes on.
Imports save no cursor: a file is not a feed, and a real source of the same name keeps
its own resume point.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from dataclasses import dataclass
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from connectors.base import MAX_COUNT, Batch, BrandQuery, Cursor, Mention, ensure_utc

log = logging.getLogger("listener.import")

FORMATS = ("auto", "jsonl", "twarc2", "csv")
FIELDS = ("id", "created_at", "text", "author", "url", "conversation_id", "parent_id", "lang",
          "likes", "reposts", "replies")
BATCH_SIZE = 20_000
# The first chunk holds BATCH_SIZE // RAMP items, each next one twice as many up to
# BATCH_SIZE, and the last ones fewer again (FileSource.chunks): a small first chunk starts
# the writer early (it waits for the first chunk to be prepared), large later ones spread
# the writer's per-statement costs (a DuckDB statement costs milliseconds whatever its
# size: at 5,000 items they were a third of it).
RAMP = 8
# Line numbers of bad rows are logged one by one up to this many, then only counted.
MAX_REPORTED_LINES = 50
MAX_CSV_FIELD_CHARS = 16 * 1024 * 1024
"""The csv module refuses fields over 128 KiB by default, which aborted a whole import
over one long post. 16 MiB is far beyond any post; a longer field (usually an unclosed
quote swallowing the lines after it) is a bad row, reported and skipped."""


class ImportFormatError(ValueError):
    """The file, or the options, cannot be read as asked."""


def parse_time(value: Any) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):  # 1e300, NaN
            raise ValueError(f"created_at {value!r} is not a Unix time in range") from None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"created_at must be an ISO 8601 time, got {value!r}")
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    # A time without a zone in a file is read as UTC, the zone the whole product uses.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else ensure_utc(moment)


def _metric(value: Any) -> int:
    if value in (None, ""):
        return 0
    try:
        number = int(float(value)) if isinstance(value, str) else int(value)
    except OverflowError:  # "inf", 1e400: no count
        raise ValueError(f"metrics must be whole numbers, got {value!r}") from None
    if number < 0:
        raise ValueError(f"metrics must not be negative, got {number}")
    if number > MAX_COUNT:  # storage holds 64-bit counts; beyond 2**53 it is noise anyway
        raise ValueError(f"metrics must be at most {MAX_COUNT}, got {number}")
    return number


def _optional(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int)):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return str(value)


def mention_from_record(record: Mapping[str, Any], source: str, brand: str, fetched_at: datetime) -> Mention:
    """One row of the project's format (or a mapped CSV row) as a Mention."""
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text is missing or empty")
    created_at = parse_time(record.get("created_at"))
    mention_id = _optional(record.get("id"))
    if mention_id is None:
        key = f"{created_at.isoformat()}\x1f{record.get('author') or ''}\x1f{text}"
        mention_id = "h" + hashlib.blake2b(key.encode("utf-8"), digest_size=12).hexdigest()
    metrics = record.get("metrics")
    if metrics is None:
        metrics = {name: record.get(name) for name in ("likes", "reposts", "replies")}
    if not isinstance(metrics, Mapping):
        raise ValueError("metrics must be an object")
    raw = record.get("raw")
    return Mention(
        source=source, id=mention_id, brand=brand, created_at=created_at, text=text,
        author=_optional(record.get("author")), url=_optional(record.get("url")),
        conversation_id=_optional(record.get("conversation_id")), parent_id=_optional(record.get("parent_id")),
        lang=_optional(record.get("lang")),
        metrics={str(k): _metric(v) for k, v in metrics.items() if v not in (None, "")},
        fetched_at=fetched_at, raw=raw if isinstance(raw, Mapping) else None,
    )


def detect_format(path: Path) -> str:
    """jsonl / twarc2 from the first JSON line's shape, csv otherwise."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                first = json.loads(line)
            except ValueError:
                return "csv"
            if isinstance(first, dict) and isinstance(first.get("data"), list):
                return "twarc2"
            return "jsonl"
    raise ImportFormatError(f"{path}: the file is empty")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Up to BATCH_SIZE items of a file (fewer at first: RAMP), in file order, not yet
    parsed: JSON lines as text, CSV rows as dicts (the csv module must read a file in
    order: a quoted field may span lines). ``unreadable`` are CSV rows the csv module
    could not read, with why. ``bytes_read`` is how far into the file the chunk ends."""

    items: tuple[tuple[int, Any], ...]
    unreadable: tuple[tuple[int, str], ...]
    bytes_read: int


@dataclass(frozen=True, slots=True)
class Parsed:
    """A chunk's mentions (of no brand yet: ``brand`` is empty) and its bad lines."""

    mentions: tuple[Mention, ...]
    bad: tuple[tuple[int, str], ...]


@dataclass(frozen=True, slots=True)
class FileFormat:
    """How to turn a chunk's items into mentions: everything ``parse_chunk`` needs, and
    small enough to send to a worker process with every chunk."""

    format: str
    source: str
    columns: tuple[tuple[str, str], ...]


def parse_chunk(chunk: Chunk, how: FileFormat, fetched_at: datetime) -> Parsed:
    """The mentions of one chunk, parsed once for every brand; runs in worker processes."""
    mentions: list[Mention] = []
    bad = list(chunk.unreadable)
    for line_number, item in chunk.items:
        try:
            if how.format == "csv":
                mentions.append(_csv_mention(item, how, fetched_at))
            elif how.format == "twarc2":
                page, bad_items = _twarc2_mentions(item, how.source, fetched_at)
                if bad_items:
                    bad.append((line_number, f"{bad_items} unreadable post(s) in this page"))
                mentions.extend(page)
            else:
                record = json.loads(item)
                if not isinstance(record, Mapping):
                    raise ValueError(f"expected a JSON object, got {type(record).__name__}")
                mentions.append(mention_from_record(record, how.source, "", fetched_at))
        except (ValueError, TypeError, UnicodeError) as exc:
            bad.append((line_number, str(exc)))
        except Exception as exc:  # a malformed twarc2 page: the X mapper's own error
            bad.append((line_number, f"{type(exc).__name__}: {exc}"))
    bad.sort()
    return Parsed(tuple(mentions), tuple(bad))


def _twarc2_mentions(line: str, source: str, fetched_at: datetime) -> tuple[list[Mention], int]:
    from connectors.x import mentions_from_page  # noqa: PLC0415 - only twarc2 files need the X mapper

    mentions, bad_items = mentions_from_page(json.loads(line), "", fetched_at)
    return [m.replace(source=source) for m in mentions], bad_items


def _csv_mention(row: dict[str | None, Any], how: FileFormat, fetched_at: datetime) -> Mention:
    if None in row:
        raise ValueError(f"{len(row[None])} more value(s) than the header has columns")
    record = {field: row.get(col) for field, col in how.columns if col in row}
    return mention_from_record(record, how.source, "", fetched_at)


class FileSource:
    """One file of mentions: ``chunks()`` reads it in order, ``parse_chunk`` turns each
    chunk into mentions of no brand yet (listener.ingest matches them to every brand at
    once). ``fetch`` makes it a Connector for one brand (connectors.base)."""

    def __init__(self, path: Path, source: str, fmt: str, column_map: Mapping[str, str], clock: Any) -> None:
        if fmt not in FORMATS:
            raise ImportFormatError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
        unknown = sorted(set(column_map) - set(FIELDS))
        if unknown:
            raise ImportFormatError(f"--map: unknown field(s) {', '.join(unknown)} (fields: {', '.join(FIELDS)})")
        if column_map and fmt not in ("csv", "auto"):
            raise ImportFormatError("--map only applies to CSV files")
        self.name = source
        self.path = path
        self.format = detect_format(path) if fmt == "auto" else fmt
        self.column_map = dict(column_map)
        self.clock = clock
        if self.format == "csv":
            self._check_csv_header()
        self.how = FileFormat(self.format, source, tuple((name, self.column_map.get(name, name)) for name in FIELDS))
        self.bytes_read = 0
        self.bad_lines: list[int] = []

    def close(self) -> None:
        pass

    def chunks(self) -> Iterator[Chunk]:
        """The file in chunks of up to BATCH_SIZE items (fewer at first: RAMP), in order;
        the last may be empty."""
        self.bytes_read = 0
        smallest = size = max(1, BATCH_SIZE // RAMP)
        total, items_read = self.path.stat().st_size, 0
        with self.path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
            items = self._csv_items(handle) if self.format == "csv" else self._json_items(handle)
            pending: list[tuple[int, Any]] = []
            unreadable: list[tuple[int, str]] = []
            for line_number, item, why in items:
                if why is not None:
                    unreadable.append((line_number, why))
                    continue
                pending.append((line_number, item))
                if len(pending) >= size:
                    self.bytes_read = handle.buffer.tell()
                    items_read += len(pending) + len(unreadable)
                    yield Chunk(tuple(pending), tuple(unreadable), self.bytes_read)
                    pending, unreadable = [], []
                    # At most a quarter of the items the rest of the file holds (as far as
                    # the bytes per item so far tell): the last chunks are small again, so
                    # the workers finish together rather than one of them on a large chunk.
                    left = (total - self.bytes_read) * items_read // max(self.bytes_read, 1)
                    size = max(smallest, min(BATCH_SIZE, 2 * size, left // 4))
            self.bytes_read = self.path.stat().st_size
        yield Chunk(tuple(pending), tuple(unreadable), self.bytes_read)

    def report_bad(self, bad: Sequence[tuple[int, str]]) -> None:
        """Count bad lines, logging each up to MAX_REPORTED_LINES (in file order)."""
        for line_number, reason in bad:
            self.bad_lines.append(line_number)
            if len(self.bad_lines) <= MAX_REPORTED_LINES:
                log.warning("%s line %d skipped: %s", self.path, line_number, reason)

    def finish(self) -> None:
        """Say how many bad lines there were, when more than were logged one by one."""
        if len(self.bad_lines) > MAX_REPORTED_LINES:
            log.warning("%s: %d bad lines in all were skipped", self.path, len(self.bad_lines))

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        """One brand's pass over the file (a Connector's fetch); bad lines are counted again."""
        self.bad_lines = []
        fetched_at = self.clock()
        for chunk in self.chunks():
            parsed = parse_chunk(chunk, self.how, fetched_at)
            self.report_bad(parsed.bad)
            yield Batch(tuple(m.replace(brand=query.brand) for m in parsed.mentions), skipped=len(parsed.bad))
        self.finish()

    def span_chunks(self, start: int, end: int, first_line: int) -> Iterator[Chunk]:
        """Like ``chunks``, only the lines starting in bytes [start, end) (``start`` a line
        start), numbered from ``first_line``: a shard of listener.backfill. A CSV row may
        span lines: only formats of one item per line are read by byte ranges."""
        if self.format == "csv":
            raise ImportFormatError(f"{self.path}: a CSV file cannot be read by byte ranges (a row may span lines)")
        pending: list[tuple[int, Any]] = []
        with self.path.open("rb") as handle:
            handle.seek(start)
            position = start
            for line_number, line in enumerate(iter(handle.readline, b""), start=first_line):
                if position >= end:
                    break
                position += len(line)
                if line.strip():
                    pending.append((line_number, line.decode("utf-8", "surrogateescape")))
                if len(pending) >= BATCH_SIZE:
                    self.bytes_read = position
                    yield Chunk(tuple(pending), (), position)
                    pending = []
        self.bytes_read = min(position, end)
        yield Chunk(tuple(pending), (), self.bytes_read)

    @staticmethod
    def _json_items(handle: TextIO) -> Iterator[tuple[int, str, str | None]]:
        for line_number, line in enumerate(iter(handle.readline, ""), start=1):
            if line.strip():
                yield line_number, line, None

    def _check_csv_header(self) -> None:
        csv.field_size_limit(MAX_CSV_FIELD_CHARS)  # the limit is process-wide in the csv module
        with self.path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
            try:
                header = next(csv.reader(handle), [])
            except csv.Error as exc:
                raise ImportFormatError(f"{self.path}: the header row is not readable CSV: {exc}") from None
        columns = {name: self.column_map.get(name, name) for name in FIELDS}
        missing = [f"{field} (column {col!r})" for field, col in columns.items()
                   if field in ("text", "created_at") and col not in header]
        if missing:
            raise ImportFormatError(
                f"{self.path}: no column for {', '.join(missing)}; the header has: {', '.join(header)}. "
                "Name them with --map field=column"
            )

    @staticmethod
    def _csv_items(handle: TextIO) -> Iterator[tuple[int, dict | None, str | None]]:
        csv.field_size_limit(MAX_CSV_FIELD_CHARS)
        reader = csv.DictReader(handle)
        _ = reader.fieldnames  # reads the header (checked readable by _check_csv_header)
        rows = iter(reader)
        while True:
            first_line = reader.reader.line_num + 1
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                # The csv module goes on from the line after the one it stopped at. Lines
                # the broken row still spans are then read as rows and checked like any.
                last_line = reader.reader.line_num
                span = f" (lines {first_line}-{last_line} were read as this one row)" if last_line > first_line else ""
                yield first_line, None, f"not readable as CSV: {exc}{span}"
                continue
            yield reader.line_num, row, None
