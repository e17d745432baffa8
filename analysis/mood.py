"""Mood metrics from label counts: Net Sentiment Score and its standard error.

docs/roi-method.md defines them. With T scored mentions, P positive and N negative,
p+ = P/T and p- = N/T:

    NSS = 100 (P - N) / T
    SE  = 100 sqrt((p+ + p- - (p+ - p-)^2) / T)

SE is the standard error of the mean of a per-mention variable that is +1, 0 or -1,
so two windows compare with SE_diff = sqrt(SE_a^2 + SE_b^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mood:
    """Mood of one window. ``nss`` and ``nss_se`` are None when nothing was scored.

    ``mentions`` is volume: it includes ``duplicates`` (near-duplicate copies) and
    ``unscored`` mentions (languages VADER cannot score), which the labels leave out.
    """

    mentions: int
    positive: int
    neutral: int
    negative: int
    nss: float | None
    nss_se: float | None
    duplicates: int = 0
    unscored: int = 0

    @property
    def scored(self) -> int:
        return self.positive + self.neutral + self.negative

    @property
    def opinion_rate(self) -> float | None:
        return (self.positive + self.negative) / self.scored if self.scored else None


def net_sentiment(positive: int, negative: int, total: int) -> float | None:
    if total <= 0:
        return None
    return 100.0 * (positive - negative) / total


def net_sentiment_se(positive: int, negative: int, total: int) -> float | None:
    if total <= 0:
        return None
    p_pos, p_neg = positive / total, negative / total
    variance = p_pos + p_neg - (p_pos - p_neg) ** 2
    # Rounding can push a zero variance a hair below 0.
    return 100.0 * math.sqrt(max(variance, 0.0) / total)


def mood_from_counts(
    mentions: int, positive: int, neutral: int, negative: int, duplicates: int = 0, unscored: int = 0
) -> Mood:
    scored = positive + neutral + negative
    return Mood(
        mentions=mentions,
        positive=positive,
        neutral=neutral,
        negative=negative,
        nss=net_sentiment(positive, negative, scored),
        nss_se=net_sentiment_se(positive, negative, scored),
        duplicates=duplicates,
        unscored=unscored,
    )


def difference_se(a: float | None, b: float | None) -> float | None:
    """Standard error of the difference of two independent estimates."""
    if a is None or b is None:
        return None
    return math.sqrt(a * a + b * b)
