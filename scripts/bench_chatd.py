"""`just bench-chatd`: the Ollama fake measured directly and through chatd, at concurrency 1 and 16."""

from __future__ import annotations

import argparse
import json

from scripts.benchlib import announce_load_generator, measure, print_table, process
from tests.support.net import free_port

NO_KEY = "/nonexistent/lakehouse-bench.env"
MESSAGES = [{"role": "user", "content": "say ok"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="duration of each measurement")
    args = parser.parse_args()
    fake_port, chatd_port = free_port(), free_port()
    fake = f"http://127.0.0.1:{fake_port}"
    chatd = f"http://127.0.0.1:{chatd_port}"
    env = {
        "LH_CONFIG": "/dev/null/none.toml",
        "LH_CHATD__BIND": f"127.0.0.1:{chatd_port}",
        "LH_CHATD__OLLAMA_URL": fake,
        **{f"LH_CHATD__{p}_KEY_FILE": NO_KEY for p in ("OLLAMA_CLOUD", "OPENROUTER", "OPENCODE", "KIMI")},
    }
    direct_body = json.dumps({"model": "qwen3.5:latest", "messages": MESSAGES, "stream": False, "think": False})
    chat_body = json.dumps({"model": "qwen3.5:latest", "messages": MESSAGES})
    announce_load_generator()
    with (
        process(
            "fake", ["-m", "tests.support.fakes.ollama", "--port", str(fake_port), "--no-record"], fake + "/api/tags"
        ),
        process("chatd", ["-m", "shared.cli", "serve", "chatd"], chatd + "/health", env),
    ):
        measure("warm-up", chatd + "/v1/chat", 4, 1, chat_body.encode())
        direct = [measure("direct", fake + "/api/chat", c, args.seconds, direct_body.encode()) for c in (1, 16)]
        via = [measure("via chatd", chatd + "/v1/chat", c, args.seconds, chat_body.encode()) for c in (1, 16)]
    print_table(direct, via, "chatd")


if __name__ == "__main__":
    main()
