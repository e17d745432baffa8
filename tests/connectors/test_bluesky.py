"""The Bluesky connector through its real clients: atproto's Client against a fake XRPC
service (tests/fakes/bluesky_api.py) and the websockets client against a real websocket
server playing Jetstream (tests/fakes/jetstream.py). Sleep is injected; time is fixed."""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest

from analysis.sentiment import VaderScorer
from connectors.base import Batch, BrandQuery, Connector
from connectors.bluesky import SETTINGS, create
from connectors.bluesky.mapping import mention_from_post_view
from connectors.bluesky.search import BlueskySearchConnector, compile_search_queries
from connectors.bluesky.jetstream import REPLAY_OVERLAP_US, JetstreamConnector
from connectors.errors import AuthError, FatalError, QueryError, RateLimitedError, RetryableError
from connectors.retry import RetryPolicy
from listener.pipeline import Pipeline
from tests.conftest import T0, FixedClock
from tests.fakes.bluesky_api import FakeBluesky, fake_jwt, iso, post_view
from tests.fakes.http import Reply, Sleeps
from tests.fakes.jetstream import FakeJetstream, RawEvent, identity_event, like_event, post_event, time_us
from tests.timing import HANG_GUARD, PEER_TIMEOUT

ACME = BrandQuery("Acme", terms=("acme",))
ENV_VARS = ("BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD")


def minutes_ago(minutes: float) -> datetime:
    return T0 - timedelta(minutes=minutes)


def us(minutes_before_t0: float) -> int:
    return time_us(minutes_ago(minutes_before_t0))


def search_connector(api: FakeBluesky, clock, sleeps, **settings) -> BlueskySearchConnector:
    env = {"BLUESKY_HANDLE": api.handle, "BLUESKY_APP_PASSWORD": api.password}
    return create({"base_url": api.server.url, "timeout_seconds": PEER_TIMEOUT, **settings}, clock, env=env,
                  retry=RetryPolicy(attempts=3, sleep=sleeps))


def run(connector, query=ACME, since=None) -> list[Batch]:
    return list(connector.fetch(query, since))


def ids(batches: list[Batch]) -> list[str]:
    return [m.id for b in batches for m in b.mentions]


def uri(rkey: str, did: str = "did:plc:alice") -> str:
    return f"at://{did}/app.bsky.feed.post/{rkey}"


# -- search: mapping ---------------------------------------------------------------------


def test_a_post_view_maps_to_a_mention():
    root = uri("3kroot", "did:plc:bob")
    view = post_view("3kreply", "Acme's new roast is great", "2026-11-01T09:30:00.123Z", handle="alice.bsky.social",
                     indexed_at="2026-11-01T09:30:01.000Z", langs=["en", "de"], reply_root=root,
                     reply_parent=uri("3kparent", "did:plc:carol"), likes=7, reposts=2, quotes=1, replies=3)
    mention = mention_from_post_view(view, "Acme", fetched_at=T0)
    assert mention.source == "bluesky" and mention.brand == "Acme"
    assert mention.id == "at://did:plc:alice/app.bsky.feed.post/3kreply"
    assert mention.text == "Acme's new roast is great"
    assert mention.created_at == datetime(2026, 11, 1, 9, 30, 0, 123000, tzinfo=timezone.utc)
    assert mention.author == "alice.bsky.social"
    assert mention.url == "https://bsky.app/profile/alice.bsky.social/post/3kreply"
    assert mention.lang == "en"
    assert mention.conversation_id == root
    assert mention.parent_id == "at://did:plc:carol/app.bsky.feed.post/3kparent"
    assert {k: mention.metrics[k] for k in ("likes", "reposts", "replies")} == {"likes": 7, "reposts": 3, "replies": 3}
    assert mention.raw == view and mention.fetched_at == T0

    top = mention_from_post_view(post_view("3ktop", "acme", "2026-11-01T09:00:00+02:00", handle="handle.invalid"), "Acme")
    assert top.conversation_id == top.id and top.parent_id is None and top.lang is None
    assert top.created_at == datetime(2026, 11, 1, 7, 0, tzinfo=timezone.utc)
    # A handle that no longer verifies: the DID stands in, so the link still works.
    assert top.author == "did:plc:alice" and top.url == "https://bsky.app/profile/did:plc:alice/post/3ktop"


def test_queries_are_one_per_term_because_search_cannot_or():
    query = BrandQuery("Acme", terms=("acme", "acme coffee"), hashtags=("#acmelove",), handles=("@acme.com",))
    assert compile_search_queries(query) == ["acme", '"acme coffee"', "#acmelove", "acme.com"]
    with pytest.raises(QueryError):
        compile_search_queries(BrandQuery("Acme"))


