"""The feeds connector through requests and feedparser against feeds served on 127.0.0.1."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from analysis.sentiment import VaderScorer
from connectors import feeds
from connectors.base import Batch, BrandQuery
from connectors.errors import FatalError, RetryableError
from connectors.feeds import FeedsConnector, create
from connectors.retry import RetryPolicy
from listener.pipeline import Pipeline
from tests.conftest import T0, FixedClock
from tests.fakes.http import FakeServer, Reply, Request, Sleeps
from tests.timing import PEER_TIMEOUT

QUERY = BrandQuery("Brewly", terms=("brewly",), exclude=("giveaway",))
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}


def rss_item(guid: str, title: str, description: str = "", *, at: datetime | None = None,
             link: str | None = None, author: str | None = None, extra: str = "") -> str:
    # feedparser resolves a permalink guid against the feed URL; a bare one must say it is not.
    permalink = "" if ":" in guid else ' isPermaLink="false"'
    parts = [f"<title>{title}</title>", f"<guid{permalink}>{guid}</guid>"]
    if link:
        parts.append(f"<link>{link}</link>")
    if description:
        parts.append(f"<description>{description}</description>")
    if at:
        parts.append(f"<pubDate>{format_datetime(at, usegmt=True)}</pubDate>")
    if author:
        parts.append(f"<dc:creator>{author}</dc:creator>")
    return "<item>" + "".join(parts) + extra + "</item>"


def rss(*items: str, language: str = "en-us") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f"<channel><title>Tea news</title><link>https://tea.example/</link><language>{language}</language>"
            + "".join(items) + "</channel></rss>")


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
  <title>Kettle blog</title><id>urn:uuid:feed</id><updated>2026-11-01T08:00:00Z</updated>
  <entry>
    <id>tag:kettle.example,2026:post-1</id>
    <title type="html">Brewly &amp;amp; friends &amp;lt;3</title>
    <link href="/posts/1"/>
    <updated>2026-11-01T07:30:00Z</updated>
    <author><name>Cy</name><email>cy@kettle.example</email></author>
    <summary>short</summary>
    <content type="html">&lt;p&gt;Para one about Brewly.&lt;/p&gt;&lt;p&gt;Two &amp;amp; three&lt;/p&gt;</content>
  </entry>
  <entry>
    <id>tag:kettle.example,2026:post-2</id>
    <title>Unrelated</title><updated>2026-11-01T06:00:00Z</updated>
    <content type="text">Nothing to see</content>
  </entry>
</feed>"""


@dataclass
class Feed:
    """One feed resource with validators: 304 when the client's ETag or date is current."""

    body: str
    etag: str = '"v1"'
    modified: datetime = T0 - timedelta(hours=1)
    headers: dict[str, str] = field(default_factory=lambda: dict(RSS_TYPE))

    def update(self, body: str) -> None:
        self.body = body
        self.etag = f'"v{int(self.etag.strip(chr(34))[1:]) + 1}"'
        self.modified += timedelta(minutes=30)

    def __call__(self, request: Request) -> Reply:
        validators = {"ETag": self.etag, "Last-Modified": format_datetime(self.modified, usegmt=True)}
        if request.headers.get("if-none-match") == self.etag:
            return Reply(304, b"", headers=validators)
        return Reply(200, self.body.encode(), headers={**self.headers, **validators})


def connector(server: FakeServer, clock: FixedClock, *paths: str, sleeps: Sleeps | None = None,
              **settings) -> FeedsConnector:
    return create({"urls": [server.url + p for p in paths], "timeout_seconds": PEER_TIMEOUT, **settings}, clock,
                  retry=RetryPolicy(attempts=2, sleep=sleeps if sleeps is not None else Sleeps()))


def all_mentions(batches):
    return [m for b in batches for m in b.mentions]


