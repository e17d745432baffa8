"""The Mastodon connector through the real Mastodon.py, against fake instances on 127.0.0.1
(tests/fakes/mastodon_api.py). Sleep is injected: nothing here waits for real, except
one deliberate client timeout."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta, timezone
from typing import Any

import pytest

from analysis.sentiment import VaderScorer
from connectors.base import Batch, BrandQuery, Cursor, Mention
from connectors.errors import AuthError, FatalError, QueryError, RetryableError
from connectors.html_text import html_to_text
from connectors.mastodon import (
    LATE_ARRIVAL_MARGIN,
    SETTINGS,
    MastodonConnector,
    create,
    hashtags_for,
    normalize_instance_url,
    search_queries,
)
from connectors.retry import RetryPolicy
from listener.pipeline import Pipeline
from tests.conftest import T0
from tests.fakes.http import Reply
from tests.fakes.mastodon_api import FakeMastodon, snowflake
from tests.timing import PEER_TIMEOUT

ACME = BrandQuery("Acme", terms=("acme",))
TAG_PATH = "/api/v1/timelines/tag/acme"
TAGGED = ('<p>I love <a href="https://one.example/tags/acme" class="mention hashtag" rel="tag">'
          "#<span>acme</span></a></p>")


class Recorder:
    """The injected sleep: records instead of waiting."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def make(clock, *fakes: FakeMastodon, sleep: Recorder | None = None, env: dict[str, str] | None = None,
         attempts: int = 3, **settings: Any) -> MastodonConnector:
    retry = RetryPolicy(attempts=attempts, sleep=sleep or Recorder())
    return create({"instances": [f.url for f in fakes], "timeout_seconds": PEER_TIMEOUT, **settings}, clock, env or {},
                  retry=retry)


class Result:
    def __init__(self, batches: list[Batch], error: Exception | None = None) -> None:
        self.batches = batches
        self.error = error

    @property
    def mentions(self) -> list[Mention]:
        return [m for b in self.batches for m in b.mentions]

    @property
    def by_text(self) -> dict[str, Mention]:
        return {m.text: m for m in self.mentions}

    @property
    def cursor(self) -> Cursor | None:
        saved = [b.checkpoint for b in self.batches if b.checkpoint is not None]
        return saved[-1] if saved else None

    @property
    def skipped(self) -> int:
        return sum(b.skipped for b in self.batches)


def run(connector: MastodonConnector, since: Cursor | None = None, query: BrandQuery = ACME) -> Result:
    """Every batch of one fetch; an error at the end is kept, not raised."""
    batches: list[Batch] = []
    iterator: Iterator[Batch] = connector.fetch(query, since)
    try:
        for batch in iterator:
            batches.append(batch)
    except Exception as exc:  # noqa: BLE001 - the tests look at it
        return Result(batches, exc)
    return Result(batches)


@pytest.fixture
def one() -> Iterator[FakeMastodon]:
    with FakeMastodon("one.example") as fake:
        yield fake


@pytest.fixture
def two() -> Iterator[FakeMastodon]:
    with FakeMastodon("two.example", offset=7) as fake:
        yield fake


# -- mapping --------------------------------------------------------------------------------


def test_a_status_maps_to_a_mention_with_plain_text(one, clock):
    status = one.post(
        T0 - timedelta(hours=1),
        '<p>Love <a href="https://one.example/tags/acme" class="mention hashtag" rel="tag">#<span>acme</span></a> '
        "&amp; caf&eacute; &lt;b&gt;</p><p>second<br>line</p><script>alert('pwned')</script>",
        tags=["acme"], spoiler_text="coffee talk", likes=3, reblogs=2, language="de")
    result = run(make(clock, one))
    assert result.error is None
    [mention] = result.mentions
    assert mention.text == "coffee talk\n\nLove #acme & café <b>\n\nsecond\nline"
    assert "pwned" not in mention.text
    assert mention.source == "mastodon" and mention.brand == "Acme"
    assert mention.id == status["uri"] == mention.conversation_id
    assert mention.url == status["url"]
    assert mention.author == "alice@one.example"
    assert mention.created_at == T0 - timedelta(hours=1)
    assert mention.created_at.tzinfo is timezone.utc
    assert mention.lang == "de"
    assert dict(mention.metrics) == {"likes": 3, "reposts": 2, "replies": 0}
    assert mention.parent_id is None and mention.thread_context is False
    assert mention.fetched_at == T0
    assert mention.raw["id"] == status["id"] and mention.raw["created_at"].startswith("2026-11-01T09:00:00")


