"""Labelling in bulk and labelling cheaply: a team's label file, and which mentions to
label next.

``read_label_file`` + ``check_import``: a CSV of labels (``listener label import``) is
checked whole before anything is stored: every bad row is named by its line, all at
once (LabelFileError), and the mentions are looked up in one query
(storage.labels.resolve_requests). ``storage.labels.apply_resolved`` then applies them
in one transaction.

``suggestions``: the mentions of a brand whose labels would teach its model most, or
an honest random sample of them (``listener label next`` and the live view).

Uncertainty, one measure for both kinds of scores, on 0..1 (1: the scorer could as well
have said another label; 0: it could not be surer):

* a classifier's row (any scorer but VADER: ``pos``/``neu``/``neg`` are its class
  probabilities) has uncertainty ``1 - (p_top - p_second)``, one minus its margin;
* a VADER row has no probabilities, only its compound and the fixed thresholds ±0.05
  (analysis.sentiment): its margin is the compound's distance to the nearer threshold
  over the largest distance there can be (0.95, from a threshold to ±1), so a compound
  on a threshold is 1 and one of ±1 is 0.

Mentions near the top of that order are spread over sources and days: candidates (the
POOL_FACTOR x n most uncertain) are grouped into (source, UTC day) strata, and the
strata are taken in turn, most uncertain first within each, each near-duplicate text
(``text_hash``) once. The random sample is uniform over the brand's scored,
non-duplicate mentions not already in an earlier random sample: a seeded hash order,
so a seed gives the same sample again.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from analysis.sentiment import LABELS, NEGATIVE_THRESHOLD, POSITIVE_THRESHOLD
from inputs.spend import MAX_LISTED_PROBLEMS, InputFileError, Problem
from storage.labels import CLEAR, LabelRequest, MentionKey, UnknownMentionError, resolve_requests
from storage.store import Store, from_db_time, to_db_time

IMPORT_COLUMNS = ("id", "label", "by", "source", "brand")
REQUIRED_COLUMNS = ("id", "label")
ORIGIN_IMPORT = "import"
ORIGIN_UNCERTAIN = "next:uncertain"
ORIGIN_RANDOM = "next:random"
# How many candidates, per mention asked for, the diversity round-robin chooses among.
POOL_FACTOR = 10
# The largest distance of a compound in [-1, 1] from the nearer threshold.
_VADER_SPAN = 1.0 - POSITIVE_THRESHOLD


class LabelFileError(InputFileError):
    """A label file that cannot be imported as it is; nothing was stored. Every problem
    is listed (the first ones in full, the lines of the rest after them)."""

    kind = "label file"

    def __init__(self, path: str | Path, problems: Sequence[Problem]) -> None:
        super().__init__(path, problems)
        rest = [p.row for p in self.problems[MAX_LISTED_PROBLEMS:] if p.row is not None]
        if rest:
            # Name every bad line, however many: the file is fixed in one pass.
            message = self.args[0].rsplit("\n", 1)[0]
            self.args = (f"{message}\n  ... and {len(self.problems) - MAX_LISTED_PROBLEMS} more, on lines "
                         f"{', '.join(map(str, rest))}",)


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int  # 1-based line of the file the row starts on
    request: LabelRequest


def _decode(data: bytes, file: str) -> tuple[str, list[Problem], set[int]]:
    """The text (undecodable bytes replaced), a problem per line that is not UTF-8, and
    those lines' numbers. Each line is checked, so every such line is named at once."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), [], set()
    except UnicodeDecodeError:
        pass
    problems, bad = [], set()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.add(number)
            problems.append(Problem(file, number, None, f"not UTF-8 text (byte {exc.start + 1} of the line, "
                                                        f"{raw[exc.start:exc.start + 1]!r}); save the file as UTF-8"))
    return data.decode("utf-8", errors="replace"), problems, bad


@dataclass(frozen=True, slots=True)
class LabelFile:
    path: Path
    rows: list[ImportRow]  # the rows that could be read
    problems: list[Problem]  # the rows that could not, by line (check_import raises them)


