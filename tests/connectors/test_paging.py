"""The pager's guards, alone (the connectors' use of it is tested against the fake servers)."""

from __future__ import annotations

import pytest

from connectors.errors import FatalError
from connectors.paging import Pager


def test_tokens_are_followed_until_the_listing_ends():
    pager = Pager("test")
    assert [pager.follow(t) for t in ("a", "b", None)] == ["a", "b", None]
    assert pager.follow("") is None


def test_a_token_followed_before_is_a_paging_loop():
    pager = Pager("x search")
    pager.follow("a")
    pager.follow("b")
    with pytest.raises(FatalError, match=r"^x search: the API repeated the page token 'a'; stopping a paging loop"):
        pager.follow("a")
    with pytest.raises(FatalError, match="repeated the page cursor 's'"):
        Pager("s", word="cursor", start="s").follow("s")  # the token the read started from


def test_a_token_that_is_not_a_string_is_refused():
    with pytest.raises(FatalError, match=r"the page token is not a string: \['a'\]"):
        Pager("test").follow(["a"])


def test_the_cap_counts_pages_and_restart_keeps_the_count_but_forgets_tokens():
    pager = Pager("test", max_pages=2)
    assert not pager.capped
    pager.page()
    pager.follow("100")
    pager.restart()
    assert pager.follow("100") == "100"  # an offset of another range may recur
    pager.page()
    assert pager.capped and pager.pages == 2
    assert not Pager("no cap").capped


def test_ordered_tokens_must_move_on():
    up = Pager("m #tag", word="min_id", order=int, start="10")
    assert up.advance("11") == "11"
    with pytest.raises(FatalError, match=r"the next page \(min_id=9\) does not move past min_id=11"):
        up.advance("9")
    down = Pager("m #tag", word="max_id", order=int, descending=True)
    assert down.advance("50") == "50"  # the first page sets the bound
    with pytest.raises(FatalError, match=r"the next page \(max_id=50\) does not move below max_id=50"):
        down.advance("50")
    with pytest.raises(FatalError, match=r"the next page \(max_id=None\) does not move below"):
        down.advance(None)  # a full page with no next one: no progress either