@pytest.mark.parametrize(("html", "text"), [
    ("<p>one</p><p>two</p>", "one\n\ntwo"),
    ("a<br>b<br/>c", "a\nb\nc"),
    ("<p>x &amp; y &#39;z&#39; &quot;q&quot;</p>", "x & y 'z' \"q\""),
    ("<p>ok</p><script>document.cookie</script><style>p{}</style><p>end</p>", "ok\n\nend"),
    ("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>", "<script>alert(1)</script>"),
    ("<p>unclosed <script>never shown", "unclosed"),
    ('<a href="https://x.example/long"><span class="invisible">https://</span>'
     '<span class="ellipsis">x.example/lo</span><span class="invisible">ng</span></a>', "https://x.example/long"),
    ("<p>spaced\n   out\ttext</p>", "spaced out text"),
])
def test_html_to_text(html, text):
    assert html_to_text(html) == text


def test_hashtags_and_search_queries_come_from_the_query():
    query = BrandQuery("Acme", terms=("Acme Co", "acme"), hashtags=("#AcmeLove", "#acme_fans"))
    assert hashtags_for(query) == ("acmelove", "acme_fans", "acmeco", "acme")
    assert search_queries(query) == ('"Acme Co"', "acme")


def test_reblogs_are_left_out(one, clock):
    original = one.post(T0 - timedelta(hours=2), TAGGED, tags=["acme"], reblogs=1)
    one.post(T0 - timedelta(hours=1), "", author="bob", tags=["acme"], reblog_of=original)
    result = run(make(clock, one))
    assert [m.id for m in result.mentions] == [original["uri"]]


def test_a_malformed_status_is_skipped_and_counted(one, clock):
    one.post(T0 - timedelta(hours=3), TAGGED, tags=["acme"])
    one.add_raw("acme", "not a status", T0 - timedelta(hours=2))
    one.add_raw("acme", {"id": "5", "uri": "https://one.example/x", "created_at": "yesterday",
                         "content": "<p>#acme</p>", "account": {"acct": "x"}}, T0 - timedelta(hours=1))
    one.post(T0 - timedelta(minutes=30), "<p>#acme <b>again</b></p>", tags=["acme"], author="bob")
    result = run(make(clock, one))
    assert result.error is None
    assert result.skipped == 2
    assert sorted(m.text for m in result.mentions) == ["#acme again", "I love #acme"]


# -- instances and cursors ------------------------------------------------------------------------


def test_two_instances_serving_the_same_status_give_one_mention(one, two, clock):
    shared = one.post(T0 - timedelta(hours=2), TAGGED, tags=["acme"])
    seen_there = two.share(shared, tags=["acme"])
    only_two = two.post(T0 - timedelta(hours=1), "<p>#acme from two</p>", tags=["acme"], author="bob")
    assert seen_there["id"] != shared["id"] and seen_there["uri"] == shared["uri"]

    result = run(make(clock, one, two))
    assert sorted(m.id for m in result.mentions) == sorted([shared["uri"], only_two["uri"]])
    instances = result.cursor["instances"]
    assert instances[normalize_instance_url(one.url)]["tags"] == {"acme": shared["id"]}
    assert instances[normalize_instance_url(two.url)]["tags"] == {"acme": only_two["id"]}
    # The account as seen on the other instance carries its domain already.
    assert {m.author for m in result.mentions} == {"alice@one.example", "bob@two.example"}


