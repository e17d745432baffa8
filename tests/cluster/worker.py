"""A lease-taking worker process for tests/cluster: ``python -m tests.cluster.worker MODE URL ...``.

It connects, prints ``ready``, waits for a line on stdin (so every worker of a test
starts at once), then:

* ``jobs URL BATCHES``: takes due jobs one at a time until none is due, commits BATCHES
  batches of 5 mentions under each lease, releases it for an hour; prints ``took
  SOURCE BRAND TOKEN`` per lease.
* ``late URL SOURCE BRAND``: takes that job with a 1 s lease, prints ``leased``, waits
  for a second line (the test retakes the job meanwhile), then tries 4 commits and
  prints ``refused N stored M``.
* ``budget URL CREDENTIAL LIMIT EACH``: reserves EACH at a time from the credential's
  budget until it is spent; prints ``granted TOTAL``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from connectors.base import Mention
from storage.cluster import Budget, LeaseLostError, Leases, connect


def mentions(source: str, brand: str, batch: int) -> list[Mention]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [Mention(source=source, id=f"{brand}-{batch}-{i}", brand=brand, text=f"{brand} post {batch} {i}",
                    created_at=start + timedelta(minutes=batch * 5 + i)) for i in range(5)]


def main(mode: str, url: str, *args: str) -> None:
    conn = connect(url)
    print("ready", flush=True)
    sys.stdin.readline()
    if mode == "jobs":
        leases = Leases(conn, f"worker-{args[1] if len(args) > 1 else ''}")
        while taken := leases.take(ttl_seconds=600):
            lease = taken[0]
            print("took", lease.source, lease.brand, lease.token, flush=True)
            for batch in range(int(args[0])):
                leases.commit(lease, mentions(lease.source, lease.brand, batch), {"batch": batch})
            assert leases.release(lease, 3600)
    elif mode == "late":
        leases = Leases(conn, "paused")
        (lease,) = leases.take(ttl_seconds=1, job=(args[0], args[1]))
        print("leased", lease.token, flush=True)
        sys.stdin.readline()  # "paused" until the test says the job was retaken
        refused = stored = 0
        for batch in range(4):
            try:
                stored += leases.commit(lease, mentions(lease.source, lease.brand, 100 + batch), {"batch": 100 + batch})
            except LeaseLostError:
                refused += 1
        print("refused", refused, "stored", stored, flush=True)
    elif mode == "budget":
        budget = Budget(conn, args[0], int(args[1]), 3600)
        total = 0
        while granted := budget.reserve(int(args[2]))[0]:
            total += granted
        print("granted", total, flush=True)
    conn.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
