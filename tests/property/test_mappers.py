"""Every payload mapper against hostile payloads.

Property, for each platform: whatever the payload (a valid one with fields dropped,
given the wrong type, or filled with hostile text; or any JSON value at all), the mapper
either returns Mentions that the store can write, or raises MalformedPayloadError (the
connectors count it as ``skipped`` and go on) with a message. No other exception escapes:
a KeyError or TypeError here would end a whole run instead of skipping one item.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import feedparser
from hypothesis import example, given
from hypothesis import strategies as st

from connectors import feeds, hackernews, mastodon, reddit, x
from connectors.bluesky.mapping import map_search_page
from connectors.base import BrandQuery
from connectors.bluesky.jetstream import read_event
from connectors.demo import DemoConnector
from demo.world import default_world
from connectors.errors import MalformedPayloadError
from tests.property.strategies import (
    LONE_SURROGATES, SCRIPT, assert_names_the_problem, assert_storable, broken, hostile_text, json_values,
    toml_text,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
ACME = BrandQuery("Acme", terms=("acme",))
# A time that is a valid ISO 8601 string but has no UTC equivalent in datetime's range.
BEFORE_YEAR_1_UTC = "0001-01-01T00:00:00+01:00"
AFTER_YEAR_9999_UTC = "9999-12-31T23:59:59-01:00"


def mapped_or_malformed(call, *args, **kwargs):
    """The mapper's Mentions (a list), or [] after checking its MalformedPayloadError."""
    try:
        result = call(*args, **kwargs)
    except MalformedPayloadError as exc:
        assert_names_the_problem(exc)
        return []
    if result is None:
        return []
    return list(result) if isinstance(result, (list, tuple)) else [result]


# -- X ------------------------------------------------------------------------------------

TWEET = {
    "id": "1852000000000000001", "text": "Acme <3", "created_at": "2026-11-01T09:30:00.000Z",
    "author_id": "42", "lang": "en", "conversation_id": "1852000000000000000",
    "public_metrics": {"like_count": 1, "retweet_count": 2, "quote_count": 0, "reply_count": 3,
                       "impression_count": 100, "bookmark_count": 0},
    "referenced_tweets": [{"type": "replied_to", "id": "1852000000000000000"}],
    "in_reply_to_user_id": "43",
}
X_USER = {"id": "42", "username": "ann", "public_metrics": {"followers_count": 10}}
X_PAGE = {"data": [TWEET], "includes": {"users": [X_USER]}, "meta": {"result_count": 1}}


@given(page=st.one_of(broken(X_PAGE), st.dictionaries(st.sampled_from(["data", "includes"]), json_values)))
@example(page={"data": [{**TWEET, "created_at": BEFORE_YEAR_1_UTC}]})
@example(page={"data": [{**TWEET, "created_at": AFTER_YEAR_9999_UTC}]})
@example(page={"data": [{**TWEET, "public_metrics": {"like_count": 2**64, "impression_count": 2**63}}],
               "includes": {"users": [{**X_USER, "public_metrics": {"followers_count": 10**30}}]}})
@example(page={"data": [{**TWEET, "text": LONE_SURROGATES, "author_id": "\ud800"}],
               "includes": {"users": [{"id": "\ud800", "username": "\udc80"}]}})
@example(page={"data": [{**TWEET, "id": "9" * 5000}], "meta": {"newest_id": "9" * 5000}})
def test_x_search_page(page):
    mentions = mapped_or_malformed(lambda: x.mentions_from_page(page, "Acme", NOW)[0])
    assert_storable(mentions)
    if isinstance(page.get("data"), list):
        # The connector reads every page's id bounds for its cursor.
        meta = page.get("meta")
        x._page_bounds(meta if isinstance(meta, dict) else {}, page["data"])


@given(tweet=st.one_of(broken(TWEET), json_values))
def test_x_single_tweet(tweet):
    assert_storable(mapped_or_malformed(x.mention_from_tweet, tweet, {"42": X_USER}, "Acme", NOW))


# -- Reddit -------------------------------------------------------------------------------

SUBMISSION = {
    "id": "abc", "name": "t3_abc", "title": "Acme beans", "selftext": "so good", "author": "ann",
    "created_utc": 1793500000.0, "score": 5, "num_comments": 2, "upvote_ratio": 0.9,
    "subreddit": "coffee", "permalink": "/r/coffee/comments/abc/acme/", "url": "https://example.com/x",
    "over_18": False,
}
COMMENT = {
    "id": "c1", "name": "t1_c1", "body": "Acme!", "author": "bob", "created_utc": 1793500100,
    "score": -1, "parent_id": "t3_abc", "link_id": "t3_abc", "subreddit": "coffee",
    "permalink": "/r/coffee/comments/abc/acme/c1/",
}