def test_the_first_run_goes_back_history_days_and_the_next_polls_with_min_id(one, clock):
    one.post(T0 - timedelta(days=5), "<p>#acme old news</p>", tags=["acme"])
    two_days = one.post(T0 - timedelta(days=2), "<p>#acme two days ago</p>", tags=["acme"])
    last = one.post(T0 - timedelta(hours=1), "<p>#acme an hour ago</p>", tags=["acme"])
    connector = make(clock, one, history_days=3)
    first = run(connector)
    assert [m.id for m in first.mentions] == [last["uri"], two_days["uri"]]
    assert first.cursor["instances"][normalize_instance_url(one.url)]["tags"]["acme"] == last["id"]
    assert "min_id" not in one.requests_to(TAG_PATH)[0].query

    clock.advance(hours=1)
    newer = one.post(T0 + timedelta(minutes=30), "<p>#acme just now</p>", tags=["acme"], author="bob")
    before = len(one.requests_to(TAG_PATH))
    second = run(connector, first.cursor)
    [request] = one.requests_to(TAG_PATH)[before:]
    margin = int(LATE_ARRIVAL_MARGIN.total_seconds() * 1000) << 16
    assert request.query["min_id"] == [str(int(last["id"]) - margin)]
    # Only what is above the saved id (less the late-arrival margin) is read again.
    assert [m.id for m in second.mentions] == [newer["uri"], last["uri"]]
    assert second.cursor["instances"][normalize_instance_url(one.url)]["tags"]["acme"] == newer["id"]


def test_a_late_federated_post_below_the_saved_id_is_still_read(one, clock):
    last = one.post(T0 - timedelta(minutes=1), "<p>#acme latest</p>", tags=["acme"])
    connector = make(clock, one)
    first = run(connector)
    # Arrives after the first run, with an id from its (earlier) creation time.
    late = one.post(T0 - timedelta(minutes=4), "<p>#acme delivered late</p>", tags=["acme"], home="slow.example")
    assert int(late["id"]) < int(last["id"])
    second = run(connector, first.cursor)
    assert late["uri"] in {m.id for m in second.mentions}


def test_the_first_run_pages_back_through_link_next(one, clock):
    statuses = [one.post(T0 - timedelta(minutes=10 * i + 1), f"<p>#acme number {i}</p>", tags=["acme"])
                for i in range(100)]
    result = run(make(clock, one))
    assert len(result.mentions) == 100 and len({m.id for m in result.mentions}) == 100
    requests = one.requests_to(TAG_PATH)
    assert [r.query.get("max_id") for r in requests] == [None, [statuses[39]["id"]], [statuses[79]["id"]]]
    assert all(r.query["limit"] == ["40"] for r in requests)
    assert result.cursor["instances"][normalize_instance_url(one.url)]["tags"]["acme"] == statuses[0]["id"]


def test_a_backlog_is_read_oldest_first_over_several_runs_without_gaps(one, clock, caplog):
    one.post(T0 - timedelta(hours=5), "<p>#acme before</p>", tags=["acme"])
    connector = make(clock, one, max_pages_per_run=2)
    first = run(connector)
    clock.advance(hours=10)
    backlog = [one.post(T0 + timedelta(minutes=5 * i), f"<p>#acme backlog {i}</p>", tags=["acme"])
               for i in range(100)]

    seen: set[str] = set()
    cursor = first.cursor
    with caplog.at_level(logging.WARNING, logger="listener.connectors.mastodon"):
        second = run(connector, cursor)
    assert "page cap" in caplog.text
    requests = one.requests_to(TAG_PATH)[-2:]
    # The first page re-reads the saved post (the late-arrival margin) and 39 of the backlog;
    # the next starts at its Link rel="prev" min_id, the newest id of the page before.
    assert requests[1].query["min_id"] == [backlog[38]["id"]]
    assert second.cursor["instances"][normalize_instance_url(one.url)]["tags"]["acme"] == backlog[78]["id"]
    # Every page is checkpointed: the backlog is safe to resume from any page.
    assert [b.checkpoint is not None for b in second.batches[:2]] == [True, True]
    seen |= {m.id for m in second.mentions}
    third = run(connector, second.cursor)
    seen |= {m.id for m in third.mentions}
    assert {s["uri"] for s in backlog} <= seen
    assert third.cursor["instances"][normalize_instance_url(one.url)]["tags"]["acme"] == backlog[99]["id"]


