"""The guards of a paged read, written once for every connector that follows pages.

A platform's "next page" token is data from the network: a buggy or hostile server can
hand back a token already followed (a loop that never ends), a token that is not one,
or, where tokens are ordered ids, one that does not move the read on. A read is also
capped at a number of pages per run. :class:`Pager` holds those rules; the connector
keeps what differs (what a page is, when a listing ends, what a cut run saves).

    pager = Pager("x search", max_pages=10)
    while not pager.capped:
        pager.page()                                 # one page requested
        ...
        token = pager.follow(meta.get("next_token"))   # None: the listing ended
        if token is None:
            break
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.errors import FatalError


class Pager:
    """The page count, cap and token guards of one paged read.

    ``what`` names the read in errors. ``word`` is what the platform calls its token
    ("token", "cursor", "min_id"). With ``order`` (a sort key of tokens), each next
    token must move the read on: above the last one, or below it with ``descending``.
    ``start`` is the token the read starts from, if any."""

    def __init__(self, what: str, *, max_pages: int | None = None, word: str = "token",
                 order: Callable[[str], Any] | None = None, descending: bool = False,
                 start: str | None = None) -> None:
        self.what = what
        self.max_pages = max_pages
        self.word = word
        self.pages = 0
        self.token = start
        self._order = order
        self._descending = descending
        self._seen: set[str] = set()

    @property
    def capped(self) -> bool:
        """Whether the page cap forbids another page."""
        return self.max_pages is not None and self.pages >= self.max_pages

    def page(self) -> None:
        """Count one page requested."""
        self.pages += 1

    def restart(self, start: str | None = None) -> None:
        """A new listing (another range of the same query): its tokens start afresh
        (they may be offsets that recur); the page count, and so the cap, goes on."""
        self._seen.clear()
        self.token = start

    def follow(self, token: Any) -> str | None:
        """The token of the next page, or None when there is none (the listing ended).

        Raises FatalError when the token is not a string, was followed before (or is the
        current one), or, for ordered tokens, does not move the read on."""
        if token is None or token == "":
            return None
        if not isinstance(token, str):
            raise FatalError(f"{self.what}: the page {self.word} is not a string: {token!r}")
        if self._order is not None and self.token is not None:
            before, after = self._order(self.token), self._order(token)
            if (after >= before) if self._descending else (after <= before):
                self._no_progress(token)
        if token in self._seen or token == self.token:
            raise FatalError(f"{self.what}: the API repeated the page {self.word} {token!r}; stopping a paging loop")
        self._seen.add(token)
        self.token = token
        return token

    def advance(self, token: Any) -> str:
        """Like :meth:`follow` where a next page must exist (the caller saw a full page):
        a missing token is no progress either."""
        followed = self.follow(token)
        if followed is None:
            self._no_progress(token)
        return followed  # type: ignore[return-value]  # _no_progress raised

    def _no_progress(self, token: Any) -> None:
        direction = "below" if self._descending else "past"
        raise FatalError(f"{self.what}: the next page ({self.word}={token}) does not move {direction} "
                         f"{self.word}={self.token}; stopping a paging loop")
