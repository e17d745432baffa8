"""Each brand's chain of scorers, from the config and the stored models.

A brand's ``scorer`` setting (listener.config) decides its chain (analysis.scorers):

* ``auto`` (the default): the brand's promoted learned model, if any, for the languages
  it covers (English); then every ``[scorers.NAME]`` table, in config order, for the
  languages it declares; then VADER (English);
* ``vader``: VADER only;
* ``NAME``: that configured scorer for its languages, then VADER.

A mention's score in effect comes from the first scorer covering its language; VADER's
is kept beside it either way. Brands with stored mentions but no [[brands]] entry (an
import's) get the ``auto`` chain without a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.scorers import Scoring, ScoringChain, scorer_module
from analysis.sentiment import Score, Scorer, VaderScorer
from listener.config import AUTO_SCORER, VADER_SCORER, ScorerSettings, Settings
from listener.errors import ConfigError
from storage.models import active_models
from storage.store import Store


@dataclass(frozen=True)
class ConfiguredScorer:
    """A configured scorer, covering the languages its table declares."""

    inner: Any
    languages: frozenset[str] | None

    @property
    def name(self) -> str:
        return str(self.inner.name)

    @property
    def version(self) -> str:
        return str(self.inner.version)

    def score(self, texts: Any) -> list[Score]:
        return self.inner.score(texts)


def create_configured(settings: ScorerSettings, origin: str = "configuration") -> ConfiguredScorer:
    """The scorer a ``[scorers.NAME]`` table describes; ConfigError naming the table when
    its module refuses the settings (a missing model file, say)."""
    try:
        scorer = scorer_module(settings.type).create(dict(settings.options), settings.base_dir)
    except (ValueError, OSError, ImportError) as exc:
        raise ConfigError([f"scorers.{settings.name}: {exc}"], origin) from exc
    return ConfiguredScorer(scorer, frozenset(settings.languages))


def build_scoring(settings: Settings, store: Store, vader: Scorer | None = None) -> Scoring:
    """Every configured brand's chain; ``vader`` (default: a new VaderScorer) may be one
    that finds scores computed ahead (listener.ingest.ReadyVader, for imports)."""
    vader = vader or VaderScorer()
    origin = str(settings.config_path) if settings.config_path else "configuration"
    configured = {s.name: create_configured(s, origin) for s in settings.scorers}
    models = active_models(store)
    default = ScoringChain((*configured.values(), vader), vader)
    chains: dict[str, ScoringChain] = {}
    for brand in settings.brands:
        if brand.scorer == VADER_SCORER:
            chain: tuple[Any, ...] = (vader,)
        elif brand.scorer == AUTO_SCORER:
            model = models.get(brand.name)
            learned = (_load(model.payload),) if model is not None else ()
            chain = (*learned, *configured.values(), vader)
        else:
            chain = (configured[brand.scorer], vader)
        chains[brand.name] = ScoringChain(chain, vader)
    # A model promoted for a brand stored but no longer configured keeps scoring it.
    for name, model in models.items():
        chains.setdefault(name, ScoringChain((_load(model.payload), *configured.values(), vader), vader))
    return Scoring(default, chains)


def _load(payload: bytes) -> Scorer:
    from analysis.learned import load_model  # noqa: PLC0415 - scikit-learn loads only when a model is in use

    return load_model(payload)
