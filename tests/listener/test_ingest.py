"""`listener import` reads a file once for every brand (listener.ingest): what it stores is
row for row what brand-by-brand pulls of the same file store, with one process or
several; each row is parsed once, and language is detected only for rows some brand
wants, once per distinct text."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

import inputs.mentions
import inputs.prepare
from connectors.base import BrandQuery
from inputs.mentions import FileSource
from listener import ingest
from listener.pipeline import Pipeline
from listener.scoring import build_scoring
from listener.config import load_file
from storage.store import Store

START = datetime(2026, 11, 1, tzinfo=timezone.utc)
QUERIES = (BrandQuery("Acme", terms=("acme",)),
           BrandQuery("Brewly", terms=("brewly",), languages=("en",)),
           BrandQuery("Kettle", terms=("kettle",), exclude=("kettle corn",)))
TEXTS = [
    "Acme is great, love it", "Brewly support is awful", "acme and brewly both fine",
    "Acme ist wirklich furchtbar schlecht und der Kundendienst antwortet nie", "nothing to see here",
    "Brewly ist eine Katastrophe, nie wieder bestelle ich dort etwas", "kettle corn is tasty", "my kettle broke",
    "ACME!!! worst day ever", "acme kettle brewly all three", "Acme is great, love it",
]


def write_file(path, rows: int = 90) -> None:
    lines = []
    for i in range(rows):
        if i % 17 == 5:
            lines.append("{not json")
            continue
        record = {"id": str(i), "created_at": (START + timedelta(minutes=i)).isoformat(), "text": TEXTS[i % len(TEXTS)],
                  "author": f"u{i % 7}"}
        if i % 3 == 0:
            record["lang"] = "en"
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def settings(tmp_path):
    (tmp_path / "listener.toml").write_text(
        "".join(f'[[brands]]\nname = "{q.brand}"\nterms = {json.dumps(list(q.terms))}\n' for q in QUERIES),
        encoding="utf-8")
    return load_file(tmp_path / "listener.toml")


def stored(store: Store) -> dict[str, list[tuple]]:
    with store.native() as db:
        return {
            "mentions": db.execute("SELECT source, id, brand, created_at, text, author, lang, duplicate, text_hash "
                                   "FROM mentions ORDER BY ALL").fetchall(),
            "scores": db.execute("SELECT id, brand, scorer, compound, pos, neu, neg, label, active "
                                 "FROM scores ORDER BY ALL").fetchall(),
            "runs": db.execute("SELECT source, brand, status, fetched, new, duplicates, rejected, skipped "
                               "FROM runs WHERE kind = 'pull' ORDER BY ALL").fetchall(),
        }


def import_once(tmp_path, name: str, workers: int, clock) -> tuple[dict, FileSource]:
    config = settings(tmp_path)
    reader = FileSource(tmp_path / "posts.jsonl", "file", "auto", {}, clock)
    vader = ingest.ReadyVader()
    with Store.open(tmp_path / f"{name}.duckdb") as store:
        pipeline = Pipeline(store, build_scoring(config, store, vader=vader), clock)
        results = ingest.import_file(pipeline, reader, QUERIES, vader, workers)
        assert [r.brand for r in results] == [q.brand for q in QUERIES]
        return stored(store), reader


def import_brand_by_brand(tmp_path, clock) -> dict:
    """The way imports ran before: one pass of the file per brand, through Pipeline.pull."""
    config = settings(tmp_path)
    reader = FileSource(tmp_path / "posts.jsonl", "file", "auto", {}, clock)
    with Store.open(tmp_path / "pulls.duckdb") as store:
        pipeline = Pipeline(store, build_scoring(config, store), clock)
        for query in QUERIES:
            pipeline.pull(reader, query)
        return stored(store)


@pytest.mark.parametrize("workers", [1, 2])
def test_one_pass_stores_what_brand_by_brand_pulls_store(tmp_path, clock, monkeypatch, workers):
    monkeypatch.setattr(inputs.mentions, "BATCH_SIZE", 20)  # many chunks: near-duplicates span them
    write_file(tmp_path / "posts.jsonl")
    expected = import_brand_by_brand(tmp_path, clock)
    got, reader = import_once(tmp_path, f"w{workers}", workers, clock)
    assert got == expected
    assert reader.bad_lines == [i + 1 for i in range(90) if i % 17 == 5]
    brands = {row[2] for row in got["mentions"]}
    assert brands == {"Acme", "Brewly", "Kettle"}
    assert any(row[7] for row in got["mentions"]), "the file has near-duplicates"
    # The German Brewly posts were detected as German and left out by the language filter.
    assert not [row for row in got["mentions"] if row[2] == "Brewly" and row[6] == "de"]
    assert [row for row in got["mentions"] if row[2] == "Acme" and row[6] == "de"]


def test_each_row_is_parsed_once_and_only_wanted_rows_are_detected(tmp_path, clock, monkeypatch):
    write_file(tmp_path / "posts.jsonl")
    parsed, detected = [], []
    real_parse, real_detect = inputs.mentions.mention_from_record, inputs.prepare.detect_languages

    def counting_parse(record, *args):
        parsed.append(record["id"])
        return real_parse(record, *args)

    def counting_detect(texts):
        detected.append(list(texts))
        return real_detect(texts)

    monkeypatch.setattr(inputs.mentions, "mention_from_record", counting_parse)
    monkeypatch.setattr(inputs.prepare, "detect_languages", counting_detect)
    import_once(tmp_path, "counted", 1, clock)
    good_rows = [i for i in range(90) if i % 17 != 5]
    assert sorted(parsed, key=int) == [str(i) for i in good_rows]  # once each, not once per brand
    wanted_without_lang = [TEXTS[i % len(TEXTS)] for i in good_rows if i % 3 != 0
                           and any(q.terms[0] in TEXTS[i % len(TEXTS)].casefold() for q in QUERIES)
                           and TEXTS[i % len(TEXTS)] != "kettle corn is tasty"]
    # One batch for the file's one chunk, each distinct text once.
    assert len(detected) == 1
    assert sorted(detected[0]) == sorted(set(wanted_without_lang))


def test_bad_lines_are_logged_once_in_file_order(tmp_path, clock, caplog):
    write_file(tmp_path / "posts.jsonl")
    with caplog.at_level(logging.WARNING, logger="listener.import"):
        import_once(tmp_path, "logged", 2, clock)
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert [int(m.split(" line ")[1].split()[0]) for m in lines] == [i + 1 for i in range(90) if i % 17 == 5]
