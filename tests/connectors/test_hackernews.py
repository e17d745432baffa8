"""The Hacker News connector through requests against a fake Algolia API on 127.0.0.1."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from analysis.sentiment import VaderScorer
from connectors.base import Batch, BrandQuery
from connectors.errors import FatalError, MalformedPayloadError, QueryError, RateLimitedError, RetryableError
from connectors.hackernews import SETTINGS, HackerNewsConnector, create, mention_from_hit, search_terms
from connectors.retry import RetryPolicy
from listener.pipeline import Pipeline
from tests.conftest import T0, FixedClock
from tests.fakes.hn_api import PATH, FakeAlgolia, comment, story
from tests.fakes.http import FakeServer, Reply, Sleeps
from tests.timing import PEER_TIMEOUT

NOW = int(T0.timestamp())
HOUR = 3600
QUERY = BrandQuery("Brewly", terms=("brewly",))


def connector(server: FakeServer, clock: FixedClock, sleeps: Sleeps, **settings) -> HackerNewsConnector:
    settings.setdefault("timeout_seconds", PEER_TIMEOUT)
    return create({"base_url": server.url, **settings}, clock,
                  retry=RetryPolicy(attempts=3, base_delay=1.0, max_delay=30.0, sleep=sleeps))


def searches(server: FakeServer) -> list[dict[str, str]]:
    return [{k: v[-1] for k, v in r.query.items()} for r in server.requests if r.path == PATH]


def window(params: dict[str, str]) -> tuple[int, int]:
    lo, hi = params["numericFilters"].split(",")
    assert lo.startswith("created_at_i>=") and hi.startswith("created_at_i<")
    return int(lo.split(">=")[1]), int(hi.split("<")[1])


def test_stories_and_comments_are_mapped_with_their_thread(server, clock, sleeps):
    FakeAlgolia([
        story(100, NOW - 5 * HOUR, "Show HN: Brewly, a kettle that tweets", url="https://brewly.example/",
              text="We built it &amp; love it.<p>Second &#x27;para&#x27;<script>x()</script>", points=42, comments=3),
        story(101, NOW - 4 * HOUR, "Ask HN: is Brewly any good?", author="asker"),
        comment(102, NOW - 3 * HOUR, "I <i>hate</i> my Brewly.<p>It leaks &gt; daily.", story_id=100, parent_id=100),
    ]).install(server)
    batches = list(connector(server, clock, sleeps).fetch(QUERY, None))
    mentions = {m.id: m for b in batches for m in b.mentions}
    assert set(mentions) == {"100", "101", "102"}
    show = mentions["100"]
    assert show.text == "Show HN: Brewly, a kettle that tweets\n\nWe built it & love it.\n\nSecond 'para'"
    assert show.url == "https://brewly.example/"
    assert (show.source, show.brand, show.author) == ("hackernews", "Brewly", "pg")
    assert show.created_at == datetime.fromtimestamp(NOW - 5 * HOUR, tz=timezone.utc)
    assert show.created_at.tzinfo is timezone.utc
    assert dict(show.metrics) == {"likes": 42, "replies": 3}
    assert (show.conversation_id, show.parent_id, show.lang, show.thread_context) == ("100", None, None, False)
    assert show.fetched_at == T0 and "_highlightResult" not in show.raw
    ask = mentions["101"]
    assert ask.text == "Ask HN: is Brewly any good?"
    assert ask.url == "https://news.ycombinator.com/item?id=101"
    reply = mentions["102"]
    assert reply.text == "I hate my Brewly.\n\nIt leaks > daily."
    assert (reply.conversation_id, reply.parent_id) == ("100", "100")
    assert reply.url == "https://news.ycombinator.com/item?id=102" and reply.author == "dang"
    assert dict(reply.metrics) == {}
    params = searches(server)[0]
    assert params["query"] == "brewly" and params["tags"] == "(story,comment)"
    assert params["hitsPerPage"] == "100" and params["page"] == "0"


def test_one_request_per_term_and_hits_merged_once(server, clock, sleeps):
    FakeAlgolia([
        story(1, NOW - HOUR, "Brewly and Kettle Co merge"),
        story(2, NOW - HOUR, "Kettle Co raises prices"),
        comment(3, NOW - HOUR, "#brewly forever", story_id=2),
    ]).install(server)
    query = BrandQuery("Brewly", terms=("brewly", "Kettle Co", "BREWLY"), hashtags=("#brewly",), handles=("@brewly",))
    assert search_terms(query) == ("brewly", "Kettle Co")
    batches = list(connector(server, clock, sleeps, history_days=1, window_hours=24).fetch(query, None))
    ids = [m.id for b in batches for m in b.mentions]
    assert sorted(ids) == ["1", "2", "3"]
    assert [p["query"] for p in searches(server)] == ["brewly", "Kettle Co"]


def test_a_crowded_window_is_split_in_halves_until_every_hit_is_reachable(server, clock, sleeps):
    # 1,500 hits in one day: more than Algolia's 1,000-hit paging can reach in one query.
    hits = [comment(10_000 + i, NOW - 24 * HOUR + i * 50, f"brewly {i}", story_id=1) for i in range(1500)]
    FakeAlgolia(hits).install(server)
    hn = connector(server, clock, sleeps, history_days=1, window_hours=24)
    batches = list(hn.fetch(QUERY, None))
    ids = [m.id for b in batches for m in b.mentions]
    assert len(ids) == len(set(ids)) == 1500
    asked = [(window(p), p["page"]) for p in searches(server)]
    first_pages = [w for w, page in asked if page == "0"]
    assert first_pages[0] == (NOW - 24 * HOUR, NOW)
    assert (NOW - 24 * HOUR, NOW - 12 * HOUR) in first_pages and (NOW - 12 * HOUR, NOW) in first_pages
    assert len(set(asked)) == len(asked), "a page of a window was asked twice"
    assert hn.requests_made == len(asked) <= 25
    # Oldest first, each completed window checkpointing its end.
    checkpoints = [b.checkpoint["since"] for b in batches]
    assert checkpoints == sorted(checkpoints) and checkpoints[-1] == NOW - 10 * 60
    assert len(batches) >= 2
    assert all(m.created_at.timestamp() < b.checkpoint["since"] + 600 for b in batches for m in b.mentions)


def test_splitting_uses_nb_pages_reported_by_the_api(server, clock, sleeps):
    # A smaller paging limit than HN's: the connector must trust nbPages, not assume 1,000.
    hits = [story(i, NOW - 8 * HOUR + i * 60, f"Brewly {i}") for i in range(1, 46)]
    FakeAlgolia(hits, pagination_limit=20).install(server)
    batches = list(connector(server, clock, sleeps, history_days=1, hits_per_page=10).fetch(QUERY, None))
    assert sorted(int(m.id) for b in batches for m in b.mentions) == list(range(1, 46))


def test_the_request_cap_ends_the_run_at_the_last_complete_window_and_the_next_run_resumes(server, clock, sleeps):
    api = FakeAlgolia([story(i, NOW - (72 - i) * HOUR, f"Brewly day {i}") for i in range(0, 72, 6)])
    api.install(server)
    hn = connector(server, clock, sleeps, history_days=3, window_hours=24, max_requests_per_run=2)
    first = list(hn.fetch(QUERY, None))
    assert hn.requests_made == 2
    assert first[-1].checkpoint == {"since": NOW - 24 * HOUR}
    cursor = first[-1].checkpoint
    second = list(hn.fetch(QUERY, cursor))
    assert window(searches(server)[2]) == (NOW - 24 * HOUR, NOW)
    assert second[-1].checkpoint == {"since": NOW - 600}
    ids = [m.id for b in first + second for m in b.mentions]
    assert sorted(map(int, ids)) == list(range(0, 72, 6))


def test_a_second_run_reads_only_from_the_cursor(server, clock, sleeps):
    api = FakeAlgolia([story(1, NOW - 2 * HOUR, "Brewly one"), story(2, NOW - 3 * 60, "Brewly two")])
    api.install(server)
    hn = connector(server, clock, sleeps, history_days=1)
    first = list(hn.fetch(QUERY, None))
    assert sorted(m.id for b in first for m in b.mentions) == ["1", "2"]
    cursor = first[-1].checkpoint
    assert cursor == {"since": NOW - 600}, "the cursor stays reread_minutes behind the run start"
    clock.advance(hours=1)
    api.add(story(3, NOW + 30 * 60, "Brewly three"), story(4, NOW + 90 * 60, "Brewly from the future"))
    second = list(hn.fetch(QUERY, cursor))
    assert window(searches(server)[-1]) == (NOW - 600, NOW + HOUR)
    assert sorted(m.id for b in second for m in b.mentions) == ["2", "3"]
    assert second[-1].checkpoint == {"since": NOW + HOUR - 600}


def test_a_cursor_ahead_of_the_clock_restarts_at_the_run_start(server, clock, sleeps):
    FakeAlgolia([]).install(server)
    batches = list(connector(server, clock, sleeps).fetch(QUERY, {"since": NOW + 5000}))
    assert batches == [Batch((), {"since": NOW}, 0)]
    assert searches(server) == []
    with pytest.raises(FatalError):
        list(connector(server, clock, sleeps).fetch(QUERY, {"until": "yesterday"}))


def test_429_waits_for_retry_after_then_goes_on(server, clock, sleeps):
    FakeAlgolia([story(1, NOW - HOUR, "Brewly")]).install(
        server, Reply(429, {"message": "Too many requests"}, headers={"Retry-After": "7"}))
    batches = list(connector(server, clock, sleeps, history_days=1).fetch(QUERY, None))
    assert [m.id for b in batches for m in b.mentions] == ["1"]
    assert sleeps == [7.0]
    assert len(searches(server)) == 2


def test_a_retry_after_beyond_the_cap_ends_the_run_at_once(server, clock, sleeps):
    server.route("GET", PATH, Reply(429, {"message": "slow down"}, headers={"Retry-After": "3600"}))
    with pytest.raises(RateLimitedError) as caught:
        list(connector(server, clock, sleeps).fetch(QUERY, None))
    assert caught.value.retry_after == 3600 and sleeps == [] and len(server.requests) == 1


def test_500_forever_raises_retryable_after_the_capped_attempts(server, clock, sleeps):
    server.route("GET", PATH, Reply(500, {"message": "oops"}))
    with pytest.raises(RetryableError) as caught:
        list(connector(server, clock, sleeps).fetch(QUERY, None))
    assert "HTTP 500" in str(caught.value)
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_malformed_json_is_retried_and_a_timeout_is_retryable(server, clock, sleeps):
    FakeAlgolia([story(1, NOW - HOUR, "Brewly")]).install(server, Reply(200, "<html>gateway</html>"),
                                                        Reply(200, {"no": "hits"}))
    batches = list(connector(server, clock, sleeps, history_days=1).fetch(QUERY, None))
    assert [m.id for b in batches for m in b.mentions] == ["1"] and len(sleeps) == 2

    server.route("GET", PATH, Reply(200, {"hits": []}, delay=0.6))
    with pytest.raises(RetryableError) as caught:
        list(create({"base_url": server.url, "timeout_seconds": 0.2}, clock,
                    retry=RetryPolicy(attempts=1, sleep=sleeps)).fetch(QUERY, None))
    assert "Timeout" in str(caught.value) and caught.value.__cause__ is not None


def test_other_4xx_is_fatal(server, clock, sleeps):
    server.route("GET", PATH, Reply(400, {"message": "invalid numericFilters", "status": 400}))
    with pytest.raises(FatalError, match="invalid numericFilters"):
        list(connector(server, clock, sleeps).fetch(QUERY, None))
    assert len(server.requests) == 1


def test_a_malformed_hit_is_skipped_and_counted_once(server, clock, sleeps, caplog):
    no_title = story(8, NOW - HOUR, "", url="https://brewly.example/")
    no_id = story(9, NOW - HOUR, "Brewly")
    del no_id["objectID"]
    FakeAlgolia([story(1, NOW - HOUR, "Brewly fine"), no_title, no_id, "not an object"]).install(server)
    # Two terms: every malformed hit is served twice but counted once.
    query = BrandQuery("Brewly", terms=("brewly", "brew"))
    with caplog.at_level(logging.WARNING, "listener.connectors.hackernews"):
        batches = list(connector(server, clock, sleeps, history_days=1).fetch(query, None))
    assert [m.id for b in batches for m in b.mentions] == ["1"]
    assert sum(b.skipped for b in batches) == 3
    assert "skipped a hit" in caplog.text


@pytest.mark.parametrize("change", [
    {"created_at_i": "1700000000"}, {"created_at_i": 10**20}, {"objectID": "abc"},
    {"_tags": ["comment"], "comment_text": "<p></p>"},
])
def test_mapping_refuses_hits_without_what_a_mention_needs(change):
    with pytest.raises(MalformedPayloadError):
        mention_from_hit(dict(story(1, NOW, "Brewly"), **change), "Brewly")


def test_a_query_without_terms_is_refused():
    with pytest.raises(QueryError):
        search_terms(BrandQuery("Brewly", exclude=("coffee",)))


def test_settings_are_validated_all_at_once():
    assert {"base_url", "history_days", "hits_per_page", "max_requests_per_run"} <= set(SETTINGS)
    with pytest.raises(ValueError) as caught:
        create({"hits_per_page": 5000, "window_hours": 0, "base_url": "ftp://x", "timeout_seconds": -1},
               FixedClock())
    message = str(caught.value)
    assert all(key in message for key in ("hits_per_page", "window_hours", "base_url", "timeout_seconds"))
    assert create({}, FixedClock()).hits_per_page == 100


def test_two_pipeline_runs_store_each_served_item_once(server, store, clock, sleeps):
    api = FakeAlgolia([
        story(1, NOW - 30 * HOUR, "Brewly launches a kettle", points=10, comments=2),
        comment(2, NOW - 29 * HOUR, "Love my Brewly, great tea", story_id=1),
        comment(3, NOW - 28 * HOUR, "Brewlyish design, terrible", story_id=1, parent_id=2),  # prefix hit, rejected locally
        story(4, NOW - 5 * 60, "Brewly outage today"),
    ])
    api.install(server)
    pipeline = Pipeline(store, VaderScorer(), clock)
    hn = connector(server, clock, sleeps, history_days=2, window_hours=12)
    first = pipeline.pull(hn, QUERY)
    assert (first.fetched, first.new, first.rejected) == (4, 3, 1)
    clock.advance(hours=2)
    api.add(comment(5, NOW + HOUR, "brewly support fixed it, awful wait though", story_id=4))
    second = pipeline.pull(hn, QUERY)
    assert (second.new, second.duplicates) == (1, 1), "story 4 is read again in the overlap, stored once"
    with store.native() as db:
        rows = db.execute("SELECT id, count(*) FROM mentions WHERE source = 'hackernews' GROUP BY id ORDER BY id").fetchall()
        scored = db.execute("SELECT count(*) FROM scores WHERE source = 'hackernews'").fetchone()[0]
    assert rows == [("1", 1), ("2", 1), ("4", 1), ("5", 1)] and scored == 4
    assert store.get_cursor("hackernews", "Brewly") == {"since": NOW + 2 * HOUR - 600}
