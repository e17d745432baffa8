"""Exact VADER, how fast: bare vaderSentiment ``polarity_scores`` against
``analysis.vader_fast.FastVader`` over the same texts, in the same run.

    python bench/vader_speed.py            # table
    python bench/vader_speed.py --json     # one JSON object
    python bench/vader_speed.py --quick    # fewer demo texts and rounds

Texts: every tweet of ``../shared/data/labelled-tweets-dev.csv`` (beside the repository;
left out with a note if absent) and demo-stream posts (demo.texts). Each round
times the reference and then a *fresh* FastVader (its token memo starts empty, so what it
learns within the corpus is part of the time), interleaved so machine noise hits both
alike; the best round of each counts. Before timing, every text is scored by both and
compared as ``float.hex`` (analysis.vader_fast.mismatches); target: ratio >= 3 with 0
mismatches.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.vader_fast import FastVader, mismatches  # noqa: E402
from demo.texts import TONES, compose  # noqa: E402

DEV_CSV = ROOT.parent / "shared" / "data" / "labelled-tweets-dev.csv"
TARGET = 3.0


def dev_texts(path: Path = DEV_CSV) -> list[str]:
    """The dev set's tweet texts, in file order; [] if the file is absent."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def demo_texts(count: int, seed: int = 16) -> list[str]:
    """``count`` demo-stream posts and replies in all three tones, for three brands (one
    whose name is a lexicon word), from a seeded generator: the same texts every run."""
    rng = random.Random(seed)
    brands = ("Brewly", "Kettle & Co", "Happy Beans")
    return [compose(TONES[i % 3], brands[i % len(brands)], rng, reply=i % 4 == 0) for i in range(count)]


def _time(fn, texts: list[str]) -> float:
    started = time.process_time()
    for text in texts:
        fn(text)
    return time.process_time() - started


def measure(name: str, texts: list[str], rounds: int) -> dict:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    reference = SentimentIntensityAnalyzer()
    wrong = mismatches(FastVader(), texts, reference)
    ref_times, fast_times = [], []
    for _ in range(rounds):
        ref_times.append(_time(reference.polarity_scores, texts))
        fast_times.append(_time(FastVader().polarity_scores, texts))
    return _figure(name, len(texts), min(ref_times), min(fast_times), len(wrong), wrong[:3])


def _figure(name: str, n: int, ref_seconds: float, fast_seconds: float, wrong: int, examples: list[str]) -> dict:
    ref_rate, fast_rate = n / ref_seconds, n / fast_seconds
    ratio = fast_rate / ref_rate
    return {"figure": f"exact VADER, {name}", "unit": "texts/s", "value": round(fast_rate),
            "reference": round(ref_rate), "ratio": round(ratio, 3), "target": f">= {TARGET:g}, 0 mismatches",
            "ok": ratio >= TARGET and not wrong, "n": n, "mismatches": wrong, "mismatch_examples": examples,
            "seconds": {"reference": ref_seconds, "fast": fast_seconds}}


def run(demo_count: int = 5_000, rounds: int = 3, log=lambda *a: None) -> list[dict]:
    """The figures: dev tweets, demo texts, and both together (the headline: the sum of
    their best times)."""
    corpora = [("dev tweets", dev_texts()), ("demo texts", demo_texts(demo_count))]
    if not corpora[0][1]:
        log(f"note: {DEV_CSV} is absent: demo texts only")
        corpora = corpora[1:]
    figures = []
    for name, texts in corpora:
        log(f"exact VADER on {len(texts):,} {name} ...")
        figures.append(measure(name, texts, rounds))
    if len(figures) > 1:
        figures.append(_figure("all texts", sum(f["n"] for f in figures),
                               sum(f["seconds"]["reference"] for f in figures),
                               sum(f["seconds"]["fast"] for f in figures),
                               sum(f["mismatches"] for f in figures),
                               [text for f in figures for text in f["mismatch_examples"]][:3]))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="1,000 demo texts, 2 rounds")
    parser.add_argument("--demo", type=int, default=None, help="demo texts (default 5,000)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per side (default 3)")
    args = parser.parse_args()
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    figures = run(args.demo or (1_000 if args.quick else 5_000), args.rounds or (2 if args.quick else 3), log)
    if args.json:
        print(json.dumps({"figures": figures}, indent=2))
    else:
        print(f"{'corpus':<26}{'texts':>8}{'reference/s':>13}{'FastVader/s':>13}{'ratio':>8}{'mismatches':>12}  ok")
        for f in figures:
            print(f"{f['figure']:<26}{f['n']:>8,}{f['reference']:>13,}{f['value']:>13,}{f['ratio']:>8.2f}"
                  f"{f['mismatches']:>12}  {'yes' if f['ok'] else 'NO'}")
    return 0 if all(f["ok"] for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
