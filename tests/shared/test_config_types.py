"""What the type checker knows of the config: `just verify`'s mypy run checks these assert_type calls, and pytest
runs them, so a section typed as Any again (a root made by create_model) fails both."""

from __future__ import annotations

from typing import assert_type

from pydantic import SecretStr

from shared.config import LakehouseConfig, load_config
from shared.config.chatd import ChatdConfig
from shared.config.gateway import GatewayConfig
from shared.config.storaged import StoragedConfig


def test_sections_and_keys_are_typed() -> None:
    config = load_config()
    assert_type(config, LakehouseConfig)
    assert_type(config.storaged, StoragedConfig)
    assert_type(config.storaged.bind, str)
    assert_type(config.storaged.max_put_bytes, int)
    assert_type(config.gateway, GatewayConfig)
    assert_type(config.gateway.workers, int)
    assert_type(config.gateway.upstream_url("storaged"), str)
    assert_type(config.gateway.timeout("sql"), float)
    assert_type(config.chatd, ChatdConfig)
    assert_type(config.chatd.call_timeout_secs, float)
    assert_type(config.queryd.refresh_every_secs, float)
    assert_type(config.auth.token, SecretStr)
    assert_type(config.auth.allowed_ips, list[str])
    assert_type(config.models.resolve("local_fast"), str)
    assert isinstance(config.storaged.bind, str)
