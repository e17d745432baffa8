"""The reddit connector through the real praw/prawcore client against a fake Reddit on
127.0.0.1 (tests/fakes/reddit_api.py). Nothing of ours is mocked; time is a fixed clock
and every wait (ours and prawcore's own) goes through an injected, recording sleep."""

from __future__ import annotations

import logging
import random
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import praw.config
import pytest

from analysis.sentiment import VaderScorer
from connectors import reddit
from connectors.base import Batch, BrandQuery, Connector, Mention
from connectors.errors import AuthError, FatalError, QueryError, RateLimitedError, RetryableError
from connectors.query import compile_reddit
from connectors.retry import RetryPolicy
from listener.pipeline import Pipeline
from tests.conftest import T0, FixedClock
from tests.fakes.http import Reply
from tests.fakes.reddit_api import MORECHILDREN, SEARCH, TOKEN, FakeReddit, comments_path, stream_path

ACME = BrandQuery("Acme", terms=("acme",), exclude=("giveaway",))
ENV_NAMES = ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET")


def ago(**kwargs: float) -> datetime:
    return T0 - timedelta(**kwargs)


@pytest.fixture
def api() -> Iterator[FakeReddit]:
    with FakeReddit(now=T0) as fake:
        yield fake


def make(api: FakeReddit, clock: FixedClock, sleeps: list[float], attempts: int = 4, **settings) -> reddit.RedditConnector:
    policy = RetryPolicy(attempts=attempts, base_delay=1.0, max_delay=60.0, sleep=sleeps.append, rng=random.Random(3))
    return reddit.create(api.settings(**settings), clock, env=api.env, retry=policy)


def run(connector: reddit.RedditConnector, since=None, query: BrandQuery = ACME) -> list[Batch]:
    return list(connector.fetch(query, since))


def mentions(batches: list[Batch]) -> list[Mention]:
    return [m for b in batches for m in b.mentions]


def ids(batches: list[Batch]) -> list[str]:
    return [m.id for m in mentions(batches)]


def checkpoint(batches: list[Batch]):
    assert all(b.checkpoint is None for b in batches[:-1]), "only the last batch of a run may carry the cursor"
    assert batches[-1].checkpoint is not None
    return batches[-1].checkpoint


# -- settings and factory ------------------------------------------------------------------


def test_settings_document_every_key_with_its_default():
    expected = {
        "client_id_env": "REDDIT_CLIENT_ID", "client_secret_env": "REDDIT_CLIENT_SECRET",
        "base_url": "https://oauth.reddit.com", "auth_url": "https://www.reddit.com", "subreddits": [],
        "history_days": 7, "max_submissions_per_run": 250, "comment_tree_limit": 8, "max_comments_per_run": 1000,
    }
    for key, default in expected.items():
        spec = reddit.SETTINGS[key]
        kind, value, doc = spec.type, spec.default, spec.doc
        assert value == default and isinstance(value, kind) and doc
    kind, agent = reddit.SETTINGS["user_agent"].type, reddit.SETTINGS["user_agent"].default
    assert kind is str and "brandmood-listener" in agent


@pytest.mark.parametrize("env, missing", [
    ({}, ENV_NAMES),
    ({"REDDIT_CLIENT_ID": "id"}, ("REDDIT_CLIENT_SECRET",)),
    ({"REDDIT_CLIENT_ID": "id", "REDDIT_CLIENT_SECRET": "  "}, ("REDDIT_CLIENT_SECRET",)),
])
def test_missing_credentials_raise_auth_error_naming_the_variables(clock, env, missing):
    with pytest.raises(AuthError) as caught:
        reddit.create({}, clock, env=env)
    assert caught.value.env_vars == missing
    for name in missing:
        assert name in str(caught.value)


def test_credential_variables_are_configurable(clock):
    with pytest.raises(AuthError) as caught:
        reddit.create({"client_id_env": "MY_ID", "client_secret_env": "MY_SECRET"}, clock, env={"MY_ID": "x"})
    assert caught.value.env_vars == ("MY_SECRET",)


def test_bad_settings_are_all_reported_at_once(clock, api):
    with pytest.raises(ValueError) as caught:
        reddit.create({"history_days": 0, "subreddits": ["ok_name", "bad name!"], "base_url": "ftp://x",
                       "max_comments_per_run": "many"}, clock, env=api.env)
    message = str(caught.value)
    for fragment in ("history_days", "bad name!", "base_url", "max_comments_per_run"):
        assert fragment in message


def test_the_connector_meets_the_protocol_and_a_quiet_run_still_checkpoints(api, clock, sleeps):
    connector = make(api, clock, sleeps)
    assert isinstance(connector, Connector) and connector.name == "reddit"
    batches = run(connector)
    assert len(batches) == 1 and batches[0].mentions == ()
    assert checkpoint(batches)["v"] == reddit.CURSOR_VERSION
    connector.close()


def test_a_query_reddit_cannot_express_fails_before_any_request(api, clock, sleeps):
    with pytest.raises(QueryError):
        run(make(api, clock, sleeps), query=BrandQuery("Nothing"))
    assert api.requests == []


# -- search ----------------------------------------------------------------------------------


def test_search_pages_newest_first_with_after_and_reads_everything_once(api, clock, sleeps):
    # 230 fuzzy hits ("acmeville"): search returns them, the local check would not, so
    # no thread is fetched and the test is about paging alone.
    for i in range(230):
        api.add_submission(f"f{i:03d}", f"Acmeville council meeting {i}", at=ago(minutes=230 - i))
    batches = run(make(api, clock, sleeps))

    assert ids(batches) == [f"f{i:03d}" for i in reversed(range(230))]
    searches = api.requests_to(SEARCH)
    assert [r.query.get("after", [None])[0] for r in searches] == [None, "t3_f130", "t3_f030"]
    first = searches[0].query
    assert first["q"] == [compile_reddit(ACME)] and first["sort"] == ["new"] and first["limit"] == ["100"]
    assert first["t"] == ["month"]  # covers history_days=7 with a margin
    assert api.requests_to(comments_path("f001")) == []
    assert all(len(b.mentions) <= reddit.BATCH_SIZE for b in batches)
    checkpoint(batches)


