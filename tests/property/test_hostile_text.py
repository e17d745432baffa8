"""Hostile mention text, end to end: stored faithfully, shown escaped.

* Round trip: HTML and script, every control character (NUL included), a 1 MB string,
  emoji with ZWJ sequences, right-to-left text with bidi overrides and lone surrogates
  are saved with ``Store.save_batch`` into a DuckDB file on disk, read back from
  ``mentions`` and ``v_mentions`` after reopening the file, and compared. Everything
  comes back exactly, except surrogates, which UTF-8 cannot hold: the rule (docs/analysts.md,
  "Text as stored") is that ``Mention`` replaces each by U+FFFD.
* The same texts through the real pipeline (language detection, near-duplicate
  fingerprints, VADER) and the same file.
* The campaign report with hostile names, sources and notes: in HTML every one of them
  is text (the page's tags and attributes are exactly those of the same report with
  plain names), in Markdown none can add a line, a table cell or a tag. (The sample
  is tests/analysis/report_sample.py's typed report, the renderer tests' own.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from analysis.report_render import render_html, render_markdown
from analysis.roi.report import Report
from analysis.sentiment import VaderScorer
from connectors.base import Batch, BrandQuery, Mention, valid_text
from listener.pipeline import Pipeline
from storage.store import Store
from tests.analysis.report_sample import sample_report
from tests.analysis.report_sample import with_texts as replace_texts
from tests.property.strategies import (
    BIDI_CONTROLS, CONTROL, CSV_BREAKERS, EMOJI, IMG, LINE_BREAKERS, LONE_SURROGATES, MD_BREAKERS, NUL, RTL,
    SCRIPT, SQL, ZWJ_FAMILY, has_surrogate, hostile_text,
)

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=timezone.utc)
MEGABYTE = 1_048_576
SCORER = VaderScorer()

HOSTILE_TEXTS = {
    "html and script": f"Acme {SCRIPT} {IMG} <b>bold</b> &amp; &lt;not a tag&gt; </textarea><!-- -->",
    "control characters": "Acme " + CONTROL + " end",
    "nul bytes": f"{NUL}Acme{NUL}{NUL}middle{NUL}",
    "one megabyte": ("Acme café ☕ " + ZWJ_FAMILY + " " + RTL + " " + SCRIPT + " ") * (MEGABYTE // 40),
    "emoji and zwj": f"Acme {EMOJI} {ZWJ_FAMILY} \U0001f3f3\ufe0f\u200d\U0001f308 \U0001f9d1\U0001f3fd\u200d\U0001f4bb",
    "right to left with overrides": f"Acme {RTL} {BIDI_CONTROLS} \u202egnp.exe\u202c",
    "lone surrogates": f"Acme {LONE_SURROGATES} and a pair \U0001f600",
    "separators": f"Acme {CSV_BREAKERS} {MD_BREAKERS} {LINE_BREAKERS} {SQL}",
}


def mention(i: int, text: str, **fields) -> Mention:
    return Mention(source="test", id=f"m{i}", brand="Acme", created_at=T0 + timedelta(minutes=i), text=text,
                   **fields)


def read_back(path: Path, view: str) -> dict[str, tuple]:
    with Store.open(path) as store, store.native() as db:
        rows = db.execute(f"SELECT id, text, author, url, conversation_id, parent_id, lang FROM {view}").fetchall()
    return {row[0]: row[1:] for row in rows}


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[Path, dict[str, Mention]]:
    """Every hostile text (and hostile authors, URLs, ids) saved into one file, closed."""
    path = tmp_path_factory.mktemp("hostile") / "hostile.duckdb"
    mentions = {}
    for i, (name, text) in enumerate(HOSTILE_TEXTS.items()):
        short = text[:200]
        m = mention(i, text, author=short, url=f"https://example.com/{short}", conversation_id=f"c{short}",
                    parent_id=short, lang=short[:12], metrics={"likes": 1, short[:20]: 2},
                    raw={"text": short, short[:20]: [short, 2**70, float("nan")]})
        mentions[name] = m
    with Store.open(path) as store:
        result = store.save_batch(list(mentions.values()), [None] * len(mentions), source="test", brand="Acme",
                                  checkpoint={"cursor": LONE_SURROGATES}, scorer="vader", scorer_version="1",
                                  now=T0)
    assert result.new == len(mentions)
    return path, mentions


def expected(text: str) -> str:
    """The stored form: the text itself, surrogates replaced by U+FFFD."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