def test_a_hashtag_the_instance_does_not_know_is_empty(one, clock):
    one.post(T0 - timedelta(hours=1), TAGGED, tags=["acme"])
    query = BrandQuery("Acme", terms=("acme",), hashtags=("#nosuchtag",))
    result = run(make(clock, one), query=query)
    assert result.error is None
    assert len(result.mentions) == 1
    assert one.requests_to("/api/v1/timelines/tag/nosuchtag")  # asked, answered 404
    assert "nosuchtag" not in result.cursor["instances"][normalize_instance_url(one.url)]["tags"]


def test_a_query_with_nothing_to_follow_is_refused(one, clock):
    result = run(make(clock, one), query=BrandQuery("Acme", handles=("@acme",)))
    assert isinstance(result.error, QueryError)


# -- threads ---------------------------------------------------------------------------------------


def test_replies_to_a_matched_post_come_as_thread_context(one, clock):
    root = one.post(T0 - timedelta(hours=3), TAGGED, tags=["acme"], replies=1)
    reply = one.post(T0 - timedelta(hours=2), "<p>Same here</p>", author="bob", reply_to=root, replies=1)
    deeper = one.post(T0 - timedelta(hours=1), "<p>Me too</p>", author="carol", reply_to=reply)
    question = one.post(T0 - timedelta(hours=4), "<p>Which coffee?</p>", author="eve")
    answer = one.post(T0 - timedelta(minutes=30), "<p>#acme of course</p>", tags=["acme"], author="dave",
                      reply_to=question)
    connector = make(clock, one)
    result = run(connector)
    by_id = {m.id: m for m in result.mentions}
    assert set(by_id) == {root["uri"], reply["uri"], deeper["uri"], answer["uri"]}  # not the question
    assert by_id[root["uri"]].thread_context is False
    assert by_id[reply["uri"]].thread_context and by_id[deeper["uri"]].thread_context
    assert {by_id[u].conversation_id for u in (root["uri"], reply["uri"], deeper["uri"])} == {root["uri"]}
    assert by_id[reply["uri"]].parent_id == root["uri"]
    assert by_id[deeper["uri"]].parent_id == reply["uri"]
    # A matched reply belongs to the thread of its root.
    assert by_id[answer["uri"]].conversation_id == question["uri"]
    assert by_id[answer["uri"]].parent_id == question["uri"]
    assert by_id[answer["uri"]].thread_context is False

    # A reply written after the run comes in on a later run: the thread is watched, and
    # checked again once it has waited as long as the post was old (3 h) at the last check.
    later = one.post(T0 + timedelta(minutes=20), "<p>Late to the party</p>", author="frank", reply_to=root)
    clock.advance(hours=1)
    assert later["uri"] not in {m.id for m in run(connector, result.cursor).mentions}
    clock.advance(hours=2)
    second = run(connector, result.cursor)
    [late] = [m for m in second.mentions if m.id == later["uri"]]
    assert late.thread_context and late.conversation_id == root["uri"] and late.parent_id == root["uri"]

    # Once the post is thread_watch_hours old its thread is not looked at any more.
    clock.advance(hours=21)
    before = len(one.requests_to(f"/api/v1/statuses/{root['id']}/context"))
    third = run(connector, second.cursor)
    assert len(one.requests_to(f"/api/v1/statuses/{root['id']}/context")) == before
    assert third.cursor["instances"][normalize_instance_url(one.url)]["threads"] == {}


def test_thread_lookups_are_bounded_per_run_and_deferred(one, clock):
    first_root = one.post(T0 - timedelta(hours=3), TAGGED, tags=["acme"], replies=1)
    first_reply = one.post(T0 - timedelta(hours=2, minutes=30), "<p>reply one</p>", author="bob",
                           reply_to=first_root)
    second_root = one.post(T0 - timedelta(hours=2), "<p>#acme again</p>", tags=["acme"], replies=1)
    second_reply = one.post(T0 - timedelta(hours=1), "<p>reply two</p>", author="carol", reply_to=second_root)
    replies = {first_reply["uri"], second_reply["uri"]}
    connector = make(clock, one, max_threads_per_run=1)
    result = run(connector)
    assert len([r for r in one.requests if r.path.endswith("/context")]) == 1
    got = replies & {m.id for m in result.mentions}
    assert len(got) == 1
    # The other thread is watched, and looked at on the next run.
    clock.advance(minutes=15)
    later = run(connector, result.cursor)
    assert replies - got <= {m.id for m in later.mentions}
    assert len([r for r in one.requests if r.path.endswith("/context")]) == 2


