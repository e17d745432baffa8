"""VADER on several processes, for backfills and imports (``--workers N``).

VADER is pure Python and holds the GIL, so threads do not help; each worker process
loads its own lexicon once and scores a contiguous slice of the batch. Small batches are
scored in this process: below ``MIN_PARALLEL`` texts, shipping them costs more than it
saves. Results come back as plain tuples (cheaper to pickle than dataclasses) in the
order given.

Workers die with the parent, however it dies. A worker is a child of the fork server, not
of the parent, and waits on the pool's task pipe, whose write end it holds itself: when
the parent is killed (SIGKILL, or SIGTERM's default action, which runs no clean-up)
nothing would tell it, and the workers, the fork server (kept alive by the workers) and
the resource tracker (kept alive by all of them) lived on. So each worker watches the
parent's sentinel, a pipe only the parent holds open, and exits when it reads EOF.
(PR_SET_PDEATHSIG would not do: it fires when the fork server dies, not the parent.)
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from analysis.sentiment import Score, VaderScorer, label_for

MIN_PARALLEL = 400
# A worker's exit status when it stops because its parent is gone.
PARENT_GONE = 3

_worker_scorer: VaderScorer | None = None


def _init_worker() -> None:
    global _worker_scorer
    _exit_with_parent()
    _worker_scorer = VaderScorer()


def _exit_with_parent() -> None:
    """Exit this worker as soon as the process that started it has exited (see above)."""
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by multiprocessing
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        # os._exit: the parent is gone, so nothing may wait for this thread or flush queues.
        os._exit(PARENT_GONE)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def worker_vader() -> VaderScorer:
    """This process's VADER: a pool worker's own, loaded once (any other process gets one
    made on first use)."""
    global _worker_scorer
    if _worker_scorer is None:
        _worker_scorer = VaderScorer()
    return _worker_scorer


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` processes that load VADER once and exit with this process.
    forkserver: workers start from a clean interpreter, not a copy of a process holding a
    DuckDB connection and its threads."""
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)


def _score_slice(texts: list[str]) -> list[tuple[float, float, float, float]]:
    polarity = _worker_scorer._analyzer.polarity_scores  # noqa: SLF001 - our own scorer's analyser
    out = []
    for text in texts:
        raw = polarity(text)
        out.append((raw["compound"], raw["pos"], raw["neu"], raw["neg"]))
    return out


class ParallelScorer:
    """A Scorer (analysis.sentiment) that spreads large batches over ``workers`` processes.
    Use as a context manager, or call ``close()``; ``workers=1`` scores in-process."""

    name = VaderScorer.name
    languages = VaderScorer.languages

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self._local = VaderScorer()
        self.version = self._local.version
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1:
            self._pool = worker_pool(workers)

    def score(self, texts: Sequence[str]) -> list[Score]:
        if self._pool is None or len(texts) < MIN_PARALLEL:
            return self._local.score(texts)
        texts = list(texts)
        size = -(-len(texts) // self.workers)
        slices = [texts[i:i + size] for i in range(0, len(texts), size)]
        scores: list[Score] = []
        for part in self._pool.map(_score_slice, slices):
            scores.extend(Score(c, p, u, n, label_for(c)) for c, p, u, n in part)
        return scores

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> ParallelScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
