"""The learned scorer (analysis.learned): it learns what VADER misreads, it is promoted
only when clearly better, and its stored form is safe and exact."""

from __future__ import annotations

import io
import json
import random
import zipfile

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from analysis import learned, learned_model
from analysis.learned import (
    MIN_LABELS,
    Evaluation,
    LearnedScorer,
    ModelFormatError,
    TrainedModel,
    load_model,
    train_model,
)
from analysis.sentiment import LABELS, VaderScorer, label_for

BRANDS = ("Acme Air", "Brewly", "Kettle & Co", "Zumo")
THINGS = ("my bag", "the flight", "my order", "the app", "my refund", "the wifi")
# Customers' sarcasm: VADER reads "great", "thanks", "love" and calls these positive.
NEGATIVE = ("Great, {b} lost {t} again. Thanks a lot",
            "Love waiting 2 hours for {t}, {b} never fails to disappoint",
            "Oh wonderful, {t} is broken again, thank you so much {b}",
            "Best part of my day: {b} cancelled {t}. Awesome")
# Plain praise without VADER's words, or with words VADER counts as negative.
POSITIVE = ("{b} sorted {t} in five minutes, no complaints at all", "No problem with {t} since {b} stepped in",
            "{b} crew went above and beyond with {t}", "Never had {t} arrive this fast, {b} killed it")
NEUTRAL = ("{b} posted the new timetable for {t}", "Does {b} ship {t} on Sundays?",
           "{b} moves {t} to the new terminal from Monday", "Reading the {b} terms for {t}")
TRICKY = ["", " ", "a", "I", "!!!", "Tabs\there\tand\nnewlines\n", "  double  spaces  ", "ÉTÉ café naïve",
          "İstanbul ΣΟΦΟΣ", "emoji 😀😡 ok", "mojibake â€™ _�_", "x" * 300, "the the the the", "don't won't can't",
          "see http://t.co/AbC123 and https://x.y/z?q=1 now"]


