"""Scoring on several processes gives exactly VADER's scores, in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from analysis.parallel_scoring import MIN_PARALLEL, ParallelScorer
from analysis.sentiment import VaderScorer

TEXTS = [f"Acme is {word} number {i}" for i, word in enumerate(["great", "awful", "fine", "not bad", "the worst"] * 300)]


def test_parallel_scores_equal_vader_in_order():
    expected = VaderScorer().score(TEXTS)
    with ParallelScorer(2) as scorer:
        assert scorer.score(TEXTS) == expected
        assert scorer.score(TEXTS[: MIN_PARALLEL - 1]) == expected[: MIN_PARALLEL - 1]  # in-process path
        assert scorer.score([]) == []
        assert (scorer.name, scorer.version) == ("vader", VaderScorer().version)


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        ParallelScorer(0)


def test_import_with_workers_stores_what_one_process_stores(tmp_path):
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    lines = [json.dumps({"id": str(i), "created_at": (start + timedelta(seconds=i)).isoformat(), "text": text})
             for i, text in enumerate(TEXTS)]
    (tmp_path / "mentions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "listener.toml").write_text('[[brands]]\nname = "Acme"\nterms = ["acme"]\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    results = []
    for workers in ("1", "2"):
        db = tmp_path / f"w{workers}.duckdb"
        proc = subprocess.run([sys.executable, "-m", "listener.cli", "--config", str(tmp_path / "listener.toml"),
                               "--db", str(db), "import", str(tmp_path / "mentions.jsonl"), "--source", "file",
                               "--workers", workers], capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        results.append(duckdb.connect(str(db), read_only=True).execute(
            "SELECT id, compound, label FROM scores ORDER BY id").fetchall())
    assert len(results[0]) == len(TEXTS) and results[0] == results[1]
