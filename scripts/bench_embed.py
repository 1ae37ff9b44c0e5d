"""embedd benchmark: the built-in model's texts/s (batch 64), in-process and through embedd, and cache hits at c16.

usage: python -m scripts.bench_embed [--batches 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from scripts.benchlib import process
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


def in_process(batches: int) -> float:
    model = BuiltinModels().get(BUILTIN.removeprefix("builtin/"))
    model.embed(texts(BATCH, 999))  # warm-up
    started = time.perf_counter()
    for b in range(batches):
        model.embed(texts(BATCH, b))
    return batches * BATCH / (time.perf_counter() - started)


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
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the cache-hit run")
    args = parser.parse_args()
    library = in_process(args.batches)
    print(f"  in-process: {library:.0f} texts/s", flush=True)
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
            direct = asyncio.run(cache_hits(embedd, args.seconds, 16))
            via = asyncio.run(cache_hits(gateway, args.seconds, 16))
    print()
    print(f"| built-in {BUILTIN}, batch {BATCH} | texts/s |")
    print("|---|---|")
    print(f"| onnxruntime in-process | {library:.0f} |")
    print(f"| POST /v1/embed (embedd) | {service:.0f} ({service / library:.0%}) |")
    print()
    print("| cache hits, 1 text per request, c16 | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    print(f"| embedd direct | {direct[0]:.0f} | {direct[1]:.2f} | {direct[2]:.2f} |")
    print(f"| through the gateway | {via[0]:.0f} | {via[1]:.2f} | {via[2]:.2f} |")


if __name__ == "__main__":
    main()
