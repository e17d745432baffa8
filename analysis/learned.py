"""A sentiment scorer trained on one brand's own labels, with honest figures.

Features, for each text: TF-IDF word 1-2-grams and TF-IDF character n-grams inside word
boundaries (each block with sublinear tf and its own L2 norm), stacked with VADER's
compound/pos/neu/neg (standardised, then weighted so a few numbers are not drowned by
thousands of n-grams). Model: multinomial logistic regression with balanced class
weights; its regularisation C is chosen from a small grid by cross-validation.

**Promotion rule** (the product switches a brand to its model only when this holds):

* at least MIN_LABELS labels, and each class at least FOLDS of them;
* stratified k-fold cross-validation (k = FOLDS, fewer only when a class is smaller,
  never under MIN_FOLDS); in each fold the model is trained on the other folds (C chosen
  by an inner cross-validation on that training part only, vocabulary and idf from it
  too) and judged on the held-out fold, and VADER is judged on the *same* held-out
  texts (its label from analysis.sentiment.label_for);
* the per-fold gains d_i = macro-F1(model) - macro-F1(VADER) are paired; the margin is
  t(0.95, k-1) * sd(d) / sqrt(k), a one-sided 95 % bound: the model qualifies only when
  the mean gain exceeds the margin, i.e. the gain's lower bound is above zero.

The model is stored without pickle and scored by analysis.learned_model (its format,
load_model, LearnedScorer); the version is the format version and the payload's sha256,
so the same labels and seed give the same payload, hence the same version.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.stats import t as student_t
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from analysis.agreement import wilson_interval
from analysis.learned_model import (
    FORMAT_VERSION,
    WORD_NGRAMS,
    LearnedScorer,
    ModelFormatError,
    _normalise,
    _vader_matrix,
    load_model,
    version_of,
    write_payload,
)
from analysis.sentiment import LABELS, Score, VaderScorer, label_for

__all__ = ["MIN_LABELS", "ClassFigures", "Evaluation", "LearnedScorer", "ModelFormatError", "TrainedModel",
           "load_model", "train_model"]

MIN_LABELS = 60
FOLDS = 5
MIN_FOLDS = 3
INNER_FOLDS = 3
C_GRID = (0.5, 2.0, 8.0)
CHAR_NGRAMS = (3, 5)
MIN_DF = 2  # an n-gram seen in one training text only teaches the model that text
VADER_WEIGHT = 1.0

# ---------------------------------------------------------------------------- figures

@dataclass(frozen=True)
class ClassFigures:
    precision: float | None
    recall: float | None
    f1: float | None
    precision_ci: tuple[float, float] | None
    recall_ci: tuple[float, float] | None
    support: int


@dataclass(frozen=True)
class Evaluation:
    folds: int
    labels: int
    class_counts: dict[str, int]
    model_f1: tuple[float, ...]
    vader_f1: tuple[float, ...]
    mean_gain: float
    margin: float
    qualifies: bool
    reason: str
    model_classes: dict[str, ClassFigures]
    vader_classes: dict[str, ClassFigures]
    model_f1_ci: tuple[float, float]
    vader_f1_ci: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        def pair(p: tuple[float, float] | None) -> list[float] | None:
            return None if p is None else [_r(p[0]), _r(p[1])]

        def classes(figures: dict[str, ClassFigures]) -> dict[str, dict[str, Any]]:
            return {label: {"precision": _r(f.precision), "recall": _r(f.recall), "f1": _r(f.f1),
                            "precision_ci": pair(f.precision_ci), "recall_ci": pair(f.recall_ci),
                            "support": f.support} for label, f in figures.items()}

        return {"folds": self.folds, "labels": self.labels, "class_counts": dict(self.class_counts),
                "model_f1": [_r(x) for x in self.model_f1], "vader_f1": [_r(x) for x in self.vader_f1],
                "mean_gain": _r(self.mean_gain), "margin": _r(self.margin), "qualifies": self.qualifies,
                "reason": self.reason, "model_classes": classes(self.model_classes),
                "vader_classes": classes(self.vader_classes), "model_f1_ci": pair(self.model_f1_ci),
                "vader_f1_ci": pair(self.vader_f1_ci)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Evaluation:
        try:
            def pair(p: Any) -> tuple[float, float] | None:
                return None if p is None else (float(p[0]), float(p[1]))

            def opt(x: Any) -> float | None:
                return None if x is None else float(x)

            def classes(figures: dict[str, Any]) -> dict[str, ClassFigures]:
                return {label: ClassFigures(opt(f["precision"]), opt(f["recall"]), opt(f["f1"]),
                                            pair(f["precision_ci"]), pair(f["recall_ci"]), int(f["support"]))
                        for label, f in figures.items()}

            return cls(folds=int(d["folds"]), labels=int(d["labels"]),
                       class_counts={str(k): int(v) for k, v in d["class_counts"].items()},
                       model_f1=tuple(float(x) for x in d["model_f1"]),
                       vader_f1=tuple(float(x) for x in d["vader_f1"]),
                       mean_gain=float(d["mean_gain"]), margin=float(d["margin"]), qualifies=bool(d["qualifies"]),
                       reason=str(d["reason"]), model_classes=classes(d["model_classes"]),
                       vader_classes=classes(d["vader_classes"]), model_f1_ci=pair(d["model_f1_ci"]),
                       vader_f1_ci=pair(d["vader_f1_ci"]))
        except KeyError as missing:
            raise ModelFormatError(f"model figures: {missing.args[0]!r} is missing") from None
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ModelFormatError(f"model figures: malformed ({exc})") from None


def _r(x: float | None) -> float | None:
    # Figures are rounded once, when made, so an Evaluation equals its JSON round trip.
    return None if x is None else round(float(x), 4)


def _class_figures(truth: np.ndarray, predicted: np.ndarray) -> dict[str, ClassFigures]:
    out = {}
    for label in LABELS:
        tp = int(np.sum((truth == label) & (predicted == label)))
        called, support = int(np.sum(predicted == label)), int(np.sum(truth == label))
        precision = tp / called if called else None
        recall = tp / support if support else None
        f1 = (2 * precision * recall / (precision + recall) if precision and recall else
              (0.0 if precision is not None and recall is not None else None))
        pci, rci = wilson_interval(tp, called), wilson_interval(tp, support)
        out[label] = ClassFigures(_r(precision), _r(recall), _r(f1),
                                  None if pci is None else (_r(pci[0]), _r(pci[1])),
                                  None if rci is None else (_r(rci[0]), _r(rci[1])), support)
    return out


def _macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(f1_score(truth, predicted, labels=list(LABELS), average="macro", zero_division=0))


def _mean_ci(values: Sequence[float]) -> tuple[float, float]:
    k = len(values)
    mean = float(np.mean(values))
    half = float(student_t.ppf(0.975, k - 1) * np.std(values, ddof=1) / math.sqrt(k)) if k > 1 else 0.0
    return _r(max(0.0, mean - half)), _r(min(1.0, mean + half))


# ---------------------------------------------------------------------------- features
class _Featurizer:
    """Training side: vocabulary, idf and VADER scaling learned from the training rows of
    a count matrix computed once per train_model call (scikit-learn's CountVectorizer),
    so cross-validation never re-tokenises."""

    def __init__(self, counts: tuple[sp.csr_matrix, sp.csr_matrix], vader: np.ndarray, rows: np.ndarray):
        self.columns, self.tfidf = [], []
        for block in counts:
            df = np.asarray((block[rows] > 0).sum(axis=0)).ravel()
            keep = np.flatnonzero(df >= MIN_DF)
            if keep.size == 0:  # a handful of texts sharing no n-gram: keep what they have
                keep = np.flatnonzero(df > 0)
            self.columns.append(keep)
            self.tfidf.append(TfidfTransformer(sublinear_tf=True).fit(block[rows][:, keep]))
        self.mean = vader[rows].mean(axis=0)
        std = vader[rows].std(axis=0)
        self.scale = np.where(std > 1e-12, std, 1.0)

    def transform(self, counts: tuple[sp.csr_matrix, sp.csr_matrix], vader: np.ndarray,
                  rows: np.ndarray) -> sp.csr_matrix:
        blocks = [t.transform(block[rows][:, keep]) for block, keep, t in zip(counts, self.columns, self.tfidf)]
        return _stack(blocks, vader[rows], self.mean, self.scale)


def _stack(blocks: list, vader: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> sp.csr_matrix:
    dense = (vader - mean) / scale * VADER_WEIGHT
    return sp.hstack([*blocks, sp.csr_matrix(dense)], format="csr")


def _fit(x: sp.csr_matrix, y: np.ndarray, c: float, seed: int,
         warm: LogisticRegression | None = None) -> LogisticRegression:
    """``warm``: a model fitted on the same rows with a smaller C, to start from (a
    regularisation path costs about half as many iterations as cold fits)."""
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed,
                               warm_start=warm is not None)
    if warm is not None:
        model.coef_, model.intercept_ = warm.coef_.copy(), warm.intercept_.copy()
    with warnings.catch_warnings():
        # lbfgs may stop a hair short of its tolerance on tiny sets; the figures judge the result.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def _choose_c(counts, vader: np.ndarray, y: np.ndarray, rows: np.ndarray, seed: int) -> float:
    """The grid value with the best mean macro-F1 over an inner stratified CV of ``rows``
    (ties: the smaller C, the simpler model). Features come from all of ``rows``: only the
    choice of C sees the inner held-out texts' idf, never a figure we report."""
    smallest = min(int(np.sum(y[rows] == label)) for label in LABELS)
    k = min(INNER_FOLDS, smallest)
    if k < 2:
        return C_GRID[len(C_GRID) // 2]
    features = _Featurizer(counts, vader, rows)
    x = features.transform(counts, vader, rows)
    yr = y[rows]
    totals = np.zeros(len(C_GRID))
    for train, test in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, yr):
        model = None
        for i, c in enumerate(C_GRID):  # ascending: each fit starts from the last
            model = _fit(x[train], yr[train], c, seed, warm=model)
            totals[i] += _macro_f1(yr[test], model.predict(x[test]))
    return C_GRID[int(np.argmax(totals))]


def _train_counts(texts: Sequence[str]) -> tuple[list[CountVectorizer], tuple[sp.csr_matrix, sp.csr_matrix]]:
    vectorizers = [CountVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, dtype=np.float64),
                   CountVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, dtype=np.float64)]
    normalised = [_normalise(text) for text in texts]
    try:
        counts = tuple(v.fit_transform(normalised).tocsr() for v in vectorizers)
    except ValueError:  # scikit-learn's "empty vocabulary"
        raise ValueError("the labelled texts hold no words of two letters or more to learn from") from None
    return vectorizers, counts


