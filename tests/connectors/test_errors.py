"""Redaction of registered secrets (connectors.errors): every encoding a peer may send
one back in, and cuts made after redaction (``excerpt``), never before.

The registry is process-wide, as in the program: each test registers secrets of its
own (derived from its name), so tests do not depend on each other.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pytest

from connectors.errors import (
    EXCERPT_LIMIT,
    REDACTED,
    SESSION_TOKENS_KEPT,
    AuthError,
    ConnectorError,
    RetryableError,
    excerpt,
    redact,
    register_secret,
)


def planted(name: str) -> str:
    """A secret shaped like a real X bearer token (URL-encoded '+', '/' and '=' inside,
    about 112 characters), unique to ``name``."""
    h = hashlib.sha256(f"test_errors/{name}".encode()).hexdigest()
    return f"AAAAAAAAAAAAAAAAAAAAA{h[:14]}%2B{h[14:30]}%2F{h[30:46]}%3D{h[46:64]}{h[:20]}"


def pieces(secret: str, size: int = 8) -> list[str]:
    """Every ``size``-character piece of the secret, as is and URL-decoded."""
    forms = {secret, unquote(secret)}
    return [form[i:i + size] for form in forms for i in range(len(form) - size + 1)]


def leaked(text: str, secret: str, size: int = 8) -> list[str]:
    # The leading run of A's is common to every X token and is no piece of this one.
    return [p for p in pieces(secret, size) if p in text and p != "A" * size]


ENCODINGS = {
    "as is": lambda s: s,
    "URL-decoded (a peer that decodes %2B)": unquote,
    "form-decoded ('+' read as a space)": unquote_plus,
    "URL-encoded": lambda s: quote(s, safe=""),
    "URL-encoded, path-safe": quote,
    "form-encoded": quote_plus,
    "URL-encoded, lower-case escapes": lambda s: re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(),
                                                        quote(s, safe="")),
    "URL-encoded twice": lambda s: quote(quote(s, safe=""), safe=""),
    "decoded, then URL-encoded": lambda s: quote(unquote(s), safe=""),
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "base64 URL-safe, unpadded": lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("="),
    "base64 of the decoded value": lambda s: base64.b64encode(unquote(s).encode()).decode(),
    "JSON-escaped": lambda s: json.dumps(s)[1:-1],
    "JSON-escaped, decoded, '/' as '\\/'": lambda s: json.dumps(unquote(s))[1:-1].replace("/", "\\/"),
    "HTML-escaped": html.escape,
    "HTML-escaped, decoded": lambda s: html.escape(unquote(s)),
    "HTML numeric references, decoded": lambda s: "".join(c if c.isalnum() else f"&#{ord(c)};" for c in unquote(s)),
}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_of_a_registered_secret_is_redacted(encoding):
    secret = planted(f"encoding/{encoding}")
    register_secret(secret)
    form = ENCODINGS[encoding](secret)
    text = f"401 Unauthorized: the token <{form}> is not valid"
    shown = redact(text)
    assert shown == f"401 Unauthorized: the token <{REDACTED}> is not valid"


@pytest.mark.parametrize("user", ["", "a", "ab", "abc", "client-id-0123"])
def test_a_secret_inside_basic_auth_is_redacted_at_every_alignment(user):
    """Basic auth sends base64("user:password"): the password starts at any of the three
    byte positions of a base64 group. What is left encodes the user, the colon and at
    most two characters at either end of the secret."""
    secret = planted(f"basic/{user}")
    register_secret(secret)
    header = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
    shown = redact(f"refused: {header}")
    left = shown.replace(REDACTED, "", 1)[len("refused: Basic "):]
    assert REDACTED in shown and len(left) <= 4 * math.ceil((len(user) + 1 + 2) / 3) + 4, shown


def test_a_jwt_and_its_signature_alone_are_redacted():
    token = "eyJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiJkaWQ6cGxjOnRlc3QifQ." + base64.urlsafe_b64encode(
        planted("jwt").encode()).decode().rstrip("=")
    register_secret(token, slot="test jwt")
    register_secret(token.rsplit(".", 1)[1], slot="test jwt signature")
    assert redact(f"Bearer {token}") == f"Bearer {REDACTED}"
    assert redact(f"sig={token.rsplit('.', 1)[1]}") == f"sig={REDACTED}"


def test_overlapping_and_repeated_secrets_go_whole():
    one, two = planted("overlap/1"), planted("overlap/2")
    register_secret(one)
    register_secret(two)
    text = f"{one[:-10]}{two} and {one} and {quote(one, safe='')}{unquote(one)}"
    shown = redact(text)
    assert not leaked(shown, two) and shown.count(REDACTED) == 3


@pytest.mark.parametrize("encoding", ["as is", "URL-decoded (a peer that decodes %2B)", "HTML-escaped",
                                      "base64", "JSON-escaped"])
def test_a_secret_straddling_the_cut_leaves_no_piece_at_any_offset(encoding):
    """The HTML page of issue 11: the peer echoes the token and the message quotes the
    first 80 characters. Cut before redaction, everything up to the cut leaked."""
    secret = planted(f"cut/{encoding}")
    register_secret(secret)
    form = ENCODINGS[encoding](secret)
    for offset in range(0, EXCERPT_LIMIT + 1):
        text = "<" * offset + form + "> please sign in again" * 5
        shown = excerpt(text)
        assert not leaked(shown, secret, size=6), (offset, shown)
        assert len(shown) <= EXCERPT_LIMIT + 1
        assert shown.startswith("<" * offset) and REDACTED[:max(0, EXCERPT_LIMIT - offset)] in shown


def test_excerpt_cuts_long_text_and_keeps_short_text():
    assert excerpt("short answer") == "short answer"
    assert excerpt("x" * 500) == "x" * EXCERPT_LIMIT + "…"
    assert excerpt("y" * 500, 200) == "y" * 200 + "…"
    assert excerpt({"error": "not a page"}) == "{'error': 'not a page'}"


def test_connector_errors_carry_no_form_of_a_secret():
    secret = planted("connector error")
    register_secret(secret)
    for error in (ConnectorError(f"x: {unquote(secret)}"), RetryableError(f"x: {quote_plus(secret)}", 3.0),
                  AuthError(f"x: {base64.b64encode(secret.encode()).decode()}", ["X_BEARER_TOKEN"])):
        assert not leaked(str(error), secret) and REDACTED in str(error)


def test_short_values_are_not_registered():
    register_secret("abc12")
    register_secret("   ")
    assert redact("abc12 is an ordinary word") == "abc12 is an ordinary word"


def test_a_slot_keeps_only_its_latest_session_tokens():
    tokens = [planted(f"slot/{i}") for i in range(SESSION_TOKENS_KEPT + 2)]
    for token in tokens:
        register_secret(token, slot="test rotating session")
    kept, dropped = tokens[-SESSION_TOKENS_KEPT:], tokens[:-SESSION_TOKENS_KEPT]
    assert all(redact(t) == REDACTED for t in kept)
    assert all(redact(t) == t for t in dropped)  # forgotten: the registry stays bounded
