"""Exceptions raised by ``storage``.

    StorageError                 anything the database could not do
    └── DatabaseLockedError      another process holds the database file
"""

from __future__ import annotations


class StorageError(Exception):
    """The database could not do what was asked; the message says what and where."""


class DatabaseLockedError(StorageError):
    """Another process (usually the daemon) has the database file open."""
