"""Finding 1 of issue 23: the internal prefixes (the catalog's, vectord's, the key store's) are not reachable
through the public storage API, while the services that own them keep using storaged over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from mypy_boto3_s3 import S3Client
from pydantic import SecretStr

from services.storaged.client import StoragedClient
from services.storaged.schemas import reserved_prefix
from services.vectord.app import create_app as create_vectord
from tests.security.harness import S3_KEYS, AttackStack, attack_stack, wait_for_vectord
from tests.support.servers import run_server
from tests.support.storage import StoragedService, start_storaged, storaged_config

# (a key inside each reserved prefix, the prefix the refusal must name)
INTERNAL_KEYS = [
    ("_catalog/trips/v0000000002.json", "_catalog/"),
    ("_catalog/trips/v0000000001.json", "_catalog/"),  # the live manifest
    ("vectord/manifest/00000000000000000099.json", "vectord/"),
    ("vectord/wal/00000000000000000001", "vectord/"),
    ("vectord/snapshots/docs/00000000000000000001", "vectord/"),
    ("_keys/root.json", "_keys/"),
    ("_catalog", "_catalog/"),  # the bare segment: on S3 it could be an object beside the prefix
]
# The same keys spelled so that only a decoding server sees the prefix.
ENCODED_PATHS = ["%5Fcatalog/trips/v0000000002.json", "_catalog%2Ftrips%2Fv0000000002.json", "vectord%2Fwal%2Fx"]


@pytest.fixture
async def attack(tmp_path: Path) -> AsyncIterator[AttackStack]:
    async with attack_stack(tmp_path) as stack:
        yield stack


def objects(attack: AttackStack, key: str) -> str:
    return f"{attack.gateway}/v1/storage/objects/{key}"


def assert_forbidden(response: httpx.Response, prefix: str, *, body: bool = True) -> None:
    assert response.status_code == 403, response.text
    if body:
        error = response.json()["error"]
        assert error["code"] == "forbidden"
        assert prefix in error["message"]


@pytest.mark.parametrize(("key", "prefix"), INTERNAL_KEYS)
@pytest.mark.parametrize("method", ["PUT", "GET", "HEAD", "DELETE"])
async def test_internal_keys_are_refused_through_the_gateway(
    attack: AttackStack, method: str, key: str, prefix: str
) -> None:
    response = await attack.http.request(method, objects(attack, key), content=b"{}" if method == "PUT" else None)
    assert_forbidden(response, prefix, body=method != "HEAD")


@pytest.mark.parametrize("path", ENCODED_PATHS)
@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
async def test_percent_encoded_internal_keys_are_refused_too(attack: AttackStack, method: str, path: str) -> None:
    response = await attack.http.request(method, objects(attack, path), content=b"{}" if method == "PUT" else None)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"


async def test_a_forged_manifest_never_reaches_the_catalog(attack: AttackStack) -> None:
    forged = await attack.http.put(objects(attack, "_catalog/trips/v0000000002.json"), content=b"not a manifest")
    assert forged.status_code == 403
    assert (await attack.http.delete(objects(attack, "_catalog/trips/v0000000001.json"))).status_code == 403
    listing = await attack.http.get(f"{attack.gateway}/v1/catalog/datasets")
    assert listing.status_code == 200, listing.text
    assert [(d["name"], d["version"]) for d in listing.json()["datasets"]] == [("trips", 1)]


async def test_a_listing_of_everything_shows_no_internal_object(attack: AttackStack) -> None:
    keys: list[str] = []
    after: str | None = None
    while True:
        params = {"prefix": "", "limit": "2", **({"after": after} if after else {})}
        page = await attack.http.get(f"{attack.gateway}/v1/storage/objects", params=params)
        assert page.status_code == 200, page.text
        keys += [o["key"] for o in page.json()["objects"]]
        after = page.json()["next"]
        if after is None:
            break
    assert keys, "the dataset's own Parquet files are public objects"
    assert all(k.startswith("datasets/") for k in keys), keys


@pytest.mark.parametrize("prefix", ["_cat", "_", "v", "vectord", "_keys"])
async def test_a_listing_around_a_reserved_prefix_shows_none_of_it(attack: AttackStack, prefix: str) -> None:
    page = await attack.http.get(f"{attack.gateway}/v1/storage/objects", params={"prefix": prefix})
    assert page.status_code == 200, page.text
    assert page.json()["objects"] == []


@pytest.mark.parametrize(
    ("prefix", "reserved"),
    [("_catalog/", "_catalog/"), ("_catalog/trips/", "_catalog/"), ("vectord/wal/", "vectord/"), ("_keys/", "_keys/")],
)
async def test_a_listing_inside_a_reserved_prefix_is_refused(attack: AttackStack, prefix: str, reserved: str) -> None:
    page = await attack.http.get(f"{attack.gateway}/v1/storage/objects", params={"prefix": prefix})
    assert_forbidden(page, reserved)


async def test_the_internal_route_is_not_forwarded_by_the_gateway(attack: AttackStack) -> None:
    for path in ("/internal/storage/objects/_catalog/trips/v0000000001.json", "/internal/storage/objects"):
        response = await attack.http.get(attack.gateway + path)
        # The gateway's own 404 (it forwards only /v1/<family>), never an object or a listing from storaged.
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
        assert '"objects"' not in response.text
        assert '"schema"' not in response.text


async def test_the_catalog_still_commits_and_lists_through_storaged(attack: AttackStack) -> None:
    again = await attack.http.post(
        f"{attack.gateway}/v1/ingest/trips", content=b"id,city\n4,delft\n", headers={"content-type": "text/csv"}
    )
    assert again.status_code == 201, again.text
    listing = (await attack.http.get(f"{attack.gateway}/v1/catalog/datasets")).json()
    assert [(d["name"], d["version"]) for d in listing["datasets"]] == [("trips", 2)]
    versions = await attack.http.get(f"{attack.gateway}/v1/catalog/datasets/trips/versions")
    assert versions.status_code == 200
    assert [v["version"] for v in versions.json()["versions"]] == [1, 2]


async def test_vectord_still_persists_and_recovers_after_a_restart(attack: AttackStack) -> None:
    async with run_server(create_vectord(attack.vectord_config)) as restarted, httpx.AsyncClient() as http:
        await wait_for_vectord(http, restarted)
        info = await http.get(f"{restarted}/v1/vectors/docs")
        assert info.status_code == 200, info.text
        assert info.json()["count"] == 5
        found = await http.post(f"{restarted}/v1/vectors/docs/query", json={"vector": [3, 0, 0], "k": 1})
        assert [m["id"] for m in found.json()["matches"]] == ["d3"]


async def test_public_and_internal_routes_on_every_backend(storaged: StoragedService) -> None:
    async with StoragedClient(storaged.url, internal=True) as owner, StoragedClient(storaged.url) as public:
        await owner.put("_catalog/d/v0000000001.json", b"{}")
        await owner.put("vectord/wal/00000000000000000001", b"x")
        await public.put("datasets/d/part-0.parquet", b"p")
        assert await owner.get_bytes("_catalog/d/v0000000001.json") == b"{}"
        assert [o.key async for o in owner.iter_objects("vectord/")] == ["vectord/wal/00000000000000000001"]
        assert [o.key async for o in public.iter_objects("")] == ["datasets/d/part-0.parquet"]
        async with httpx.AsyncClient() as http:
            refused = await http.get(f"{storaged.url}/v1/storage/objects/_catalog/d/v0000000001.json")
        assert_forbidden(refused, "_catalog/")


async def test_the_internal_route_asks_for_the_token_as_the_public_one_does(tmp_path: Path) -> None:
    config = storaged_config("local", root=tmp_path / "objects")
    config = config.model_copy(update={"auth": config.auth.model_copy(update={"token": SecretStr("rt-token-1")})})
    async with start_storaged(config) as url, httpx.AsyncClient() as http:
        anonymous = await http.put(f"{url}/internal/storage/objects/_catalog/d/v0000000001.json", content=b"{}")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "unauthorized"
        async with StoragedClient(url, token="rt-token-1", internal=True) as owner:
            await owner.put("_catalog/d/v0000000001.json", b"{}")
            assert await owner.get_bytes("_catalog/d/v0000000001.json") == b"{}"


def files_and_bytes(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def s3_client(attack: AttackStack) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=attack.gateway,
        aws_access_key_id=S3_KEYS["access_key_id"],
        aws_secret_access_key=S3_KEYS["secret_access_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.mark.parametrize(("key", "prefix"), INTERNAL_KEYS)
async def test_the_s3_door_reaches_no_internal_key(attack: AttackStack, key: str, prefix: str) -> None:
    """The same keys as S3 names them (bucket = first segment): refused by S3's rules, nothing read or written."""
    s3 = s3_client(attack)
    await asyncio.to_thread(s3.create_bucket, Bucket="trips-copy")  # a copy's target that exists
    before = files_and_bytes(attack.root)
    bucket, _, rest = key.partition("/")
    attempts: list[Callable[[], object]] = [
        lambda: s3.list_objects_v2(Bucket=bucket),
        lambda: s3.put_object(Bucket=bucket, Key=rest or "x", Body=b"{}"),
        lambda: s3.copy_object(Bucket="trips-copy", Key="k", CopySource={"Bucket": bucket, "Key": rest or "x"}),
    ]
    if rest:
        attempts += [
            lambda: s3.get_object(Bucket=bucket, Key=rest)["Body"].read(),
            lambda: s3.delete_object(Bucket=bucket, Key=rest),
        ]
    for attempt in attempts:
        with pytest.raises(ClientError) as exc:
            await asyncio.to_thread(attempt)
        assert exc.value.response["Error"]["Code"] in ("AccessDenied", "InvalidBucketName"), prefix
    names = [b["Name"] for b in (await asyncio.to_thread(s3.list_buckets))["Buckets"]]
    assert not [name for name in names if reserved_prefix(name + "/")], names
    after = files_and_bytes(attack.root)
    # vectord is live and may checkpoint meanwhile (its log folded into a snapshot: seen once under load), so its
    # files are held to this: the attacked key as before, and no file holding what the door sent; every other file
    # exactly as before.
    assert {k: v for k, v in after.items() if not k.startswith("vectord/")} == {
        k: v for k, v in before.items() if not k.startswith("vectord/")
    }
    assert after.get(key) == before.get(key)
    assert [k for k, v in after.items() if v == b"{}"] == [k for k, v in before.items() if v == b"{}"]