@given(child=st.one_of(st.fixed_dictionaries({"kind": st.just("t3"), "data": broken(SUBMISSION)}), json_values))
@example(child={"kind": "t3", "data": {**SUBMISSION, "author": ["not", "a", "name"]}})
@example(child={"kind": "t3", "data": {**SUBMISSION, "score": 1e300, "num_comments": 2**64}})
def test_reddit_submission(child):
    mentions = mapped_or_malformed(lambda: reddit.submission_mention(reddit._thing_data(child, "t3"), "Acme", NOW))
    assert_storable(mentions)


@given(child=st.one_of(st.fixed_dictionaries({"kind": st.just("t1"), "data": broken(COMMENT)}), json_values),
       thread_context=st.booleans())
@example(child={"kind": "t1", "data": {**COMMENT, "author": {"name": "bob"}}}, thread_context=False)
def test_reddit_comment(child, thread_context):
    mentions = mapped_or_malformed(lambda: reddit.comment_mention(
        reddit._thing_data(child, "t1"), "Acme", NOW, thread_context=thread_context))
    assert_storable(mentions)


# -- Mastodon -----------------------------------------------------------------------------

STATUS = {
    "id": "110000000000000001", "uri": "https://social.example/users/ann/statuses/1",
    "url": "https://social.example/@ann/1", "created_at": "2026-11-01T09:30:00.000Z",
    "in_reply_to_id": None, "replies_count": 1, "reblogs_count": 0, "favourites_count": 2, "reblog": None,
    "content": "<p>Acme <a href=\"https://social.example/tags/acme\">#acme</a></p>", "spoiler_text": "",
    "language": "en", "account": {"acct": "ann", "url": "https://social.example/@ann"},
}


@given(item=st.one_of(broken(STATUS), json_values))
@example(item={**STATUS, "account": {"acct": "ann", "url": "http://[not-an-address"}})
@example(item={**STATUS, "created_at": BEFORE_YEAR_1_UTC})
@example(item={**STATUS, "favourites_count": 2**64})
@example(item={**STATUS, "content": f"<p>{SCRIPT}{LONE_SURROGATES}</p>", "spoiler_text": "\udc80"})
def test_mastodon_status(item):
    def mapped():
        return mastodon.mention_from_status(mastodon.read_status(item), "Acme", fetched_at=NOW)
    assert_storable(mapped_or_malformed(mapped))


# -- Bluesky ------------------------------------------------------------------------------

RECORD = {
    "$type": "app.bsky.feed.post", "text": "Acme!", "createdAt": "2026-11-01T09:30:00.000Z", "langs": ["en"],
    "reply": {"root": {"uri": "at://did:plc:root/app.bsky.feed.post/1"},
              "parent": {"uri": "at://did:plc:root/app.bsky.feed.post/2"}},
}
POST_VIEW = {
    "uri": "at://did:plc:abc/app.bsky.feed.post/3kabc", "cid": "bafy",
    "author": {"did": "did:plc:abc", "handle": "ann.bsky.social"}, "record": RECORD,
    "likeCount": 1, "repostCount": 0, "replyCount": 2, "quoteCount": 0, "indexedAt": "2026-11-01T09:30:01.000Z",
}


@given(body=st.one_of(broken({"posts": [POST_VIEW], "cursor": "x"}),
                      st.dictionaries(st.just("posts"), json_values)))
@example(body={"posts": [{**POST_VIEW, "indexedAt": BEFORE_YEAR_1_UTC}]})
@example(body={"posts": [{**POST_VIEW, "record": {**RECORD, "createdAt": AFTER_YEAR_9999_UTC}}]})
@example(body={"posts": [{**POST_VIEW, "likeCount": 2**64}]})
def test_bluesky_search_page(body):
    def mapped():
        return map_search_page(body, "Acme", NOW).mentions
    assert_storable(mapped_or_malformed(mapped))


JETSTREAM_EVENT = {
    "did": "did:plc:abc", "time_us": 1793500000000000, "kind": "commit",
    "commit": {"rev": "r", "operation": "create", "collection": "app.bsky.feed.post", "rkey": "3kabc",
               "cid": "bafy", "record": RECORD},
}
_acme_text = st.builds(lambda a, b: f"{a} acme {b}", hostile_text, hostile_text)


@given(event=st.one_of(broken(JETSTREAM_EVENT), json_values), text=_acme_text,
       as_bytes=st.booleans())
@example(event={**JETSTREAM_EVENT, "commit": {**JETSTREAM_EVENT["commit"],
                                              "record": {**RECORD, "createdAt": BEFORE_YEAR_1_UTC}}},
         text="acme", as_bytes=False)
