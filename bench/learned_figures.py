"""The figures about the learned scorer in docs/mood.md, generated from one run of the benches.

    python bench/learned_figures.py            # run both benches, rewrite the docs/mood.md block
    python bench/learned_figures.py --seeds 3  # fewer draws (default 5)

Runs bench/learned_accuracy.py (4 topics of the dev tweets, N = 100/300/1,000 labels,
seeds 0..K-1) and bench/learned_speed.py in this process, and writes the block between
``<!-- learned-figures:start -->`` and ``<!-- learned-figures:end -->``: macro-F1 of VADER
and of the learned scorer per N, how often the promotion rule switched the model on,
and the learned scorer's texts/s against bare VADER's and VaderScorer's, measured in the
same run, with the date and machine. The figures come from ``../shared/data/`` only.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import learned_accuracy, learned_speed  # noqa: E402
from docs.readme_figures import write_block  # noqa: E402

BLOCK = "learned-figures"
PAGE = ROOT / "docs" / "mood.md"


def _cell(s: dict | None) -> str:
    return "-" if s is None else f"{s['mean']:.3f} ({s['min']:.2f}-{s['max']:.2f})"


def render(rows: list[dict], speed: list[dict], seeds: int) -> str:
    ns = sorted({r["n"] for r in rows})
    lines = [
        f"Measured by `python bench/learned_figures.py` on {date.today():%Y-%m-%d} ({os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}). Each of 4 topics "
        f"of the development tweets stands for a brand; N of its tweets are the team's labels (seeds 0-{seeds - 1}), "
        f"the rest are held out. 3-class macro-F1, mean (range) over topics and seeds:",
        "",
        "| labels (N) | VADER | learned scorer | promoted by the rule | what the brand gets |",
        "|---:|---|---|---|---|",
    ]
    for n in ns:
        trials = [t for r in rows if r["n"] == n for t in r["trials"]]
        trained = [t["learned"] for t in trials if t["learned"] is not None]
        product = [t["learned"] if t["promoted"] else t["vader"] for t in trials]
        promoted = sum(t["promoted"] for t in trials)
        lines.append(
            f"| {n:,} | {_cell(learned_accuracy.summary([t['vader'] for t in trials]))} "
            f"| {_cell(learned_accuracy.summary(trained))} | {promoted} of {len(trials)} "
            f"| {_cell(learned_accuracy.summary(product))} |")
    lines.append("")
    lines.append("\"What the brand gets\" is the model's figure where the rule promoted it, VADER's elsewhere.")
    by_name = {f["figure"]: f for f in speed}
    given = by_name.get("learned, VADER given")
    alone = by_name.get("learned, score()")
    if given and alone:
        lines += ["", (
            f"Speed, same run, {given['n']:,} tweets: the learned scorer scores {given['value']:,} texts/s when "
            f"handed VADER's scores (as the pipeline does, VADER runs anyway), {given['vs_bare_vader']:.2f}x bare "
            f"vaderSentiment and {given['ratio']:.2f}x VaderScorer; {alone['value']:,} texts/s computing VADER "
            f"itself ({alone['vs_bare_vader']:.2f}x bare vaderSentiment). Training on {given['train_labels']:,} "
            f"labels took {given['train_seconds']} s.")]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--page", type=Path, default=PAGE)
    args = parser.parse_args()
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    if not learned_accuracy.DEV_CSV.exists():
        log(f"{learned_accuracy.DEV_CSV} is absent: nothing to measure")
        return 2
    rows = learned_accuracy.run([name for name, _ in learned_accuracy.TOPICS], learned_accuracy.SIZES,
                                args.seeds, args.workers, log)
    speed = learned_speed.run(log=log)
    text = args.page.read_text(encoding="utf-8")
    args.page.write_text(write_block(text, BLOCK, render(rows, speed, args.seeds)), encoding="utf-8")
    log(f"Rewrote the {BLOCK} block of {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
