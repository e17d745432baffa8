"""The brand query model: compiled per platform, and re-checked locally.

Platform search is fuzzy (stemming, matches in link titles or user names, ignored
punctuation), so every fetched post is checked again with ``matches`` against the
same ``BrandQuery``; what fails is not stored. The local check is the authority; the
compiled platform query only needs to be a superset of it.

Local matching rules (case-insensitive):

* a post is a mention if its text contains any term or phrase, hashtag (``#tag``) or
  handle (``@name``), each as a whole word: ``brew`` does not match ``brewly``; the
  brand's own accounts (``BrandQuery.own_accounts``) count as handles;
* and it contains none of ``exclude``, and its author is not in ``exclude_authors``;
* and, when ``languages`` is set and the post's language is known, that language is
  one of them (a post of unknown language is kept; language detection comes later).

A post fetched as thread context (``Mention.thread_context``) need not contain a term;
only the exclusions apply to it (``passes_exclusions``). Neither need a post by one of
the brand's own accounts (``is_own``): the brand's replies rarely name it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from connectors.base import BrandQuery, Mention
from connectors.errors import QueryError

X_QUERY_LIMIT = 512
REDDIT_QUERY_LIMIT = 512


def _phrase_pattern(phrase: str) -> str:
    """A regex for ``phrase`` as a whole word: boundaries only where it starts or ends
    with a word character, so '#brewly', '@brewly' and 'kettle & co' work too."""
    escaped = re.escape(phrase.casefold())
    left = r"(?<!\w)" if re.match(r"\w", phrase) else r"(?<![\w#@])" if phrase[0] in "#@" else ""
    right = r"(?!\w)" if re.search(r"\w$", phrase) else ""
    return left + escaped + right


@lru_cache(maxsize=256)
def _compiled(query: BrandQuery) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None, frozenset[str], frozenset[str]]:
    # An empty phrase would match every post (the config refuses them; the API may not).
    wanted = [p for p in (*query.terms, *query.hashtags, *query.handles, *_own_handles(query)) if p]
    excluded = [p for p in query.exclude if p]
    include = re.compile("|".join(_phrase_pattern(p) for p in wanted)) if wanted else None
    exclude = re.compile("|".join(_phrase_pattern(p) for p in excluded)) if excluded else None
    authors = frozenset(_author_key(a) for a in query.exclude_authors)
    languages = frozenset(lang.casefold() for lang in query.languages)
    return include, exclude, authors, languages


def _own_handles(query: BrandQuery) -> tuple[str, ...]:
    """The brand's own accounts as @handles: a post that names one (a customer answering
    the brand's reply) mentions the brand. A Mastodon account is also named by its local
    part, as the post's text shows it."""
    handles: list[str] = []
    for source, accounts in query.own_accounts:
        for account in accounts:
            key = account_key(account)
            handles.append(f"@{key}")
            if source == "mastodon" and "@" in key:
                handles.append(f"@{key.split('@')[0]}")
    return tuple(dict.fromkeys(handles))


def _author_key(author: str) -> str:
    return author.strip().lstrip("@").casefold()


def account_key(account: str) -> str:
    """An account name as every platform compares it: case-insensitive, without the
    ``@`` of X, Mastodon and Bluesky or the ``u/`` of Reddit."""
    key = _author_key(account)
    return key[2:] if key.startswith("u/") else key


def is_own(query: BrandQuery, source: str, author: str | None) -> bool:
    """Whether ``author`` (as ``source``'s mapper stores it) is one of the brand's own
    accounts on ``source``: the one rule, for posts found by search and by the
    connectors' own-account collection alike."""
    if author is None:
        return False
    own = _own_keys(query, source)
    return bool(own) and account_key(author) in own  # no key computed for a brand with no accounts


@lru_cache(maxsize=256)
def _own_keys(query: BrandQuery, source: str) -> frozenset[str]:
    return frozenset(account_key(a) for a in query.accounts_on(source))


def matches(query: BrandQuery, text: str, author: str | None = None, lang: str | None = None) -> bool:
    """Whether a post is a mention of ``query.brand`` (rules in the module docstring)."""
    include = _compiled(query)[0]
    if include is None or not include.search(text.casefold()):
        return False
    return passes_exclusions(query, text, author, lang)


