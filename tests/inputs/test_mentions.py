"""File import through the real pipeline and a real database file."""

import json
import logging

import pytest

import inputs.mentions
from analysis.sentiment import VaderScorer
from connectors.base import BrandQuery
from inputs.mentions import RAMP, FileSource, ImportFormatError, detect_format
from listener.pipeline import Pipeline

ACME = BrandQuery("Acme", terms=("acme",))


def run_import(store, clock, path, fmt="auto", column_map=None, query=ACME, source="survey"):
    reader = FileSource(path, source, fmt, column_map or {}, clock)
    return reader, Pipeline(store, VaderScorer(), clock).pull(reader, query)


def ids(store):
    with store.native() as db:
        return sorted(r[0] for r in db.execute("SELECT id FROM mentions").fetchall())


def test_own_jsonl_format_with_bad_lines_reported_by_number(store, clock, tmp_path, caplog):
    path = tmp_path / "export.jsonl"
    rows = [
        {"id": "a", "created_at": "2026-11-01T10:00:00Z", "text": "Acme is great", "author": "ann",
         "metrics": {"likes": 2, "reposts": 1, "replies": 0, "views": 40}, "raw": {"k": 1}},
        "not json at all",
        {"id": "b", "created_at": "2026-11-01T11:00:00+01:00", "text": "Acme is awful", "lang": "en"},
        {"id": "c", "text": "Acme without a time"},
        {"id": "d", "created_at": "2026-11-01T12:00:00", "text": "nothing about the brand"},
        [1, 2],
    ]
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n\n")
    with caplog.at_level(logging.WARNING, logger="listener.import"):
        reader, result = run_import(store, clock, path)
    assert reader.format == "jsonl"
    assert reader.bad_lines == [2, 4, 6]
    assert "export.jsonl line 4 skipped: created_at must be an ISO 8601 time" in caplog.text
    assert (result.fetched, result.new, result.rejected, result.skipped) == (3, 2, 1, 3)
    with store.native() as db:
        row = db.execute("SELECT source, created_at, likes, reposts, extra_metrics FROM mentions WHERE id = 'a'").fetchone()
        b_time = db.execute("SELECT created_at FROM mentions WHERE id = 'b'").fetchone()[0]
    assert row[0] == "survey" and row[2:] == (2, 1, '{"views":40}')
    assert b_time.hour == 10  # 11:00+01:00 stored as 10:00 UTC
    # Re-importing the same file adds nothing and saves no cursor.
    _, again = run_import(store, clock, path)
    assert (again.new, again.duplicates) == (0, 2)
    assert store.get_cursor("survey", "Acme") is None


def test_csv_with_a_column_map_and_derived_ids(store, clock, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text(
        "when,body,who,fav\n"
        "2026-11-01T10:00:00Z,\"Acme, finally: great service\",ann,5\n"
        "2026-11-01T10:05:00Z,Acme again,bob,\n"
        "2026-11-01T10:10:00Z,Acme too many,cy,1,extra\n"
    )
    mapping = {"created_at": "when", "text": "body", "author": "who", "likes": "fav"}
    reader, result = run_import(store, clock, path, column_map=mapping)
    assert reader.format == "csv" and reader.bad_lines == [4]
    assert result.new == 2
    first = ids(store)
    run_import(store, clock, path, column_map=mapping)
    assert ids(store) == first and all(i.startswith("h") for i in first)


def test_csv_without_the_needed_columns_is_a_clear_error(clock, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ImportFormatError, match=r"no column for created_at .*text .*--map field=column"):
        FileSource(path, "survey", "csv", {}, clock)
    with pytest.raises(ImportFormatError, match="unknown field"):
        FileSource(path, "survey", "csv", {"colour": "a"}, clock)


def test_csv_fields_past_the_csv_module_default_import_and_a_huge_one_is_one_bad_row(store, clock, tmp_path, caplog):
    earlier = tmp_path / "earlier.jsonl"
    earlier.write_text(json.dumps({"id": "kept", "created_at": "2026-11-01T09:00:00Z", "text": "Acme before"}) + "\n")
    run_import(store, clock, earlier)
    path = tmp_path / "long.csv"
    long_text = "Acme " + "long " * 40_000  # 200 KB: past csv's default 128 KiB field limit
    huge_text = "Acme " + "y" * (17 * 1024 * 1024)  # past our 16 MiB bound
    path.write_text("id,created_at,text\n"
                    "a,2026-11-01T10:00:00Z,Acme short\n"
                    f'b,2026-11-01T10:01:00Z,"{long_text}"\n'
                    f'c,2026-11-01T10:02:00Z,"{huge_text}"\n'
                    "d,2026-11-01T10:03:00Z,Acme after the huge one\n")
    with caplog.at_level(logging.WARNING, logger="listener.import"):
        reader, result = run_import(store, clock, path)
    assert reader.bad_lines == [4] and (result.new, result.skipped) == (3, 1)
    assert "long.csv line 4 skipped: not readable as CSV: field larger than field limit" in caplog.text
    assert ids(store) == ["a", "b", "d", "kept"]
    with store.native() as db:
        assert db.execute("SELECT length(text) FROM mentions WHERE id = 'b'").fetchone()[0] == len(long_text)  # stored whole


def test_twarc2_pages_map_through_the_x_connector_code(store, clock, tmp_path):
    page = {
        "data": [
            {"id": "1001", "text": "Acme ships today", "created_at": "2026-11-01T10:00:00.000Z", "author_id": "7",
             "conversation_id": "1001", "lang": "en",
             "public_metrics": {"like_count": 4, "retweet_count": 1, "reply_count": 2, "quote_count": 0}},
            {"id": "1002", "text": "RT @x: Acme ships today", "created_at": "2026-11-01T10:01:00.000Z", "author_id": "7",
             "referenced_tweets": [{"type": "retweeted", "id": "1001"}]},
        ],
        "includes": {"users": [{"id": "7", "username": "ann", "name": "Ann"}]},
        "meta": {"result_count": 2},
        "__twarc": {"version": "2.14.0"},
    }
    path = tmp_path / "tweets.jsonl"
    path.write_text(json.dumps(page) + "\n")
    assert detect_format(path) == "twarc2"
    _, result = run_import(store, clock, path, source="x")
    assert result.new == 1
    with store.native() as db:
        assert db.execute("SELECT source, id, author, likes, replies FROM mentions").fetchone() == ("x", "1001", "ann", 4, 2)


def test_a_large_file_streams_in_batches(store, clock, tmp_path, monkeypatch):
    monkeypatch.setattr(inputs.mentions, "BATCH_SIZE", 800)  # RAMP 8: the first chunk holds 100
    path = tmp_path / "big.jsonl"
    with path.open("w") as handle:
        for i in range(12_000):
            handle.write(json.dumps({"id": str(i), "created_at": "2026-11-01T10:00:00Z", "text": f"Acme post number {i}"}) + "\n")
    reader = FileSource(path, "survey", "auto", {}, clock)
    sizes = [len(b.mentions) for b in reader.fetch(ACME, None)]
    assert RAMP == 8 and sum(sizes) == 12_000
    # Twice as many each time up to BATCH_SIZE, then a quarter of what is left, down to the first's size.
    assert sizes[:5] == [100, 200, 400, 800, 800] and max(sizes) == 800
    last_full = len(sizes) - sizes[::-1].index(800)
    tail = sizes[last_full:-1]
    assert tail == sorted(tail, reverse=True) and tail[0] < 800 and tail[-1] == 100
    assert reader.bytes_read == path.stat().st_size