def test_back_filled_posts_older_than_the_watch_are_not_watched(one, clock):
    one.post(T0 - timedelta(days=2), TAGGED, tags=["acme"], replies=0)
    result = run(make(clock, one, thread_watch_hours=24))
    assert len(result.mentions) == 1
    assert result.cursor["instances"][normalize_instance_url(one.url)]["threads"] == {}


def test_no_thread_lookups_for_posts_the_brand_query_rejects(one, clock):
    other = one.post(T0 - timedelta(hours=2), "<p>#acme is terrible, buy elsewhere</p>", tags=["acme"], replies=1)
    one.post(T0 - timedelta(hours=1), "<p>indeed</p>", author="bob", reply_to=other)
    query = BrandQuery("Acme", terms=("acme",), exclude=("elsewhere",))
    result = run(make(clock, one), query=query)
    assert [m.id for m in result.mentions] == [other["uri"]]  # the pipeline rejects it
    assert not [r for r in one.requests if r.path.endswith("/context")]


def test_fetch_threads_off_reads_no_replies(one, clock):
    root = one.post(T0 - timedelta(hours=2), TAGGED, tags=["acme"], replies=1)
    one.post(T0 - timedelta(hours=1), "<p>reply</p>", author="bob", reply_to=root)
    result = run(make(clock, one, fetch_threads=False))
    assert [m.id for m in result.mentions] == [root["uri"]]
    assert not [r for r in one.requests if r.path.endswith("/context")]


# -- search ------------------------------------------------------------------------------------------


def test_search_needs_a_token_and_runs_on_the_token_instance_only(clock):
    with FakeMastodon("home.example", token="s3cret") as home, FakeMastodon("far.example", offset=3) as far:
        untagged = home.post(T0 - timedelta(hours=1), "<p>Acme coffee is great</p>", author="zoe")
        far.post(T0 - timedelta(hours=2), "<p>Acme on far</p>", tags=["acme"], author="yan")
        connector = make(clock, home, far, env={"MASTODON_TOKEN": "s3cret"}, access_token_env="MASTODON_TOKEN")
        first = run(connector)
        assert first.error is None
        assert untagged["uri"] in {m.id for m in first.mentions}
        assert not far.requests_to("/api/v2/search")
        assert all("authorization" not in r.headers for r in far.requests)  # the token stays home
        [search] = home.requests_to("/api/v2/search")
        assert search.headers["authorization"] == "Bearer s3cret"
        assert search.query["type"] == ["statuses"] and search.query["q"] == ["acme"]
        saved = first.cursor["instances"][normalize_instance_url(home.url)]["search"]
        assert saved == untagged["id"]

        clock.advance(hours=1)
        newer = home.post(T0 + timedelta(minutes=10), "<p>more Acme talk</p>", author="zoe")
        second = run(connector, first.cursor)
        assert home.requests_to("/api/v2/search")[-1].query["min_id"] == [saved]
        assert newer["uri"] in {m.id for m in second.mentions}
        assert untagged["uri"] not in {m.id for m in second.mentions}


def test_a_search_cut_by_the_page_cap_keeps_its_min_id(clock, caplog):
    with FakeMastodon("home.example", token="s3cret") as home:
        first_hit = home.post(T0 - timedelta(hours=5), "<p>Acme first</p>")
        connector = make(clock, home, env={"T": "s3cret"}, access_token_env="T", max_pages_per_run=1)
        first = run(connector)
        saved = first.cursor["instances"][normalize_instance_url(home.url)]["search"]
        assert saved == first_hit["id"]
        for i in range(45):
            home.post(T0 - timedelta(hours=4) + timedelta(minutes=i), f"<p>Acme hit {i}</p>")
        with caplog.at_level(logging.WARNING, logger="listener.connectors.mastodon"):
            second = run(connector, first.cursor)
        assert "keeping min_id" in caplog.text
        assert second.cursor["instances"][normalize_instance_url(home.url)]["search"] == saved
        assert len(second.mentions) == 40


