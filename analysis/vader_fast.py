"""An exact, faster re-implementation of vaderSentiment 3.3.2's ``polarity_scores``.

``FastVader().polarity_scores(text)`` returns what
``vaderSentiment.SentimentIntensityAnalyzer().polarity_scores(text)`` returns, bit for
bit (pos, neu, neg and compound compare equal as ``float.hex``), including the
reference's quirks and bugs, which are part of the scores users have stored:

* emoji are replaced one code point at a time, so multi-code-point emoji keys never
  match (a flag or a skin-tone emoji is read as its parts, if at all);
* a token loses its leading and trailing punctuation only if more than 2 characters remain;
* an ALL-CAPS sentiment word with a valence of exactly 0 gets ``-C_INCR`` (``else`` branch);
* "no" before a lexicon word scores 0 and negates up to three words after it;
* the "but" rule finds each sentiment's *first equal value* (``list.index``), so with
  repeated values it re-weights the earlier one again, not the one at hand;
* "never so/this" and "without doubt" follow the reference's operator precedence;
* idioms / special cases and "kind of" / "sort of" n-grams are only looked at from the
  third word-distance (when the word three before is not a lexicon word), as upstream;
* the sign of zero, the int/float type of each sentiment and the order of every float
  operation are kept, because ``round(-0.0, 4)`` is ``-0.0`` and ``sum`` starts from int 0.

Where the time went upstream, and what this does instead (same results):

* a Python loop over every character with string concatenation to find emoji: here a
  C-level ``isascii`` / ``isdisjoint`` test skips texts without emoji (no emoji key is
  ASCII), and one ``str.replace`` per emoji present replaces them in the others;
* each lexicon word rebuilt the whole lower-cased token list up to five times
  (negation, idioms, "but"): here every token is lower-cased once;
* idioms were joined into strings: here tuples, looked up only when one of the four
  words concerned can start an idiom or booster phrase;
* a text with no lexicon word (43 % of the dev tweets, a third of the demo posts) is
  neutral whatever else it holds, so its result is returned without running the rules.

About 3.5x upstream's speed on real tweets and demo posts (bench/vader_speed.py).

The lexicon, emoji lexicon and rule tables are the installed vaderSentiment package's own
(loaded by its ``SentimentIntensityAnalyzer.__init__``; this class is a subclass), so a
lexicon change in the package is picked up, and ``tests/analysis/test_vader_fast.py``
checks equality with the package on real, demo and fuzzed texts.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

from vaderSentiment import vaderSentiment as _reference
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

_PUNCTUATION = string.punctuation


def _neutral() -> dict[str, float]:
    return {"neg": 0.0, "neu": 1.0, "pos": 0.0, "compound": 0.0}


class FastVader(SentimentIntensityAnalyzer):
    """Drop-in for ``SentimentIntensityAnalyzer`` with an exact, faster ``polarity_scores``.

    The rule constants are class attributes so that a test can derive a copy with one
    rule changed and show that the equality checks notice (tests/analysis).
    """

    # The vaderSentiment release whose rules this reproduces (analysis.sentiment uses
    # FastVader only when that is the installed one).
    reproduces = "3.3.2"

    n_scalar: float = _reference.N_SCALAR
    c_incr: float = _reference.C_INCR
    but_before: float = 0.5
    but_after: float = 1.5
    ep_cap: int = 4

    def __init__(self, lexicon_file: str = "vader_lexicon.txt",
                 emoji_lexicon: str = "emoji_utf8_lexicon.txt") -> None:
        super().__init__(lexicon_file, emoji_lexicon)
        boosters = _reference.BOOSTER_DICT
        self._boosters = dict(boosters)
        # Upstream checks the booster list before the lexicon: a booster is never scored.
        self._sentiment_words = {w: v for w, v in self.lexicon.items() if w not in boosters}
        self._negations = frozenset(_reference.NEGATE)
        # Tokens never hold whitespace, so "a b" == "c d" exactly when (a, b) == (c, d).
        self._special = {tuple(k.split(" ")): v for k, v in _reference.SPECIAL_CASES.items() if " " in k}
        self._booster_ngrams = {tuple(k.split(" ")): v for k, v in boosters.items() if " " in k}
        # Every idiom and booster phrase starts with one of these words.
        self._phrase_starts = frozenset(key[0] for key in (*self._special, *self._booster_ngrams))
        # Upstream iterates code points, so only one-code-point keys can ever match.
        single = sorted(k for k in self.emojis if len(k) == 1)
        self._emoji_chars = frozenset(single)
        self._ascii_emoji = any(c.isascii() for c in single)
        # Upstream puts a space before a description unless the character before the
        # emoji is a space (or it starts the text). Always putting one there changes
        # nothing: the text is only ever split on whitespace and counted for "!" and "?".
        self._emoji_spaced = {c: f" {self.emojis[c]}" for c in single}
        # One str.replace per emoji present is much faster than str.translate (which
        # raises and clears a KeyError inside for every other character), and gives the
        # same text as long as no description holds an emoji of its own.
        self._emoji_table = None
        if any(not self._emoji_chars.isdisjoint(description) for description in self._emoji_spaced.values()):
            self._emoji_table = {ord(c): description for c, description in self._emoji_spaced.items()}

    def polarity_scores(self, text: Any) -> dict[str, float]:
        if type(text) is not str:
            # Whatever upstream does with non-str input (it raises for most), do the same.
            return super().polarity_scores(text)
        ascii_text = text.isascii()
        if self._ascii_emoji or not ascii_text:
            present = self._emoji_chars.intersection(text)
            if present:
                text = self._describe_emoji(text, present)
                ascii_text = text.isascii()
        # Upstream strips the text here; split() and count() below ignore the ends anyway.
        # Upstream's SentiText: split, then _strip_punc_if_word on each token (inlined:
        # a call per token costs more than the strip), then lower-cased word by word.
        if ascii_text:
            # ASCII lower-casing maps letters to letters one for one and leaves
            # punctuation alone, so lower-casing the text first gives the same words.
            lw = [s if len(s := t.strip(_PUNCTUATION)) > 2 else t for t in text.lower().split()]
        else:
            lw = [(s if len(s := t.strip(_PUNCTUATION)) > 2 else t).lower() for t in text.split()]
        if not lw:
            return {"neg": 0.0, "neu": 0.0, "pos": 0.0, "compound": 0.0}
        if self._sentiment_words.keys().isdisjoint(lw):
            return _neutral()
        return self._score(text, lw)

    def _describe_emoji(self, text: str, present: set[str]) -> str:
        """Upstream's emoji replacement, one code point at a time (see __init__)."""
        if self._emoji_table is not None:
            return text.translate(self._emoji_table)
        spaced = self._emoji_spaced
        for emoji in present:
            text = text.replace(emoji, spaced[emoji])
        return text

    def _score(self, text: str, lw: list[str]) -> dict[str, float]:
        lexicon = self.lexicon
        sentiment_words = self._sentiment_words
        boosters = self._boosters
        negations = self._negations
        n_scalar = self.n_scalar
        c_incr = self.c_incr
        n = len(lw)
        last = n - 1
        if text.islower():
            # No upper-case letter at all: no word is ALL CAPS, so no cap differential.
            is_cap_diff = False
            tokens: list[str] = []
        else:
            # Stripping removes only uncased characters, so a token is ALL CAPS exactly
            # when its stripped word is; the tokens line up with lw.
            tokens = text.split()
            is_cap_diff = 0 < sum(map(str.isupper, tokens)) < n
        phrase_starts = self._phrase_starts
        check_phrases = not phrase_starts.isdisjoint(lw)

        def boosted(scalar: float, valence: Any, j: int, damping: float) -> float:
            # upstream's scalar_inc_dec for the booster word at j, then its damping for
            # the distance (none for the word right before, 0.95, 0.9)
            if valence < 0:
                scalar *= -1
            if is_cap_diff and tokens[j].isupper():
                if valence > 0:
                    scalar += c_incr
                else:
                    scalar -= c_incr
            if damping and scalar != 0:
                scalar = scalar * damping
            return scalar

        sentiments: list[Any] = [0] * n
        hits = [i for i, w in enumerate(lw) if w in sentiment_words]
        for i in hits:
            item_lowercase = lw[i]
            if item_lowercase == "kind" and i < last and lw[i + 1] == "of":
                continue
            lex_valence = valence = sentiment_words[item_lowercase]
            if item_lowercase == "no" and i != last and lw[i + 1] in lexicon:
                valence = 0.0
            if (i > 0 and lw[i - 1] == "no") or (i > 1 and lw[i - 2] == "no") \
                    or (i > 2 and lw[i - 3] == "no" and lw[i - 1] in ("or", "nor")):
                valence = lex_valence * n_scalar
            if is_cap_diff and tokens[i].isupper():
                if valence > 0:
                    valence += c_incr
                else:
                    valence -= c_incr

            # The three preceding words (upstream's start_i 0, 1, 2), each skipped when it
            # is a lexicon word: a booster's scalar, then the negation check.
            if i > 0:
                w1 = lw[i - 1]
                if w1 not in lexicon:
                    scalar = boosters.get(w1)
                    valence = valence + (0.0 if scalar is None else boosted(scalar, valence, i - 1, 0))
                    if w1 in negations or "n't" in w1:
                        valence = valence * n_scalar
                if i > 1:
                    w2 = lw[i - 2]
                    if w2 not in lexicon:
                        scalar = boosters.get(w2)
                        valence = valence + (0.0 if scalar is None else boosted(scalar, valence, i - 2, 0.95))
                        if w2 == "never" and (w1 == "so" or w1 == "this"):
                            valence = valence * 1.25
                        elif w2 == "without" and w1 == "doubt":
                            pass
                        elif w2 in negations or "n't" in w2:
                            valence = valence * n_scalar
                    if i > 2:
                        w3 = lw[i - 3]
                        if w3 not in lexicon:
                            scalar = boosters.get(w3)
                            valence = valence + (0.0 if scalar is None else boosted(scalar, valence, i - 3, 0.9))
                            # upstream's precedence: (never and w2 in so/this) or (w1 in so/this)
                            if w3 == "never" and (w2 == "so" or w2 == "this") or (w1 == "so" or w1 == "this"):
                                valence = valence * 1.25
                            elif w3 == "without" and (w2 == "doubt" or w1 == "doubt"):
                                pass
                            elif w3 in negations or "n't" in w3:
                                valence = valence * n_scalar
                            if check_phrases and (item_lowercase in phrase_starts or w1 in phrase_starts
                                                  or w2 in phrase_starts or w3 in phrase_starts):
                                valence = self._special_idioms(valence, lw, i, n)

                # "least" check
                if w1 == "least" and w1 not in lexicon:
                    if i > 1:
                        if w2 != "at" and w2 != "very":
                            valence = valence * n_scalar
                    else:
                        valence = valence * n_scalar
            sentiments[i] = valence

        if "but" in lw:
            self._but_rescale(lw.index("but"), sentiments)
        return self._valence_dict(sentiments, hits, text)

    def _special_idioms(self, valence: Any, lw: list[str], i: int, n: int) -> Any:
        """Upstream's _special_idioms_check (only reached with i > 2), on tuples."""
        special = self._special
        w0, w1, w2, w3 = lw[i], lw[i - 1], lw[i - 2], lw[i - 3]
        three_two_one = (w3, w2, w1)
        three_two = (w3, w2)
        two_one = (w2, w1)
        for seq in ((w1, w0), (w2, w1, w0), two_one, three_two_one, three_two):
            if seq in special:
                valence = special[seq]
                break
        if n - 1 > i:
            zero_one = (w0, lw[i + 1])
            if zero_one in special:
                valence = special[zero_one]
        if n - 1 > i + 1:
            zero_one_two = (w0, lw[i + 1], lw[i + 2])
            if zero_one_two in special:
                valence = special[zero_one_two]
        ngrams = self._booster_ngrams
        for ngram in (three_two_one, three_two, two_one):
            if ngram in ngrams:
                valence = valence + ngrams[ngram]
        return valence

    def _but_rescale(self, bi: int, sentiments: list[Any]) -> None:
        """Upstream's _but_check, bug included: ``index`` finds the first *equal* value,
        which with repeated values is an earlier position than the one iterated (its
        pop + insert at one index is an assignment)."""
        before, after = self.but_before, self.but_after
        for sentiment in sentiments:
            si = sentiments.index(sentiment)
            if si < bi:
                sentiments[si] = sentiment * before
            elif si > bi:
                sentiments[si] = sentiment * after

    def _valence_dict(self, sentiments: list[Any], hits: list[int], text: str) -> dict[str, float]:
        """Upstream's score_valence with _punctuation_emphasis and _sift_sentiment_scores
        inlined, same operations in the same order."""
        sum_s = float(sum(sentiments))
        ep_count = text.count("!")
        if ep_count > self.ep_cap:
            ep_count = self.ep_cap
        ep_amplifier = ep_count * 0.292
        qm_count = text.count("?")
        qm_amplifier: float = 0
        if qm_count > 1:
            if qm_count <= 3:
                qm_amplifier = qm_count * 0.18
            else:
                qm_amplifier = 0.96
        punct_emph_amplifier = ep_amplifier + qm_amplifier
        if sum_s > 0:
            sum_s += punct_emph_amplifier
        elif sum_s < 0:
            sum_s -= punct_emph_amplifier

        compound = _reference.normalize(sum_s)
        # Only the lexicon words' positions can hold a non-zero sentiment ("but" scales
        # a zero to a zero), so the sums visit those, in upstream's order.
        pos_sum = 0.0
        neg_sum = 0.0
        non_zero = 0
        for i in hits:
            sentiment_score = sentiments[i]
            if sentiment_score > 0:
                pos_sum += (float(sentiment_score) + 1)
                non_zero += 1
            elif sentiment_score < 0:
                neg_sum += (float(sentiment_score) - 1)
                non_zero += 1
        neu_count = len(sentiments) - non_zero

        abs_neg = abs(neg_sum)
        if pos_sum > abs_neg:
            pos_sum += punct_emph_amplifier
        elif pos_sum < abs_neg:
            neg_sum -= punct_emph_amplifier

        total = pos_sum + abs(neg_sum) + neu_count
        return {"neg": round(abs(neg_sum / total), 3),
                "neu": round(abs(neu_count / total), 3),
                "pos": round(abs(pos_sum / total), 3),
                "compound": round(compound, 4)}


def _exact(scores: dict[str, float]) -> tuple[tuple[str, str], ...]:
    """A result as its keys, in order, and its values as float.hex: -0.0 differs from 0.0."""
    return tuple((key, float.hex(float(value))) for key, value in scores.items())


def mismatches(candidate: SentimentIntensityAnalyzer, texts: Iterable[str],
               reference: SentimentIntensityAnalyzer | None = None) -> list[str]:
    """The texts on which ``candidate.polarity_scores`` differs from vaderSentiment's by a
    bit, a key or the order of keys (the tests' and the bench's one comparison)."""
    reference = reference or SentimentIntensityAnalyzer()
    return [text for text in texts if _exact(candidate.polarity_scores(text)) != _exact(reference.polarity_scores(text))]
