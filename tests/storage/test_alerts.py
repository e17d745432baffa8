"""The conversations an alert's explanation names, with their figures over people, from
hand-made threads (tests/storage/conftest.py) rolled up by the real hourly stage."""

from datetime import timedelta

import pytest

from analysis.alerts import describe
from storage import alerts as alert_db
from tests.conftest import T0


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