def test_without_a_token_nothing_is_searched(one, clock):
    one.post(T0 - timedelta(hours=1), "<p>Acme without a tag</p>")
    result = run(make(clock, one, use_search=True))
    assert result.error is None and result.mentions == []
    assert not one.requests_to("/api/v2/search")


# -- errors --------------------------------------------------------------------------------------------


def test_429_waits_for_the_reset_and_goes_on(one, clock):
    one.post(T0 - timedelta(hours=1), TAGGED, tags=["acme"])
    one.script(TAG_PATH, Reply(429, {"error": "Too many requests"},
                               headers=one.rate_limit_headers(reset_in=30, remaining=0)))
    sleep = Recorder()
    result = run(make(clock, one, sleep=sleep))
    assert result.error is None
    assert len(result.mentions) == 1
    [waited] = sleep.sleeps
    assert 28 <= waited <= 32  # the reset, read through X-RateLimit-Reset and Date
    assert len(one.requests_to(TAG_PATH)) == 2


def test_a_rate_limit_reset_beyond_the_retry_cap_ends_that_instance_for_the_run(one, clock):
    one.script(TAG_PATH, Reply(429, {"error": "Too many requests"},
                               headers=one.rate_limit_headers(reset_in=290, remaining=0)))
    sleep = Recorder()
    result = run(make(clock, one, sleep=sleep))
    assert isinstance(result.error, RetryableError) and result.error.retry_after > 200
    assert sleep.sleeps == []
    assert result.batches[-1].checkpoint == {"instances": {}}


def test_an_instance_failing_with_500_does_not_stop_the_other(one, two, clock, caplog):
    one.post(T0 - timedelta(hours=2), TAGGED, tags=["acme"])
    fine = two.post(T0 - timedelta(hours=1), "<p>#acme on two</p>", tags=["acme"], author="bob")
    broken = normalize_instance_url(one.url)
    since = {"instances": {broken: {"tags": {"acme": "12345"}, "search": None, "threads": {}}}}
    one.server.route("GET", TAG_PATH, Reply(500, {"error": "boom"}))
    sleep = Recorder()
    with caplog.at_level(logging.WARNING, logger="listener.connectors.mastodon"):
        result = run(make(clock, one, two, sleep=sleep, attempts=3), since)
    assert result.error is None
    assert [m.id for m in result.mentions] == [fine["uri"]]
    assert len(one.requests_to(TAG_PATH)) == 3 and len(sleep.sleeps) == 2  # capped retries
    assert result.cursor["instances"][broken] == since["instances"][broken]
    assert result.cursor["instances"][normalize_instance_url(two.url)]["tags"] == {"acme": fine["id"]}
    assert f"instance {broken} skipped" in caplog.text


def test_when_every_instance_fails_the_run_fails(one, clock):
    one.server.route("GET", TAG_PATH, Reply(503, {"error": "down"}))
    result = run(make(clock, one))
    assert isinstance(result.error, RetryableError)
    assert result.batches and result.batches[-1].checkpoint == {"instances": {}}


def test_a_client_timeout_is_retried(one, clock):
    one.post(T0 - timedelta(hours=1), TAGGED, tags=["acme"])
    one.script(TAG_PATH, Reply(200, [], delay=0.6))
    sleep = Recorder()
    result = run(make(clock, one, sleep=sleep, timeout_seconds=0.2))
    assert result.error is None and len(result.mentions) == 1
    assert len(sleep.sleeps) == 1


def test_a_refused_token_is_an_auth_error_naming_the_variable(clock):
    with FakeMastodon("home.example", token="right") as home, FakeMastodon("far.example", offset=3) as far:
        fine = far.post(T0 - timedelta(hours=1), TAGGED, tags=["acme"])
        connector = make(clock, home, far, env={"MASTODON_TOKEN": "wrong"}, access_token_env="MASTODON_TOKEN")
        result = run(connector)
    assert isinstance(result.error, AuthError)
    assert result.error.env_vars == ("MASTODON_TOKEN",)
    assert "MASTODON_TOKEN" in str(result.error) and "wrong" not in str(result.error)
    # The other instance was read, and its batches come before the error.
    assert [m.id for m in result.mentions] == [fine["uri"]]


