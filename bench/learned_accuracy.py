"""How much better than VADER a scorer trained on one brand's labels is (analysis.learned).

    python bench/learned_accuracy.py              # table: 4 topics, N = 100/300/1,000, seeds 0..2
    python bench/learned_accuracy.py --seeds 5    # seeds 0..4 (about 5 CPU-minutes)
    python bench/learned_accuracy.py --json       # one JSON object
    python bench/learned_accuracy.py --quick      # two topics, N = 100 and 300, 2 seeds

Data: ``../shared/data/labelled-tweets-dev.csv`` (label, confidence, text), beside the
repository; it has no topic column. Each tweet gets the first topic whose keywords it
contains (lowercased text, regular expressions in TOPICS, tried in this order):

* claritin: "claritin", "allerg"                                        1,696 tweets
* coachella: "coachella"                                                3,755
* driverless: "google", "driverless", "driver less", "self-driving",
  "autonomous", "automated car/vehicle", "robot car"                    4,723
* deflategate: "deflat", "inflat", "patriots", "brady", "belichick",
  "#nfl", "@nfl", "pats", "footballs", "super bowl", "seahawks", "goodell" 9,395

75 tweets match none and are left out. A topic stands for one brand's mentions: for
each topic, N of its tweets (N = 100, 300, 1,000; only N up to half the topic) are
drawn at random with seeds 0..K-1 and given to analysis.learned.train_model, as a team's labels would be; the scorer it
returns and VADER are both judged on all the topic's other tweets (3-class macro-F1,
crowd labels as truth). Per topic and N: VADER's and the learned scorer's macro-F1
(mean and range over seeds), and how often the promotion rule (cross-validated on the N
labels only) would have switched the model on; "product" is what the brand would get:
the model's figure when promoted, VADER's otherwise. A draw with fewer than 3 labels
of a class cannot be trained (train_model refuses): it counts as not promoted.

Each trial is a nested cross-validation (analysis.learned), so trials run in --workers
processes (default 2). The default is 3 seeds: about 100 s on 2 idle cores;
``--seeds 5`` is the full grid.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.learned import train_model  # noqa: E402
from analysis.sentiment import LABELS, VaderScorer, label_for  # noqa: E402
from bench.vader_speed import DEV_CSV  # noqa: E402

TOPICS = (
    ("claritin", r"claritin|allerg"),
    ("coachella", r"coachella"),
    ("driverless", r"google|driverless|driver-? ?less|self[- ]?driving|autonomous|automous|automated (car|vehicle)"
                   r"|robot car"),
    ("deflategate", r"deflat|inflat|patriots|brady|belichick|#nfl|@nfl|\bpats\b|footballs|super ?bowl|seahawks"
                    r"|goodell"),
)
SIZES = (100, 300, 1000)


def load(path: Path = DEV_CSV) -> dict[str, list[tuple[str, str]]]:
    """(text, label) per topic, in file order."""
    patterns = [(name, re.compile(pattern)) for name, pattern in TOPICS]
    topics: dict[str, list[tuple[str, str]]] = {name: [] for name, _ in TOPICS}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            lower = row["text"].lower()
            topic = next((name for name, pattern in patterns if pattern.search(lower)), None)
            if topic is not None:
                topics[topic].append((row["text"], row["label"]))
    return topics


def macro_f1(truth: list[str], predicted: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predicted, labels=list(LABELS), average="macro", zero_division=0))


def trial(texts: list[str], labels: list[str], vader: list, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    train, test = order[:n], order[n:]
    truth = [labels[i] for i in test]
    vader_f1 = macro_f1(truth, [label_for(vader[i].compound) for i in test])
    try:
        model = train_model([texts[i] for i in train], [labels[i] for i in train],
                            vader=[vader[i] for i in train], seed=seed)
    except ValueError as exc:  # a class with fewer than 3 labels in the draw
        return {"vader": vader_f1, "learned": None, "promoted": False, "note": str(exc)}
    scores = model.scorer().score_with_vader([texts[i] for i in test], [vader[i] for i in test])
    learned = macro_f1(truth, [s.label for s in scores])
    return {"vader": vader_f1, "learned": learned, "promoted": model.evaluation.qualifies,
            "cv_gain": model.evaluation.mean_gain, "cv_margin": model.evaluation.margin, "C": model.params["C"]}


def summary(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"mean": round(float(np.mean(values)), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


_DATA: dict[str, tuple[list[str], list[str], list]] = {}


def _topic(topic: str) -> tuple[list[str], list[str], list]:
    """A topic's texts, labels and VADER scores, once per process."""
    if topic not in _DATA:
        texts = [t for t, _ in load()[topic]]
        _DATA[topic] = (texts, [label for _, label in load()[topic]], VaderScorer().score(texts))
    return _DATA[topic]