def test_submissions_map_to_mentions(api, clock, sleeps):
    api.add_submission("s1", "Acme beans", selftext="Tried them today, lovely.", at=ago(hours=3), author="ann",
                       score=-3, num_comments=0, upvote_ratio=0.4, subreddit="coffee")
    api.add_submission("s2", "Acme is back", at=ago(hours=2), author="[deleted]", selftext="[removed]")
    found = {m.id: m for m in mentions(run(make(api, clock, sleeps)))}

    s1 = found["s1"]
    assert s1.source == "reddit" and s1.brand == "Acme" and not s1.thread_context
    assert s1.text == "Acme beans\n\nTried them today, lovely."
    assert s1.created_at == ago(hours=3) and s1.created_at.tzinfo is timezone.utc
    assert s1.author == "ann" and s1.url == "https://www.reddit.com/r/coffee/comments/s1/post/"
    assert (s1.conversation_id, s1.parent_id, s1.lang) == ("s1", None, None)
    assert dict(s1.metrics) == {"likes": 0, "replies": 0, "score": -3, "upvote_ratio": 0.4}
    assert s1.raw["subreddit"] == "coffee" and s1.raw["title"] == "Acme beans"
    assert s1.fetched_at == T0
    assert found["s2"].author is None and found["s2"].text == "Acme is back"


def test_only_locally_matched_submissions_have_their_threads_read(api, clock, sleeps):
    api.add_submission("hit", "Acme coffee review", at=ago(hours=3))
    api.add_submission("fuzzy", "Acmeville weather", at=ago(hours=2))
    api.add_submission("excluded", "Acme giveaway inside", at=ago(hours=1))
    for sid in ("hit", "fuzzy", "excluded"):
        api.add_comment(sid, f"c-{sid}", "a reply", at=ago(minutes=30))
    found = ids(run(make(api, clock, sleeps)))

    assert set(found) == {"hit", "fuzzy", "excluded", "c-hit"}
    assert [r.path for r in api.requests if r.path.startswith("/comments/")] == [comments_path("hit")]


# -- comment trees -------------------------------------------------------------------------------


def build_thread(api: FakeReddit) -> None:
    api.add_submission("s1", "Acme espresso machine", at=ago(hours=5), num_comments=0)
    api.add_comment("s1", "c1", "Mine broke after a week", at=ago(hours=4), author="bea", score=7)
    api.add_comment("s1", "c2", "Same here", parent="c1", at=ago(hours=3, minutes=50))
    api.add_comment("s1", "c3", "Support fixed it for me", parent="c1", at=ago(hours=3, minutes=40), collapsed=True)
    api.add_comment("s1", "c4", "Lucky you", parent="c3", at=ago(hours=3, minutes=30), author="[deleted]")
    api.add_comment("s1", "c5", "[removed]", at=ago(hours=3, minutes=20))
    api.add_comment("s1", "c6", "Love it", at=ago(hours=3, minutes=10), collapsed=True, score=-2)


def test_comment_trees_are_read_with_more_children_expanded(api, clock, sleeps):
    build_thread(api)
    batches = run(make(api, clock, sleeps))
    found = {m.id: m for m in mentions(batches)}

    assert set(found) == {"s1", "c1", "c2", "c3", "c4", "c6"}  # c5 was removed: no speech left
    comments = [found[c] for c in ("c1", "c2", "c3", "c4", "c6")]
    assert all(m.thread_context and m.conversation_id == "s1" for m in comments)
    assert {m.id: m.parent_id for m in comments} == {"c1": "s1", "c2": "c1", "c3": "c1", "c4": "c3", "c6": "s1"}
    assert found["c1"].author == "bea" and found["c4"].author is None
    assert dict(found["c1"].metrics) == {"likes": 7, "score": 7, "replies": 2}
    assert dict(found["c6"].metrics) == {"likes": 0, "score": -2, "replies": 0}
    assert found["c2"].url == "https://www.reddit.com/r/coffee/comments/s1/post/c2/"
    assert found["c2"].created_at == ago(hours=3, minutes=50)
    assert found["c3"].raw["body"] == "Support fixed it for me"
    # One batch holds the submission with its thread; the last carries the cursor.
    assert [m.id for m in batches[0].mentions][0] == "s1" and len(batches[0].mentions) == 6

    expansions = api.requests_to(MORECHILDREN, "POST")
    assert len(expansions) == 2
    forms = [{k: v[0] for k, v in r.form().items()} for r in expansions]
    assert {f["children"] for f in forms} == {"c3,c4", "c6"} and {f["link_id"] for f in forms} == {"t3_s1"}


@pytest.mark.parametrize("limit, expansions", [(0, 0), (1, 1), (8, 2)])
def test_comment_tree_limit_bounds_the_expansions(api, clock, sleeps, limit, expansions):
    build_thread(api)
    found = set(ids(run(make(api, clock, sleeps, comment_tree_limit=limit))))
    assert len(api.requests_to(MORECHILDREN, "POST")) == expansions
    assert {"s1", "c1", "c2"} <= found
    # praw expands the larger 'more' (c3, c4) first
    assert ({"c3", "c4"} <= found) == (expansions >= 1) and ("c6" in found) == (expansions >= 2)


