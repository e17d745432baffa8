"""The brand query model and its compilers against arbitrary strings.

Properties: ``compile_x`` / ``compile_reddit`` (and the per-term compilers of Bluesky,
Hacker News and Mastodon) return a query within the platform's limit or raise
QueryError naming the brand; ``matches`` / ``passes_exclusions`` answer True or False
for any text, author and language; and a post that contains a term as a whole word,
whatever hostile text surrounds it, is a mention.
"""

from __future__ import annotations

import string

from hypothesis import assume, example, given
from hypothesis import strategies as st

from connectors.base import BrandQuery
from connectors.bluesky.search import compile_search_queries
from connectors.errors import QueryError
from connectors.hackernews import search_terms
from connectors.mastodon import hashtags_for, search_queries
from connectors.query import REDDIT_QUERY_LIMIT, X_QUERY_LIMIT, compile_reddit, compile_x, matches, passes_exclusions
from tests.property.strategies import (
    LONE_SURROGATES, RTL, SCRIPT, ZWJ_FAMILY, assert_names_the_problem, hostile_text,
)

_phrases = st.lists(hostile_text, max_size=4).map(tuple)
queries = st.builds(
    BrandQuery, brand=hostile_text, terms=_phrases, hashtags=_phrases, handles=_phrases, exclude=_phrases,
    exclude_authors=_phrases, languages=_phrases,
)


@given(query=queries)
@example(query=BrandQuery("Acme", terms=("",)))
@example(query=BrandQuery("Acme", terms=('say "hi"',)))
@example(query=BrandQuery("Acme", terms=("x" * 600,)))
@example(query=BrandQuery(SCRIPT, terms=(SCRIPT, RTL, ZWJ_FAMILY, LONE_SURROGATES), exclude=("OR", "-", "(")))
def test_compilers_return_a_bounded_query_or_a_query_error(query):
    for compile_, limit in ((compile_x, X_QUERY_LIMIT), (compile_reddit, REDDIT_QUERY_LIMIT)):
        try:
            compiled = compile_(query)
        except QueryError as exc:
            assert_names_the_problem(exc)
        else:
            assert isinstance(compiled, str) and len(compiled) <= limit


def test_only_empty_phrases_are_nothing_to_search_for():
    query = BrandQuery("Acme", terms=("",), hashtags=("#",), handles=("@",))
    for compile_ in (compile_x, compile_reddit):
        try:
            compiled = compile_(BrandQuery("Acme", terms=("",), exclude=("",)))
        except QueryError as exc:
            assert "Acme" in str(exc)
        else:
            raise AssertionError(f"compiled {compiled!r} from an empty term")
    assert not matches(query, "nothing about the brand")


@given(query=queries)
def test_per_term_compilers(query):
    for compile_ in (compile_search_queries, search_terms, hashtags_for, search_queries):
        try:
            compiled = compile_(query)
        except QueryError as exc:
            assert_names_the_problem(exc)
        else:
            assert all(isinstance(q, str) for q in compiled)


@given(query=queries, text=hostile_text, author=st.one_of(st.none(), hostile_text),
       lang=st.one_of(st.none(), hostile_text))
@example(query=BrandQuery("Acme", terms=("",)), text="anything", author=None, lang=None)
@example(query=BrandQuery("Acme", hashtags=("#",), handles=("@",)), text="# @", author="@", lang="-")
def test_matching_answers_for_any_input(query, text, author, lang):
    assert matches(query, text, author, lang) in (True, False)
    assert passes_exclusions(query, text, author, lang) in (True, False)


@given(query=queries)
def test_an_empty_term_matches_nothing_by_itself(query):
    only_empty = BrandQuery(query.brand, terms=("",), exclude=query.exclude)
    assert not matches(only_empty, "any post at all")


_words = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12)


@given(term=_words, before=hostile_text, after=hostile_text)
@example(term="acme", before=SCRIPT, after=RTL + ZWJ_FAMILY)
@example(term="acme", before="\x00", after="\ud800")
def test_a_term_as_a_whole_word_matches_whatever_surrounds_it(term, before, after):
    query = BrandQuery("Acme", terms=(term,))
    assert matches(query, f"{before} {term} {after}")
    assert matches(query, f"{before}\n{term.upper()}\t{after}")


@given(term=_words, glued=st.text(string.ascii_letters + string.digits, min_size=1, max_size=3))
def test_a_term_inside_a_longer_word_does_not_match(term, glued):
    query = BrandQuery("Acme", terms=(term,))
    assume(term.casefold() not in glued.casefold())  # the glued part must not repeat the term
    assert not matches(query, f"({term}{glued})")
    assert not matches(query, f"- {glued}{term} -")
