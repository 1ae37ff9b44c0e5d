from __future__ import annotations

import pytest

from shared.auth import is_loopback
from shared.config import load_config
from shared.runner import GateRefused, check_gates


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.internal", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_bind_passes_without_anything() -> None:
    check_gates("chatd", load_config(), {})


def test_nonloopback_refused_without_bypass() -> None:
    config = load_config(chatd={"bind": "0.0.0.0:3220"}, auth={"token": "t"})
    with pytest.raises(GateRefused, match=r"^chatd: refusing non-loopback bind 0\.0\.0\.0:3220; set LH_CHATD_ALLOW"):
        check_gates("chatd", config, {})


def test_bypass_without_token_is_still_refused() -> None:
    config = load_config(gateway={"bind": "[::]:3110"})
    with pytest.raises(GateRefused, match=r"no auth token; set auth\.token .* or LH_AUTH__TOKEN"):
        check_gates("gateway", config, {"LH_GATEWAY_ALLOW_NONLOOPBACK": "1"})


def test_bypass_and_token_pass() -> None:
    config = load_config(gateway={"bind": "0.0.0.0:3110"}, auth={"token": "t"})
    check_gates("gateway", config, {"LH_GATEWAY_ALLOW_NONLOOPBACK": "1"})
