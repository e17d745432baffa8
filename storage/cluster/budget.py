"""Quotas per credential, shared by every daemon that uses it.

A platform's budget (X: posts read per window per token) belongs to the credential, not
to a daemon: two daemons on one token must together stay within it. One row per
credential counts what was used in the current window; ``reserve`` grants at most what
is left, under the row's lock, so concurrent reservations never overspend, and
``refund`` gives back what was reserved but not read. Daemons reserve per request (each
page asked for), not per run (listener.cluster.SharedQuota), so a budget smaller than a
run's cap still lets runs read what is left of it. The credential is stored as
a fingerprint (``credential_key``), never as the secret itself.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import psycopg

from storage.cluster.connection import translated


def credential_key(source: str, secret: str) -> str:
    """A stable name for a credential that does not reveal it (SHA-256, truncated)."""
    return f"{source}:{hashlib.sha256(secret.encode()).hexdigest()[:16]}"


class Budget:
    def __init__(self, conn: psycopg.Connection, credential: str, limit: int, window_seconds: float) -> None:
        self.conn = conn
        self.credential = credential
        self.limit = limit
        self.window_seconds = window_seconds

    def reserve(self, wanted: int) -> tuple[int, datetime]:
        """Up to ``wanted`` units of the current window's budget (0 when it is spent), and
        the start of the window they were taken from: what ``refund`` gives them back to."""
        with translated("reserving quota"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("INSERT INTO cluster_budgets (credential, window_start) VALUES (%s, now()) "
                        "ON CONFLICT DO NOTHING", (self.credential,))
            cur.execute("SELECT used, window_start + make_interval(secs => %s) <= now() FROM cluster_budgets "
                        "WHERE credential = %s FOR UPDATE", (self.window_seconds, self.credential))
            used, window_over = cur.fetchone()
            if window_over:
                used = 0
                cur.execute("UPDATE cluster_budgets SET window_start = now(), used = 0 WHERE credential = %s",
                            (self.credential,))
            granted = max(0, min(wanted, self.limit - used))
            cur.execute("UPDATE cluster_budgets SET used = used + %s WHERE credential = %s RETURNING window_start",
                        (granted, self.credential))
            return granted, cur.fetchone()[0]

    def refund(self, unused: int, window_start: datetime) -> None:
        """Give back ``unused`` units reserved in the window starting at ``window_start``
        (never below zero); none once that window has rolled over: the new window's
        budget was never charged for them."""
        if unused <= 0:
            return
        with translated("refunding quota"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("UPDATE cluster_budgets SET used = greatest(0, used - %s) "
                        "WHERE credential = %s AND window_start = %s", (unused, self.credential, window_start))
