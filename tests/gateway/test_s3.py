"""S3 clients at the gateway's port: signed requests outside /v1/ reach storaged's S3 API, past the bearer rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from gateway.app import create_app as create_gateway
from services.storaged.app import create_app as create_storaged
from shared.config import load_config
from tests.services.storaged.s3.conftest import Endpoint, lakehouse_config
from tests.services.storaged.s3.test_conformance import error_code
from tests.support.servers import free_port, serve_in_thread

TOKEN = "gateway-root-token"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    storaged = lakehouse_config("local", tmp_path / "objects", None)
    storaged = storaged.model_copy(update={"auth": storaged.auth.model_validate({"token": TOKEN})})
    with serve_in_thread(create_storaged(storaged)) as storaged_url:
        config = load_config(gateway={"storaged_url": storaged_url}, auth={"token": TOKEN})
        with serve_in_thread(create_gateway(config)) as url:
            yield url


def test_boto3_works_through_the_gateway_with_a_token_set(gateway: str) -> None:
    s3 = Endpoint("gateway", gateway).client()
    s3.create_bucket(Bucket="through")
    s3.put_object(Bucket="through", Key="a/b.txt", Body=b"via the gateway", Metadata={"m": "1"})
    got = s3.get_object(Bucket="through", Key="a/b.txt")
    assert (got["Body"].read(), got["Metadata"]) == (b"via the gateway", {"m": "1"})
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="through")["Contents"]] == ["a/b.txt"]
    native = httpx.get(f"{gateway}/v1/storage/objects/through/a/b.txt", headers={"authorization": f"Bearer {TOKEN}"})
    assert native.content == b"via the gateway"


def test_a_signed_request_never_reaches_storageds_internal_route(gateway: str, tmp_path: Path) -> None:
    # Outside /v1/ the gateway forwards S3 requests only, and storaged answers those with its S3 API, whatever the
    # path: /internal/… through the gateway is bucket "internal", not the route the owners of reserved prefixes use.
    s3 = Endpoint("gateway", gateway).client()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="internal", Key="storage/objects/_catalog/x/v1.json", Body=b"{}")
    assert error_code(exc) == "NoSuchBucket"
    assert not (tmp_path / "objects" / "_catalog").exists()


def test_unsigned_requests_outside_v1_keep_the_bearer_rule(gateway: str) -> None:
    assert httpx.get(f"{gateway}/metrics").status_code == 401
    assert httpx.get(f"{gateway}/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    wrong = Endpoint("gateway", gateway, secret_key="wrong").client()
    with pytest.raises(ClientError) as exc:
        wrong.list_buckets()
    assert error_code(exc) == "SignatureDoesNotMatch"


def test_an_unreachable_storaged_is_an_s3_error() -> None:
    config = load_config(gateway={"storaged_url": f"http://127.0.0.1:{free_port()}"})
    with serve_in_thread(create_gateway(config)) as url:
        response = httpx.get(f"{url}/bucket/key", headers={"authorization": "AWS4-HMAC-SHA256 Credential=x"})
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/xml"
    assert "<Code>ServiceUnavailable</Code>" in response.text
