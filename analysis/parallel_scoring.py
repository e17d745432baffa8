"""Worker processes for imports and backfills (``--workers N``; listener.ingest).

VADER is pure Python and holds the GIL, so threads do not help: each worker process
loads its own lexicon once (``worker_vader``) and prepares whole chunks of a file
(inputs.prepare) while the parent stores the ones before.

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
from concurrent.futures import ProcessPoolExecutor

from analysis.sentiment import VaderScorer

# A worker's exit status when it stops because its parent is gone.
PARENT_GONE = 3

_worker_scorer: VaderScorer | None = None


def _init_worker() -> None:
    _exit_with_parent()
    worker_vader()  # loaded already where the fork server preloaded it


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
    DuckDB connection and its threads. The fork server (where this process has not
    started it yet) preloads what the workers need (analysis.worker_preload) besides the
    main module (the default: without it, each worker would import it again, the CLI
    with all its imports, to set itself up as a child of that main module)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", "analysis.worker_preload"])
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)
