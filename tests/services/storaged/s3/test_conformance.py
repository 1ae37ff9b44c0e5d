"""boto3 against moto's S3 server and against storaged's S3 API on both backends: the same calls, the same answers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from mypy_boto3_s3.type_defs import CompletedPartTypeDef

from tests.services.storaged.s3.conftest import Endpoint

MIB = 1 << 20


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_buckets_are_created_found_listed_and_deleted(endpoint: Endpoint) -> None:
    s3 = endpoint.client()
    s3.create_bucket(Bucket="photos")
    s3.head_bucket(Bucket="photos")
    assert "photos" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_bucket_location(Bucket="photos")["LocationConstraint"] is None
    s3.create_bucket(Bucket="photos")  # in us-east-1, S3 lets the owner create a bucket again
    s3.put_object(Bucket="photos", Key="a.jpg", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket="photos")
    assert error_code(exc) == "BucketNotEmpty"
    s3.delete_object(Bucket="photos", Key="a.jpg")
    s3.delete_bucket(Bucket="photos")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="photos")
    assert error_code(exc) == "404"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="photos", Key="a.jpg", Body=b"x")
    assert error_code(exc) == "NoSuchBucket"


def test_objects_keep_their_bytes_type_etag_and_metadata(endpoint: Endpoint) -> None:
    s3 = endpoint.client()
    s3.create_bucket(Bucket="docs")
    body = b"hello, lakehouse\n" * 1000
    put = s3.put_object(
        Bucket="docs", Key="notes/día 1.txt", Body=body, ContentType="text/plain", Metadata={"author": "ada"}
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket="docs", Key="notes/día 1.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"author": "ada"}
    assert got["ETag"] == put["ETag"]
    assert got["ContentLength"] == len(body)
    head = s3.head_object(Bucket="docs", Key="notes/día 1.txt")
    assert (head["ETag"], head["ContentLength"], head["Metadata"]) == (put["ETag"], len(body), {"author": "ada"})
    overridden = s3.get_object(
        Bucket="docs",
        Key="notes/día 1.txt",
        ResponseContentType="application/octet-stream",
        ResponseContentDisposition='attachment; filename="day1.txt"',
        ResponseCacheControl="no-store",
    )
    assert overridden["Body"].read() == body
    assert overridden["ContentType"] == "application/octet-stream"
    assert overridden["ContentDisposition"] == 'attachment; filename="day1.txt"'
    assert overridden["CacheControl"] == "no-store"
    assert s3.head_object(Bucket="docs", Key="notes/día 1.txt")["ContentType"] == "text/plain"  # one response only
    ranged = s3.get_object(Bucket="docs", Key="notes/día 1.txt", Range="bytes=7-15")
    assert ranged["Body"].read() == body[7:16]
    assert ranged["ContentRange"] == f"bytes 7-15/{len(body)}"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="docs", Key="notes/missing.txt")
    assert error_code(exc) == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="docs", Key="notes/día 1.txt", IfMatch='"0123"')
    assert error_code(exc) == "PreconditionFailed"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="docs", Key="notes/día 1.txt", IfNoneMatch=put["ETag"])
    assert error_code(exc) == "304"
    s3.delete_object(Bucket="docs", Key="notes/día 1.txt")
    s3.delete_object(Bucket="docs", Key="notes/día 1.txt")  # deleting what is gone is fine too
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket="docs", Key="notes/día 1.txt")
    assert error_code(exc) == "404"


def test_listing_pages_prefixes_and_delimiters(endpoint: Endpoint) -> None:
    s3 = endpoint.client()
    s3.create_bucket(Bucket="tree")
    keys = ["a.txt", "b/1", "b/2", "b/c/3", "c/4", "d", "d0/5", "e+f g"]
    for key in keys:
        s3.put_object(Bucket="tree", Key=key, Body=key.encode())
    paginator = s3.get_paginator("list_objects_v2")
    listed = [
        o["Key"]
        for page in paginator.paginate(Bucket="tree", PaginationConfig={"PageSize": 3})
        for o in page.get("Contents", [])
    ]
    assert listed == keys
    top = s3.list_objects_v2(Bucket="tree", Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a.txt", "d", "e+f g"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["b/", "c/", "d0/"]
    assert top["KeyCount"] == 6
    pages = list(paginator.paginate(Bucket="tree", Delimiter="/", PaginationConfig={"PageSize": 2}))
    assert [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])] == ["b/", "c/", "d0/"]
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == ["a.txt", "d", "e+f g"]
    under_b = s3.list_objects_v2(Bucket="tree", Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in under_b["Contents"]] == ["b/1", "b/2"]
    assert [p["Prefix"] for p in under_b["CommonPrefixes"]] == ["b/c/"]
    after = s3.list_objects_v2(Bucket="tree", StartAfter="b/2")
    assert [o["Key"] for o in after["Contents"]] == keys[3:]
    v1 = s3.get_paginator("list_objects")
    assert [
        o["Key"]
        for page in v1.paginate(Bucket="tree", PaginationConfig={"PageSize": 3})
        for o in page.get("Contents", [])
    ] == keys
    assert "Owner" not in s3.list_objects_v2(Bucket="tree")["Contents"][0]
    owned = s3.list_objects_v2(Bucket="tree", FetchOwner=True)["Contents"]
    assert all(o["Owner"]["ID"] for o in owned)
    assert all(o["Owner"]["ID"] for o in s3.list_objects(Bucket="tree")["Contents"])
    empty = s3.list_objects_v2(Bucket="tree", Prefix="zzz")
    assert (empty["KeyCount"], "Contents" in empty) == (0, False)


def test_delete_objects_and_copy_object(endpoint: Endpoint) -> None:
    s3 = endpoint.client()
    s3.create_bucket(Bucket="work")
    for key in ("x/1", "x/2", "x/3"):
        s3.put_object(Bucket="work", Key=key, Body=key.encode(), Metadata={"k": key})
    deleted = s3.delete_objects(Bucket="work", Delete={"Objects": [{"Key": "x/1"}, {"Key": "x/2"}, {"Key": "nope"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["nope", "x/1", "x/2"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="work")["Contents"]] == ["x/3"]
    s3.create_bucket(Bucket="other")
    copied = s3.copy_object(Bucket="other", Key="y", CopySource={"Bucket": "work", "Key": "x/3"})
    got = s3.get_object(Bucket="other", Key="y")
    assert (got["Body"].read(), got["Metadata"]) == (b"x/3", {"k": "x/3"})
    assert copied["CopyObjectResult"]["ETag"] == got["ETag"]
    s3.copy_object(Bucket="other", Key="y", CopySource="work/x/3", MetadataDirective="REPLACE", Metadata={"k": "new"})
    assert s3.head_object(Bucket="other", Key="y")["Metadata"] == {"k": "new"}
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket="other", Key="z", CopySource="work/missing")
    assert error_code(exc) == "NoSuchKey"


def test_multipart_upload_assembles_the_parts(endpoint: Endpoint) -> None:
    s3 = endpoint.client()
    s3.create_bucket(Bucket="big")
    upload = s3.create_multipart_upload(Bucket="big", Key="blob.bin", ContentType="application/x-blob")
    upload_id = upload["UploadId"]
    first, second = b"a" * (5 * MIB), b"tail"
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="big").get("Uploads", [])] == [upload_id]
    parts: list[CompletedPartTypeDef] = []
    for number, data in ((1, first), (2, second)):
        part = s3.upload_part(Bucket="big", Key="blob.bin", UploadId=upload_id, PartNumber=number, Body=data)
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    listed = s3.list_parts(Bucket="big", Key="blob.bin", UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, len(first)), (2, len(second))]
    wrong: list[CompletedPartTypeDef] = [parts[0], {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'}]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket="big", Key="blob.bin", UploadId=upload_id, MultipartUpload={"Parts": wrong})
    assert error_code(exc) == "InvalidPart"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="big", Key="blob.bin")
    assert error_code(exc) == "NoSuchKey"  # nothing is visible before completion
    done = s3.complete_multipart_upload(
        Bucket="big", Key="blob.bin", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    got = s3.get_object(Bucket="big", Key="blob.bin")
    assert got["Body"].read() == first + second
    assert got["ContentType"] == "application/x-blob"
    assert got["ETag"] == done["ETag"]
    if endpoint.name != "s3":  # the S3 backend's ETag is the one its server gave the assembled object
        md5s = hashlib.md5(first).digest() + hashlib.md5(second).digest()
        assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-2"'
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket="big", Key="blob.bin", UploadId=upload_id)
    assert error_code(exc) == "NoSuchUpload"
    aborted = s3.create_multipart_upload(Bucket="big", Key="gone")["UploadId"]
    s3.upload_part(Bucket="big", Key="gone", UploadId=aborted, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket="big", Key="gone", UploadId=aborted)
    assert s3.list_multipart_uploads(Bucket="big").get("Uploads", []) == []
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="big")["Contents"]] == ["blob.bin"]


def test_parts_sent_in_any_order_and_sent_again_assemble_as_the_completion_lists_them(endpoint: Endpoint) -> None:
    s3 = endpoint.client()
    s3.create_bucket(Bucket="parts")
    upload_id = s3.create_multipart_upload(Bucket="parts", Key="mixed.bin")["UploadId"]
    one, two, three, tail = (bytes([n]) * (5 * MIB) for n in (1, 2, 3, 4))

    def send(number: int, data: bytes) -> str:
        answer = s3.upload_part(Bucket="parts", Key="mixed.bin", UploadId=upload_id, PartNumber=number, Body=data)
        return str(answer["ETag"])

    etags = {4: send(4, tail[:1000]), 3: send(3, three), 1: send(1, one)}  # the last part first
    etags[2] = send(2, b"x" * (6 * MIB))  # longer than the others: it cannot be where a 5 MiB part 2 would be
    etags[2] = send(2, two)  # sent again: the newer part counts
    if endpoint.name != "moto":  # moto stores a part whatever its Content-MD5 says; S3 answers BadDigest
        with pytest.raises(ClientError) as exc:  # a failed resend leaves the part as it was
            s3.upload_part(
                Bucket="parts",
                Key="mixed.bin",
                UploadId=upload_id,
                PartNumber=1,
                Body=b"\xff" * (5 * MIB),
                ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==",  # the MD5 of nothing
            )
        assert error_code(exc) == "BadDigest"
    listed = s3.list_parts(Bucket="parts", Key="mixed.bin", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [
        (n, etags[n], size) for n, size in ((1, 5 * MIB), (2, 5 * MIB), (3, 5 * MIB), (4, 1000))
    ]
    chosen: list[CompletedPartTypeDef] = [{"PartNumber": n, "ETag": etags[n]} for n in (1, 3, 4)]  # 2 left out
    s3.complete_multipart_upload(Bucket="parts", Key="mixed.bin", UploadId=upload_id, MultipartUpload={"Parts": chosen})
    assert s3.get_object(Bucket="parts", Key="mixed.bin")["Body"].read() == one + three + tail[:1000]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="parts").get("Uploads", [])] == []


def test_managed_transfers_upload_and_download_files(endpoint: Endpoint, tmp_path: Path) -> None:
    s3 = endpoint.client()
    s3.create_bucket(Bucket="files")
    source = tmp_path / "in.bin"
    source.write_bytes(bytes(range(256)) * (45 * 1024))  # 11.25 MiB: three parts of 5 MiB
    transfer = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=2)
    s3.upload_file(str(source), "files", "in.bin", Config=transfer)
    target = tmp_path / "out.bin"
    s3.download_file("files", "in.bin", str(target), Config=transfer)
    assert target.read_bytes() == source.read_bytes()
    if endpoint.name != "s3":  # the S3 backend's ETag is its server's, for the parts storaged sent it
        assert s3.head_object(Bucket="files", Key="in.bin")["ETag"].endswith('-3"')


def test_upload_part_copy_and_the_managed_copy_that_uses_it(endpoint: Endpoint) -> None:
    s3 = endpoint.client()
    s3.create_bucket(Bucket="src")
    s3.create_bucket(Bucket="dst")
    data = bytes(range(256)) * (45 * 1024)  # 11.25 MiB
    s3.put_object(Bucket="src", Key="whole.bin", Body=data, ContentType="application/x-blob")
    upload_id = s3.create_multipart_upload(Bucket="dst", Key="joined.bin")["UploadId"]
    first = s3.upload_part_copy(
        Bucket="dst",
        Key="joined.bin",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": "src", "Key": "whole.bin"},
        CopySourceRange=f"bytes=0-{5 * MIB - 1}",
    )
    assert first["CopyPartResult"]["ETag"] == f'"{hashlib.md5(data[: 5 * MIB]).hexdigest()}"'
    second = s3.upload_part(Bucket="dst", Key="joined.bin", UploadId=upload_id, PartNumber=2, Body=b"tail")
    parts: list[CompletedPartTypeDef] = [
        {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": second["ETag"]},
    ]
    s3.complete_multipart_upload(Bucket="dst", Key="joined.bin", UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket="dst", Key="joined.bin")["Body"].read() == data[: 5 * MIB] + b"tail"
    # boto3's managed copy of an object past its threshold is a multipart upload of UploadPartCopy parts.
    transfer = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.copy({"Bucket": "src", "Key": "whole.bin"}, "dst", "copy.bin", Config=transfer)
    copied = s3.get_object(Bucket="dst", Key="copy.bin")
    assert copied["Body"].read() == data
    assert copied["ContentType"] == "application/x-blob"


def test_presigned_urls_get_and_put_without_a_client(endpoint: Endpoint) -> None:
    s3 = endpoint.client(signature_version="s3v4")  # boto3 presigns with Signature V2 unless told
    s3.create_bucket(Bucket="shared")
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "shared", "Key": "up.txt"}, ExpiresIn=60)
    assert httpx.put(put_url, content=b"via presigned").status_code == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "up.txt"}, ExpiresIn=60)
    assert httpx.get(get_url).content == b"via presigned"