def _delimiter(text: str) -> str:
    """',' unless the header line reads as columns only with ';' or a tab (spreadsheets
    in many locales save 'CSV' with semicolons)."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    for delimiter in (",", ";", "\t"):
        if set(REQUIRED_COLUMNS) <= {c.strip().strip('"').replace("\ufeff", "").casefold()
                                     for c in header.split(delimiter)}:
            return delimiter
    return ","


def read_label_file(path: Path, *, by: str | None = None, brand: str | None = None) -> LabelFile:
    """The rows of a label CSV (a header with ``id`` and ``label``, optionally ``by``,
    ``source``, ``brand``); ``by`` and ``brand`` fill rows that leave them empty. Rows
    that cannot be read are kept as problems, so that check_import names them together
    with the rows whose mentions are unknown; a file without a usable header raises
    LabelFileError at once."""
    file = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LabelFileError(path, [Problem(file, None, None, f"cannot read it: {exc.strerror or exc}")]) from exc
    text, problems, bad_lines = _decode(data, file)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    records: list[tuple[int, list[str]]] = []
    line = 0
    try:
        for cells in reader:
            records.append((line + 1, cells))
            line = reader.line_num
    except csv.Error as exc:
        problems.append(Problem(file, reader.line_num, None, f"not readable as CSV: {exc}"))
    records = [(n, cells) for n, cells in records if any(c.strip() for c in cells)]
    if not records:
        raise LabelFileError(path, problems or [Problem(file, None, None, "the file is empty: expected a header "
                                                                          "with the columns id and label")])
    header_line, header = records[0]
    names = [c.replace("\ufeff", "").strip().casefold() for c in header]
    unknown = [n for n in names if n not in IMPORT_COLUMNS]
    missing = [n for n in REQUIRED_COLUMNS if n not in names]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if unknown or missing or repeated:
        why = "; ".join(part for part in (
            f"unknown column(s) {', '.join(map(repr, unknown))}" if unknown else "",
            f"missing column(s) {', '.join(missing)}" if missing else "",
            f"repeated column(s) {', '.join(repeated)}" if repeated else "") if part)
        problems.append(Problem(file, header_line, None, f"{why}: the columns are id and label, and optionally "
                                                         f"by, source, brand"))
        raise LabelFileError(path, problems)
    rows = []
    for number, cells in records[1:]:
        if number in bad_lines:
            continue  # named already
        if len(cells) != len(names):
            problems.append(Problem(file, number, None, f"{len(cells)} field(s) where the header has {len(names)}"))
            continue
        fields = {n: c.strip() for n, c in zip(names, cells)}
        label = fields["label"].casefold()
        if label not in LABELS and label != CLEAR:
            problems.append(Problem(file, number, "label", f"{fields['label']!r} is not one of "
                                                           f"{', '.join(LABELS)}, {CLEAR}"))
            continue
        if not fields["id"]:
            problems.append(Problem(file, number, "id", "empty: give a mention id or SOURCE:ID"))
            continue
        rows.append(ImportRow(number, LabelRequest(
            id=fields["id"], label=label, source=fields.get("source") or None,
            brand=fields.get("brand") or brand, by=fields.get("by") or by, origin=ORIGIN_IMPORT)))
    return LabelFile(path, rows, problems)


@dataclass(frozen=True, slots=True)
class CheckedImport:
    """A label file's rows with their mentions, ready for storage.labels.apply_resolved."""

    resolved: list[tuple[LabelRequest, list[MentionKey]]]
    repeated: int  # rows that repeat an earlier row's label for the same mention


def check_import(store: Store, labels: LabelFile) -> CheckedImport:
    """Look every row's mention up (one query) and check that no two rows give one
    mention different labels; raises LabelFileError naming every row that fails, those
    read_label_file found included."""
    file, rows = labels.path.name, labels.rows
    problems = list(labels.problems)
    resolved = []
    seen: dict[tuple[str, str, str], tuple[int, str]] = {}
    repeated = 0
    for row, found in zip(rows, resolve_requests(store, [r.request for r in rows])):
        if isinstance(found, UnknownMentionError):
            problems.append(Problem(file, row.line, "id", str(found)))
            continue
        conflict = None
        again = True
        for key in found:
            first = seen.get((key.source, key.id, key.brand))
            if first is None:
                again = False
            elif first[1] != row.request.label:
                conflict = (key, first)
        if conflict:
            key, (line, label) = conflict
            problems.append(Problem(file, row.line, "label", f"{row.request.label} for {key.source}:{key.id} "
                                                             f"({key.brand}), which line {line} labels {label}"))
            continue
        for key in found:
            seen.setdefault((key.source, key.id, key.brand), (row.line, row.request.label))
        repeated += again
        resolved.append((row.request, found))
    if problems:
        raise LabelFileError(labels.path, problems)
    return CheckedImport(resolved, repeated)


# -- which mentions to label next ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A mention offered for labelling, with what the scorer in effect says of it."""

    source: str
    id: str
    brand: str
    created_at: datetime
    text: str
    url: str | None
    scorer: str
    scorer_version: str
    scorer_label: str
    compound: float
    uncertainty: float
    manual_label: str | None
    manual_origin: str | None

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "id": self.id, "brand": self.brand, "created_at": self.created_at.isoformat(),
                "text": self.text, "url": self.url, "scorer": self.scorer, "scorer_version": self.scorer_version,
                "scorer_label": self.scorer_label, "compound": round(self.compound, 4),
                "uncertainty": round(self.uncertainty, 4), "manual_label": self.manual_label,
                "manual_origin": self.manual_origin}


