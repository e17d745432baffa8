"""Scorers chosen per brand in the config: a configured scorer scores the languages it
declares, VADER's score is kept beside every other, and the config is checked.

The configured scorer is a real ONNX model run by onnxruntime (tests/onnx_fixture.py
builds a tiny German one), loaded through the ``listener.scorers`` entry point.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from click.testing import CliRunner

from analysis.scorers import ScoringChain, installed
from analysis.sentiment import VaderScorer
from listener.cli import cli
from storage.store import Store
from tests.onnx_fixture import build_tiny_model

AS_OF = datetime(2026, 11, 20, 15, 30, tzinfo=timezone.utc)
POSTS = [
    ("en1", "en", "Acme is great, I love it"),
    ("en2", "en", "Acme is awful and slow"),
    ("de1", "de", "Acme ist super und toll"),
    ("de2", "de", "Acme ist schlecht, die lieferung war furchtbar"),
    ("de3", "de", "Acme der service ist schlecht"),
]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write_config(tmp_path: Path, brand_scorer: str | None = None, scorer_table: str | None = None) -> Path:
    model, tokenizer = build_tiny_model(tmp_path / "model")
    table = scorer_table if scorer_table is not None else (
        f'[scorers.german]\ntype = "onnx"\nlanguages = ["de"]\n'
        f'model = "model/{model.name}"\ntokenizer = "model/{tokenizer.name}"\n')
    brand = f'scorer = "{brand_scorer}"\n' if brand_scorer else ""
    config = tmp_path / "listener.toml"
    config.write_text(f'[database]\npath = "acme.duckdb"\n\n[[brands]]\nname = "Acme"\nterms = ["acme"]\n{brand}\n{table}',
                      encoding="utf-8")
    return config


def import_posts(tmp_path: Path, config: Path):
    lines = [json.dumps({"id": post_id, "created_at": (AS_OF - timedelta(minutes=10 + i)).isoformat(), "text": text,
                         "lang": lang, "author": f"u{i}"}) for i, (post_id, lang, text) in enumerate(POSTS)]
    feed = tmp_path / "posts.jsonl"
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return invoke("--config", str(config), "import", str(feed), "--source", "survey")


def stored_scores(tmp_path: Path) -> dict[tuple[str, str], tuple[str, bool]]:
    with Store.open(tmp_path / "acme.duckdb", read_only=True) as store, store.native() as db:
        rows = db.execute("SELECT id, scorer, label, active FROM scores").fetchall()
    return {(i, scorer): (label, active) for i, scorer, label, active in rows}


def test_a_configured_scorer_scores_the_languages_it_declares_and_vader_is_kept_beside(tmp_path):
    config = write_config(tmp_path)
    result = import_posts(tmp_path, config)
    assert result.exit_code == 0, result.output
    scores = stored_scores(tmp_path)
    # German: the ONNX model's score, in effect; VADER does not score German at all.
    assert scores[("de1", "onnx")] == ("positive", True)
    assert scores[("de2", "onnx")] == ("negative", True)
    assert scores[("de3", "onnx")] == ("negative", True)
    assert not any(scorer == "vader" and i.startswith("de") for i, scorer in scores)
    # English: the model does not declare it, so VADER's score is in effect.
    assert scores[("en1", "vader")] == ("positive", True)
    assert scores[("en2", "vader")] == ("negative", True)
    assert not any(scorer == "onnx" and i.startswith("en") for i, scorer in scores)

    mood = invoke("--config", str(config), "mood", "--json", "--as-of", AS_OF.isoformat())
    (acme,) = json.loads(mood.stdout)["brands"]
    hour = acme["last_hour"]
    # Every post counts for mood: none is left "unscored" for its language.
    assert (hour["mentions"], hour["unscored"], hour["positive"], hour["negative"]) == (5, 0, 2, 3)


def test_a_brand_set_to_vader_leaves_other_languages_unscored(tmp_path):
    config = write_config(tmp_path, brand_scorer="vader")
    assert import_posts(tmp_path, config).exit_code == 0
    scores = stored_scores(tmp_path)
    assert {scorer for _, scorer in scores} == {"vader"}
    mood = invoke("--config", str(config), "mood", "--json", "--as-of", AS_OF.isoformat())
    (acme,) = json.loads(mood.stdout)["brands"]
    assert (acme["last_hour"]["mentions"], acme["last_hour"]["unscored"]) == (5, 3)


def test_a_brand_set_to_a_configured_scorer_uses_it_first(tmp_path):
    # The scorer now claims English too: for this brand it comes before VADER.
    table_dir = tmp_path / "model"
    model, tokenizer = build_tiny_model(table_dir)
    table = (f'[scorers.german]\ntype = "onnx"\nlanguages = ["de", "en"]\n'
             f'model = "model/{model.name}"\ntokenizer = "model/{tokenizer.name}"\n')
    config = write_config(tmp_path, brand_scorer="german", scorer_table=table)
    assert import_posts(tmp_path, config).exit_code == 0
    scores = stored_scores(tmp_path)
    assert scores[("en1", "onnx")][1] is True
    assert scores[("en1", "vader")] == ("positive", False)  # kept beside, not in effect


def test_scorer_settings_are_checked_all_at_once_with_exit_code_2(tmp_path):
    config = tmp_path / "listener.toml"
    config.write_text(
        '[[brands]]\nname = "Acme"\nterms = ["acme"]\nscorer = "nope"\n\n'
        '[scorers.fr]\ntype = "no-such-type"\nlanguages = ["fr"]\n\n'
        '[scorers.de]\ntype = "onnx"\nmodel = 3\n\n'
        '[scorers.vader]\ntype = "onnx"\nlanguages = ["en"]\n',
        encoding="utf-8")
    result = invoke("--config", str(config), "status")
    assert result.exit_code == 2
    for expected in ("brands[0] (Acme).scorer: 'nope' is not a scorer",
                     "scorers.fr.type: 'no-such-type' is not an installed scorer type",
                     "scorers.de.languages: is required",
                     "scorers.de.model: must be a str",
                     "scorers.vader: 'vader' is a built-in scorer's name"):
        assert expected in result.output, result.output


def test_a_model_file_that_cannot_be_loaded_is_a_config_error_naming_its_table(tmp_path):
    config = write_config(tmp_path)
    (tmp_path / "model" / "model.onnx").write_bytes(b"not a model")
    result = import_posts(tmp_path, config)
    assert result.exit_code == 2
    assert "scorers.german: model:" in result.output
    assert not (tmp_path / "acme.duckdb").exists() or stored_scores(tmp_path) == {}


def test_vader_and_onnx_register_in_the_scorers_entry_point_group():
    assert {"vader", "onnx"} <= set(installed())


def test_a_chain_without_vader_still_keeps_vader_scores_beside():
    class Everything:
        name, version, languages = "all", "1", None

        def score(self, texts):
            return VaderScorer().score(["great"] * len(texts))

    vader = VaderScorer()
    sets = ScoringChain((Everything(),), vader).score(["awful", "schlecht"], ["en", "de"])
    by_name = {s.scorer: s for s in sets}
    assert by_name["all"].active == (True, True)
    assert by_name["vader"].active == (False, False)
    assert by_name["vader"].scores[0].label == "negative" and by_name["vader"].scores[1] is None
