"""The live view's readers (storage/live.py): its thread lists and page, from hand-made
threads (tests/storage/conftest.py) rolled up by the real hourly stage on a DuckDB file."""

import re
from datetime import timedelta

import pytest

from listener.web.render import render_page
from analysis.mood import net_sentiment_se
from analysis.sentiment import VaderScorer
from listener.live_view import BrandView, build_view
from storage.live import Reading, active_conversations
from tests.conftest import T0

SCORER = VaderScorer()


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


