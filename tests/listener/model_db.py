"""A brand's database with labels for the model tests (tests/listener/test_models.py, and
the daemon's in tests/system/test_models_daemon.py): Acme's airline mentions, VADER-scored,
some labelled by the team, rolled up; and what its hourly rows must then hold."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from analysis.sentiment import VaderScorer
from storage.labels import LabelRequest, apply_label
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


def corpus(n: int, seed: int, plain: bool = False) -> list[tuple[str, str]]:
    """``n`` (text, the team's label) pairs, one third of each class; ``plain``: the
    complaints say what they mean, as VADER reads them."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n // 3):
        template = "Acme {w}, awful, I hate this" if plain else rng.choice(NEGATIVE)
        rows.append((template.format(w=rng.choice(GRIEF)), "negative"))
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
    rows = corpus(labelled + unlabelled, seed=7, plain=vader_labels)
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


def db_rows(directory: Path, sql: str, params: list | None = None) -> list[tuple]:
    with Store.open(directory / "listener.duckdb", read_only=True) as store, store.native() as db:
        return db.execute(sql, params or []).fetchall()


def expected_hourly(directory: Path) -> dict[datetime, tuple[int, int, int]]:
    """(positive, neutral, negative) per hour as the product must count them: the manual
    label where there is one, else the one score in effect."""
    rows = db_rows(directory, "SELECT date_trunc('hour', m.created_at), coalesce(l.label, s.label) FROM mentions m "
                              "LEFT JOIN scores s ON s.source = m.source AND s.id = m.id AND s.brand = m.brand AND s.active "
                              "LEFT JOIN labels l ON l.source = m.source AND l.id = m.id AND l.brand = m.brand")
    counts: dict[datetime, list[int]] = {}
    for hour, label in rows:
        counts.setdefault(hour, [0, 0, 0])[("positive", "neutral", "negative").index(label)] += 1
    return {hour: tuple(c) for hour, c in counts.items()}


def stored_hourly(directory: Path) -> dict[datetime, tuple[int, int, int]]:
    return {r[0]: tuple(r[1:]) for r in db_rows(
        directory, "SELECT hour, positive, neutral, negative FROM hourly_mood WHERE brand = 'Acme'")}
