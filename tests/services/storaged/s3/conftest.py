"""S3 endpoints to run the same client tests against: moto's S3 server (the peer), and storaged's S3 API on each
backend (`local`, and `s3` fronting moto's bucket). A test that takes `endpoint` runs against all three, so "works
like S3" is a test result; one that takes `lakehouse` runs against storaged's only (what moto does not check)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from mypy_boto3_s3 import S3Client

from services.storaged.app import create_app as create_storaged
from shared.config import LakehouseConfig
from tests.support.servers import serve_in_thread
from tests.support.storage import S3Server, storaged_config

ACCESS_KEY = "lakehouse-test-key"
SECRET_KEY = "lakehouse-test-secret-0123456789"


@dataclass
class Endpoint:
    name: str  # "moto", "local" or "s3"
    url: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    root: Path | None = None  # the local backend's directory
    config: LakehouseConfig | None = None

    def client(self, **options: Any) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **options),
        )


def lakehouse_config(backend: str, root: Path, s3: S3Server | None, **s3_api: Any) -> LakehouseConfig:
    config = storaged_config(backend, root=root, s3=s3)
    section = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY} | s3_api
    return config.model_copy(update={"s3_api": config.s3_api.model_validate(section)})


@pytest.fixture(params=["moto", "local", "s3"])
def endpoint(request: pytest.FixtureRequest, s3_server: S3Server, tmp_path: Path) -> Iterator[Endpoint]:
    if request.param == "moto":
        s3_server.reset(bucket=False)
        yield Endpoint("moto", s3_server.endpoint)
        return
    s3_server.reset()
    root = tmp_path / "objects"
    config = lakehouse_config(request.param, root, s3_server)
    with serve_in_thread(create_storaged(config)) as url:
        yield Endpoint(request.param, url, root=root if request.param == "local" else None, config=config)


@pytest.fixture
def lakehouse(tmp_path: Path) -> Iterator[Endpoint]:
    """storaged's S3 API on the local backend."""
    root = tmp_path / "objects"
    config = lakehouse_config("local", root, None)
    with serve_in_thread(create_storaged(config)) as url:
        yield Endpoint("local", url, root=root, config=config)
