"""[auth]: the bearer token and the peer allow-list."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr

from shared.config.base import Section


def _check_networks(entries: list[str]) -> list[str]:
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f'expected a CIDR (e.g. "10.0.0.0/8") or a bare IPv4/IPv6 address, got "{entry}"'
            ) from None
    return entries


class AuthConfig(Section):
    token: SecretStr = Field(SecretStr(""), description='Bearer token every request must carry; "" = none')
    allowed_ips: Annotated[list[str], AfterValidator(_check_networks)] = Field(
        default_factory=list, description="CIDRs or bare IPs allowed to connect; empty = any"
    )
