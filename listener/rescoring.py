"""Changing which scorer a brand uses, and making its history follow.

``train_brand`` fits a model on a brand's labels (analysis.learned) and stores it;
``promote`` and ``rollback`` change the model in effect (storage.models.activate, which
records the change in ``runs`` and starts the brand's re-score job); ``rescore_chunk``
does one chunk of that job, and ``run_rescore`` all of it (the command), while the
daemon does one chunk per run of its ``rescore`` job, between pulls.

A chunk is the brand's next ~CHUNK_MENTIONS stored mentions, oldest first. Each mention's
score in effect comes from the first scorer of the brand's chain covering its language
(analysis.scorers), as for a new mention. A score is computed only where no row of that
scorer and version is stored: VADER's rows exist for every English mention and are the
learned model's features, so rolling back to VADER, or to a model whose rows are still
stored, only moves the ``active`` flags. Near-duplicates stay unscored, as when collected.
The chunk's writes are one transaction, which also marks its hours for the hourly stage
and moves the job on, so a killed re-score resumes after its last committed chunk.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from analysis.parallel_scoring import _exit_with_parent
from analysis.scorers import Scoring, ScoringChain
from analysis.sentiment import Score, VaderScorer, covers
from connectors.base import Clock
from listener.config import AUTO_SCORER, Settings
from listener.errors import ListenerError
from storage.models import (
    Change, Chunk, LabelSet, RescoreJob, StoredModel, activate, brand_models, end_job, label_set, read_chunk,
    rescore_jobs, save_model, write_chunk,
)
from storage.store import Store

log = logging.getLogger("listener")

# Mentions per chunk: one transaction each. 20k mentions' texts and scores are a few MB,
# and the learned model scores them in seconds, so the daemon's pulls wait little.
CHUNK_MENTIONS = 20_000


class RefusedError(ListenerError):
    """A promotion or rollback that the rules do not allow; the message says why (exit 2)."""

    exit_code = 2


# -- training ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainOutcome:
    """A brand's training: the model stored, or why none was (``short``: too few labels)."""

    brand: str
    labels: LabelSet
    model: StoredModel | None
    short: str | None = None


def train_brand(store: Store, brand: str, now: Clock, *, seed: int = 0,
                progress: Callable[[str], None] | None = None) -> TrainOutcome:
    """Train a model on the brand's labels and store it (status trained). The database is
    held only to read the labels and to store the model, not while training."""
    from analysis.learned import MIN_LABELS, train_model  # noqa: PLC0415 - scikit-learn loads when training

    labels = label_set(store, brand)
    counts = labels.class_counts()
    shown = ", ".join(f"{n} {label}" for label, n in counts.items())
    if len(labels.keys) < MIN_LABELS:
        more = MIN_LABELS - len(labels.keys)
        return TrainOutcome(brand, labels, None, f"{len(labels.keys)} labels ({shown}); a model needs at least "
                                                 f"{MIN_LABELS}: label {more} more")
    missing = [i for i, score in enumerate(labels.vader) if score is None]
    vader = list(labels.vader)
    if missing:  # labelled mentions VADER did not score (not English): scored here, as features
        for i, score in zip(missing, VaderScorer().score([labels.texts[i] for i in missing])):
            vader[i] = score
    try:
        trained = train_model(labels.texts, labels.labels, vader=vader, seed=seed, progress=progress)
    except ValueError as exc:  # a class too small to cross-validate
        return TrainOutcome(brand, labels, None, f"{len(labels.keys)} labels ({shown}): {exc}")
    scorer = trained.scorer()
    model = save_model(store, brand, scorer.name, trained.version, labels, trained.params,
                       trained.evaluation.to_dict(), trained.payload, now())
    return TrainOutcome(brand, labels, model)


# -- promotion and rollback ---------------------------------------------------------------------


def _check_auto(settings: Settings, brand: str) -> None:
    configured = {b.name: b for b in settings.brands}.get(brand)
    if configured is not None and configured.scorer != AUTO_SCORER:
        raise RefusedError(f"{brand}'s scorer is set to {configured.scorer!r} in the config, so no model would be "
                           f"used: remove its scorer setting (or set scorer = \"{AUTO_SCORER}\") first")


