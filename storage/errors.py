"""Exceptions raised by ``storage``.

    StorageError                 anything the database could not do (exit 1)
    ├── DatabaseLockedError      another process holds the database file
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
