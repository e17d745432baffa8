"""The onnx scorer, run on a real (tiny) ONNX model and tokenizer.json built by the test."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

import onnxruntime
import pytest

from analysis import onnx_scorer
from analysis.onnx_scorer import create
from tests.onnx_fixture import build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def settings(model: Path, tokenizer: Path, **more: object) -> dict[str, object]:
    return {"model": str(model), "tokenizer": str(tokenizer), **more}


def test_german_texts_get_their_labels_and_probabilities(tiny: tuple[Path, Path]) -> None:
    scorer = create(settings(*tiny), Path("/"))
    texts = ["Das Produkt ist super", "Der Service war furchtbar", "Die Lieferung war heute",
             "TOLL TOLL toll", "schlecht und sehr schlecht", ""]
    scores = scorer.score(texts)
    assert [s.label for s in scores] == ["positive", "negative", "neutral", "positive", "negative", "neutral"]
    for s in scores:
        assert s.pos + s.neu + s.neg == pytest.approx(1.0, abs=1e-6)
        assert s.compound == pytest.approx(s.pos - s.neg)
        assert 0 <= min(s.pos, s.neu, s.neg)
    assert scores[0].compound > 0.5 and scores[1].compound < -0.5 and abs(scores[2].compound) < 1e-6
    assert scorer.name == "onnx" and scorer.version.startswith("onnx-") and len(scorer.version) == 17
    assert scorer.score([]) == []


def test_a_text_scores_the_same_alone_and_padded_in_a_batch(tiny: tuple[Path, Path]) -> None:
    long_text = " ".join(["das produkt ist sehr gut und der service war schlecht"] * 8)
    short = "Das ist toll"
    alone = create(settings(*tiny), Path("/")).score([short])[0]
    # One batch: the short texts are padded to the long one's length.
    batched = create(settings(*tiny), Path("/")).score([long_text, short, "schlecht"])
    assert batched[1].label == alone.label == "positive"
    for field in ("compound", "pos", "neu", "neg"):
        assert getattr(batched[1], field) == pytest.approx(getattr(alone, field), abs=1e-6)
    assert batched[2].label == "negative"  # and results come back in the caller's order


def test_batches_of_any_size_give_every_text_its_own_score(tiny: tuple[Path, Path]) -> None:
    texts = ["super", "schlecht", "das ist toll", "furchtbar " * 9, "die lieferung war heute", "gut gut"]
    whole = create(settings(*tiny), Path("/")).score(texts)
    for batch_size in (1, 2, 4):
        scores = create(settings(*tiny, batch_size=batch_size), Path("/")).score(texts)
        assert [s.label for s in scores] == [s.label for s in whole]
        assert [s.pos for s in scores] == pytest.approx([s.pos for s in whole], abs=1e-6)


def test_truncation_at_max_length_keeps_the_first_tokens(tiny: tuple[Path, Path]) -> None:
    text = "super " + "das " * 50 + "furchtbar furchtbar furchtbar furchtbar furchtbar furchtbar"
    assert create(settings(*tiny, max_length=8), Path("/")).score([text])[0].label == "positive"
    assert create(settings(*tiny), Path("/")).score([text])[0].label == "negative"


def test_relative_paths_are_read_from_the_config_folder(tiny: tuple[Path, Path]) -> None:
    model, tokenizer = tiny
    scorer = create({"model": model.name, "tokenizer": tokenizer.name, "languages": ["de", "fr"]}, model.parent)
    assert scorer.languages == frozenset({"de", "fr"})
    assert scorer.score(["super"])[0].label == "positive"


def test_the_labels_order_maps_the_outputs(tiny: tuple[Path, Path]) -> None:
    # The same outputs read in another order: the first column is now called positive.
    scorer = create(settings(*tiny, labels=["positive", "neutral", "negative"]), Path("/"))
    assert scorer.score(["furchtbar"])[0].label == "positive"
    assert scorer.version != create(settings(*tiny), Path("/")).version


def test_the_version_follows_the_model_file(tmp_path: Path) -> None:
    model, tokenizer = build_tiny_model(tmp_path)
    first = create(settings(model, tokenizer), tmp_path).version
    assert create(settings(model, tokenizer), tmp_path).version == first  # stable across loads
    build_tiny_model(tmp_path, strength=21.0)  # same graph, other weights, same paths
    assert create(settings(model, tokenizer), tmp_path).version != first


def test_a_model_feeding_token_type_ids_is_fed_them(tmp_path: Path) -> None:
    model, tokenizer = build_tiny_model(tmp_path, token_type_ids=True, output_name="scores")
    assert create(settings(model, tokenizer), tmp_path).score(["gut"])[0].label == "positive"


def test_probabilities_output_is_checked_against_what_the_model_returns(tiny: tuple[Path, Path]) -> None:
    # The tiny model returns logits: calling them probabilities is caught at load.
    with pytest.raises(ValueError, match=r"^output: .*rows sum to .*not 1: set output = .logits."):
        create(settings(*tiny, output="probabilities"), Path("/"))


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "missing.onnx"}, r"^model: .*missing\.onnx is not a file"),
    ({"tokenizer": "missing.json"}, r"^tokenizer: .*missing\.json is not a file"),
    ({"model": ""}, r"^model: required"),
    ({"labels": ["negative", "positive"]}, r"^labels: must list positive, neutral and negative"),
    ({"labels": ["negative", "neutral", "neutral"]}, r"^labels: "),
    ({"labels": ["neg", "neu", "pos"]}, r"^labels: "),
    ({"device": "gpu"}, r"^device: must be one of 'cpu', 'cuda'"),
    ({"output": "softmax"}, r"^output: "),
    ({"batch_size": 0}, r"^batch_size: "),
    ({"max_length": True}, r"^max_length: "),
    ({"threads": -1}, r"^threads: "),
    ({"languages": "de"}, r"^languages: "),
])
def test_bad_settings_are_named(tiny: tuple[Path, Path], change: dict[str, object], message: str) -> None:
    model, tokenizer = tiny
    with pytest.raises(ValueError, match=message):
        create({**settings(model.name, tokenizer.name), **change}, model.parent)


def test_unreadable_files_are_named(tmp_path: Path, tiny: tuple[Path, Path]) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match=r"^model: .*junk could not be loaded by onnxruntime"):
        create(settings(junk, tiny[1]), tmp_path)
    with pytest.raises(ValueError, match=r"^tokenizer: .*junk is not a Hugging Face tokenizer\.json"):
        create(settings(tiny[0], junk), tmp_path)


def test_a_model_with_the_wrong_output_shape_is_refused(tmp_path: Path) -> None:
    model, tokenizer = build_tiny_model(tmp_path, classes=2)
    with pytest.raises(ValueError, match=r"^model: .*could not score a test text.*expected \[2, 3\]"):
        create(settings(model, tokenizer), tmp_path)


def test_cuda_is_used_when_asked_and_available_else_a_clear_error(tiny: tuple[Path, Path]) -> None:
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        scorer = create(settings(*tiny, device="cuda"), Path("/"))
        assert scorer.score(["super"])[0].label == "positive"
    else:
        with pytest.raises(ValueError, match=r"^device: 'cuda' asked for.*install onnxruntime-gpu"):
            create(settings(*tiny, device="cuda"), Path("/"))


def test_without_the_extra_installed_the_error_says_how_to_install_it(
        tiny: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if onnxruntime were not installed
    with pytest.raises(ValueError, match=r"onnxruntime is missing.*pip install 'brandmood-listener\[onnx\]'"):
        create(settings(*tiny), Path("/"))


def test_registered_as_the_onnx_scorer_with_its_settings() -> None:
    (entry,) = entry_points(group="listener.scorers", name="onnx")
    assert entry.load() is onnx_scorer
    assert set(onnx_scorer.SETTINGS) >= {"model", "tokenizer", "labels", "max_length", "batch_size", "device",
                                         "threads"}
    for spec in onnx_scorer.SETTINGS.values():
        assert isinstance(spec.default, spec.type) and spec.doc


def test_a_model_that_outputs_probabilities_is_read_as_such(tmp_path: Path) -> None:
    model, tokenizer = build_tiny_model(tmp_path, softmax=True)
    as_probabilities = create(settings(model, tokenizer, output="probabilities"), tmp_path).score(["Das ist gut"])[0]
    plain_model, _ = build_tiny_model(tmp_path, model_name="plain.onnx")
    as_logits = create(settings(plain_model, tokenizer), tmp_path).score(["Das ist gut"])[0]
    assert as_probabilities.pos == pytest.approx(as_logits.pos, abs=1e-6) and as_probabilities.label == "positive"


def test_a_fixed_length_export_gets_texts_padded_to_its_length(tmp_path: Path) -> None:
    model, tokenizer = build_tiny_model(tmp_path, sequence=16)
    scorer = create(settings(model, tokenizer), tmp_path)  # max_length 128 > 16: capped to 16
    long_text = "super super " + "das " * 30 + "schlecht " * 10  # cut after 13 das
    assert [s.label for s in scorer.score(["furchtbar", long_text])] == ["negative", "positive"]
    assert scorer.score(["toll"])[0].label == "positive"  # a batch shorter than 16 tokens


def test_a_fixed_batch_export_is_refused(tmp_path: Path) -> None:
    model, tokenizer = build_tiny_model(tmp_path, batch=1)
    with pytest.raises(ValueError, match=r"^model: .*fixed batch size of 1"):
        create(settings(model, tokenizer), tmp_path)