@dataclass(frozen=True, slots=True)
class Suggestions:
    kind: str  # "uncertain" | "random"
    brand: str
    mentions: list[Suggestion]
    candidates: int  # how many mentions the choice was made among
    seed: int | None  # the random sample's seed

    @property
    def origin(self) -> str:
        return ORIGIN_RANDOM if self.kind == "random" else ORIGIN_UNCERTAIN


# The uncertainty of the score in effect (the module docstring), in SQL over mood_mentions m.
UNCERTAINTY_SQL = f"""
CASE WHEN m.scorer = 'vader'
     THEN greatest(0.0, 1.0 - least(abs(m.compound - {POSITIVE_THRESHOLD}), abs(m.compound - {NEGATIVE_THRESHOLD}))
                             / {_VADER_SPAN})
     -- p_top - p_second, the middle one being the sum less the largest and the smallest
     ELSE 1.0 - (2 * greatest(m.pos, m.neu, m.neg) - (m.pos + m.neu + m.neg) + least(m.pos, m.neu, m.neg))
END"""

# Scored, non-duplicate mentions of $brand created in [$lo, $hi) (storage.schema's
# mood_mentions: the score in effect and the manual label).
_CANDIDATES = """
FROM mood_mentions($lo, $hi) m
WHERE m.brand = $brand AND NOT m.duplicate AND m.scorer IS NOT NULL
"""
_COLUMNS = (f"m.source, m.id, m.brand, m.created_at, m.text, m.url, m.scorer, m.scorer_version, m.scorer_label, "
            f"m.compound, {UNCERTAINTY_SQL} AS uncertainty, m.manual_label, m.label_origin")


def _suggestion(row: tuple) -> Suggestion:
    return Suggestion(row[0], row[1], row[2], from_db_time(row[3]), row[4], row[5], row[6], row[7], row[8],
                      float(row[9]), float(row[10]), row[11], row[12])


def suggestions(store: Store, brand: str, n: int, *, random: bool = False, seed: int | None = None,
                start: datetime | None = None, end: datetime | None = None) -> Suggestions:
    """``n`` mentions of ``brand`` (created in [start, end), default: all) to label next:
    the most uncertain unlabelled ones, spread over sources and days, or with ``random``
    a uniform sample (``seed``, drawn when None, makes it repeatable). See the module
    docstring for both rules."""
    params = {"brand": brand, "lo": to_db_time(start or datetime.min.replace(tzinfo=timezone.utc)),
              "hi": to_db_time(end or datetime.max.replace(tzinfo=timezone.utc))}
    with store.native() as db:
        if random:
            seed = secrets.randbelow(1 << 31) if seed is None else seed
            # Mentions labelled by other means stay in the population (their label is
            # shown): leaving them out would make the sample the team's choice again.
            where = f"{_CANDIDATES} AND (m.label_origin IS NULL OR m.label_origin <> '{ORIGIN_RANDOM}')"
            total = db.execute(f"SELECT count(*) {where}", params).fetchone()[0]
            rows = db.execute(
                f"SELECT {_COLUMNS} {where} ORDER BY hash(m.source, m.id, $seed), m.source, m.id LIMIT $n",
                {**params, "seed": seed, "n": n}).fetchall()
            return Suggestions("random", brand, [_suggestion(r) for r in rows], total, seed)
        where = f"{_CANDIDATES} AND m.manual_label IS NULL"
        total = db.execute(f"SELECT count(*) {where}", params).fetchone()[0]
        pool = db.execute(
            f"SELECT {_COLUMNS}, m.text_hash {where} ORDER BY uncertainty DESC, m.created_at DESC, m.source, m.id "
            f"LIMIT $pool", {**params, "pool": max(n * POOL_FACTOR, n)}).fetchall()
    return Suggestions("uncertain", brand, _spread(pool, n), total, None)


def _spread(pool: list[tuple], n: int) -> list[Suggestion]:
    """Round-robin over (source, UTC day) strata, most uncertain stratum first, most
    uncertain first within each; a near-duplicate text (same text_hash) once."""
    strata: dict[tuple[str, Any], list[tuple]] = {}
    for row in pool:  # already most uncertain first
        strata.setdefault((row[0], row[3].date()), []).append(row)
    queues = list(strata.values())
    chosen: list[Suggestion] = []
    hashes: set[int] = set()
    while len(chosen) < n and queues:
        for queue in list(queues):
            while queue:
                row = queue.pop(0)
                text_hash = row[13]
                if text_hash is None or text_hash not in hashes:
                    if text_hash is not None:
                        hashes.add(text_hash)
                    chosen.append(_suggestion(row))
                    break
            if not queue:
                queues.remove(queue)
            if len(chosen) == n:
                break
    # Shown most uncertain first: the order the round-robin chose them in spreads them,
    # but asking the closest calls first is what the user expects.
    return sorted(chosen, key=lambda s: -s.uncertainty)
