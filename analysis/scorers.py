"""Which scorer scores which mention: the registry of scorers and each brand's chain.

Scorers register through the ``listener.scorers`` entry-point group, as connectors do
(connectors.registry): each entry point names a module providing

* ``SETTINGS``: ``{key: Setting}`` (connectors.settings, the same declaration as a
  connector's), the keys its ``[scorers.NAME]`` table accepts besides the common
  ``type`` and ``languages``;
* ``create(settings, base_dir) -> Scorer`` (analysis.sentiment.Scorer), raising
  ValueError naming the key at fault.

A brand's chain is an ordered list of scorers. A mention's score *in effect* (the one
its mood counts) comes from the first scorer of the chain that covers its language
(analysis.sentiment.covers); with none, it is unscored. VADER's score is computed for
every English mention whatever the chain, and kept beside the others (``scores`` holds
one row per mention and scorer; ``active`` marks the one in effect), so switching a
brand back to VADER, or comparing with it, never needs a re-score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from types import ModuleType

from analysis.sentiment import Score, Scorer, covers

GROUP = "listener.scorers"


@cache
def installed() -> tuple[str, ...]:
    """The names of the registered scorer types, without importing any of them."""
    return tuple(sorted({entry.name for entry in entry_points(group=GROUP)}))


@cache
def scorer_module(name: str) -> ModuleType:
    """The scorer module registered as ``name``, imported on first use."""
    for entry in entry_points(group=GROUP, name=name):
        return entry.load()
    known = ", ".join(installed()) or "none"
    raise KeyError(f"no scorer type named {name!r} is installed (installed: {known})")


@dataclass(frozen=True, slots=True)
class ScoreSet:
    """One scorer's scores of a batch, aligned with the batch's mentions: ``scores[i]``
    is None where it did not score mention i; ``active[i]`` says whether its score is
    the one in effect for mention i."""

    scorer: str
    version: str
    scores: tuple[Score | None, ...]
    active: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.scores) != len(self.active):
            raise ValueError(f"{len(self.scores)} scores but {len(self.active)} active flags")


    def spread(self, positions: Sequence[int], size: int) -> ScoreSet:
        """This set, scored for a subset, placed at ``positions`` of a batch of ``size``."""
        scores: list[Score | None] = [None] * size
        active = [False] * size
        for position, score, is_active in zip(positions, self.scores, self.active):
            scores[position], active[position] = score, is_active
        return ScoreSet(self.scorer, self.version, tuple(scores), tuple(active))


def single_set(scorer: str, version: str, scores: Sequence[Score | None]) -> ScoreSet:
    """The scores of one scorer that is in effect wherever it scored."""
    return ScoreSet(scorer, version, tuple(scores), tuple(s is not None for s in scores))


@dataclass(frozen=True)
class ScoringChain:
    """One brand's scorers, first choice first (see the module docstring). ``vader`` is
    always run on the texts it covers; it may also appear in ``chain``."""

    chain: tuple[Scorer, ...]
    vader: Scorer

    @property
    def in_effect(self) -> str:
        """What this chain puts in effect, for people: "learned 1-ab12, vader 3.3.2"."""
        return ", ".join(f"{s.name} {s.version}" for s in self.chain)

    def score(self, texts: Sequence[str], langs: Sequence[str | None]) -> list[ScoreSet]:
        """Every scorer's scores of ``texts`` (whose languages are ``langs``): VADER's on
        the texts it covers, each chain member's on the texts it is first to cover."""
        if len(texts) != len(langs):
            raise ValueError(f"{len(texts)} texts but {len(langs)} languages")
        chosen: list[int | None] = []
        for lang in langs:
            chosen.append(next((k for k, s in enumerate(self.chain) if covers(s.languages, lang)), None))
        vader_at = [i for i, lang in enumerate(langs) if covers(self.vader.languages, lang)]
        vader_scores: list[Score | None] = [None] * len(texts)
        for i, score in zip(vader_at, self.vader.score([texts[i] for i in vader_at]) if vader_at else []):
            vader_scores[i] = score
        sets: list[ScoreSet] = []
        vader_in_chain = False
        for k, scorer in enumerate(self.chain):
            if scorer.name == self.vader.name:
                vader_in_chain = True
                sets.append(ScoreSet(scorer.name, scorer.version, tuple(vader_scores),
                                     tuple(c == k and s is not None for c, s in zip(chosen, vader_scores))))
                continue
            at = [i for i, c in enumerate(chosen) if c == k]
            if not at:
                continue
            scores: list[Score | None] = [None] * len(texts)
            reuse = getattr(scorer, "score_with_vader", None)
            if reuse is not None and all(vader_scores[i] is not None for i in at):
                got = reuse([texts[i] for i in at], [vader_scores[i] for i in at])
            else:
                got = scorer.score([texts[i] for i in at])
            for i, score in zip(at, got):
                scores[i] = score
            sets.append(ScoreSet(scorer.name, scorer.version, tuple(scores), tuple(s is not None for s in scores)))
        if not vader_in_chain and vader_at:
            sets.append(ScoreSet(self.vader.name, self.vader.version, tuple(vader_scores), (False,) * len(texts)))
        return sets


@dataclass(frozen=True)
class Scoring:
    """The chains of every brand; a brand not named uses ``default``."""

    default: ScoringChain
    brands: Mapping[str, ScoringChain] = field(default_factory=dict)

    @classmethod
    def vader_only(cls, vader: Scorer) -> Scoring:
        return cls(ScoringChain((vader,), vader))

    @classmethod
    def of(cls, scoring: Scoring | Scorer) -> Scoring:
        """``scoring`` itself, or one scorer for every brand (tests, benchmarks, imports)."""
        return scoring if isinstance(scoring, Scoring) else cls.vader_only(scoring)

    def for_brand(self, brand: str) -> ScoringChain:
        return self.brands.get(brand, self.default)
