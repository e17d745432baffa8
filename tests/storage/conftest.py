"""Hand-made threads rolled up by the real hourly stage on a DuckDB file, for the readers
of a conversation's figures (test_live.py, test_alerts.py)."""

import dataclasses
from datetime import timedelta

import pytest

from analysis.sentiment import VaderScorer
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
