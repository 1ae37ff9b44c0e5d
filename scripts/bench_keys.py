"""`just bench-keys`: what keys and the spend ledger cost, each against itself without them, in the same run.

1. A 5-byte object through the gateway (1 worker) to storaged, with the root token and with a client key (its scope
   and requests-per-minute checked on every request), at c1 and c64.
2. chatd's whole answers at c16 against the Ollama fake, with the spend ledger on (a record per request, its meters,
   shipped to storaged and catalogd every 20 s, the default) and off (`ledger_dir = ""`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import httpx

from scripts.benchlib import Result, announce_load_generator, load_average, measure, process
from scripts.net import free_port

ROOT = "bench-keys-root-token-0123456789"
NO_KEY = "/nonexistent/lakehouse-bench.env"
CHAT_BODY = json.dumps({"model": "qwen3.5:latest", "messages": [{"role": "user", "content": "say ok"}]}).encode()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def mean(results: list[Result]) -> Result:
    """The runs of one side averaged: req/s and p50 (p99 and errors as the worst run's)."""
    first = results[0]
    return Result(
        first.label,
        first.connections,
        sum(r.requests_per_sec for r in results) / len(results),
        sum(r.p50_ms for r in results) / len(results),
        max(r.p99_ms for r in results),
        sum(r.errors for r in results),
    )


def row(what: str, base: Result, other: Result, goal: str) -> str:
    ratio = other.requests_per_sec / base.requests_per_sec
    added_us = (other.p50_ms - base.p50_ms) * 1000
    return (
        f"| {what} | c{base.connections} | {base.requests_per_sec:.0f} | {other.requests_per_sec:.0f} | {ratio:.2f}x |"
        f" {base.p50_ms:.3f} | {other.p50_ms:.3f} | {added_us:+.0f} us | {goal} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="duration of each measurement")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-keys-")
    ports = {name: free_port() for name in ("storaged", "catalogd", "gateway", "fake", "ledger_on", "ledger_off")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        "LH_CONFIG": "/dev/null/none.toml",
        "LH_AUTH__TOKEN": ROOT,
        "LH_STORAGED__BIND": f"127.0.0.1:{ports['storaged']}",
        "LH_STORAGED__ROOT": os.path.join(work, "objects"),
        "LH_CATALOGD__BIND": f"127.0.0.1:{ports['catalogd']}",
        "LH_CATALOGD__STORAGED_URL": url["storaged"],
        "LH_GATEWAY__BIND": f"127.0.0.1:{ports['gateway']}",
        "LH_GATEWAY__WORKERS": "1",
        "LH_GATEWAY__STORAGED_URL": url["storaged"],
        "LH_GATEWAY__STATE_DIR": os.path.join(work, "gateway"),
        "LH_CHATD__OLLAMA_URL": url["fake"],
        "LH_CHATD__STORAGED_URL": url["storaged"],
        "LH_CHATD__CATALOGD_URL": url["catalogd"],
        **{f"LH_CHATD__{p}_KEY_FILE": NO_KEY for p in ("OLLAMA_CLOUD", "OPENROUTER", "OPENCODE", "KIMI")},
    }
    chatd_on = {**env, "LH_CHATD__BIND": f"127.0.0.1:{ports['ledger_on']}", "LH_CHATD__LEDGER_DIR": f"{work}/ledger"}
    chatd_off = {**env, "LH_CHATD__BIND": f"127.0.0.1:{ports['ledger_off']}", "LH_CHATD__LEDGER_DIR": ""}
    serve = ["-m", "shared.stack.cli", "serve"]
    fake = ["-m", "tests.support.fakes.ollama", "--port", str(ports["fake"]), "--no-record"]
    announce_load_generator()
    with (
        process("storaged", [*serve, "storaged"], url["storaged"] + "/health", env),
        process("catalogd", [*serve, "catalogd"], url["catalogd"] + "/health", env),
        process("gateway", [*serve, "gateway"], url["gateway"] + "/health", env),
        process("fake", fake, url["fake"] + "/api/tags"),
        process("chatd-ledger", [*serve, "chatd"], url["ledger_on"] + "/health", chatd_on),
        process("chatd-no-ledger", [*serve, "chatd"], url["ledger_off"] + "/health", chatd_off),
    ):
        with httpx.Client(base_url=url["gateway"], headers=bearer(ROOT)) as http:
            http.put("/v1/storage/objects/bench/hello", content=b"hello").raise_for_status()
            made = http.post("/v1/keys", json={"name": "bench", "scopes": ["storage:read"], "rpm": 10**9})
            made.raise_for_status()
        secret = made.json()["secret"]
        target = url["gateway"] + "/v1/storage/objects/bench/hello"
        measure("warm-up", target, 8, 1, headers=bearer(secret))
        gateway_rows = []
        for clients in (1, 64):
            # Each side twice, alternating, so a drift of the machine falls on both.
            roots, keys = [], []
            for _ in range(2):
                roots.append(measure("root token", target, clients, args.seconds, headers=bearer(ROOT)))
                keys.append(measure("client key", target, clients, args.seconds, headers=bearer(secret)))
            goal = "≥ 0.95x" if clients == 64 else "≤ +50 us p50"
            gateway_rows.append(row("gateway GET, key vs root token", mean(roots), mean(keys), goal))
        chat = {name: url[name] + "/v1/chat" for name in ("ledger_on", "ledger_off")}
        for name in chat:
            measure("warm-up", chat[name], 4, 1, CHAT_BODY, headers=bearer(ROOT))
        offs, ons = [], []
        for _ in range(2):
            offs.append(measure("ledger off", chat["ledger_off"], 16, args.seconds, CHAT_BODY, headers=bearer(ROOT)))
            ons.append(measure("ledger on", chat["ledger_on"], 16, args.seconds, CHAT_BODY, headers=bearer(ROOT)))
        off, on = mean(offs), mean(ons)
    print()
    print("| measure | conns | without | with | ratio | without p50 ms | with p50 ms | added p50 | goal |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for line in gateway_rows:
        print(line)
    print(row("chatd POST /v1/chat, spend ledger on vs off", off, on, "≥ 0.95x"))
    print(f"\nload average at the end: {load_average()}\n")


if __name__ == "__main__":
    main()