def test_a_403_is_an_auth_error_too(one, clock):
    one.server.route("GET", TAG_PATH, Reply(403, {"error": "This action is not allowed"}))
    result = run(make(clock, one))
    assert isinstance(result.error, AuthError)


def test_another_4xx_is_fatal(one, clock):
    one.server.route("GET", TAG_PATH, Reply(422, {"error": "Validation failed"}))
    result = run(make(clock, one))
    assert isinstance(result.error, FatalError) and not isinstance(result.error, AuthError)
    assert "422" in str(result.error)


def test_failing_instance_endpoints_do_not_make_search_recurse(clock):
    with FakeMastodon("home.example", token="s3cret") as home:
        home.post(T0 - timedelta(hours=1), "<p>Acme</p>", tags=["acme"])
        for path in ("/api/v1/instance", "/api/v1/instance/", "/api/v2/instance", "/api/v2/instance/"):
            home.server.route("GET", path, Reply(500, {"error": "boom"}))
        result = run(make(clock, home, env={"T": "s3cret"}, access_token_env="T"))
        assert result.error is None and len(result.mentions) == 1
        assert len(home.requests_to("/api/v2/search")) == 1
        assert len(home.requests) < 10


def test_a_non_json_body_is_retried(one, clock):
    one.post(T0 - timedelta(hours=1), TAGGED, tags=["acme"])
    one.script(TAG_PATH, Reply(200, "<html>gateway"))
    result = run(make(clock, one))
    assert result.error is None and len(result.mentions) == 1


def test_an_unreadable_cursor_is_fatal(one, clock):
    result = run(make(clock, one), {"since_id": "1"})
    assert isinstance(result.error, FatalError) and "cursor" in str(result.error)


# -- settings ------------------------------------------------------------------------------------------


def test_a_named_but_unset_token_variable_is_an_auth_error(clock):
    with pytest.raises(AuthError) as caught:
        create({"access_token_env": "MASTODON_TOKEN"}, clock, {})
    assert caught.value.env_vars == ("MASTODON_TOKEN",)


def test_settings_problems_are_reported_together(clock):
    with pytest.raises(ValueError) as caught:
        create({"instances": ["ftp://x", "a.example", "https://A.example/"], "history_days": 0,
                "max_pages_per_run": "ten", "timeout_seconds": -1}, clock, {})
    message = str(caught.value)
    for part in ("ftp://x", "listed twice", "history_days", "max_pages_per_run", "timeout_seconds"):
        assert part in message


def test_defaults_are_anonymous_and_need_no_environment(clock):
    connector = create({}, clock, {})
    assert [i.url for i in connector.instances] == ["https://mastodon.social"]
    assert connector.instances[0].client.access_token is None
    assert connector.instances[0].client.ratelimit_method == "throw"
    assert set(SETTINGS) >= {"instances", "access_token_env", "use_search", "history_days", "fetch_threads",
                             "max_pages_per_run"}
    connector.close()


# -- through the pipeline -------------------------------------------------------------------------------


