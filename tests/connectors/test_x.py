"""The x connector through the real tweepy client, against a fake X API v2 on 127.0.0.1.

Nothing of ours is mocked: requests go tweepy -> requests -> our base-URL adapter ->
the fake server (tests/fakes/x_api.py), which speaks the documented wire format. Sleep
is injected and recorded, so retries cost no time.
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import datetime, timedelta, timezone

import pytest
import requests

from analysis.sentiment import VaderScorer
from connectors.base import Batch, BrandQuery
from connectors.errors import (
    AuthError,
    FatalError,
    MalformedPayloadError,
    QueryError,
    RateLimitedError,
    RetryableError,
)
from connectors.query import compile_x
from connectors.retry import RetryPolicy
from connectors.x import SETTINGS, XConnector, create, id_time, mentions_from_page, since_id_for
from listener.pipeline import Pipeline
from tests.conftest import T0, FixedClock
from tests.fakes.http import Reply, Sleeps
from tests.fakes.x_api import COUNTS, FakeXApi, invalid_request, problem, snowflake, tweet
from tests.timing import PEER_TIMEOUT

UTC = timezone.utc
TOKEN = "test-token-5f2c"
ACME = BrandQuery("Acme", terms=("acme",))
ENV = {"X_BEARER_TOKEN": TOKEN}


@pytest.fixture
def api(clock):
    with FakeXApi(clock, bearer_token=TOKEN) as fake:
        fake.add_user("1", "alice", 1200)
        fake.add_user("2", "bob", 7)
        yield fake


def connect(api: FakeXApi, clock, sleeps: Sleeps | None = None, *, attempts: int = 4,
            env=ENV, **settings) -> XConnector:
    policy = RetryPolicy(attempts=attempts, sleep=sleeps if sleeps is not None else Sleeps())
    return create({"base_url": api.url, "timeout_seconds": PEER_TIMEOUT, **settings}, clock, env=env, retry=policy)


def fill(api: FakeXApi, n: int, *, end: datetime, every: timedelta, label: str = "post") -> list[dict]:
    """n posts naming Acme, the newest at ``end``, one every ``every`` going back."""
    posts = [tweet(end - i * every, f"acme {label} {i} is great", author_id="12"[i % 2],
                   likes=i % 7, retweets=i % 3, replies=i % 5, quotes=1, impressions=100 + i)
             for i in range(n)]
    api.add(*posts)
    return posts


def run(connector: XConnector, since=None, query: BrandQuery = ACME) -> list[Batch]:
    return list(connector.fetch(query, since))


def ids(batches: list[Batch]) -> list[str]:
    return [m.id for b in batches for m in b.mentions]


def params(request) -> dict[str, str]:
    return {k: v[-1] for k, v in request.query.items()}


def stored_ids(store) -> list[str]:
    with store.native() as db:
        return [row[0] for row in db.execute("SELECT id FROM mentions WHERE source = 'x'").fetchall()]


# -- paging and mapping --------------------------------------------------------------------


def test_pages_and_expansions_map_to_mentions(api, clock):
    posts = fill(api, 230, end=T0 - timedelta(minutes=1), every=timedelta(minutes=10))
    reply = tweet(T0 - timedelta(seconds=30), "@bob acme broke again", author_id="2",
                  conversation_id=posts[5]["id"], replied_to=posts[5]["id"], quoted=posts[9]["id"],
                  likes=4, retweets=2, quotes=3, replies=1, impressions=50, lang="de")
    api.add(reply)

    batches = run(connect(api, clock))

    sent = [params(r) for r in api.requests()]
    assert len(sent) == 3
    assert sent[0]["query"] == compile_x(ACME) == "(acme) -is:retweet"
    assert sent[0]["max_results"] == "100"
    assert set(sent[0]["tweet.fields"].split(",")) == {
        "created_at", "lang", "conversation_id", "public_metrics", "author_id", "referenced_tweets",
        "in_reply_to_user_id"}
    assert sent[0]["expansions"] == "author_id"
    assert set(sent[0]["user.fields"].split(",")) == {"username", "public_metrics"}
    assert "next_token" not in sent[0] and sent[1]["next_token"] and sent[2]["next_token"] != sent[1]["next_token"]
    assert all(s["start_time"] == sent[0]["start_time"] for s in sent)

    assert [len(b.mentions) for b in batches] == [100, 100, 31, 0]
    assert [b.checkpoint for b in batches[:-1]] == [None, None, None]
    assert batches[-1].checkpoint == {"since_id": reply["id"], "month": "2026-11", "posts_read": 231}
    assert sorted(ids(batches)) == sorted(p["id"] for p in [*posts, reply])

    first = batches[0].mentions[0]
    assert first.id == reply["id"] and first.source == "x" and first.brand == "Acme"
    assert first.created_at == T0 - timedelta(seconds=30) and first.created_at.tzinfo is UTC
    assert first.text == "@bob acme broke again" and first.lang == "de"
    assert first.author == "bob" and first.url == f"https://x.com/bob/status/{reply['id']}"
    assert first.conversation_id == posts[5]["id"] and first.parent_id == posts[5]["id"]
    assert first.metrics == {"likes": 4, "reposts": 5, "replies": 1, "quotes": 3, "impressions": 50,
                             "bookmarks": 0, "author_followers": 7}
    assert first.fetched_at == T0
    assert first.raw["id"] == reply["id"] and first.raw["author_id"] == "2"
    root = next(m for m in batches[0].mentions if m.id == posts[0]["id"])
    assert root.author == "alice" and root.parent_id is None and root.conversation_id == root.id


def test_first_run_looks_back_history_days_capped_at_the_7_day_window(api, clock):
    fill(api, 100, end=T0 - timedelta(minutes=1), every=timedelta(hours=1))   # 100 hours back

    batches = run(connect(api, clock, history_days=2))
    assert params(api.requests()[0])["start_time"] == (T0 - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(ids(batches)) == 48

    batches = run(connect(api, clock, history_days=30))
    start = datetime.fromisoformat(params(api.requests()[-1])["start_time"].replace("Z", "+00:00"))
    assert T0 - timedelta(days=7) < start <= T0 - timedelta(days=7) + timedelta(minutes=5)
    assert len(ids(batches)) == 100


def test_polling_with_since_id_fetches_only_newer_posts(api, clock):
    fill(api, 50, end=T0 - timedelta(minutes=1), every=timedelta(minutes=7))
    connector = connect(api, clock)
    cursor = run(connector)[-1].checkpoint

    clock.advance(hours=1)
    newer = fill(api, 12, end=T0 + timedelta(minutes=55), every=timedelta(minutes=4), label="newer")
    batches = run(connector, cursor)

    second = params(api.requests()[-1])
    assert second["since_id"] == cursor["since_id"] and "start_time" not in second
    assert sorted(ids(batches)) == sorted(p["id"] for p in newer)
    assert batches[-1].checkpoint == {"since_id": newer[0]["id"], "month": "2026-11", "posts_read": 62}

    assert ids(run(connector, batches[-1].checkpoint)) == []   # nothing new: nothing fetched
    assert run(connector, batches[-1].checkpoint)[-1].checkpoint["since_id"] == newer[0]["id"]


def test_page_cap_leaves_a_gap_that_later_runs_fill_exactly_once(api, clock, store, caplog):
    """Driven through the pipeline and a real store: after several capped runs, with new
    posts arriving meanwhile, every post is stored exactly once."""
    corpus = fill(api, 800, end=T0 - timedelta(minutes=1), every=timedelta(minutes=5))   # 67 hours
    connector = connect(api, clock, max_pages_per_run=2, history_days=3)
    pipeline = Pipeline(store, VaderScorer(), clock)

    results, cursors = [], []
    for step in range(6):
        results.append(pipeline.pull(connector, ACME))
        cursors.append(store.get_cursor("x", "Acme"))
        clock.advance(minutes=20)
        if step < 4:
            corpus += fill(api, 3, end=clock.now - timedelta(minutes=1), every=timedelta(minutes=5),
                           label=f"run{step}")

    assert ["until_id" in c for c in cursors] == [True, True, True, False, False, False]
    assert "start_time" in cursors[0]   # the first run's lower bound, sent as a since_id in gap fills
    assert cursors[-1]["since_id"] == max((p["id"] for p in corpus), key=int)
    # Run 4 finished the gap exactly at the page cap, run 5 read the 12 newer posts.
    assert [r.fetched for r in results] == [200, 200, 200, 200, 12, 0]
    assert "cannot be recovered" not in caplog.text
    assert sorted(stored_ids(store)) == sorted(p["id"] for p in corpus)
    assert sum(r.fetched for r in results) == len(corpus)   # no post was read (and paid for) twice
    assert sum(r.duplicates for r in results) == 0
    gap_fills = [params(r) for r in api.requests() if "until_id" in r.query]
    assert gap_fills and all("start_time" not in p and "since_id" in p for p in gap_fills)
    assert cursors[-1]["posts_read"] == len(corpus)


def test_per_run_post_budget_stops_the_run_and_the_next_run_continues(api, clock):
    fill(api, 300, end=T0 - timedelta(minutes=1), every=timedelta(minutes=5))
    connector = connect(api, clock, max_posts_per_run=120)

    first = run(connector)
    assert [params(r)["max_results"] for r in api.requests()] == ["100", "20"]
    cursor = first[-1].checkpoint
    assert cursor["until_id"] == ids(first)[-1] and len(ids(first)) == 120

    second = run(connector, cursor)
    assert params(api.requests()[2])["until_id"] == cursor["until_id"]
    assert set(ids(first)).isdisjoint(ids(second)) and len(ids(second)) == 120


def test_monthly_budget_stops_reading_for_the_month_and_resumes_next_month(api, caplog):
    clock = FixedClock(datetime(2026, 10, 31, 12, 0, tzinfo=UTC))
    api.clock = clock
    fill(api, 400, end=clock.now - timedelta(minutes=1), every=timedelta(minutes=5))
    connector = connect(api, clock, monthly_post_budget=150, history_days=3)

    first = run(connector)
    assert [params(r)["max_results"] for r in api.requests()] == ["100", "50"]
    cursor = first[-1].checkpoint
    assert cursor["posts_read"] == 150 and cursor["month"] == "2026-10" and "until_id" in cursor
    assert "reading stopped for the month" in caplog.text

    caplog.clear()
    clock.advance(hours=2)
    again = run(connector, cursor)
    assert len(api.requests()) == 2   # no request at all
    assert again == [Batch(mentions=(), checkpoint=cursor)]
    assert "reading stopped for the month" in caplog.text and "2026-10" in caplog.text

    clock.now = datetime(2026, 11, 1, 0, 30, tzinfo=UTC)
    november = run(connector, cursor)
    resumed = params(api.requests()[2])
    assert resumed["until_id"] == cursor["until_id"] and "since_id" in resumed
    assert len(ids(november)) == 150 and set(ids(first)).isdisjoint(ids(november))
    assert november[-1].checkpoint["month"] == "2026-11" and november[-1].checkpoint["posts_read"] == 150


def test_a_spent_rate_limit_window_ends_the_run_early_instead_of_hitting_429(clock):
    with FakeXApi(clock, bearer_token=TOKEN, rate_limit=2) as api:
        api.add_user("1", "alice")
        api.add_user("2", "bob")
        fill(api, 350, end=T0 - timedelta(minutes=1), every=timedelta(minutes=5))
        connector = connect(api, clock)

        first = run(connector)
        assert len(api.requests()) == 2 and len(ids(first)) == 200
        assert "until_id" in first[-1].checkpoint

        clock.advance(minutes=16)
        second = run(connector, first[-1].checkpoint)
        assert len(ids(first)) + len(ids(second)) == 350
        assert all(r.query for r in api.requests())


# -- retweets and malformed input ----------------------------------------------------------


def test_retweets_are_left_out_but_counted_as_read(api, clock, caplog):
    caplog.set_level(logging.INFO, logger="listener.connectors.x")
    posts = fill(api, 10, end=T0 - timedelta(minutes=1), every=timedelta(minutes=5))
    retweets = [tweet(T0 - timedelta(minutes=2 + 5 * i), f"RT @alice: acme post {i} is great",
                      author_id="2", retweeted=posts[i]["id"]) for i in range(3)]
    api.add(*retweets)

    batches = run(connect(api, clock))
    assert sorted(ids(batches)) == sorted(p["id"] for p in posts)
    assert sum(b.skipped for b in batches) == 0
    assert batches[-1].checkpoint["posts_read"] == 13   # retweets are billed reads too
    assert "left out 3 retweets" in caplog.text


def test_malformed_items_are_skipped_counted_and_the_run_goes_on(api, clock, store):
    good = [tweet(T0 - timedelta(minutes=i), f"acme good {i}", author_id="1") for i in (1, 2)]
    no_text = tweet(T0 - timedelta(minutes=3), "x", author_id="1")
    del no_text["text"]
    int_id = {**tweet(T0 - timedelta(minutes=4), "acme int id", author_id="1"), "id": 12345}
    bad_time = {**tweet(T0 - timedelta(minutes=5), "acme bad time", author_id="1"), "created_at": "yesterday"}
    page = api.page([good[0], no_text, int_id, good[1], bad_time, "not a tweet"])
    api.script(Reply(200, page))

    result = Pipeline(store, VaderScorer(), clock).pull(connect(api, clock), ACME)
    assert result.skipped == 4 and result.new == 2
    assert sorted(stored_ids(store)) == sorted(t["id"] for t in good)
    assert store.get_cursor("x", "Acme")["since_id"] == page["meta"]["newest_id"]


@pytest.mark.parametrize("body", ['{"data": [{"id": "1", "te', "<html>bad gateway</html>", "[]",
                                  '{"data": {"id": "1"}}'])
def test_a_malformed_page_is_retried(api, clock, sleeps, body):
    posts = fill(api, 5, end=T0 - timedelta(minutes=1), every=timedelta(minutes=5))
    api.script(Reply(200, body))

    batches = run(connect(api, clock, sleeps))
    assert len(sleeps) == 1 and len(api.requests()) == 2
    assert sorted(ids(batches)) == sorted(p["id"] for p in posts)


def test_a_page_that_stays_malformed_fails_the_run_as_retryable(api, clock, sleeps):
    api.script(*[Reply(200, "<html>") for _ in range(4)])
    with pytest.raises(RetryableError, match="not JSON"):
        run(connect(api, clock, sleeps))
    assert len(api.requests()) == 4 and len(sleeps) == 3


def test_a_repeated_next_token_is_fatal(api, clock):
    posts = fill(api, 3, end=T0 - timedelta(minutes=1), every=timedelta(minutes=5))
    api.script(Reply(200, api.page(posts[:1], "loop")), Reply(200, api.page(posts[1:2], "loop")))
    with pytest.raises(FatalError, match="repeated the page token"):
        run(connect(api, clock))
    assert len(api.requests()) == 2


def test_mentions_from_page_maps_a_twarc2_jsonl_line(api):
    posts = [tweet(T0 - timedelta(minutes=i), f"acme {i}", author_id="12"[i % 2]) for i in range(3)]
    rt = tweet(T0, "RT @alice: acme 0", author_id="2", retweeted=posts[0]["id"])
    line = json.dumps(api.page([*posts, rt, {"id": "77"}]))   # one page per line in twarc2 output

    mentions, skipped = mentions_from_page(json.loads(line), "Acme", fetched_at=T0)
    assert [m.id for m in mentions] == [p["id"] for p in posts]
    assert [m.author for m in mentions] == ["alice", "bob", "alice"]
    assert skipped == 1
    assert mentions_from_page({"meta": {"result_count": 0}}, "Acme") == ([], 0)
    with pytest.raises(MalformedPayloadError):
        mentions_from_page({"data": "nope"}, "Acme")


# -- HTTP errors ----------------------------------------------------------------------------


def test_429_with_a_reset_header_waits_until_the_reset(api, clock, sleeps):
    posts = fill(api, 5, end=T0 - timedelta(minutes=1), every=timedelta(minutes=5))
    reset = {"x-rate-limit-limit": "60", "x-rate-limit-remaining": "0",
             "x-rate-limit-reset": str(int(T0.timestamp()) + 7)}
    api.script(Reply(429, problem(429, "Too Many Requests", "Too Many Requests"), reset))

    batches = run(connect(api, clock, sleeps))
    assert sleeps == [8.0]   # reset - now, plus a second for the reset's whole-second resolution
    assert sorted(ids(batches)) == sorted(p["id"] for p in posts)


def test_429_with_a_distant_reset_ends_the_run_at_once(api, clock, sleeps):
    api.script(Reply(429, problem(429, "Too Many Requests", "Too Many Requests"),
                     {"x-rate-limit-reset": str(int(T0.timestamp()) + 600)}))
    with pytest.raises(RateLimitedError) as caught:
        run(connect(api, clock, sleeps))
    assert caught.value.retry_after == 601 and sleeps == []
    assert len(api.requests()) == 1


def test_429_without_a_reset_header_is_retried_a_capped_number_of_times(api, clock, sleeps):
    api.script(*[Reply(429, problem(429, "Too Many Requests", "Too Many Requests")) for _ in range(10)])
    with pytest.raises(RateLimitedError) as caught:
        run(connect(api, clock, sleeps, attempts=4))
    assert caught.value.retry_after is None
    assert len(api.requests()) == 4 and len(sleeps) == 3
    assert all(0 <= s <= 2 ** i for i, s in enumerate(sleeps))


def test_500_then_success(api, clock, sleeps):
    posts = fill(api, 5, end=T0 - timedelta(minutes=1), every=timedelta(minutes=5))
    api.script(Reply(500, problem(500, "Internal Server Error", "Something went wrong")))
    batches = run(connect(api, clock, sleeps))
    assert len(sleeps) == 1 and sorted(ids(batches)) == sorted(p["id"] for p in posts)


def test_500_forever_fails_the_pull_and_keeps_the_cursor(api, clock, sleeps, store):
    fill(api, 150, end=T0 - timedelta(minutes=1), every=timedelta(minutes=5))
    pipeline = Pipeline(store, VaderScorer(), clock)
    connector = connect(api, clock, sleeps)
    pipeline.pull(connector, ACME)
    cursor = store.get_cursor("x", "Acme")

    clock.advance(hours=1)
    newer = fill(api, 120, end=clock.now - timedelta(minutes=1), every=timedelta(seconds=20), label="new")
    first_page = sorted(newer, key=lambda t: int(t["id"]), reverse=True)[:100]
    api.script(Reply(200, api.page(first_page, "next-page")),
               *[Reply(503, problem(503, "Service Unavailable", "Service Unavailable")) for _ in range(4)])
    with pytest.raises(RetryableError, match="503"):
        pipeline.pull(connector, ACME)
    assert store.get_cursor("x", "Acme") == cursor   # the page already stored does not move it
    with store.native() as db:
        status, error = db.execute("SELECT status, error FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    assert status == "failed" and error.startswith("RetryableError")

    result = pipeline.pull(connector, ACME)   # the next run reads the whole window again
    assert result.fetched == 120 and result.new == 20 and result.duplicates == 100
    assert len(stored_ids(store)) == 270 == len(set(stored_ids(store)))


def test_a_timeout_is_retryable(api, clock, sleeps):
    posts = fill(api, 5, end=T0 - timedelta(minutes=1), every=timedelta(minutes=5))
    api.script(Reply(200, api.page(posts), delay=1.0))
    batches = run(connect(api, clock, sleeps, timeout_seconds=0.2))
    assert len(sleeps) == 1 and len(ids(batches)) == 5


def test_a_refused_connection_is_retryable(clock, sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    connector = create({"base_url": f"http://127.0.0.1:{port}"}, clock, env=ENV,
                       retry=RetryPolicy(attempts=2, sleep=sleeps))
    with pytest.raises(RetryableError, match="ConnectionError"):
        run(connector)
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_raise_auth_error_naming_the_variable(clock, status):
    with FakeXApi(clock, bearer_token="another-token") as api:
        if status == 403:
            api.bearer_token = TOKEN
            api.script(Reply(403, problem(403, "Forbidden", "client-not-enrolled",
                                          "https://api.twitter.com/2/problems/client-forbidden")))
        with pytest.raises(AuthError) as caught:
            run(connect(api, clock))
        assert "X_BEARER_TOKEN" in str(caught.value) and caught.value.env_vars == ("X_BEARER_TOKEN",)
        assert TOKEN not in str(caught.value)
        assert len(api.requests()) == 1   # not retried


def test_auth_error_names_a_configured_variable(clock):
    with FakeXApi(clock, bearer_token="another-token") as api:
        connector = create({"base_url": api.url, "bearer_token_env": "ACME_X_TOKEN", "timeout_seconds": PEER_TIMEOUT}, clock,
                           env={"ACME_X_TOKEN": TOKEN})
        with pytest.raises(AuthError, match="ACME_X_TOKEN"):
            run(connector)


@pytest.mark.parametrize("env", [{}, {"X_BEARER_TOKEN": "  "}])
def test_a_missing_token_raises_auth_error_naming_the_variable(clock, env):
    with pytest.raises(AuthError, match="X_BEARER_TOKEN") as caught:
        create({}, clock, env=env)
    assert caught.value.env_vars == ("X_BEARER_TOKEN",)


def test_400_is_fatal_with_the_apis_message(api, clock, sleeps):
    api.script(Reply(400, invalid_request("There were errors processing your request: Ambiguous use of "
                                          "\"OR\" (at position 12)", "query", "acme OR")))
    with pytest.raises(QueryError, match="Ambiguous use of"):
        run(connect(api, clock, sleeps))
    assert sleeps == [] and len(api.requests()) == 1


# -- downtime and the 7-day window ---------------------------------------------------------


def test_after_downtime_beyond_7_days_the_lost_stretch_is_reported(api, clock, caplog):
    fill(api, 20, end=T0 - timedelta(minutes=1), every=timedelta(minutes=10))
    connector = connect(api, clock)
    cursor = run(connector)[-1].checkpoint

    clock.advance(days=10)
    recent = fill(api, 120, end=clock.now - timedelta(minutes=1), every=timedelta(hours=2), label="later")
    batches = run(connector, cursor)

    sent = params(api.requests()[-1])
    assert "since_id" not in sent   # X would refuse the old since_id
    assert "cannot be recovered" in caplog.text
    fetched = set(ids(batches))
    window = [p["id"] for p in recent if id_time(p["id"]) >= clock.now - timedelta(days=7) + timedelta(minutes=5)]
    assert fetched == set(window) and len(window) < len(recent)


def test_a_quiet_brand_keeps_its_cursor_inside_the_window(api, clock, caplog):
    connector = connect(api, clock)
    cursor = run(connector)[-1].checkpoint
    assert cursor["start_time"] == "2026-11-01T09:00:00.000Z"
    for _ in range(9):
        clock.advance(days=1)
        cursor = run(connector, cursor)[-1].checkpoint
    assert "cannot be recovered" not in caplog.text
    post = fill(api, 1, end=clock.now + timedelta(minutes=5), every=timedelta(minutes=1))
    clock.advance(minutes=10)
    assert ids(run(connector, cursor)) == [post[0]["id"]]


def test_since_id_for_admits_posts_from_that_moment():
    moment = datetime(2026, 10, 30, 8, 0, 0, 123000, tzinfo=UTC)
    assert int(since_id_for(moment)) < int(snowflake(moment)) and int(since_id_for(moment)) + 1 == int(snowflake(moment))
    assert id_time(snowflake(moment)) == moment


# -- counts ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated")   # tweepy: next_token on counts
def test_hourly_counts_pages_through_the_buckets(clock):
    with FakeXApi(clock, bearer_token=TOKEN, counts_page_size=24) as api:
        fill(api, 60, end=T0 - timedelta(minutes=30), every=timedelta(minutes=30))   # 2 per hour
        counts = connect(api, clock).hourly_counts(ACME, T0 - timedelta(hours=30), T0)

        sent = [params(r) for r in api.requests(COUNTS)]
        assert len(sent) == 2 and sent[0]["granularity"] == "hour" and sent[0]["query"] == compile_x(ACME)
        assert sent[1]["next_token"]
        assert len(counts) == 30
        assert counts[0] == (T0 - timedelta(hours=30), 2)
        assert all(start.tzinfo is UTC for start, _ in counts)
        assert sum(n for _, n in counts) == 60


# -- settings and construction ------------------------------------------------------------


def test_settings_are_declared_with_defaults():
    assert {k: v.default for k, v in SETTINGS.items()} == {
        "bearer_token_env": "X_BEARER_TOKEN", "base_url": "https://api.twitter.com", "history_days": 7,
        "max_pages_per_run": 10, "max_posts_per_run": 1000, "monthly_post_budget": 10000,
        "timeout_seconds": 30.0}
    assert all(isinstance(spec.default, spec.type) for spec in SETTINGS.values())


def test_bad_settings_are_reported_all_at_once(clock):
    with pytest.raises(ValueError) as caught:
        create({"history_days": 0, "max_pages_per_run": "ten", "monthly_post_budget": 5}, clock, env=ENV)
    message = str(caught.value)
    assert "history_days" in message and "max_pages_per_run" in message and "monthly_post_budget" in message


def test_the_client_never_waits_on_its_own_and_returns_raw_responses(api, clock):
    connector = connect(api, clock)
    assert connector.name == "x"
    assert connector.client.wait_on_rate_limit is False
    assert connector.client.return_type is requests.Response
    connector.close()


def test_base_url_with_a_path_prefix(clock):
    with FakeXApi(clock, bearer_token=TOKEN, prefix="/gateway/x") as api:
        api.add_user("1", "alice")
        fill(api, 3, end=T0 - timedelta(minutes=1), every=timedelta(minutes=1))
        assert len(ids(run(connect(api, clock)))) == 3
        assert api.requests()[0].path == "/gateway/x/2/tweets/search/recent"


def test_the_token_is_never_logged(api, clock, caplog):
    caplog.set_level(logging.DEBUG)
    fill(api, 3, end=T0 - timedelta(minutes=1), every=timedelta(minutes=1))
    api.script(Reply(500, problem(500, "Internal Server Error", "oops")))
    run(connect(api, clock))
    assert caplog.records and TOKEN not in caplog.text


def test_an_unreadable_cursor_is_fatal(api, clock):
    with pytest.raises(FatalError, match="unreadable"):
        run(connect(api, clock), {"since_id": "abc"})
    with pytest.raises(FatalError, match="unreadable"):
        run(connect(api, clock), {"since_id": "1", "until_id": "5"})


# -- the brand's own voice (issue 15) --------------------------------------------------------

def test_the_brands_own_posts_the_replies_to_them_and_their_threads_are_collected(clock, store):
    """X evaluates the query here (evaluate_queries): only the compiled from:/to: terms
    bring the brand's reply, which names no term, and the customer's answer to it; the
    conversation_id: search after them brings the rest of the thread (eve's reply)."""
    query = BrandQuery("Acme", terms=("acme",), own_accounts=(("x", ("@Acme_Care",)),))
    with FakeXApi(clock, bearer_token=TOKEN, evaluate_queries=True) as api:
        for user_id, name in (("1", "carol"), ("2", "acme_care"), ("3", "dave"), ("4", "eve")):
            api.add_user(user_id, name)
        root = tweet(T0 - timedelta(hours=3), "my acme order never came", author_id="1")
        same = tweet(T0 - timedelta(hours=2, minutes=30), "@carol same here, two weeks now", author_id="4",
                     conversation_id=root["id"], replied_to=root["id"], in_reply_to_user_id="1")
        reply = tweet(T0 - timedelta(hours=2), "@carol So sorry! Could you DM us the order number?", author_id="2",
                      conversation_id=root["id"], replied_to=root["id"], in_reply_to_user_id="1")
        answer = tweet(T0 - timedelta(hours=1), "@Acme_Care thanks, it arrived today", author_id="1",
                       conversation_id=root["id"], replied_to=reply["id"], in_reply_to_user_id="2")
        api.add(root, same, reply, answer, tweet(T0 - timedelta(minutes=30), "hello world", author_id="3"))
        result = Pipeline(store, VaderScorer(), clock).pull(connect(api, clock), query)
        sent = [params(r)["query"] for r in api.requests()]
    assert sent == ["(acme OR from:acme_care OR to:acme_care) -is:retweet",
                    f"(conversation_id:{root['id']}) -is:retweet"]
    assert (result.new, result.rejected) == (4, 0)
    with store.native() as db:
        rows = db.execute("SELECT id, own, thread_context, conversation_id FROM mentions ORDER BY created_at").fetchall()
        mood = db.execute("SELECT count(*) FROM mood_mentions('-infinity', 'infinity')").fetchone()[0]
    assert rows == [(root["id"], False, False, root["id"]), (same["id"], False, True, root["id"]),
                    (reply["id"], True, False, root["id"]), (answer["id"], False, False, root["id"])]
    assert mood == 3  # the brand's reply is kept in its thread, not in the brand's mood


def test_a_failing_thread_read_keeps_the_runs_cursor(clock, sleeps):
    query = BrandQuery("Acme", terms=("acme",), own_accounts=(("x", ("acme_care",)),))
    with FakeXApi(clock, bearer_token=TOKEN, evaluate_queries=True) as api:
        api.add_user("2", "acme_care")
        reply = tweet(T0 - timedelta(hours=2), "@carol So sorry!", author_id="2", conversation_id="123",
                      replied_to="123")
        api.add(reply)
        api.script(Reply(200, api.page([reply])), *[Reply(500, problem(500, "Internal", "boom"))] * 4)
        batches = run(connect(api, clock, sleeps), query=query)
    assert batches[-1].checkpoint["since_id"] == reply["id"]
    assert len(sleeps) == 3  # the thread read was retried, then given up