def _real_stream_comment(cid: str, body: str, at: datetime) -> dict:
    """A t1 child shaped like one of Reddit's recorded /r/SUB/comments answers, but
    without ``permalink`` (some listings serve comments without it)."""
    return {"kind": "t1", "data": {
        "subreddit_id": "t5_2qhb8", "approved_at_utc": None, "author_is_blocked": False, "comment_type": None,
        "link_title": "Morning brew thread", "mod_reason_by": None, "banned_by": None, "ups": 3,
        "num_reports": None, "author_flair_type": "text", "total_awards_received": 0, "subreddit": "coffee",
        "link_author": "brewer", "likes": None, "replies": "", "user_reports": [], "saved": False, "id": cid,
        "banned_at_utc": None, "gilded": 0, "archived": False, "no_follow": True, "author": "sipper",
        "num_comments": 12, "send_replies": True, "parent_id": "t3_1h2x3yz", "score": 3,
        "author_fullname": "t2_abc123", "over_18": False, "controversiality": 0, "body": body, "edited": False,
        "downs": 0, "is_submitter": False, "collapsed": False, "author_flair_richtext": [],
        "body_html": f"&lt;div class=\"md\"&gt;&lt;p&gt;{body}&lt;/p&gt;&lt;/div&gt;", "gildings": {},
        "distinguished": None, "stickied": False, "can_gild": False, "link_id": "t3_1h2x3yz",
        "score_hidden": False, "subreddit_type": "public",
        "link_permalink": "https://www.reddit.com/r/coffee/comments/1h2x3yz/morning_brew_thread/",
        "name": f"t1_{cid}", "subreddit_name_prefixed": "r/coffee", "treatment_tags": [],
        "created": at.timestamp(), "created_utc": at.timestamp(), "awarders": [], "all_awardings": [],
        "locked": False, "quarantine": False, "link_url": "https://www.reddit.com/r/coffee/comments/1h2x3yz/"}}


def test_a_comment_without_permalink_gets_its_url_from_its_thread_and_id(api, clock, sleeps):
    api.add_raw_comment(_real_stream_comment("m9k2j1q", "acme grinder is quiet", ago(minutes=20)),
                        at=ago(minutes=20), fullname="t1_m9k2j1q")
    api.add_submission("s1", "Acme espresso machine", at=ago(hours=5), subreddit="espresso")  # not polled
    api.add_comment("s1", "c1", "no permalink in the tree either", at=ago(hours=4), permalink=False)
    found = {m.id: m for m in mentions(run(make(api, clock, sleeps, subreddits=["coffee"])))}

    assert found["m9k2j1q"].url == "https://www.reddit.com/comments/1h2x3yz/_/m9k2j1q/"
    assert found["m9k2j1q"].conversation_id == "1h2x3yz" and not found["m9k2j1q"].thread_context
    assert found["c1"].url == "https://www.reddit.com/comments/s1/_/c1/" and found["c1"].thread_context


# -- subreddit comments -----------------------------------------------------------------------------


def test_subreddit_comments_are_polled_newest_first_with_paging(api, clock, sleeps):
    api.add_submission("tea1", "Which kettle?", at=ago(hours=10), subreddit="tea")  # not search hits
    api.add_submission("cof1", "Morning brew thread", at=ago(hours=10), subreddit="coffee")
    api.add_submission("x1", "Elsewhere", at=ago(hours=10), subreddit="cars")
    for i in range(150):
        sid = ("tea1", "cof1")[i % 2]
        api.add_comment(sid, f"p{i:03d}", f"comment {i} about acme", at=ago(minutes=300 - i))
    api.add_comment("x1", "other", "acme in another subreddit", at=ago(minutes=5))

    batches = run(make(api, clock, sleeps, subreddits=["coffee", "tea"]))
    polled = mentions(batches)

    assert [m.id for m in polled] == [f"p{i:03d}" for i in reversed(range(150))]
    assert all(not m.thread_context for m in polled)
    assert {m.conversation_id for m in polled} == {"tea1", "cof1"} and polled[0].parent_id in {"tea1", "cof1"}
    assert "replies" not in polled[0].metrics  # a listing does not say how many replies a comment has
    pages = api.requests_to(stream_path("coffee", "tea"))
    assert [r.query.get("after", [None])[0] for r in pages] == [None, "t1_p050"]
    assert checkpoint(batches)["subreddits"] == "coffee+tea"


def test_a_second_run_reads_only_what_is_new(api, clock, sleeps):
    build_thread(api)
    api.add_submission("s0", "Acme grinder", at=ago(days=2))
    connector = make(api, clock, sleeps, subreddits=["coffee"])
    first = run(connector)
    assert {"s0", "s1", "c1", "c6"} <= set(ids(first))
    before = len(api.requests)

    clock.advance(minutes=15)
    api.now = clock.now
    api.add_submission("s9", "Acme descaling tips", at=T0 + timedelta(minutes=5))
    api.add_comment("s9", "n1", "Vinegar works", at=T0 + timedelta(minutes=8))
    api.add_comment("s1", "late", "acme replaced mine", at=T0 + timedelta(minutes=10))
    second = run(connector, checkpoint(first))

    # s9 with its thread (n1 as context), then the polled comments, newest first
    assert [(m.id, m.thread_context) for m in mentions(second)] == [
        ("s9", False), ("n1", True), ("late", False), ("n1", False)]
    new_requests = api.requests[before:]
    assert [r.path for r in new_requests if r.path.startswith("/comments/")] == [comments_path("s9")]
    assert len([r for r in new_requests if r.path == SEARCH]) == 1
    assert [r for r in new_requests if r.path == SEARCH][0].query["t"] == ["day"]

    clock.advance(minutes=15)
    third = run(connector, checkpoint(second))
    assert ids(third) == []


