"""The other S3 clients people bring, unchanged, against moto and against storaged's S3 API on both backends:
aws-cli v1 (its own process: cp, a multipart upload, ls, sync, rm, s3api), s3fs (fsspec) and the minio SDK."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import s3fs
from minio import Minio

from tests.services.storaged.s3.conftest import Endpoint

MIB = 1 << 20


def aws(endpoint: Endpoint, tmp_path: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ACCESS_KEY_ID": endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", endpoint.url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_aws_cli_copies_lists_syncs_and_removes(endpoint: Endpoint, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * MIB))  # past aws-cli's 8 MiB multipart threshold: two parts
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    aws(endpoint, tmp_path, "s3", "mb", "s3://cli")
    aws(endpoint, tmp_path, "s3", "cp", str(big), "s3://cli/big.bin")
    aws(endpoint, tmp_path, "s3", "sync", str(tree), "s3://cli/tree/")
    listed = aws(endpoint, tmp_path, "s3", "ls", "--recursive", "s3://cli/")
    assert [line.split()[-1] for line in listed.splitlines()] == ["big.bin", "tree/a.txt", "tree/sub/b.txt"]
    assert "PRE tree/" in aws(endpoint, tmp_path, "s3", "ls", "s3://cli/")
    back = tmp_path / "back.bin"
    aws(endpoint, tmp_path, "s3", "cp", "s3://cli/big.bin", str(back))
    assert back.read_bytes() == big.read_bytes()
    head = aws(endpoint, tmp_path, "s3api", "head-object", "--bucket", "cli", "--key", "big.bin")
    assert f'"ContentLength": {9 * MIB}' in head
    aws(endpoint, tmp_path, "s3", "rm", "--recursive", "s3://cli/tree/")
    assert [
        line.split()[-1] for line in aws(endpoint, tmp_path, "s3", "ls", "--recursive", "s3://cli/").splitlines()
    ] == ["big.bin"]


def test_s3fs_writes_lists_reads_and_removes(endpoint: Endpoint) -> None:
    endpoint.client().create_bucket(Bucket="fsspec")
    fs = s3fs.S3FileSystem(
        key=endpoint.access_key,
        secret=endpoint.secret_key,
        client_kwargs={"endpoint_url": endpoint.url, "region_name": "us-east-1"},
        skip_instance_cache=True,
    )
    with fs.open("fsspec/dir/data.bin", "wb", block_size=5 * MIB) as f:
        f.write(b"x" * (6 * MIB))  # more than one block: s3fs uploads it in parts
    fs.pipe("fsspec/dir/small.txt", b"small")
    assert fs.ls("fsspec/dir", detail=False) == ["fsspec/dir/data.bin", "fsspec/dir/small.txt"]
    assert fs.cat("fsspec/dir/small.txt") == b"small"
    assert fs.info("fsspec/dir/data.bin")["size"] == 6 * MIB
    with fs.open("fsspec/dir/data.bin", "rb") as f:
        f.seek(5 * MIB)
        assert f.read(3) == b"xxx"
    fs.rm("fsspec/dir", recursive=True)
    assert not fs.exists("fsspec/dir/small.txt")


def test_the_minio_sdk_puts_gets_lists_and_presigns(endpoint: Endpoint) -> None:
    client = Minio(
        urlsplit(endpoint.url).netloc,
        access_key=endpoint.access_key,
        secret_key=endpoint.secret_key,
        secure=False,
        region="us-east-1",
    )
    client.make_bucket("mini")
    assert client.bucket_exists("mini")
    client.put_object("mini", "one.txt", io.BytesIO(b"one"), length=3, content_type="text/plain")
    data = os.urandom(11 * MIB)
    client.put_object("mini", "big.bin", io.BytesIO(data), length=-1, part_size=5 * MIB)  # unknown length: multipart
    response = client.get_object("mini", "big.bin")
    try:
        assert response.read() == data
    finally:
        response.close()
        response.release_conn()
    assert [o.object_name for o in client.list_objects("mini", recursive=True)] == ["big.bin", "one.txt"]
    stat = client.stat_object("mini", "one.txt")
    assert (stat.size, stat.content_type) == (3, "text/plain")
    url = client.presigned_get_object("mini", "one.txt")
    assert httpx.get(url).content == b"one"
    client.remove_object("mini", "one.txt")
    assert [o.object_name for o in client.list_objects("mini")] == ["big.bin"]
