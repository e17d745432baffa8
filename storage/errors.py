"""Exceptions raised by ``storage``.

    StorageError                 anything the database could not do (exit 1)
    ├── DatabaseLockedError      another process holds the database file
    ├── ClusterError             cluster mode's PostgreSQL could not do it (storage.cluster)
    ├── LeaseLostError           a commit under a job lease no longer held (storage.cluster)
    └── DatabaseFileError        the database path names no database this command can
                                 use: missing, a directory, not a DuckDB file, another
                                 application's, or at a schema version it cannot use
                                 (a usage error: exit 2)
"""

from __future__ import annotations


class StorageError(Exception):
    """The database could not do what was asked; the message says what and where."""

    exit_code = 1


class DatabaseLockedError(StorageError):
    """Another process (usually the daemon) has the database file open."""


class DatabaseFileError(StorageError):
    """The database path is wrong for this command (--db, LISTENER_DB, database.path);
    nothing was written to it."""

    exit_code = 2


class ClusterError(StorageError):
    """Cluster mode's PostgreSQL could not do what was asked (unreachable, refused the
    login, failed a statement); the message says what was being done."""


class ClusterUnavailableError(ClusterError):
    """Cluster mode was asked for (database.url, database.lake, listener migrate or
    backfill) on an install without the ``[cluster]`` extra (psycopg): a setup problem."""

    exit_code = 2


class LeaseLostError(StorageError):
    """A commit under a job lease that is no longer this holder's (expired, or retaken with
    a newer fencing token): the batch was not stored and the run must end."""
