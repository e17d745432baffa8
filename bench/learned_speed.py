"""How fast the learned scorer (analysis.learned) scores, against VADER, in the same run.

    python bench/learned_speed.py            # table
    python bench/learned_speed.py --json     # one JSON object
    python bench/learned_speed.py --quick    # 2 rounds instead of 3

Texts: every tweet of ``../shared/data/labelled-tweets-dev.csv`` (19,644). The model is
trained once on 1,000 of them (seed 0; its training time is printed, not judged). Each
round times, on all the texts and in this order, a bare vaderSentiment
``polarity_scores`` loop, VaderScorer.score (FastVader), LearnedScorer.score_with_vader
(VADER's scores given: what the pipeline does, since it always computes VADER) and
LearnedScorer.score (VADER computed inside), each with a fresh object so the n-gram memo
starts empty, and, for comparison, score_with_vader by a scorer that has scored these
texts once already (memo warm: an upper bound, as a long-running daemon approaches on a
steady stream); the best round of each counts (CPU time). Ratios are texts/s
against bare VADER and against VaderScorer. Target: score_with_vader >= 0.5x
VaderScorer's texts/s (a backfill then stays bound by VADER, not by the model).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.learned import load_model, train_model  # noqa: E402
from analysis.sentiment import VaderScorer  # noqa: E402
from bench.learned_accuracy import load  # noqa: E402
from bench.vader_speed import DEV_CSV  # noqa: E402

TARGET = 0.5
TRAIN = 1000


def _cpu(fn) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


def run(rounds: int = 3, log=lambda *a: None) -> list[dict]:
    """The figures, in bench/run.py's shape (reference: VaderScorer's texts/s); [] if the
    dev file is absent."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    if not DEV_CSV.exists():
        log(f"note: {DEV_CSV} is absent: no learned-scorer speed figures")
        return []
    labelled = [pair for topic in load().values() for pair in topic]
    texts = [text for text, _ in labelled]
    sample = random.Random(0).sample(labelled, TRAIN)
    log(f"learned scorer: training on {TRAIN:,} labelled tweets ...")
    started = time.perf_counter()
    model = train_model([t for t, _ in sample], [label for _, label in sample], seed=0)
    train_seconds = time.perf_counter() - started
    vader = VaderScorer().score(texts)
    warm = load_model(model.payload)
    warm.score_with_vader(texts, vader)

    sides = {
        "bare vaderSentiment": lambda: [a.polarity_scores(t) for a in [SentimentIntensityAnalyzer()] for t in texts],
        "VaderScorer": lambda: VaderScorer().score(texts),
        "learned, VADER given": lambda: load_model(model.payload).score_with_vader(texts, vader),
        "learned, score()": lambda: load_model(model.payload).score(texts),
        "learned, warm memo": lambda: warm.score_with_vader(texts, vader),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(rounds):  # interleaved so machine noise hits every side alike
        log(f"learned scorer: round {i + 1}/{rounds}, {len(texts):,} texts per side ...")
        for name, fn in sides.items():
            times[name].append(_cpu(fn))
    rates = {name: len(texts) / min(t) for name, t in times.items()}
    figures = []
    for name, rate in rates.items():
        versus = rate / rates["VaderScorer"]
        judged = name == "learned, VADER given"
        figures.append({"figure": name, "unit": "texts/s", "value": round(rate),
                        "reference": round(rates["VaderScorer"]), "ratio": round(versus, 3),
                        "vs_bare_vader": round(rate / rates["bare vaderSentiment"], 3),
                        "target": f">= {TARGET:g} (vs VaderScorer)" if judged else "(for comparison)",
                        "ok": versus >= TARGET if judged else True, "n": len(texts),
                        "train_labels": TRAIN, "train_seconds": round(train_seconds, 1), "model": model.version})
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args()
    if not DEV_CSV.exists():
        print(f"{DEV_CSV} is absent: nothing to measure", file=sys.stderr)
        return 2
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    figures = run(2 if args.quick else 3, log)
    if args.json:
        print(json.dumps({"figures": figures}, indent=2))
    else:
        print(f"{figures[0]['n']:,} texts; model trained on {figures[0]['train_labels']:,} labels in "
              f"{figures[0]['train_seconds']} s")
        print(f"{'scorer':<24}{'texts/s':>10}{'vs bare VADER':>15}{'vs VaderScorer':>16}  target")
        for f in figures:
            print(f"{f['figure']:<24}{f['value']:>10,}{f['vs_bare_vader']:>15.2f}{f['ratio']:>16.2f}  "
                  f"{f['target']}{'' if f['target'].startswith('(') else (': yes' if f['ok'] else ': NO')}")
    return 0 if all(f["ok"] for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
