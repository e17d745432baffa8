"""A tiny German sentiment model in ONNX and its tokenizer.json, built on the spot.

The model is a real ONNX graph run by onnxruntime, tokenised by the real tokenizers
library, so the onnx scorer is tested end to end without any downloaded weights:

    input_ids --Gather(embedding)--> [batch, seq, 3] --masked mean--> [batch, 3]
              --MatMul(weights)--> logits [batch, classes]

Embedding dimensions: 0 = positive cue ("super", "toll", "gut"), 1 = negative cue
("schlecht", "furchtbar"), 2 = no cue (every other word and [CLS]). The weights map
them to the logits in the order negative, neutral, positive (cardiffnlp's order).
The masked mean makes padding neutral: a text scores the same alone or padded in a batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

POSITIVE_WORDS = ("super", "toll", "gut")
NEGATIVE_WORDS = ("schlecht", "furchtbar")
OTHER_WORDS = ("das", "ist", "war", "produkt", "der", "service", "die", "lieferung", "heute", "und", "ein", "sehr")
SPECIAL = ("[PAD]", "[UNK]", "[CLS]")
LABELS = ("negative", "neutral", "positive")


def build_tiny_model(directory: Path, *, classes: int = 3, strength: float = 20.0,
                     model_name: str = "model.onnx", output_name: str = "logits",
                     token_type_ids: bool = False, softmax: bool = False,
                     batch: int | str = "batch", sequence: int | str = "sequence") -> tuple[Path, Path]:
    """Writes ``model_name`` and tokenizer.json into ``directory``; returns both paths.

    ``classes`` other than 3 gives a model of the wrong output shape; ``strength`` (how
    much one cue word moves the logits) changes the weights, so the file, not the graph.
    ``token_type_ids`` adds that input (BERT-style exports declare it); ``softmax`` ends
    the graph in a Softmax (it outputs probabilities); ``batch`` and ``sequence`` are the
    input dimensions, names for dynamic axes, numbers for a fixed-shape export.
    """
    directory.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate(SPECIAL + POSITIVE_WORDS + NEGATIVE_WORDS + OTHER_WORDS)}
    embedding = np.zeros((len(vocab), 3), dtype=np.float32)
    for token, i in vocab.items():
        if token in POSITIVE_WORDS:
            embedding[i, 0] = strength
        elif token in NEGATIVE_WORDS:
            embedding[i, 1] = strength
        elif token != "[PAD]":
            # 2, not 1: a text of plain words has logits (0, 2, 0), which no one could
            # mistake for probabilities (tests/analysis/test_onnx_scorer.py relies on it).
            embedding[i, 2] = 2.0
    # Columns: negative <- dim 1, neutral <- dim 2, positive <- dim 0; extra columns are 0.
    weights = np.zeros((3, classes), dtype=np.float32)
    for dim, column in ((1, 0), (2, 1), (0, 2)):
        if column < classes:
            weights[dim, column] = 1.0

    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["embedded"]),
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask", "axis_2"], ["mask_3d"]),
        helper.make_node("Mul", ["embedded", "mask_3d"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis_1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask_3d", "axis_1"], ["count"], keepdims=0),
        helper.make_node("Div", ["summed", "count"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "weights"], ["logits_out" if softmax else output_name]),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits_out"], [output_name], axis=1))
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, [batch, sequence]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [batch, sequence]),
    ]
    if token_type_ids:  # declared and ignored, as a BERT export that never uses segment B
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, [batch, sequence]))
    graph = helper.make_graph(
        nodes, "tiny_german_sentiment", inputs,
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, classes])],
        initializer=[
            numpy_helper.from_array(embedding, "embedding"),
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis_1"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis_2"),
        ],
    )
    # Opset 13 and IR 8: old enough for any onnxruntime of the last years to load.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    model_path = directory / model_name
    onnx.save(model, str(model_path))

    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    # Every text starts with [CLS], as a transformer's does, so an empty text has a token.
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", 2)])
    tokenizer_path = directory / "tokenizer.json"
    tokenizer.save(str(tokenizer_path))
    return model_path, tokenizer_path
