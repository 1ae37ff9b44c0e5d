"""embedd benchmark: the built-in model's texts/s in-process (by onnxruntime's intra-op threads) and through embedd —
batches of 64, one text per request, and 16 concurrent one-text requests — and cache hits at c16.

usage: python -m scripts.bench_embed [--batches 8] [--singles 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from scripts.benchlib import load_average, process
from scripts.net import free_ports
from services.embedd.builtin import BuiltinModels

BUILTIN = "builtin/all-minilm-l6-v2"
BATCH = 64
WORDS = [
    "lakehouse",
    "vector",
    "index",
    "query",
    "storage",
    "embedding",
    "parquet",
    "catalog",
    "gateway",
    "search",
    "model",
    "cache",
]


def texts(count: int, seed: int) -> list[str]:
    """Distinct sentences of 8-24 words (cache misses by construction)."""
    out = []
    for i in range(count):
        n = 8 + (i * 7 + seed) % 17
        out.append(f"{seed}-{i} " + " ".join(WORDS[(i * 3 + j * 5 + seed) % len(WORDS)] for j in range(n)))
    return out


def in_process(batches: int, threads: int, batch: int = BATCH) -> float:
    """texts/s of the model in this process, `batches` runs of `batch` texts, onnxruntime on `threads` threads."""
    model = BuiltinModels(threads=threads).get(BUILTIN.removeprefix("builtin/"))
    model.embed(texts(batch, 999))  # warm-up
    started = time.perf_counter()
    for b in range(batches):
        model.embed(texts(batch, b))
    return batches * batch / (time.perf_counter() - started)


async def misses(url: str, count: int, concurrency: int) -> float:
    """texts/s of `count` distinct one-text requests (cache misses), `concurrency` at a time."""
    queue = iter(texts(count, 5000 + concurrency))  # a seed per run: no run meets another's texts in the cache
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def worker() -> None:
            for text in queue:
                response = await client.post("/v1/embed", json={"texts": [text], "model": BUILTIN})
                response.raise_for_status()
                assert response.json()["cached"] == 0

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - began)


def through_embedd(url: str, batches: int) -> float:
    with httpx.Client(base_url=url, timeout=600) as client:
        client.post("/v1/embed", json={"texts": texts(BATCH, 999), "model": BUILTIN}).raise_for_status()
        started = time.perf_counter()
        for b in range(batches):
            response = client.post("/v1/embed", json={"texts": texts(BATCH, 1000 + b), "model": BUILTIN})
            response.raise_for_status()
            assert response.json()["cached"] == 0
        return batches * BATCH / (time.perf_counter() - started)


async def cache_hits(url: str, seconds: float, concurrency: int) -> tuple[float, float, float]:
    body = orjson.dumps({"texts": ["a cached sentence about the lakehouse"], "model": BUILTIN})
    headers = {"content-type": "application/json"}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        (await client.post("/v1/embed", content=body, headers=headers)).raise_for_status()
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                response = await client.post("/v1/embed", content=body, headers=headers)
                latencies.append(time.perf_counter() - began)
                assert response.json()["cached"] == 1

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - began
    latencies.sort()
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.99)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="batches of 64 texts per throughput run")
    parser.add_argument("--singles", type=int, default=200, help="one-text runs (and requests) per batch-1 case")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the cache-hit run")
    args = parser.parse_args()
    # onnxruntime's intra-op threads: embedd's default (0: one per CPU) and each count up to the CPUs, batch 64 and 1.
    in_process(2, 0)  # the process's first runs are slower (pages of the model, the allocator): not measured
    sweep = {
        threads: (in_process(args.batches, threads), in_process(args.singles, threads, batch=1))
        for threads in (0, *range(1, (os.cpu_count() or 1) + 1))
    }
    for threads, (batched, single) in sweep.items():
        print(f"  in-process, threads={threads}: {batched:.0f} texts/s in 64s, {single:.0f} texts/s one by one")
    library, library_single = sweep[0]
    embedd_port, gateway_port = free_ports(2)
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        config = Path(tmp) / "lakehouse.toml"
        embedd = f"http://127.0.0.1:{embedd_port}"
        gateway = f"http://127.0.0.1:{gateway_port}"
        config.write_text(
            f'[embedd]\nbind = "127.0.0.1:{embedd_port}"\nprovider_url = ""\n'
            f'[gateway]\nbind = "127.0.0.1:{gateway_port}"\nworkers = 1\nembedd_url = "{embedd}"\n'
            '[log]\nlevel = "warning"\n'
        )
        serve = ["-m", "shared.stack.cli", "serve"]
        with (
            process("embedd", [*serve, "embedd", "--config", str(config)], embedd + "/health"),
            process("gateway", [*serve, "gateway", "--config", str(config)], gateway + "/health"),
        ):
            service = through_embedd(embedd, args.batches)
            print(f"  through embedd: {service:.0f} texts/s", flush=True)
            one_by_one = asyncio.run(misses(embedd, args.singles, 1))
            concurrent = asyncio.run(misses(embedd, args.singles, 16))
            direct = asyncio.run(cache_hits(embedd, args.seconds, 16))
            via = asyncio.run(cache_hits(gateway, args.seconds, 16))
    print(f"\nload average {load_average()}\n")
    print("| onnxruntime intra-op threads (in-process) | batch 64, texts/s | batch 1, texts/s |")
    print("|---|---|---|")
    for threads, (batched, single) in sweep.items():
        print(f"| {threads or 'embedd default (0 = one per CPU)'} | {batched:.0f} | {single:.0f} |")
    print()
    print(f"| built-in {BUILTIN} | in-process texts/s | embedd texts/s | ratio |")
    print("|---|---|---|---|")
    print(f"| batch {BATCH} | {library:.0f} | {service:.0f} | {service / library:.2f} |")
    for label, rate in (("one request at a time", one_by_one), ("16 requests at a time", concurrent)):
        print(f"| batch 1, {label} | {library_single:.0f} | {rate:.0f} | {rate / library_single:.2f} |")
    print()
    print("| cache hits, 1 text per request, c16 | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    print(f"| embedd direct | {direct[0]:.0f} | {direct[1]:.2f} | {direct[2]:.2f} |")
    print(f"| through the gateway | {via[0]:.0f} | {via[1]:.2f} | {via[2]:.2f} |")


if __name__ == "__main__":
    main()
