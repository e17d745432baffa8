"""Language of a mention, where the platform gives none.

VADER's lexicon is English: a German complaint scores as neutral, which would pull a
brand's NSS toward zero. So a mention is scored only by a scorer that declares its
language (analysis.sentiment.covers); with none configured for it, it is stored and
counted in volume but not scored ("unscored"), and every mood view says how many.

Detection uses py3langid (langid.py's model ships inside the package: nothing is
downloaded). Short texts are guesswork ("lol" comes out as Sesotho with 3 % confidence),
so a detection counts only at MIN_CONFIDENCE or above; below it the language stays
unknown, and unknown is scored, since the brand terms that matched are English words
more often than not and a wrong-language text mostly scores neutral anyway.

``detect_languages`` gives ``detect_language``'s answer for many texts at once, at a
fraction of the cost (py3langid walks each text's bytes through its automaton in Python,
about 100 us a post, more than VADER). It computes the same thing in numpy, for a whole
batch:

* Features. py3langid's automaton is the Aho-Corasick automaton of a trie of byte strings
  at most WINDOW bytes long (``window_automaton_holds`` proves it from the model's
  tables; tests/analysis/test_language_batch.py runs that proof), so its state after any
  byte is the one reached from the start by the last WINDOW bytes alone: every position
  of every text is computed at once, in WINDOW vectorised steps. Texts are joined with a
  byte that sends every state back to the start (PAD), so each begins afresh, as it does
  in py3langid. The counts per (text, feature) are then exact integers, as py3langid's.
* Scores. py3langid's float32 products cannot be repeated bit for bit (their summation
  order is BLAS's), so the batch computes them (a sparse matrix product) together with a
  bound of the rounding both computations may make, from the standard bound on a float
  dot product. A text whose confidence is within that bound of MIN_CONFIDENCE, or that
  is anything but plain (no features), is detected by ``detect_language`` itself; every
  other text's answer is the same as py3langid's, because the answer only depends on
  which side of MIN_CONFIDENCE the best language's confidence falls, and (above it) on
  which language that is, and both are decided with the bound to spare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

MIN_CONFIDENCE = 0.8
# The trie's depth: the longest byte string py3langid's automaton recognises.
WINDOW = 6
# A byte no string of the trie contains: from any state it leads back to the start.
PAD = 0
# Bits for a feature's number in a (text, feature) key.
_FEATURE_BITS = 20
# float32's unit roundoff.
_U = 2.0 ** -24


@cache
def _identifier():  # type: ignore[no-untyped-def]
    # Loading the model takes ~0.3 s: once per process, and only if something needs it.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text``, or None when the detector is not confident."""
    if not text or not text.strip():
        return None
    lang, confidence = _identifier().classify(text)
    return lang if confidence >= MIN_CONFIDENCE else None


def detect_languages(texts: Sequence[str]) -> list[str | None]:
    """``detect_language`` of each text (the same answer for every text), computed for
    all of them at once; how, and why it is the same, in the module docstring. The model
    is loaded only when some text needs it."""
    if not any(text and text.strip() for text in texts):
        return [None] * len(texts)
    return _batch_model().detect(texts)


@cache
def _batch_model() -> _BatchModel:
    return _BatchModel(_identifier())


