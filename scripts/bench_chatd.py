"""`just bench-chatd`: the Ollama fake measured directly and through chatd (whole answers, c1 and c16), then streams:
64 concurrent streams of 256 chunks, directly from the fake and through gateway + chatd (OpenAI SSE and native NDJSON).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import httpx

from scripts.benchlib import announce_load_generator, measure, print_table, process
from scripts.net import free_port
from scripts.streamload import StreamResult, abort_streams, stream_load

NO_KEY = "/nonexistent/lakehouse-bench.env"
MESSAGES = [{"role": "user", "content": "say ok"}]
# The fake answers "echo:" plus the prompt's words, one chunk each, then its final "done" line: 256 chunks.
STREAM_MESSAGES = [{"role": "user", "content": " ".join(f"w{i}" for i in range(254))}]
STREAMS = 64
ABORTED = 1000


def wait_for_fake_streams(fake: str) -> dict[str, int]:
    """The fake's stream counters once no stream is open any more (or after 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        stats: dict[str, int] = httpx.get(fake + "/_fake/stats").json()
        if stats["streams_open"] == 0 or time.monotonic() > deadline:
            return stats
        time.sleep(0.1)


def print_stream_table(direct: StreamResult, via: list[StreamResult]) -> None:
    print()
    print("| path | streams | TTFT p50 ms | added TTFT p50 ms | TTFT p99 ms | chunks/s | vs direct | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in (direct, *via):
        print(
            f"| {r.label} | {r.streams} | {r.ttft_p50_ms:.3f} | {r.ttft_p50_ms - direct.ttft_p50_ms:+.3f} | "
            f"{r.ttft_p99_ms:.3f} | {r.chunks_per_sec:.0f} | {r.chunks_per_sec / direct.chunks_per_sec:.1%} | "
            f"{r.errors} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="duration of each measurement")
    args = parser.parse_args()
    fake_port, chatd_port, gateway_port = free_port(), free_port(), free_port()
    fake = f"http://127.0.0.1:{fake_port}"
    chatd = f"http://127.0.0.1:{chatd_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    env = {
        "LH_CONFIG": "/dev/null/none.toml",
        "LH_CHATD__BIND": f"127.0.0.1:{chatd_port}",
        "LH_CHATD__OLLAMA_URL": fake,
        "LH_GATEWAY__BIND": f"127.0.0.1:{gateway_port}",
        "LH_GATEWAY__CHATD_URL": chatd,
        # The ledger in a directory of its own, not shipped: this bench measures dispatch (bench-keys its cost).
        "LH_CHATD__LEDGER_DIR": tempfile.mkdtemp(prefix="bench-chatd-ledger-"),
        "LH_CHATD__STORAGED_URL": "",
        "LH_CHATD__CATALOGD_URL": "",
        **{f"LH_CHATD__{p}_KEY_FILE": NO_KEY for p in ("OLLAMA_CLOUD", "OPENROUTER", "OPENCODE", "KIMI")},
    }
    direct_body = json.dumps({"model": "qwen3.5:latest", "messages": MESSAGES, "stream": False, "think": False})
    chat_body = json.dumps({"model": "qwen3.5:latest", "messages": MESSAGES})
    # The same body both ways: the fake reads Ollama's fields, chatd its own.
    stream_direct = stream_via = json.dumps(
        {"model": "qwen3.5:latest", "messages": STREAM_MESSAGES, "stream": True}
    ).encode()
    announce_load_generator()
    with (
        process(
            "fake", ["-m", "tests.support.fakes.ollama", "--port", str(fake_port), "--no-record"], fake + "/api/tags"
        ),
        process("chatd", ["-m", "shared.stack.cli", "serve", "chatd"], chatd + "/health", env),
        process("gateway", ["-m", "shared.stack.cli", "serve", "gateway"], gateway + "/health", env),
    ):
        measure("warm-up", chatd + "/v1/chat", 4, 1, chat_body.encode())
        direct = [measure("direct", fake + "/api/chat", c, args.seconds, direct_body.encode()) for c in (1, 16)]
        via = [measure("via chatd", chatd + "/v1/chat", c, args.seconds, chat_body.encode()) for c in (1, 16)]
        stream_load("warm-up", gateway + "/v1/chat/completions", stream_via, b"data: ", 4, 1)
        paths = [
            ("gateway+chatd, OpenAI SSE", gateway + "/v1/chat/completions", b"data: "),
            ("gateway+chatd, native NDJSON", gateway + "/v1/chat", b"\n"),
        ]
        tables = []
        # c1 shows the added time to first chunk on an idle machine; c64 the throughput when all cores are busy.
        for clients in (1, STREAMS):
            direct_run = stream_load(
                f"direct c{clients}", fake + "/api/chat", stream_direct, b"\n", clients, args.seconds
            )
            via_runs = [
                stream_load(f"{label} c{clients}", url, stream_via, marker, clients, args.seconds)
                for label, url, marker in paths
            ]
            tables.append((direct_run, via_runs))
        # Slow streams, so each is still running upstream when its client drops it.
        httpx.post(fake + "/_fake/settings", json={"chunk_delay_secs": 0.005})
        aborted = abort_streams(gateway + "/v1/chat/completions", stream_via, ABORTED, clients=32)
        stats = wait_for_fake_streams(fake)
        print(
            f"  {ABORTED} streams dropped mid-stream through gateway+chatd ({aborted} had started): the fake saw"
            f" {stats['streams_aborted']} abandoned, {stats['streams_open']} still open",
            flush=True,
        )
    print_table(direct, via, "chatd")
    for direct_run, via_runs in tables:
        print_stream_table(direct_run, via_runs)


if __name__ == "__main__":
    main()
