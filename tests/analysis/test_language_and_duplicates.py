from analysis.duplicates import MIN_WORDS, fingerprint, normalise
from analysis.language import detect_language
from analysis.sentiment import VaderScorer, covers


def test_detects_confident_languages_only():
    assert detect_language("Der Kaffee bei Brewly ist heute wirklich schrecklich und kalt") == "de"
    assert detect_language("I absolutely love the new Brewly cold brew, best coffee ever!") == "en"
    assert detect_language("lol") is None
    assert detect_language("   ") is None


def test_vader_covers_english_and_unknown_only():
    english = VaderScorer.languages
    assert covers(english, "en") and covers(english, "en-GB") and covers(english, "EN") and covers(english, None)
    assert not covers(english, "de") and not covers(english, "ja")


def test_a_scorer_of_any_language_covers_every_text():
    assert covers(None, "ja") and covers(None, None)
    assert covers(frozenset({"de", "fr"}), "de-AT") and not covers(frozenset({"de", "fr"}), None)


def test_fingerprints_ignore_links_handles_case_and_punctuation():
    a = fingerprint("Check out @Brewly NEW cold brew!!! https://t.co/abc #BrewlyMornings")
    b = fingerprint("check out new cold brew #brewlymornings @someone http://x.y/z")
    assert a == b and a is not None
    assert fingerprint("check out the new cold brew today") != a
    assert normalise("Hi_there, @you! #Tag") == "hi there tag"


def test_short_texts_have_no_fingerprint():
    assert fingerprint("same here, love it") is None
    assert fingerprint(" ".join(["word"] * MIN_WORDS)) is not None
