"""A simulator of negative-start threads with a known reply effect, to check
analysis.reply_effect: ``python -m analysis.reply_effect_sim`` prints the interval's
coverage and the false-positive rate over many seeds (docs/care.md has the figures).

The brand answers by who is easy to answer, as brands do, so a naive comparison is
confounded: strongly negative openings and openings in the day are answered more often,
and they differ in how the thread goes on (strongly negative ones stay worse, daytime
ones recover better, Reddit threads are worse). Every such difference lies in the
variables the estimator matches on, so the matched estimate is unbiased here; a
selection on anything else would bias it, which is the caveat it prints.

Each later customer post is +1, 0 or -1 with mean m (P(+1) = 0.4 + m/2, P(-1) =
0.4 - m/2): m is the thread's baseline, plus ``effect`` for posts after the brand's
reply. The true effect in NSS points is therefore 100 * ``effect``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from analysis.reply_effect import ReplyEffect, ThreadPosts, estimate

T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)


def simulate(seed: int, effect: float, threads: int = 600, brand: str = "Acme") -> list[ThreadPosts]:
    """``threads`` negative-start threads; replies move later posts' mean by ``effect``."""
    rng = np.random.default_rng(seed)
    out: list[ThreadPosts] = []
    for _ in range(threads):
        source = "reddit" if rng.random() < 0.4 else "x"
        strong = rng.random() < 0.5
        compound = rng.uniform(-0.95, -0.5) if strong else rng.uniform(-0.49, -0.05)
        opened = T0 + timedelta(seconds=float(rng.uniform(0, 28 * 86400)))
        daytime = 8 <= opened.hour < 20
        later = 1 + int(rng.poisson(3))
        big = later + 1 > 3
        base = (-0.15 - 0.3 * strong + 0.1 * daytime - 0.1 * (source == "reddit") + 0.05 * big
                + rng.uniform(-0.1, 0.1))
        answer = rng.random() < 0.2 + 0.35 * strong + 0.25 * daytime - 0.1 * (source == "reddit")
        reply = None
        if answer:
            reply = opened + timedelta(hours=float(min(48.0, rng.exponential(2.0 if daytime else 8.0))))
        times = sorted(opened + timedelta(hours=float(h)) for h in rng.uniform(0, 72, size=later))
        posts = []
        for at in times:
            mean = base + (effect if reply is not None and at > reply else 0.0)
            draw = rng.random()
            value = 1 if draw < 0.4 + mean / 2 else -1 if draw < 0.8 else 0
            posts.append((at, value))
        out.append(ThreadPosts(brand, source, opened, float(compound), reply, tuple(posts), later + 1))
    return out


@dataclass(frozen=True, slots=True)
class Calibration:
    seeds: int
    truth: float  # NSS points
    covered: int  # seeds whose interval holds the truth
    excludes_zero: int  # seeds whose interval excludes 0
    mean_estimate: float

    @property
    def coverage(self) -> float:
        return self.covered / self.seeds

    @property
    def rejection_rate(self) -> float:
        return self.excludes_zero / self.seeds


Estimator = Callable[[Sequence[ThreadPosts], int], ReplyEffect]


def matched_estimator(threads: Sequence[ThreadPosts], seed: int) -> ReplyEffect:
    return estimate(threads, seed=seed)


def calibrate(seeds: Sequence[int], effect: float, estimator: Estimator = matched_estimator,
              threads: int = 600) -> Calibration:
    """Run ``estimator`` on the simulator at each seed; count coverage and rejections."""
    truth = 100.0 * effect
    covered = rejected = 0
    estimates = []
    for seed in seeds:
        result = estimator(simulate(seed, effect, threads), seed)
        assert result.ci is not None and result.effect is not None
        low, high = result.ci
        covered += low <= truth <= high
        rejected += not (low <= 0.0 <= high)
        estimates.append(result.effect)
    return Calibration(len(seeds), truth, covered, rejected, float(np.mean(estimates)))


def main(argv: Sequence[str] = ()) -> None:
    seeds = int(argv[0]) if argv else 200
    for effect in (0.2, 0.0):
        c = calibrate(range(seeds), effect)
        half = 1.96 * math.sqrt(0.95 * 0.05 / seeds)
        print(f"effect {c.truth:+.0f} NSS points, {seeds} seeds: coverage {c.coverage:.1%} "
              f"(95 % nominal, +-{half:.1%} by chance), interval excludes 0 in {c.rejection_rate:.1%}, "
              f"mean estimate {c.mean_estimate:+.2f}")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
