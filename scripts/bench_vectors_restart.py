"""vectord restart benchmark: how long a restarted vectord takes to serve its index, beside what usearch itself
takes to restore the same index (after a clean stop) or to add what the log holds (after kill -9), same run.

storaged and vectord run as real processes (local backend in a temp dir, persistence on). Times are from the new
process's spawn: to its /health answering at all (Python and the imports), and to the first query answered.

usage: python -m scripts.bench_vectors_restart [--n 100000] [--tail 10000]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import orjson
from usearch.index import Index

from scripts.bench_vectors import BATCH, DIMS, Array, dataset, library_index
from scripts.benchlib import ROOT, load_average, process
from scripts.net import free_ports, wait_for_http


def add_batches(index: Index, data: Array, first_key: int = 0) -> float:
    started = time.perf_counter()
    for start in range(0, len(data), BATCH):
        keys = np.arange(first_key + start, first_key + start + len(data[start : start + BATCH]), dtype=np.uint64)
        index.add(keys, data[start : start + BATCH])
    return time.perf_counter() - started


def request(port: int, method: str, path: str, body: object | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        payload = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY) if body is not None else None
        conn.request(method, path, body=payload, headers={"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


def upsert(port: int, data: Array, first_id: int) -> None:
    for start in range(0, len(data), BATCH):
        items = [{"id": str(first_id + i), "vector": data[i]} for i in range(start, min(start + BATCH, len(data)))]
        status, answer = request(port, "POST", "/v1/vectors/bench/upsert", {"items": items})
        if status != 200:
            raise SystemExit(f"upsert: {status} {answer[:300]!r}")


@contextmanager
def vectord(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.stack.cli", "serve", "vectord", "--config", str(config)],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=120)


def time_to_serving(proc: subprocess.Popen[bytes], port: int, query: Array) -> tuple[float, float]:
    """(seconds to /health answering anything, seconds to the first query answered 200) since the spawn."""
    started = time.perf_counter()
    listening = None
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"vectord exited with {proc.returncode}")
        status, _ = request(port, "GET", "/health") if listening is None else (1, b"")
        if listening is None and status:
            listening = time.perf_counter() - started
        if listening is not None:
            status, _ = request(port, "POST", "/v1/vectors/bench/query", {"vector": query, "k": 10})
            if status == 200:
                return listening, time.perf_counter() - started
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="vectors in the snapshot (a multiple of 1000)")
    parser.add_argument("--tail", type=int, default=10_000, help="vectors in the log after it, for kill -9")
    args = parser.parse_args()
    data, queries = dataset(args.n + args.tail, 1)
    base, tail = data[: args.n], data[args.n :]
    print(f"dataset: {args.n} x {DIMS} + a log tail of {args.tail}; load average {load_average()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-vectors-restart-") as tmp:
        library = library_index()
        add_batches(library, base)
        saved = Path(tmp) / "library.usearch"
        started = time.perf_counter()
        library.save(str(saved))
        save_secs = time.perf_counter() - started
        started = time.perf_counter()
        Index.restore(str(saved))
        restore_secs = time.perf_counter() - started
        started = time.perf_counter()
        Index.restore(str(saved), view=True)
        view_secs = time.perf_counter() - started
        tail_add_secs = add_batches(library, tail, first_key=args.n)
        print(f"  usearch: save {save_secs:.3f} s, restore {restore_secs:.3f} s, view {view_secs:.3f} s, "
              f"add of the tail {tail_add_secs:.3f} s", flush=True)  # fmt: skip

        storaged_port, vectord_port = free_ports(2)
        config = Path(tmp) / "lakehouse.toml"
        config.write_text(
            f'[storaged]\nbind = "127.0.0.1:{storaged_port}"\nroot = "{Path(tmp) / "objects"}"\n'
            f'[vectord]\nbind = "127.0.0.1:{vectord_port}"\nstoraged_url = "http://127.0.0.1:{storaged_port}"\n'
            f'cache_dir = "{Path(tmp) / "vectord-cache"}"\n[log]\nlevel = "warning"\n'
        )
        log = Path(tmp) / "vectord.log"
        serve = ["-m", "shared.stack.cli", "serve"]
        storaged_health = f"http://127.0.0.1:{storaged_port}/health"
        with process("storaged", [*serve, "storaged", "--config", str(config)], storaged_health):
            with vectord(config, vectord_port, log) as first:
                wait_for_http(f"http://127.0.0.1:{vectord_port}/health", first)  # nothing to load yet
                request(vectord_port, "PUT", "/v1/vectors/bench", {"dimensions": DIMS, "metric": "cosine"})
                upsert(vectord_port, base, 0)
                started = time.perf_counter()
                first.send_signal(signal.SIGTERM)
                first.wait(timeout=600)
                stop_secs = time.perf_counter() - started
            with vectord(config, vectord_port, log) as second:
                clean_listen, clean_serve = time_to_serving(second, vectord_port, queries[0])
                upsert(vectord_port, tail, args.n)
                second.send_signal(signal.SIGKILL)
                second.wait(timeout=60)
            with vectord(config, vectord_port, log) as third:
                killed_listen, killed_serve = time_to_serving(third, vectord_port, queries[0])
                status, answer = request(vectord_port, "GET", "/v1/vectors/bench")
                count = orjson.loads(answer)["count"] if status == 200 else None
                third.send_signal(signal.SIGTERM)
                third.wait(timeout=600)
            # The same clean restart without the local copy: the snapshot comes from storaged over HTTP.
            shutil.rmtree(Path(tmp) / "vectord-cache")
            with vectord(config, vectord_port, log) as fourth:
                fetched_listen, fetched_serve = time_to_serving(fourth, vectord_port, queries[0])

    print()
    print(f"| {args.n} x {DIMS} | usearch in-process | vectord: to /health | to the first query | loading |")
    print("|---|---|---|---|---|")
    print(f"| after SIGTERM (stop took {stop_secs:.2f} s), local copy | restore {restore_secs:.3f} s "
          f"(view {view_secs:.3f} s) | {clean_listen:.3f} s | {clean_serve:.3f} s "
          f"| {clean_serve - clean_listen:.3f} s |")  # fmt: skip
    print(f"| after SIGTERM, no local copy ({args.n + args.tail}) | restore {restore_secs:.3f} s "
          f"| {fetched_listen:.3f} s | {fetched_serve:.3f} s | {fetched_serve - fetched_listen:.3f} s |")  # fmt: skip
    print(f"| after kill -9, {args.tail} in the log | batch add of them {tail_add_secs:.3f} s "
          f"| {killed_listen:.3f} s | {killed_serve:.3f} s (count {count}) "
          f"| {killed_serve - killed_listen:.3f} s |")  # fmt: skip
    print(f"\nload average {load_average()}")


if __name__ == "__main__":
    main()
