"""FastVader returns exactly what vaderSentiment 3.3.2 returns (issue 16, item 1).

Every comparison goes through analysis.vader_fast.mismatches: the four values as
``float.hex`` (so -0.0 is not 0.0) and the keys in order. The corpora: hand-picked texts
for each rule, demo-stream posts, every tweet of the shared dev set, and a property-based
fuzz built from the lexicon, boosters, negations, idioms, emoji, caps, punctuation runs,
unicode and whitespace. The broken copies at the end show that this comparison, on the
fixed corpora alone, notices when any one rule is off.
"""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment import vaderSentiment as upstream
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from analysis.vader_fast import FastVader, mismatches
from bench.vader_speed import DEV_CSV, demo_texts, dev_texts

# Upstream's compound for this is -0.0 (a tiny negative sum, rounded).
MINUS_ZERO = "RT @TSNScottyMac: If this #DeflateGate thing truly has you upset, I feel sorry for you."

# One or more texts per rule of upstream's polarity_scores, its own examples among them.
RULE_TEXTS = [
    "", "   ", "\n\t", "!!!", "???", "good", "GOOD", "Good", "VADER is smart, handsome, and funny.",
    "VADER is smart, handsome, and funny!", "VADER is very smart, handsome, and funny.",
    "VADER is VERY SMART, handsome, and FUNNY.", "VADER is VERY SMART, handsome, and FUNNY!!!",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!", "VADER is not smart, handsome, nor funny.",
    "At least it isn't a horrible book.", "The book was only kind of good.", "The book was kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today SUX!", "Today only kinda sux! But I'll get by, lol", "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁", "Not bad at all",
    "Sentiment analysis has never been good.", "Sentiment analysis has never been this good!",
    "Sentiment analysis has never so good", "never so very good", "it was never this bad",
    "Most automated sentiment analysis tools are shit.", "With VADER, sentiment analysis is the shit!",
    "Other sentiment analysis tools can be quite bad.", "On the other hand, VADER is quite bad ass",
    "VADER is such a badass!", "Without a doubt, excellent idea.", "Without a doubt, an excellent idea.",
    "without doubt good", "Roger Dodger is one of the most compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "Roger Dodger is one of the least compelling variations on this theme.", "least good", "very least good",
    "Not such a badass after all.", "yeah right, great", "the kiss of death for us", "a cake to die for",
    "my beating heart", "meet at the bus stop", "it is the bomb", "sort of good", "it was just enough fun",
    "kind of", "kind", "no", "NO", "no no", "no good", "no problem", "no, not bad", "no way or nor fun",
    "no love or happy", "good good good but bad bad", "but", "good but", "but good", "good BUT bad but nice",
    "so good but bad but good", "GREAT 😍 but 😡 sad sad", "great😍", "😍great", "😍😍😍", "😍 😡", "love❤️",
    "🇺🇸 flag", "👍🏽 nice", "I HATE it", "I hate IT", "ALL CAPS ALL THE TIME", "NOT GOOD", "not GOOD at all",
    "VERY good", "very GOOD", "the BEST", "isn't good", "ain't bad", "didnt like it", "uh-uh no fun",
    "wow!!", "wow!!!!!!!", "really?", "really??", "really???", "really?????", "what?! great?!", "sad!?!?",
    "Good. Bad. Ugly.", "...good...", "(good)", "#love", "@love", "'good'", "\"happy\"", "go.od",
    "ΑΣ good ΣΑΣ ÉCOLE école", "İstanbul love", "ǅ good", "Straße nice", "good\u00a0bad", "good\u3000bad",
    "good\x1cbad", "fine\u2028fine", "lol rofl lmao", "meh, not bad at all", "Brewly is NOT good :(",
    "so-so coffee tbh", "When you're wrong about something, a good person to follow proper apology etiquette",
    "It was one of the worst movies I've seen, despite good reviews.", "VERY BAD movie!",
    MINUS_ZERO,
]


class RecordedVader(SentimentIntensityAnalyzer):
    """vaderSentiment itself, each text scored once per module (the broken copies below
    are compared with the same texts again)."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[str, dict[str, float]] = {}

    def polarity_scores(self, text: str) -> dict[str, float]:
        try:
            return self._seen[text]
        except KeyError:
            result = self._seen[text] = super().polarity_scores(text)
            return result


@pytest.fixture(scope="module")
def reference() -> RecordedVader:
    return RecordedVader()


@pytest.fixture(scope="module")
def plain_reference() -> SentimentIntensityAnalyzer:
    """vaderSentiment with no record: the fuzz's texts are seen once."""
    return SentimentIntensityAnalyzer()


@pytest.fixture(scope="module")
def fast() -> FastVader:
    return FastVader()


@pytest.fixture(scope="module")
def demo() -> list[str]:
    return demo_texts(3_000)


@pytest.fixture(scope="module")
def all_dev() -> list[str]:
    """The dev set's tweets, or [] where the file is absent."""
    return dev_texts()


@pytest.fixture(scope="module")
def dev(all_dev) -> list[str]:
    texts = all_dev
    if not texts:
        pytest.skip(f"the shared dev set {DEV_CSV} is absent (it lives in shared/data beside the repository)")
    return texts


def test_the_rule_texts_score_exactly_as_vader(fast, reference):
    assert mismatches(fast, RULE_TEXTS, reference) == []
    # The result is a plain dict in upstream's key order.
    assert list(fast.polarity_scores("good")) == ["neg", "neu", "pos", "compound"]


