"""The x cursor, parsed (``_State``; its states are described in ``connectors.x``), and
written back.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from connectors.base import Cursor
from connectors.errors import FatalError
from connectors.x.mapping import _is_id, _iso, id_time, parse_time


@dataclass(frozen=True, slots=True)


class _State:
    """The cursor, parsed. Exactly one of since_id / start_time is the lower bound."""

    since_id: str | None
    start_time: datetime | None
    until_id: str | None
    newest_id: str | None
    month: str
    posts_read: int

    def lower_time(self) -> datetime:
        return self.start_time if self.start_time is not None else id_time(self.since_id)  # type: ignore[arg-type]

    def to_cursor(self) -> Cursor:
        cursor: Cursor = {"month": self.month, "posts_read": self.posts_read}
        if self.since_id is not None:
            cursor["since_id"] = self.since_id
        else:
            cursor["start_time"] = _iso(self.start_time)  # type: ignore[arg-type]
        if self.until_id is not None:
            cursor["until_id"] = self.until_id
            cursor["newest_id"] = self.newest_id
        return cursor


def _parse_cursor(since: Cursor, month: str, brand: str) -> _State:
    def bad(why: str) -> FatalError:
        return FatalError(f"x: the saved cursor of brand {brand!r} is unreadable ({why}): {since!r}; "
                          "delete it to start over with a first run")

    if not isinstance(since, Mapping):
        raise bad("not an object")
    since_id, start_time = since.get("since_id"), since.get("start_time")
    until_id, newest_id = since.get("until_id"), since.get("newest_id")
    if (since_id is None) == (start_time is None):
        raise bad("needs exactly one of since_id and start_time")
    if since_id is not None and not _is_id(since_id):
        raise bad("since_id is not an id")
    try:
        start = parse_time(start_time) if start_time is not None else None
    except ValueError as exc:
        raise bad("start_time is not a timestamp") from exc
    if (until_id is None) != (newest_id is None) or (until_id is not None and not (_is_id(until_id) and _is_id(newest_id))):
        raise bad("until_id and newest_id must come together, as ids")
    posts_read = since.get("posts_read", 0)
    if isinstance(posts_read, bool) or not isinstance(posts_read, int) or posts_read < 0:
        raise bad("posts_read is not a count")
    if since.get("month") != month:
        posts_read = 0  # a new month, a new budget
    return _State(since_id, start, until_id, newest_id, month, posts_read)
