"""listener model train|status|promote|rollback and accuracy, through the CLI on real
database files: a brand whose customers VADER misreads (sarcasm), labelled by its team."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from listener.cli import cli
from listener.config import load_settings
from listener.rescoring import promote, rescore_chunk, with_workers
from listener.scoring import build_scoring
from storage.labels import LabelRequest, apply_label
from storage.models import active_models, rescore_jobs
from storage.store import Store
from tests.listener.model_db import CONFIG, T0, corpus, db_rows, expected_hourly, make_db, stored_hourly


def run(directory: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--config", str(directory / "listener.toml"), *args])
    assert result.exit_code == code, (result.output, result.stderr, result.exception)
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Acme's database with a model trained on 120 labels (qualifying); copied per test."""
    directory = make_db(tmp_path_factory.mktemp("models") / "acme")
    (directory / "train.txt").write_text(run(directory, "model", "train"))
    return directory


@pytest.fixture
def acme(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "acme"))


def hourly(directory: Path) -> list[tuple]:
    return db_rows(directory, "SELECT * FROM hourly_mood ORDER BY brand, source, hour")


# -- train -------------------------------------------------------------------------------------------


def test_train_stores_the_model_with_its_labels_and_figures(acme):
    out = json.loads(run(acme, "model", "train", "--brand", "acme", "--json"))
    assert [r["brand"] for r in out] == ["Acme"] and out[0]["trained"]
    labels = db_rows(acme, "SELECT source || ':' || id, label FROM labels ORDER BY source, id")
    digest = hashlib.sha256("".join(f"{key}\t{label}\n" for key, label in labels).encode()).hexdigest()
    models = db_rows(acme, "SELECT version, status, labels, labels_hash, label_keys, evaluation, octet_length(payload) "
                           "FROM models ORDER BY model_id")
    assert len(models) == 2  # the fixture's and this one: the same labels give the same model
    version, status, count, labels_hash, keys, evaluation, size = models[-1]
    assert (version, status, count, labels_hash) == (out[0]["model"]["version"], "trained", 120, digest)
    assert models[0][0] == version
    assert json.loads(keys) == [key for key, _ in labels]
    figures = json.loads(evaluation)
    assert figures["qualifies"] and figures["mean_gain"] > figures["margin"]
    assert size > 0
    text = (acme / "train.txt").read_text()
    assert f"trained model {version} on 120 labels (labels hash {digest[:12]})" in text
    assert "QUALIFIES" in text and "model promote --brand Acme" in text


def test_train_with_too_few_labels_says_how_many_more(tmp_path):
    directory = make_db(tmp_path / "few", labelled=30, unlabelled=30)
    out = run(directory, "model", "train")
    assert "30 labels" in out and "label 30 more" in out
    assert db_rows(directory, "SELECT count(*) FROM models") == [(0,)]
    result = CliRunner().invoke(cli, ["--config", str(directory / "listener.toml"), "model", "train", "--brand", "Nope"])
    assert result.exit_code == 2 and "no brand named 'Nope'" in result.stderr


# -- promote ---------------------------------------------------------------------------------------


def test_promote_is_refused_unless_the_model_beats_vader(tmp_path):
    directory = make_db(tmp_path / "vaderish", vader_labels=True)  # VADER agrees with every label
    out = json.loads(run(directory, "model", "train", "--json"))
    assert out[0]["trained"] and not out[0]["model"]["qualifies"]
    result = CliRunner().invoke(cli, ["--config", str(directory / "listener.toml"), "model", "promote",
                                      "--brand", "Acme"])
    assert result.exit_code == 2 and "does not qualify" in result.stderr
    assert db_rows(directory, "SELECT status FROM models") == [("trained",)]
    assert db_rows(directory, "SELECT count(*) FROM runs WHERE kind = 'promote'") == [(0,)]
    assert db_rows(directory, "SELECT count(*) FROM scores WHERE scorer <> 'vader' OR NOT active") == [(0,)]