# ---------------------------------------------------------------------------- training

@dataclass(frozen=True)
class TrainedModel:
    payload: bytes
    version: str
    params: dict
    evaluation: Evaluation

    def scorer(self) -> LearnedScorer:
        return load_model(self.payload)


def train_model(texts: Sequence[str], labels: Sequence[str], *, vader: Sequence[Score] | None = None,
                seed: int = 0, progress: Callable[[str], None] | None = None) -> TrainedModel:
    """Fit the scorer on a brand's labelled texts and cross-validate it against VADER.

    ``vader``: VADER's scores of the same texts, if already computed. Raises ValueError
    when the inputs disagree in length, a label is not one of LABELS, or a class has
    fewer than MIN_FOLDS labels (no three-class model can be cross-validated then).
    """
    # One BLAS thread: the fits are many and small, and threaded BLAS calls on vectors this
    # size spin and contend (20x slower on a busy 2-core machine, measured).
    with threadpool_limits(1):
        return _train(texts, labels, vader, seed, progress)


def _train(texts: Sequence[str], labels: Sequence[str], vader: Sequence[Score] | None, seed: int,
           progress: Callable[[str], None] | None) -> TrainedModel:
    say = progress or (lambda message: None)
    texts, y = list(texts), np.asarray(list(labels), dtype=object)
    if len(texts) != len(y):
        raise ValueError(f"{len(texts)} texts but {len(y)} labels")
    unknown = sorted({str(label) for label in y} - set(LABELS))
    if unknown:
        raise ValueError(f"unknown label(s) {', '.join(map(repr, unknown))}: labels are {', '.join(LABELS)}")
    counts_by_class = {label: int(np.sum(y == label)) for label in LABELS}
    short = [f"{label} {n}" for label, n in counts_by_class.items() if n < MIN_FOLDS]
    if short:
        raise ValueError(f"too few labels per class to train and cross-validate ({', '.join(short)}): "
                         f"each class needs at least {MIN_FOLDS}")
    if vader is None:
        say(f"scoring {len(texts):,} texts with VADER")
        vader = VaderScorer().score(texts)
    if len(vader) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(vader)} VADER scores")
    y = y.astype(str)
    vmat = _vader_matrix(vader)
    vader_labels = np.array([label_for(s.compound) for s in vader])
    vectorizers, counts = _train_counts(texts)

    k = min(FOLDS, min(counts_by_class.values()))
    model_f1, vader_f1 = [], []
    oof = np.empty(len(y), dtype=object)
    folds = StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    for i, (train, test) in enumerate(folds, 1):
        say(f"cross-validation fold {i}/{k}")
        c = _choose_c(counts, vmat, y, train, seed)
        features = _Featurizer(counts, vmat, train)
        model = _fit(features.transform(counts, vmat, train), y[train], c, seed)
        oof[test] = model.predict(features.transform(counts, vmat, test))
        model_f1.append(_macro_f1(y[test], oof[test]))
        vader_f1.append(_macro_f1(y[test], vader_labels[test]))

    say("fitting the model on all labels")
    every = np.arange(len(y))
    c = _choose_c(counts, vmat, y, every, seed)
    features = _Featurizer(counts, vmat, every)
    model = _fit(features.transform(counts, vmat, every), y, c, seed)
    payload = _payload(vectorizers, features, model, c)
    evaluation = _evaluation(k, y, counts_by_class, model_f1, vader_f1, oof.astype(str), vader_labels)
    params = {"format": FORMAT_VERSION, "C": c, "C_grid": list(C_GRID), "word_ngrams": list(WORD_NGRAMS),
              "char_ngrams": list(CHAR_NGRAMS), "min_df": MIN_DF, "vader_weight": VADER_WEIGHT, "seed": seed,
              "labels": len(y), "word_features": int(features.columns[0].size),
              "char_features": int(features.columns[1].size)}
    return TrainedModel(payload, version_of(payload), params, evaluation)


