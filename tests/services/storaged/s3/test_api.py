"""What storaged's S3 API does that a peer cannot show: its refusals, its checks of the body, the reserved prefixes,
and that `s3://B/K` is the native object `B/K` both ways."""

from __future__ import annotations

import base64
import time
import zlib
from pathlib import Path

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from services.storaged.app import create_app as create_storaged
from services.storaged.schemas import INTERNAL_OBJECTS, OBJECTS
from tests.services.storaged.s3.conftest import ACCESS_KEY, SECRET_KEY, Endpoint, lakehouse_config
from tests.services.storaged.s3.test_conformance import error_code
from tests.support.servers import serve_in_thread


def signed(method: str, url: str, body: bytes, headers: dict[str, str], *, trailer: bool = False) -> dict[str, str]:
    """The headers botocore's own SigV4 signer gives this request: the body's SHA-256 signed, or (`trailer`) the
    unsigned aws-chunked body with a checksum trailer, as botocore sends it over TLS."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    if trailer:
        request.context["checksum"] = {"request_algorithm": {"in": "trailer"}}
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def s3_code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/xml", response.text
    return response.text.partition("<Code>")[2].partition("</Code>")[0]


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "\\" not in p.name)


def test_without_a_key_pair_every_s3_request_is_refused_saying_what_to_set(tmp_path: Path) -> None:
    config = lakehouse_config("local", tmp_path / "objects", None, access_key_id="", secret_access_key="")
    with serve_in_thread(create_storaged(config)) as url:
        client = Endpoint("local", url).client()
        with pytest.raises(ClientError) as exc:
            client.list_buckets()
    assert error_code(exc) == "AccessDenied"
    message = exc.value.response["Error"]["Message"]
    assert "LH_S3_API__ACCESS_KEY_ID" in message
    assert "LH_S3_API__SECRET_ACCESS_KEY" in message


def test_a_wrong_secret_or_key_is_refused_and_never_echoed(lakehouse: Endpoint) -> None:
    wrong = Endpoint("local", lakehouse.url, secret_key="not-the-secret").client()
    with pytest.raises(ClientError) as exc:
        wrong.list_buckets()
    assert error_code(exc) == "SignatureDoesNotMatch"
    unknown = Endpoint("local", lakehouse.url, access_key="nobody").client()
    with pytest.raises(ClientError) as exc:
        unknown.list_buckets()
    assert error_code(exc) == "InvalidAccessKeyId"
    assert SECRET_KEY not in str(exc.value.response)


def test_presigned_urls_expire_and_signature_v2_is_named(lakehouse: Endpoint) -> None:
    v4 = lakehouse.client(signature_version="s3v4")
    v4.create_bucket(Bucket="links")
    v4.put_object(Bucket="links", Key="k", Body=b"v")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": "links", "Key": "k"}, ExpiresIn=1)
    time.sleep(2.1)  # X-Amz-Date has whole seconds: past 1 s after it whenever it was signed
    expired = httpx.get(url)
    assert (expired.status_code, s3_code(expired)) == (403, "AccessDenied")
    assert "expired" in expired.text
    v2_url = lakehouse.client().generate_presigned_url("get_object", Params={"Bucket": "links", "Key": "k"})
    refused = httpx.get(v2_url)
    assert (refused.status_code, s3_code(refused)) == (400, "InvalidRequest")
    assert "AWS4-HMAC-SHA256" in refused.text


def test_a_tampered_presigned_url_is_refused_and_writes_nothing(lakehouse: Endpoint) -> None:
    assert lakehouse.root is not None
    s3 = lakehouse.client(signature_version="s3v4")
    s3.create_bucket(Bucket="links")
    s3.put_object(Bucket="links", Key="public", Body=b"shared")
    s3.put_object(Bucket="links", Key="private", Body=b"secret")
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "links", "Key": "public"}, ExpiresIn=60)
    assert httpx.get(get_url).content == b"shared"
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "links", "Key": "upload"}, ExpiresIn=60)
    tampered = {
        "another key": get_url.replace("/links/public?", "/links/private?"),
        "a longer life": get_url.replace("X-Amz-Expires=60", "X-Amz-Expires=604800"),
        "an added parameter": get_url + "&response-content-type=text%2Fhtml",
        "a GET turned into a PUT": get_url.replace("/links/public?", "/links/upload?"),
    }
    for why, url in tampered.items():
        method = "PUT" if "PUT" in why else "GET"
        answer = httpx.request(method, url, content=b"overwrite" if method == "PUT" else None)
        assert (answer.status_code, s3_code(answer)) == (403, "SignatureDoesNotMatch"), why
        assert "secret" not in answer.text
    as_get = httpx.get(put_url)  # a presigned PUT does not also grant a GET
    assert (as_get.status_code, s3_code(as_get)) == (403, "SignatureDoesNotMatch")
    assert not (lakehouse.root / "links" / "upload").exists()
    assert sorted(p.name for p in (lakehouse.root / "links").iterdir()) == ["private", "public"]


def test_a_body_that_is_not_what_was_signed_stores_nothing(lakehouse: Endpoint) -> None:
    assert lakehouse.root is not None
    lakehouse.client().create_bucket(Bucket="guarded")
    url = f"{lakehouse.url}/guarded/file"
    headers = signed("PUT", url, b"the signed body", {})
    answer = httpx.put(url, content=b"THE SIGNED BODY", headers=headers)  # same length, other bytes
    assert (answer.status_code, s3_code(answer)) == (400, "XAmzContentSHA256Mismatch")
    with pytest.raises(ClientError) as exc:
        lakehouse.client().put_object(Bucket="guarded", Key="crc", Body=b"data", ChecksumCRC32="AAAAAA==")
    assert error_code(exc) == "BadDigest"
    assert files_under(lakehouse.root) == ["_s3/buckets/guarded"]


def test_an_unsigned_chunked_body_with_a_checksum_trailer_is_decoded_and_checked(lakehouse: Endpoint) -> None:
    assert lakehouse.root is not None
    lakehouse.client().create_bucket(Bucket="streams")
    data = b"hello, chunked world"

    def send(key: str, crc: str) -> httpx.Response:
        body = b"%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n" % (len(data), data, crc.encode())
        url = f"{lakehouse.url}/streams/{key}"
        headers = signed(
            "PUT",
            url,
            body,
            {
                "content-encoding": "aws-chunked",
                "x-amz-trailer": "x-amz-checksum-crc32",
                "x-amz-decoded-content-length": str(len(data)),
            },
            trailer=True,
        )
        return httpx.put(url, content=body, headers=headers)

    good = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert send("good", good).status_code == 200
    assert lakehouse.client().get_object(Bucket="streams", Key="good")["Body"].read() == data
    bad = send("bad", "AAAAAA==")
    assert (bad.status_code, s3_code(bad)) == (400, "BadDigest")
    assert files_under(lakehouse.root) == ["_s3/buckets/streams", "streams/good"]


def test_an_s3_object_is_the_native_object_both_ways(lakehouse: Endpoint) -> None:
    s3 = lakehouse.client()
    s3.create_bucket(Bucket="both")
    put = s3.put_object(Bucket="both", Key="via/s3.csv", Body=b"a,b\n1,2\n", ContentType="text/csv")
    response = httpx.get(f"{lakehouse.url}{OBJECTS}/both/via/s3.csv")
    assert response.content == b"a,b\n1,2\n"
    assert response.headers["etag"] == put["ETag"]
    assert response.headers["content-type"] == "text/csv"
    native = httpx.put(
        f"{lakehouse.url}{OBJECTS}/datasets/sales/part-0.parquet",
        content=b"PAR1",
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert native.status_code == 201
    got = s3.get_object(Bucket="datasets", Key="sales/part-0.parquet")
    assert (got["Body"].read(), got["ContentType"]) == (b"PAR1", "application/vnd.apache.parquet")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["both", "datasets"]


def test_reserved_prefixes_are_no_buckets(lakehouse: Endpoint) -> None:
    for key in ("vectord/manifest/1.json", "_catalog/sales/v1.json"):  # as their owners write them
        assert httpx.put(f"{lakehouse.url}{INTERNAL_OBJECTS}/{key}", content=b"{}").status_code == 201
    s3 = lakehouse.client()
    assert s3.list_buckets()["Buckets"] == []
    for call in (
        lambda: s3.get_object(Bucket="vectord", Key="manifest/1.json"),
        lambda: s3.put_object(Bucket="vectord", Key="manifest/2.json", Body=b"{}"),
        lambda: s3.list_objects_v2(Bucket="vectord"),
        lambda: s3.create_bucket(Bucket="vectord"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "AccessDenied"
        assert "reserved prefix 'vectord/'" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="_catalog")
    assert error_code(exc) == "InvalidBucketName"


def test_what_is_not_supported_says_so(lakehouse: Endpoint) -> None:
    s3 = lakehouse.client()
    s3.create_bucket(Bucket="plain")
    s3.put_object(Bucket="plain", Key="k", Body=b"v")
    with pytest.raises(ClientError) as exc:
        s3.get_object_tagging(Bucket="plain", Key="k")
    assert error_code(exc) == "NotImplemented"
    assert "tagging" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        s3.list_object_versions(Bucket="plain")
    assert error_code(exc) == "NotImplemented"


def test_an_upload_part_copy_that_cannot_be_done_is_refused_and_stores_no_part(lakehouse: Endpoint) -> None:
    s3 = lakehouse.client()
    s3.create_bucket(Bucket="src")
    s3.put_object(Bucket="src", Key="ten", Body=b"0123456789")
    upload_id = s3.create_multipart_upload(Bucket="src", Key="joined")["UploadId"]
    refusals = {
        "bytes=5-": "InvalidArgument",  # S3 wants both ends
        "bytes=7-3": "InvalidArgument",
        "bytes=0-10": "InvalidRange",  # past the source's last byte
    }
    for copy_range, code in refusals.items():
        with pytest.raises(ClientError) as exc:
            s3.upload_part_copy(
                Bucket="src", Key="joined", UploadId=upload_id, PartNumber=1, CopySource="src/ten",
                CopySourceRange=copy_range,
            )  # fmt: skip
        assert error_code(exc) == code, copy_range
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(Bucket="src", Key="joined", UploadId="0" * 32, PartNumber=1, CopySource="src/ten")
    assert error_code(exc) == "NoSuchUpload"
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(Bucket="src", Key="joined", UploadId=upload_id, PartNumber=1, CopySource="src/missing")
    assert error_code(exc) == "NoSuchKey"
    assert s3.list_parts(Bucket="src", Key="joined", UploadId=upload_id).get("Parts", []) == []
    part = s3.upload_part_copy(
        Bucket="src", Key="joined", UploadId=upload_id, PartNumber=1, CopySource="src/ten", CopySourceRange="bytes=2-4"
    )
    listed = s3.list_parts(Bucket="src", Key="joined", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed] == [(1, 3, part["CopyPartResult"]["ETag"])]


def test_an_abandoned_multipart_upload_is_deleted_once_it_is_older_than_the_expiry(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    config = lakehouse_config("local", root, None, upload_expiry_hours=1 / 3600)  # a second; swept every half
    with serve_in_thread(create_storaged(config)) as url:
        s3 = Endpoint("local", url).client()
        s3.create_bucket(Bucket="big")
        s3.put_object(Bucket="big", Key="kept", Body=b"a finished object")
        abandoned = s3.create_multipart_upload(Bucket="big", Key="never-finished")["UploadId"]
        s3.upload_part(Bucket="big", Key="never-finished", UploadId=abandoned, PartNumber=1, Body=b"x" * 1024)
        deadline = time.monotonic() + 20
        while s3.list_multipart_uploads(Bucket="big").get("Uploads") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert s3.list_multipart_uploads(Bucket="big").get("Uploads", []) == []
        with pytest.raises(ClientError) as exc:
            s3.upload_part(Bucket="big", Key="never-finished", UploadId=abandoned, PartNumber=2, Body=b"late")
        assert error_code(exc) == "NoSuchUpload"
        assert s3.get_object(Bucket="big", Key="kept")["Body"].read() == b"a finished object"
        assert [f for f in files_under(root) if f.startswith("_s3/uploads")] == []
        assert "big/kept" in files_under(root)


def test_keys_the_local_backend_cannot_hold_are_refused_by_code_and_write_nothing(lakehouse: Endpoint) -> None:
    """S3's keys are wider than a directory tree's: what the README says the local backend refuses, it refuses."""
    s3 = lakehouse.client()
    s3.create_bucket(Bucket="keys")
    s3.put_object(Bucket="keys", Key="a", Body=b"file a")
    s3.put_object(Bucket="keys", Key="c/d", Body=b"file c/d")
    refusals = {
        "a/b": "InvalidArgument",  # a is an object, so it cannot also be a prefix
        "c": "InvalidArgument",  # c/ holds objects, so c cannot be one
        "x//y": "InvalidArgument",
        "x/./y": "InvalidArgument",
        "x/../y": "InvalidArgument",
        "back\\slash": "InvalidArgument",
        "control\x01char": "InvalidArgument",
        "k" * 1100: "KeyTooLongError",
    }
    for key, code in refusals.items():
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket="keys", Key=key, Body=b"refused")
        assert error_code(exc) == code, key[:20]
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="keys")["Contents"]) == ["a", "c/d"]
    assert s3.get_object(Bucket="keys", Key="a")["Body"].read() == b"file a"


def test_list_objects_v1_pages_through_common_prefixes(lakehouse: Endpoint) -> None:
    # moto repeats common prefixes across ListObjects (v1) pages; S3 does not, and neither does storaged.
    s3 = lakehouse.client()
    s3.create_bucket(Bucket="tree")
    for key in ("a.txt", "b/1", "b/2", "c/4", "d", "d0/5"):
        s3.put_object(Bucket="tree", Key=key, Body=b"x")
    pages = list(
        s3.get_paginator("list_objects").paginate(Bucket="tree", Delimiter="/", PaginationConfig={"PageSize": 2})
    )
    assert [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])] == ["b/", "c/", "d0/"]
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == ["a.txt", "d"]
