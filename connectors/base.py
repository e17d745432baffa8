"""The types every connector speaks: Mention, Batch, BrandQuery and the Connector protocol.

A connector turns one platform's API into a stream of ``Batch`` objects. It never
touches the database: the pipeline (``listener.pipeline``) scores each batch and hands
it to storage together with the batch's checkpoint, in one transaction.

Cursor rules (see docs/design.md, "State and idempotency"):

* A cursor is opaque to everything but the connector that made it: a JSON-able dict.
* ``Batch.checkpoint`` is set only where resuming from it cannot skip data. Oldest-first
  sources may checkpoint every batch; newest-first APIs checkpoint at the end of a
  complete run only.
* A timestamp cursor never moves past the start time of the run that produced it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Protocol, runtime_checkable

Cursor = dict[str, Any]
Clock = Callable[[], datetime]
"""Returns the current tz-aware UTC time; injected everywhere so tests control time."""

ENGAGEMENT_METRICS = ("likes", "reposts", "replies")
MAX_COUNT = 2**53 - 1
"""The largest engagement count a mapper accepts as a count. Beyond JavaScript's safe
integers a platform's number is noise, not a count, and a sum of a few such counts
still fits storage's BIGINT (a larger one would fail the whole batch's insert)."""


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(timezone.utc)


def ensure_utc(moment: datetime, what: str = "datetime") -> datetime:
    """Return ``moment`` as a tz-aware UTC datetime; naive datetimes are refused, and so
    are times with no UTC equivalent in datetime's range (``0001-01-01T00:00+01:00``):
    both raise ValueError, which every mapper already reads as a malformed time."""
    if moment.tzinfo is timezone.utc:
        return moment  # the common case, on the hot path of every Mention
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment!r}")
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{what} {moment.isoformat()} is out of range in UTC") from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(value: str) -> str:
    """``value`` with every surrogate code point replaced by U+FFFD.

    Surrogates are not characters: UTF-8 cannot encode them, so neither Arrow, DuckDB
    nor a report could take a text holding one. They reach Python from invalid bytes
    decoded with ``errors="surrogateescape"`` and from JSON escapes like ``"\\ud800"``.
    Everything else (controls, NUL, bidi overrides, any length) is kept exactly.
    """
    if value.isascii() or _encodable(value):
        return value
    return _SURROGATE.sub("\ufffd", value)


def _encodable(value: str) -> bool:
    # Trying the encoder is about 3x faster than searching with a regex.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Mention:
    """One post that matched one brand's query on one platform.

    Keyed by ``(source, id, brand)``: a post that names two tracked brands is a mention
    of each, so every brand's mood and share of voice count it.

    ``thread_context`` marks a post fetched as part of a matched thread (a reply in the
    comment tree of a matched submission, say) rather than found by search: it need not
    name the brand, but the query's exclusions still apply to it.

    ``own`` marks a post by one of the brand's own accounts (``BrandQuery.own_accounts``):
    kept in its thread, left out of the brand's mood (storage.schema: mood_mentions).
    """

    source: str
    id: str
    brand: str
    created_at: datetime
    text: str
    author: str | None = None
    url: str | None = None
    conversation_id: str | None = None
    parent_id: str | None = None
    lang: str | None = None
    metrics: Mapping[str, int] = field(default_factory=dict)
    fetched_at: datetime | None = None
    raw: Mapping[str, Any] | None = None
    thread_context: bool = False
    own: bool = False

    def __post_init__(self) -> None:
        # The text rule (docs/analysts.md, "Text as stored"): surrogates become U+FFFD
        # here, at the one boundary every connector's output crosses, so that what is
        # stored, scored and shown is valid Unicode; all else is kept as it came.
        # One scan of all of them: the usual text is ASCII, or has no surrogate.
        joined = (f"{self.source}{self.id}{self.brand}{self.text}{self.author}{self.url}"
                  f"{self.conversation_id}{self.parent_id}{self.lang}")
        if not joined.isascii() and not _encodable(joined):
            for name in _TEXT_FIELDS:
                value = getattr(self, name)
                if isinstance(value, str):
                    object.__setattr__(self, name, valid_text(value))
        created_at = ensure_utc(self.created_at, "created_at")
        if created_at is not self.created_at:
            object.__setattr__(self, "created_at", created_at)
        if self.fetched_at is not None:
            fetched_at = ensure_utc(self.fetched_at, "fetched_at")
            if fetched_at is not self.fetched_at:
                object.__setattr__(self, "fetched_at", fetched_at)
        if not self.id:
            raise ValueError("a mention needs a non-empty id")
        if self.conversation_id is None:
            # A post that names no thread is the root of its own conversation.
            object.__setattr__(self, "conversation_id", self.id)

    @property
    def engagement(self) -> int:
        """Likes + reposts + replies, the engagement that weights mood (docs/roi-method.md)."""
        return sum(int(self.metrics.get(name, 0) or 0) for name in ENGAGEMENT_METRICS)

    def replace(self, **changes: Any) -> Mention:
        return dataclasses.replace(self, **changes)


_TEXT_FIELDS = ("source", "id", "brand", "text", "author", "url", "conversation_id", "parent_id", "lang")


@dataclass(frozen=True, slots=True)
class Batch:
    """Mentions fetched together, and the cursor that is safe to save once they are stored.

    ``skipped`` counts items of the platform's response that could not be read (malformed
    payloads): they are left out, counted, and the run goes on.
    """

    mentions: tuple[Mention, ...]
    checkpoint: Cursor | None = None
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class BrandQuery:
    """What to listen for, for one brand. Connectors compile it to their platform's syntax."""

    brand: str
    terms: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_authors: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    # The brand's own accounts per platform, as ((source, (account, ...)), ...): a tuple
    # so that the query stays hashable (connectors.query caches per query).
    own_accounts: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def accounts_on(self, source: str) -> tuple[str, ...]:
        """The brand's own accounts on ``source`` as configured (none: empty)."""
        return next((accounts for name, accounts in self.own_accounts if name == source), ())

    def with_accounts_on(self, source: str, accounts: Sequence[str]) -> BrandQuery:
        """This query with ``accounts`` added to the brand's own accounts on ``source``
        (``listener import --own-account``: a source no connector collects)."""
        merged = tuple(dict.fromkeys((*self.accounts_on(source), *accounts)))
        others = tuple((name, values) for name, values in self.own_accounts if name != source)
        return dataclasses.replace(self, own_accounts=(*others, (source, merged)))


class Quota(Protocol):
    """A budget shared beyond one connector (cluster mode: one credential, many daemons;
    listener.cluster.SharedQuota). A connector billed per item reserves before each
    request what it may read, and refunds what the answer did not hold."""

    def reserve(self, wanted: int) -> int:
        """Up to ``wanted`` units; 0 when the budget is spent."""
        ...

    def refund(self, unused: int) -> None:
        """Give back units reserved but not read."""
        ...


@runtime_checkable
class Connector(Protocol):
    """A source of mentions. Built-in and third-party connectors register under the
    ``listener.connectors`` entry point group with a factory ``(settings, clock) -> Connector``."""

    name: str

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        """Yield batches of mentions newer than ``since`` (``None``: the first run)."""
        ...

    def close(self) -> None:
        """Release network sessions; called once, after the last fetch."""
        ...
