"""`just bench-s3`: the S3 API against the native `/v1/storage` API, both through the gateway, same run, local backend.

Large transfers: a 256 MiB GET (curl; a presigned URL for S3, so curl signs nothing and storaged checks a full SigV4
signature), a 256 MiB PUT the way each API's clients send it (curl -T for native; boto3's multipart upload with its
default CRC32 trailing checksums for S3, the same multipart upload with curl PUTting each part to a presigned URL so
that boto3's own CPU is out of it, then a presigned single PUT with curl for the like-for-like row). boto3's CPU
time is printed beside its rows. Small objects: 4 KiB GETs at c16, native vs presigned S3, through the gateway and
straight at storaged — every S3 request pays canonicalisation and the HMAC chain (the signing key is cached per
secret/day/region, the rest is per request). Each large transfer runs `--repeat` times and the median counts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import httpx
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from mypy_boto3_s3 import S3Client
from mypy_boto3_s3.type_defs import CompletedPartTypeDef

from scripts.bench_storage import curl_seconds, median_of, random_file, storaged_behind_gateway
from scripts.benchlib import Result, announce_load_generator, load_average, measure, result_row

MIB = 1 << 20
ACCESS_KEY = "bench-key"
SECRET_KEY = "bench-secret-0123456789abcdef"


def client(endpoint: str) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1}),
    )


def timed(run: Callable[[], object], cpu: list[float] | None = None) -> float:
    """Wall seconds of `run`; `cpu` collects this process's CPU seconds over it (the client's share, for boto3)."""
    began, began_cpu = time.perf_counter(), time.process_time()
    run()
    if cpu is not None:
        cpu.append(time.process_time() - began_cpu)
    return time.perf_counter() - began


def split_parts(source: Path, part_bytes: int) -> list[Path]:
    """`source` cut into part files, so that curl can PUT each one (not timed)."""
    parts: list[Path] = []
    with source.open("rb") as f:
        while chunk := f.read(part_bytes):
            part = source.with_name(f"{source.name}.part{len(parts) + 1}")
            part.write_bytes(chunk)
            parts.append(part)
    return parts


def curl_multipart(s3: S3Client, parts: list[Path], key: str) -> float:
    """A multipart upload whose parts curl PUTs to presigned URLs, one after another: the server's cost of a
    multipart PUT without boto3's (Python) client in the way. Create and Complete are counted too."""
    began = time.perf_counter()
    upload_id = s3.create_multipart_upload(Bucket="bench", Key=key)["UploadId"]
    completed: list[CompletedPartTypeDef] = []
    for number, part in enumerate(parts, start=1):
        params = {"Bucket": "bench", "Key": key, "UploadId": upload_id, "PartNumber": number}
        url = s3.generate_presigned_url("upload_part", Params=params)
        etag = subprocess.run(
            ["curl", "-sS", "-f", "-T", str(part), "-o", "/dev/null", "-w", "%header{etag}", url],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        completed.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket="bench", Key=key, UploadId=upload_id, MultipartUpload={"Parts": completed})
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256, help="size of the large object")
    parser.add_argument("--part-mib", type=int, default=16, help="multipart part size")
    parser.add_argument("--seconds", type=int, default=8, help="duration of each small-GET measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each large transfer (the median counts)")
    args = parser.parse_args()
    size = args.mib * MIB
    work = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    try:
        source = random_file(work / "source.bin", args.mib)
        multipart = TransferConfig(multipart_threshold=args.part_mib * MIB, multipart_chunksize=args.part_mib * MIB)
        announce_load_generator()
        rows: list[tuple[str, float, float]] = []  # label, native seconds, S3 seconds
        keys = {"LH_S3_API__ACCESS_KEY_ID": ACCESS_KEY, "LH_S3_API__SECRET_ACCESS_KEY": SECRET_KEY}
        with storaged_behind_gateway(work, size, keys) as (storaged, gateway):
            s3 = client(gateway)
            s3.create_bucket(Bucket="bench")
            native = f"{gateway}/v1/storage/objects/bench/native.bin"
            upload_cpu: list[float] = []
            parts = split_parts(source, args.part_mib * MIB)
            put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "bench", "Key": "single.bin"})
            # Rounds interleave the four PUTs, so that each sees the same state of the box (page cache, the disk's
            # write-back, other work on the host): one after another, a block of five of one kind drifts.
            puts: dict[str, Callable[[], float]] = {
                "native": lambda: curl_seconds(["-T", str(source), native]),
                "boto3": lambda: timed(
                    lambda: s3.upload_file(str(source), "bench", "s3.bin", Config=multipart), upload_cpu
                ),
                "curl parts": lambda: curl_multipart(s3, parts, "curl-parts.bin"),
                "single": lambda: curl_seconds(["-T", str(source), put_url]),
            }
            seconds: dict[str, list[float]] = {name: [] for name in puts}
            for _ in range(args.repeat):
                for name, put in puts.items():
                    seconds[name].append(put())
            native_put, upload = statistics.median(seconds["native"]), statistics.median(seconds["boto3"])
            rows.append((f"PUT: curl native vs boto3 multipart ({args.part_mib} MiB parts)", native_put, upload))
            rows.append(
                (
                    f"PUT: curl native vs curl multipart ({args.part_mib} MiB parts, presigned)",
                    native_put,
                    statistics.median(seconds["curl parts"]),
                )
            )
            rows.append(
                ("PUT: curl native vs curl presigned single PUT", native_put, statistics.median(seconds["single"]))
            )
            get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "s3.bin"})
            native_get = median_of(args.repeat, lambda: curl_seconds([native]))
            presigned_get = median_of(args.repeat, lambda: curl_seconds([get_url]))
            rows.append(("GET: curl native vs curl presigned", native_get, presigned_get))
            download_cpu: list[float] = []
            download = median_of(
                args.repeat,
                lambda: timed(
                    lambda: s3.download_file("bench", "s3.bin", str(work / "got.bin"), Config=multipart), download_cpu
                ),
            )
            rows.append(("GET: curl native vs boto3 download_file (ranged, to a file)", native_get, download))

            small = os.urandom(4096)
            httpx.put(f"{gateway}/v1/storage/objects/bench/small-4k", content=small).raise_for_status()
            small_url = s3.generate_presigned_url(
                "get_object", Params={"Bucket": "bench", "Key": "small-4k"}, ExpiresIn=3600
            )
            measure("warm-up", f"{gateway}/v1/storage/objects/bench/small-4k", 8, 1)
            small_native = measure("4 KiB native", f"{gateway}/v1/storage/objects/bench/small-4k", 16, args.seconds)
            measure("warm-up", small_url, 8, 1)
            small_s3 = measure("4 KiB S3", small_url, 16, args.seconds)
            # The same two straight at storaged: what the S3 API costs there, without the gateway's hop.
            direct_url = client(storaged).generate_presigned_url(  # a presigned URL signs the host it names
                "get_object", Params={"Bucket": "bench", "Key": "small-4k"}, ExpiresIn=3600
            )
            direct_native = measure(
                "4 KiB native, direct", f"{storaged}/v1/storage/objects/bench/small-4k", 16, args.seconds
            )
            direct_s3 = measure("4 KiB S3, direct", direct_url, 16, args.seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_tables(args.mib, rows, [(small_native, small_s3), (direct_native, direct_s3)])
    print(
        f"\nboto3's own CPU (this process), median: upload_file {statistics.median(upload_cpu):.2f} s of "
        f"{upload:.2f} s, download_file {statistics.median(download_cpu):.2f} s of {download:.2f} s"
    )


def print_tables(mib: int, rows: list[tuple[str, float, float]], small: list[tuple[Result, Result]]) -> None:
    print(f"\nload average at the end: {load_average()}\n")
    print(f"| {mib} MiB, through the gateway | native s | S3 s | native MB/s | S3 MB/s | S3 / native |")
    print("|---|---|---|---|---|---|")
    for label, native_seconds, s3_seconds in rows:
        print(
            f"| {label} | {native_seconds:.2f} | {s3_seconds:.2f} | {mib / native_seconds:.0f} "
            f"| {mib / s3_seconds:.0f} | {native_seconds / s3_seconds:.2f}x |"
        )
    print()
    print("| 4 KiB GET, c16 | req/s | p50 ms | p99 ms | errors | vs native |")
    print("|---|---|---|---|---|---|")
    for native, s3 in small:
        for result in (native, s3):
            print(result_row(result, f"{result.requests_per_sec / native.requests_per_sec:.2f}x"))


if __name__ == "__main__":
    main()
