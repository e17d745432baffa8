"""The brand's own posts in storage (schema 7: mentions.own, the macros thread_mentions and
mood_mentions) and the care figures from hand-made threads on a DuckDB file: the view
care_threads (storage.views), storage.care and analysis.care."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from analysis.care import goal_progress, median_interval, parse_business_hours, reply_hours, summarize
from analysis.sentiment import Score
from connectors.base import Mention
from storage.care import care_figures, care_threads, negative_threads
from storage.migrations import LATEST_VERSION
from storage.queries import label_counts
from storage.rollup import rollup_pending
from storage.store import Store

MON = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)  # Monday 09:00 in Berlin
FRI = MON + timedelta(days=4)
SCORE = {"positive": Score(0.6, 0.5, 0.5, 0.0, "positive"), "neutral": Score(0.0, 0.0, 1.0, 0.0, "neutral"),
         "negative": Score(-0.6, 0.0, 0.5, 0.5, "negative")}


def post(i: str, at: datetime, label: str, thread: str, *, own: bool = False, text: str | None = None) -> tuple:
    mention = Mention(source="x", id=i, brand="Acme", created_at=at, text=text or f"Acme {label} {i}",
                      author="acme_care" if own else f"user{i}", conversation_id=thread, own=own,
                      url=f"https://x.example/{i}")
    return mention, SCORE[label]


def save(store: Store, posts: list[tuple]) -> None:
    store.save_batch([m for m, _ in posts], [s for _, s in posts], source="x", brand="Acme", checkpoint=None,
                     now=MON, scorer="vader", scorer_version="3.3.2")


@pytest.fixture
def threads(store):
    """t1 opens negative Monday 09:00 UTC, answered after 30 min, ends positive;
    t2 asks on Friday 16:00 UTC (17:00 Berlin), answered Monday 08:00 UTC (09:00 Berlin);
    t3 opens negative, never answered, stays negative; t4 is praise the brand answers;
    t5 is the brand's own post nobody answered; t6 opened before the period."""
    save(store, [
        post("t1a", MON + timedelta(hours=1), "negative", "t1"),
        post("t1b", MON + timedelta(hours=1, minutes=30), "positive", "t1", own=True),
        post("t1c", MON + timedelta(hours=2), "positive", "t1"),
        post("t2a", FRI + timedelta(hours=8), "neutral", "t2", text="Does Acme ship to Spain?"),
        post("t2b", FRI + timedelta(days=3), "neutral", "t2", own=True),
        post("t3a", MON + timedelta(hours=3), "negative", "t3"),
        post("t3b", MON + timedelta(hours=4), "negative", "t3"),
        post("t4a", MON + timedelta(hours=5), "positive", "t4"),
        post("t4b", MON + timedelta(hours=6), "positive", "t4", own=True),
        post("t5a", MON + timedelta(hours=7), "positive", "t5", own=True),
        post("t6a", MON - timedelta(days=1), "negative", "t6"),
        post("t6b", MON + timedelta(hours=1), "positive", "t6", own=True),
    ])
    return store


PERIOD = (MON, MON + timedelta(days=7))


def test_care_threads_give_each_threads_opening_first_reply_and_ending(threads):
    rows = {t.conversation_id: t for t in care_threads(threads, "Acme", *PERIOD)}
    assert set(rows) == {"t1", "t2", "t3", "t4"}  # t5 has no customer post, t6 opened before
    t1, t2, t3, t4 = rows["t1"], rows["t2"], rows["t3"], rows["t4"]
    assert (t1.opening_label, t1.needs_reply, t1.first_reply_at, t1.resolved) == (
        "negative", True, MON + timedelta(hours=1, minutes=30), True)
    assert (t2.opening_label, t2.opening_question, t2.needs_reply, t2.brand_posts) == ("neutral", True, True, 1)
    assert (t3.needs_reply, t3.answered, t3.resolved, t3.customer_posts) == (True, False, False, 2)
    assert (t4.needs_reply, t4.answered) == (False, True)