def test_two_runs_through_the_pipeline_store_each_status_once(one, two, store, clock):
    root = one.post(T0 - timedelta(hours=3), "<p>#acme is wonderful</p>", tags=["acme"], replies=1)
    two.share(root, tags=["acme"])
    one.post(T0 - timedelta(hours=2), "<p>Totally agree, love it</p>", author="bob", reply_to=root)
    only_two = two.post(T0 - timedelta(hours=1), "<p>#acme broke again, awful</p>", tags=["acme"], author="carl")
    one.post(T0 - timedelta(days=9), "<p>#acme ancient</p>", tags=["acme"])  # before history_days
    pipeline = Pipeline(store, VaderScorer(), clock)
    connector = make(clock, one, two)

    first = pipeline.pull(connector, ACME)
    assert (first.new, first.rejected, first.skipped) == (3, 0, 0)

    clock.advance(hours=1)
    newer = one.post(T0 + timedelta(minutes=30), "<p>new #acme post</p>", tags=["acme"], author="dan")
    two.share(newer, tags=["acme"])
    second = pipeline.pull(connector, ACME)
    assert second.new == 1

    with store.native() as db:
        rows = db.execute("SELECT id, count(*) FROM mentions WHERE source = 'mastodon' GROUP BY id").fetchall()
        scored = db.execute("SELECT count(*) FROM scores WHERE source = 'mastodon'").fetchone()[0]
        runs = db.execute("SELECT status FROM runs WHERE kind = 'pull' ORDER BY run_id").fetchall()
    served = {root["uri"], only_two["uri"], newer["uri"],
              f"https://one.example/users/bob/statuses/{snowflake(T0 - timedelta(hours=2))}"}
    assert {row[0] for row in rows} == served
    assert all(count == 1 for _, count in rows)
    assert scored == 4
    assert runs == [("ok",), ("ok",)]
    cursor = store.get_cursor("mastodon", "Acme")
    assert set(cursor["instances"]) == {normalize_instance_url(one.url), normalize_instance_url(two.url)}
    connector.close()


# -- the brand's own voice (issue 15) --------------------------------------------------------


def test_the_brands_own_statuses_come_with_the_threads_they_answer(one, clock, store):
    """The customer's post has no hashtag (no search without a token): only the brand's
    account brings its reply, the thread it answers and the customer's answer to it."""
    query = BrandQuery("Acme", terms=("acme",), own_accounts=(("mastodon", ("@acme@one.example",)),))
    one.post(T0 - timedelta(hours=5), TAGGED, tags=["acme"], author="alice")
    opening = one.post(T0 - timedelta(hours=3), "<p>my order never came, awful</p>", author="carol", replies=1)
    reply = one.post(T0 - timedelta(hours=2), "<p>@carol So sorry! DM us?</p>", author="acme", reply_to=opening,
                     replies=1)
    answer = one.post(T0 - timedelta(hours=1), "<p>thanks, it came today</p>", author="carol", reply_to=reply)
    connector = make(clock, one)
    result = Pipeline(store, VaderScorer(), clock).pull(connector, query)
    assert (result.new, result.rejected) == (4, 0)
    with store.native() as db:
        rows = {r[0]: r[1:] for r in db.execute(
            "SELECT id, own, thread_context, conversation_id, author FROM mentions").fetchall()}
        cursor = store.get_cursor("mastodon", "Acme")
    assert rows[reply["uri"]] == (True, False, opening["uri"], "acme@one.example")
    assert rows[opening["uri"]][:3] == (False, True, opening["uri"])
    assert rows[answer["uri"]][:3] == (False, True, opening["uri"])
    saved = cursor["instances"][normalize_instance_url(one.url)]["accounts"]
    assert saved == {"acme@one.example": reply["id"]}

    # The next run asks for the account's statuses above the saved id (less the margin
    # for late federation) and stores the brand's new post once.
    clock.advance(hours=1)
    one.post(T0 + timedelta(minutes=30), "<p>New beans are in!</p>", author="acme")
    again = Pipeline(store, VaderScorer(), clock).pull(connector, query)
    assert again.new == 1
    asked = one.requests_to(f"/api/v1/accounts/{reply['account']['id']}/statuses")[-1].query
    assert "min_id" in asked and asked["exclude_reblogs"] == ["1"]  # as Mastodon.py sends true


def test_an_own_account_the_instance_does_not_know_is_skipped_with_a_warning(one, clock, caplog):
    one.post(T0 - timedelta(hours=5), TAGGED, tags=["acme"], author="alice")
    query = BrandQuery("Acme", terms=("acme",), own_accounts=(("mastodon", ("@nobody@one.example",)),))
    with caplog.at_level(logging.WARNING, logger="listener.connectors.mastodon"):
        result = run(make(clock, one), query=query)
    assert result.error is None and len(result.mentions) == 1
    assert "does not know the account nobody@one.example" in caplog.text