@pytest.mark.parametrize("name", list(HOSTILE_TEXTS))
@pytest.mark.parametrize("view", ["mentions", "v_mentions"])
def test_hostile_text_round_trips_through_the_database_file(stored, name, view):
    path, mentions = stored
    m = mentions[name]
    row = read_back(path, view)[m.id]
    assert row == (m.text, m.author, m.url, m.conversation_id, m.parent_id, m.lang)
    assert row[0] == expected(HOSTILE_TEXTS[name])
    if name == "one megabyte":
        assert len(row[0]) >= MEGABYTE - 40
    if name == "nul bytes":
        assert row[0].count("\x00") == 4  # DuckDB keeps NUL: no rule needed


def test_raw_payload_and_metrics_stay_valid_json(stored):
    path, mentions = stored
    with Store.open(path) as store, store.native() as db:
        rows = dict(db.execute("SELECT id, raw FROM mentions").fetchall())
        extra = dict(db.execute("SELECT id, extra_metrics FROM mentions").fetchall())
        cursor = db.execute("SELECT cursor FROM cursors").fetchone()[0]
    m = mentions["lone surrogates"]
    raw = json.loads(rows[m.id])
    assert raw["text"] == expected(HOSTILE_TEXTS["lone surrogates"])[:200]
    assert list(raw.values())[1] == [raw["text"], 2**70, None]  # big integers kept, NaN as null
    assert all(not has_surrogate(value) for value in rows.values())
    assert json.loads(extra[mentions["html and script"].id]) == {HOSTILE_TEXTS["html and script"][:20]: 2}
    assert json.loads(cursor) == {"cursor": LONE_SURROGATES}  # a cursor is ASCII-escaped JSON


def test_the_surrogate_rule_at_the_mention_boundary():
    m = Mention(source="s\ud800", id="i\udfff", brand="Acme", created_at=T0, text="a\udc80b\U0001f600",
                author="\ud83d", url=None, lang="e\udcffn")
    assert (m.source, m.id, m.text, m.author, m.lang) == ("s\ufffd", "i\ufffd", "a\ufffdb\U0001f600", "\ufffd",
                                                          "e\ufffdn")
    assert m.conversation_id == "i\ufffd"
    assert valid_text(HOSTILE_TEXTS["one megabyte"]) is HOSTILE_TEXTS["one megabyte"]  # no copy when valid


class _ListConnector:
    """A connector serving fixed mentions: the pipeline's input, not a mock of our code."""

    name = "test"

    def __init__(self, mentions: list[Mention]) -> None:
        self.mentions = mentions

    def fetch(self, query: BrandQuery, since) -> Iterator[Batch]:
        yield Batch(tuple(self.mentions), {"done": True})

    def close(self) -> None:
        pass


def test_hostile_text_through_the_pipeline(tmp_path):
    texts = {k: v for k, v in HOSTILE_TEXTS.items() if k != "one megabyte"}  # 1 MB: saved above, 4 s to score
    mentions = [mention(i, f"{text} acme one two three four five") for i, text in enumerate(texts.values())]
    path = tmp_path / "pipeline.duckdb"
    with Store.open(path) as store:
        pipeline = Pipeline(store, SCORER, lambda: T0 + timedelta(hours=1))
        result = pipeline.pull(_ListConnector(mentions), BrandQuery("Acme", terms=("acme",)))
        pipeline.score_hours()
    assert (result.status, result.new, result.rejected) == ("ok", len(mentions), 0)
    stored = read_back(path, "v_mentions")
    assert {m.id: m.text for m in mentions} == {i: row[0] for i, row in stored.items()}


# -- the report --------------------------------------------------------------------------

