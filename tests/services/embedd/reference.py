"""A NumPy reference of all-MiniLM-L6-v2: BERT forward pass + sentence-transformers' mean pooling, in float64.

It reads weights two ways: the fp32 safetensors (what sentence-transformers runs) and the int8 tensors inside the
ONNX file embedd runs, dequantized (the same weights). The ONNX file is read with a small protobuf reader, so the
test needs no `onnx` package.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Weights = dict[str, Array]

LAYERS = 6
HEADS = 12
SAFETENSORS_DTYPES = {"F32": np.float32, "I64": np.int64}
# ONNX TensorProto data types used by the file.
ONNX_DTYPES = {1: np.float32, 3: np.int8, 7: np.int64, 9: np.bool_}


def read_safetensors(path: Path) -> Weights:
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    weights: Weights = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] != "F32":
            continue
        start, end = meta["data_offsets"]
        raw = data[8 + header_len + start : 8 + header_len + end]
        weights[name] = np.frombuffer(raw, dtype=np.float32).reshape(meta["shape"]).astype(np.float64)
    return weights


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: ints for varints, bytes for the rest."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        wire = key & 7
        value: int | bytes
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            length, at = _varint(data, at)
            value, at = data[at : at + length], at + length
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield key >> 3, value


def _tensor(message: bytes) -> tuple[str, npt.NDArray[np.generic]]:
    dims: list[int] = []
    name, dtype, raw = "", 0, b""
    for number, value in _fields(message):
        if number == 1 and isinstance(value, int):
            dims.append(value)
        elif number == 1 and isinstance(value, bytes):  # packed dims
            at = 0
            while at < len(value):
                dim, at = _varint(value, at)
                dims.append(dim)
        elif number == 2 and isinstance(value, int):
            dtype = value
        elif number == 8 and isinstance(value, bytes):
            name = value.decode()
        elif number == 9 and isinstance(value, bytes):
            raw = value
    return name, np.frombuffer(raw, dtype=ONNX_DTYPES[dtype]).reshape(dims)


def read_onnx_initializers(path: Path) -> dict[str, npt.NDArray[np.generic]]:
    (graph,) = [value for number, value in _fields(path.read_bytes()) if number == 7 and isinstance(value, bytes)]
    tensors = [_tensor(value) for number, value in _fields(graph) if number == 5 and isinstance(value, bytes)]
    return dict(tensors)


def dequantized_weights(onnx_path: Path, fp32: Weights) -> Weights:
    """The fp32 weights with every matrix replaced by the int8 one the ONNX file holds for it (q * scale).

    The file names most matrices by graph value (val_49_q), so each is matched to the fp32 matrix it approximates.
    """
    tensors = read_onnx_initializers(onnx_path)
    dequantized = [
        tensor.astype(np.float64) * tensors[name.removesuffix("_q") + "_scale"].astype(np.float64)
        for name, tensor in tensors.items()
        if name.endswith("_q")
    ]
    weights = dict(fp32)
    for name, reference in fp32.items():
        kept = tensors.get("inner." + name)
        if kept is not None:  # stored unquantized
            weights[name] = kept.astype(np.float64)
            continue
        if reference.ndim != 2 or name.startswith("pooler."):  # the pooler is not part of the sentence graph
            continue
        candidates = [m for m in dequantized if m.shape == reference.shape] + [
            m.T for m in dequantized if m.T.shape == reference.shape
        ]
        best = min(candidates, key=lambda m: float(np.abs(m - reference).max()))
        if float(np.abs(best - reference).max()) > 0.05 * float(np.abs(reference).max()):
            raise ValueError(f"no int8 tensor in {onnx_path} approximates {name}")
        weights[name] = best
    return weights


def _layer_norm(x: Array, gain: Array, bias: Array) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: Array = (x - mean) / np.sqrt(var + 1e-12) * gain + bias
    return out


_erf = np.vectorize(math.erf, otypes=[np.float64])


def bert(weights: Weights, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Array:
    """Token embeddings (last hidden state) of BERT with `weights` (HF BertModel names)."""
    w = weights
    batch, length = ids.shape
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][np.arange(length)][None]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    hidden = x.shape[-1]
    head = hidden // HEADS
    masked = (1.0 - mask[:, None, None, :]) * -1e9
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."

        def linear(name: str, z: Array, p: str = p) -> Array:
            out: Array = z @ w[p + name + ".weight"].T + w[p + name + ".bias"]
            return out

        def heads(z: Array) -> Array:
            return z.reshape(batch, length, HEADS, head).transpose(0, 2, 1, 3)

        q = heads(linear("attention.self.query", x))
        k = heads(linear("attention.self.key", x))
        v = heads(linear("attention.self.value", x))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head) + masked
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        attended = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = _layer_norm(
            linear("attention.output.dense", attended) + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        inner = linear("intermediate.dense", x)
        inner = 0.5 * inner * (1.0 + _erf(inner / math.sqrt(2.0)))
        x = _layer_norm(
            linear("output.dense", inner) + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]
        )
    return x


def sentence_embeddings(weights: Weights, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Array:
    """sentence-transformers' all-MiniLM-L6-v2: BERT, mean over unmasked tokens, L2 normalised."""
    hidden = bert(weights, ids, mask)
    kept = mask[..., None].astype(np.float64)
    pooled = (hidden * kept).sum(1) / kept.sum(1)
    out: Array = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out
