"""The shared config package: one module per section (the eleven services', then s3, models, log, auth), the root
model that holds them (root.py), and the loader (loader.py): arguments, then `LH_<SECTION>__<KEY>` environment
variables, then the TOML file, then the defaults.

May import: pydantic, pydantic-settings, structlog, shared.registry (for the rows that complete the model). Knows no
service: a section module is plain data.
"""

from __future__ import annotations

from shared.config.loader import ConfigError, load_config
from shared.config.root import LakehouseConfig

__all__ = ["ConfigError", "LakehouseConfig", "load_config"]
