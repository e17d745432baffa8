"""The contract every registered connector keeps, whoever wrote it.

Run over every entry of the ``listener.connectors`` entry point group, so a connector
added to pyproject.toml is checked without touching this file.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta

from analysis.sentiment import VaderScorer
from connectors.base import BrandQuery, Connector, utc_now
from listener.pipeline import Pipeline
from storage.store import Store
from connectors.errors import AuthError
from connectors.registry import available
from connectors.settings import Setting
from tests.conftest import FixedClock, fresh_database
from tests.timing import HANG_GUARD, PEER_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(available())
SECRET_WORDS = ("token", "secret", "password", "api_key")


def test_the_built_in_connectors_are_registered():
    assert {"demo", "x"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_settings_are_declared_typed_defaulted_and_documented(name):
    module = available()[name]
    settings = module.SETTINGS
    assert isinstance(settings, Mapping)
    for key, spec in settings.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", key), key
        assert isinstance(spec, Setting) and spec.name == key, f"{name}.{key}: declared as a Setting"
        expected, default, doc = spec.type, spec.default, spec.doc
        assert spec.problem(default) is None, f"{name}.{key}: its default breaks its own constraints"
        assert isinstance(expected, type), f"{name}.{key}: type"
        assert isinstance(doc, str) and len(doc) > 10, f"{name}.{key}: one-line doc"
        if expected is float:
            assert isinstance(default, (int, float)), f"{name}.{key}: default"
        elif expected is list:
            assert isinstance(default, (list, tuple)), f"{name}.{key}: default"
        else:
            assert isinstance(default, expected), f"{name}.{key}: default {default!r}"
        # Secrets are only ever named, never held, by a setting.
        if any(word in key for word in SECRET_WORDS):
            assert key.endswith("_env"), f"{name}.{key} looks like a secret: name an env var with {key}_env"
    assert not set(settings) & {"enabled", "every_minutes"}, "those keys are common to every source"
    text = (ROOT / "config.example.toml").read_text()
    assert f"[sources.{name}]" in text, f"config.example.toml has no [sources.{name}] section"


@pytest.mark.parametrize("name", NAMES)
def test_create_builds_a_connector_or_names_the_missing_credentials(name):
    module = available()[name]
    defaults = {key: spec.default for key, spec in module.SETTINGS.items()}
    clock = FixedClock()
    env_keys = [key for key in defaults if key.endswith("_env") and defaults[key]]
    takes_env = "env" in inspect.signature(module.create).parameters
    if env_keys and takes_env:
        with pytest.raises(AuthError) as caught:
            module.create(defaults, clock, env={})
        assert any(defaults[key] in str(caught.value) for key in env_keys)
        env = {defaults[key]: "contract-test-value" for key in env_keys}
        connector = module.create(defaults, clock, env=env)
    else:
        connector = module.create(defaults, clock)
    try:
        assert isinstance(connector, Connector)
        assert connector.name == name
    finally:
        connector.close()


# -- behaviour: each connector against its fake, through the real pipeline ------------
#
# A harness yields (make_connector, query, served): make_connector() builds a fresh
# connector pointed at the fake; served() is the set of ids the fake has served that
# are mentions of the query. Between the two runs the harness may add new items.

Harness = Callable[[], Iterator[tuple[Callable[[], Connector], BrandQuery, Callable[[], set[str]], Callable[[], None]]]]
HARNESSES: dict[str, tuple[str, Harness]] = {}
"""case id -> (connector name, harness); a connector with modes has a case per mode."""


def harness(name: str, mode: str | None = None) -> Callable[[Harness], Harness]:
    def register(function: Harness) -> Harness:
        HARNESSES[f"{name}-{mode}" if mode else name] = (name, contextmanager(function))
        return function
    return register


@harness("demo")
def _demo():
    from connectors.demo import DemoConnector
    from demo.world import default_world

    clock = FixedClock(utc_now().replace(minute=0, second=0, microsecond=0))
    world = default_world(end=clock.now, seed=5, days=3)
    first_end = clock.now

    def served() -> set[str]:
        return {m.id for m in world.mentions_between("Brewly", world.start, clock.now)}

    def later() -> None:
        clock.advance(hours=5)

    yield (lambda: DemoConnector(world, clock, history_days=3)), BrandQuery("Brewly", terms=("brewly",)), served, later
    assert clock.now > first_end


@harness("x")
def _x():
    from connectors.x import XConnector, build_client
    from connectors.retry import RetryPolicy
    from tests.fakes.x_api import FakeXApi, tweet

    now = utc_now()
    with FakeXApi(utc_now, rate_limit=1000) as api:
        api.add_user("1", "ann")
        api.add(*[tweet(now - timedelta(hours=30) + timedelta(minutes=7 * i), f"brewly {i}", author_id="1", sequence=i)
                  for i in range(150)])

        def make() -> Connector:
            return XConnector(build_client("test-token", api.url, PEER_TIMEOUT), utc_now, history_days=7,
                              max_pages_per_run=10,
                              max_posts_per_run=1000, monthly_post_budget=0,
                              retry=RetryPolicy(sleep=lambda s: None))

        def later() -> None:
            api.add(*[tweet(utc_now() - timedelta(seconds=30 - i), f"brewly new {i}", author_id="1", sequence=500 + i)
                      for i in range(12)])

        yield make, BrandQuery("Brewly", terms=("brewly",)), lambda: {t["id"] for t in api.tweets}, later


@harness("hackernews")
def _hackernews():
    from connectors.hackernews import create
    from connectors.retry import RetryPolicy
    from tests.fakes.hn_api import FakeAlgolia, comment, story
    from tests.fakes.http import FakeServer

    now = int(utc_now().timestamp())
    api = FakeAlgolia([story(1, now - 30 * 3600, "Brewly launches")] +
                      [comment(100 + i, now - 29 * 3600 + 600 * i, f"brewly {i}", story_id=1) for i in range(120)])
    with FakeServer() as server:
        api.install(server)

        def make():
            return create({"base_url": server.url, "history_days": 2, "window_hours": 6, "timeout_seconds": PEER_TIMEOUT},
                          utc_now,
                          retry=RetryPolicy(sleep=lambda s: None))

        def later() -> None:
            t = int(utc_now().timestamp())
            api.add(*[comment(1000 + i, t - 30 + i, f"brewly new {i}", story_id=1) for i in range(5)])

        yield make, BrandQuery("Brewly", terms=("brewly",)), lambda: {h["objectID"] for h in api.hits}, later


@harness("feeds")
def _feeds():
    from email.utils import format_datetime

    from connectors.feeds import create
    from connectors.retry import RetryPolicy
    from tests.fakes.http import FakeServer, Reply

    now = utc_now()
    entries = [(f"urn:x:{i}", f"Brewly post {i}", now - timedelta(hours=i)) for i in range(5)]
    entries.append(("urn:x:undated", "Brewly undated", None))

    def body() -> bytes:
        items = "".join(
            f"<item><title>{title}</title><guid>{guid}</guid>"
            + (f"<pubDate>{format_datetime(at, usegmt=True)}</pubDate>" if at else "") + "</item>"
            for guid, title, at in entries)
        return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}'
                "</channel></rss>").encode()

    with FakeServer() as server:
        server.route("GET", "/feed.xml", lambda request: Reply(200, body(), headers={"Content-Type": "application/rss+xml"}))

        def make():
            return create({"urls": [server.url + "/feed.xml"], "timeout_seconds": PEER_TIMEOUT}, utc_now,
                          retry=RetryPolicy(sleep=lambda s: None))

        def later() -> None:
            entries.insert(0, ("urn:x:new", "Brewly new", utc_now()))

        yield make, BrandQuery("Brewly", terms=("brewly",)), lambda: {e[0] for e in entries}, later


@harness("mastodon")
def _mastodon():
    from connectors.mastodon import create
    from connectors.retry import RetryPolicy
    from tests.fakes.mastodon_api import FakeMastodon

    now = utc_now()
    with FakeMastodon("one.example") as one, FakeMastodon("two.example", offset=7) as two:
        posted = [one.post(now - timedelta(hours=20) + timedelta(minutes=13 * i), f"<p>#brewly post {i}</p>",
                           tags=["brewly"]) for i in range(60)]
        for status in posted[::3]:
            two.share(status, tags=["brewly"])  # the same statuses seen from a second instance

        def make() -> Connector:
            return create({"instances": [one.url, two.url], "fetch_threads": False, "timeout_seconds": PEER_TIMEOUT},
                          utc_now, {},
                          retry=RetryPolicy(sleep=lambda s: None))

        def later() -> None:
            posted.extend(one.post(utc_now() - timedelta(seconds=20 - i), f"#brewly new {i}", tags=["brewly"])
                          for i in range(5))

        yield make, BrandQuery("Brewly", hashtags=("#brewly",)), lambda: {p["uri"] for p in posted}, later


@harness("reddit")
def _reddit():
    from connectors.reddit import create
    from connectors.retry import RetryPolicy
    from tests.fakes.reddit_api import FakeReddit

    now = utc_now()
    with FakeReddit(now=now) as api:
        start = now - timedelta(hours=30)
        for i in range(30):
            api.add_submission(f"s{i}", f"Brewly post {i}", at=start + timedelta(minutes=40 * i))
            api.add_comment(f"s{i}", f"c{i}", f"reply {i}", at=start + timedelta(minutes=40 * i + 5))
        api.add_comment("s0", "c0more", "behind a 'more'", parent="c0", at=start + timedelta(minutes=9), collapsed=True)

        def make() -> Connector:
            return create(api.settings(subreddits=["coffee"]), utc_now, api.env,
                          retry=RetryPolicy(sleep=lambda s: None))

        def later() -> None:
            t = utc_now()
            api.add_submission("new1", "Brewly new", at=t - timedelta(seconds=20))
            api.add_comment("new1", "new1c", "nice", at=t - timedelta(seconds=10))
            api.add_comment("s5", "late", "brewly is still good", at=t - timedelta(seconds=5))  # polled

        # every submission names the brand; every comment came with its thread or names the brand
        yield make, BrandQuery("Brewly", terms=("brewly",)), lambda: set(api.submissions) | set(api.comments), later


@harness("bluesky")
def _bluesky():
    from connectors.bluesky import create
    from connectors.retry import RetryPolicy
    from tests.fakes.bluesky_api import FakeBluesky, post_view
    from tests.fakes.http import FakeServer

    now = utc_now()
    with FakeServer() as server:
        api = FakeBluesky(server, [post_view(f"3k{i:03d}", f"brewly {i}", now - timedelta(hours=30) + timedelta(minutes=7 * i))
                                   for i in range(150)])
        env = {"BLUESKY_HANDLE": api.handle, "BLUESKY_APP_PASSWORD": api.password}

        def make() -> Connector:
            return create({"base_url": server.url, "timeout_seconds": PEER_TIMEOUT}, utc_now, env=env,
                          retry=RetryPolicy(sleep=lambda s: None))

        def later() -> None:
            t = utc_now()
            api.posts += [post_view(f"3knew{i}", f"brewly new {i}", t - timedelta(seconds=30 - i)) for i in range(5)]

        yield make, BrandQuery("Brewly", terms=("brewly",)), lambda: {p["uri"] for p in api.posts}, later


@harness("bluesky", mode="jetstream")
def _bluesky_jetstream():
    from connectors.bluesky import create
    from connectors.retry import RetryPolicy
    from tests.fakes.jetstream import FakeJetstream, post_event, time_us

    now = utc_now()
    posts = [post_event(time_us(now - timedelta(minutes=50) + timedelta(seconds=20 * i)), f"3j{i:03d}", f"brewly {i}")
             for i in range(100)]
    future = post_event(time_us(now + timedelta(days=1)), "3jfuture", "brewly tomorrow")
    with FakeJetstream(posts + [future], drop_after=[40]) as jetstream:
        def make() -> Connector:
            # The stream ends with a post from tomorrow: the run stops there, caught up; its
            # reading bound is only a hang guard.
            return create({"mode": "jetstream", "jetstream_url": jetstream.url, "jetstream_backfill_minutes": 60,
                           "jetstream_max_seconds": HANG_GUARD}, utc_now, env={}, retry=RetryPolicy(sleep=lambda s: None))

        def later() -> None:
            extra = [post_event(time_us(utc_now() - timedelta(seconds=2)), "3jnew", "brewly new")]
            posts.extend(extra)
            jetstream.add(*extra)

        def served() -> set[str]:
            return {f"at://{p['did']}/app.bsky.feed.post/{p['commit']['rkey']}" for p in posts}

        yield make, BrandQuery("Brewly", terms=("brewly",)), served, later


@pytest.mark.parametrize("name", NAMES)
def test_every_connector_has_a_behaviour_harness(name):
    assert name in {connector for connector, _ in HARNESSES.values()}, (
        f"connector {name!r} has no contract harness in tests/connectors/test_contract.py")


@pytest.mark.parametrize("case", sorted(HARNESSES))
def test_two_runs_store_exactly_what_was_served_once(case, tmp_path, empty_database):
    name, make_harness = HARNESSES[case]
    with make_harness() as (make, query, served, later), Store.open(fresh_database(empty_database, tmp_path / "c.duckdb")) as store:
        pipeline = Pipeline(store, VaderScorer(), utc_now)
        for round_ in range(2):
            connector = make()
            try:
                batches = []
                since = store.get_cursor(connector.name, query.brand)
                for batch in connector.fetch(query, since):
                    batches.append(batch)
                    for m in batch.mentions:
                        assert (m.source, m.brand) == (name, query.brand)
                        assert m.id and m.created_at.tzinfo is not None and m.conversation_id
                assert batches and batches[-1].checkpoint is not None, "a complete run must end with a checkpoint"
            finally:
                connector.close()
            connector = make()
            try:
                # The same run through the pipeline, from the stored cursor.
                pipeline.pull(connector, query)
            finally:
                connector.close()
            if round_ == 0:
                later()
        with store.native() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM mentions").fetchall()]
        assert len(ids) == len(set(ids))
        assert set(ids) == served()
