"""How far VADER agrees with a team's own labels (``listener accuracy``).

From the confusion matrix of manual label (truth) against VADER's label, over the
labelled mentions VADER scored:

* accuracy = agreeing / compared, with a Wilson 95 % interval (sound at small n);
* Cohen's kappa: agreement beyond what the two label rates give by chance;
* per label, precision (of VADER's calls of that label, how many the team agrees with)
  and recall (of the team's labels, how many VADER found);
* NSS on the compared set by VADER and by the team, and the difference: the bias the
  team's corrections remove from mood figures on data like theirs.

Labels are a sample the team chose, not a random one, so these describe the labelled
mentions; the report says so, and says when there are too few to lean on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from analysis.mood import net_sentiment
from analysis.sentiment import LABELS

# Under this many compared mentions the interval is wider than +-14 points: say so.
MIN_FOR_CONFIDENCE = 50
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def cohen_kappa(confusion: dict[str, dict[str, int]]) -> float | None:
    n = sum(sum(row.values()) for row in confusion.values())
    if n == 0:
        return None
    observed = sum(confusion[label][label] for label in LABELS) / n
    expected = sum(
        sum(confusion[label].values()) / n * sum(confusion[truth][label] for truth in LABELS) / n for label in LABELS
    )
    if expected == 1.0:
        return None  # one label only on both sides: kappa is undefined
    return (observed - expected) / (1 - expected)


@dataclass(frozen=True, slots=True)
class AgreementReport:
    labelled: int
    compared: int
    accuracy: float | None
    accuracy_ci: tuple[float, float] | None
    kappa: float | None
    precision: dict[str, float | None]
    recall: dict[str, float | None]
    confusion: dict[str, dict[str, int]]
    nss_vader: float | None
    nss_manual: float | None
    enough: bool

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None, digits: int = 4) -> float | None:
            return None if x is None else round(x, digits)

        return {
            "labelled": self.labelled,
            "compared": self.compared,
            "accuracy": r(self.accuracy),
            "accuracy_ci95": None if self.accuracy_ci is None else [r(self.accuracy_ci[0]), r(self.accuracy_ci[1])],
            "kappa": r(self.kappa),
            "precision": {k: r(v) for k, v in self.precision.items()},
            "recall": {k: r(v) for k, v in self.recall.items()},
            "confusion": self.confusion,
            "nss_vader": r(self.nss_vader, 2),
            "nss_manual": r(self.nss_manual, 2),
            "nss_bias": None if self.nss_vader is None or self.nss_manual is None
            else round(self.nss_vader - self.nss_manual, 2),
            "enough_labels": self.enough,
        }


def agreement_report(labelled: int, confusion: dict[str, dict[str, int]]) -> AgreementReport:
    """``confusion[manual][vader]`` counts; ``labelled`` includes mentions VADER did not score."""
    compared = sum(sum(row.values()) for row in confusion.values())
    agree = sum(confusion[label][label] for label in LABELS)
    precision: dict[str, float | None] = {}
    recall: dict[str, float | None] = {}
    for label in LABELS:
        called = sum(confusion[truth][label] for truth in LABELS)
        actual = sum(confusion[label].values())
        precision[label] = confusion[label][label] / called if called else None
        recall[label] = confusion[label][label] / actual if actual else None

    def nss(positive: int, negative: int) -> float | None:
        return net_sentiment(positive, negative, compared)

    vader_pos = sum(confusion[t]["positive"] for t in LABELS)
    vader_neg = sum(confusion[t]["negative"] for t in LABELS)
    manual_pos = sum(confusion["positive"].values())
    manual_neg = sum(confusion["negative"].values())
    return AgreementReport(
        labelled=labelled,
        compared=compared,
        accuracy=agree / compared if compared else None,
        accuracy_ci=wilson_interval(agree, compared),
        kappa=cohen_kappa(confusion),
        precision=precision,
        recall=recall,
        confusion=confusion,
        nss_vader=nss(vader_pos, vader_neg),
        nss_manual=nss(manual_pos, manual_neg),
        enough=compared >= MIN_FOR_CONFIDENCE,
    )
