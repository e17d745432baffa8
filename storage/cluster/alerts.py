"""Alert deliveries shared by the cluster's daemons (issue 17; docs/cluster.md).

Every daemon's file detects the same alerts (its file caught up before the alerting
stage), each with its own "evaluated through" mark, so the alerting stage's holder of
one hour and another daemon holding it the next would both find an alert undelivered.
The alert's key, (brand, metric, direction, hour), and the channel are recorded here
once delivered, under the alerting lease's fencing token (a holder that lost the stage
records nothing); a holder delivers only what is not recorded. A holder killed between
its delivery and the record delivers that alert again (at least once, as in one file).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from storage.cluster.leases import Lease, Leases

AlertKey = tuple[str, str, str, datetime]  # brand, metric, direction, hour


class SharedDeliveries:
    """The cluster's record of delivered alerts, written under the alerting ``lease``."""

    def __init__(self, leases: Leases, lease: Lease) -> None:
        self.leases = leases
        self.lease = lease

    def delivered(self, channel: str, keys: Iterable[AlertKey]) -> set[AlertKey]:
        """Which of ``keys`` were delivered on ``channel`` by any daemon."""
        wanted = list(keys)
        if not wanted:
            return set()
        with self.leases.fenced(self.lease, "reading the cluster's alert deliveries") as cur:
            cur.execute("SELECT brand, metric, direction, hour FROM cluster_alert_deliveries "
                        "WHERE channel = %s AND (brand, metric, direction, hour) IN "
                        "(SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[]))",
                        (channel, *(list(column) for column in zip(*wanted))))
            return {tuple(row) for row in cur.fetchall()}  # type: ignore[misc]

    def record(self, channel: str, key: AlertKey) -> bool:
        """Record ``key`` delivered on ``channel``, fenced by the lease (LeaseLostError when
        the stage was lost); False when it was recorded already."""
        with self.leases.fenced(self.lease, "recording an alert delivery") as cur:
            cur.execute("INSERT INTO cluster_alert_deliveries (brand, metric, direction, hour, channel, token) "
                        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", (*key, channel, self.lease.token))
            return cur.rowcount == 1
