"""Sentiment scoring of mention texts with VADER.

Every score carries the scorer's name and version, stored beside it, so a re-score
with another lexicon or release is traceable. The scoring itself is
analysis.vader_fast.FastVader: vaderSentiment's own lexicon and rules, re-implemented
to return exactly what vaderSentiment returns, faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from analysis.vader_fast import FastVader

# VADER's own recommended thresholds (Hutto & Gilbert 2014), used across the product.
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05

LABELS = ("positive", "neutral", "negative")


@dataclass(frozen=True, slots=True)
class Score:
    compound: float
    pos: float
    neu: float
    neg: float
    label: str


class Scorer(Protocol):
    """What scores texts: VADER, a brand's learned model (analysis.learned), a configured
    scorer (analysis.scorers). ``languages``: the ISO 639-1 codes it covers, None for
    any; a text whose language is unknown counts as English (analysis.language)."""

    name: str
    version: str
    languages: frozenset[str] | None

    def score(self, texts: Sequence[str]) -> list[Score]: ...


def covers(languages: frozenset[str] | None, lang: str | None) -> bool:
    """Whether a scorer covering ``languages`` may score a text in ``lang``: the one rule.
    Unknown languages count as English: the brand terms that matched are English words
    more often than not (analysis.language)."""
    if languages is None:
        return True
    return (lang.split("-")[0].casefold() if lang else "en") in languages


def label_for(compound: float) -> str:
    """positive if compound >= 0.05, negative if <= -0.05, otherwise neutral."""
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def _vader_version() -> str:
    try:
        return version("vaderSentiment")
    except PackageNotFoundError:  # pragma: no cover - vendored copies have no metadata
        return "unknown"


def vader_analyzer(vader_version: str) -> SentimentIntensityAnalyzer:
    """FastVader when the installed vaderSentiment is the release it reproduces; any
    other release gets its own (slower) analyser, so a score is always that release's."""
    if vader_version == FastVader.reproduces:
        return FastVader()
    return SentimentIntensityAnalyzer()


class VaderScorer:
    """Scores English texts as vaderSentiment's SentimentIntensityAnalyzer does.

    ``version`` stays the installed vaderSentiment's: FastVader returns that release's
    scores bit for bit (tests/analysis/test_vader_fast.py), so the scores stored before
    and after it are the same scores, under the same version; another release is
    scored by its own analyser (vader_analyzer) and shows as its version.
    """

    name = "vader"
    # VADER's lexicon is English: a German complaint scores as neutral.
    languages: frozenset[str] | None = frozenset({"en"})

    def __init__(self) -> None:
        self.version = _vader_version()
        # Loading the lexicon takes ~0.1 s: do it once per scorer, not per text.
        self._analyzer = vader_analyzer(self.version)

    def score(self, texts: Sequence[str]) -> list[Score]:
        polarity = self._analyzer.polarity_scores
        scores = []
        for text in texts:
            raw = polarity(text)
            compound = raw["compound"]
            scores.append(Score(compound, raw["pos"], raw["neu"], raw["neg"], label_for(compound)))
        return scores


# VADER registers in the ``listener.scorers`` entry-point group like any scorer
# (analysis.scorers); it takes no settings.
SETTINGS: dict[str, tuple[type, object, str]] = {}


def create(settings: object = None, base_dir: object = None) -> VaderScorer:
    return VaderScorer()