def test_the_comparison_tells_minus_zero_from_zero(reference):
    class ZeroSignLost(FastVader):
        def polarity_scores(self, text: str) -> dict[str, float]:
            return {key: value + 0.0 for key, value in super().polarity_scores(text).items()}

    lost = mismatches(ZeroSignLost(), RULE_TEXTS, reference)
    assert MINUS_ZERO in lost
    assert {str(reference.polarity_scores(text)["compound"]) for text in lost} == {"-0.0"}


def test_the_demo_stream_scores_exactly_as_vader(fast, reference, demo):
    assert len(set(demo)) > 2_000
    assert mismatches(fast, demo, reference) == []


def test_every_dev_tweet_scores_exactly_as_vader(fast, reference, dev):
    assert len(dev) > 19_000
    assert mismatches(fast, dev, reference) == []


def test_an_emoji_lexicon_whose_descriptions_hold_emoji_scores_exactly_as_vader(tmp_path):
    # Upstream replaces code point by code point, so an emoji inside a description stays.
    lexicon = tmp_path / "emoji.txt"
    lexicon.write_text("😍\tlove 😡 it\n😡\tangry 😍 face\n☕\tcoffee 😍\n", encoding="utf-8")
    ours, theirs = FastVader(emoji_lexicon=str(lexicon)), SentimentIntensityAnalyzer(emoji_lexicon=str(lexicon))
    assert mismatches(ours, ["great😍", "😡😍 bad", "☕ good ☕☕", "no ☕"], theirs) == []
    assert ours.polarity_scores("😍")["compound"] != 0  # the lexicon was used


def test_non_text_input_fails_as_vader_does(fast):
    with pytest.raises(TypeError) as ours:
        fast.polarity_scores(5)
    with pytest.raises(TypeError) as theirs:
        SentimentIntensityAnalyzer().polarity_scores(5)
    assert str(ours.value) == str(theirs.value)


# --- property-based fuzz -------------------------------------------------------------

_LEXICON = SentimentIntensityAnalyzer()
_EMOJI_KEYS = sorted(_LEXICON.emojis)
_RULE_WORDS = ["but", "no", "or", "nor", "least", "at", "very", "kind", "of", "sort", "never", "so", "this",
               "without", "doubt", "the", "to", "just", "enough", "right", "yeah", "bad", "ass"]
_PUNCTUATION_RUNS = ["!", "!!", "!!!", "!!!!!", "?", "??", "???", "?????", "?!", "!?", "?!?!", "...", ",", ":)",
                     ":(", ":-D", ":D", "<3", "#", "@", "'", "\"", "(", ")", "-", "—", "…"]
_SEPARATORS = [" ", " ", " ", " ", "  ", "\t", "\n", "", "\u00a0", "\u2003", "\u3000", "\x1c", "\u200b"]

_piece = st.one_of(
    st.sampled_from(sorted(_LEXICON.lexicon)),
    st.sampled_from(sorted(upstream.BOOSTER_DICT)),
    st.sampled_from(upstream.NEGATE),
    st.sampled_from(_RULE_WORDS),
    st.sampled_from(sorted(upstream.SPECIAL_CASES) + sorted(upstream.SENTIMENT_LADEN_IDIOMS)),
    st.sampled_from(_EMOJI_KEYS),
    st.sampled_from(_PUNCTUATION_RUNS),
    st.text(max_size=5),
)
_case = st.sampled_from([str, str, str.upper, str.title, str.capitalize, str.swapcase])
_edge = st.sampled_from(["", "", "", "", *string.punctuation, "!!!", "??", "...", '"', "'s"])


@st.composite
def _word(draw: st.DrawFn) -> str:
    return draw(_edge) + draw(_case)(draw(_piece)) + draw(_edge)


_text = st.lists(st.tuples(_word(), st.sampled_from(_SEPARATORS)), max_size=24).map(
    lambda parts: "".join(word + sep for word, sep in parts))

# The project's profile (tests/conftest.py: "ci" by default, deterministic);
# each example is a batch of texts, so "ci" compares a few thousand.
_profile = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@settings(_profile)
@given(st.lists(_text, min_size=1, max_size=40))
def test_fuzzed_texts_score_exactly_as_vader(fast, plain_reference, texts):
    assert mismatches(fast, texts, plain_reference) == []


# --- the comparison notices a broken rule ---------------------------------------------

class NegationScalar(FastVader):
    n_scalar = -0.75


class CapsIncrement(FastVader):
    c_incr = 0.7


class ButWeight(FastVader):
    but_after = 1.4


class ExclamationCap(FastVader):
    ep_cap = 3


class EmojiGlued(FastVader):
    """Puts no space before an emoji's description: "great😍" reads as one word."""

    def __init__(self) -> None:
        super().__init__()
        self._emoji_spaced = {key: description.lstrip(" ") for key, description in self._emoji_spaced.items()}


@pytest.mark.parametrize("broken", [NegationScalar, CapsIncrement, ButWeight, ExclamationCap, EmojiGlued])
def test_a_copy_with_one_rule_broken_is_caught_on_the_fixed_corpora(broken, reference, demo, all_dev):
    corpora = {"rule texts": RULE_TEXTS, "demo": demo, "dev": all_dev}
    copy = broken()
    caught = {name: len(mismatches(copy, texts, reference)) for name, texts in corpora.items()}
    assert sum(caught.values()) > 0, caught