def test_entries_are_matched_locally_and_mapped(server, clock):
    published = T0 - timedelta(hours=3)
    server.route("GET", "/rss", Feed(rss(
        rss_item("https://tea.example/p/1", "Brewly launches a kettle", "&lt;p&gt;It is &lt;b&gt;great&lt;/b&gt;"
                 " &amp;amp; cheap&lt;/p&gt;&lt;p&gt;Really.&lt;/p&gt;", at=published,
                 link="https://tea.example/p/1", author="Ann"),
        rss_item("https://tea.example/p/2", "Kettle roundup", "&lt;p&gt;We also tried brewly.&lt;/p&gt;",
                 at=published, link="https://tea.example/p/2"),
        rss_item("https://tea.example/p/3", "Unrelated tea news", "nothing here", at=published),
        rss_item("https://tea.example/p/4", "Brewly giveaway!", "win", at=published),
        rss_item("https://tea.example/p/5", "Brewlyish design", "not the brand", at=published),
    )))
    batches = list(connector(server, clock, "/rss").fetch(QUERY, None))
    mentions = {m.id: m for m in all_mentions(batches)}
    assert sorted(mentions) == ["https://tea.example/p/1", "https://tea.example/p/2"]
    first = mentions["https://tea.example/p/1"]
    assert first.text == "Brewly launches a kettle\n\nIt is great & cheap\n\nReally."
    assert (first.source, first.brand, first.author, first.url) == ("feeds", "Brewly", "Ann", "https://tea.example/p/1")
    assert first.created_at == published and first.fetched_at == T0
    assert (first.conversation_id, first.parent_id, first.lang) == (first.id, None, "en-us")
    assert first.raw["feed"] == server.url + "/rss"
    assert mentions["https://tea.example/p/2"].text == "Kettle roundup\n\nWe also tried brewly."
    assert batches[-1].skipped == 0


def test_atom_entries_use_content_updated_time_and_resolve_links(server, clock):
    server.route("GET", "/atom", Feed(ATOM, headers={"Content-Type": "application/atom+xml"}))
    [mention] = all_mentions(connector(server, clock, "/atom").fetch(QUERY, None))
    assert mention.id == "tag:kettle.example,2026:post-1"
    assert mention.text == "Brewly & friends <3\n\nPara one about Brewly.\n\nTwo & three"
    assert mention.created_at == datetime(2026, 11, 1, 7, 30, tzinfo=timezone.utc)
    assert mention.author == "Cy" and mention.lang == "en"
    assert mention.url == server.url + "/posts/1"


def test_hostile_markup_becomes_plain_text_and_scripts_do_not_match(server, clock):
    hostile = ("&lt;script&gt;document.write('Brewly')&lt;/script&gt;&lt;style&gt;.brewly{}&lt;/style&gt;"
               "&lt;img src=x onerror=alert(1)&gt;&lt;iframe src=https://evil.example&gt;&lt;/iframe&gt;"
               "I typed &amp;lt;b&amp;gt; literally")
    server.route("GET", "/rss", Feed(rss(
        rss_item("urn:x:1", "Tea", hostile),
        rss_item("urn:x:2", "Brewly review", hostile + " &amp;eacute; caf&amp;eacute;"),
    )))
    [mention] = all_mentions(connector(server, clock, "/rss").fetch(QUERY, None))
    assert mention.id == "urn:x:2"
    assert mention.text == "Brewly review\n\nI typed <b> literally é café"


def test_entries_without_a_date_get_the_fetch_time_once_and_bare_guids_are_namespaced(server, clock):
    server.route("GET", "/rss", Feed(rss(rss_item("17", "Brewly undated"),
                                         rss_item("18", "Brewly in the future", at=T0 + timedelta(days=2)))))
    hub = connector(server, clock, "/rss")
    first = list(hub.fetch(QUERY, None))
    assert {m.id: m.created_at for m in all_mentions(first)} == {
        server.url + "/rss#17": T0, server.url + "/rss#18": T0}
    clock.advance(hours=1)
    server.routes[("GET", "/rss")][0].etag = '"changed"'  # the feed answers 200 again
    assert all_mentions(hub.fetch(QUERY, first[-1].checkpoint)) == [], "seen entries are not emitted again"


