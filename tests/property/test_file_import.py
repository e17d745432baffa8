"""File import (``listener import``) against hostile files.

Properties: opening a file raises only ImportFormatError (a usage error, exit 2); reading
it never raises: every non-blank line (JSONL) or row (CSV) becomes a mention or a
counted bad line, and each mention is storable with its text as it was in the file
(surrogates aside: see connectors.base.valid_text). Through the real pipeline and a
DuckDB file, an import of hostile records stores what is readable and skips the rest
instead of failing the whole import.
"""

from __future__ import annotations

import csv
import io
import itertools
import shutil
import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from analysis.sentiment import VaderScorer
from connectors.base import BrandQuery, valid_text
from inputs.mentions import FIELDS, FileSource, ImportFormatError
from listener.pipeline import Pipeline
from storage.store import Store
from tests.property.strategies import (
    LONE_SURROGATES, SCRIPT, ZWJ_FAMILY, assert_names_the_problem, assert_storable, broken, hostile_text,
    json_values,
)
from tests.property.test_mappers import X_PAGE

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
ACME = BrandQuery("Acme", terms=("acme",))
_DIR = Path(tempfile.mkdtemp(prefix="property-import-"))
_FILES = itertools.count()

RECORD = {
    "id": "a1", "created_at": "2026-11-01T10:00:00Z", "text": "Acme is great", "author": "ann",
    "url": "https://example.com/a1", "conversation_id": "a0", "parent_id": "a0", "lang": "en",
    "metrics": {"likes": 2, "reposts": 1, "replies": 0, "views": 40}, "raw": {"k": 1},
}


def write(content: bytes, suffix: str) -> Path:
    path = _DIR / f"f{next(_FILES)}{suffix}"
    path.write_bytes(content)
    return path


def open_source(path: Path, fmt: str, column_map: dict[str, str] | None = None) -> FileSource | None:
    try:
        return FileSource(path, "import", fmt, column_map or {}, lambda: NOW)
    except ImportFormatError as exc:
        assert_names_the_problem(exc)
        return None


def read_all(source: FileSource) -> tuple[list, int]:
    mentions, skipped = [], 0
    for batch in source.fetch(ACME, None):
        mentions.extend(batch.mentions)
        skipped += batch.skipped
    assert_storable(mentions)
    assert all(m.source == "import" and m.brand == "Acme" for m in mentions)
    return mentions, skipped


def _physical_lines(content: bytes) -> list[str]:
    """The lines as FileSource reads them (surrogateescape, \\n / \\r / \\r\\n)."""
    return io.StringIO(content.decode("utf-8", "surrogateescape"), newline="").readlines()


_line = st.one_of(
    broken(RECORD).map(json.dumps), broken(RECORD).map(json.dumps),
    json_values.map(json.dumps), hostile_text.map(lambda s: s.replace("\n", " ").replace("\r", " ")), st.just(""),
)


@given(lines=st.lists(_line, max_size=6), fmt=st.sampled_from(["auto", "jsonl"]), crlf=st.booleans())
@example(lines=[json.dumps({**RECORD, "created_at": "0001-01-01T00:00:00+01:00"}),
                json.dumps({**RECORD, "created_at": 1e300}), json.dumps({**RECORD, "metrics": {"likes": "inf"}}),
                json.dumps({**RECORD, "metrics": {"likes": 2**64}}), json.dumps({**RECORD, "text": LONE_SURROGATES})],
         fmt="jsonl", crlf=False)
def test_jsonl_lines_become_mentions_or_counted_bad_lines(lines, fmt, crlf):
    content = ("\r\n" if crlf else "\n").join(lines).encode("utf-8", "surrogatepass")
    source = open_source(write(content, ".jsonl"), fmt)
    if source is None:
        return
    mentions, skipped = read_all(source)
    if source.format == "jsonl":
        non_blank = [line for line in _physical_lines(content) if line.strip()]
        assert len(mentions) + skipped == len(non_blank)
        assert len(source.bad_lines) == skipped
        texts = {valid_text(r.get("text")) for r in map(_loads, lines) if isinstance(r, dict)
                 and isinstance(r.get("text"), str)}
        assert {m.text for m in mentions} <= texts  # the text as in the file


def _loads(line: str):
    try:
        return json.loads(line)
    except ValueError:
        return None


@given(pages=st.lists(st.one_of(broken(X_PAGE), json_values), min_size=1, max_size=3))
def test_twarc2_pages(pages):
    content = "\n".join(json.dumps(p) for p in pages).encode("utf-8", "surrogatepass")
    source = open_source(write(content, ".jsonl"), "twarc2")
    assert source is not None
    read_all(source)


