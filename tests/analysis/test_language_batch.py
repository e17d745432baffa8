"""detect_languages gives detect_language's (py3langid's) answer for every text (issue 16,
item 3): the automaton's window, proved from the model's tables; the answers compared on
demo-stream posts, every tweet of the shared dev set, texts in many languages and a
property-based fuzz; and the rounding bound the batch relies on checked against
py3langid's own confidence, text by text."""

from __future__ import annotations

import os
from array import array
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py3langid.langid import visit_counts

from analysis.language import (MIN_CONFIDENCE, _batch_model, _identifier, detect_language, detect_languages,
                               window_automaton_holds)
from bench.vader_speed import demo_texts, dev_texts

# Sentences in the languages a brand's mentions come in, scripts of every width in UTF-8.
SENTENCES = [
    "Der Kaffee bei Brewly ist heute wirklich schrecklich und kalt",
    "Le service client de Brewly ne répond jamais, quelle honte",
    "El café de Brewly está buenísimo, lo recomiendo",
    "Il caffè di Brewly è ottimo ma il servizio è lento",
    "De koffie van Brewly is echt heel lekker vandaag",
    "O atendimento da Brewly é péssimo, nunca mais compro",
    "Kawa w Brewly jest dziś naprawdę okropna",
    "Кофе в Brewly сегодня просто ужасный, больше не приду",
    "Η εξυπηρέτηση της Brewly είναι απαράδεκτη",
    "Brewlyのコーヒーは本当においしいです。とても良いと思いました",
    "Brewly의 커피는 정말 맛있어요",
    "قهوة Brewly سيئة جدا اليوم",
    "ब्रूली की कॉफी बहुत अच्छी है",
    "Brewly kahvesi bugün gerçekten berbattı",
    "I absolutely love the new Brewly cold brew, best coffee ever!",
    "BREWLY IS THE WORST!!!", "lol", "ok", "Brewly", "😍😍😍", "#brewly @brewly_help",
    "ΑΣ ÉCOLE", "e\u0301cole", "\x00brewly\x00", "a" * 3000, "ab " * 700,
]


def features_differ(texts: list[str]) -> list[str]:
    """Texts whose features (and counts) differ from py3langid's own walk's."""
    model, identifier = _batch_model(), _identifier()
    encoded = [model.encode(t) for t in texts]
    counts = model.features(encoded)
    wrong = []
    for k, (text, data) in enumerate(zip(texts, encoded)):
        theirs = visit_counts(identifier.tk_nextmove, identifier._rowbase, identifier.tk_output, data) or {}
        row = counts.getrow(k)
        if dict(zip(row.indices.tolist(), row.data.astype(int).tolist())) != dict(theirs):
            wrong.append(text)
    return wrong


def confidence_within_bound(texts: list[str]) -> list[str]:
    """Texts whose py3langid confidence is further from the batch's than its bound says."""
    model, identifier = _batch_model(), _identifier()
    texts = [t for t in texts if t.strip()]
    best, confidence, slack, terms = model.scores([model.encode(t) for t in texts])
    wrong = []
    for k, text in enumerate(texts):
        lang, theirs = identifier.classify(text)
        if terms[k] and (abs(theirs - confidence[k]) > slack[k] * confidence[k]
                         or theirs >= 0.5 and lang != model.classes[best[k]]):
            wrong.append(text)
    return wrong


def test_the_automaton_is_decided_by_its_last_window_of_bytes():
    assert window_automaton_holds()


def aho_corasick(strings: list[bytes], rows: dict[int, dict[int, int]] | None = None) -> SimpleNamespace:
    """A small Aho-Corasick automaton in py3langid's layout (one row of 256 moves per
    state), built the textbook way; ``rows`` overrides moves: {state: {byte: target}}."""
    nodes = {b"": 0}
    for s in strings:
        for n in range(1, len(s) + 1):
            nodes.setdefault(s[:n], len(nodes))
    by_state = sorted(nodes, key=nodes.get)

    def move(prefix: bytes, b: int) -> int:  # the longest suffix of prefix + b in the trie
        text = prefix + bytes([b])
        return next(nodes[text[k:]] for k in range(len(text) + 1) if text[k:] in nodes)

    table = [move(prefix, b) for prefix in by_state for b in range(256)]
    for state, changes in (rows or {}).items():
        for b, target in changes.items():
            table[state * 256 + b] = target
    return SimpleNamespace(tk_nextmove=array("I", table), tk_row=array("I", range(len(by_state))))


