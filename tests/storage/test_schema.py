"""What counts for mood and NSS are defined once in SQL (storage.schema: the macros
mood_mentions, nss, nss_se) and once in Python (analysis.mood): the two must agree."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.mood import net_sentiment, net_sentiment_se
from analysis.sentiment import Score
from connectors.base import Mention
from storage.labels import LabelRequest, apply_label
from storage.store import Store

T0 = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def macros(tmp_path_factory) -> Iterator[duckdb.DuckDBPyConnection]:
    """One database for every example: the macros are what is compared, not opening it."""
    with Store.open(tmp_path_factory.mktemp("nss") / "nss.duckdb") as store, store.native() as db:
        yield db


@given(positive=st.integers(0, 10**6), negative=st.integers(0, 10**6), neutral=st.integers(0, 10**6))
def test_the_sql_nss_macros_equal_the_python_functions(macros, positive, negative, neutral):
    scored = positive + negative + neutral
    got = macros.execute("SELECT nss($p, $n, $t), nss_se($p, $n, $t)",
                         {"p": positive, "n": negative, "t": scored}).fetchone()
    want = (net_sentiment(positive, negative, scored), net_sentiment_se(positive, negative, scored))
    for sql, python in zip(got, want):
        assert (sql is None) == (python is None)
        if python is not None:
            assert math.isclose(sql, python, rel_tol=1e-12, abs_tol=1e-9)


def mention(i: int, text: str, lang: str = "en") -> Mention:
    return Mention(source="survey", id=f"m{i}", brand="Acme", created_at=T0 + timedelta(minutes=i), text=text,
                   author=f"a{i}", conversation_id=f"m{i}", lang=lang)


def test_mood_mentions_gives_each_mention_the_label_it_counts_with(tmp_path):
    mentions = [mention(0, "Acme is great"), mention(1, "Acme is awful"), mention(2, "Acme ist schlecht", "de"),
                mention(3, "Acme is great copy"), mention(4, "Acme is fine I guess")]
    scores = [Score(0.6, 0.5, 0.5, 0, "positive"), Score(-0.6, 0, 0.5, 0.5, "negative"), None,
              Score(0.6, 0.5, 0.5, 0, "positive"), Score(0.0, 0, 1, 0, "neutral")]
    with Store.open(tmp_path / "m.duckdb") as store:
        store.save_batch(mentions, scores, source="survey", brand="Acme", checkpoint=None, now=T0,
                         scorer="vader", scorer_version="3.3.2", duplicates=[False, False, False, True, False])
        apply_label(store, LabelRequest(id="m1", label="neutral", origin="cli"), T0)   # overrides the scorer
        apply_label(store, LabelRequest(id="m2", label="negative", origin="cli"), T0)  # scores the unscored
        apply_label(store, LabelRequest(id="m3", label="negative", origin="cli"), T0)  # a copy stays out
        with store.native() as db:
            rows = dict(db.execute(
                "SELECT id, (label, unscored, duplicate) FROM mood_mentions($lo, $hi)",
                {"lo": T0.replace(tzinfo=None), "hi": (T0 + timedelta(hours=1)).replace(tzinfo=None)}).fetchall())
    assert rows["m0"] == ("positive", False, False)
    assert rows["m1"] == ("neutral", False, False)
    assert rows["m2"] == ("negative", False, False)
    assert rows["m3"] == (None, False, True)
    assert rows["m4"] == ("neutral", False, False)


def test_an_unscored_mention_counts_in_volume_only(tmp_path):
    with Store.open(tmp_path / "u.duckdb") as store:
        store.save_batch([mention(0, "Acme ist schlecht", "de")], [None], source="survey", brand="Acme",
                         checkpoint=None, now=T0, scorer="vader", scorer_version="3.3.2")
        with store.native() as db:
            row = db.execute("SELECT label, unscored FROM mood_mentions($lo, $hi)",
                             {"lo": T0.replace(tzinfo=None), "hi": (T0 + timedelta(hours=1)).replace(tzinfo=None)}
                             ).fetchone()
    assert row == (None, True)
