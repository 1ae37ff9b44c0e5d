"""Client keys as S3 key pairs, through the gateway with boto3 (and straight at storaged's own bind): the key's id
and secret sign, its scopes and buckets hold in S3's error shape, its rpm is S3's SlowDown, a revoked or rotated key
stops signing, and the record on disk holds the secret only sealed with the master key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from services.storaged.schemas import KEYS_PREFIX
from shared.keys.sealing import Sealer
from tests.support.lake import REGION, Lake, running_lake

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = "key-s3-test-root-token-0123456789"
MASTER = "key-s3-test-master-key-0123456789abcdef"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    with running_lake(tmp_path_factory.mktemp("key-s3"), token=ROOT, auth={"master_key": MASTER}) as running:
        yield running


def make_key(lake: Lake, **body: Any) -> dict[str, Any]:
    with httpx.Client(base_url=lake.url, headers={"authorization": f"Bearer {ROOT}"}) as http:
        response = http.post("/v1/keys", json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def s3_as(key: dict[str, Any], url: str) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=key["id"],
        aws_secret_access_key=key["secret"],
        region_name=REGION,
        # One attempt: a refusal is the answer under test, not something to retry.
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"total_max_attempts": 1}),
    )


def refusal(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return error["Code"], error.get("Message", "")


def test_a_key_pair_reads_and_writes_what_its_scopes_allow(lake: Lake) -> None:
    writer = make_key(lake, name="s3-writer", scopes=["storage:read", "storage:write"])
    assert writer["signs_s3"] is True
    s3 = s3_as(writer, lake.url)
    s3.create_bucket(Bucket="team-data")
    s3.put_object(Bucket="team-data", Key="a/b.csv", Body=b"x,y\n1,2\n", ContentType="text/csv")
    assert s3.get_object(Bucket="team-data", Key="a/b.csv")["Body"].read() == b"x,y\n1,2\n"
    with httpx.Client(base_url=lake.url, headers={"authorization": f"Bearer {writer['secret']}"}) as http:
        assert http.get("/v1/storage/objects/team-data/a/b.csv").content == b"x,y\n1,2\n"

    reader = s3_as(make_key(lake, name="s3-reader", scopes=["storage:read"]), lake.url)
    assert reader.get_object(Bucket="team-data", Key="a/b.csv")["Body"].read() == b"x,y\n1,2\n"
    presigned = reader.generate_presigned_url("get_object", Params={"Bucket": "team-data", "Key": "a/b.csv"})
    assert httpx.get(presigned).content == b"x,y\n1,2\n"
    with pytest.raises(ClientError) as refused:
        reader.put_object(Bucket="team-data", Key="a/c.csv", Body=b"no")
    assert refusal(refused)[0] == "AccessDenied"
    assert "'storage:write'" in refusal(refused)[1]

    sql_only = s3_as(make_key(lake, name="s3-none", scopes=["sql"]), lake.url)
    with pytest.raises(ClientError) as refused:
        sql_only.list_objects_v2(Bucket="team-data")
    assert refusal(refused)[0] == "AccessDenied"
    assert "'storage:read'" in refusal(refused)[1]


def test_a_key_limited_to_buckets_sees_and_writes_those_only(lake: Lake) -> None:
    root = s3_as(make_key(lake, name="s3-admin", scopes=["storage:read", "storage:write"]), lake.url)
    for bucket in ("team-a", "team-b"):
        root.create_bucket(Bucket=bucket)
        root.put_object(Bucket=bucket, Key="x.txt", Body=bucket.encode())
    limited_key = make_key(lake, name="team-a-only", scopes=["storage:read", "storage:write"], buckets=["team-a"])
    limited = s3_as(limited_key, lake.url)
    limited.put_object(Bucket="team-a", Key="y.txt", Body=b"ok")
    assert [b["Name"] for b in limited.list_buckets()["Buckets"]] == ["team-a"]
    for call in (
        lambda: limited.get_object(Bucket="team-b", Key="x.txt"),
        lambda: limited.put_object(Bucket="team-b", Key="y.txt", Body=b"no"),
        lambda: limited.list_objects_v2(Bucket="team-b"),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refusal(refused)[0] == "AccessDenied"
        assert "limited to buckets team-a" in refusal(refused)[1]
    # The same limit on the native API: a path's first segment, a listing's prefix.
    with httpx.Client(base_url=lake.url, headers={"authorization": f"Bearer {limited_key['secret']}"}) as http:
        assert http.get("/v1/storage/objects/team-a/x.txt").content == b"team-a"
        assert http.get("/v1/storage/objects", params={"prefix": "team-a/"}).status_code == 200
        assert http.get("/v1/storage/objects/team-b/x.txt").status_code == 403
        assert http.get("/v1/storage/objects").status_code == 403
        assert http.get("/v1/storage/objects", params={"prefix": "team-"}).status_code == 403


def test_storaged_holds_a_keys_scopes_without_the_gateway(lake: Lake) -> None:
    reader = make_key(lake, name="direct-reader", scopes=["storage:read"], buckets=["direct"])
    s3_as(make_key(lake, name="direct-writer", scopes=["storage:write"]), lake.url).create_bucket(Bucket="direct")
    direct = s3_as(reader, lake.config.gateway.upstream_url("storaged"))
    assert direct.list_objects_v2(Bucket="direct")["KeyCount"] == 0
    for call in (
        lambda: direct.put_object(Bucket="direct", Key="x", Body=b"no"),
        lambda: direct.list_objects_v2(Bucket="team-a"),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refusal(refused)[0] == "AccessDenied"


def test_a_keys_rpm_is_s3s_slow_down_with_retry_after(lake: Lake) -> None:
    s3 = s3_as(make_key(lake, name="s3-rpm", scopes=["storage:read"], rpm=3), lake.url)
    for _ in range(3):
        s3.list_buckets()
    with pytest.raises(ClientError) as refused:
        s3.list_buckets()
    assert refusal(refused)[0] == "SlowDown"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert int(refused.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1


def test_revoked_and_rotated_keys_stop_signing(lake: Lake) -> None:
    key = make_key(lake, name="s3-short-lived", scopes=["storage:read"])
    s3_as(key, lake.url).list_buckets()
    with httpx.Client(base_url=lake.url, headers={"authorization": f"Bearer {ROOT}"}) as http:
        rotated = http.post(f"/v1/keys/{key['id']}/rotate").json()
        s3_as(rotated, lake.url).list_buckets()
        with pytest.raises(ClientError) as refused:
            s3_as(key, lake.url).list_buckets()
        assert refusal(refused)[0] == "SignatureDoesNotMatch"
        assert http.delete(f"/v1/keys/{key['id']}").status_code == 204
    with pytest.raises(ClientError) as refused:
        s3_as(rotated, lake.url).list_buckets()
    assert refusal(refused)[0] == "InvalidAccessKeyId"


def test_the_stored_record_holds_the_secret_only_sealed(lake: Lake) -> None:
    key = make_key(lake, name="s3-at-rest", scopes=["storage:read"])
    stored = (lake.root / f"{KEYS_PREFIX}{key['id']}.json").read_bytes()
    assert key["secret"].encode() not in stored
    record = json.loads(stored)
    assert Sealer(MASTER).unseal(key["id"], record["sealed_secret"]) == key["secret"]
    assert Sealer("another-master-key-0123456789abcdef").unseal(key["id"], record["sealed_secret"]) is None
    assert Sealer(MASTER).unseal("LHAAAAAAAAAAAAAAAAAA", record["sealed_secret"]) is None  # bound to its key id
    with httpx.Client(base_url=lake.url, headers={"authorization": f"Bearer {ROOT}"}) as http:
        listed = http.get("/v1/keys").text
    assert record["sealed_secret"] not in listed
    assert key["secret"] not in listed


def test_without_a_master_key_a_key_signs_no_s3_request(tmp_path_factory: pytest.TempPathFactory) -> None:
    with running_lake(tmp_path_factory.mktemp("key-s3-unsealed"), token=ROOT) as bare:
        key = make_key(bare, name="bearer-only", scopes=["storage:read"])
        assert key["signs_s3"] is False
        with pytest.raises(ClientError) as refused:
            s3_as(key, bare.url).list_buckets()
    assert refusal(refused)[0] == "InvalidAccessKeyId"
    assert "auth.master_key" in refusal(refused)[1]