def test_a_late_indexed_post_within_the_overlap_is_still_found(api, clock, sleeps):
    api.add_submission("s1", "Acme one", at=ago(minutes=20))
    connector = make(api, clock, sleeps)
    first = run(connector)
    # Reddit's search indexes a post created before s1 only now.
    api.add_submission("late", "Acme late", at=ago(minutes=25))
    clock.advance(minutes=10)
    assert ids(run(connector, checkpoint(first))) == ["late"]


def test_changing_the_subreddits_starts_a_new_comment_stream(api, clock, sleeps):
    api.add_submission("k1", "Brew thread", at=ago(hours=5), subreddit="coffee")
    api.add_comment("k1", "p1", "acme again", at=ago(hours=4))
    first = run(make(api, clock, sleeps, subreddits=["coffee"]))
    assert ids(first) == ["p1"]
    clock.advance(minutes=15)
    assert ids(run(make(api, clock, sleeps, subreddits=["coffee"]), checkpoint(first))) == []
    assert ids(run(make(api, clock, sleeps, subreddits=["coffee", "tea"]), checkpoint(first))) == ["p1"]


# -- caps, gaps and downtime --------------------------------------------------------------------------------


def test_a_capped_run_keeps_the_rest_as_a_gap_that_later_runs_read(api, clock, sleeps):
    for i in range(10):
        api.add_submission(f"s{i}", f"Acme post {i}", at=ago(minutes=10 - i))
        api.add_comment(f"s{i}", f"c{i}", "nice", at=ago(minutes=10 - i, seconds=-30))
    connector = make(api, clock, sleeps, max_submissions_per_run=4)
    seen: list[str] = []

    first = run(connector)
    seen += ids(first)
    assert [i for i in ids(first) if i.startswith("s")] == ["s9", "s8", "s7", "s6"]
    cursor = checkpoint(first)
    assert len(cursor["submissions"]["gaps"]) == 1 and cursor["submissions"]["gaps"][0]["after"] == "t3_s6"

    clock.advance(minutes=10)
    api.now = clock.now
    api.add_submission("s10", "Acme post 10", at=T0 + timedelta(minutes=5))
    api.add_submission("s11", "Acme post 11", at=T0 + timedelta(minutes=6))
    runs = 1
    while True:
        for gap in cursor["submissions"]["gaps"]:
            assert gap["after_utc"] is not None and gap["after"].startswith("t3_")
        batches = run(connector, cursor)
        seen += ids(batches)
        cursor = checkpoint(batches)
        runs += 1
        if not cursor["submissions"]["gaps"] or runs > 6:
            break
    submissions = [i for i in seen if i.startswith("s")]
    assert sorted(submissions) == sorted(f"s{i}" for i in range(12))  # each exactly once
    assert sorted(i for i in seen if i.startswith("c")) == sorted(f"c{i}" for i in range(10))
    assert runs <= 4
    assert any(r.query.get("after") == ["t3_s6"] for r in api.requests_to(SEARCH))
    for i in range(10):  # each thread read once
        assert len(api.requests_to(comments_path(f"s{i}"))) == 1


def test_a_gap_whose_anchor_was_deleted_is_read_from_the_top(api, clock, sleeps):
    for i in range(6):
        api.add_submission(f"s{i}", f"Acme post {i}", at=ago(hours=6 - i))
    connector = make(api, clock, sleeps, max_submissions_per_run=3)
    first = run(connector)
    assert ids(first) == ["s5", "s4", "s3"]
    del api.submissions["s3"]  # the gap's anchor: removed by the moderators
    clock.advance(minutes=5)
    second = run(connector, checkpoint(first))
    assert ids(second) == ["s2", "s1", "s0"]
    assert [r.query.get("after") for r in api.requests_to(SEARCH)][-2:] == [["t3_s3"], None]
    assert checkpoint(second)["submissions"]["gaps"] == []


def test_a_run_that_fails_midway_does_not_move_the_cursor(api, clock, sleeps):
    api.add_submission("s1", "Acme one", at=ago(hours=2))
    api.add_submission("s2", "Acme two", at=ago(hours=1))
    api.script("GET", comments_path("s1"), Reply(403, {"message": "Forbidden", "error": 403}))
    fetch = make(api, clock, sleeps).fetch(ACME, None)
    first = next(fetch)
    assert [m.id for m in first.mentions] == ["s2"] and first.checkpoint is None
    with pytest.raises(AuthError):
        next(fetch)


def test_downtime_beyond_the_listing_limit_is_logged_and_the_cursor_moves_on(api, clock, sleeps, caplog):
    api.add_submission("k1", "Brew thread", at=ago(days=3), subreddit="coffee")
    api.add_comment("k1", "old", "acme", at=ago(days=2))
    connector = make(api, clock, sleeps, subreddits=["coffee"], max_comments_per_run=5000)
    cursor = checkpoint(run(connector))

    clock.advance(hours=30)
    api.now = clock.now
    for i in range(1100):
        api.add_comment("k1", f"n{i:04d}", f"acme {i}", at=T0 + timedelta(minutes=1 + i))
    with caplog.at_level(logging.WARNING, logger="listener.connectors.reddit"):
        batches = run(connector, cursor)
    got = ids(batches)
    assert len(got) == 1000 and got[0] == "n1099" and got[-1] == "n0100"
    assert "cannot be read" in caplog.text and "1,000" in caplog.text
    new_cursor = checkpoint(batches)["comments"]
    assert new_cursor["newest_utc"] == (T0 + timedelta(minutes=1100)).timestamp() and new_cursor["gaps"] == []


