"""Cluster mode's coordinator in PostgreSQL (issue 17, docs/cluster.md): job leases with
fencing tokens (leases), mentions committed under them, quotas per credential (budget).

psycopg is imported only here, so the single-machine install never needs it (the
``[cluster]`` extra); its errors become storage.errors at this edge (connection).
"""

from storage.errors import ClusterUnavailableError

try:
    import psycopg  # noqa: F401  (before the modules below, which need it)
except ModuleNotFoundError:
    raise ClusterUnavailableError(
        "cluster mode (database.url, database.lake, 'listener migrate', 'listener backfill') needs the "
        "[cluster] extra, which is not installed: pip install 'brandmood-listener[cluster]'") from None

from storage.cluster.budget import Budget, credential_key
from storage.cluster.connection import connect
from storage.errors import ClusterError, LeaseLostError
from storage.cluster.leases import Lease, Leases, holder_name
from storage.cluster.schema import SCHEMA_VERSION, migrate

__all__ = ["SCHEMA_VERSION", "Budget", "ClusterError", "Lease", "LeaseLostError", "Leases", "connect",
           "credential_key", "holder_name", "migrate"]
