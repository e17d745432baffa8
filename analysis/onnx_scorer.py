"""A local transformer sentiment model, in ONNX, as a scorer (the ``[onnx]`` extra).

Registered as ``onnx`` in the ``listener.scorers`` entry-point group. The user points
a ``[scorers.NAME]`` table at an ONNX sequence-classification model and the Hugging
Face ``tokenizer.json`` that goes with it (docs/onnx.md tells how to export a public
model); nothing is ever downloaded. onnxruntime and tokenizers are imported in
create(), so the module itself (its SETTINGS) loads without the extra installed.

The model's contract:

* inputs: any of ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64 or
  int32), shaped [batch, sequence]; ``input_ids`` is required, and an input of another
  name is refused (this scorer could not know what to feed it);
* output: logits, shaped [batch, len(labels)]: the output named ``logits`` (what
  optimum's text-classification export names it), else the graph's only output.
  ``output = "probabilities"`` says the graph already ends in a softmax; its rows are
  then used as they are, checked to be >= 0 and to sum to 1 in every batch (logits
  cannot be told from probabilities in general, so this is the user's to say).

Score: pos/neu/neg are the class probabilities, compound = p(positive) - p(negative),
label the most probable class.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis.sentiment import LABELS, Score
from connectors.settings import Setting, settings_table

SETTINGS = settings_table(
    Setting("model", str, "", "Path to the ONNX sequence-classification model file (relative to the config file's folder)."),
    Setting("tokenizer", str, "", "Path to the model's Hugging Face tokenizer.json (relative to the config file's folder)."),
    Setting("labels", list, ["negative", "neutral", "positive"],
            "The label of each model output, in output index order (the id2label of the model's config.json)."),
    Setting("output", str, "logits", "What the model outputs: 'logits' (softmax is applied) or 'probabilities'.",
            choices=("logits", "probabilities")),
    Setting("max_length", int, 128, "Tokens per text, special tokens included; longer texts are truncated.",
            min=2, max=100_000),
    Setting("batch_size", int, 32, "Texts run through the model at once.", min=1, max=100_000),
    Setting("device", str, "cpu", "'cpu', or 'cuda' (needs onnxruntime-gpu and a CUDA GPU).", choices=("cpu", "cuda")),
    Setting("threads", int, 0, "CPU threads onnxruntime uses per model run; 0 = onnxruntime's default (all cores).",
            min=0, max=1024),
)
"""Settings of an ``[scorers.NAME]`` table with type = "onnx" (connectors.settings.Setting).
create() checks them again with its own messages, and the files and model themselves."""

NAME = "onnx"
INSTALL_HINT = "pip install 'brandmood-listener[onnx]'"
_FEEDABLE = ("input_ids", "attention_mask", "token_type_ids")
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
# A probability row may be off 1 by float32 rounding, never by more.
_SUM_TOLERANCE = 1e-3
_PROBE_TEXTS = ("ok", "a somewhat longer probe text, to check the shape of the model's output")


class NotProbabilitiesError(RuntimeError):
    """The model was declared to output probabilities and returned rows that are not."""


class OnnxScorer:
    """Scores texts with an ONNX sequence-classification model on onnxruntime.

    ``version`` is "onnx-" and the first 12 hex digits of a sha256 over everything that
    decides a score: the model file's bytes, the tokenizer file's bytes, the labels
    order, the output kind and max_length. A new export, tokenizer or label mapping is
    a new version, so stored scores always say which model made them.
    """

    name = NAME

    def __init__(self, *, session: Any, tokenizer: Any, labels: Sequence[str], output_kind: str,
                 max_length: int, batch_size: int, languages: frozenset[str] | None, version: str) -> None:
        self.version = version
        self.languages = languages
        self._session = session
        self._tokenizer = tokenizer
        self._labels = tuple(labels)
        self._index = {label: i for i, label in enumerate(self._labels)}
        self._probabilities = output_kind == "probabilities"
        self._batch_size = batch_size
        inputs = {i.name: i for i in session.get_inputs()}
        self._inputs = {name: _INT_TYPES[inputs[name].type] for name in _FEEDABLE if name in inputs}
        # A graph exported with a fixed sequence length takes exactly that many tokens.
        dim = inputs["input_ids"].shape[1] if len(inputs["input_ids"].shape) == 2 else None
        self._fixed_length = dim if isinstance(dim, int) else None
        self._max_length = min(max_length, self._fixed_length) if self._fixed_length else max_length
        tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        tokenizer.enable_truncation(max_length=self._max_length)
        self._pad_id = _pad_id(tokenizer)
        self._output = _output_name(session)

    def score(self, texts: Sequence[str]) -> list[Score]:
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(list(texts))
        # Batches of similar lengths waste little compute on padding; results go back
        # to the caller's order. Padding is masked, so a text scores the same in any batch.
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        scores: list[Score | None] = [None] * len(texts)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start:start + self._batch_size]
            probabilities = self._probabilities_of([encodings[i] for i in chunk])
            for i, row in zip(chunk, probabilities):
                scores[i] = self._score_of(row)
        return scores  # type: ignore[return-value]  # every index was filled

    def _probabilities_of(self, encodings: Sequence[Any]) -> np.ndarray:
        length = self._fixed_length or max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), length), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), length), dtype=np.int64)
        types = np.zeros((len(encodings), length), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = encoding.attention_mask
            types[row, :n] = encoding.type_ids
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feed = {name: arrays[name].astype(dtype, copy=False) for name, dtype in self._inputs.items()}
        (out,) = self._session.run([self._output], feed)
        out = np.asarray(out, dtype=np.float64)
        if out.shape != (len(encodings), len(self._labels)):
            raise RuntimeError(f"the ONNX model returned shape {list(out.shape)} for {len(encodings)} texts, "
                               f"expected [{len(encodings)}, {len(self._labels)}] (one column per label)")
        if self._probabilities:
            probabilities = out
            sums = out.sum(axis=1)
            if not ((out >= 0).all() and np.allclose(sums, 1.0, atol=_SUM_TOLERANCE)):
                raise NotProbabilitiesError(f"output = 'probabilities', but the model's rows sum to "
                                            f"{sums.round(4).tolist()}, not 1: set output = 'logits'")
        else:
            shifted = np.exp(out - out.max(axis=1, keepdims=True))  # stable softmax
            probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        if not np.isfinite(probabilities).all():
            # A NaN stored as a score would poison every mood figure averaging it.
            raise RuntimeError("the ONNX model returned a non-finite score")
        return probabilities

    def _score_of(self, row: np.ndarray) -> Score:
        pos, neu, neg = (float(row[self._index[label]]) for label in LABELS)
        label = self._labels[int(np.argmax(row))]
        return Score(pos - neg, pos, neu, neg, label)


def create(settings: Mapping[str, Any], base_dir: Path) -> OnnxScorer:
    """Entry-point factory: loads the model and tokenizer named in ``settings``.

    Raises ValueError naming the key and what is wrong with it (a config error): a
    missing or unreadable file, an out-of-range number, labels that are not an order of
    positive/neutral/negative, a model whose inputs or output do not fit, an
    unavailable device; or that the [onnx] extra is not installed.
    """
    values = {key: settings.get(key, setting.default) for key, setting in SETTINGS.items()}
    try:
        import onnxruntime
        import tokenizers
    except ImportError as error:
        raise ValueError(f"the onnx scorer needs onnxruntime and tokenizers ({error.name} is missing): "
                         f"{INSTALL_HINT}") from None

    labels = _labels(values["labels"])
    output_kind = _choice("output", values["output"], ("logits", "probabilities"))
    device = _choice("device", values["device"], ("cpu", "cuda"))
    max_length = _bounded("max_length", values["max_length"], 2, 100_000)
    batch_size = _bounded("batch_size", values["batch_size"], 1, 100_000)
    threads = _bounded("threads", values["threads"], 0, 1024)
    languages = _languages(settings.get("languages"))
    model_path = _file("model", values["model"], base_dir)
    tokenizer_path = _file("tokenizer", values["tokenizer"], base_dir)

    try:
        tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_path))
    except Exception as error:  # the Rust side raises plain Exception on a bad file
        raise ValueError(f"tokenizer: {tokenizer_path} is not a Hugging Face tokenizer.json ({error})") from None

    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        available = onnxruntime.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise ValueError(f"device: 'cuda' asked for, but this onnxruntime has no CUDA provider "
                             f"(it has {', '.join(available)}): install onnxruntime-gpu in place of "
                             "onnxruntime, or set device = 'cpu'")
        # CPU stays second: onnxruntime runs there the few operators CUDA lacks.
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: its warnings are about graph optimisation
    try:
        session = onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=providers)
    except Exception as error:  # onnxruntime's own exception classes, plain Exception subclasses
        raise ValueError(f"model: {model_path} could not be loaded by onnxruntime ({error})") from None
    if device == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
        # onnxruntime-gpu falls back to CPU, with a warning only, when CUDA or cuDNN
        # libraries are missing: a user who asked for the GPU must know.
        raise ValueError("device: 'cuda' asked for, but onnxruntime could not start its CUDA provider "
                         "(CUDA or cuDNN libraries missing or not matching onnxruntime-gpu?)")
    _check_inputs(session, model_path)

    scorer = OnnxScorer(
        session=session, tokenizer=tokenizer, labels=labels, output_kind=output_kind, max_length=max_length,
        batch_size=batch_size, languages=languages,
        version=_version(model_path, tokenizer_path, labels, output_kind, max_length),
    )
    _probe(scorer, model_path)
    return scorer


def _file(key: str, value: Any, base_dir: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}: required: the path of the model's {_WHAT[key]}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise ValueError(f"{key}: {path} is not a file")
    return path


_WHAT = {"model": "ONNX file", "tokenizer": "tokenizer.json"}


def _labels(value: Any) -> tuple[str, ...]:
    if (not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value)
            or sorted(value) != sorted(LABELS)):
        raise ValueError(f"labels: must list positive, neutral and negative once each, in the model's "
                         f"output order (its config.json id2label), got {value!r}")
    return tuple(value)


def _languages(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple, frozenset, set)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"languages: must be a list of ISO 639-1 codes, got {value!r}")
    return frozenset(value)


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{key}: must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


def _bounded(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key}: must be a whole number from {low} to {high}, got {value!r}")
    return value


def _check_inputs(session: Any, model_path: Path) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    unknown = sorted(set(inputs) - set(_FEEDABLE))
    if unknown or "input_ids" not in inputs:
        raise ValueError(f"model: {model_path} takes inputs {sorted(inputs)}; this scorer feeds input_ids "
                         "(required), attention_mask and token_type_ids only")
    for name, declared in inputs.items():
        if declared.type not in _INT_TYPES:
            raise ValueError(f"model: input {name} of {model_path} is {declared.type}, not int64 or int32")
        if len(declared.shape) != 2:
            raise ValueError(f"model: input {name} of {model_path} has shape {declared.shape}, "
                             "not [batch, sequence]")
        if isinstance(declared.shape[0], int):
            raise ValueError(f"model: {model_path} was exported with a fixed batch size of {declared.shape[0]}; "
                             "export it with a dynamic batch axis")
    _output_name(session, model_path)


def _output_name(session: Any, model_path: Path | None = None) -> str:
    names = [o.name for o in session.get_outputs()]
    if "logits" in names:
        return "logits"
    if len(names) == 1:
        return names[0]
    raise ValueError(f"model: {model_path} has outputs {names}, none named logits: which one holds the scores?")


def _probe(scorer: OnnxScorer, model_path: Path) -> None:
    """Runs the model once, so a model that cannot score fails at load, as a config
    error, not in the middle of a backfill."""
    try:
        scorer._probabilities_of(scorer._tokenizer.encode_batch(list(_PROBE_TEXTS)))
    except NotProbabilitiesError as error:
        raise ValueError(f"output: {error}") from None
    except Exception as error:  # onnxruntime's errors, and the shape check's
        raise ValueError(f"model: {model_path} could not score a test text: {error}") from None


def _pad_id(tokenizer: Any) -> int:
    """The tokenizer's own padding id if its file sets one, else its pad token's id.
    (Padded positions are masked out, so any id gives the same scores; the model's own
    pad id keeps position ids and attention exactly as the model was trained with.)"""
    padding = tokenizer.padding
    if padding:
        return int(padding["pad_id"])
    for token in ("<pad>", "[PAD]", "<|padding|>", "<unk>", "[UNK]"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return 0


def _version(model: Path, tokenizer: Path, labels: Sequence[str], output_kind: str, max_length: int) -> str:
    digest = hashlib.sha256()
    for path in (model, tokenizer):
        # Length-prefixed parts, so no two different inputs hash the same bytes.
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    digest.update(repr((tuple(labels), output_kind, max_length)).encode())
    return f"{NAME}-{digest.hexdigest()[:12]}"
