"""``listener import``: a file read once for every brand, prepared in worker processes
while the writer stores what came before.

    FileSource.chunks()  --(inputs.prepare.prepare_chunk: parse, match every brand,
    detect language once, VADER)-->  Prepared, in file order  -->  Pipeline.store_relevant,
    brand by brand, one transaction each

With ``workers`` > 1 the preparing runs in that many processes (analysis.parallel_scoring's
pool, held by a ``Preparer``, which listener.backfill's shards share too) and at most
``workers + 1`` chunks are in flight, so memory stays bounded whatever the file's size; the writer takes the prepared chunks in file order, so what is stored is
row for row what one process would store (near-duplicates depend on order). Each brand's
run is recorded in ``runs`` as a pull of the file's source, as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from datetime import datetime

from analysis.parallel_scoring import worker_pool
from analysis.sentiment import Score, VaderScorer
from connectors.base import BrandQuery
from inputs.mentions import Chunk, FileFormat, FileSource
from inputs.prepare import Prepared, prepare_chunk
from listener.pipeline import Pipeline, PullResult, PullRun


class ReadyVader:
    """VADER for the writer's scoring chains: the texts of the chunk being stored were
    scored while it was prepared (``ready``); any other text is scored here."""

    name = VaderScorer.name
    languages = VaderScorer.languages

    def __init__(self) -> None:
        self.vader = VaderScorer()
        self.version = self.vader.version
        self.ready: dict[str, Score] = {}

    def score(self, texts: Sequence[str]) -> list[Score]:
        missing = [text for text in dict.fromkeys(texts) if text not in self.ready]
        if missing:
            self.ready.update(zip(missing, self.vader.score(missing)))
        return [self.ready[text] for text in texts]


class Preparer:
    """Chunks prepared (inputs.prepare.prepare_chunk) in file order: in this process, or
    on ``workers`` processes (one pool, started on first use and kept for every file or
    shard this preparer is given) with at most ``workers + 1`` chunks in flight."""

    def __init__(self, workers: int, vader: VaderScorer) -> None:
        self.workers = workers
        self.vader = vader
        self._pool: ProcessPoolExecutor | None = None

    def prepared(self, chunks: Iterable[Chunk], how: FileFormat, fetched_at: datetime,
                 queries: Sequence[BrandQuery]) -> Iterator[Prepared]:
        if self.workers == 1:
            for chunk in chunks:
                yield prepare_chunk(chunk, how, fetched_at, queries, self.vader)
            return
        if self._pool is None:
            self._pool = worker_pool(self.workers)
        in_flight: deque[Future[Prepared]] = deque()
        try:
            for chunk in chunks:
                in_flight.append(self._pool.submit(prepare_chunk, chunk, how, fetched_at, tuple(queries)))
                if len(in_flight) > self.workers:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
        finally:
            # Stopped early (the consumer failed): what is still queued is not wanted.
            for future in in_flight:
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Preparer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def import_file(pipeline: Pipeline, reader: FileSource, queries: Sequence[BrandQuery], vader: ReadyVader,
                workers: int = 1, progress: Callable[[int], None] | None = None) -> list[PullResult]:
    """Import ``reader``'s file for every query's brand; ``pipeline`` scores with ``vader``
    (listener.scoring.build_scoring(..., vader=vader)). ``progress`` gets the bytes read so far."""
    fetched_at = pipeline.clock()
    runs = [PullRun(pipeline, reader.name, query.brand) for query in queries]
    reader.bad_lines = []

    def store(prepared: Prepared) -> None:
        reader.report_bad(prepared.bad)
        vader.ready = prepared.vader
        for query, run in zip(queries, runs):
            relevant = prepared.relevant[query.brand]
            saved = pipeline.store_relevant(reader.name, query.brand, relevant, None, prepared.fingerprints)
            run.add(prepared.fetched, len(relevant), len(prepared.bad), saved.new)
        if progress is not None:
            progress(prepared.bytes_read)

    try:
        with Preparer(workers, vader.vader) as preparer, \
                closing(preparer.prepared(reader.chunks(), reader.how, fetched_at, queries)) as prepared:
            for chunk in prepared:
                store(chunk)
    except BaseException as exc:
        for run in runs:
            run.fail(exc)
        raise
    reader.finish()
    return [run.finish() for run in runs]