def test_care_summary_hand_computed_in_wall_clock_and_business_hours(threads):
    rows = care_threads(threads, "Acme", *PERIOD)
    wall = summarize("Acme", *PERIOD, rows)
    # Needing a reply: t1, t2, t3; answered t1 (0.5 h) and t2 (64 h wall clock).
    assert (wall.needing_reply, wall.answered, wall.response_rate) == (3, 2, pytest.approx(2 / 3))
    assert (wall.reply_hours_median, wall.reply_hours_p90) == (pytest.approx(32.25), pytest.approx(64.0))
    assert (wall.started_negative, wall.resolved, wall.resolved_share) == (2, 1, 0.5)
    low, high = wall.response_rate_ci
    assert low < 2 / 3 < high
    text = "Mon-Fri 09:00-18:00 Europe/Berlin"
    business = summarize("Acme", *PERIOD, rows, parse_business_hours(text))
    # t2: Friday 17:00-18:00 and Monday 09:00 (the reply): 1 business hour, not 64.
    assert (business.reply_hours_median, business.reply_hours_p90) == (pytest.approx(0.75), pytest.approx(1.0))
    assert business.business_hours == "Mon,Tue,Wed,Thu,Fri 09:00-18:00 Europe/Berlin"


def test_next_open_waits_for_the_team():
    hours = parse_business_hours("Mon-Fri 09:00-18:00 Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    friday_late = datetime(2026, 11, 6, 18, 30, tzinfo=berlin)
    assert hours.next_open(friday_late) == datetime(2026, 11, 9, 9, 0, tzinfo=berlin)  # Monday morning
    during = datetime(2026, 11, 9, 11, 15, tzinfo=berlin)
    assert hours.next_open(during) == during
    assert hours.next_open(datetime(2026, 11, 10, 6, 0, tzinfo=timezone.utc)) == datetime(2026, 11, 10, 9, 0, tzinfo=berlin)


def test_own_posts_stay_in_the_thread_but_out_of_mood_and_volume(threads):
    rollup_pending(threads)
    counts = label_counts(threads, "Acme", *PERIOD)
    # Customer posts in the period: t1a t1c t2a t3a t3b t4a (the brand's five are left out).
    assert (counts.mentions, counts.positive, counts.neutral, counts.negative) == (6, 2, 1, 3)
    with threads.native() as db:
        own = dict(db.execute("SELECT id, (own, counts_for_mood) FROM v_mentions WHERE own").fetchall())
        thread = db.execute("SELECT mentions FROM conversations WHERE conversation_id = 't1'").fetchone()
    assert own == {i: (True, False) for i in ("t1b", "t2b", "t4b", "t5a", "t6b")}
    assert thread == (2,)  # the thread's people-counted figures: the customer's two posts


def test_negative_threads_carry_later_customer_posts(threads):
    rows = {t.opened_at: t for t in negative_threads(threads, "Acme", *PERIOD)}
    t1, t3 = rows[MON + timedelta(hours=1)], rows[MON + timedelta(hours=3)]
    assert t1.first_reply_at == MON + timedelta(hours=1, minutes=30) and t1.posts == ((MON + timedelta(hours=2), 1),)
    assert t3.first_reply_at is None and t3.posts == ((MON + timedelta(hours=4), -1),)
    assert t1.opening_compound == -0.6 and (t1.customer_posts, t3.customer_posts) == (2, 2)


def test_a_version_6_file_is_upgraded_and_its_mentions_are_not_own(tmp_path):
    path = tmp_path / "v6.duckdb"
    with Store.open(path) as store:
        m, s = post("old", MON, "negative", "old")
        save(store, [(dataclasses.replace(m), s)])
        with store.native() as db:
            db.execute("DROP VIEW care_threads")
            db.execute("ALTER TABLE mentions DROP COLUMN own")
            db.execute("DELETE FROM schema_version WHERE version > 6")
    with Store.open(path) as store, store.native() as db:
        assert db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == LATEST_VERSION
        assert db.execute("SELECT own, counts_for_mood FROM v_mentions").fetchall() == [(False, True)]
        assert db.execute("SELECT count(*) FROM care_threads").fetchone()[0] == 1


def test_median_interval_takes_the_binomial_order_statistics():
    assert median_interval(list(range(1, 10))) == (2, 8)  # n = 9: ranks 4.5 -+ 2.94 -> 2nd and 8th
    assert median_interval([]) is None


def test_goal_progress_hand_computed(threads):
    rows = care_threads(threads, "Acme", *PERIOD)
    summary = summarize("Acme", *PERIOD, rows)
    counts = label_counts(threads, "Acme", *PERIOD)
    goals = {g.goal: g for g in goal_progress(
        [("response_rate", 0.5), ("reply_hours", 100.0), ("resolved_share", 0.95), ("net_positive_per_1000", 0.0)],
        summary, reply_hours(rows), counts.positive, counts.negative, counts.mentions)}
    # 2 of 3 answered: Wilson (0.21, 0.94) straddles 50 %.
    assert goals["response_rate"].verdict == "not yet clear"
    # Replies took 0.5 h and 64 h: the median's interval (0.5, 64) is within 100 h.
    assert (goals["reply_hours"].ci, goals["reply_hours"].verdict) == ((0.5, 64.0), "met")
    # 1 of 2 resolved: Wilson (0.09, 0.91) lies below 95 %.
    assert goals["resolved_share"].verdict == "missed"
    # 2 positive, 3 negative of 6 mentions: -167 per 1,000, +-718.
    net = goals["net_positive_per_1000"]
    assert net.value == pytest.approx(-1000 / 6) and net.ci[1] - net.value == pytest.approx(718.1, abs=0.1)
    assert net.verdict == "not yet clear"


def test_a_thread_opened_before_the_period_is_not_counted_in_it(store):
    save(store, [post("o1", MON - timedelta(days=2), "negative", "old"),
                 post("o2", MON + timedelta(hours=1), "positive", "old", own=True),
                 post("o3", MON + timedelta(hours=2), "positive", "old")])
    assert care_threads(store, "Acme", *PERIOD) == []
    [thread] = care_threads(store, "Acme", MON - timedelta(days=3), PERIOD[1])
    assert (thread.opened_at, thread.first_reply_at, thread.resolved) == (
        MON - timedelta(days=2), MON + timedelta(hours=1), True)
    assert negative_threads(store, "Acme", *PERIOD) == []


def test_the_brands_own_posts_are_no_mentions_of_it_for_volume_terms_or_authors(store):
    """Share of voice, the terms an alert or the workspace explains, and the authors with
    most reach leave the brand's own posts out, as mood does (the one rule: mentions.own)."""
    from storage.alerts import texts
    from storage.live import mention_volume
    from storage.queries import mentions_per_brand
    from storage.workspace import top_authors

    loud = dataclasses.replace(post("o1", MON, "positive", "o1", own=True, text="Acme announces shinyword")[0],
                               metrics={"likes": 500})
    save(store, [(loud, SCORE["positive"]), post("c1", MON + timedelta(minutes=5), "negative", "c1")])
    lo, hi = MON - timedelta(hours=1), MON + timedelta(hours=1)
    assert mention_volume(store, ["Acme"], lo, hi) == {"Acme": 1} == mentions_per_brand(store)
    assert texts(store, "Acme", lo, hi) == ["Acme negative c1"]
    assert [a.author for a in top_authors(store, "Acme", lo, hi, hi)] == ["userc1"]


def test_the_care_rules_are_the_views_alone(threads):
    """needs_reply and resolved come from the view care_threads (one home of the rules):
    what an analyst queries is what storage.care counts, and CareThread recomputes nothing."""
    with threads.native() as db:
        view = {r[0]: (r[1], r[2]) for r in db.execute(
            "SELECT conversation_id, needs_reply, resolved FROM care_threads WHERE brand = 'Acme' "
            "AND opened_at >= $lo", {"lo": PERIOD[0].replace(tzinfo=None)}).fetchall()}
    rows = care_threads(threads, "Acme", *PERIOD)
    assert view == {t.conversation_id: (t.needs_reply, t.resolved) for t in rows}
    negative = dataclasses.replace(rows[0], opening_label="negative", needs_reply=False, resolved=False)
    assert (negative.needs_reply, negative.resolved) == (False, False)


def test_care_figures_read_the_periods_threads_in_one_query(threads):
    """The summary and the reply effect come from one scan of the period's threads (the
    query log of the database: care_threads_opened is read once per call)."""
    with threads.native() as db:
        db.execute("CALL enable_logging('QueryLog')")
    try:
        figures = care_figures(threads, "Acme", *PERIOD, goals=[("response_rate", 0.5)])
        with threads.native() as db:
            logged = [m for (m,) in db.execute("SELECT message FROM duckdb_logs WHERE type = 'QueryLog'").fetchall()]
    finally:
        with threads.native() as db:
            db.execute("CALL disable_logging()")
    assert figures.summary.threads == 4 and figures.goals[0].goal == "response_rate"
    assert sum("care_threads_opened" in m for m in logged) == 1, logged


def test_label_value_is_the_one_sql_mapping_of_a_label_to_plus_minus_one(store):
    """The macro label_value (schema 10) maps labels to +1, 0, -1; no other SQL in
    storage/ spells that mapping out (the hourly rollup and care_threads_opened use it)."""
    with store.native() as db:
        assert db.execute("SELECT label_value('positive'), label_value('neutral'), label_value('negative'), "
                          "label_value(NULL)").fetchone() == (1, 0, -1, None)
    spelled = re.compile(r"WHEN\s+'negative'\s+THEN\s+-1", re.IGNORECASE)
    storage = Path(__file__).resolve().parents[2] / "storage"
    copies = [p.name for p in sorted(storage.rglob("*.py")) if spelled.search(p.read_text())]
    assert copies == ["schema.py"], copies


def test_an_opening_asks_with_a_question_mark_or_a_question_or_request_phrase(store):
    """The question rule (storage.views.QUESTION_PATTERN, in care_threads alone): English,
    case-insensitive; a question word counts where it opens the post or a clause."""
    asks = ["Does Acme ship to Spain", "how do I descale my Acme kettle", "acme: anyone know where filters are",
            "Can someone at Acme look at my order", "HELP, my Acme kettle leaks", "Any idea when Acme restocks",
            "Hey Acme, why won't my order ship", "Is there a way to reset the Acme app", "Acme filters. Where can I buy them",
            "my acme order is late, please help", "ok Acme?", "Could you check my Acme order"]
    says = ["How good is Acme coffee", "Acme helped me a lot", "What a lovely Acme mug", "I learned how to use my Acme",
            "Acme is so helpful", "nobody knows Acme like I do", "Acme where it all started", "Acme could be better",
            "Would love an Acme mug", "Do yourself a favour and try Acme"]
    save(store, [post(f"q{i}", MON + timedelta(minutes=i), "neutral", f"q{i}", text=text)
                 for i, text in enumerate(asks + says)])
    rows = {t.conversation_id: (t.opening_question, t.needs_reply) for t in care_threads(store, "Acme", *PERIOD)}
    assert [rows[f"q{i}"] for i in range(len(asks))] == [(True, True)] * len(asks)
    assert [rows[f"q{i}"] for i in range(len(asks), len(asks) + len(says))] == [(False, False)] * len(says)
