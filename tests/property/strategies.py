"""Hostile input for the property tests: text no platform should send, JSON-like values
of every wrong type, and valid payloads with fields broken one by one.

Hypothesis' own text strategy never draws surrogates (category Cs); these strategies
add them explicitly, because they are exactly what a file read with
``errors="surrogateescape"`` or a JSON ``"\\ud800"`` escape produces.
"""

from __future__ import annotations

import json
import math
import re
import string
from datetime import date, datetime, time, timezone
from typing import Any

from hypothesis import strategies as st

from connectors.base import Mention

# -- the hostile strings ----------------------------------------------------------------

SCRIPT = '<script>alert("x")</script>'
IMG = '"><img src=x onerror=alert(1)>'
CONTROL = "".join(chr(c) for c in range(0x20)) + "\x7f"
NUL = "\x00"
ZWJ_FAMILY = "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👩‍👩‍👧‍👦
EMOJI = "\u2615\U0001f680\U0001f44d\U0001f3fd\U0001f1fa\U0001f1e6"  # ☕🚀👍🏽🇺🇦
RTL = "\u202eevil.exe\u202c \u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd"  # RLO, Arabic, Hebrew
BIDI_CONTROLS = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
LONE_SURROGATES = "\ud800 \udbff \udc00 \udfff \udc80\udcff"  # the last two: surrogateescape'd bytes
LINE_BREAKERS = "\r\n\r\u2028\u2029\x85\x0b\x0c"
CSV_BREAKERS = '","\r\n;\t' + "=HYPERLINK(\"http://x\",\"y\")"
MD_BREAKERS = "a | b |\n|---|\n# h\n- item\n[x](javascript:alert(1)) `code` **b**"
BOM = "\ufeff"
SQL = "'; DROP TABLE mentions; --"

HOSTILE_SAMPLES: tuple[str, ...] = (
    SCRIPT, IMG, CONTROL, NUL, ZWJ_FAMILY, EMOJI, RTL, BIDI_CONTROLS, LONE_SURROGATES,
    LINE_BREAKERS, CSV_BREAKERS, MD_BREAKERS, BOM, SQL, "", " ", "\u00a0", "null", "None",
    "NaN", "-1", "0", "1e999", "9" * 30, "2026-02-30", "t3_", "@", "#", "&amp;", "</td></tr>",
)

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogate(value: str) -> bool:
    return bool(_SURROGATE.search(value))


_chars = st.one_of(
    st.characters(),                                  # any code point but surrogates
    st.characters(categories=["Cs"]),                 # surrogates
    st.sampled_from(CONTROL + BIDI_CONTROLS + LINE_BREAKERS + "<>&\"'|`\\;,#@"),
)
hostile_text = st.one_of(
    st.sampled_from(HOSTILE_SAMPLES),
    st.text(_chars, max_size=30),
    st.lists(st.one_of(st.sampled_from(HOSTILE_SAMPLES), st.text(_chars, max_size=6)), min_size=2, max_size=4)
    .map("".join),
)
"""Arbitrary text, with surrogates, controls, bidi overrides, markup and separators."""

printable_text = st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]), max_size=20)
"""Text without controls or surrogates (for values that must stay readable)."""

_big_ints = st.sampled_from([2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, -1])
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), _big_ints,
    st.floats(allow_nan=True, allow_infinity=True), hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)
"""Anything ``json.loads`` could return (plus surrogates, which a JSON escape can carry)."""

# -- TOML: what tomllib can return (no null, 64-bit integers, no surrogates) ------------

toml_text = st.one_of(
    st.sampled_from([s for s in HOSTILE_SAMPLES if not has_surrogate(s)]),
    st.text(st.one_of(st.characters(), st.sampled_from(CONTROL + BIDI_CONTROLS + "<>&\"'\\#@.[]=")), max_size=20),
).map(lambda s: _SURROGATE.sub("\ufffd", s))  # Hypothesis may still mix in a surrogate it found in our source
toml_scalars = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True), toml_text,
    st.datetimes(timezones=st.sampled_from([None, timezone.utc])), st.dates(), st.times(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(toml_text, inner, max_size=3),
    max_leaves=8,
)


def toml_document(data: dict) -> str:
    """``data`` written as TOML: one ``key = value`` line per top-level key, tables inline.
    JSON string escapes are TOML's, so ``json.dumps`` writes strings and quoted keys."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (datetime, date, time)):
            return v.isoformat()
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
    return "".join(f"{json.dumps(k)} = {value(v)}\n" for k, v in data.items())


MISSING = object()


def broken(template: Any, values: st.SearchStrategy[Any] | None = None,
           text: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    """Valid-looking payloads built from ``template``: each field is kept (most often),
    kept with hostile text in place of a string, dropped, or replaced by any value of
    ``values`` (JSON values by default); nested objects and lists are broken the same
    way, and unknown keys may appear."""
    values = json_values if values is None else values
    text = hostile_text if text is None else text
    if isinstance(template, dict):
        fields = {
            key: st.one_of(*[broken(value, values, text)] * 3, st.just(MISSING), values)
            for key, value in template.items()
        }
        extra = st.dictionaries(text, values, max_size=2)
        return st.tuples(st.fixed_dictionaries(fields), extra).map(
            lambda pair: {**pair[1], **{k: v for k, v in pair[0].items() if v is not MISSING}})
    if isinstance(template, list):
        if not template:
            return st.lists(values, max_size=2)
        return st.lists(st.one_of(*(broken(item, values, text) for item in template), values),
                        max_size=len(template) + 1)
    if isinstance(template, str):
        return st.one_of(st.just(template), st.just(template), text)
    return st.one_of(st.just(template), st.just(template), values)


# -- checks -----------------------------------------------------------------------------

_TEXT_FIELDS = ("source", "id", "brand", "text", "author", "url", "conversation_id", "parent_id", "lang")


def assert_storable(mentions: list[Mention] | tuple[Mention, ...]) -> None:
    """What a mapper returns can be written: Mentions with no surrogate left in any text
    field (the rule in connectors.base), which convert to the Arrow batch the store inserts."""
    from storage.store import mentions_table

    for mention in mentions:
        assert isinstance(mention, Mention), mention
        for name in _TEXT_FIELDS:
            value = getattr(mention, name)
            assert value is None or isinstance(value, str), (name, value)
            assert value is None or not has_surrogate(value), (name, value)
    mentions_table(list(mentions))


def assert_names_the_problem(exc: BaseException) -> None:
    """Our errors say something: not empty, not a bare repr of an exception class."""
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} with an empty message"
    assert not re.fullmatch(r"[A-Za-z]*Error\(?\)?", message), message


ASCII_WORD = st.text(string.ascii_lowercase, min_size=1, max_size=8)
