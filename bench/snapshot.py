"""What publishing a snapshot costs (storage.snapshot), at 1M and 10M mentions.

    python bench/snapshot.py                  # 1M mentions
    python bench/snapshot.py --big            # and 10M (built once by bench/bigdb.py, a few minutes)
    python bench/snapshot.py --json

For each size, a copy of the bigdb database (bench/bigdb.py, cached) is opened as the
daemon's store; each cycle saves one new hour (2,000 mentions, as bench/scale.py) and
publishes. Measured per publish (median of the cycles): the whole publish, how long the
writer's lock was held, and the bytes written (checkpoint and copy, Linux's per-task I/O
counts), on:

* the working directory's filesystem (here ext4: a full copy, taken off the writer's
  path), against the publish as it was before (checkpoint and ``cp`` both under the
  lock, then the rename), measured on the same store in the same run;
* a loop-mounted XFS image made in a temporary folder (root and mkfs.xfs or mkfs.btrfs
  needed; otherwise left out with the reason): ``cp --reflink=always``.

Target (issue 16): on a reflink filesystem under 50 ms at 10M and flat from 1M to 10M.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.sentiment import VaderScorer  # noqa: E402
from bench import bigdb  # noqa: E402
from bench.scale import NEW_HOUR_MENTIONS, figure, new_hour  # noqa: E402
from storage.snapshot import publish_snapshot  # noqa: E402
from storage.store import Store  # noqa: E402

CYCLES = 3
MB = 1_000_000


@contextmanager
def cloning_filesystem(folder: Path, size_bytes: int) -> Iterator[tuple[Path | None, str]]:
    """A loop-mounted XFS (else btrfs) filesystem of ``size_bytes`` in ``folder``:
    yields (its mount point, "") or (None, why it could not be made). Unmounted after."""
    mountpoint, image = folder / "mnt", folder / "fs.img"
    mountpoint.mkdir(parents=True, exist_ok=True)
    reasons: list[str] = []
    made = ""
    if os.geteuid() != 0:
        reasons.append("mounting a loop image needs root")
    tools = [(fs, tool) for fs, tool in (("xfs", "mkfs.xfs"), ("btrfs", "mkfs.btrfs")) if shutil.which(tool)]
    if not tools and not reasons:
        reasons.append("neither mkfs.xfs (xfsprogs) nor mkfs.btrfs (btrfs-progs) is installed")
    for fs, tool in tools if not reasons else ():
        image.unlink(missing_ok=True)
        with image.open("wb") as handle:
            handle.truncate(max(size_bytes, 512 * MB))  # sparse: costs what is written
        formatted = subprocess.run([tool, "-q", str(image)], capture_output=True, text=True)
        if formatted.returncode != 0:
            reasons.append(f"{tool}: {formatted.stderr.strip()}")
            continue
        mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], capture_output=True, text=True)
        if mounted.returncode == 0:
            made = fs
            break
        reasons.append(f"mount {fs}: {mounted.stderr.strip()}")
    if not made:
        image.unlink(missing_ok=True)
        yield None, "; ".join(reasons)
        return
    try:
        yield mountpoint, ""
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)
        image.unlink(missing_ok=True)


def filesystem(path: Path) -> str:
    out = subprocess.run(["df", "--output=fstype", str(path)], capture_output=True, text=True)
    return out.stdout.split()[-1] if out.returncode == 0 and out.stdout.split() else "?"


def _save_hour(store: Store, scorer: VaderScorer, cycle: int) -> None:
    hour = bigdb.END + timedelta(hours=cycle)
    for brand, mentions in new_hour(hour, bigdb.brand_names(5), NEW_HOUR_MENTIONS, f"snap{cycle}").items():
        store.save_batch(mentions, scorer.score([m.text for m in mentions]), source="x", brand=brand,
                         checkpoint=None, scorer=scorer.name, scorer_version=scorer.version, now=hour)


def _old_publish(store: Store) -> tuple[float, float]:
    """The publish as it was before issue 16: checkpoint and ``cp`` under the store's lock,
    then the rename over the previous copy. (whole seconds, seconds the writer was blocked)."""
    partial = store.path.with_name(store.path.name + ".old.partial")
    started = time.perf_counter()
    with store.native() as db:
        db.execute("CHECKPOINT")
        subprocess.run(["cp", str(store.path), str(partial)], check=True)
        blocked = time.perf_counter() - started
    os.replace(partial, store.path.with_name(store.path.name + ".old-snapshot"))
    return time.perf_counter() - started, blocked


def measure(source_db: Path, folder: Path, cycles: int, with_old: bool) -> dict:
    """Median publish figures of ``cycles`` publishes, each after one new hour was saved."""
    db = folder / "daemon.duckdb"
    shutil.copyfile(source_db, db)
    scorer = VaderScorer()
    runs, old = [], []
    with Store.open(db) as store:
        publish_snapshot(store)  # the start-up publish: checkpoints what opening wrote
        for cycle in range(cycles):
            _save_hour(store, scorer, cycle)
            runs.append(publish_snapshot(store))
            if with_old:
                _save_hour(store, scorer, cycles + cycle)
                old.append(_old_publish(store))
            if old:
                store.path.with_name(store.path.name + ".old-snapshot").unlink()
    for leftover in folder.glob("daemon*"):
        leftover.unlink()
    written = [r.bytes_written for r in runs]
    return {
        "method": runs[-1].method, "size_mb": round(runs[-1].size / MB),
        "publish_ms": round(statistics.median(r.seconds for r in runs) * 1000, 1),
        "blocked_ms": round(statistics.median(r.blocked_seconds for r in runs) * 1000, 1),
        "written_mb": None if None in written else round(statistics.median(written) / MB, 2),
        "attempts": max(r.attempts for r in runs),
        "old_ms": round(statistics.median(o[0] for o in old) * 1000, 1) if old else None,
        "old_blocked_ms": round(statistics.median(o[1] for o in old) * 1000, 1) if old else None,
    }


def _figures(n: int, where: str, m: dict) -> list[dict]:
    label = f"snapshot @{n / 1e6:g}M, {where} ({m['method']})"
    out = [figure(f"{label}: publish", "ms", m["publish_ms"],
                  "< 50 at 10M, flat" if m["method"] == "reflink" else "(off the writer's path)",
                  m["method"] != "reflink" or n < 10_000_000 or m["publish_ms"] < 50,
                  reference=m["old_ms"], ratio=round(m["old_ms"] / m["publish_ms"], 2) if m["old_ms"] else None, n=n)
           | {"size_mb": m["size_mb"], "attempts": m["attempts"]},
           figure(f"{label}: writer blocked", "ms", m["blocked_ms"], "< the old publish's (checkpoint + copy)",
                  m["old_blocked_ms"] is None or m["blocked_ms"] < m["old_blocked_ms"], reference=m["old_blocked_ms"],
                  ratio=round(m["old_blocked_ms"] / m["blocked_ms"], 1) if m["old_blocked_ms"] and m["blocked_ms"]
                  else None, n=n),
           figure(f"{label}: bytes written", "MB", m["written_mb"],
                  "what changed" if m["method"] == "reflink" else "(the whole file)", True, n=n)
           | {"size_mb": m["size_mb"]}]
    return out


def run(workdir: Path, log, sizes: tuple[int, ...] = (1_000_000,), cycles: int = CYCLES) -> list[dict]:
    figures: list[dict] = []
    reflink_ms: dict[int, float] = {}
    for n in sizes:
        source = bigdb.cached(mentions=n, log=log)
        here = workdir / f"snapshot-{n}"
        here.mkdir(exist_ok=True)
        where = filesystem(here)
        log(f"snapshot publishing at {n:,} mentions on {where} ({cycles} cycles, and the old publish) ...")
        figures += _figures(n, where, measure(source, here, cycles, with_old=True))
        with cloning_filesystem(workdir / f"clone-{n}", 3 * source.stat().st_size) as (mount, why):
            if mount is None:
                log(f"no reflink figures: {why}")
                figures.append(figure(f"snapshot @{n / 1e6:g}M, reflink", "ms", None, f"skipped: {why}", True, n=n))
                continue
            where = filesystem(mount) + " loop image"
            log(f"snapshot publishing at {n:,} mentions on {where} ...")
            m = measure(source, mount, cycles, with_old=False)
            figures += _figures(n, where, m)
            if m["method"] == "reflink":
                reflink_ms[n] = m["publish_ms"]
    if len(reflink_ms) > 1:
        small, big = min(reflink_ms), max(reflink_ms)
        ratio = reflink_ms[big] / reflink_ms[small]
        figures.append(figure(f"snapshot reflink publish {big / 1e6:g}M vs {small / 1e6:g}M", "x", round(ratio, 2),
                              "flat (<= 2)", ratio <= 2, reference=reflink_ms[small], ratio=round(ratio, 2)))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", action="store_true", help="also 10M mentions (built once, a few minutes)")
    parser.add_argument("--mentions", type=int, action="append", help="sizes instead of 1M (repeatable)")
    parser.add_argument("--cycles", type=int, default=CYCLES)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    sizes = tuple(args.mentions or [1_000_000]) + ((10_000_000,) if args.big else ())
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as tmp:
        figures = run(Path(tmp), log, sizes, args.cycles)
    if args.json:
        print(json.dumps({"figures": figures}, indent=2))
    else:
        for f in figures:
            print(f"{f['figure']:<58}{f['value'] if f['value'] is not None else '-':>10} {f['unit']:<4}"
                  f"{'' if f['reference'] is None else f['reference']:>10}  {f['target']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