def promotable(store: Store, settings: Settings, brand: str, version: str | None = None) -> StoredModel:
    """The model ``promote`` would put in effect (``version``, else the newest trained
    one), or RefusedError saying why none may be."""
    _check_auto(settings, brand)
    models = brand_models(store, brand)
    if version is not None:
        found = [m for m in models if m.version == version]
        if not found:
            known = ", ".join(m.version for m in models) or "none"
            raise RefusedError(f"--model: {brand} has no model {version!r} (its models: {known})")
        model = found[-1]
    else:
        waiting = [m for m in models if m.status == "trained"]
        if not waiting:
            raise RefusedError(f"{brand} has no trained model waiting to be promoted: run 'listener model train "
                               f"--brand {brand}' first")
        model = waiting[-1]
    if model.status == "active":
        raise RefusedError(f"model {model.version} is already in effect for {brand}")
    if not model.qualifies:
        reason = model.evaluation.get("reason") or "it did not beat VADER by the margin"
        raise RefusedError(f"model {model.version} does not qualify for {brand}: {reason}. Label more mentions "
                           f"('listener label next --brand {brand}') and train again")
    return model


def promote(store: Store, settings: Settings, brand: str, version: str | None, now: Clock) -> Change:
    model = promotable(store, settings, brand, version)
    return activate(store, brand, model, "promote", now(), in_effect=(model.scorer, model.version))


def rollback_target(store: Store, brand: str) -> tuple[StoredModel, StoredModel | None]:
    """The model in effect and what its promotion replaced (None: VADER), or RefusedError."""
    models = {m.model_id: m for m in brand_models(store, brand)}
    active = [m for m in models.values() if m.status == "active"]
    if not active:
        raise RefusedError(f"{brand} is scored by VADER already: there is no promotion to roll back")
    return active[0], (None if active[0].replaced is None else models.get(active[0].replaced))


def rollback(store: Store, settings: Settings, brand: str, now: Clock) -> Change:
    _, target = rollback_target(store, brand)
    in_effect = ("vader", VaderScorer().version) if target is None else (target.scorer, target.version)
    return activate(store, brand, target, "rollback", now(), in_effect=in_effect)


# -- re-scoring ---------------------------------------------------------------------------------


def plan_chunk(chain: ScoringChain, chunk: Chunk) -> tuple[dict[tuple[str, str], dict[int, Score]],
                                                             list[tuple[str, str] | None]]:
    """The scores to compute for ``chunk`` under ``chain`` and the (scorer, version) in
    effect for each mention (see the module docstring)."""
    vader = chain.vader
    # VADER's rows under whatever version stored them: VADER is kept once per mention.
    stored_vader: dict[int, tuple[str, Score]] = {}
    for (scorer, version), scores in chunk.stored.items():
        if scorer == vader.name:
            stored_vader.update((i, (version, score)) for i, score in scores.items())
    new: dict[tuple[str, str], dict[int, Score]] = {}
    missing_vader = [i for i in range(len(chunk)) if not chunk.duplicate[i] and i not in stored_vader
                     and covers(vader.languages, chunk.langs[i])]
    if missing_vader:
        scores = vader.score([chunk.texts[i] for i in missing_vader])
        new[(vader.name, vader.version)] = dict(zip(missing_vader, scores))
        stored_vader.update((i, (vader.version, s)) for i, s in zip(missing_vader, scores))
    in_effect: list[tuple[str, str] | None] = []
    todo: dict[int, list[int]] = {}
    for i in range(len(chunk)):
        k = None if chunk.duplicate[i] else next(
            (k for k, s in enumerate(chain.chain) if covers(s.languages, chunk.langs[i])), None)
        if k is None:
            in_effect.append(None)
            continue
        scorer = chain.chain[k]
        if scorer.name == vader.name:
            in_effect.append((vader.name, stored_vader[i][0]))
            continue
        key = (scorer.name, scorer.version)
        in_effect.append(key)
        if i not in chunk.stored.get(key, {}):
            todo.setdefault(k, []).append(i)
    for k, positions in todo.items():
        scorer = chain.chain[k]
        texts = [chunk.texts[i] for i in positions]
        features = [stored_vader[i][1] if i in stored_vader else None for i in positions]
        reuse = getattr(scorer, "score_with_vader", None)
        got = (reuse(texts, features) if reuse is not None and all(f is not None for f in features)
               else scorer.score(texts))
        new[(scorer.name, scorer.version)] = dict(zip(positions, got))
    return new, in_effect


@dataclass(frozen=True, slots=True)
class ChunkDone:
    brand: str
    mentions: int
    scored: int
    done: int
    total: int
    finished: bool