def test_jetstream_event(event, text, as_bytes):
    # Only posts that match are mapped: put the brand in the text of well-formed records.
    commit = event.get("commit") if isinstance(event, dict) else None
    if isinstance(commit, dict) and isinstance(commit.get("record"), dict):
        commit["record"] = {**commit["record"], "text": text}
    message = json.dumps(event)
    result = read_event(message.encode() if as_bytes else message, ACME, NOW)
    assert result.mention is None or not result.malformed
    assert_storable([result.mention] if result.mention is not None else [])


@given(message=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_jetstream_garbage(message):
    result = read_event(message, ACME, NOW)
    assert result.mention is None


# -- Hacker News --------------------------------------------------------------------------

HN_COMMENT = {
    "objectID": "4101", "created_at_i": 1793500000, "_tags": ["comment", "author_pg", "story_4100"],
    "author": "pg", "comment_text": "<p>Acme &amp; co</p>", "story_id": 4100, "parent_id": 4100,
    "points": None, "num_comments": None,
}
HN_STORY = {
    "objectID": "4100", "created_at_i": 1793500000, "_tags": ["story", "author_pg", "story_4100"],
    "author": "pg", "title": "Show HN: Acme", "url": "https://acme.example", "story_text": "<p>hi</p>",
    "points": 12, "num_comments": 3, "_highlightResult": {"title": {"value": "x"}},
}


@given(hit=st.one_of(broken(HN_COMMENT), broken(HN_STORY), json_values))
@example(hit={**HN_STORY, "points": 2**64})
def test_hackernews_hit(hit):
    assert_storable(mapped_or_malformed(hackernews.mention_from_hit, hit, "Acme", NOW))


# -- RSS / Atom ---------------------------------------------------------------------------

ENTRY = {
    "id": "https://blog.example/p/1", "link": "https://blog.example/p/1", "title": "Acme review",
    "title_detail": {"type": "text/plain"}, "summary": "<p>short</p>", "summary_detail": {"type": "text/html"},
    "content": [{"value": "<p>Acme is <b>good</b></p>", "type": "text/html"}],
    "author": "Ann", "author_detail": {"name": "Ann"}, "published": "Sun, 01 Nov 2026 09:30:00 GMT",
    "published_parsed": time.struct_time((2026, 11, 1, 9, 30, 0, 6, 305, 0)),
    "tags": [{"term": "coffee"}],
}


@given(entry=broken(ENTRY), lang=st.one_of(st.none(), hostile_text))
@example(entry={**ENTRY, "content": 5}, lang=None)
@example(entry={**ENTRY, "tags": 5}, lang=None)
@example(entry={**ENTRY, "published_parsed": time.struct_time((99999, 1, 1, 0, 0, 0, 0, 1, 0))}, lang=None)
def test_feed_entry(entry, lang):
    assert_storable(mapped_or_malformed(feeds.mention_from_entry, entry, "https://blog.example/feed?token=s",
                                        "Acme", NOW, lang))


_xml_text = hostile_text.map(lambda s: s.replace("]]>", ""))


@given(title=_xml_text, body=_xml_text, link=hostile_text, cdata=st.booleans(), escape=st.booleans())
def test_hostile_rss_through_feedparser(title, body, link, cdata, escape):
    """A feed whose items carry hostile text (raw, entity-escaped or in CDATA): what
    feedparser makes of it maps to storable Mentions or is skipped."""
    def wrap(s):
        if cdata:
            return f"<![CDATA[{s}]]>"
        return s.replace("&", "&amp;").replace("<", "&lt;") if escape else s
    document = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{wrap(title)}</title><link>{wrap(link)}</link><guid>{wrap(link)}</guid>"
        f"<description>{wrap(body)}</description></item></channel></rss>"
    )
    parsed = feedparser.parse(document.encode("utf-8", "surrogatepass"))
    for entry in parsed.entries:
        assert_storable(mapped_or_malformed(feeds.mention_from_entry, entry, "https://blog.example/feed",
                                            "Acme", NOW))


# -- demo ---------------------------------------------------------------------------------

_WORLD = default_world(end=NOW, seed=7, days=2)


@given(brand=toml_text, terms=st.lists(toml_text, max_size=2), exclude=st.lists(toml_text, max_size=2),
       languages=st.lists(toml_text, max_size=1))
def test_demo_source_for_any_brand_a_config_can_name(brand, terms, exclude, languages):
    """The simulated source invents posts for whatever brand is configured (names come
    from TOML: no surrogates); what it serves is storable."""
    query = BrandQuery(brand, terms=tuple(terms), exclude=tuple(exclude), languages=tuple(languages))
    for batch in DemoConnector(_WORLD, lambda: NOW, history_days=1).fetch(query, None):
        assert_storable(batch.mentions)
