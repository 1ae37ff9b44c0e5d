"""vectord benchmark: recall@10, query latency and upsert rate through the gateway vs usearch in-process.

Data: N vectors of 384 dimensions with realistic structure (clusters on a 32-dimensional subspace plus noise;
i.i.d. Gaussian data has no neighbourhoods, so no ANN index beats brute force there). Everything through HTTP runs
as real processes: storaged (local backend in a temp dir), vectord persisting through it, the gateway (1 worker).

usage: python -m scripts.bench_vectors [--n 100000] [--queries 500]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson
from usearch.index import Index

from scripts.benchlib import process
from scripts.net import free_ports
from services.vectord.index import HNSW_CONNECTIVITY, HNSW_EXPANSION_ADD, HNSW_EXPANSION_SEARCH

DIMS = 384
BATCH = 1000
K = 10
Array = npt.NDArray[np.float32]


def dataset(n: int, queries: int, seed: int = 7) -> tuple[Array, Array]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((256, DIMS)).astype(np.float32)
    basis = (rng.standard_normal((32, DIMS)) / np.sqrt(32)).astype(np.float32)
    total = n + queries
    labels = rng.integers(0, len(centers), total)
    latent = rng.standard_normal((total, 32)).astype(np.float32)
    x = 0.6 * centers[labels] + latent @ basis + 0.05 * rng.standard_normal((total, DIMS)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:n], x[n:]


def exact_top(data: Array, queries: Array) -> list[set[int]]:
    out: list[set[int]] = []
    for start in range(0, len(queries), 100):
        scores = queries[start : start + 100] @ data.T
        out += [set(row.tolist()) for row in np.argpartition(-scores, K, axis=1)[:, :K]]
    return out


def recall(found: list[list[int]], truth: list[set[int]]) -> float:
    return float(np.mean([len(set(f) & t) / K for f, t in zip(found, truth, strict=True)]))


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99)] * 1000


class Http:
    """A keep-alive stdlib connection: the client's own cost stays small next to what is measured."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=600)

    def call(self, method: str, path: str, body: object) -> dict[str, object]:
        self.conn.request(method, path, body=orjson.dumps(body), headers={"content-type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise SystemExit(f"{method} {path}: {response.status} {data[:300]!r}")
        parsed: dict[str, object] = orjson.loads(data)
        return parsed


def library_index() -> Index:
    """usearch in-process, shaped as vectord shapes its indexes."""
    return Index(
        ndim=DIMS,
        metric="cos",
        dtype="f32",
        connectivity=HNSW_CONNECTIVITY,
        expansion_add=HNSW_EXPANSION_ADD,
        expansion_search=HNSW_EXPANSION_SEARCH,
    )


def in_process(data: Array, queries: Array, truth: list[set[int]]) -> dict[str, float]:
    index = library_index()
    started = time.perf_counter()
    for start in range(0, len(data), BATCH):
        index.add(np.arange(start, start + BATCH, dtype=np.uint64), data[start : start + BATCH])
    rate = len(data) / (time.perf_counter() - started)
    print(f"  in-process: inserted {len(data)} at {rate:.0f} vectors/s", flush=True)
    latencies, found = [], []
    for q in queries:
        began = time.perf_counter()
        result = index.search(q, K)
        latencies.append(time.perf_counter() - began)
        found.append(result.keys.tolist())
    p50, p99 = percentiles(latencies)
    return {"rate": rate, "p50": p50, "p99": p99, "recall": recall(found, truth)}


def through_http(url: str, data: Array, queries: Array, truth: list[set[int]]) -> dict[str, float]:
    client = Http(url)
    client.call("PUT", "/v1/vectors/bench", {"dimensions": DIMS, "metric": "cosine"})
    started = time.perf_counter()
    for start in range(0, len(data), BATCH):
        items = [{"id": str(i), "vector": data[i]} for i in range(start, start + BATCH)]
        client.conn.request(
            "POST",
            "/v1/vectors/bench/upsert",
            body=orjson.dumps({"items": items}, option=orjson.OPT_SERIALIZE_NUMPY),
            headers={"content-type": "application/json"},
        )
        response = client.conn.getresponse()
        if response.status != 200:
            raise SystemExit(f"upsert: {response.status} {response.read()[:300]!r}")
        response.read()
    rate = len(data) / (time.perf_counter() - started)
    print(f"  {url}: upserted {len(data)} at {rate:.0f} vectors/s", flush=True)
    return {"rate": rate, **query_http(client, queries, truth)}


def query_http(client: Http, queries: Array, truth: list[set[int]]) -> dict[str, float]:
    latencies, found = [], []
    for q in queries:
        body = orjson.dumps({"vector": q, "k": K}, option=orjson.OPT_SERIALIZE_NUMPY)
        began = time.perf_counter()
        client.conn.request("POST", "/v1/vectors/bench/query", body=body, headers={"content-type": "application/json"})
        response = client.conn.getresponse()
        data = response.read()
        latencies.append(time.perf_counter() - began)
        found.append([int(m["id"]) for m in orjson.loads(data)["matches"]])
    p50, p99 = percentiles(latencies)
    return {"p50": p50, "p99": p99, "recall": recall(found, truth)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="vectors in the index (a multiple of 1000)")
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    data, queries = dataset(args.n, args.queries)
    print(f"dataset: {args.n} x {DIMS} (256 clusters on a 32-dim subspace + noise), {args.queries} queries", flush=True)
    truth = exact_top(data, queries)
    library = in_process(data, queries, truth)

    gateway_port, storaged_port, vectord_port = free_ports(3)
    with tempfile.TemporaryDirectory(prefix="bench-vectors-") as tmp:
        config = Path(tmp) / "lakehouse.toml"
        vectord = f"http://127.0.0.1:{vectord_port}"
        config.write_text(
            f'[storaged]\nbind = "127.0.0.1:{storaged_port}"\nroot = "{Path(tmp) / "objects"}"\n'
            f'[vectord]\nbind = "127.0.0.1:{vectord_port}"\nstoraged_url = "http://127.0.0.1:{storaged_port}"\n'
            f'cache_dir = "{Path(tmp) / "vectord-cache"}"\n'
            f'[gateway]\nbind = "127.0.0.1:{gateway_port}"\nworkers = 1\nvectord_url = "{vectord}"\n'
            '[log]\nlevel = "warning"\n'
        )
        serve = ["-m", "shared.stack.cli", "serve"]
        with (
            process(
                "storaged", [*serve, "storaged", "--config", str(config)], f"http://127.0.0.1:{storaged_port}/health"
            ),
            process("vectord", [*serve, "vectord", "--config", str(config)], vectord + "/health"),
            process("gateway", [*serve, "gateway", "--config", str(config)], f"http://127.0.0.1:{gateway_port}/health"),
        ):
            gateway_url = f"http://127.0.0.1:{gateway_port}"
            gateway = through_http(gateway_url, data, queries, truth)
            # Warm, alternating: both paths measured under the same load at the same time.
            direct = query_http(Http(vectord), queries, truth)
            gateway.update(query_http(Http(gateway_url), queries, truth))
            objects = sorted(p for p in (Path(tmp) / "objects" / "vectord").rglob("*") if p.is_file())
            stored = sum(p.stat().st_size for p in objects)

    print()
    print(f"| {args.n} x {DIMS}, k={K} | in-process usearch | vectord direct | through the gateway |")
    print("|---|---|---|---|")
    print(f"| recall@{K} vs exact | {library['recall']:.4f} | {direct['recall']:.4f} | {gateway['recall']:.4f} |")
    print(f"| query p50 ms | {library['p50']:.3f} | {direct['p50']:.3f} | {gateway['p50']:.3f} |")
    print(f"| query p99 ms | {library['p99']:.3f} | {direct['p99']:.3f} | {gateway['p99']:.3f} |")
    added_direct, added_gateway = direct["p50"] - library["p50"], gateway["p50"] - library["p50"]
    print(f"| query p50 added by HTTP ms | — | {added_direct:+.3f} | {added_gateway:+.3f} |")
    print(
        f"| insert vectors/s (batches of {BATCH}) | {library['rate']:.0f} | — | "
        f"{gateway['rate']:.0f} ({gateway['rate'] / library['rate']:.0%}, persisted through storaged) |"
    )
    print(f"\nstoraged holds {len(objects)} vectord objects, {stored / 1e6:.1f} MB (log records + snapshots)")


if __name__ == "__main__":
    main()
