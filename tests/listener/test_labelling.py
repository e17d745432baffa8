"""`listener label import` and `listener label next` on real DuckDB files, through
click's CliRunner (and a second process holding the database, as the daemon does)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import timedelta

import duckdb
import pytest
from click.testing import CliRunner

from analysis.sentiment import Score, VaderScorer
from listener.cli import cli
from storage.labels import apply_inbox, inbox_path
from storage.rollup import rollup_pending
from storage.snapshot import snapshot_path
from storage.store import Store
from tests.conftest import T0, FixedClock, daemon_holding, mention

NOW = T0 + timedelta(days=2)
SCORER = VaderScorer()


def run(db, *args, input=None):
    return CliRunner().invoke(cli, ["--db", str(db), *args], obj={"clock": FixedClock(NOW)}, input=input)


def score(compound: float) -> Score:
    label = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
    return Score(compound, max(compound, 0.0), 1 - abs(compound), max(-compound, 0.0), label)


def save(store, mentions, scores=None, source="test", brand="Acme", hashes=None):
    scores = scores if scores is not None else SCORER.score([m.text for m in mentions])
    store.save_batch(mentions, scores, source=source, brand=brand, checkpoint=None, scorer="vader",
                     scorer_version=SCORER.version, now=T0, text_hashes=hashes)


def rows(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def db(tmp_path):
    """Acme: 6 mentions on source test, 1 on source other (id 'p1' in both sources)."""
    path = tmp_path / "listener.duckdb"
    with Store.open(path) as store:
        save(store, [mention("p1", "Acme is great", T0 + timedelta(hours=1)),
                     mention("p2", "Acme is wonderful", T0 + timedelta(hours=2)),
                     mention("n1", "Acme is awful", T0 + timedelta(hours=3)),
                     mention("n2", "Acme is terrible", T0 + timedelta(hours=4)),
                     mention("u1", "Acme store on Main Street", T0 + timedelta(hours=5)),
                     mention("u2", "Acme opens at nine", T0 + timedelta(hours=6))])
        save(store, [mention("p1", "Acme is lovely", T0 + timedelta(hours=1), source="other")], source="other")
        rollup_pending(store)
    return path


def write(tmp_path, text: str | bytes, name="labels.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def mood_24h(db):
    result = run(db, "mood", "--json", "--as-of", (T0 + timedelta(hours=12)).isoformat())
    assert result.exit_code == 0, result.output
    window = json.loads(result.stdout)["brands"][0]["last_24h"]
    return window["positive"], window["neutral"], window["negative"]


# -- label import ------------------------------------------------------------------------------


def test_an_import_with_bad_rows_names_every_one_by_line_and_stores_nothing(db, tmp_path):
    before = db.read_bytes()
    path = write(tmp_path, "id,label,by\n"
                           "test:p2,negative,ana\n"      # line 2: fine
                           "test:n1,furious,ana\n"       # line 3: bad label
                           "test:u1,positive,\n"         # line 4: fine
                           "nobody,neutral,ana\n"        # line 5: unknown mention
                           "test:u1,negative,bo\n")      # line 6: contradicts line 4
    result = run(db, "label", "import", str(path))
    assert result.exit_code == 2, result.output
    assert "3 problems" in result.stderr
    assert "row 3, column 'label': 'furious' is not one of positive, neutral, negative, clear" in result.stderr
    assert "row 5, column 'id': no stored mention has id 'nobody'" in result.stderr
    assert "row 6, column 'label': negative for test:u1 (Acme), which line 4 labels positive" in result.stderr
    assert "row 2" not in result.stderr and "Nothing was stored" in result.stderr
    assert rows(db, "SELECT count(*) FROM labels") == [(0,)]
    assert db.read_bytes() == before


def test_the_file_itself_is_checked_whole(db, tmp_path):
    unknown = run(db, "label", "import", str(write(tmp_path, "mention,sentiment\np1,positive\n")))
    assert unknown.exit_code == 2
    assert "row 1: unknown column(s) 'mention', 'sentiment'; missing column(s) id, label" in unknown.stderr
    # an ambiguous id, an empty id, a row of the wrong width and two lines that are not UTF-8, at once
    bad = write(tmp_path, b"id,label\np1,positive\n,negative\nn1,negative,extra\nn2,neg\xe9\nu1,\xffpositive\n")
    result = run(db, "label", "import", str(bad))
    assert result.exit_code == 2
    for expected in ("row 2, column 'id': id 'p1' exists in several sources (other, test)",
                     "row 3, column 'id': empty", "row 4: 3 field(s) where the header has 2",
                     "row 5: not UTF-8 text", "row 6: not UTF-8 text"):
        assert expected in result.stderr, expected
    assert rows(db, "SELECT count(*) FROM labels") == [(0,)]
    missing = run(db, "label", "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "nope.csv" in missing.stderr


def test_a_good_import_applies_every_label_in_one_go_and_changes_mood(db, tmp_path):
    assert mood_24h(db) == (3, 2, 2)  # VADER: p1, p2 and other:p1 positive; n1, n2 negative
    path = write(tmp_path, "\ufeffID, Label ,By,source\n"
                           "p2,negative,,test\n"
                           "test:u1,NEGATIVE,bo,\n"
                           "other:p1,neutral,,\n"
                           "test:u1,negative,,\n"        # repeats line 3: fine
                           "test:n2,clear,,\n")
    result = run(db, "label", "import", str(path), "--by", "ana", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["repeated_rows"], summary["mentions"], summary["queued"]) == (5, 1, 4, False)
    assert summary["labels"] == {"positive": 0, "neutral": 1, "negative": 3, "clear": 1}
    assert summary["hours_recomputed"] >= 1
    assert rows(db, "SELECT source, id, label, labelled_by, origin FROM labels ORDER BY source, id") == [
        ("other", "p1", "neutral", "ana", "import"), ("test", "p2", "negative", "ana", "import"),
        ("test", "u1", "negative", "ana", "import")]  # of two equal rows, the later wins
    assert rows(db, "SELECT count(*) FROM pending_hours") == [(0,)]  # the hourly stage ran
    assert mood_24h(db) == (1, 2, 4)
    text = run(db, "label", "import", str(write(tmp_path, "id,label\ntest:n1,positive\n", "more.csv")))
    assert text.exit_code == 0 and "Imported 1 label(s) from more.csv (1 positive) on 1 mention(s)" in text.stdout


def test_an_import_is_queued_whole_while_the_daemon_holds_the_database(db, tmp_path):
    shutil.copy(db, snapshot_path(db))
    good = write(tmp_path, "id,label\ntest:p1,negative\ntest:u2,positive\n")
    bad = write(tmp_path, "id,label\ntest:p1,negative\nnobody,positive\n", "bad.csv")
    with daemon_holding(db):
        refused = run(db, "label", "import", str(bad))
        assert refused.exit_code == 2 and "row 3" in refused.stderr and "snapshot" in refused.stderr
        assert not inbox_path(db).exists()
        result = run(db, "label", "import", str(good), "--by", "ana")
        assert result.exit_code == 0, result.output
        assert "The daemon holds the database: queued 2 label(s)" in result.stdout
    lines = [json.loads(line) for line in inbox_path(db).read_text(encoding="utf-8").splitlines()]
    assert [(x["id"], x["label"], x["by"], x["origin"]) for x in lines] == [
        ("test:p1", "negative", "ana", "import"), ("test:u2", "positive", "ana", "import")]
    with Store.open(db) as store:  # what the daemon does after its cycle
        assert apply_inbox(store, NOW).applied == 2
    assert rows(db, "SELECT id, label, origin FROM labels ORDER BY id") == [
        ("p1", "negative", "import"), ("u2", "positive", "import")]


def test_label_set_records_its_origin(db):
    result = run(db, "label", "test:p1", "negative", "--by", "ana")
    assert result.exit_code == 0, result.output
    assert rows(db, "SELECT id, label, labelled_by, origin FROM labels") == [("p1", "negative", "ana", "cli")]
    assert run(db, "label", "set", "test:p1", "clear").exit_code == 0
    assert rows(db, "SELECT count(*) FROM labels") == [(0,)]


# -- label next --------------------------------------------------------------------------------


@pytest.fixture
def spread(tmp_path):
    """Acme with known VADER compounds on two sources over two days, a near-duplicate
    pair, and certain mentions (compound ±0.9) around them."""
    path = tmp_path / "listener.duckdb"
    with Store.open(path) as store:
        for source, compounds in (("alpha", [0.06, -0.045, 0.08, 0.3, 0.9, -0.9]),
                                  ("beta", [0.12, -0.15, 0.2, 0.5, 0.95, -0.95])):
            batch = [mention(f"{source}{i}", f"Acme text {source} {i}", T0 + timedelta(hours=i), source=source)
                     for i in range(len(compounds))]
            hashes = [100 + i if source == "alpha" else 200 + i for i in range(len(compounds))]
            save(store, batch, [score(c) for c in compounds], source=source, hashes=hashes)
        # the same text (one text_hash) as alpha0, later the same day on alpha: asked once only
        save(store, [mention("copy", "Acme text alpha 0!", T0 + timedelta(hours=7), source="alpha")],
             [score(0.055)], source="alpha", hashes=[100])
        rollup_pending(store)
    return path


def _next(db, *args):
    result = run(db, "label", "next", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_label_next_asks_the_closest_calls_first_spread_over_sources(spread):
    out = _next(spread, "-n", "4")
    assert out["kind"] == "uncertain" and out["origin"] == "next:uncertain" and out["candidates"] == 13
    ids = [m["id"] for m in out["mentions"]]
    # nearest the thresholds: copy (0.055) and alpha1 (-0.045); alpha0 (0.06) has copy's
    # text; then beta is taken in turn although alpha2 (0.08) is closer than beta0 (0.12)
    assert set(ids[:2]) == {"copy", "alpha1"}
    assert {m["source"] for m in out["mentions"]} == {"alpha", "beta"}
    assert Counter(m["source"] for m in out["mentions"]) == {"alpha": 2, "beta": 2}
    assert not {"copy", "alpha0"} <= set(ids)
    u = [m["uncertainty"] for m in out["mentions"]]
    assert u == sorted(u, reverse=True) and u[0] == pytest.approx(1 - 0.005 / 0.95, abs=1e-4)
    # --since bounds the history looked at
    since = (T0 + timedelta(hours=3)).isoformat()
    late = _next(spread, "--since", since, "-n", "13")["mentions"]
    assert len(late) == 7 and all(m["created_at"] >= since for m in late)
    assert run(spread, "label", "next", "--since", "yesterday").exit_code == 2
    # the text says what it shows and why
    text = run(spread, "label", "next", "-n", "3", "--no-ask")
    assert text.exit_code == 0 and "least sure of" in text.stdout and "spread over sources and days" in text.stdout


def test_a_near_duplicate_text_is_offered_once(tmp_path):
    path = tmp_path / "listener.duckdb"
    with Store.open(path) as store:
        batch = [mention(i, f"Acme {i}", T0 + timedelta(minutes=i)) for i in range(3)]
        save(store, batch, [score(0.055), score(0.06), score(0.07)], hashes=[1, 1, 2])
    assert [m["id"] for m in _next(path, "-n", "2")["mentions"]] == ["0", "2"]


def test_a_classifier_s_uncertainty_is_one_minus_its_margin(spread):
    with Store.open(spread) as store, store.native() as con:
        con.execute("UPDATE scores SET active = false WHERE id IN ('beta4', 'beta5')")
        con.execute("INSERT INTO scores SELECT source, id, brand, created_at, 'learned', '1-abc', 0.40 - 0.25, "
                    "0.40, 0.35, 0.25, 'positive', scored_at, true FROM scores WHERE id = 'beta4'")
        con.execute("INSERT INTO scores SELECT source, id, brand, created_at, 'learned', '1-abc', 0.9 - 0.05, "
                    "0.9, 0.05, 0.05, 'positive', scored_at, true FROM scores WHERE id = 'beta5'")
    found = {m["id"]: m for m in _next(spread, "-n", "13")["mentions"]}
    assert found["beta4"]["scorer"] == "learned" and found["beta4"]["uncertainty"] == pytest.approx(0.95)
    assert found["beta5"]["uncertainty"] == pytest.approx(0.15)
    assert found["beta0"]["uncertainty"] == pytest.approx(1 - 0.07 / 0.95, abs=1e-4)


def test_label_next_random_is_seeded_and_uniform_not_the_uncertain_ones(tmp_path):
    path = tmp_path / "listener.duckdb"
    with Store.open(path) as store:
        compounds = [0.06 if i % 2 else 0.95 for i in range(200)]  # half uncertain, half certain
        batch = [mention(i, f"Acme {i}", T0 + timedelta(minutes=i)) for i in range(200)]
        save(store, batch, [score(c) for c in compounds])
    first = _next(path, "--random", "--seed", "7", "-n", "20")
    assert first["kind"] == "random" and first["seed"] == 7 and first["candidates"] == 200
    assert _next(path, "--random", "--seed", "7", "-n", "20") == first
    assert [m["id"] for m in _next(path, "--random", "--seed", "8", "-n", "20")["mentions"]] != \
        [m["id"] for m in first["mentions"]]
    draws = Counter()
    for seed in range(30):
        for m in _next(path, "--random", "--seed", str(seed), "-n", "20")["mentions"]:
            draws[int(m["id"]) % 2] += 1
    assert 0.4 < draws[0] / 600 < 0.6  # the certain half is drawn as often as the uncertain half
    # the uncertain choice takes only the uncertain half
    assert {int(m["id"]) % 2 for m in _next(path, "-n", "20")["mentions"]} == {1}
    unseeded = run(path, "label", "next", "--random", "-n", "2", "--no-ask")
    assert "drawn uniformly at random (seed" in unseeded.stdout


def test_answers_are_stored_at_once_with_their_origin(spread):
    result = run(spread, "label", "next", "-n", "4", "--ask", "--by", "ana", input="n\ns\nx\np\nq\n")
    assert result.exit_code == 0, result.output
    shown = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(shown) == 4  # the 4th was asked, then q
    labels = rows(spread, "SELECT id, label, labelled_by, origin FROM labels ORDER BY labelled_at, id")
    assert sorted(labels) == sorted([(shown[0].split(":")[1], "negative", "ana", "next:uncertain"),
                                     (shown[2].split(":")[1], "positive", "ana", "next:uncertain")])
    assert "2 label(s) given, origin next:uncertain" in result.stdout
    assert rows(spread, "SELECT count(*) FROM pending_hours") == [(0,)]
    # labelled ones are not suggested again; a random draw is stored as such
    assert not {m["id"] for m in _next(spread, "-n", "13")["mentions"]} & {s.split(":")[1] for s in shown[::2]}
    drawn = run(spread, "label", "next", "--random", "--seed", "3", "-n", "1", "--ask", input="u\n")
    assert drawn.exit_code == 0, drawn.output
    assert rows(spread, "SELECT label, origin FROM labels WHERE origin = 'next:random'") == [("neutral", "next:random")]


def test_answers_are_queued_while_the_daemon_holds_the_database(spread):
    shutil.copy(spread, snapshot_path(spread))
    with daemon_holding(spread):
        result = run(spread, "label", "next", "-n", "1", "--ask", input="p\n")
    assert result.exit_code == 0, result.output
    assert "queued positive" in result.stdout
    (line,) = inbox_path(spread).read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["origin"] == "next:uncertain"