# -- search: paging and cursors ----------------------------------------------------------


def test_paging_follows_the_cursor_and_checkpoints_only_at_the_end(server, clock, sleeps):
    posts = [post_view(f"3k{i:04d}", f"acme post {i}", minutes_ago(i), langs=["en"]) for i in range(1, 251)]
    api = FakeBluesky(server, posts)
    batches = run(search_connector(api, clock, sleeps))

    assert [len(b.mentions) for b in batches] == [100, 100, 50, 0]
    assert [b.checkpoint for b in batches[:-1]] == [None, None, None]
    assert batches[-1].checkpoint == {"queries": {"acme": {"since": iso(T0)}}}
    assert sorted(ids(batches)) == sorted(p["uri"] for p in posts)
    first, *rest = api.searches
    assert first == {"q": "acme", "sort": "latest", "limit": "100", "until": iso(T0),
                     "since": iso(T0 - timedelta(days=7, seconds=60))}
    assert [s["cursor"] for s in rest] == ["100", "200"]
    assert api.sessions == 1
    assert all(r.headers["authorization"] == f"Bearer {api.access_jwt}" for r in server.requests[1:])


def test_a_second_run_reads_only_newer_posts(server, clock, sleeps):
    api = FakeBluesky(server, [post_view(f"3kold{i}", f"acme {i}", minutes_ago(10 + i)) for i in range(5)])
    connector = search_connector(api, clock, sleeps)
    first = run(connector)
    assert len(ids(first)) == 5

    api.posts += [post_view(f"3knew{i}", f"acme new {i}", T0 + timedelta(minutes=2 + i)) for i in range(3)]
    clock.advance(minutes=15)
    second = run(connector, since=first[-1].checkpoint)
    assert sorted(ids(second)) == sorted(uri(f"3knew{i}") for i in range(3))
    assert api.searches[-1]["since"] == iso(T0 - timedelta(seconds=60))
    assert api.searches[-1]["until"] == iso(T0 + timedelta(minutes=15))
    assert second[-1].checkpoint == {"queries": {"acme": {"since": iso(T0 + timedelta(minutes=15))}}}
    assert api.sessions == 1  # one login per connector, not per run