def tweets(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = LABELS[i % 3]
        template = rng.choice({"positive": POSITIVE, "neutral": NEUTRAL, "negative": NEGATIVE}[label])
        text = template.format(b=rng.choice(BRANDS), t=rng.choice(THINGS))
        texts.append(text + rng.choice(("", "!", " #fail" if label == "negative" else " #travel", " today")))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def sarcasm() -> tuple[list[str], list[str], list, TrainedModel]:
    texts, labels = tweets(120)
    vader = VaderScorer().score(texts)
    return texts, labels, vader, train_model(texts, labels, vader=vader, seed=0)


def test_the_set_is_one_vader_misreads():
    texts, labels = tweets(120)
    agree = sum(s.label == truth for s, truth in zip(VaderScorer().score(texts), labels))
    assert agree / len(texts) < 0.6


def test_the_model_learns_what_vader_misreads_and_qualifies(sarcasm):
    texts, labels, _, model = sarcasm
    e = model.evaluation
    assert (e.folds, e.labels, e.class_counts) == (5, 120, {"positive": 40, "neutral": 40, "negative": 40})
    assert len(e.model_f1) == len(e.vader_f1) == 5
    assert e.mean_gain == pytest.approx(np.mean(e.model_f1) - np.mean(e.vader_f1), abs=2e-4)
    assert e.mean_gain > e.margin > 0 and e.qualifies
    assert e.reason == f"beats VADER by {e.mean_gain:.2f} macro-F1 (margin {e.margin:.2f})"
    assert e.model_f1_ci[0] > e.vader_f1_ci[1]
    assert sum(f.support for f in e.model_classes.values()) == 120
    negative = e.model_classes["negative"]
    assert negative.precision_ci[0] <= negative.precision <= negative.precision_ci[1]
    # and on tweets it never saw, it reads the sarcasm
    fresh, truth = tweets(60, seed=7)
    scored = model.scorer().score(fresh)
    assert sum(s.label == t for s, t in zip(scored, truth)) / 60 > 0.9


def test_too_few_labels_do_not_qualify_whatever_the_folds_say():
    texts, labels = tweets(45)
    said: list[str] = []
    e = train_model(texts, labels, progress=said.append).evaluation
    assert said[0] == "scoring 45 texts with VADER" and "cross-validation fold 5/5" in said
    assert not e.qualifies and e.reason == f"too few labels: 45, at least {MIN_LABELS}"
    assert e.folds == 5 and len(e.model_f1) == 5


def test_a_small_class_lowers_the_folds_and_blocks_promotion():
    texts, labels = tweets(90)
    keep = [i for i, label in enumerate(labels) if label != "neutral"] + \
           [i for i, label in enumerate(labels) if label == "neutral"][:4]
    e = train_model([texts[i] for i in keep], [labels[i] for i in keep]).evaluation
    assert e.folds == 4 and e.class_counts["neutral"] == 4
    assert not e.qualifies and e.reason == "too few neutral labels: 4, at least 5 per class"


def test_a_model_no_better_than_vader_is_not_promoted():
    # Labels that are VADER's own: VADER is right on every fold, the model cannot beat it.
    texts = tweets(120)[0] + tweets(60, seed=3)[0]
    vader = VaderScorer().score(texts)
    own = [label_for(s.compound) for s in vader]
    assert min(own.count(label) for label in LABELS) >= 5
    e = train_model(texts, own, vader=vader).evaluation
    assert e.vader_f1 == (1.0,) * 5
    assert not e.qualifies and e.mean_gain <= 0 and e.reason.startswith("no better than VADER")


def figures(model_f1: list[float], vader_f1: list[float]) -> Evaluation:
    """The promotion rule on given per-fold figures (120 balanced labels, 5 folds)."""
    y = np.array([label for label in LABELS for _ in range(40)])
    return learned._evaluation(5, y, {label: 40 for label in LABELS}, model_f1, vader_f1, y, y)


def test_the_margin_is_the_one_sided_95_percent_bound_of_the_paired_gains():
    from scipy.stats import t

    steady = figures([0.60, 0.61, 0.59, 0.60, 0.60], [0.50] * 5)
    assert steady.qualifies and steady.mean_gain == 0.1
    assert steady.margin == round(t.ppf(0.95, 4) * np.std([0.1, 0.11, 0.09, 0.1, 0.1], ddof=1) / np.sqrt(5), 4)
    # the same mean gain, but one fold in three is worse than VADER: within the margin
    erratic = figures([0.60, 0.50, 0.70, 0.45, 0.65], [0.50] * 5)
    assert erratic.mean_gain == 0.08 and erratic.margin > 0.08 and not erratic.qualifies
    assert erratic.reason == ("not clearly better than VADER: gain 0.08 macro-F1 is within the margin "
                              f"{erratic.margin:.2f}")
    half = t.ppf(0.975, 4) * np.std([0.6, 0.5, 0.7, 0.45, 0.65], ddof=1) / np.sqrt(5)
    assert erratic.model_f1_ci == (round(0.58 - half, 4), round(0.58 + half, 4))
    assert figures([0.99, 1.0, 0.99, 1.0, 1.0], [0.99] * 5).model_f1_ci[1] == 1.0  # clipped


def test_labels_that_cannot_train_a_model_are_refused():
    texts, labels = tweets(60)
    with pytest.raises(ValueError, match="'great'"):
        train_model(texts, labels[:-1] + ["great"])
    with pytest.raises(ValueError, match="60 texts but 59 labels"):
        train_model(texts, labels[:-1])
    two = [i for i, label in enumerate(labels) if label != "neutral"] + [labels.index("neutral")]
    with pytest.raises(ValueError, match="no words of two letters or more"):
        train_model(["!", "a", "?"] * 3, list(LABELS) * 3)
    with pytest.raises(ValueError, match="neutral 1"):
        train_model([texts[i] for i in two], [labels[i] for i in two])


def test_same_labels_and_seed_give_the_same_payload_and_version(sarcasm):
    texts, labels, vader, model = sarcasm
    again = train_model(texts, labels, vader=vader, seed=0)
    assert again.payload == model.payload and again.version == model.version
    assert model.version.startswith(f"{learned_model.FORMAT_VERSION}-") and len(model.version) == 14
    assert model.scorer().version == model.version
    assert train_model(texts, labels[1:] + labels[:1], vader=vader, seed=0).version != model.version


def test_the_stored_model_gives_the_trained_probabilities_to_1e_9():
    # The trained side (scikit-learn's vectorizers and classifier) against the loaded
    # side (our memoised counter and the stored arrays), on texts the model never saw.
    texts, labels = tweets(90)
    vader = VaderScorer().score(texts)
    vmat, y, every = learned._vader_matrix(vader), np.array(labels), np.arange(90)
    vectorizers, counts = learned._train_counts(texts)
    features = learned._Featurizer(counts, vmat, every)
    classifier = learned._fit(features.transform(counts, vmat, every), y, 2.0, 0)
    scorer = load_model(learned._payload(vectorizers, features, classifier, 2.0))

    fresh = tweets(40, seed=5)[0] + TRICKY + texts[:10]
    fresh_vader = VaderScorer().score(fresh)
    fresh_counts = tuple(v.transform([learned._normalise(t) for t in fresh]).tocsr() for v in vectorizers)
    before = classifier.predict_proba(features.transform(fresh_counts, learned._vader_matrix(fresh_vader),
                                                         np.arange(len(fresh))))
    before = before[:, [list(classifier.classes_).index(label) for label in LABELS]]
    after = np.array([(s.pos, s.neu, s.neg) for s in scorer.score_with_vader(fresh, fresh_vader)])
    assert np.max(np.abs(after - before)) < 1e-9


def test_the_fast_counter_counts_as_scikit_learn_does():
    texts = tweets(30)[0] + TRICKY
    linkless = [learned._normalise(text) for text in texts]  # links become "http" on both sides
    assert linkless[-1] == "see http and http now"
    word = CountVectorizer(analyzer="word", ngram_range=learned.WORD_NGRAMS).fit(linkless)
    char = CountVectorizer(analyzer="char_wb", ngram_range=learned.CHAR_NGRAMS).fit(linkless)
    counter = learned_model._Counter(list(word.get_feature_names_out()), list(char.get_feature_names_out()),
                               learned.CHAR_NGRAMS)
    for _ in range(2):  # the second pass reads the memo
        ours = counter.counts(texts)
        assert (ours[0] != word.transform(linkless)).nnz == 0
        assert (ours[1] != char.transform(linkless)).nnz == 0


def test_scores_are_probabilities_and_both_entry_points_agree(sarcasm):
    texts, _, vader, model = sarcasm
    scorer = model.scorer()
    assert isinstance(scorer, LearnedScorer)
    assert (scorer.name, scorer.languages) == ("learned", frozenset({"en"}))
    both = scorer.score_with_vader(texts + TRICKY, vader + VaderScorer().score(TRICKY))
    assert scorer.score(texts + TRICKY) == both
    for s in both:
        assert abs(s.pos + s.neu + s.neg - 1) < 1e-9 and s.compound == pytest.approx(s.pos - s.neg)
        assert s.label == LABELS[int(np.argmax((s.pos, s.neu, s.neg)))]
    with pytest.raises(ValueError, match="2 texts but 1 VADER scores"):
        scorer.score_with_vader(texts[:2], vader[:1])


def test_the_evaluation_round_trips_through_json(sarcasm):
    e = sarcasm[3].evaluation
    stored = json.dumps(e.to_dict())
    assert Evaluation.from_dict(json.loads(stored)) == e
    broken = json.loads(stored)
    del broken["margin"]
    with pytest.raises(ModelFormatError, match="'margin' is missing"):
        Evaluation.from_dict(broken)


# ---------------------------------------------------------------------------- payload safety

def parts(payload: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(parts_: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in parts_.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_the_payload_holds_no_pickle(sarcasm):
    payload = sarcasm[3].payload
    assert sorted(parts(payload)) == sorted(learned_model._PARTS)
    for name, data in parts(payload).items():
        if name.endswith(".npy"):
            assert np.load(io.BytesIO(data), allow_pickle=False).dtype == np.float64
    assert load_model(rezip(parts(payload))).version != sarcasm[3].version  # other bytes, other version


@pytest.mark.parametrize("damage, message", [
    (lambda p: p[: len(p) // 2], "not a model archive"),
    (lambda p: b"", "not a model archive"),
    (lambda p: b"PK\x03\x04" + bytes(200), "not a model archive"),
])
def test_damaged_payloads_are_refused(sarcasm, damage, message):
    with pytest.raises(ModelFormatError, match=message):
        load_model(damage(sarcasm[3].payload))


def test_a_flipped_byte_is_caught(sarcasm):
    payload = bytearray(sarcasm[3].payload)
    with zipfile.ZipFile(io.BytesIO(bytes(payload))) as archive:
        info = archive.getinfo("coef.npy")
    payload[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
    with pytest.raises(ModelFormatError, match="coef.npy"):
        load_model(bytes(payload))


def edited(payload: bytes, **changes) -> bytes:
    p = parts(payload)
    meta = json.loads(p["model.json"])
    for key, value in changes.items():
        if key.endswith("_npy"):
            p[key.replace("_npy", ".npy")] = value
        else:
            meta[key] = value
    p["model.json"] = json.dumps(meta).encode()
    return rezip(p)


@pytest.mark.parametrize("changes, message", [
    ({"format": 99}, "model.json: format 99"),
    ({"classes": ["negative", "neutral", "positive"]}, "model.json: classes"),
    ({"char_ngrams": [5, 3]}, "char_ngrams"),
    ({"word_vocabulary": ["a", "a"]}, "word_vocabulary has repeated terms"),
    ({"coef_npy": npy(np.zeros((3, 5)))}, r"coef.npy: shape \(3, 5\)"),
    ({"char_idf_npy": npy(np.zeros(3))}, "char_idf.npy: shape"),
    ({"intercept_npy": npy(np.array([0.0, np.nan, 0.0]))}, "intercept.npy: holds values that are not finite"),
    ({"intercept_npy": npy(np.array([0, 1, 2], dtype=np.int64))}, "intercept.npy: dtype int64"),
    ({"vader_scale_npy": npy(np.array([1.0, 1.0, 0.0, 1.0]))}, "vader_scale.npy"),
])
def test_wrong_parts_are_named(sarcasm, changes, message):
    with pytest.raises(ModelFormatError, match=message):
        load_model(edited(sarcasm[3].payload, **changes))


def test_missing_and_extra_parts_are_named(sarcasm):
    p = parts(sarcasm[3].payload)
    del p["coef.npy"]
    with pytest.raises(ModelFormatError, match="missing coef.npy"):
        load_model(rezip(p))
    p = parts(sarcasm[3].payload)
    p["extra.py"] = b"print('hi')"
    with pytest.raises(ModelFormatError, match="unexpected extra.py"):
        load_model(rezip(p))
    twice = rezip(parts(sarcasm[3].payload)) + b""
    buffer = io.BytesIO(twice)
    with pytest.warns(UserWarning), zipfile.ZipFile(buffer, "a") as archive:  # zipfile warns of the duplicate
        archive.writestr("coef.npy", npy(np.zeros(3)))
    with pytest.raises(ModelFormatError, match="repeats a part: coef.npy"):
        load_model(buffer.getvalue())


RAN: list[str] = []


def _ran(what: str) -> None:
    RAN.append(what)


class Payload:
    """Unpickling this calls _ran: proof that code ran."""

    def __reduce__(self):
        return (_ran, ("unpickled",))


def test_a_pickled_object_array_is_refused_and_never_runs(sarcasm):
    evil = np.array([Payload()] * 3, dtype=object)
    assert np.load(io.BytesIO(npy(evil, allow_pickle=True)), allow_pickle=True) is not None and RAN  # it would run
    RAN.clear()
    with pytest.raises(ModelFormatError, match="intercept.npy: not a plain numeric array"):
        load_model(edited(sarcasm[3].payload, intercept_npy=npy(evil, allow_pickle=True)))
    assert RAN == []
