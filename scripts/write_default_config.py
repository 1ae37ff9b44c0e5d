"""Regenerates lakehouse.toml, the operator's reference, from the config model's defaults and descriptions."""

from __future__ import annotations

import sys
from pathlib import Path

from shared.config.loader import current_model
from shared.config.toml import render_toml

HEADER = """\
# lakehouse.toml: the operator's reference. Every section and key, with its default.
# Override any key with the environment: LH_<SECTION>__<KEY>, e.g. LH_CHATD__BIND=127.0.0.1:4000.
# Secrets (auth.token, s3.secret_access_key) are better set through the environment than written here.
# Regenerate after changing a default: uv run python scripts/write_default_config.py

"""


def default_config_text() -> str:
    return HEADER + render_toml(current_model()(), comments=True)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("lakehouse.toml")
    target.write_text(default_config_text())
    print(f"wrote {target}")