def _trial(job: tuple[str, int, int]) -> dict:
    topic, n, seed = job
    return trial(*_topic(topic), n, seed)


def run(topics: list[str], sizes: tuple[int, ...], seeds: int, workers: int = 2, log=lambda *a: None) -> list[dict]:
    data = load()
    cells = [(topic, n) for topic in topics for n in sizes if n <= len(data[topic]) // 2]  # half left to test
    jobs = [(topic, n, seed) for topic, n in cells for seed in range(seeds)]
    log(f"{len(jobs)} trials ({len(cells)} topic x N cells, {seeds} seeds) in {workers} processes ...")
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_trial, jobs))
    else:
        results = [_trial(job) for job in jobs]
    rows = []
    for index, (topic, n) in enumerate(cells):
        trials = results[index * seeds:(index + 1) * seeds]
        trained = [t for t in trials if t["learned"] is not None]
        rows.append({
            "topic": topic, "n": n, "test": len(data[topic]) - n, "seeds": seeds,
            "vader": summary([t["vader"] for t in trials]),
            "learned": summary([t["learned"] for t in trained]), "trained": len(trained),
            "promoted": sum(t["promoted"] for t in trials),
            "product": summary([t["learned"] if t["promoted"] else t["vader"] for t in trials]),
            "trials": trials,
        })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="two topics, N = 100 and 300, 2 seeds")
    parser.add_argument("--seeds", type=int, default=3, help="draws per topic and N, seeds 0..K-1 (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="processes running trials (default 2)")
    args = parser.parse_args()
    if not DEV_CSV.exists():
        print(f"{DEV_CSV} is absent: nothing to measure", file=sys.stderr)
        return 2
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    started = time.perf_counter()
    if args.quick:
        rows = run(["coachella", "deflategate"], SIZES[:2], 2, args.workers, log)
    else:
        rows = run([name for name, _ in TOPICS], SIZES, args.seeds, args.workers, log)
    seconds = round(time.perf_counter() - started, 1)
    by_n = {}
    for n in sorted({r["n"] for r in rows}):
        at_n = [r for r in rows if r["n"] == n]
        trials = [t for r in at_n for t in r["trials"]]
        by_n[n] = {"vader": summary([t["vader"] for t in trials]),
                   "learned": summary([t["learned"] for t in trials if t["learned"] is not None]),
                   "product": summary([t["learned"] if t["promoted"] else t["vader"] for t in trials]),
                   "promoted_share": round(sum(t["promoted"] for t in trials) / len(trials), 3),
                   "trials": len(trials)}
    if args.json:
        print(json.dumps({"seconds": seconds, "by_n": by_n, "rows": rows}, indent=2))
        return 0

    def cell(s: dict | None) -> str:
        return "-" if s is None else f"{s['mean']:.3f} ({s['min']:.2f}-{s['max']:.2f})"

    print(f"{'topic':<12}{'N':>6}{'test':>7}  {'VADER macro-F1':<20}{'learned macro-F1':<20}{'trained':>8}"
          f"{'promoted':>9}  product")
    for r in rows:
        print(f"{r['topic']:<12}{r['n']:>6}{r['test']:>7}  {cell(r['vader']):<20}{cell(r['learned']):<20}"
              f"{r['trained']:>6}/{r['seeds']}{r['promoted']:>7}/{r['seeds']}  {cell(r['product'])}")
    print()
    for n, s in by_n.items():
        print(f"all topics, N={n:>5}: VADER {cell(s['vader'])}  learned {cell(s['learned'])}  "
              f"promoted {s['promoted_share']:.0%} of {s['trials']}  product {cell(s['product'])}")
    print(f"({seconds} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
