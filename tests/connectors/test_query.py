import pytest

from connectors.base import BrandQuery
from connectors.errors import QueryError
from connectors.query import compile_reddit, compile_x, matches, passes_exclusions

BREWLY = BrandQuery(
    brand="Brewly", terms=("brewly", "kettle & co"), hashtags=("#brewly",), handles=("@brewly",),
    exclude=("brewly.jobs",), exclude_authors=("@brewly_bot",), languages=("en",),
)


@pytest.mark.parametrize("text, expected", [
    ("I love Brewly!", True),
    ("BREWLY again", True),
    ("brewlyish is not it", False),
    ("we brew ly", False),
    ("#brewly mornings", True),
    ("#brewlyfan", False),
    ("thanks @brewly", True),
    ("thanks @brewly_team", False),
    ("kettle & co is nice", True),
    ("kettle and co", False),
    ("apply at brewly.jobs today, brewly rocks", False),
    ("", False),
])
def test_matches_whole_words_and_exclusions(text, expected):
    assert matches(BREWLY, text, author="someone", lang="en") is expected


def test_authors_and_languages():
    assert not matches(BREWLY, "brewly", author="Brewly_Bot")
    assert not matches(BREWLY, "brewly", author="@brewly_bot")
    assert not matches(BREWLY, "brewly", lang="de")
    assert matches(BREWLY, "brewly", lang="en-GB")
    assert matches(BREWLY, "brewly", lang=None)  # unknown language is kept
    assert matches(BrandQuery("Brewly", terms=("brewly",)), "brewly", lang="de")


def test_thread_context_needs_only_to_pass_exclusions():
    assert passes_exclusions(BREWLY, "same here, great coffee", author="x", lang="en")
    assert not passes_exclusions(BREWLY, "see brewly.jobs", author="x")
    assert not passes_exclusions(BREWLY, "agree", author="brewly_bot")
    assert not passes_exclusions(BREWLY, "agree", lang="fr")


def test_compile_x():
    q = compile_x(BREWLY)
    assert q == '(brewly OR "kettle & co" OR #brewly OR @brewly) -"brewly.jobs" -from:brewly_bot lang:en -is:retweet'
    two = compile_x(BrandQuery("A", terms=("a b",), languages=("en", "de")))
    assert two == '("a b") (lang:en OR lang:de) -is:retweet'


def test_compile_reddit():
    q = compile_reddit(BREWLY)
    assert q == '(brewly OR "kettle & co" OR brewly OR "u/brewly") NOT "brewly.jobs" NOT author:brewly_bot'


def test_queries_over_the_limit_or_unsearchable_are_clear_errors():
    long = BrandQuery("Big", terms=tuple(f"term number {i}" for i in range(60)))
    with pytest.raises(QueryError, match=r"brand 'Big': the X query is \d+ characters, over the 512"):
        compile_x(long)
    with pytest.raises(QueryError, match="Reddit query"):
        compile_reddit(long)
    with pytest.raises(QueryError, match="double quotes"):
        compile_x(BrandQuery("Q", terms=('say "hi"',)))
    with pytest.raises(QueryError, match="nothing to search for"):
        compile_x(BrandQuery("Empty"))
