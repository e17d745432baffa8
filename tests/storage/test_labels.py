"""Manual labels override VADER in every aggregate, are kept apart from VADER's scores,
and reach the daemon's database through the inbox."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from analysis.agreement import agreement_report
from analysis.sentiment import VaderScorer
from storage.labels import (
    LabelRequest, UnknownMentionError, apply_inbox, apply_label, find_mentions, inbox_path, label_confusion,
    queue_label,
)
from storage.queries import label_counts
from storage.report_data import mention_buckets
from storage.rollup import rollup_pending
from tests.conftest import T0, mention

SCORER = VaderScorer()
POS, NEG, NEU = "Acme is great", "Acme is awful", "Acme store on Main Street"


def save(store, mentions, brand="Acme", source="test"):
    store.save_batch(mentions, SCORER.score([m.text for m in mentions]), source=source, brand=brand,
                     checkpoint=None, scorer=SCORER.name, scorer_version=SCORER.version, now=T0)


def one(store, sql, params=()):
    with store.native() as db:
        return db.execute(sql, list(params)).fetchone()


@pytest.fixture
def labelled(store):
    save(store, [
        mention("a", POS, T0 + timedelta(minutes=1), conversation="t", likes=1),
        mention("b", POS, T0 + timedelta(minutes=2), conversation="t"),
        mention("c", NEG, T0 + timedelta(minutes=3), conversation="u"),
        mention("d", NEU, T0 + timedelta(minutes=4), conversation="u"),
    ])
    rollup_pending(store)
    return store


def test_a_label_overrides_vader_in_hourly_mood_windows_buckets_and_conversations(labelled):
    store = labelled
    before = one(store, "SELECT positive, negative, nss FROM hourly_mood")
    assert before == (2, 1, 25.0)
    keys = apply_label(store, LabelRequest(id="b", label="negative", by="ana"), now=T0)
    assert [(k.source, k.id, k.brand) for k in keys] == [("test", "b", "Acme")]
    # The hour is marked for the hourly stage, which then recomputes it.
    assert one(store, "SELECT count(*) FROM pending_hours") == (1,)
    rollup_pending(store)
    assert one(store, "SELECT positive, negative, nss FROM hourly_mood") == (1, 2, -25.0)
    counts = label_counts(store, "Acme", T0, T0 + timedelta(hours=1))
    assert (counts.positive, counts.neutral, counts.negative) == (1, 1, 2)
    buckets = {(b[1]): b[2] for b in mention_buckets(store, "Acme", T0, T0 + timedelta(hours=1))}
    assert buckets == {"positive": 1, "negative": 2, "neutral": 1}
    # Thread t: two people, a positive by VADER and b now negative by the label.
    assert one(store, "SELECT voices, nss, score, label FROM conversations WHERE conversation_id = 't'") == (
        2, 0.0, 0.0, "neutral")
    # VADER's own row is untouched; the view shows both.
    assert one(store, "SELECT label FROM scores WHERE id = 'b'") == ("positive",)
    assert one(store, "SELECT vader_label, manual_label, label FROM v_mentions WHERE id = 'b'") == (
        "positive", "negative", "negative")


def test_clearing_a_label_restores_vader(labelled):
    store = labelled
    apply_label(store, LabelRequest(id="b", label="negative"), now=T0)
    rollup_pending(store)
    apply_label(store, LabelRequest(id="b", label="clear"), now=T0)
    rollup_pending(store)
    assert one(store, "SELECT positive, negative FROM hourly_mood") == (2, 1)
    assert one(store, "SELECT count(*) FROM labels") == (0,)


def test_a_labelled_non_english_mention_counts_as_scored(store):
    save(store, [mention("x", "Acme est vraiment génial, j'adore", T0)])
    # Force the mention to be unscored the way the pipeline stores non-English text.
    with store.native() as db:
        db.execute("DELETE FROM scores")
    rollup_pending(store)
    assert one(store, "SELECT unscored, scored FROM hourly_mood") == (1, 0)
    apply_label(store, LabelRequest(id="x", label="positive"), now=T0)
    rollup_pending(store)
    assert one(store, "SELECT unscored, scored, positive FROM hourly_mood") == (0, 1, 1)


def test_ids_are_found_by_source_prefix_and_ambiguity_is_an_error(store):
    save(store, [mention("1", POS, T0, source="x")], source="x")
    save(store, [mention("1", NEG, T0, source="reddit")], source="reddit")
    with pytest.raises(UnknownMentionError, match="several sources"):
        find_mentions(store, LabelRequest(id="1", label="positive"))
    assert [k.source for k in find_mentions(store, LabelRequest(id="x:1", label="positive"))] == ["x"]
    assert [k.source for k in find_mentions(store, LabelRequest(id="1", label="positive", source="reddit"))] == [
        "reddit"]
    with pytest.raises(UnknownMentionError, match="no stored mention has id '2'"):
        find_mentions(store, LabelRequest(id="2", label="positive"))


def test_a_post_stored_for_two_brands_is_labelled_for_both_unless_narrowed(store):
    save(store, [mention("p", POS, T0, brand="Acme")], brand="Acme")
    save(store, [mention("p", POS, T0, brand="Bolt")], brand="Bolt")
    assert len(apply_label(store, LabelRequest(id="p", label="negative"), now=T0)) == 2
    assert len(apply_label(store, LabelRequest(id="p", label="neutral", brand="bolt"), now=T0)) == 1
    with store.native() as db:
        assert db.execute("SELECT brand, label FROM labels ORDER BY brand").fetchall() == [
            ("Acme", "negative"), ("Bolt", "neutral")]


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="label must be one of"):
        LabelRequest(id="a", label="angry")


def test_the_inbox_is_applied_once_and_bad_lines_are_reported(labelled):
    store = labelled
    queue_label(store.path, LabelRequest(id="a", label="negative", by="web"), T0)
    queue_label(store.path, LabelRequest(id="missing", label="negative"), T0)
    with open(inbox_path(store.path), "a", encoding="utf-8") as inbox:
        inbox.write("{not json\n")
    result = apply_inbox(store, T0)
    assert result.applied == 1
    assert len(result.errors) == 2 and "line 2" in result.errors[0] and "line 3" in result.errors[1]
    assert not inbox_path(store.path).exists()
    assert apply_inbox(store, T0).applied == 0
    assert one(store, "SELECT label, labelled_by FROM labels WHERE id = 'a'") == ("negative", "web")


def test_an_inbox_left_by_a_crash_mid_apply_is_applied_next_time(labelled):
    store = labelled
    queue_label(store.path, LabelRequest(id="c", label="positive"), T0)
    inbox = inbox_path(store.path)
    inbox.rename(inbox.with_name(inbox.name + ".applying"))  # as a crash after the rename leaves it
    queue_label(store.path, LabelRequest(id="d", label="negative"), T0)  # a new line meanwhile
    assert apply_inbox(store, T0).applied == 1  # the interrupted file first
    assert apply_inbox(store, T0).applied == 1  # then the new inbox
    with store.native() as db:
        assert db.execute("SELECT id, label FROM labels ORDER BY id").fetchall() == [("c", "positive"), ("d", "negative")]


def test_concurrent_queueing_keeps_whole_lines(tmp_path):
    database = tmp_path / "db.duckdb"

    def writer(n):
        for i in range(50):
            queue_label(database, LabelRequest(id=f"{n}-{i}-" + "x" * 500, label="neutral"), T0)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = inbox_path(database).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 200 and all(line.startswith("{") and line.endswith("}") for line in lines)


def test_confusion_and_agreement_figures(labelled):
    store = labelled
    for mention_id, label in (("a", "positive"), ("b", "negative"), ("c", "negative"), ("d", "positive")):
        apply_label(store, LabelRequest(id=mention_id, label=label), now=T0)
    labelled_count, confusion = label_confusion(store)
    assert labelled_count == 4
    # VADER: a pos, b pos, c neg, d neu.
    assert confusion["positive"] == {"positive": 1, "neutral": 1, "negative": 0}
    assert confusion["negative"] == {"positive": 1, "neutral": 0, "negative": 1}
    report = agreement_report(labelled_count, confusion)
    assert report.compared == 4 and report.accuracy == 0.5
    assert report.precision["positive"] == 0.5 and report.recall["negative"] == 0.5
    assert report.nss_vader == pytest.approx(25.0) and report.nss_manual == pytest.approx(0.0)
    assert not report.enough


def test_a_malformed_inbox_line_is_reported_by_number_and_the_others_applied(labelled, caplog):
    """Anyone who can write beside the database can write the inbox: a line of the
    wrong shape must not stop the others, nor the hourly stage after it."""
    from listener.pipeline import Pipeline

    store = labelled
    lines = [
        '{"id": "a", "label": "negative"}',
        '{"id": "b", "label": "negative", "brand": 5}',
        '{not json',
        '{"id": "c", "label": "angry"}',
        '["c", "positive"]',
        '{"id": 7, "label": "positive"}',
        '{"id": "c", "label": "positive", "source": ["test"]}',
        '{"id": "d", "label": "positive", "by": "ana"}',
    ]
    inbox_path(store.path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        Pipeline(store, SCORER, lambda: T0).score_hours()  # does not raise
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 6
    for number, text, why in [(2, '"brand": 5', "'brand' must be a string or null"), (3, "{not json", "not JSON"),
                              (4, "angry", "label must be one of"), (5, '["c"', "not a JSON object"),
                              (6, "7", "'id' must be a string"), (7, "source", "'source' must be a string")]:
        assert any(f"line {number} " in w and text in w and why in w for w in warnings), (number, warnings)
    with store.native() as db:
        assert db.execute("SELECT id, label FROM labels ORDER BY id").fetchall() == [("a", "negative"),
                                                                                     ("d", "positive")]
    assert not inbox_path(store.path).exists()


def test_a_directory_at_the_inbox_path_is_reported_left_alone_and_blocks_nothing(labelled):
    from listener.pipeline import Pipeline

    from storage.errors import StorageError
    from storage.labels import has_queued

    store = labelled
    inbox = inbox_path(store.path)
    taken = inbox.with_name(inbox.name + ".applying")
    taken.write_text('{"id": "a", "label": "negative"}\n', encoding="utf-8")  # left by a crash
    inbox.mkdir()
    (inbox / "keep.txt").write_text("someone's file")
    result = apply_inbox(store, T0)
    assert result.applied == 1 and len(result.errors) == 1 and "is a directory, not the label inbox" in result.errors[0]
    assert (inbox / "keep.txt").read_text() == "someone's file" and not taken.exists()
    assert not has_queued(store.path)
    with pytest.raises(StorageError, match="cannot queue the label: .* is a directory"):
        queue_label(store.path, LabelRequest(id="b", label="positive"), T0)
    for _ in range(2):
        Pipeline(store, SCORER, lambda: T0).score_hours()
    assert inbox.is_dir() and (inbox / "keep.txt").exists()
