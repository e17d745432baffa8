"""``listener backfill``: an archive import spread over machines (docs/cluster.md).

    split (one machine)        the file's line-aligned byte ranges, registered as shards
                               with the brand queries (storage.cluster.shards)
    work (any machine, any N)  take a shard's lease -> FileSource.span_chunks -> the
                               import's Preparer (parse, match every brand, detect
                               language once, VADER; ``--workers`` processes) -> staged
                               -> complete: the shard's mentions and scores into
                               cluster_mentions / cluster_scores with the shard's
                               completion, fenced by its token; next shard

A shard is done exactly once: a worker killed mid-shard committed nothing of it, and its
shard is retaken once its lease expires; a worker paused past its lease has its commit
refused. Each lease is renewed whenever a chunk of the shard is staged, so a slow shard
is not retaken while it progresses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path

from analysis.sentiment import VaderScorer, covers
from inputs.mentions import FileSource
from listener.errors import ListenerError
from listener.ingest import Preparer
from storage.cluster.shards import Progress, ShardLease, Shards
from storage.errors import ClusterError, LeaseLostError

log = logging.getLogger("listener")

Span = tuple[int, int, int]  # start byte, end byte, first line number
_BLOCK = 1 << 20


def split(path: Path, shards: int) -> list[Span]:
    """Up to ``shards`` line-aligned byte ranges of about equal size covering the file (fewer
    when the file has fewer lines), each with the number of its first line. The file is
    read once, to number the lines: bad lines are reported by line number as on import."""
    size = path.stat().st_size
    starts = [0]
    with path.open("rb") as handle:
        for i in range(1, shards):
            target = size * i // shards
            if target <= starts[-1]:
                continue
            handle.seek(target - 1)
            handle.readline()  # to the end of the line holding byte target - 1
            if handle.tell() >= size:
                break
            if handle.tell() > starts[-1]:
                starts.append(handle.tell())
        handle.seek(0)
        first_lines, line, position = [], 1, 0
        for start in starts:
            while position < start:
                block = handle.read(min(_BLOCK, start - position))
                line += block.count(b"\n")
                position += len(block)
            first_lines.append(line)
    ends = [*starts[1:], size]
    return [(start, end, first) for start, end, first in zip(starts, ends, first_lines) if end > start]


@dataclass(frozen=True)
class ShardResult:
    backfill: int
    shard: int
    read: int
    bad_lines: int
    new: int
    seconds: float


def run_shard(shards: Shards, lease: ShardLease, preparer: Preparer, lease_seconds: float) -> ShardResult:
    """Prepare the leased shard and commit it; LeaseLostError when it was lost meanwhile."""
    started = time.monotonic()
    backfill = lease.backfill
    path = Path(backfill.path)
    size = path.stat().st_size if path.is_file() else None
    if size != backfill.size:
        found = "is missing" if size is None else f"has {size:,} bytes"
        raise ListenerError(f"backfill {backfill.id}: {path} {found} on this machine, but was registered with "
                            f"{backfill.size:,} bytes: every worker must see the same file (shared storage)")
    reader = FileSource(path, backfill.source, backfill.format, {}, clock=None)
    shards.discard_staged()
    read = 0
    chunks = reader.span_chunks(lease.start_byte, lease.end_byte, lease.first_line)
    with closing(preparer.prepared(chunks, reader.how, backfill.fetched_at,
                                   backfill.queries)) as prepared:
        for chunk in prepared:
            reader.report_bad(chunk.bad)
            read += chunk.fetched
            mentions = [m for found in chunk.relevant.values() for m in found]
            # The scores prepare_chunk computed, for the mentions VADER covers (by language).
            scores = [(m, VaderScorer.name, preparer.vader.version, chunk.vader[m.text]) for m in mentions
                      if covers(VaderScorer.languages, m.lang)]
            shards.stage(lease, mentions, scores, lease_seconds)
    new = shards.complete(lease, read, len(reader.bad_lines))
    reader.finish()
    return ShardResult(backfill.id, lease.shard, read, len(reader.bad_lines), new, time.monotonic() - started)


def work(shards: Shards, preparer: Preparer, lease_seconds: float,
         report: Callable[[ShardResult, Progress], None] | None = None) -> list[ShardResult]:
    """Take and run shards until none is free; ``report`` hears of each shard done with
    its backfill's progress. A shard lost to another worker is skipped; any other
    failure gives the shard back at once (another machine may manage it) and stops."""
    results: list[ShardResult] = []
    while (lease := shards.take(lease_seconds)) is not None:
        try:
            result = run_shard(shards, lease, preparer, lease_seconds)
        except LeaseLostError as exc:
            # Another worker retook it after its lease expired. Each chunk renews the lease:
            # a chunk that takes longer than lease_seconds loses it every time.
            log.warning("%s (if this repeats, raise database.lease_seconds: a chunk of a shard took longer)", exc)
            continue
        except BaseException:
            with suppress(ClusterError):
                shards.release(lease)
            raise
        results.append(result)
        if report is not None:
            report(result, shards.progress(result.backfill)[0])
    return results
