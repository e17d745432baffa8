"""Every mood view says which scorer produced its figures: `listener mood` (text and
JSON), the campaign report (JSON, Markdown, HTML) and the live view, from one storage
function (storage.queries.provenance), on a real DuckDB file where two scorers are in
effect for one brand and its history is being re-scored."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from listener.web.render import render_page
from analysis.sentiment import VaderScorer
from listener.cli import cli
from listener.live_view import BrandView, build_view
from storage.labels import LabelRequest, apply_label
from storage.live import LiveReader
from storage.queries import ScorerShare, provenance, scorers_in_effect
from storage.rollup import rollup_pending
from storage.store import Store, to_db_time
from tests.conftest import T0, FixedClock, mention

SCORER = VaderScorer()
AS_OF = T0 + timedelta(hours=12)
TEXTS = ["Acme is great", "Acme is awful", "Acme store on Main Street", "love Acme", "Acme is terrible"]


@pytest.fixture
def db(tmp_path):
    """Acme: 5 mentions; 2 of them scored in effect by a learned model (VADER's rows
    kept, inactive), one labelled by hand, a re-scoring job 40 % done."""
    path = tmp_path / "listener.duckdb"
    with Store.open(path) as store:
        batch = [mention(i, text, T0 + timedelta(hours=i)) for i, text in enumerate(TEXTS)]
        store.save_batch(batch, SCORER.score(TEXTS), source="test", brand="Acme", checkpoint=None, scorer="vader",
                         scorer_version=SCORER.version, now=T0)
        with store.native() as con:
            con.execute("UPDATE scores SET active = false WHERE id IN ('0', '1')")
            con.execute("INSERT INTO scores SELECT source, id, brand, created_at, 'learned', '1-abc123', 0.8 - 0.1, "
                        "0.8, 0.1, 0.1, 'positive', scored_at, true FROM scores WHERE id IN ('0', '1')")
            con.execute("INSERT INTO rescore_jobs VALUES ('Acme', 'learned', '1-abc123', $t, 10, 4, $t)",
                        {"t": to_db_time(T0)})
        apply_label(store, LabelRequest(id="1", label="negative"), T0)
        rollup_pending(store)
    return path


def run(db, *args):
    result = CliRunner().invoke(cli, ["--db", str(db), *args], obj={"clock": FixedClock(AS_OF)})
    assert result.exit_code == 0, result.output
    return result.stdout


EXPECTED = (f"scored by vader {SCORER.version} (60 %), learned 1-abc123 (40 %); 1 manual label(s) override the "
            f"scorer; re-scoring history with learned 1-abc123: 40 % done (4 of 10)")


def test_the_storage_function_counts_mentions_per_scorer_in_effect(db):
    with Store.open(db, read_only=True) as store:
        assert scorers_in_effect(store, "Acme", T0, AS_OF) == [
            ScorerShare("vader", SCORER.version, 3), ScorerShare("learned", "1-abc123", 2)]
        # a window holding only the learned model's mentions
        assert scorers_in_effect(store, "Acme", T0, T0 + timedelta(hours=2)) == [
            ScorerShare("learned", "1-abc123", 2)]
        found = provenance(store, "Acme", T0, AS_OF)
        assert found.labelled == 1 and found.rescoring.fraction == 0.4


def test_listener_mood_says_which_scorers_produced_the_figures(db):
    out = json.loads(run(db, "mood", "--json", "--as-of", AS_OF.isoformat()))["brands"][0]
    assert out["scored_by"]["scorers"] == [
        {"scorer": "vader", "version": SCORER.version, "mentions": 3, "share": 0.6},
        {"scorer": "learned", "version": "1-abc123", "mentions": 2, "share": 0.4}]
    assert out["scored_by"]["rescoring"]["fraction"] == 0.4
    assert out["scored_by"]["text"] == EXPECTED
    assert f"these 8 days: {EXPECTED}" in run(db, "mood", "--as-of", AS_OF.isoformat())


def test_the_report_says_which_scorers_produced_the_figures(db):
    report = json.loads(run(db, "report", "--format", "json", "--as-of", AS_OF.isoformat()))
    assert report["scored_by"]["Acme"]["text"] == EXPECTED
    assert f"Acme: {EXPECTED}" in run(db, "report", "--format", "md", "--as-of", AS_OF.isoformat())
    html = run(db, "report", "--format", "html", "--as-of", AS_OF.isoformat())
    assert "Mood scored by" in html and "learned 1-abc123 (40 %)" in html


def test_the_live_view_says_which_scorers_produced_the_figures(db):
    reader = LiveReader(db)
    try:
        with reader.reading() as reading:
            view = build_view(reading, [BrandView("Acme")], SCORER, AS_OF)
    finally:
        reader.close()
    assert view["brands"][0]["mood"]["scored_by"]["text"] == EXPECTED
    page = render_page(view, csrf="x")
    assert "Mood figures of these 8 days: scored by vader" in page and "40 % done" in page
    # the view's mood is exactly what `listener mood --json` prints, provenance included
    assert view["brands"][0]["mood"] == json.loads(run(db, "mood", "--json", "--as-of", AS_OF.isoformat()))["brands"][0]