def passes_exclusions(query: BrandQuery, text: str, author: str | None = None, lang: str | None = None) -> bool:
    """The query's exclusions alone: the check for thread context, which need not name
    the brand but must not be excluded content, an excluded author or another language."""
    _, exclude, authors, languages = _compiled(query)
    if exclude is not None and exclude.search(text.casefold()):
        return False
    if authors and author is not None and _author_key(author) in authors:
        return False
    if languages and lang and lang.split("-")[0].casefold() not in languages:
        return False
    return True


def with_own_mark(query: BrandQuery, mention: Mention) -> Mention:
    """``mention`` marked as the brand's own when its author is one of the brand's
    accounts on its source, however it was found (search included), so a connector that
    cannot collect the accounts' posts apart still marks them (``is_own``)."""
    if mention.own or not is_own(query, mention.source, mention.author):
        return mention
    return mention.replace(own=True)


def is_mention_of(query: BrandQuery, mention: Mention) -> bool:
    """The local re-check of a fetched post: search hits must match the query; thread
    context and the brand's own posts need only pass its exclusions."""
    if mention.thread_context or mention.own:
        return passes_exclusions(query, mention.text, mention.author, mention.lang)
    return matches(query, mention.text, mention.author, mention.lang)


def _quoted(phrase: str) -> str:
    if '"' in phrase:
        raise QueryError(f"{phrase!r}: double quotes cannot be searched for")
    return f'"{phrase}"' if re.search(r"[^\w#@]", phrase) else phrase


def _check_length(compiled: str, limit: int, platform: str, brand: str) -> str:
    if len(compiled) > limit:
        raise QueryError(
            f"brand {brand!r}: the {platform} query is {len(compiled)} characters, over the "
            f"{limit}-character limit; use fewer or shorter terms: {compiled[:80]}..."
        )
    return compiled


def compile_x(query: BrandQuery) -> str:
    """X (API v2 recent search) syntax. Retweets are left out: a retweet adds no
    speech, and the original's ``retweet_count`` already counts it as a repost."""
    wanted = [p for p in (*query.terms, *query.hashtags, *query.handles) if p]
    if not wanted:
        raise QueryError(f"brand {query.brand!r}: nothing to search for on X")
    # The brand's own accounts' posts (its replies in customers' threads, which rarely
    # name the brand) and the replies to them (customers answering the brand, which the
    # local check keeps by their @account) come with the same search, cursor and budget.
    own = [f"{op}:{account_key(a)}" for a in query.accounts_on("x") for op in ("from", "to")]
    parts = ["(" + " OR ".join([*(_quoted(p) for p in wanted), *own]) + ")"]
    parts += [f"-{_quoted(p)}" for p in query.exclude if p]
    parts += [f"-from:{_author_key(a)}" for a in query.exclude_authors]
    if query.languages:
        langs = [f"lang:{lang}" for lang in query.languages]
        parts.append(langs[0] if len(langs) == 1 else "(" + " OR ".join(langs) + ")")
    parts.append("-is:retweet")
    return _check_length(" ".join(parts), X_QUERY_LIMIT, "X", query.brand)


def compile_reddit(query: BrandQuery) -> str:
    """Reddit search syntax. Reddit has no hashtags or language filter: a hashtag is
    searched as its word and languages are applied by the local check only."""
    wanted = [p for p in (*query.terms, *(h.lstrip("#") for h in query.hashtags),
                          *(f"u/{_author_key(h)}" for h in query.handles if _author_key(h))) if p]
    if not wanted:
        raise QueryError(f"brand {query.brand!r}: nothing to search for on Reddit")
    compiled = "(" + " OR ".join(_quoted(p) for p in wanted) + ")"
    compiled += "".join(f" NOT {_quoted(p)}" for p in query.exclude if p)
    compiled += "".join(f" NOT author:{_author_key(a)}" for a in query.exclude_authors)
    return _check_length(compiled, REDDIT_QUERY_LIMIT, "Reddit", query.brand)
