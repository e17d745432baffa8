"""The stored learned scorer: its format, writing and reading it, and scoring with it.

A model is a deterministic zip (fixed timestamps, sorted entries) holding ``model.json``
(format version, n-gram settings, vocabularies, classes, C, VADER feature weight) and
float64 ``.npy`` arrays (idf per vocabulary, coefficients, intercepts, VADER feature
scaling), read with ``allow_pickle=False``: nothing in a payload is ever executed.
load_model checks every part (format, shapes against the vocabularies, finite values)
and names the one that is wrong. Training, figures and the promotion rule are in
analysis.learned.

Scoring counts n-grams with a per-chunk memo (_Counter): the same counts scikit-learn's
CountVectorizer gives (tests/analysis/test_learned.py checks it), several times faster.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import zipfile
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer

from analysis.sentiment import LABELS, Score, VaderScorer

FORMAT_VERSION = 1
WORD_NGRAMS = (1, 2)  # fixed: _Counter looks up unigrams and bigrams
BATCH = 4096
MEMO_LIMIT = 200_000  # whitespace chunks whose n-gram ids are remembered; cleared when full
MAX_PART_BYTES = 256 * 1024 * 1024  # refuse archives that would inflate past this

_WORD_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # CountVectorizer's default token_pattern
_URL = re.compile(r"https?://\S*")
_PARTS = ("char_idf.npy", "coef.npy", "intercept.npy", "model.json", "vader_mean.npy", "vader_scale.npy",
          "word_idf.npy")


class ModelFormatError(ValueError):
    """A stored model (or its figures) cannot be read; the message says which part and why."""


def _normalise(text: str) -> str:
    """Every link becomes "http": a tweet's t.co link is unique, so its n-grams teach
    nothing and each new one would cost the scorer a memo miss."""
    return _URL.sub("http", text)


def _vader_matrix(vader: Sequence[Score]) -> np.ndarray:
    return np.array([(s.compound, s.pos, s.neu, s.neg) for s in vader], dtype=np.float64).reshape(-1, 4)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float64), allow_pickle=False)
    return buffer.getvalue()


def write_payload(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """The zip of ``model.json`` (``meta`` plus the format version) and the float64
    arrays, named as in _PARTS: the same model always gives the same bytes."""
    parts = {"model.json": json.dumps({**meta, "format": FORMAT_VERSION}, sort_keys=True,
                                      ensure_ascii=False).encode("utf-8")}
    parts.update({name: _npy(array) for name, array in arrays.items()})
    if sorted(parts) != sorted(_PARTS):
        raise ValueError(f"a model has the parts {', '.join(_PARTS)}, not {', '.join(sorted(parts))}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(parts):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed: same model, same bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, parts[name])
    return buffer.getvalue()


def version_of(payload: bytes) -> str:
    return f"{FORMAT_VERSION}-{hashlib.sha256(payload).hexdigest()[:12]}"


def load_model(payload: bytes) -> LearnedScorer:
    """The scorer stored in ``payload``; ModelFormatError naming the part that is wrong.
    Nothing in the payload is executed: JSON and plain float arrays only."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        names = sorted(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, TypeError) as exc:
        raise ModelFormatError(f"the model payload is not a model archive ({exc})") from None
    if len(set(names)) != len(names):
        raise ModelFormatError("the model archive repeats a part: " + ", ".join(sorted({n for n in names
                                                                                       if names.count(n) > 1})))
    if names != sorted(_PARTS):
        missing, extra = sorted(set(_PARTS) - set(names)), sorted(set(names) - set(_PARTS))
        raise ModelFormatError("the model archive's parts are wrong: "
                               + "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                                         extra and f"unexpected {', '.join(extra)}"])))

    def read(name: str) -> bytes:
        info = archive.getinfo(name)
        if info.file_size > MAX_PART_BYTES:
            raise ModelFormatError(f"{name}: {info.file_size:,} bytes, more than a model part may hold")
        try:
            return archive.read(name)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
            raise ModelFormatError(f"{name}: cannot be read ({exc})") from None

    try:
        meta = json.loads(read("model.json").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"model.json: not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFormatError("model.json: not a JSON object")
    if meta.get("format") != FORMAT_VERSION:
        raise ModelFormatError(f"model.json: format {meta.get('format')!r}, this version reads {FORMAT_VERSION}")
    word_vocab = _strings(meta, "word_vocabulary")
    char_vocab = _strings(meta, "char_vocabulary")
    if meta.get("classes") != list(LABELS):
        raise ModelFormatError(f"model.json: classes {meta.get('classes')!r}, expected {list(LABELS)}")
    word_range, char_range = _range(meta, "word_ngrams"), _range(meta, "char_ngrams")
    weight = meta.get("vader_weight")
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight):
        raise ModelFormatError("model.json: vader_weight is not a finite number")
    if word_range != WORD_NGRAMS:
        raise ModelFormatError(f"model.json: word_ngrams {list(word_range)}, this version reads "
                               f"{list(WORD_NGRAMS)}")

    n_features = len(word_vocab) + len(char_vocab) + 4
    arrays = {}
    for name, shape in (("word_idf.npy", (len(word_vocab),)), ("char_idf.npy", (len(char_vocab),)),
                        ("coef.npy", (len(LABELS), n_features)), ("intercept.npy", (len(LABELS),)),
                        ("vader_mean.npy", (4,)), ("vader_scale.npy", (4,))):
        try:
            array = np.load(io.BytesIO(read(name)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ModelFormatError(f"{name}: not a plain numeric array ({exc})") from None
        if not isinstance(array, np.ndarray) or array.dtype != np.float64:
            raise ModelFormatError(f"{name}: dtype {getattr(array, 'dtype', type(array))}, expected float64")
        if array.shape != shape:
            raise ModelFormatError(f"{name}: shape {array.shape}, expected {shape} (from the vocabularies)")
        if not np.all(np.isfinite(array)):
            raise ModelFormatError(f"{name}: holds values that are not finite")
        arrays[name] = array
    if np.any(arrays["vader_scale.npy"] <= 0):
        raise ModelFormatError("vader_scale.npy: scales must be positive")
    return LearnedScorer(word_vocab, char_vocab, char_range, float(weight), arrays, version_of(payload))


def _strings(meta: dict, key: str) -> list[str]:
    value = meta.get(key)
    if not isinstance(value, list) or not all(isinstance(term, str) for term in value):
        raise ModelFormatError(f"model.json: {key} is not a list of strings")
    if len(set(value)) != len(value):
        raise ModelFormatError(f"model.json: {key} has repeated terms")
    return value


def _range(meta: dict, key: str) -> tuple[int, int]:
    value = meta.get(key)
    if (not isinstance(value, list) or len(value) != 2 or not all(type(n) is int for n in value)
            or not 1 <= value[0] <= value[1] <= 10):
        raise ModelFormatError(f"model.json: {key} is not an n-gram range [min, max] within 1..10")
    return value[0], value[1]


class _Counter:
    """n-gram counts over a fixed vocabulary, equal to CountVectorizer(vocabulary=...)'s
    (word: lowercase, token_pattern, 1-2-grams; char_wb: per whitespace-separated chunk,
    padded with spaces). Neither kind of unigram crosses whitespace, so each chunk's
    character n-gram ids, word ids and word tokens are memoised: texts share chunks."""

    def __init__(self, word_vocab: list[str], char_vocab: list[str], char_range: tuple[int, int]):
        self.word = {term: i for i, term in enumerate(word_vocab)}
        self.char = {term: i for i, term in enumerate(char_vocab)}
        self.shape = (len(word_vocab), len(char_vocab))
        self._low, self._high = char_range
        self._memo: dict[str, tuple[list[int], list[int], list[str]]] = {}

    def _chunk(self, chunk: str) -> tuple[list[int], list[int], list[str]]:
        # CountVectorizer's char_wb n-grams of one chunk, looked up as they are cut: the
        # chunk padded with spaces, every window of each length, and a chunk no longer than
        # a length counted once, whole, ending the lengths (its "short word" rule).
        get, padded = self.char.get, f" {chunk} "
        size = len(padded)
        chars: list[int] = []
        for n in range(self._low, self._high + 1):
            if size <= n:
                i = get(padded)
                if i is not None:
                    chars.append(i)
                break
            chars.extend([i for i in map(get, [padded[k:k + n] for k in range(size - n + 1)]) if i is not None])
        tokens = _WORD_TOKEN.findall(chunk)
        words = [i for i in map(self.word.get, tokens) if i is not None]
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        entry = self._memo[chunk] = (chars, words, tokens)
        return entry

    def counts(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        word_get, memo_get, chunk_of = self.word.get, self._memo.get, self._chunk
        w_ids: list[int] = []
        c_ids: list[int] = []
        w_ptr, c_ptr = [0], [0]
        for text in texts:
            tokens: list[str] = []
            for chunk in _normalise(text).lower().split():
                chars, words, chunk_tokens = memo_get(chunk) or chunk_of(chunk)
                c_ids.extend(chars)
                w_ids.extend(words)
                tokens.extend(chunk_tokens)
            c_ptr.append(len(c_ids))
            for i in range(len(tokens) - 1):  # bigrams span chunks: looked up per text
                j = word_get(tokens[i] + " " + tokens[i + 1])
                if j is not None:
                    w_ids.append(j)
            w_ptr.append(len(w_ids))
        return _csr(w_ids, w_ptr, self.shape[0]), _csr(c_ids, c_ptr, self.shape[1])


def _csr(ids: list[int], ptr: list[int], width: int) -> sp.csr_matrix:
    indices = np.array(ids, dtype=np.int32)
    matrix = sp.csr_matrix((np.ones(len(indices)), indices, np.array(ptr, dtype=np.int64)),
                           shape=(len(ptr) - 1, width))
    matrix.sum_duplicates()  # repeated n-grams become counts, indices sorted
    return matrix


class LearnedScorer:
    """Scores texts with a model from train_model (a Scorer, analysis.sentiment).
    compound = p(positive) - p(negative); pos/neu/neg are the class probabilities."""

    name = "learned"
    languages = frozenset({"en"})

    def __init__(self, word_vocab: list[str], char_vocab: list[str], char_range: tuple[int, int],
                 vader_weight: float, arrays: dict[str, np.ndarray], version: str):
        self.version = version
        self._counter = _Counter(word_vocab, char_vocab, char_range)
        self._tfidf = []
        for name in ("word_idf.npy", "char_idf.npy"):
            transformer = TfidfTransformer(sublinear_tf=True)
            transformer.idf_ = arrays[name]
            self._tfidf.append(transformer)
        self._mean, self._scale = arrays["vader_mean.npy"], arrays["vader_scale.npy"]
        self._weight = vader_weight
        self._coef_t = np.ascontiguousarray(arrays["coef.npy"].T)
        self._intercept = arrays["intercept.npy"]
        self._vader: VaderScorer | None = None

    def score(self, texts: Sequence[str]) -> list[Score]:
        if self._vader is None:
            self._vader = VaderScorer()
        texts = list(texts)
        return self.score_with_vader(texts, self._vader.score(texts))

    def score_with_vader(self, texts: Sequence[str], vader: Sequence[Score]) -> list[Score]:
        if len(texts) != len(vader):
            raise ValueError(f"{len(texts)} texts but {len(vader)} VADER scores")
        out: list[Score] = []
        for start in range(0, len(texts), BATCH):
            out.extend(self._batch(texts[start:start + BATCH], vader[start:start + BATCH]))
        return out

    def _probabilities(self, texts: Sequence[str], vader: Sequence[Score]) -> np.ndarray:
        """Class probabilities, one row per text, columns in LABELS order."""
        blocks = [t.transform(block) for block, t in zip(self._counter.counts(texts), self._tfidf)]
        dense = (_vader_matrix(vader) - self._mean) / self._scale * self._weight
        logits = np.asarray(sp.hstack(blocks, format="csr") @ self._coef_t[:-4]) + dense @ self._coef_t[-4:]
        logits += self._intercept
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits

    def _batch(self, texts: Sequence[str], vader: Sequence[Score]) -> list[Score]:
        p = self._probabilities(texts, vader)
        best = p.argmax(axis=1)
        return [Score(pos - neg, pos, neu, neg, LABELS[b])
                for (pos, neu, neg), b in zip(p.tolist(), best.tolist())]