@given(content=st.binary(max_size=300), fmt=st.sampled_from(["auto", "jsonl", "twarc2", "csv"]))
@example(content=b"", fmt="auto")
@example(content=b"\xff\xfe\xfd\ncreated_at,text\n", fmt="csv")
def test_any_bytes_in_any_format(content, fmt):
    source = open_source(write(content, ".dat"), fmt)
    if source is not None:
        read_all(source)


_CELLS = {
    "id": st.sampled_from(["a1", "", "17"]), "created_at": st.sampled_from(["2026-11-01T10:00:00Z", "2026-11-01"]),
    "text": st.sampled_from(["Acme is great", SCRIPT + " acme", ZWJ_FAMILY]), "author": st.just("ann"),
    "likes": st.sampled_from(["3", "", "2.0"]), "reposts": st.just("0"), "replies": st.just("1"),
}
_HOSTILE_CELLS = st.one_of(hostile_text, st.sampled_from(["inf", "nan", "-1", "1e400", "9" * 5000,
                                                           "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]))


@st.composite
def csv_files(draw):
    fields = draw(st.lists(st.sampled_from(FIELDS), unique=True, min_size=1, max_size=len(FIELDS)))
    column_map = {}
    header = []
    for field in fields:
        if draw(st.booleans()):
            column_map[field] = draw(hostile_text.filter(lambda s: s.strip() == s and s))
            header.append(column_map[field])
        else:
            header.append(field)
    if draw(st.integers(0, 9)) == 0:
        column_map[draw(hostile_text)] = "x"  # an unknown field: a usage error
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        row = [draw(st.one_of(*[_CELLS.get(f, hostile_text)] * 3, _HOSTILE_CELLS)) for f in fields]
        if draw(st.integers(0, 5)) == 0:
            row += draw(st.lists(hostile_text, min_size=1, max_size=2))
        rows.append(row)
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([header, *rows])
    return buffer.getvalue().encode("utf-8", "surrogatepass"), column_map, len(rows)


@given(file=csv_files(), fmt=st.sampled_from(["csv", "auto"]))
@example(file=((b"created_at,text,likes\n0001-01-01T00:00:00+01:00,Acme,1\n2026-11-01,Acme,inf\n"
                b"2026-11-01,Acme,1e400\n1e300,Acme,1\n"), {}, 4), fmt="csv")
def test_csv_rows_become_mentions_or_counted_bad_lines(file, fmt):
    content, column_map, rows = file
    source = open_source(write(content, ".csv"), fmt, column_map)
    if source is None:
        return
    mentions, skipped = read_all(source)
    if source.format == "csv":
        assert len(mentions) + skipped == rows


# -- through the pipeline, into a DuckDB file -----------------------------------------------

_STORE: list[tuple[Store, Pipeline]] = []


def _pipeline() -> Pipeline:
    if not _STORE:
        store = Store.open(_DIR / "import.duckdb")
        _STORE.append((store, Pipeline(store, VaderScorer(), lambda: NOW)))
    return _STORE[0][1]


def teardown_module() -> None:
    for store, _ in _STORE:
        store.close()
    shutil.rmtree(_DIR, ignore_errors=True)


_SIX_WORDS = "acme one two three four five"  # long enough for a near-duplicate fingerprint
_pipeline_record = broken({**RECORD, "text": _SIX_WORDS}).map(
    lambda r: {**r, "text": f"{r['text']} {_SIX_WORDS}"} if isinstance(r.get("text"), str) else r)


@settings(max_examples=25)
@given(records=st.lists(_pipeline_record, min_size=1, max_size=4))
@example(records=[{**RECORD, "id": "early", "created_at": "0001-01-01T00:00:00Z", "text": _SIX_WORDS}])
@example(records=[{**RECORD, "id": "late", "created_at": "9999-12-31T23:59:59Z", "text": _SIX_WORDS}])
@example(records=[{**RECORD, "id": "s", "text": f"{_SIX_WORDS} {LONE_SURROGATES}", "raw": {"\ud800": 2**70}}])
def test_an_import_through_the_pipeline_never_fails_on_a_record(records):
    content = "\n".join(json.dumps(r) for r in records).encode("utf-8", "surrogatepass")
    source = open_source(write(content, ".jsonl"), "jsonl")
    result = _pipeline().pull(source, ACME)
    assert result.status == "ok"
    assert result.fetched + result.skipped == len(records)