SAMPLE = sample_report()
_CAMPAIGN = SAMPLE.campaigns[0]
FREE_TEXT = sorted({
    SAMPLE.title, SAMPLE.brand, *SAMPLE.competitors, *SAMPLE.freshness, *SAMPLE.source_counts,
    _CAMPAIGN.name, _CAMPAIGN.campaign_id, *_CAMPAIGN.caveats, _CAMPAIGN.headline.reason,
    _CAMPAIGN.verdict_rule, *SAMPLE.notes,
})
"""Every string of the sample that is free text (names, sources, ids, notes), not a code."""


def with_texts(replacements: dict[str, str]) -> Report:
    """The sample with each free-text string replaced wherever it occurs, keys included."""
    return replace_texts(SAMPLE, replacements)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        # A cell that reads as a number is right-aligned (class="num"): content may choose
        # that, and nothing else.
        shown = [name for name, value in attrs if not (tag == "td" and (name, value) == ("class", "num"))]
        self.tags.append(("start", tag, tuple(sorted(shown))))
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            if name == "href":
                assert value.startswith("#"), value
            if name == "src":
                assert value.startswith("data:image/"), value[:40]

    def handle_endtag(self, tag):
        self.tags.append(("end", tag))

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


_NESTED = re.compile(r"\s*(?:[-+*]|\d+[.)])(?:\s|$)|\s*#|\s*>|\s*```")


def _md_structure(markdown: str) -> list[tuple[str, int]]:
    """Each line's kind (heading level, table row, list item and whether its text would
    open a nested block, emphasis, text) and its number of unescaped pipes."""
    shape = []
    for line in markdown.split("\n"):
        if not line:
            kind = ""
        elif line.startswith("#"):
            kind = re.match(r"#+ ", line).group()
        elif line.startswith("- "):
            kind = "- nested" if _NESTED.match(line[2:]) else "- "
        elif line[0] in "|*":
            kind = line[0]
        else:
            kind = "nested" if _NESTED.match(line) else "text"
        shape.append((kind, len(re.findall(r"(?<!\\)\|", line))))
    return shape


_report_text = hostile_text.map(lambda s: expected(s).strip()).filter(bool)

PLAIN = with_texts({text: f"name{i}" for i, text in enumerate(FREE_TEXT)})
PLAIN_PAGE = parse(render_html(PLAIN, charts=False))
PLAIN_MARKDOWN = _md_structure(render_markdown(PLAIN))


_NASTY = [SCRIPT, IMG, MD_BREAKERS, "a | b", "\n# x", "- y", CSV_BREAKERS, RTL, ZWJ_FAMILY, CONTROL,
          "</td></tr></table>", "```", "\u2028", "1. z", "=cmd", "[l](javascript:x)", "<!--", "]]>", "&amp;",
          "\\|", "`x`", "*y*", "_z_", "~~s~~"]


@settings(max_examples=25)
@given(texts=st.lists(_report_text, unique=True, min_size=len(FREE_TEXT), max_size=len(FREE_TEXT)))
@example(texts=[f"{text} {i}" for i, text in enumerate(_NASTY * 2)][:len(FREE_TEXT)])
def test_hostile_names_in_the_report_are_text_only(texts):
    report = with_texts(dict(zip(FREE_TEXT, texts, strict=True)))
    page = render_html(report, charts=False)
    parsed = parse(page)
    assert parsed.tags == PLAIN_PAGE.tags  # not one tag or attribute more, or moved
    assert not re.search(r"<script|<img", page, re.IGNORECASE)  # "javascript:" may be text; no href holds it
    shown = "".join(parsed.text)
    for text in texts:
        assert text in shown  # shown, as text, exactly
    markdown = render_markdown(report)
    assert _md_structure(markdown) == PLAIN_MARKDOWN  # no line, heading, list item or cell more
    assert "<" not in markdown  # every HTML-significant character is an entity


def test_a_note_or_caveat_cannot_open_a_nested_list():
    """Found by the property above: list items were escaped without ``line_start``, so a
    caveat "1. z" rendered as "- 1. z", a list nested in the item."""
    markers = iter(["- y", "1. z", "+ w", "2) v", "* u", "- - t"])
    lists = {*SAMPLE.notes, *_CAMPAIGN.caveats}
    report = with_texts({text: next(markers) if text in lists else f"name{i}" for i, text in enumerate(FREE_TEXT)})
    assert _md_structure(render_markdown(report)) == PLAIN_MARKDOWN