def rescore_chunk(store: Store, chain: ScoringChain, job: RescoreJob, now: Clock,
                  size: int = CHUNK_MENTIONS) -> ChunkDone | None:
    """Re-score the job's next chunk; None when the job changed meanwhile (nothing written)."""
    chunk = read_chunk(store, job, size)
    if chunk is None:
        end_job(store, job)
        return ChunkDone(job.brand, 0, 0, job.done, job.total, True)
    new, in_effect = plan_chunk(chain, chunk)
    if not write_chunk(store, chunk, new, in_effect, now()):
        return None
    left = [j for j in rescore_jobs(store, job.brand) if j.requested_at == job.requested_at]
    done = job.done + len(chunk)
    scored = sum(len(s) for s in new.values())
    total = left[0].total if left else done
    log.info("rescore brand=%s mentions=%d scored=%d done=%d/%d", job.brand, len(chunk), scored, done, total)
    return ChunkDone(job.brand, len(chunk), scored, done, total, not left)


def run_rescore(store: Store, scoring: Scoring, brand: str, now: Clock, *, size: int = CHUNK_MENTIONS,
                progress: Callable[[ChunkDone], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> int:
    """Work through the brand's re-score job, chunk by chunk; returns the mentions done."""
    total = 0
    while not (should_stop and should_stop()):
        jobs = rescore_jobs(store, brand)
        if not jobs:
            break
        result = rescore_chunk(store, scoring.for_brand(brand), jobs[0], now, size)
        if result is None:
            continue  # restarted meanwhile: the next pass takes the new job
        total += result.mentions
        if progress is not None:
            progress(result)
        if result.finished:
            break
    return total


# -- the learned model over several processes (--workers N) --------------------------------------

_worker_model: Any = None


def _init_model_worker(payload: bytes) -> None:
    global _worker_model
    _exit_with_parent()
    from analysis.learned_model import load_model  # noqa: PLC0415 - only with a model

    _worker_model = load_model(payload)


def _score_model_slice(texts: list[str], vader: list[tuple[float, float, float, float, str]]
                       ) -> list[tuple[float, float, float, float, str]]:
    got = _worker_model.score_with_vader(texts, [Score(*v) for v in vader])
    return [(s.compound, s.pos, s.neu, s.neg, s.label) for s in got]


class ParallelModel:
    """A brand's learned model scoring over ``workers`` processes (forkserver, as
    analysis.parallel_scoring; each worker loads the model from the payload once and exits
    with the parent). Scores are the model's own, whatever the number of workers: each
    text is scored alone, only the slicing differs."""

    def __init__(self, payload: bytes, workers: int) -> None:
        from analysis.learned_model import load_model  # noqa: PLC0415 - only with a model

        self._local = load_model(payload)
        self.name, self.version, self.languages = self._local.name, self._local.version, self._local.languages
        self.workers = workers
        context = multiprocessing.get_context("forkserver")
        self._pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_model_worker,
                                         initargs=(payload,))

    def score(self, texts: Sequence[str]) -> list[Score]:
        texts = list(texts)
        return self.score_with_vader(texts, VaderScorer().score(texts))

    def score_with_vader(self, texts: Sequence[str], vader: Sequence[Score]) -> list[Score]:
        texts = list(texts)
        size = max(1, -(-len(texts) // self.workers))
        plain = [(v.compound, v.pos, v.neu, v.neg, v.label) for v in vader]
        out: list[Score] = []
        futures = [self._pool.submit(_score_model_slice, texts[i:i + size], plain[i:i + size])
                   for i in range(0, len(texts), size)]
        for future in futures:
            out.extend(Score(*s) for s in future.result())
        return out

    def close(self) -> None:
        self._pool.shutdown()


def with_workers(scoring: Scoring, payloads: dict[str, bytes], workers: int) -> tuple[Scoring, list[ParallelModel]]:
    """``scoring`` with each brand's learned model (``payloads`` by brand) scoring over
    ``workers`` processes; close the returned models when done."""
    if workers < 2:
        return scoring, []
    opened: list[ParallelModel] = []
    brands = dict(scoring.brands)
    for brand, payload in payloads.items():
        chain = scoring.for_brand(brand)
        parallel = ParallelModel(payload, workers)
        opened.append(parallel)
        brands[brand] = ScoringChain(tuple(parallel if s.name == parallel.name and s.version == parallel.version
                                           else s for s in chain.chain), chain.vader)
    return Scoring(scoring.default, brands), opened