def test_promote_is_refused_when_the_brand_does_not_use_auto(acme):
    (acme / "listener.toml").write_text(CONFIG.format(extra="").replace('terms = ["acme"]',
                                                                        'terms = ["acme"]\nscorer = "vader"'))
    result = CliRunner().invoke(cli, ["--config", str(acme / "listener.toml"), "model", "promote", "--brand", "Acme"])
    assert result.exit_code == 2 and "scorer is set to 'vader'" in result.stderr
    assert db_rows(acme, "SELECT status FROM models") == [("trained",)]


def test_promote_rescores_history_and_rollback_restores_vader_exactly(acme):
    vader_rows = db_rows(acme, "SELECT source, id, compound, label FROM scores WHERE scorer = 'vader' ORDER BY id")
    # A manual label the model disagrees with must still win after the promotion.
    disputed = db_rows(acme, "SELECT m.id FROM mentions m ANTI JOIN labels l ON l.id = m.id "
                             "WHERE m.text LIKE '%tarmac%' ORDER BY m.id LIMIT 1")[0][0]
    with Store.open(acme / "listener.duckdb") as store:
        apply_label(store, LabelRequest(id=disputed, label="positive"), T0)
    run(acme, "score")
    before = hourly(acme)

    out = json.loads(run(acme, "model", "promote", "--brand", "Acme", "--json"))
    assert out["in_effect"].startswith("model ") and out["replaced"] == "VADER" and out["rescored"] == 360
    version = out["in_effect"].split()[1]
    # Exactly one score in effect per mention, the model's; VADER's rows kept as they were.
    assert db_rows(acme, "SELECT count(*), count(DISTINCT (source, id)) FROM scores WHERE active") == [(360, 360)]
    assert db_rows(acme, "SELECT DISTINCT scorer, scorer_version FROM scores WHERE active") == [("learned", version)]
    assert db_rows(acme, "SELECT source, id, compound, label FROM scores WHERE scorer = 'vader' ORDER BY id") \
        == vader_rows
    # The hours were recomputed from the model's scores, the manual labels overriding it.
    after = hourly(acme)
    assert after != before
    assert stored_hourly(acme) == expected_hourly(acme)
    assert db_rows(acme, "SELECT label FROM scores WHERE id = ? AND active", [disputed]) == [("negative",)]
    assert db_rows(acme, "SELECT label FROM v_mentions WHERE id = ?", [disputed]) == [("positive",)]
    # VADER called the sarcastic complaints positive; the model counts them negative.
    assert sum(r[9] for r in after) > sum(r[9] for r in before) + 60  # hourly_mood.negative
    assert db_rows(acme, "SELECT status FROM models") == [("active",)]

    text = run(acme, "model", "rollback", "--brand", "acme")
    assert f"now scored by VADER (was model {version})" in text
    assert hourly(acme) == before
    assert db_rows(acme, "SELECT DISTINCT scorer FROM scores WHERE active") == [("vader",)]
    assert db_rows(acme, "SELECT count(*) FROM scores WHERE scorer = 'learned'") == [(360,)]  # kept: no re-score next time
    runs = db_rows(acme, "SELECT kind, brand, status, detail FROM runs WHERE kind IN ('promote', 'rollback') "
                         "ORDER BY run_id")
    assert runs == [("promote", "Acme", "ok", f"model {version} in effect, replacing VADER"),
                    ("rollback", "Acme", "ok", f"VADER in effect, replacing model {version}")]
    assert db_rows(acme, "SELECT status, replaced FROM models") == [("retired", None)]
    status = json.loads(run(acme, "model", "status", "--json"))["brands"][0]
    assert status["in_effect"]["scorer"] == "vader" and status["rescore"] is None
    result = CliRunner().invoke(cli, ["--config", str(acme / "listener.toml"), "model", "rollback", "--brand", "Acme"])
    assert result.exit_code == 2 and "VADER already" in result.stderr