def test_a_run_cut_by_the_page_cap_resumes_without_loss(server, clock, sleeps):
    # 450 posts, three to an instant, so page boundaries fall between posts of one instant.
    posts = [post_view(f"3k{i:04d}", f"acme {i}", minutes_ago(1 + i // 3)) for i in range(450)]
    api = FakeBluesky(server, posts)
    connector = search_connector(api, clock, sleeps, max_pages_per_run=2)

    first = run(connector)
    assert len(ids(first)) == 200
    cursor = first[-1].checkpoint["queries"]["acme"]
    oldest_read = min(m.created_at for b in first for m in b.mentions)
    assert cursor == {"since": iso(T0 - timedelta(days=7)), "gap_resume": iso(T0),
                      "gap_until": iso(oldest_read + timedelta(milliseconds=1))}

    api.posts += [post_view(f"3knew{i}", f"acme new {i}", T0 + timedelta(minutes=1 + i)) for i in range(30)]
    clock.advance(minutes=40)
    second = run(connector, since=first[-1].checkpoint)
    assert api.searches[2]["until"] == cursor["gap_until"]  # the gap first
    third = run(connector, since=second[-1].checkpoint)
    assert third[-1].checkpoint == {"queries": {"acme": {"since": iso(T0 + timedelta(minutes=40))}}}

    got = ids(first) + ids(second) + ids(third)
    assert set(got) == {p["uri"] for p in api.posts}  # nothing lost, the split instants included
    # Read twice: only posts of the instants where the two cuts fell, and of the overlap.
    cuts = {datetime.fromisoformat(c["queries"]["acme"]["gap_until"]) - timedelta(milliseconds=1)
            for c in (first[-1].checkpoint, second[-1].checkpoint)}
    created = {m.id: m.created_at for b in first + second + third for m in b.mentions}
    twice = {i for i in got if got.count(i) > 1}
    assert twice and {created[i] for i in twice} <= cuts | {T0 - timedelta(minutes=1)}


def test_a_repeated_page_cursor_stops_the_loop(server, clock, sleeps):
    api = FakeBluesky(server)
    page = {"posts": [post_view("3k1", "acme", minutes_ago(1))], "cursor": "same"}
    api.script_search(Reply(200, page), Reply(200, page))
    with pytest.raises(FatalError, match="repeated the page cursor"):
        run(search_connector(api, clock, sleeps))


def test_the_language_is_sent_when_the_brand_has_exactly_one(server, clock, sleeps):
    api = FakeBluesky(server, [post_view("3k1", "acme", minutes_ago(1), langs=["de"]),
                               post_view("3k2", "acme", minutes_ago(2), langs=["en"])])
    connector = search_connector(api, clock, sleeps)
    assert ids(run(connector, BrandQuery("Acme", terms=("acme",), languages=("de",)))) == [uri("3k1")]
    assert api.searches[-1]["lang"] == "de"
    run(connector, BrandQuery("Acme", terms=("acme",), languages=("de", "en")))
    assert "lang" not in api.searches[-1]


def test_terms_are_searched_separately_and_merged_by_uri(server, clock, sleeps):
    api = FakeBluesky(server, [post_view("3k1", "acme #acmelove", minutes_ago(1)),
                               post_view("3k2", "only #acmelove", minutes_ago(2)),
                               post_view("3k3", "acme alone", minutes_ago(3))])
    query = BrandQuery("Acme", terms=("acme",), hashtags=("acmelove",))
    batches = run(search_connector(api, clock, sleeps), query)
    assert sorted(ids(batches)) == [uri("3k1"), uri("3k2"), uri("3k3")]  # 3k1 once, found twice
    assert [s["q"] for s in api.searches] == ["acme", "#acmelove"]
    assert set(batches[-1].checkpoint["queries"]) == {"acme", "#acmelove"}


def test_a_cursor_older_than_history_days_reaches_back_only_that_far(server, clock, sleeps, caplog):
    api = FakeBluesky(server, [post_view("3k1", "acme", minutes_ago(1))])
    old = {"queries": {"acme": {"since": iso(T0 - timedelta(days=30))}}}
    with caplog.at_level(logging.WARNING, logger="listener.connectors.bluesky"):
        run(search_connector(api, clock, sleeps, history_days=3), since=old)
    assert api.searches[0]["since"] == iso(T0 - timedelta(days=3, seconds=60))
    assert "older than history_days" in caplog.text


# -- search: errors ----------------------------------------------------------------------


def test_a_429_waits_the_injected_sleep_and_goes_on(server, clock, sleeps):
    api = FakeBluesky(server, [post_view("3k1", "acme", minutes_ago(1))])
    api.script_search(Reply(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                            headers={"retry-after": "2", "ratelimit-remaining": "0"}))
    batches = run(search_connector(api, clock, sleeps))
    assert sleeps == [2.0]
    assert ids(batches) == [uri("3k1")]


def test_a_long_rate_limit_ends_the_run_keeping_its_progress(server, clock, sleeps):
    posts = [post_view(f"3k{i:04d}", f"acme {i}", minutes_ago(1 + i)) for i in range(150)]
    api = FakeBluesky(server, posts)
    connector = search_connector(api, clock, sleeps)
    reset = int((T0 + timedelta(hours=1)).timestamp())
    page_one = api._search  # serve page one, then the rate limit
    calls = []

    def limited(request):
        calls.append(request)
        if len(calls) == 2:
            return Reply(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                         headers={"ratelimit-reset": str(reset), "ratelimit-remaining": "0"})
        return page_one(request)

    server.route("GET", "/xrpc/app.bsky.feed.searchPosts", limited)
    batches: list[Batch] = []
    with pytest.raises(RateLimitedError) as error:
        for batch in connector.fetch(ACME, None):
            batches.append(batch)
    assert error.value.retry_after == pytest.approx(3601)
    assert sleeps == []  # longer than the policy's max_delay: the next run's job
    assert len(ids(batches)) == 100
    assert batches[-1].checkpoint["queries"]["acme"]["gap_resume"] == iso(T0)

    clock.advance(minutes=15)
    rest = run(connector, since=batches[-1].checkpoint)
    assert set(ids(batches) + ids(rest)) == {p["uri"] for p in posts}


def test_server_errors_are_retried_then_raised(server, clock, sleeps):
    api = FakeBluesky(server, [post_view("3k1", "acme", minutes_ago(1))])
    api.script_search(Reply(500, {"error": "InternalServerError", "message": "boom"}),
                      Reply(502, "<html>bad gateway</html>"),
                      Reply(200, "<html>a gateway's page, sent as JSON</html>"))
    connector = search_connector(api, clock, sleeps)
    connector.retry = RetryPolicy(attempts=4, sleep=sleeps)
    assert ids(run(connector)) == [uri("3k1")]
    assert len(sleeps) == 3

    api.script_search(Reply(400, {"error": "InvalidRequest", "message": "q is too long"}))
    with pytest.raises(QueryError, match="q is too long"):
        run(connector)

    api.script_search(*[Reply(503, {"error": "Unavailable"})] * 3)
    with pytest.raises(RetryableError):
        run(search_connector(api, clock, Sleeps()))


def test_wrong_credentials_raise_auth_error_naming_both_variables(server, clock, sleeps):
    api = FakeBluesky(server)
    connector = create({"base_url": server.url, "timeout_seconds": PEER_TIMEOUT}, clock, retry=RetryPolicy(sleep=sleeps),
                       env={"BLUESKY_HANDLE": api.handle, "BLUESKY_APP_PASSWORD": "wrong-password"})
    with pytest.raises(AuthError) as error:
        run(connector)
    assert error.value.env_vars == ENV_VARS
    assert "BLUESKY_HANDLE" in str(error.value) and "BLUESKY_APP_PASSWORD" in str(error.value)
    assert "wrong-password" not in str(error.value) and "wrong-password" not in repr(connector)
    assert sleeps == []  # not retried


def test_a_400_on_create_session_is_an_auth_error(server, clock, sleeps):
    api = FakeBluesky(server)
    server.route("POST", "/xrpc/com.atproto.server.createSession",
                 Reply(400, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}))
    with pytest.raises(AuthError) as error:
        run(search_connector(api, clock, sleeps))
    assert error.value.env_vars == ENV_VARS


def test_missing_credentials_raise_auth_error_naming_them(clock):
    with pytest.raises(AuthError) as error:
        create({}, clock, env={"BLUESKY_HANDLE": "me.bsky.social"})
    assert error.value.env_vars == ("BLUESKY_APP_PASSWORD",)
    with pytest.raises(AuthError, match="BLUESKY_HANDLE, BLUESKY_APP_PASSWORD"):
        create({}, clock, env={})
    with pytest.raises(AuthError, match="MY_HANDLE"):
        create({"handle_env": "MY_HANDLE"}, clock, env={"BLUESKY_APP_PASSWORD": "x"})


def test_an_expired_session_logs_in_again_once(server, clock, sleeps):
    api = FakeBluesky(server, [post_view("3k1", "acme", minutes_ago(1))])
    connector = search_connector(api, clock, sleeps)
    run(connector)
    api.access_jwt = fake_jwt(api.did, "com.atproto.appPass", 3600)  # the server forgot the old session
    clock.advance(minutes=15)
    run(connector)
    assert api.sessions == 2


def test_a_malformed_post_is_skipped_and_counted(server, clock, sleeps):
    bad_date = post_view("3kbad", "acme", minutes_ago(2))
    bad_date["record"]["createdAt"] = bad_date["indexedAt"] = "not-a-date"  # no time to fall back on
    no_text = post_view("3knotext", "acme", minutes_ago(3))
    del no_text["record"]["text"]
    page = {"posts": [post_view("3kgood", "acme", minutes_ago(1)), bad_date, no_text, "not a post"]}
    api = FakeBluesky(server)
    api.script_search(Reply(200, page))
    batches = run(search_connector(api, clock, sleeps))
    assert ids(batches) == [uri("3kgood")]
    assert sum(b.skipped for b in batches) == 3


def test_a_post_whose_created_at_no_datetime_can_hold_takes_its_indexed_at(server, clock, sleeps):
    """Recorded on the network: a client wrote createdAt in year 0; the AppView indexed
    the post all the same and searchPosts returns it."""
    year_zero = post_view("3lyear0", "acme mugs are back", "0000-01-01T00:00:00Z",
                          indexed_at="2026-11-01T09:55:12.345Z", langs=["en"], likes=2)
    year_zero["$type"] = "app.bsky.feed.defs#postView"
    year_zero["record"]["facets"] = []
    api = FakeBluesky(server, [year_zero, post_view("3kfine", "acme", minutes_ago(1))])
    [found] = [m for b in run(search_connector(api, clock, sleeps)) for m in b.mentions if m.id == uri("3lyear0")]
    assert found.created_at == datetime(2026, 11, 1, 9, 55, 12, 345000, tzinfo=timezone.utc)
    assert found.raw["record"]["createdAt"] == "0000-01-01T00:00:00Z"  # what the record said is kept
    assert found.text == "acme mugs are back" and found.metrics["likes"] == 2


def test_the_session_tokens_are_never_echoed_in_an_error(server, clock, sleeps):
    """A peer that repeats the bearer token it was sent, in an XRPC error and in a
    gateway page long enough that atproto's own text cuts it at 200 characters: no
    piece of the session's tokens reaches the error."""
    api = FakeBluesky(server, [post_view("3k1", "acme", minutes_ago(1))])
    signature = base64.urlsafe_b64encode(hashlib.sha256(b"bluesky session").digest() * 2).decode().rstrip("=")
    api.access_jwt = api.access_jwt.rsplit(".", 1)[0] + "." + signature
    connector = search_connector(api, clock, sleeps)
    api.script_search(Reply(400, {"error": "InvalidRequest", "message": f"malformed header: Bearer {api.access_jwt}"}))
    with pytest.raises(QueryError) as refused:
        run(connector)
    page = "<html><head><title>502 Bad Gateway</title></head><body>" + "." * 60 + \
        f"<pre>authorization: Bearer {api.access_jwt}</pre><p>refresh: {api.refresh_jwt}</p></body></html>"
    api.script_search(*[Reply(502, page, headers={"Content-Type": "text/html"})] * 3)
    with pytest.raises(RetryableError) as failed:
        run(connector)
    for error in (refused.value, failed.value):
        text = str(error)
        assert "[redacted]" in text
        for token in (api.access_jwt, api.refresh_jwt):
            secret = token.rsplit(".", 1)[1]
            assert not [secret[i:i + 8] for i in range(len(secret) - 7) if secret[i:i + 8] in text], text


def test_settings_are_checked_all_at_once(clock):
    with pytest.raises(ValueError) as error:
        create({"mode": "stream", "history_days": 0, "jetstream_url": "https://x", "max_pages_per_run": "9"},
               clock, env={})
    message = str(error.value)
    for key in ("mode", "history_days", "jetstream_url", "max_pages_per_run"):
        assert key in message
    assert all(isinstance(spec.doc, str) and spec.doc for spec in SETTINGS.values())


def test_jetstream_mode_needs_no_login(clock):
    connector = create({"mode": "jetstream"}, clock, env={})
    assert isinstance(connector, JetstreamConnector) and isinstance(connector, Connector)
    assert connector.name == "bluesky"


# -- jetstream ----------------------------------------------------------------------------


def jetstream_connector(url: str, clock, sleeps, **settings) -> JetstreamConnector:
    # Every stream here ends with LIVE (the run stops there, caught up) or fails: the
    # reading bound is only a hang guard, which a loaded machine never reaches.
    return create({"mode": "jetstream", "jetstream_url": url, "jetstream_max_seconds": HANG_GUARD,
                   "jetstream_backfill_minutes": 60, **settings}, clock, env={},
                  retry=RetryPolicy(attempts=3, sleep=sleeps))


LIVE = post_event(time_us(T0 + timedelta(days=1)), "3zlive", "acme from tomorrow")
"""An event after any test's run start: the connector stops there (caught up)."""


def test_jetstream_keeps_only_posts_matching_the_query(clock, sleeps):
    root = uri("3jroot", "did:plc:bob")
    events = [
        post_event(us(50), "3j1", "I love Acme", did="did:plc:dave", langs=["en"], reply_root=root,
                   reply_parent=uri("3jparent", "did:plc:carol")),
        post_event(us(40), "3j2", "nothing to see here"),
        post_event(us(35), "3j3", "acmeville is a town"),  # not the whole word
        like_event(us(30), uri("3j1", "did:plc:dave")),
        identity_event(us(25)),
        post_event(us(20), "3j1", "", operation="delete", did="did:plc:dave"),
        post_event(us(10), "3j4", "acme again"),
        LIVE,
    ]
    with FakeJetstream(events) as jetstream:
        batches = run(jetstream_connector(jetstream.url, clock, sleeps))
    assert ids(batches) == [uri("3j1", "did:plc:dave"), uri("3j4")]
    first = batches[0].mentions[0]
    assert first.author == "did:plc:dave"
    assert first.url == "https://bsky.app/profile/did:plc:dave/post/3j1"
    assert first.conversation_id == root and first.parent_id == uri("3jparent", "did:plc:carol")
    assert first.lang == "en" and first.created_at == minutes_ago(50).replace(microsecond=0)
    assert first.raw["time_us"] == us(50)
    assert jetstream.connections[0]["wantedCollections"] == ["app.bsky.feed.post"]
    assert jetstream.connections[0]["path"] == "/subscribe"


def test_jetstream_checkpoints_the_last_time_us_before_the_run_start(clock, sleeps):
    events = [post_event(us(30), "3j1", "acme one"), post_event(us(5), "3j2", "no match"),
              post_event(time_us(T0 + timedelta(seconds=1)), "3j3", "acme after the run start"), LIVE]
    with FakeJetstream(events) as jetstream:
        batches = run(jetstream_connector(jetstream.url, clock, sleeps))
        assert jetstream.connections[0]["cursor"] == str(us(60) - REPLAY_OVERLAP_US)  # backfill, first run
    assert ids(batches) == [uri("3j1")]
    assert batches[-1].checkpoint == {"time_us": us(5)}  # the last event read, not past the run start
    assert all(b.checkpoint is not None for b in batches)


def test_jetstream_reconnects_after_a_dropped_connection_without_loss_or_doubles(clock, sleeps):
    events = [post_event(us(50 - i), f"3j{i}", f"acme post {i}") for i in range(10)] + [LIVE]
    with FakeJetstream(events, drop_after=[4, 3]) as jetstream:
        batches = run(jetstream_connector(jetstream.url, clock, sleeps))
        cursors = [c["cursor"] for c in jetstream.connections]
    got = ids(batches)
    assert got == [uri(f"3j{i}") for i in range(10)]  # each once, in order
    assert len(sleeps) == 2
    # Each reconnect resumes from the last event read, minus the replay overlap.
    # The second connection replays from event 3 (the last read) and drops after 3 more.
    assert cursors[1:] == [str(us(50 - 3) - REPLAY_OVERLAP_US), str(us(50 - 5) - REPLAY_OVERLAP_US)]
    assert batches[-1].checkpoint == {"time_us": us(41)}


def test_jetstream_gives_up_after_bounded_reconnects_keeping_its_progress(clock, sleeps):
    events = [post_event(us(10), "3j1", "acme")]
    with FakeJetstream(events, drop_after=[1, 0, 0, 0, 0]) as jetstream:
        batches: list[Batch] = []
        with pytest.raises(RetryableError, match="dropped"):
            for batch in jetstream_connector(jetstream.url, clock, sleeps).fetch(ACME, None):
                batches.append(batch)
    assert len(sleeps) == 2  # attempts=3: three connections without progress in a row
    assert ids(batches) == [uri("3j1")] and batches[-1].checkpoint == {"time_us": us(10)}


def test_jetstream_refused_handshakes_are_retried(clock, sleeps):
    with FakeJetstream([post_event(us(10), "3j1", "acme"), LIVE], refuse=[503]) as jetstream:
        assert ids(run(jetstream_connector(jetstream.url, clock, sleeps))) == [uri("3j1")]
    assert len(sleeps) == 1
    with FakeJetstream([LIVE], refuse=[404]) as jetstream:
        with pytest.raises(FatalError, match="404"):
            run(jetstream_connector(jetstream.url, clock, sleeps))


def test_jetstream_restarts_from_a_saved_cursor(clock, sleeps):
    events = [post_event(us(50 - i), f"3j{i}", f"acme {i}") for i in range(6)] + [LIVE]
    saved = {"time_us": us(47)}
    with FakeJetstream(events) as jetstream:
        batches = run(jetstream_connector(jetstream.url, clock, sleeps), since=saved)
        assert jetstream.connections[0]["cursor"] == str(us(47) - REPLAY_OVERLAP_US)
    assert ids(batches) == [uri(f"3j{i}") for i in range(3, 6)]  # the event at the cursor again, storage dedups


def test_jetstream_skips_and_counts_malformed_events(clock, sleeps):
    bad_date = post_event(us(20), "3jbad", "acme with a bad date", created_at="yesterday")
    no_text = post_event(us(19), "3jnotext", "acme")
    del no_text["commit"]["record"]["text"]
    unrelated_bad_date = post_event(us(18), "3jother", "not ours", created_at="yesterday")
    events = [RawEvent(us(30), "{not json"), RawEvent(us(29), '{"kind": "commit"}'), bad_date, no_text,
              unrelated_bad_date, post_event(us(10), "3jgood", "acme fine"), LIVE]
    with FakeJetstream(events) as jetstream:
        batches = run(jetstream_connector(jetstream.url, clock, sleeps))
    assert ids(batches) == [uri("3jgood")]
    assert sum(b.skipped for b in batches) == 4


def test_jetstream_stops_after_max_seconds_on_a_quiet_stream(clock, sleeps):
    with FakeJetstream([post_event(us(10), "3j1", "acme")]) as jetstream:
        started = time.monotonic()
        batches = run(jetstream_connector(jetstream.url, clock, sleeps, jetstream_max_seconds=0.3))
        elapsed = time.monotonic() - started
    # It reads for its bound, then returns of itself: on a quiet stream a run that ignored
    # the bound would never return. The margin only absorbs a loaded machine's delays.
    assert 0.25 <= elapsed < 0.3 + 10
    assert ids(batches) == [uri("3j1")] and batches[-1].checkpoint == {"time_us": us(10)}


def test_jetstream_stops_after_max_events_and_batches_with_checkpoints(clock, sleeps):
    events = [post_event(us(50) + i * 1000, f"3j{i:03d}", f"acme {i}") for i in range(250)] + [LIVE]
    with FakeJetstream(events) as jetstream:
        batches = run(jetstream_connector(jetstream.url, clock, sleeps, jetstream_max_events=230))
    assert [len(b.mentions) for b in batches] == [100, 100, 30]
    assert [b.checkpoint["time_us"] for b in batches] == [us(50) + 99_000, us(50) + 199_000, us(50) + 229_000]


def test_modes_resume_from_each_others_cursors(server, clock, sleeps):
    api = FakeBluesky(server, [post_view("3k1", "acme", minutes_ago(1))])
    run(search_connector(api, clock, sleeps), since={"time_us": us(30)})
    assert api.searches[0]["since"] == iso(minutes_ago(30) - timedelta(seconds=60))
    with FakeJetstream([LIVE]) as jetstream:
        run(jetstream_connector(jetstream.url, clock, sleeps), since={"queries": {"acme": {"since": iso(minutes_ago(20))}}})
        assert jetstream.connections[0]["cursor"] == str(us(20) - REPLAY_OVERLAP_US)


# -- whole runs through the pipeline ------------------------------------------------------


def stored(store) -> tuple[int, int, list]:
    with store.native() as db:
        total, distinct = db.execute("SELECT count(*), count(DISTINCT id) FROM mentions").fetchone()
        runs = db.execute("SELECT status, fetched, new FROM runs ORDER BY run_id").fetchall()
    return total, distinct, runs


def test_search_mode_through_the_pipeline_stores_each_post_once(server, store, sleeps):
    clock = FixedClock()
    api = FakeBluesky(server, [post_view(f"3k{i}", f"acme is {'great' if i % 2 else 'awful'} {i}", minutes_ago(5 + i))
                               for i in range(120)]
                      + [post_view("3kville", "acmeville news", minutes_ago(3))])  # search hit, local reject
    connector = search_connector(api, clock, sleeps)
    pipeline = Pipeline(store, VaderScorer(), clock)
    first = pipeline.pull(connector, ACME)
    assert (first.new, first.rejected) == (120, 1)

    api.posts += [post_view(f"3knew{i}", f"acme new {i}", T0 + timedelta(minutes=1 + i)) for i in range(4)]
    api.posts.append(post_view("3klate", "acme indexed late", T0 - timedelta(seconds=20)))  # in the overlap
    clock.advance(minutes=15)
    second = pipeline.pull(connector, ACME)
    assert second.new == 5
    total, distinct, runs = stored(store)
    assert total == distinct == 125
    assert [r[0] for r in runs] == ["ok", "ok"]
    assert store.get_cursor("bluesky", "Acme") == {"queries": {"acme": {"since": iso(T0 + timedelta(minutes=15))}}}


def test_jetstream_mode_through_the_pipeline_stores_each_post_once(store, sleeps):
    clock = FixedClock()
    events = [post_event(us(50 - i), f"3j{i}", f"acme is {'great' if i % 2 else 'awful'} {i}") for i in range(40)]
    events += [post_event(us(30) + 1, "3jno", "unrelated"), LIVE]
    with FakeJetstream(events, drop_after=[15]) as jetstream:
        connector = jetstream_connector(jetstream.url, clock, sleeps)
        pipeline = Pipeline(store, VaderScorer(), clock)
        first = pipeline.pull(connector, ACME)
        assert first.new == 40
        jetstream.add(*[post_event(time_us(T0 + timedelta(minutes=1 + i)), f"3jnew{i}", f"acme new {i}")
                        for i in range(3)])
        clock.advance(minutes=15)
        second = pipeline.pull(connector, ACME)
        assert jetstream.connections[-1]["cursor"] == str(us(11) - REPLAY_OVERLAP_US)
    assert second.new == 3
    total, distinct, runs = stored(store)
    assert total == distinct == 43
    assert store.get_cursor("bluesky", "Acme") == {"time_us": time_us(T0 + timedelta(minutes=3))}


def test_the_two_modes_share_a_module_and_do_not_import_each_other():
    """No import cycle: jetstream mode reads what it shares with search mode from
    connectors.bluesky.records; the package (settings and factory) imports each mode's
    module only when that mode is built."""
    import subprocess
    import sys

    probe = ("import sys, connectors.bluesky.jetstream; print(sorted(m for m in ('connectors.bluesky.search', "
             "'connectors.bluesky.client', 'atproto') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout


# -- the brand's own voice (issue 15) --------------------------------------------------------


def test_the_brands_own_posts_and_the_replies_to_them_are_searched_and_marked_own(server, clock, sleeps, store):
    """The brand's reply and the customer's answer to it name no term: only the from:/to:
    searches of the brand's account bring them."""
    query = BrandQuery("Acme", terms=("acme",), own_accounts=(("bluesky", ("@Acme.bsky.social",)),))
    opening = post_view("o1", "my acme order never came", minutes_ago(90), handle="carol.bsky.social",
                        did="did:plc:carol")
    reply = post_view("r1", "So sorry! Could you DM us?", minutes_ago(60), handle="acme.bsky.social",
                      did="did:plc:acme", reply_root=opening["uri"], reply_parent=opening["uri"])
    answer = post_view("a1", "thanks, it came today", minutes_ago(30), handle="carol.bsky.social",
                       did="did:plc:carol", reply_root=opening["uri"], reply_parent=reply["uri"])
    other = post_view("x1", "thanks, lovely day", minutes_ago(20), handle="dave.bsky.social", did="did:plc:dave")
    api = FakeBluesky(server, [opening, reply, answer, other])
    assert compile_search_queries(query) == ["acme", "from:acme.bsky.social", "to:acme.bsky.social"]
    result = Pipeline(store, VaderScorer(), clock).pull(search_connector(api, clock, sleeps), query)
    assert {s["q"] for s in api.searches} == {"acme", "from:acme.bsky.social", "to:acme.bsky.social"}
    assert (result.new, result.rejected) == (3, 0)
    with store.native() as db:
        rows = dict(db.execute("SELECT id, (own, thread_context, conversation_id) FROM mentions").fetchall())
    assert rows == {opening["uri"]: (False, False, opening["uri"]), reply["uri"]: (True, False, opening["uri"]),
                    answer["uri"]: (False, True, opening["uri"])}  # a reply to the brand: thread context


def test_jetstream_keeps_the_brands_posts_and_their_threads_by_did(server, clock, sleeps, store, caplog):
    """Jetstream names authors by DID: the brand's handle is resolved once (no login), its
    posts are kept under the handle and marked own, replies to it and later replies in
    its threads (also across runs, through the cursor) are kept as context; a handle
    that resolves to no account is logged, not fatal."""
    api = FakeBluesky(server)
    api.dids = {"acme.bsky.social": "did:plc:acme"}
    query = BrandQuery("Acme", terms=("acme",), own_accounts=(("bluesky", ("@Acme.bsky.social", "gone.bsky.social")),))
    opening = uri("3jo", "did:plc:carol")
    brand_reply, brand_post = uri("3jr", "did:plc:acme"), uri("3jp", "did:plc:acme")
    events = [
        post_event(us(50), "3jo", "my order never came", did="did:plc:carol"),  # names nothing: not kept
        post_event(us(40), "3jr", "So sorry! Could you DM us?", did="did:plc:acme", reply_root=opening,
                   reply_parent=opening),
        post_event(us(35), "3ja", "thanks, it came today", did="did:plc:carol", reply_root=opening,
                   reply_parent=brand_reply),
        post_event(us(30), "3jb", "same here, still waiting", did="did:plc:bob", reply_root=opening,
                   reply_parent=opening),  # to a customer, in a thread the brand is in
        post_event(us(25), "3jp", "Our winter blend is out", did="did:plc:acme"),
        post_event(us(20), "3jc", "looks lovely", did="did:plc:dave", reply_root=brand_post, reply_parent=brand_post),
        post_event(us(15), "3jx", "unrelated chat", did="did:plc:erin", reply_root=uri("3jy", "did:plc:erin"),
                   reply_parent=uri("3jy", "did:plc:erin")),
        LIVE,
    ]
    with FakeJetstream(events) as jetstream:
        connector = jetstream_connector(jetstream.url, clock, sleeps, base_url=server.url)
        pipeline = Pipeline(store, VaderScorer(), clock)
        pipeline.pull(connector, query)
        jetstream.events[:] = [post_event(us(5), "3jd", "any news?", did="did:plc:frank", reply_root=opening,
                                          reply_parent=uri("3jb", "did:plc:bob")), LIVE]
        clock.advance(minutes=1)
        pipeline.pull(jetstream_connector(jetstream.url, clock, sleeps, base_url=server.url), query)
    with store.native() as db:
        rows = dict(db.execute("SELECT id, (author, own, thread_context) FROM mentions").fetchall())
    assert rows == {
        brand_reply: ("acme.bsky.social", True, False), brand_post: ("acme.bsky.social", True, False),
        uri("3ja", "did:plc:carol"): ("did:plc:carol", False, True),
        uri("3jb", "did:plc:bob"): ("did:plc:bob", False, True),
        uri("3jc", "did:plc:dave"): ("did:plc:dave", False, True),
        uri("3jd", "did:plc:frank"): ("did:plc:frank", False, True),  # second run: the thread from the cursor
    }
    resolved = [r.query["handle"][-1] for r in server.requests if r.path.endswith("resolveHandle")]
    assert sorted(resolved) == ["acme.bsky.social", "acme.bsky.social", "gone.bsky.social", "gone.bsky.social"]
    assert "'gone.bsky.social' resolves to no account" in caplog.text
    assert opening in store.get_cursor("bluesky", "Acme")["threads"]
