"""Writes a lakehouse.toml that puts the whole stack on free loopback ports (for smokes and tests).

usage: python -m scripts.stack_config OUT.toml [OLLAMA_URL]
"""

from __future__ import annotations

import sys
from pathlib import Path

from shared.topology import SERVICES
from tests.support.net import free_ports

NO_KEY = "/nonexistent/lakehouse-smoke.env"


def stack_config(ollama_url: str, data_dir: Path) -> str:
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    # The services' upstreams on the same free ports (their defaults name the fixed ones).
    wiring: dict[str, list[str]] = {
        "storaged": [f'root = "{data_dir / "objects"}"'],
        "vectord": [f'storaged_url = "{url["storaged"]}"'],
        "embedd": [f'provider_url = "{ollama_url}"'],
        "matrixd": [f'embedd_url = "{url["embedd"]}"', f'vectord_url = "{url["vectord"]}"'],
    }
    lines = []
    for name, port in ports.items():
        lines += [f"[{name}]", f'bind = "127.0.0.1:{port}"', *wiring.get(name, [])]
        if name == "chatd":
            lines.append(f'ollama_url = "{ollama_url}"')
            # No keys from this machine: only ollama registers, whatever /etc/lakehouse holds.
            lines += [f'{p}_key_file = "{NO_KEY}"' for p in ("ollama_cloud", "openrouter", "opencode", "kimi")]
        if name == "gateway":
            lines += [
                f'{service.gateway_url_key} = "http://127.0.0.1:{ports[service.name]}"'
                for service in SERVICES.values()
                if service.gateway_url_key
            ]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.write_text(stack_config(sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:11434", out.parent))
