"""A JSON-lines inbox beside the database, for requests made while the daemon holds it.

DuckDB lets no other process open the file meanwhile (docs/design.md), so a command
appends its requests to ``NAME.KIND-inbox.jsonl`` and the daemon applies the inbox after
its cycle: labels (storage.labels) and model requests (storage.models). Appends take
an exclusive lock, so lines from two writers never interleave, and a command's lines
go in one append. Taking the inbox renames it first, so a line appended meanwhile goes
to a new inbox; the renamed file is removed only once its lines were applied, so a
crash leaves it to be taken again next time (applying is idempotent). Anyone who can
write beside the database can write here: every line is checked, and a bad one is
reported by number and dropped. Something other than a file at either name is
reported and left alone.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from storage.errors import StorageError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Line(Generic[T]):
    """One inbox line that parsed: its number, its text and what it holds."""

    number: int
    text: str
    value: T


@dataclass
class Taken(Generic[T]):
    """The lines taken from an inbox: those that parsed; what is in the way of the
    inbox; and the bad lines, by number, to which the caller adds those it cannot
    apply (``refuse``)."""

    lines: list[Line[T]]
    in_the_way: list[str]
    bad: list[tuple[int, str]]
    inbox: Inbox

    @property
    def values(self) -> list[T]:
        return [line.value for line in self.lines]

    def refuse(self, number: int, text: str, exc: Exception) -> None:
        self.bad.append((number, f"{self.inbox.path.name} line {number} {text.strip()[:120]!r}: {exc}"))

    @property
    def errors(self) -> list[str]:
        """Every problem: what is in the way, then the bad lines in line order."""
        return self.in_the_way + [message for _, message in sorted(self.bad)]


class Inbox:
    def __init__(self, database: Path, kind: str, noun: str) -> None:
        self.path = database.with_name(f"{database.stem}.{kind}-inbox.jsonl")
        self.taken = self.path.with_name(self.path.name + ".applying")
        self.noun = noun  # "label", "model request": what the messages call a line

    def waiting(self) -> bool:
        """Whether lines wait (a new inbox, or one a crash left half applied)."""
        return self.path.is_file() or self.taken.is_file()

    def _in_the_way(self, path: Path) -> str | None:
        """Why ``path`` cannot be (part of) this inbox, or None."""
        if path.exists() and not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file"
            return (f"{path} is {kind}, not the {self.noun} inbox: move it away so that {self.noun}s given "
                    f"while the daemon runs can be queued and applied")
        return None

    def append(self, records: Sequence[dict[str, Any]]) -> Path:
        """Append ``records`` in one locked append: the daemon takes all of them or none."""
        problem = self._in_the_way(self.path)
        if problem:
            raise StorageError(f"cannot queue the {self.noun}: {problem}")
        lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        try:
            with open(self.path, "a", encoding="utf-8") as inbox:
                fcntl.flock(inbox, fcntl.LOCK_EX)  # whole lines, even from two writers at once
                inbox.write(lines)
                inbox.flush()
                os.fsync(inbox.fileno())
        except OSError as exc:
            raise StorageError(f"cannot queue the {self.noun} in {self.path}: {exc.strerror or exc}") from exc
        return self.path

    @contextmanager
    def take(self, parse: Callable[[str], T]) -> Iterator[Taken[T]]:
        """The waiting lines, oldest first, ``parse``d (a ValueError makes a line a
        problem, dropped). The taken file is removed when the block ends without an
        exception: a crash inside it leaves the lines to be taken again."""
        taken: Taken[T] = Taken([], [p for p in map(self._in_the_way, (self.taken, self.path)) if p], [], self)
        if self._in_the_way(self.taken) or (not self.taken.exists() and not self.path.is_file()):
            yield taken
            return
        if not self.taken.exists():
            os.replace(self.path, self.taken)
            with open(self.taken, "a", encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)  # waits for a writer still appending its lines
        with open(self.taken, encoding="utf-8", errors="replace") as lines:
            for number, text in enumerate(lines, start=1):
                if not text.strip():
                    continue
                try:
                    taken.lines.append(Line(number, text, parse(text)))
                except ValueError as exc:
                    taken.refuse(number, text, exc)
        yield taken
        self.taken.unlink()


def json_object(text: str) -> dict[str, Any]:
    """The JSON object one line holds; ValueError saying what else it is."""
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(fields, dict):
        raise ValueError(f"not a JSON object but {type(fields).__name__}")
    return fields
