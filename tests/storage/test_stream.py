"""The mention stream (storage.stream) against a plain oracle: every filter, alone and
combined, gives exactly the mentions the analysts' view v_mentions gives under the same
conditions written the obvious way, in the stream's order; walking the pages by cursor
gives each of them once; a filter survives its URL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from analysis.sentiment import VaderScorer
from connectors.base import Mention
from storage.stream import Cursor, StreamFilter, stream_page
from storage.store import Store, to_db_time
from tests.system.live_site import AS_OF, build_database

NOW = AS_OF


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    world = build_database(tmp_path_factory.mktemp("stream"))
    extra = [
        Mention(source="mastodon", id="de-1", brand="Acme", created_at=AS_OF - timedelta(hours=5),
                text="Acme ist schrecklich", author="Hans", lang="de", conversation_id="de-1"),
        Mention(source="mastodon", id="pct-1", brand="Acme", created_at=AS_OF - timedelta(hours=6),
                text="Acme is 100% great_stuff", author="Pat", conversation_id="pct-1"),
        Mention(source="mastodon", id="pct-2", brand="Acme", created_at=AS_OF - timedelta(hours=6, minutes=1),
                text="Acme is 1000 greatXstuff", author="pat", conversation_id="pct-2"),
        # the same instant and brand: the cursor must tell them apart by source and id
        *[Mention(source=s, id=f"tie-{i}", brand="Acme", created_at=AS_OF - timedelta(hours=7),
                  text="tie Acme", author="tie", conversation_id=f"tie-{i}") for s in ("mastodon", "reddit")
          for i in range(3)],
        # far older than one page's read budget (21 days)
        Mention(source="mastodon", id="old-1", brand="Acme", created_at=AS_OF - timedelta(days=60),
                text="Acme in ancient times", author="elder", conversation_id="old-1"),
    ]
    with Store.open(world["database"]) as opened:
        for source in ("mastodon", "reddit"):
            batch = [m for m in extra if m.source == source]
            opened.save_batch(batch, VaderScorer().score([m.text for m in batch]), source=source, brand="Acme",
                              checkpoint=None, scorer="vader", scorer_version="test", now=AS_OF)
        # a near-duplicate: the same text again, stored later
        again = Mention(source="reddit", id="dup-1", brand="Acme", created_at=AS_OF - timedelta(hours=4),
                        text="Acme ist schrecklich", author="Copy", conversation_id="dup-1")
        opened.save_batch([again], [None], source="reddit", brand="Acme", checkpoint=None, scorer="vader",
                          scorer_version="test", now=AS_OF, duplicates=[True])
    with Store.open(world["database"], read_only=True) as readonly:
        yield readonly


def oracle(store: Store, f: StreamFilter) -> list[tuple]:
    """The filter written plainly over v_mentions (docs/analysts.md)."""
    where, params = ["created_at < $now"], {"now": to_db_time(NOW + timedelta(microseconds=1))}
    for name in ("brand", "source", "lang"):
        if getattr(f, name):
            where.append(f"{name} = ${name}")
            params[name] = getattr(f, name)
    if f.duplicates is not None:
        where.append("duplicate = $dup")
        params["dup"] = f.duplicates
    if f.author:
        where.append("lower(author) = lower($author)")
        params["author"] = f.author
    if f.conversation:
        where.append("conversation_id = $conversation")
        params["conversation"] = f.conversation
    if f.label == "unscored":
        where.append("label IS NULL")
    elif f.label:
        where.append("label = $label")
        params["label"] = f.label
    for n, word in enumerate(f.words()):
        where.append(f"strpos(lower(text), lower($w{n})) > 0")
        params[f"w{n}"] = word
    if f.start:
        where.append("created_at >= $start")
        params["start"] = to_db_time(f.start)
    if f.end:
        where.append("created_at < $end")
        params["end"] = to_db_time(f.end)
    with store.native() as db:
        return db.execute(f"SELECT source, id, brand, label, vader_label FROM v_mentions WHERE {' AND '.join(where)} "
                          "ORDER BY created_at DESC, source DESC, id DESC, brand DESC", params).fetchall()


def walk(store: Store, f: StreamFilter, limit: int) -> list[tuple]:
    out, after, pages = [], None, 0
    while True:
        page = stream_page(store, f, now=NOW, after=after, limit=limit)
        pages += 1
        out += [(m.source, m.id, m.brand, m.label, m.vader_label) for m in page.mentions]
        assert len(page.mentions) <= limit
        if page.next is None:
            return out
        # a page is only cut short at the end, or where its read budget ran out
        assert len(page.mentions) == limit or page.next.id == ""
        after = Cursor.decode(page.next.encode())
        assert pages < 10_000


FILTERS = [
    StreamFilter(),
    StreamFilter(brand="Acme"),
    StreamFilter(brand="Globex & Co", source="reddit"),
    StreamFilter(label="negative"),
    StreamFilter(label="unscored"),
    StreamFilter(brand="Acme", label="positive", source="mastodon"),
    StreamFilter(lang="de"),
    StreamFilter(duplicates=True),
    StreamFilter(duplicates=False, brand="Initech"),
    StreamFilter(author="PAT"),
    StreamFilter(conversation="tie-0"),
    StreamFilter(conversation="tie-1", source="reddit"),
    StreamFilter(q="terrible"),
    StreamFilter(q="TERRIBLE acme"),
    StreamFilter(q="100%"),
    StreamFilter(q="great_stuff"),
    StreamFilter(q="<script>"),
    StreamFilter(brand="Acme", start=AS_OF - timedelta(days=2), end=AS_OF - timedelta(hours=6)),
    StreamFilter(q="love", start=AS_OF - timedelta(days=8, hours=20)),
    StreamFilter(q="ancient"),
]


@pytest.mark.parametrize("f", FILTERS, ids=[str(f.to_query()) for f in FILTERS])
def test_each_filter_gives_what_the_plain_query_gives(store, f):
    expected = oracle(store, f)
    first = stream_page(store, f, now=NOW)
    recent = [e for e in expected if e[1] != "old-1"]  # within the first page's read budget
    assert [(m.source, m.id, m.brand, m.label, m.vader_label) for m in first.mentions] == recent[:50]
    assert walk(store, f, 50) == expected


def test_the_filters_really_filter(store):
    """The oracle agrees with the stream; these pin that the fixture makes each case matter."""
    assert [r[1] for r in oracle(store, StreamFilter(lang="de"))] == ["de-1"]
    assert [r[1] for r in oracle(store, StreamFilter(duplicates=True))] == ["dup-1"]
    assert [r[1] for r in oracle(store, StreamFilter(q="100%"))] == ["pct-1"]  # % is not a wildcard
    assert [r[1] for r in oracle(store, StreamFilter(q="great_stuff"))] == ["pct-1"]  # nor _
    assert {r[1] for r in oracle(store, StreamFilter(author="PAT"))} == {"pct-1", "pct-2"}
    assert [r[:2] for r in oracle(store, StreamFilter(conversation="tie-0"))] == [("reddit", "tie-0"),
                                                                                ("mastodon", "tie-0")]
    assert [r[1] for r in oracle(store, StreamFilter(q="<script>"))] == ["hostile-1"]
    labels = {r[3] for r in oracle(store, StreamFilter(brand="Acme"))}
    assert {"positive", "neutral", "negative"} <= labels
    assert len(oracle(store, StreamFilter())) > 2000


@pytest.mark.parametrize("limit", [1, 7, 50])
def test_paging_by_cursor_gives_every_mention_once_in_order(store, limit):
    f = StreamFilter(brand="Acme", start=AS_OF - timedelta(hours=30)) if limit < 50 else StreamFilter(source="reddit")
    assert walk(store, f, limit) == oracle(store, f)


def test_a_filter_survives_its_url_and_bad_ones_name_their_field():
    f = StreamFilter(brand="Globex & Co", source="reddit", label="unscored", lang="de", duplicates=False,
                     author="Pat", conversation="c 1/2", q="great stuff", start=datetime(2026, 11, 1, 12, tzinfo=timezone.utc),
                     end=datetime(2026, 11, 2, tzinfo=timezone.utc))
    assert StreamFilter.from_query(f.to_query()) == f
    assert StreamFilter.from_query({}) == StreamFilter()
    assert StreamFilter.from_query({"start": "2026-11-01T12:00+01:00"}).start == \
        datetime(2026, 11, 1, 11, tzinfo=timezone.utc)
    for params, field in (({"label": "ecstatic"}, "label"), ({"duplicates": "maybe"}, "duplicates"),
                          ({"start": "yesterday"}, "start"), ({"q": "x" * 201}, "q"),
                          ({"q": " ".join("abcdefghij")}, "q"),
                          ({"start": "2026-11-02", "end": "2026-11-01"}, "start")):
        with pytest.raises(ValueError, match=f"^{field}:"):
            StreamFilter.from_query(params)
    for bad in ("", "x", "!!!", Cursor(datetime(2026, 1, 1), "s", "i", "b").encode()):  # naive time: not ours
        with pytest.raises(ValueError, match="^after:"):
            Cursor.decode(bad)


def test_a_rare_word_s_search_reads_on_page_by_page(store):
    """A page reads at most 21 days back; one cut short there says where to go on."""
    first = stream_page(store, StreamFilter(q="ancient"), now=NOW)
    assert first.mentions == [] and first.next is not None and first.next.id == ""
    assert first.next.created_at == first.scanned_from
    assert first.next.created_at == NOW + timedelta(microseconds=1) - timedelta(days=21, hours=6)  # end: now, inclusive
    pages, after = [first], first.next
    while after is not None:  # each page reads 21 more days: 60 days back is the third
        pages.append(stream_page(store, StreamFilter(q="ancient"), now=NOW, after=after))
        after = pages[-1].next
    assert [[m.id for m in p.mentions] for p in pages] == [[], [], ["old-1"]]


def test_an_empty_database_has_an_empty_stream(tmp_path: Path):
    with Store.open(tmp_path / "empty.duckdb") as empty:
        page = stream_page(empty, StreamFilter(q="x"), now=NOW)
    assert page.mentions == [] and page.next is None


@pytest.mark.parametrize("f", [StreamFilter(brand="Acme", start=AS_OF - timedelta(hours=8)),
                               StreamFilter(q="acme", source="mastodon")], ids=["ties", "search"])
def test_newer_than_gives_what_arrived_since_the_page_s_newest(store, f):
    page = stream_page(store, f, now=NOW)
    keys = [(m.source, m.id, m.brand) for m in page.mentions]
    ties = [n for n, m in enumerate(page.mentions) if m.id.startswith("tie-")]
    for k in sorted({1, 5, len(keys) - 1, *ties}):
        newest = page.mentions[k]
        since = Cursor(newest.created_at, newest.source, newest.id, newest.brand)
        newer = stream_page(store, f, now=NOW, newer_than=since)
        assert [(m.source, m.id, m.brand) for m in newer.mentions] == keys[:k], k
    assert stream_page(store, f, now=NOW, newer_than=page.top).mentions == []


def test_the_brands_own_posts_fill_their_place_in_a_page(tmp_path):
    """A page counts the brand's replies among its mentions and shows them: a page cut
    to the limit is full, not short by the replies and still offering a next page."""
    at = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
    posts = [Mention(source="x", id=str(i), brand="Acme", created_at=at + timedelta(minutes=i),
                     text=f"Acme reply {i}" if i % 2 else f"Acme question {i}?", author="acme" if i % 2 else f"u{i}",
                     conversation_id="t", own=bool(i % 2)) for i in range(6)]
    with Store.open(tmp_path / "own.duckdb") as store:
        store.save_batch(posts, VaderScorer().score([m.text for m in posts]), source="x", brand="Acme",
                         checkpoint=None, now=at, scorer="vader", scorer_version="3.3.2")
        page = stream_page(store, StreamFilter(brand="Acme"), now=at + timedelta(hours=1), limit=4)
    assert [m.id for m in page.mentions] == ["5", "4", "3", "2"] and page.next is not None
