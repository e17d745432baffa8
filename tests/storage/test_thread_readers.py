"""What the readers of a conversation's figures show, from hand-made threads rolled up by
the real hourly stage on a DuckDB file: the live view's thread lists and page, and the
conversations an alert's explanation names."""

import dataclasses
import re
from datetime import timedelta

import pytest

from analysis.alerts import describe
from listener.web.render import render_page
from analysis.mood import net_sentiment_se
from analysis.sentiment import VaderScorer
from listener.live_view import BrandView, build_view
from storage import alerts as alert_db
from storage.live import Reading, active_conversations
from storage.rollup import rollup_pending
from tests.conftest import T0, mention

SCORER = VaderScorer()
POS, NEG = "Acme is great", "Acme is awful"


def said(i, text, at, author, conversation, **metrics):
    return dataclasses.replace(mention(i, text, at, conversation=conversation, **metrics), author=author,
                               url=f"https://social.example/{i}")


@pytest.fixture
def threads(store):
    """pile-on: a liked post and 30 people answering it badly; fans: 5 people praising
    it and one author posting 10 complaints in an hour; split: 10 people each way."""
    at = T0 + timedelta(hours=1)
    posts = ([said("pile-root", POS, at, "acme_official", "pile-on", likes=200, replies=30)]
             + [said(f"pile{i}", NEG, at + timedelta(minutes=1 + i), f"customer{i}", "pile-on") for i in range(30)]
             + [said(f"fan{i}", POS, at + timedelta(minutes=i), f"fan{i}", "fans") for i in range(5)]
             + [said(f"troll{i}", NEG, at + timedelta(minutes=10 + i), "troll", "fans", likes=40) for i in range(10)]
             + [said(f"split{i}", POS if i % 2 else NEG, at + timedelta(minutes=i), f"s{i}", "split")
                for i in range(20)])
    store.save_batch(posts, SCORER.score([m.text for m in posts]), source="test", brand="Acme", checkpoint=None,
                     scorer=SCORER.name, scorer_version=SCORER.version, now=T0)
    rollup_pending(store)
    return store


def test_the_live_view_ranks_threads_by_people_and_shows_engagement_beside(threads):
    lists = active_conversations(threads, "Acme", T0, T0 + timedelta(hours=24))
    assert [t["conversation_id"] for t in lists["most_negative"]] == ["pile-on", "split", "fans"]
    assert [t["conversation_id"] for t in lists["most_positive"]] == ["fans", "split", "pile-on"]
    pile = lists["most_negative"][0]
    assert (pile["label"], pile["voices"], pile["authors"], pile["engagement"]) == ("negative", 31, 31, 230)
    assert pile["nss"] == pytest.approx(-100 * 29 / 31, abs=1e-6)
    assert pile["nss_se"] == pytest.approx(net_sentiment_se(1, 30, 31), abs=1e-6)
    fans = lists["most_positive"][0]
    assert (fans["label"], fans["voices"], fans["authors"], fans["mentions"]) == ("positive", 6, 6, 15)

    now = T0 + timedelta(hours=3)
    page = render_page(build_view(Reading(threads, "database", None), [BrandView("Acme")], SCORER, now),
                       csrf="c", only="Acme")
    table = page[page.index("Most negative"):page.index("Most positive")]
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows if "<td" in row]
    assert [c[:5] for c in cells] == [
        [f"-93.5 ± {pile['nss_se']:.1f}", "negative", "31", "31", "230"],
        ["+0.0 ± 22.4", "neutral", "20", "20", "0"],
        [f"+66.7 ± {fans['nss_se']:.1f}", "positive", "6", "15", "400"],
    ]
    assert "<th>NSS ± SE</th><th>label</th><th>people</th><th>mentions</th><th>engagement</th>" in table


def test_an_alert_names_its_threads_with_their_figures_over_people(threads):
    start, end = T0, T0 + timedelta(hours=2)
    named = alert_db.top_conversations(threads, "Acme", start, end, rank="negative")
    assert named[0]["conversation_id"] == "pile-on"
    pile = named[0]
    assert (pile["thread_label"], pile["thread_voices"], pile["thread_authors"]) == ("negative", 31, 31)
    assert pile["thread_nss"] == pytest.approx(-100 * 29 / 31, abs=1e-6)
    lines = describe({"summary": "Acme: mood dip", "explanation": {"conversations": named}})
    at = lines.index("  - [test] Acme is great (31 mentions, 1 positive, 30 negative) https://social.example/pile-root")
    assert lines[at + 1] == f"    whole thread: NSS -93.5 (SE {pile['thread_nss_se']:.1f}) over 31 people, negative"