def test_etag_and_last_modified_come_back_and_304_means_nothing_new(server, clock):
    feed = Feed(rss(rss_item("urn:x:1", "Brewly one", at=T0 - timedelta(hours=2))))
    server.route("GET", "/rss", feed)
    url = server.url + "/rss"
    hub = connector(server, clock, "/rss")
    first = list(hub.fetch(QUERY, None))
    assert [m.id for m in all_mentions(first)] == ["urn:x:1"]
    cursor = first[-1].checkpoint
    assert cursor == {"feeds": {url: {"etag": '"v1"', "modified": format_datetime(feed.modified, usegmt=True),
                                      "seen": ["urn:x:1"]}}}
    assert "if-none-match" not in server.requests[0].headers

    second = list(hub.fetch(QUERY, cursor))
    sent = server.requests[-1].headers
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == cursor["feeds"][url]["modified"]
    assert all_mentions(second) == [] and second[-1].checkpoint == cursor and second[-1].skipped == 0

    feed.update(rss(rss_item("urn:x:2", "Brewly two", at=T0), rss_item("urn:x:1", "Brewly one", at=T0 - timedelta(hours=2))))
    third = list(hub.fetch(QUERY, second[-1].checkpoint))
    assert [m.id for m in all_mentions(third)] == ["urn:x:2"]
    assert third[-1].checkpoint["feeds"][url]["etag"] == '"v2"'
    assert third[-1].checkpoint["feeds"][url]["seen"] == ["urn:x:2", "urn:x:1"]


def test_a_failing_feed_does_not_stop_the_others(server, clock, caplog):
    server.route("GET", "/slow", Reply(200, rss().encode(), headers=RSS_TYPE, delay=0.6))
    server.route("GET", "/broken", Reply(500, b"oops", headers={"Content-Type": "text/plain"}))
    server.route("GET", "/html", Reply(200, b"<html><body>Brewly login page</body></html>",
                                       headers={"Content-Type": "text/html"}))
    server.route("GET", "/gone", Reply(404, b"not found", headers={"Content-Type": "text/plain"}))
    server.route("GET", "/good", Feed(rss(rss_item("urn:x:1", "Brewly still works"))))
    sleeps = Sleeps()
    old_state = {"etag": '"old"', "modified": None, "seen": ["urn:old"]}
    since = {"feeds": {server.url + "/broken": old_state, server.url + "/removed": old_state}}
    with caplog.at_level(logging.WARNING, "listener.connectors.feeds"):
        batches = list(connector(server, clock, "/slow", "/broken", "/html", "/gone?key=s3cr3t", "/good",
                                 sleeps=sleeps, timeout_seconds=0.3).fetch(QUERY, since))
    assert [m.id for m in all_mentions(batches)] == ["urn:x:1"]
    assert [b.skipped for b in batches] == [1, 1, 1, 1, 0]
    assert len(sleeps) == 2, "the timeout and the 500 are retried once each, the 404 and the HTML page not"
    assert caplog.text.count("skipped the feed") == 4
    assert "s3cr3t" not in caplog.text, "a feed URL's query string may hold a token: never logged"
    final = batches[-1].checkpoint["feeds"]
    assert final[server.url + "/broken"] == old_state, "a failed feed keeps its state"
    assert server.url + "/removed" not in final and set(final) == {server.url + "/broken", server.url + "/good"}
    # Every feed's batch checkpoints the cursor so far.
    assert all(b.checkpoint is not None for b in batches)


def test_a_malformed_feed_still_gives_what_parsed(server, clock, caplog):
    broken = rss(rss_item("urn:x:1", "Brewly &bogus; entity"), rss_item("urn:x:2", "Brewly second")).replace(
        "</channel></rss>", "<item><title>Brewly unclosed")
    server.route("GET", "/bozo", Reply(200, broken.encode(), headers=RSS_TYPE))
    with caplog.at_level(logging.WARNING, "listener.connectors.feeds"):
        batches = list(connector(server, clock, "/bozo").fetch(QUERY, None))
    assert {m.id for m in all_mentions(batches)} >= {"urn:x:1", "urn:x:2"}
    assert "is malformed" in caplog.text


def test_entries_without_id_or_link_are_skipped_and_counted(server, clock):
    server.route("GET", "/rss", Feed(rss("<item><title>Brewly nameless</title></item>",
                                         rss_item("urn:x:1", "Brewly named"))))
    [batch] = list(connector(server, clock, "/rss").fetch(QUERY, None))
    assert [m.id for m in batch.mentions] == ["urn:x:1"] and batch.skipped == 1