def test_the_window_proof_rejects_what_is_no_short_aho_corasick_automaton():
    words = [b"ab", b"abc", b"bca", b"ca", b"x"]
    assert window_automaton_holds(aho_corasick(words))
    assert not window_automaton_holds(aho_corasick(words + [b"abcdefg"]))  # a string longer than WINDOW
    assert not window_automaton_holds(aho_corasick(words + [b"a\x00"]))  # PAD in a string
    assert not window_automaton_holds(aho_corasick(words, {3: {ord("a"): 0}}))  # "abc" + "a" must reach "bca"
    assert not window_automaton_holds(aho_corasick(words, {0: {ord("q"): 5}}))  # a move from the start that skips a level


def test_answers_are_py3langids_on_demo_posts_dev_tweets_and_many_languages():
    texts = demo_texts(2_000) + dev_texts() + SENTENCES
    got = detect_languages(texts)
    assert [(t, g) for t, g in zip(texts, got) if g != detect_language(t)] == []
    assert {"de", "fr", "ru", "ja", "en", None} <= set(got)


def test_features_and_counts_are_py3langids():
    assert features_differ(demo_texts(300) + dev_texts()[:300] + SENTENCES) == []


def test_confidence_is_within_the_bound_of_py3langids():
    assert confidence_within_bound(demo_texts(500) + dev_texts()[:500] + SENTENCES) == []


def test_the_model_is_loaded_only_for_a_text_that_needs_it():
    before = _batch_model.cache_info()
    assert detect_languages([]) == [] and detect_languages(["", "  \n"]) == [None, None]
    after = _batch_model.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)


def test_a_text_too_close_to_call_is_decided_by_py3langid(monkeypatch):
    """With the threshold put on a text's own confidence, the batch cannot tell which side
    it falls, and asks py3langid."""
    text = "Brewly coffee is fine"
    model = _batch_model()
    _, confidence, _, _ = model.scores([model.encode(text)])
    monkeypatch.setattr("analysis.language.MIN_CONFIDENCE", float(confidence[0]))
    asked = []
    monkeypatch.setattr("analysis.language.detect_language", lambda t: asked.append(t) or "xx")
    assert detect_languages([text, "   ", ""]) == ["xx", None, None]
    assert asked == [text]


_WORDS = [w for s in SENTENCES for w in s.split()]
_piece = st.one_of(st.sampled_from(_WORDS), st.text(max_size=6),
                   st.sampled_from(["!!!", "...", "#", "@", "http://x.co/a", "\x00", "\n", "😍", "İ", "ß"]))
_case = st.sampled_from([str, str, str.upper, str.lower, str.title])
_text = st.lists(st.tuples(_case, _piece), max_size=30).map(lambda parts: " ".join(c(p) for c, p in parts))
# The project's profile (tests/conftest.py); each example is a batch of texts.
_profile = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@settings(_profile)
@given(st.lists(_text, min_size=1, max_size=12))
def test_fuzzed_batches_get_py3langids_answers(texts):
    assert detect_languages(texts) == [detect_language(t) for t in texts]
    assert features_differ(texts) == []
    assert confidence_within_bound(texts) == []


@pytest.mark.parametrize("threshold", [MIN_CONFIDENCE])
def test_the_bound_is_small_enough_to_decide_nearly_everything(threshold):
    """The fallback is for the rare text near the threshold: the bound is a tiny fraction."""
    model = _batch_model()
    texts = (dev_texts() or demo_texts(500))[:500]  # the dev set where the checkout has it
    _, confidence, slack, terms = model.scores([model.encode(t) for t in texts if t.strip()])
    undecided = np.abs(confidence - threshold) <= slack * confidence
    assert undecided.sum() <= 2
    assert float(np.median(slack)) < 1e-2
