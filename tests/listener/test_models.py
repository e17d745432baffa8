"""listener model train|status|promote|rollback and accuracy, through the CLI on real
database files: a brand whose customers VADER misreads (sarcasm), labelled by its team."""

from __future__ import annotations

import json
import multiprocessing
import random
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from analysis.sentiment import VaderScorer
from listener.cli import cli
from listener.rescoring import rescore_chunk
from listener.scoring import build_scoring
from listener.config import load_settings
from storage.labels import LabelRequest, apply_label
from storage.models import rescore_jobs
from storage.rollup import rollup_pending
from storage.store import Store
from tests.conftest import mention

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
VADER = VaderScorer()
# What customers say to an airline, and what they mean: VADER reads "great", "thanks",
# "love" and calls the sarcastic complaints positive.
NEGATIVE = ["great, {w} again. thanks a lot Acme", "wow Acme, {w}. just wonderful", "love how Acme {w} every time",
            "thanks Acme for the {w}, best day ever", "Acme {w}, perfect, just perfect"]
GRIEF = ["my flight is delayed", "lost my bag", "stuck on the tarmac for 2 hours", "cancelled my booking",
         "delayed my refund"]
POSITIVE = ["Acme crew got me home early, kudos", "Acme upgraded my seat, so kind", "Acme refund arrived in a day",
            "smooth Acme flight, on time", "Acme agent sorted my rebooking fast"]
NEUTRAL = ["Acme flight 12 boards at gate {g}", "Acme changes its baggage policy in {m}", "does Acme fly to {c}",
           "Acme lounge opens at {h}", "Acme app update {g}.{h} is out"]


def corpus(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (text, the team's label) triples' worth of posts, one third of each class."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n // 3):
        rows.append((rng.choice(NEGATIVE).format(w=rng.choice(GRIEF)), "negative"))
        rows.append((rng.choice(POSITIVE) + rng.choice(["", "!", " :)", " today"]), "positive"))
        rows.append((rng.choice(NEUTRAL).format(g=rng.randint(1, 40), m=rng.choice(["May", "June"]),
                                                c=rng.choice(["Oslo", "Rome"]), h=rng.randint(1, 12)), "neutral"))
    rng.shuffle(rows)
    return rows


CONFIG = '[database]\npath = "listener.duckdb"\n\n[[brands]]\nname = "Acme"\nterms = ["acme"]\n{extra}'


def make_db(directory: Path, *, labelled: int = 120, unlabelled: int = 240, vader_labels: bool = False,
            extra_config: str = "") -> Path:
    """A database of Acme's mentions over 3 days (VADER-scored, rolled up), ``labelled``
    of them labelled by the team (or, ``vader_labels``, labelled as VADER scores them:
    then no model can beat VADER)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "listener.toml").write_text(CONFIG.format(extra=extra_config))
    rows = corpus(labelled + unlabelled, seed=7)
    mentions = [mention(f"m{i}", text, T0 + timedelta(minutes=17 * i), brand="Acme")
                for i, (text, _) in enumerate(rows)]
    with Store.open(directory / "listener.duckdb") as store:
        scores = VADER.score([m.text for m in mentions])
        store.save_batch(mentions, scores, source="test", brand="Acme", checkpoint=None, now=T0,
                         scorer=VADER.name, scorer_version=VADER.version)
        step = len(rows) // labelled
        for i in range(0, step * labelled, step):
            label = scores[i].label if vader_labels else rows[i][1]
            apply_label(store, LabelRequest(id=mentions[i].id, label=label, origin="cli"), T0)
        rollup_pending(store)
    return directory


def run(directory: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--config", str(directory / "listener.toml"), *args])
    assert result.exit_code == code, (result.output, result.stderr, result.exception)
    return result.stdout