def test_a_cursor_older_than_history_days_reads_back_only_that_far(api, clock, sleeps, caplog):
    api.add_submission("s1", "Acme one", at=ago(days=1))
    connector = make(api, clock, sleeps, history_days=2)
    cursor = checkpoint(run(connector))
    clock.advance(days=5)
    api.now = clock.now
    api.add_submission("s2", "Acme two", at=T0 + timedelta(days=2))  # 3 days before the new "now"
    api.add_submission("s3", "Acme three", at=T0 + timedelta(days=4))
    with caplog.at_level(logging.WARNING, logger="listener.connectors.reddit"):
        assert ids(run(connector, cursor)) == ["s3"]
    assert "older than history_days" in caplog.text


def test_an_unreadable_cursor_starts_over(api, clock, sleeps, caplog):
    api.add_submission("s1", "Acme one", at=ago(hours=1))
    with caplog.at_level(logging.WARNING, logger="listener.connectors.reddit"):
        assert ids(run(make(api, clock, sleeps), {"v": 99, "whatever": 1})) == ["s1"]
    assert "unreadable cursor" in caplog.text


# -- malformed data -------------------------------------------------------------------------------------------


def test_malformed_items_are_skipped_and_counted(api, clock, sleeps):
    api.add_submission("s1", "Acme one", at=ago(hours=3))
    api.add_submission("s2", "Acme two", at=ago(hours=1))
    api.add_comment("s1", "good", "fine", at=ago(hours=2))
    bad_comment = api.add_comment("s1", "bad", "odd", at=ago(hours=2, minutes=1))
    bad_comment["created_utc"] = "yesterday"
    api.add_raw_submission({"kind": "t3", "data": {"title": "Acme, no id", "created_utc": ago(hours=2).timestamp()}},
                           at=ago(hours=2), fullname="t3_noid")
    api.add_raw_submission({"kind": "t3", "data": {"id": "badtime", "title": "Acme", "created_utc": "noon"}},
                           at=ago(hours=2, minutes=5), fullname="t3_badtime")
    api.add_raw_submission("not an object", at=ago(hours=2, minutes=10), fullname="t3_str")
    api.add_raw_submission({"kind": "t3", "data": {"id": "badscore", "title": "Acme", "score": "lots",
                                                   "created_utc": ago(hours=2, minutes=15).timestamp()}},
                           at=ago(hours=2, minutes=15), fullname="t3_badscore")
    api.add_raw_comment({"kind": "t1", "data": {"id": "nobody", "created_utc": ago(hours=1).timestamp(),
                                                "link_id": "t3_s1"}}, at=ago(hours=1), fullname="t1_nobody")
    batches = run(make(api, clock, sleeps, subreddits=["tea"]))  # the raw comment is in every stream

    assert sum(b.skipped for b in batches) == 6
    assert {"s1", "s2", "good"} <= set(ids(batches))
    assert not {"bad", "badtime", "badscore", "nobody"} & set(ids(batches))


def test_a_thread_praw_cannot_parse_is_skipped_and_counted(api, clock, sleeps):
    api.add_submission("s1", "Acme one", at=ago(hours=3))
    api.add_submission("s2", "Acme two", at=ago(hours=1))
    api.add_comment("s2", "ok", "fine", at=ago(minutes=30))
    api.script("GET", comments_path("s1"), Reply(200, [{"kind": "Listing", "data": {"children": []}}]))
    batches = run(make(api, clock, sleeps))
    assert set(ids(batches)) == {"s1", "s2", "ok"} and sum(b.skipped for b in batches) == 1


def test_a_page_that_is_not_json_is_retried(api, clock, sleeps):
    api.add_submission("s1", "Acme one", at=ago(hours=1))
    api.script("GET", SEARCH, Reply(200, "{\"kind\": \"Listing\", \"da"))
    assert ids(run(make(api, clock, sleeps))) == ["s1"]
    assert len(api.requests_to(SEARCH)) == 2 and len(sleeps) == 1


def test_json_that_is_not_a_listing_is_retried(api, clock, sleeps):
    api.add_submission("s1", "Acme one", at=ago(hours=1))
    api.script("GET", SEARCH, Reply(200, {"kind": "Listing", "data": None}))
    assert ids(run(make(api, clock, sleeps))) == ["s1"]
    assert len(api.requests_to(SEARCH)) == 2


def test_a_page_that_is_never_json_ends_the_run_as_retryable(api, clock, sleeps):
    api.script("GET", SEARCH, Reply(200, "<html>we're down</html>"), Reply(200, "<html>we're down</html>"),
               Reply(200, "<html>we're down</html>"))
    with pytest.raises(RetryableError, match="not JSON"):
        run(make(api, clock, sleeps, attempts=3))


# -- rate limits, server errors, timeouts ----------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out_through_the_injected_sleep(api, clock, sleeps):
    api.add_submission("s1", "Acme one", at=ago(hours=1))
    api.script("GET", SEARCH, Reply(429, {"message": "Too Many Requests", "error": 429},
                                    headers={"retry-after": "7", "x-ratelimit-remaining": "0",
                                             "x-ratelimit-used": "1000", "x-ratelimit-reset": "7"}))
    assert ids(run(make(api, clock, sleeps))) == ["s1"]
    assert sleeps[0] == 7.0
    assert len(api.requests_to(SEARCH)) == 2


def test_429_without_headers_backs_off_with_jitter(api, clock, sleeps):
    api.add_submission("s1", "Acme one", at=ago(hours=1))
    api.script("GET", SEARCH, Reply(429, "Too Many Requests"), Reply(429, "Too Many Requests"))
    assert ids(run(make(api, clock, sleeps))) == ["s1"]
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0


