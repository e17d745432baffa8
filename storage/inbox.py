"""A JSON-lines inbox beside the database, for requests made while the daemon holds it.

DuckDB lets no other process open the file meanwhile (docs/design.md), so a command
appends its request to ``NAME.KIND-inbox.jsonl`` and the daemon applies the inbox after
its cycle. Appends take an exclusive lock, so lines from two writers never interleave.
Taking the inbox renames it first, so a line appended meanwhile goes to a new inbox;
the renamed file is removed once every line was handed over, and one a crash left is
taken again next time. Anyone who can write beside the database can write here: the
reader checks every line and reports a bad one by number (storage.models' requests;
storage.labels keeps its own copy of this pattern for labels).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from storage.errors import StorageError

T = TypeVar("T")


class Inbox:
    def __init__(self, database: Path, kind: str) -> None:
        self.path = database.with_name(f"{database.stem}.{kind}-inbox.jsonl")
        self.taken = self.path.with_name(self.path.name + ".applying")

    def waiting(self) -> bool:
        """Whether lines wait (a new inbox, or one a crash left half taken)."""
        return self.path.is_file() or self.taken.is_file()

    def append(self, record: dict[str, Any]) -> Path:
        if self.path.exists() and not self.path.is_file():
            raise StorageError(f"cannot queue the request: {self.path} is not a regular file; move it away")
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            with open(self.path, "a", encoding="utf-8") as inbox:
                fcntl.flock(inbox, fcntl.LOCK_EX)  # whole lines, even from two writers at once
                inbox.write(line)
                inbox.flush()
                os.fsync(inbox.fileno())
        except OSError as exc:
            raise StorageError(f"cannot queue the request in {self.path}: {exc.strerror or exc}") from exc
        return self.path

    def take(self, parse: Callable[[str], T]) -> tuple[list[T], list[str]]:
        """Every line ``parse``d, oldest first, and the lines it refused (ValueError), each
        named by number with its start: those are dropped."""
        if not self.taken.exists():
            if not self.path.is_file():
                return [], []
            os.replace(self.path, self.taken)
            with open(self.taken, "a", encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)  # waits for a writer still appending its line
        taken: list[T] = []
        errors: list[str] = []
        with open(self.taken, encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    taken.append(parse(line))
                except ValueError as exc:
                    errors.append(f"{self.path.name} line {number} {line.strip()[:120]!r}: {exc}")
        self.taken.unlink()
        return taken, errors