def test_a_rescore_cut_short_resumes_where_it_stopped(acme, tmp_path):
    straight = Path(shutil.copytree(acme, tmp_path / "straight"))
    run(straight, "model", "promote", "--brand", "Acme")
    settings = load_settings(str(acme / "listener.toml"), None)
    with Store.open(acme / "listener.duckdb") as store:
        promote(store, settings, "Acme", None, lambda: T0)
        chain = build_scoring(settings, store).for_brand("Acme")
        rescore_chunk(store, chain, rescore_jobs(store)[0], lambda: T0, size=100)
        job = rescore_jobs(store)[0]  # what a kill after the first chunk leaves
    assert (job.done, job.total) == (100, 360)
    assert db_rows(acme, "SELECT count(*) FROM scores WHERE active AND scorer = 'learned'") == [(100,)]
    status = json.loads(run(acme, "model", "status", "--json"))["brands"][0]["rescore"]
    assert (status["done"], status["total"]) == (100, 360)
    assert "260 more stored mentions re-scored" in run(acme, "model", "rescore")
    assert db_rows(acme, "SELECT count(*) FROM rescore_jobs") == [(0,)]
    key = "SELECT source, id, scorer, scorer_version, compound, label, active FROM scores ORDER BY id, scorer"
    assert db_rows(acme, key) == db_rows(straight, key)
    assert hourly(acme) == hourly(straight)


def test_workers_store_the_same_scores_as_one_process(acme, tmp_path):
    two = Path(shutil.copytree(acme, tmp_path / "two"))
    run(acme, "model", "promote", "--brand", "Acme", "--workers", "1")
    run(two, "model", "promote", "--brand", "Acme", "--workers", "2")
    key = "SELECT source, id, scorer, scorer_version, compound, pos, neu, neg, label, active FROM scores ORDER BY ALL"
    assert db_rows(two, key) == db_rows(acme, key)
    assert db_rows(two, "SELECT count(*) FROM scores WHERE scorer = 'learned'") == [(360,)]
    # The model did score over two processes: the brand's chain leads with the pool.
    settings = load_settings(str(two / "listener.toml"), None)
    with Store.open(two / "listener.duckdb", read_only=True) as store:
        scoring = build_scoring(settings, store)
        payload = active_models(store)["Acme"].payload
    parallel, opened = with_workers(scoring, {"Acme": payload}, 2)
    try:
        assert [p.workers for p in opened] == [2] and parallel.for_brand("Acme").chain[0] is opened[0]
        texts = [text for text, _ in corpus(30, seed=3)]
        assert opened[0].score(texts) == scoring.for_brand("Acme").chain[0].score(texts)
    finally:
        for pool in opened:
            pool.close()


# -- accuracy ----------------------------------------------------------------------------------------


def test_accuracy_shows_the_model_beside_vader_and_the_random_sample(acme):
    run(acme, "model", "promote", "--brand", "Acme")
    unlabelled = [r[0] for r in db_rows(acme, "SELECT m.id FROM mentions m ANTI JOIN labels l ON l.id = m.id "
                                              "ORDER BY m.id LIMIT 12")]
    truth = dict(corpus_labels(acme))
    with Store.open(acme / "listener.duckdb") as store:
        for mention_id in unlabelled:
            apply_label(store, LabelRequest(id=mention_id, label=truth[mention_id], origin="next:random"), T0)
    out = json.loads(run(acme, "accuracy", "--json"))
    assert out["compared"] == 132  # VADER against every label, as before
    [model] = out["models"]
    assert model["brand"] == "Acme" and model["labels"] == 120 and len(model["labels_hash"]) == 64
    assert model["labels_now"] == 132 and model["labels_changed"]
    figures = model["evaluation"]
    assert len(figures["model_f1"]) == len(figures["vader_f1"]) == figures["folds"]
    assert set(figures["model_classes"]) == set(figures["vader_classes"]) == {"positive", "neutral", "negative"}
    assert figures["model_classes"]["negative"]["recall_ci"] and figures["qualifies"]
    sample = out["random_sample"]
    assert sample["labelled"] == sample["compared"] == 12 and sample["accuracy"] == 1.0
    text = run(acme, "accuracy")
    assert "model precision" in text and "random sample" in text


def corpus_labels(directory: Path) -> list[tuple[str, str]]:
    """Each stored mention's true label, from the corpus it was made of."""
    rows = corpus(360, seed=7)
    return [(f"m{i}", label) for i, (_, label) in enumerate(rows)]