def test_a_retry_after_longer_than_the_cap_ends_the_run_at_once(api, clock, sleeps):
    api.script("GET", SEARCH, Reply(429, {"error": 429}, headers={"retry-after": "3600"}))
    with pytest.raises(RateLimitedError) as caught:
        run(make(api, clock, sleeps))
    assert caught.value.retry_after == 3600 and sleeps == [] and len(api.requests_to(SEARCH)) == 1


def test_a_spent_request_budget_is_waited_for_when_short(api, clock, sleeps):
    build_thread(api)
    api.ratelimit = {"x-ratelimit-remaining": "0", "x-ratelimit-used": "1000", "x-ratelimit-reset": "5"}
    started = time.monotonic()
    assert "c1" in ids(run(make(api, clock, sleeps)))
    elapsed = time.monotonic() - started
    # prawcore's throttle, through our sleep: the reset less the time since the answer, on
    # the real clock, so the lower bound allows for however long this run really took.
    assert sleeps and all(5.0 - elapsed < s <= 5.0 for s in sleeps), (sleeps, elapsed)


def test_a_spent_request_budget_with_a_long_reset_ends_the_run(api, clock, sleeps):
    build_thread(api)
    api.ratelimit = {"x-ratelimit-remaining": "0", "x-ratelimit-used": "1000", "x-ratelimit-reset": "300"}
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        run(make(api, clock, sleeps))
    elapsed = time.monotonic() - started  # the reset counts down on the real clock (prawcore)
    assert 300 - elapsed < caught.value.retry_after <= 300 and sleeps == []
    assert api.requests_to(comments_path("s1")) == []  # the next request was not sent


TOKEN_429 = "<!doctype html><html><head><title>Too Many Requests</title></head><body><h1>whoa there, pardner!</h1>" \
            "<p>we're sorry, but you appear to be a bot and we've seen too many requests from you lately.</p>" \
            "</body></html>"
"""What Reddit's token endpoint answers a client that asks too often (an HTML page)."""


@pytest.mark.parametrize("headers, wait", [({"retry-after": "9"}, 9.0),
                                           ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "12"}, 12.0)])
def test_a_429_on_the_token_request_is_waited_out_then_the_run_goes_on(api, clock, sleeps, headers, wait):
    """prawcore raises a bare ResponseException (not TooManyRequests) for a refused token
    request: it must still be a rate limit, honouring Retry-After / x-ratelimit-reset."""
    api.add_submission("s1", "Acme one", at=ago(hours=1))
    api.script("POST", TOKEN, Reply(429, TOKEN_429, headers={"Content-Type": "text/html", **headers}))
    assert ids(run(make(api, clock, sleeps))) == ["s1"]
    assert sleeps == [wait] and len(api.requests_to(TOKEN, "POST")) == 2


def test_a_long_429_on_the_token_request_ends_the_run_as_rate_limited(api, clock, sleeps):
    api.script("POST", TOKEN, Reply(429, TOKEN_429, headers={"Content-Type": "text/html", "retry-after": "600"}))
    with pytest.raises(RateLimitedError) as caught:
        run(make(api, clock, sleeps))
    assert caught.value.retry_after == 600 and sleeps == [] and "retrying will not help" not in str(caught.value)


def test_a_server_error_on_the_token_request_is_retried(api, clock, sleeps):
    api.add_submission("s1", "Acme one", at=ago(hours=1))
    api.script("POST", TOKEN, Reply(503, "<html><body>upstream connect error</body></html>"))
    assert ids(run(make(api, clock, sleeps))) == ["s1"]
    assert len(sleeps) == 1 and len(api.requests_to(TOKEN, "POST")) == 2


def test_the_access_token_reddit_hands_out_is_never_echoed_in_an_error(api, clock, sleeps):
    """A peer that names the bearer token it was sent (here in a redirect's Location):
    the token is a secret from the moment prawcore receives it."""
    def redirect_naming_the_token(request):
        token = request.headers["authorization"].split(" ", 1)[1]
        return Reply(302, "", headers={"location": f"https://www.reddit.com/login/{token}/?dest=search"})

    api.script("GET", SEARCH, redirect_naming_the_token)
    with pytest.raises(FatalError) as caught:
        run(make(api, clock, sleeps))
    [issued] = api.tokens
    assert "redirected" in str(caught.value) and issued not in str(caught.value)


def test_server_errors_are_retried_by_prawcore_then_by_us(api, clock, sleeps):
    api.add_submission("s1", "Acme one", at=ago(hours=1))
    api.script("GET", SEARCH, Reply(500), Reply(503), Reply(502))
    assert ids(run(make(api, clock, sleeps))) == ["s1"]
    assert len(api.requests_to(SEARCH)) == 4  # prawcore: 1 + 2 retries; then ours
    assert len(sleeps) == 3  # prawcore's two waits and ours, all through the injected sleep


def test_a_timeout_is_retryable(api, clock, sleeps):
    api.add_submission("s1", "Acme one", at=ago(hours=1))
    slow = Reply(200, {"never": "read"}, delay=0.5)
    api.script("GET", SEARCH, slow, slow, slow)
    assert ids(run(make(api, clock, sleeps, request_timeout=0.1))) == ["s1"]
    assert len(api.requests_to(SEARCH)) == 4


# -- auth and refusals -----------------------------------------------------------------------------------------------


def test_wrong_credentials_raise_auth_error_naming_the_variables(clock, sleeps):
    with FakeReddit(now=T0, client_secret="the-real-one") as api:
        connector = reddit.create(api.settings(), clock, env={**api.env, "REDDIT_CLIENT_SECRET": "wrong"},
                                  retry=RetryPolicy(sleep=sleeps.append))
        with pytest.raises(AuthError) as caught:
            run(connector)
        assert caught.value.env_vars == ENV_NAMES
        assert all(name in str(caught.value) for name in ENV_NAMES)
        assert "wrong" not in str(caught.value)  # never echo a secret
        assert len(api.requests_to(TOKEN, "POST")) == 1 and sleeps == []


