"""Mood metrics from label counts: Net Sentiment Score and its standard error.

docs/roi-method.md defines them. With T scored mentions, P positive and N negative,
p+ = P/T and p- = N/T:

    NSS = 100 (P - N) / T
    SE  = 100 sqrt((p+ + p- - (p+ - p-)^2) / T)

SE is the standard error of the mean of a per-mention variable that is +1, 0 or -1,
so two windows compare with SE_diff = sqrt(SE_a^2 + SE_b^2).

The same two figures hold for any n values v_i in [-1, 1] (``mean_nss``,
``mean_nss_se``): NSS = 100 mean(v), SE = 100 sqrt((mean(v^2) - mean(v)^2) / n). With
every v_i +1, 0 or -1, mean(v) = p+ - p- and mean(v^2) = p+ + p-: the formulas above.
A conversation's NSS counts people this way (storage.rollup): each voice (an author's
mentions of the thread in one UTC hour) is one value, the mean of its +1/0/-1 labels,
and the thread's label is ``thread_label`` of its NSS and SE.
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


# A thread is positive (negative) when its NSS's 95 % interval lies above (below) 0.
THREAD_LABEL_Z = 1.96


def mean_nss(count: int, total: float) -> float | None:
    """NSS of ``count`` values in [-1, 1] summing to ``total``: 100 mean(v)."""
    if count <= 0:
        return None
    return 100.0 * total / count


def mean_nss_se(count: int, total: float, squares: float) -> float | None:
    """Standard error of ``mean_nss``: 100 sqrt((mean(v^2) - mean(v)^2) / n), from the
    values' sum ``total`` and sum of squares ``squares``. storage.rollup's conversation
    SQL copies this formula."""
    if count <= 0:
        return None
    mean = total / count
    variance = squares / count - mean * mean
    # Rounding can push a zero variance a hair below 0.
    return 100.0 * math.sqrt(max(variance, 0.0) / count)


def net_sentiment(positive: int, negative: int, total: int) -> float | None:
    return mean_nss(total, positive - negative)


def net_sentiment_se(positive: int, negative: int, total: int) -> float | None:
    # Each mention is +1, 0 or -1: the values sum to P - N, their squares to P + N.
    return mean_nss_se(total, positive - negative, positive + negative)


def thread_label(nss: float | None, nss_se: float | None, z: float = THREAD_LABEL_Z) -> str | None:
    """A conversation's label: 'positive' when NSS - z SE > 0, 'negative' when
    NSS + z SE < 0, else 'neutral' (no side clearly ahead: quiet, or divided); None
    when nothing in it is scored. A one-voice thread has SE 0: its voice's sign."""
    if nss is None or nss_se is None:
        return None
    if nss - z * nss_se > 0:
        return "positive"
    if nss + z * nss_se < 0:
        return "negative"
    return "neutral"


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