def _evaluation(k: int, y: np.ndarray, counts_by_class: dict[str, int], model_f1: list[float],
                vader_f1: list[float], oof: np.ndarray, vader_labels: np.ndarray) -> Evaluation:
    gains = np.array(model_f1) - np.array(vader_f1)
    mean_gain = float(gains.mean())
    margin = float(student_t.ppf(0.95, k - 1) * gains.std(ddof=1) / math.sqrt(k))
    smallest = min(counts_by_class, key=lambda label: counts_by_class[label])
    if len(y) < MIN_LABELS:
        qualifies, reason = False, f"too few labels: {len(y)}, at least {MIN_LABELS}"
    elif counts_by_class[smallest] < FOLDS:
        qualifies, reason = False, (f"too few {smallest} labels: {counts_by_class[smallest]}, "
                                    f"at least {FOLDS} per class")
    elif mean_gain > margin:
        qualifies, reason = True, f"beats VADER by {mean_gain:.2f} macro-F1 (margin {margin:.2f})"
    elif mean_gain > 0:
        qualifies, reason = False, (f"not clearly better than VADER: gain {mean_gain:.2f} macro-F1 "
                                    f"is within the margin {margin:.2f}")
    else:
        qualifies, reason = False, f"no better than VADER: gain {mean_gain:.2f} macro-F1"
    return Evaluation(folds=k, labels=len(y), class_counts=dict(counts_by_class),
                      model_f1=tuple(_r(x) for x in model_f1), vader_f1=tuple(_r(x) for x in vader_f1),
                      mean_gain=_r(mean_gain), margin=_r(margin), qualifies=qualifies, reason=reason,
                      model_classes=_class_figures(y, oof), vader_classes=_class_figures(y, vader_labels),
                      model_f1_ci=_mean_ci(model_f1), vader_f1_ci=_mean_ci(vader_f1))

# ---------------------------------------------------------------------------- payload

def _payload(vectorizers: list[CountVectorizer], features: _Featurizer, model: LogisticRegression,
             c: float) -> bytes:
    order = [list(model.classes_).index(label) for label in LABELS]  # rows stored in LABELS order
    vocab = []
    for vectorizer, keep in zip(vectorizers, features.columns):
        names = vectorizer.get_feature_names_out()
        vocab.append([str(names[i]) for i in keep])
    meta = {"classes": list(LABELS), "C": c, "word_ngrams": list(WORD_NGRAMS), "char_ngrams": list(CHAR_NGRAMS),
            "vader_weight": VADER_WEIGHT, "word_vocabulary": vocab[0], "char_vocabulary": vocab[1]}
    return write_payload(meta, {"word_idf.npy": features.tfidf[0].idf_, "char_idf.npy": features.tfidf[1].idf_,
                                "coef.npy": model.coef_[order], "intercept.npy": model.intercept_[order],
                                "vader_mean.npy": features.mean, "vader_scale.npy": features.scale})