def test_a_token_reddit_stops_accepting_raises_auth_error(api, clock, sleeps):
    api.reject_tokens = True
    with pytest.raises(AuthError) as caught:
        run(make(api, clock, sleeps))
    assert caught.value.env_vars == ENV_NAMES


def test_a_forbidden_subreddit_is_an_auth_error_and_a_missing_one_is_fatal(api, clock, sleeps):
    api.script("GET", stream_path("secret"), Reply(403, {"message": "Forbidden", "error": 403}))
    with pytest.raises(AuthError, match="private"):
        run(make(api, clock, sleeps, subreddits=["secret"]))
    api.script("GET", stream_path("nosuchsub"), Reply(404, {"message": "Not Found", "error": 404}))
    with pytest.raises(FatalError, match="subreddits") as caught:
        run(make(api, clock, sleeps, subreddits=["nosuchsub"]))
    assert not isinstance(caught.value, AuthError)


def test_a_praw_ini_in_the_working_directory_cannot_redirect_the_client(api, clock, sleeps, tmp_path, monkeypatch):
    (tmp_path / "praw.ini").write_text(
        "[DEFAULT]\noauth_url=http://127.0.0.1:9\nreddit_url=http://127.0.0.1:9\n"
        "username=someone\npassword=hunter2\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("praw_username", "someone")
    monkeypatch.setenv("praw_password", "hunter2")
    monkeypatch.setenv("praw_site", "nonexistent")
    monkeypatch.setattr(praw.config.Config, "CONFIG", None)  # make praw read the files again
    api.add_submission("s1", "Acme one", at=ago(hours=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # praw 8 warns about the file; we override its keys
        connector = make(api, clock, sleeps)
    assert ids(run(connector)) == ["s1"]
    token = api.requests_to(TOKEN, "POST")
    assert len(token) == 1 and token[0].form()["grant_type"] == ["client_credentials"]


# -- through the pipeline into a real store -----------------------------------------------------------------------------


def stored(store) -> list[tuple]:
    with store.native() as db:
        return db.execute("SELECT id, thread_context, conversation_id, parent_id FROM mentions "
                          "WHERE source = 'reddit' ORDER BY id").fetchall()


def test_two_pipeline_runs_store_each_matched_submission_and_its_thread_once(store, clock, sleeps):
    with FakeReddit(now=T0) as api:
        build_thread(api)
        api.add_submission("fz", "Acmeville parade", at=ago(hours=2))
        api.add_submission("gv", "Acme giveaway!!!", at=ago(hours=2))
        api.add_comment("gv", "gv1", "me please", at=ago(hours=1))
        pipeline = Pipeline(store, VaderScorer(), clock)
        connector = make(api, clock, sleeps, subreddits=["coffee"])

        first = pipeline.pull(connector, ACME)
        assert (first.new, first.skipped) == (6, 0)
        cursor = store.get_cursor("reddit", "Acme")
        assert cursor["v"] == 1 and cursor["submissions"]["gaps"] == []

        clock.advance(minutes=20)
        api.now = clock.now
        api.add_submission("s2", "Acme milk frother", at=T0 + timedelta(minutes=5))
        api.add_comment("s2", "d1", "Mine is loud", at=T0 + timedelta(minutes=7))
        api.add_comment("s1", "late1", "acme fixed it in the end", at=T0 + timedelta(minutes=9))
        api.add_comment("s1", "late2", "me too", at=T0 + timedelta(minutes=10))
        second = pipeline.pull(connector, ACME)
        assert second.new == 3  # s2, d1, late1 (late2 names no brand and came from polling)

    rows = stored(store)
    assert [r[0] for r in rows] == sorted({r[0] for r in rows})  # each once
    assert {r[0]: r[1:] for r in rows} == {
        "s1": (False, "s1", None), "c1": (True, "s1", "s1"), "c2": (True, "s1", "c1"), "c3": (True, "s1", "c1"),
        "c4": (True, "s1", "c3"), "c6": (True, "s1", "s1"),
        "s2": (False, "s2", None), "d1": (True, "s2", "s2"), "late1": (False, "s1", "s1"),
    }
    with store.native() as db:
        scored = db.execute("SELECT count(*) FROM scores WHERE source = 'reddit'").fetchone()[0]
        runs = db.execute("SELECT status FROM runs WHERE kind = 'pull' ORDER BY run_id").fetchall()
    assert scored == len(rows) and runs == [("ok",), ("ok",)]


def test_a_pull_against_a_failing_server_fails_and_keeps_the_cursor(store, clock, sleeps):
    with FakeReddit(now=T0) as api:
        api.add_submission("s1", "Acme one", at=ago(hours=1))
        pipeline = Pipeline(store, VaderScorer(), clock)
        connector = make(api, clock, sleeps)
        pipeline.pull(connector, ACME)
        cursor = store.get_cursor("reddit", "Acme")

        clock.advance(minutes=15)
        api.now = clock.now
        api.add_submission("s2", "Acme two", at=T0 + timedelta(minutes=5))
        before = len(api.requests_to(SEARCH))
        api.route("GET", SEARCH, Reply(500, {"message": "Internal Server Error", "error": 500}))  # forever
        with pytest.raises(RetryableError):
            pipeline.pull(connector, ACME)
        assert len(api.requests_to(SEARCH)) - before == 4 * 3  # our 4 attempts x prawcore's 3
        assert len(sleeps) == 4 * 2 + 3

    assert store.get_cursor("reddit", "Acme") == cursor
    assert [r[0] for r in stored(store)] == ["s1"]
    with store.native() as db:
        status, error = db.execute("SELECT status, error FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    assert status == "failed" and "RetryableError" in error


# -- the brand's own voice (issue 15) --------------------------------------------------------


def test_the_brands_own_comments_come_with_the_threads_they_answer(api, clock, sleeps, store):
    """The thread names no brand term: only the brand's account's comments bring the
    brand's reply and the customer's answer to it (its thread's comment tree)."""
    query = BrandQuery("Acme", terms=("acme",), own_accounts=(("reddit", ("u/Acme_Team",)),))
    api.add_submission("s1", "My order never came", at=ago(hours=5), author="carol")
    api.add_comment("s1", "c1", "So sorry! Please DM us the order number.", at=ago(hours=4), author="acme_team")
    api.add_comment("s1", "c2", "thanks, it came today", at=ago(hours=3), parent="c1", author="carol")
    api.add_submission("s2", "Unrelated", at=ago(hours=2), author="dave")
    connector = make(api, clock, sleeps)
    result = Pipeline(store, VaderScorer(), clock).pull(connector, query)
    assert (result.new, result.rejected) == (3, 0)
    with store.native() as db:
        rows = dict(db.execute("SELECT id, (own, thread_context, conversation_id) FROM mentions").fetchall())
        cursor = store.get_cursor("reddit", "Acme")
    # The post that opens the thread comes with it, as context: it need not name the brand.
    assert rows == {"s1": (False, True, "s1"), "c1": (True, False, "s1"), "c2": (False, True, "s1")}
    assert set(cursor["own"]) == {"acme_team"}

    # The next run reads only the account's newer comments.
    api.add_comment("s1", "c3", "Glad to hear it!", at=ago(minutes=10), parent="c2", author="acme_team")
    again = Pipeline(store, VaderScorer(), clock).pull(connector, query)
    assert again.new == 1
    assert api.requests_to("/user/acme_team/comments/")[-1].query["sort"] == ["new"]


def test_replies_after_the_brands_comment_come_while_the_thread_is_watched(api, clock, sleeps, store):
    """A customer answering the brand after the run that read the brand's comment: the
    thread is read again in later runs (no subreddit polled, no new brand comment), until
    thread_watch_hours after the brand's last comment there."""
    query = BrandQuery("Acme", terms=("acme",), own_accounts=(("reddit", ("acme_team",)),))
    api.add_submission("s1", "My order never came", at=ago(hours=5), author="carol")
    api.add_comment("s1", "c1", "So sorry! Please DM us the order number.", at=ago(hours=4), author="acme_team")
    pipeline, connector = Pipeline(store, VaderScorer(), clock), make(api, clock, sleeps, thread_watch_hours=6)
    pipeline.pull(connector, query)
    for number, hours in (("c2", 1), ("c3", 3)):
        clock.advance(hours=hours)
        api.now = clock.now
        api.add_comment("s1", number, f"still nothing, day {number}", at=clock.now - timedelta(minutes=1),
                        parent="c1", author="carol")
        pipeline.pull(connector, query)
    with store.native() as db:
        rows = dict(db.execute("SELECT id, thread_context FROM mentions").fetchall())
    # c2 came 5 h after the brand's comment (watched); c3 at 8 h, past the 6-hour watch.
    assert rows == {"s1": True, "c1": False, "c2": True}
    assert len(api.requests_to(comments_path("s1"))) == 2
    assert store.get_cursor("reddit", "Acme")["watch"] == {}


def test_an_own_account_without_comments_is_skipped_with_a_warning(api, clock, sleeps, caplog):
    api.add_submission("s1", "acme rocks", at=ago(hours=1))
    query = BrandQuery("Acme", terms=("acme",), own_accounts=(("reddit", ("nobody_here",)),))
    with caplog.at_level(logging.WARNING, logger="listener.connectors.reddit"):
        batches = run(make(api, clock, sleeps), query=query)
    assert ids(batches) == ["s1"] and checkpoint(batches)["own"]["nobody_here"]["newest_utc"] is None
    assert "u/nobody_here has no comments to read" in caplog.text


def test_watched_threads_are_read_within_the_runs_budget_least_recently_read_first(api, clock, sleeps, monkeypatch):
    """One new and one watched thread a run (both budgets cut to 1): of three threads the
    brand answered at once, the third is read in the next run, then they take turns."""
    from connectors.reddit import connector as reddit_connector

    monkeypatch.setattr(reddit_connector, "MAX_OWN_THREADS_PER_RUN", 1)
    monkeypatch.setattr(reddit_connector, "MAX_WATCHED_THREADS_PER_RUN", 1)
    query = BrandQuery("Acme", terms=("acme",), own_accounts=(("reddit", ("acme_team",)),))
    for number in (1, 2, 3):
        api.add_submission(f"s{number}", f"question {number}", at=ago(hours=3, minutes=number))
        api.add_comment(f"s{number}", f"c{number}", "We're on it", at=ago(hours=2, minutes=number), author="acme_team")
    connector, since, order = make(api, clock, sleeps), None, []
    for _ in range(3):
        before = {sid: len(api.requests_to(comments_path(sid))) for sid in ("s1", "s2", "s3")}
        since = checkpoint(run(connector, since, query))
        order.append([sid for sid in ("s1", "s2", "s3") if len(api.requests_to(comments_path(sid))) > before[sid]])
        clock.advance(minutes=10)
        api.now = clock.now
    # Run 1: the newest thread answered (new), then a never-read one (watched); run 2 the
    # one left unread; run 3 the least recently read (s1 and s2 tie: the first answered).
    assert order == [["s1", "s2"], ["s3"], ["s1"]]
    assert set(since["watch"]) == {"s1", "s2", "s3"}
