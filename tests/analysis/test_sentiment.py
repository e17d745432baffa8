from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from analysis.sentiment import NEGATIVE_THRESHOLD, POSITIVE_THRESHOLD, VaderScorer, label_for, vader_analyzer
from analysis.vader_fast import FastVader


def test_labels_at_the_edges():
    assert label_for(0.05) == "positive"
    assert label_for(0.0499) == "neutral"
    assert label_for(-0.0499) == "neutral"
    assert label_for(-0.05) == "negative"
    assert label_for(0.0) == "neutral"
    assert (POSITIVE_THRESHOLD, NEGATIVE_THRESHOLD) == (0.05, -0.05)


def test_vader_scores_tone_and_names_itself():
    scorer = VaderScorer()
    assert scorer.name == "vader"
    assert scorer.version == "3.3.2" or scorer.version[0].isdigit()
    good, bad, plain = scorer.score(["I love this, it is great!", "This is awful and I hate it", "The store opens at 9"])
    assert good.label == "positive" and good.compound > 0.5
    assert bad.label == "negative" and bad.compound < -0.5
    assert plain.label == "neutral" and plain.compound == 0.0
    assert abs(good.pos + good.neu + good.neg - 1.0) < 0.01


def test_vader_score_matches_the_bare_library():
    texts = ["meh, not bad at all", "Brewly is NOT good :(", "so-so coffee tbh"]
    bare = [SentimentIntensityAnalyzer().polarity_scores(t)["compound"] for t in texts]
    assert [s.compound for s in VaderScorer().score(texts)] == bare


def test_the_vader_scorer_scores_with_fast_vader_under_the_vader_release_it_reproduces():
    # FastVader's scores are vaderSentiment 3.3.2's bit for bit (test_vader_fast.py), so
    # the stored name and version stay those of the library.
    scorer = VaderScorer()
    assert isinstance(scorer._analyzer, FastVader)  # noqa: SLF001 - which analyser scores
    assert (scorer.name, scorer.version) == ("vader", FastVader.reproduces)


def test_another_vader_release_is_scored_by_its_own_analyser():
    assert type(vader_analyzer("3.4.0")) is SentimentIntensityAnalyzer
    assert isinstance(vader_analyzer(FastVader.reproduces), FastVader)
