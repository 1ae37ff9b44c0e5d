"""[auth]: the bearer token, the peer allow-list, and the master key that seals client keys' S3 secrets."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr

from shared.config.base import Section

MIN_MASTER_KEY_CHARS = 32


def _check_master_key(value: SecretStr) -> SecretStr:
    if value.get_secret_value() and len(value.get_secret_value()) < MIN_MASTER_KEY_CHARS:
        raise ValueError(f"master_key needs at least {MIN_MASTER_KEY_CHARS} characters (openssl rand -base64 32)")
    return value


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
    master_key: Annotated[SecretStr, AfterValidator(_check_master_key)] = Field(
        SecretStr(""),
        description="seals client keys' S3 secrets at rest (LH_AUTH__MASTER_KEY, 32+ characters; never printed); "
        '"" = keys sign no S3 request',
    )