def test_entries_per_feed_and_the_seen_list_are_bounded(server, clock):
    items = [rss_item(f"urn:x:{i}", f"Brewly {i}") for i in range(10)]
    feed = Feed(rss(*items))
    server.route("GET", "/rss", feed)
    hub = connector(server, clock, "/rss", max_entries_per_feed=3)
    first = list(hub.fetch(QUERY, None))
    assert [m.id for m in all_mentions(first)] == ["urn:x:0", "urn:x:1", "urn:x:2"]
    feed.update(rss(*[rss_item(f"urn:x:{i}", f"Brewly {i}") for i in range(10, 14)], *items))
    second = list(hub.fetch(QUERY, first[-1].checkpoint))
    assert [m.id for m in all_mentions(second)] == ["urn:x:10", "urn:x:11", "urn:x:12"]
    assert second[-1].checkpoint["feeds"][server.url + "/rss"]["seen"] == [
        "urn:x:10", "urn:x:11", "urn:x:12", "urn:x:0", "urn:x:1", "urn:x:2"]


def test_an_oversized_feed_is_refused(server, clock, monkeypatch):
    monkeypatch.setattr(feeds, "MAX_FEED_BYTES", 500)
    server.route("GET", "/big", Reply(200, rss(*[rss_item(f"urn:x:{i}", "Brewly") for i in range(50)]).encode(),
                                      headers=RSS_TYPE))
    batches = connector(server, clock, "/big").fetch(QUERY, None)
    batch = next(batches)
    assert batch.mentions == () and batch.skipped == 1
    # The only feed failed: the run fails (an outage, not a quiet hour), naming why.
    with pytest.raises(RetryableError, match="every feed failed.*larger than 500 bytes"):
        next(batches)


def test_settings_are_validated(caplog):
    with caplog.at_level(logging.WARNING, "listener.connectors.feeds"):
        empty = create({}, FixedClock())
    assert "no feed URLs" in caplog.text
    assert list(empty.fetch(QUERY, None)) == [Batch((), {"feeds": {}}, 0)]
    with pytest.raises(ValueError) as caught:
        create({"urls": ["file:///etc/passwd", "https://ok.example/feed"], "max_entries_per_feed": 0,
                "timeout_seconds": 0}, FixedClock())
    assert all(word in str(caught.value) for word in ("file:///etc/passwd", "max_entries_per_feed", "timeout_seconds"))
    hub = create({"urls": ("https://a.example/f", "https://a.example/f")}, FixedClock())
    assert hub.urls == ("https://a.example/f",)
    with pytest.raises(FatalError):
        list(hub.fetch(QUERY, {"feeds": ["not", "a", "dict"]}))


def test_two_pipeline_runs_store_each_matched_entry_once(server, store, clock):
    feed_a = Feed(rss(rss_item("https://a.example/1", "Brewly is wonderful", at=T0 - timedelta(hours=5)),
                      rss_item("7", "Brewly undated and awful"),
                      rss_item("https://a.example/2", "Other news")))
    feed_b = Feed(ATOM, headers={"Content-Type": "application/atom+xml"})
    server.route("GET", "/a", feed_a)
    server.route("GET", "/b", feed_b)
    pipeline = Pipeline(store, VaderScorer(), clock)
    hub = connector(server, clock, "/a", "/b")
    first = pipeline.pull(hub, QUERY)
    assert (first.new, first.skipped) == (3, 0)
    clock.advance(hours=1)
    feed_a.update(rss(rss_item("https://a.example/3", "Brewly again, lovely", at=T0 + timedelta(minutes=30)),
                      rss_item("https://a.example/1", "Brewly is wonderful", at=T0 - timedelta(hours=5)),
                      rss_item("7", "Brewly undated and awful")))
    second = pipeline.pull(hub, QUERY)
    assert (second.fetched, second.new) == (1, 1)
    assert server.requests[-1].headers.get("if-none-match") == '"v1"', "feed b answered 304"
    with store.native() as db:
        rows = db.execute("SELECT id, count(*) FROM mentions WHERE source = 'feeds' GROUP BY id ORDER BY id").fetchall()
    assert rows == [(server.url + "/a#7", 1), ("https://a.example/1", 1), ("https://a.example/3", 1),
                    ("tag:kettle.example,2026:post-1", 1)]