class _BatchModel:
    """py3langid's model as numpy arrays for whole batches of texts."""

    def __init__(self, identifier: Any) -> None:
        self.identifier = identifier
        self.nextmove = np.frombuffer(identifier.tk_nextmove, dtype=identifier.tk_nextmove.typecode)
        rowbase = np.frombuffer(identifier.tk_row, dtype=identifier.tk_row.typecode).astype(np.int32) << 8
        self.output = np.asarray(identifier.tk_output, dtype=np.int32)
        # One gather a byte: the row (times 256) of the state each move leads to.
        self.next_row = rowbase[self.nextmove]
        # The first two bytes from the start in one gather.
        self.start_row2 = self.next_row[(self.next_row[rowbase[0] + np.arange(256)][:, None]
                                         + np.arange(256)).ravel()].astype(np.int64)
        self.table = identifier.nb_ptc.astype(np.float32)
        if self.table.shape[0] > 1 << _FEATURE_BITS:
            raise ValueError(f"py3langid's model has {self.table.shape[0]} features, over 2**{_FEATURE_BITS}")
        self.prior = np.asarray(identifier.nb_pc, dtype=np.float32)
        self.feature_max = np.maximum(self.table.max(axis=1), -self.table.min(axis=1)).astype(np.float64)
        self.prior_max = float(np.abs(self.prior).max())
        self.classes = list(identifier.nb_classes)
        self.alias_pairs = list(identifier._alias_pairs)
        self.encode = identifier._encode

    def features(self, encoded: Sequence[bytes]) -> Any:
        """Each text's features and how often each occurs (py3langid's ``visit_counts``),
        as a sparse matrix of counts: one row per text, one column per feature."""
        from scipy.sparse import csr_matrix  # noqa: PLC0415 - scipy loads only where detection runs

        pad = bytes([PAD])
        data = np.frombuffer(pad * (WINDOW - 1) + pad.join(encoded), dtype=np.uint8).astype(np.int64)
        # Position p (from WINDOW - 1 on) ends the window data[p - WINDOW + 1 .. p]: its state
        # is the one those bytes reach from the start, two at once, then one at a time.
        end = len(data)
        row = self.start_row2[(data[:end - WINDOW + 1] << 8) | data[1:end - WINDOW + 2]]
        for back in range(WINDOW - 3, 0, -1):
            row = self.next_row[row + data[WINDOW - 1 - back:end - back]]
        feature = self.output[self.nextmove[row + data[WINDOW - 1:]]]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        # Each position's text (a pad counted with the text before it: it leads to the
        # start, which has no feature), then one sorted key per (text, feature) occurrence.
        text_of = np.repeat(np.arange(len(encoded)), lengths + 1)[:len(feature)]
        key = ((text_of << _FEATURE_BITS) | feature)[feature >= 0]
        key.sort()
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1]))) if len(key) else key
        counts = np.diff(np.append(starts, len(key))).astype(np.float32)
        key = key[starts]
        indptr = np.searchsorted(key >> _FEATURE_BITS, np.arange(len(encoded) + 1))
        return csr_matrix((counts, key & ((1 << _FEATURE_BITS) - 1), indptr), shape=(len(encoded), self.table.shape[0]))

    def scores(self, encoded: Sequence[bytes]) -> tuple[Any, Any, Any, Any]:
        """For each text: its best language (an index into ``classes``), that language's
        confidence, the bound on how far py3langid's confidence may be from it (relative),
        and how many distinct features it has."""
        counts = self.features(encoded)
        terms = np.diff(counts.indptr)
        counts.data = np.log1p(counts.data)
        raw = counts @ self.table
        raw += self.prior
        # py3langid's float32 score and this one each differ from the exact sum by at
        # most (terms + 1) * u * sum_i |a_i * b_ij| (any summation order, FMA or not), plus
        # the logarithms' and the prior's roundings; feature_max bounds the sum. Doubled.
        size = counts @ self.feature_max + self.prior_max
        error = 4.0 * (terms + 16) * _U * size
        scale = 1.0 / np.sqrt(np.maximum(np.fromiter(map(len, encoded), dtype=np.float64, count=len(encoded)), 1))
        logits = raw * scale[:, None]
        top, bottom = logits.max(axis=1), logits.min(axis=1)
        logits -= top[:, None]
        probs = np.exp(logits, out=logits)
        total = probs.sum(axis=1)
        for i, j in self.alias_pairs:  # as py3langid: the alias's probability joins the first
            probs[:, i] += probs[:, j]
            probs[:, j] = 0.0
        best = probs.argmax(axis=1)
        confidence = probs[np.arange(len(encoded)), best] / total
        # Each logit of the two differs by at most ``shift`` (the score's bound, and the
        # float32 scaling and subtraction of py3langid's); then its float32 exp, sum,
        # division and alias sum add a few hundred units of roundoff at most.
        shift = scale * error + 5.0 * _U * np.maximum(np.abs(top), np.abs(bottom))
        slack = np.expm1(2.0 * shift) + 512.0 * _U
        return best, confidence, slack, terms

    def detect(self, texts: Sequence[str]) -> list[str | None]:
        answers: list[str | None] = [None] * len(texts)
        todo = [i for i, text in enumerate(texts) if text and text.strip()]
        if not todo:
            return answers
        best, confidence, slack, terms = self.scores([self.encode(texts[i]) for i in todo])
        surely_in = (confidence * (1.0 - slack) >= MIN_CONFIDENCE + 1e-12).tolist()
        surely_out = (confidence * (1.0 + slack) < MIN_CONFIDENCE - 1e-12).tolist()
        for i, index, yes, no, features in zip(todo, best.tolist(), surely_in, surely_out, terms.tolist()):
            if not features:
                continue  # no feature: py3langid's scores are all equal, far below MIN_CONFIDENCE
            if yes:
                answers[i] = self.classes[index]
            elif not no:  # too close to call within the bound: py3langid decides
                answers[i] = detect_language(texts[i])
        return answers


def window_automaton_holds(identifier: Any = None) -> bool:
    """Whether py3langid's automaton is the Aho-Corasick automaton of a trie of byte
    strings of at most WINDOW bytes in which PAD occurs nowhere: what ``detect_languages``
    relies on. Walked breadth first from the start, the moves to states not reached before
    must form a tree (each such state reached by one move only): the trie, each state's
    string being its path. Every other move must be its failure state's move on the same
    byte (the start's lead back to the start), the failure state of the child of ``u`` by
    ``b`` being the move by ``b`` of ``u``'s failure state. That is how Aho-Corasick builds
    the automaton, whose state after any input is the trie node of the input's longest
    suffix in the trie: with no string longer than WINDOW, the last WINDOW bytes decide it."""
    identifier = identifier or _identifier()
    nextmove = np.frombuffer(identifier.tk_nextmove, dtype=identifier.tk_nextmove.typecode).astype(np.int32)
    rowbase = np.frombuffer(identifier.tk_row, dtype=identifier.tk_row.typecode).astype(np.int64) << 8
    states = len(rowbase)
    byte = np.arange(256)
    depth = np.full(states, -1, dtype=np.int32)
    failure = np.zeros(states, dtype=np.int64)
    depth[0] = 0
    level = np.array([0])
    while len(level):
        moves = nextmove[rowbase[level][:, None] + byte]  # (states of this depth, 256)
        new = depth[moves] < 0
        reached = moves[new]
        if len(np.unique(reached)) != len(reached):
            return False  # a state reached by two moves from the level above: not a tree
        if level[0] == 0:
            otherwise = np.zeros_like(moves)
        else:
            otherwise = nextmove[rowbase[failure[level]][:, None] + byte]
            # The children's failure states, from the failure states' moves by the same byte.
            failure[reached] = otherwise[new]
        if not (moves[~new] == otherwise[~new]).all():
            return False
        depth[reached] = depth[level[0]] + 1
        level = reached
    if (depth < 0).any() or depth.max() > WINDOW:
        return False
    # PAD in no string: every move on it leads to the start.
    return bool((nextmove[rowbase + PAD] == 0).all())
