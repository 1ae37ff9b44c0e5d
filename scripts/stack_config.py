"""Writes a lakehouse.toml that puts the whole stack on free loopback ports (for smokes and tests).

usage: python -m scripts.stack_config OUT.toml [OLLAMA_URL [DATA_DIR]]

Every service's `<other>_url` key (catalogd's storaged_url, matrixd's vectord_url, ...) points at that other service's
port; embedd and chatd use OLLAMA_URL; storaged's objects, chatd's
ledger and the gateway's meters live under DATA_DIR (default: OUT.toml's directory).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

from scripts.net import free_ports
from shared.config import LakehouseConfig
from shared.config.chatd import PROVIDERS
from shared.registry import names, services

NO_KEY = "/nonexistent/lakehouse-smoke.env"


def stack_config(ollama_url: str, data_dir: Path | None = None) -> str:
    ports = dict(zip(names(), free_ports(len(names())), strict=True))
    lines = []
    for name, port in ports.items():
        lines += [f"[{name}]", f'bind = "127.0.0.1:{port}"']
        if name != "gateway":
            section = LakehouseConfig.model_fields[name].annotation
            keys = section.model_fields if isinstance(section, type) and issubclass(section, BaseModel) else {}
            lines += [f'{other}_url = "http://127.0.0.1:{ports[other]}"' for other in names() if f"{other}_url" in keys]
        if name == "storaged" and data_dir is not None:
            lines.append(f'root = "{data_dir / "objects"}"')
        if name == "chatd" and data_dir is not None:
            lines.append(f'ledger_dir = "{data_dir / "ledger"}"')
        if name == "gateway" and data_dir is not None:
            lines.append(f'state_dir = "{data_dir / "gateway"}"')
        if name == "embedd":
            lines.append(f'provider_url = "{ollama_url}"')
        if name == "chatd":
            lines.append(f'ollama_url = "{ollama_url}"')
            # No keys from this machine: only ollama registers, whatever /etc/lakehouse holds.
            lines += [f'{p.key_file_key} = "{NO_KEY}"' for p in PROVIDERS if p.key_env]
        if name == "gateway":
            lines += [
                f'{service.gateway_url_key} = "http://127.0.0.1:{ports[service.name]}"'
                for service in services()
                if service.gateway_url_key
            ]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    ollama = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:11434"
    out.write_text(stack_config(ollama, Path(sys.argv[3]) if len(sys.argv) > 3 else out.parent))
