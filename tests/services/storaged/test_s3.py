"""The S3 backend as an operator meets it: a bucket check at startup, a clean exit, servers without conditional PUT."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scripts.net import free_port, wait_for_http
from tests.support.servers import run_server
from tests.support.storage import S3Server, StoragedService, start_storaged, storaged_config

OBJECTS = "/v1/storage/objects"


def serve_storaged(s3: S3Server, **s3_overrides: str) -> tuple[subprocess.Popen[str], str]:
    """`lakehouse serve storaged` on the S3 backend in its own process; returns it and its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LH_")}
    env |= {
        "LH_STORAGED__BIND": f"127.0.0.1:{port}",
        "LH_STORAGED__BACKEND": "s3",
        "LH_LOG__LEVEL": "debug",
    }  # debug: uvicorn's drain lines
    env |= {f"LH_S3__{k.upper()}": str(v) for k, v in (s3.section | s3_overrides).items()}
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", "serve", "storaged"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    return process, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"bucket": "no-such-bucket"}, "S3 bucket 'no-such-bucket' at {endpoint} does not exist"),
        (
            {"endpoint": "http://127.0.0.1:{dead}"},
            "S3 bucket 'lakehouse-primary' at http://127.0.0.1:{dead} is unreachable",
        ),
    ],
)
def test_startup_without_a_usable_bucket_exits_with_one_line(
    s3: S3Server, overrides: dict[str, str], expected: str
) -> None:
    dead = free_port()
    overrides = {k: v.format(dead=dead) for k, v in overrides.items()}
    process, _ = serve_storaged(s3, **overrides)
    output, _ = process.communicate(timeout=60)
    assert process.returncode > 0, output  # uvicorn exits 3 when startup fails; never killed by a signal
    assert expected.format(endpoint=s3.endpoint, dead=dead) in output
    assert "Traceback" not in output
    assert "test-secret" not in output
    [line] = [line for line in output.splitlines() if "S3 bucket" in line]
    assert "\\n" not in line


def test_s3_storaged_serves_and_exits_cleanly(s3: S3Server) -> None:
    # obstore's runtime has crashed interpreters at exit (SIGABRT/SIGSEGV): stop it several times to be sure.
    for _ in range(3):
        process, url = serve_storaged(s3)
        try:
            wait_for_http(f"{url}/health", process)
            assert httpx.put(f"{url}{OBJECTS}/k", content=b"v").status_code == 201
            assert httpx.get(f"{url}{OBJECTS}/k").content == b"v"
            assert httpx.get(f"{url}{OBJECTS}").json()["objects"][0]["key"] == "k"
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
        # uvicorn re-raises the SIGTERM it handled once it has shut down: -15 is its clean exit (as `lakehouse up`
        # treats it); a crash at interpreter exit would be -6 (SIGABRT) or -11 (SIGSEGV).
        assert process.returncode in (0, -signal.SIGTERM), output
        assert "Application shutdown complete." in output
        assert "Traceback" not in output


def header_stripping_proxy(upstream: str) -> Starlette:
    """An S3 server that ignores If-None-Match / If-Match on PUT, like several S3-compatible servers do."""
    client = httpx.AsyncClient(base_url=upstream)

    async def forward(request: Request) -> Response:
        dropped = {"if-none-match", "if-match", "host"} if request.method == "PUT" else {"host"}
        headers = [(k, v) for k, v in request.headers.items() if k not in dropped]
        upstream_response = await client.request(
            request.method, request.url.path, params=request.url.query, headers=headers, content=await request.body()
        )
        passed = {
            k: v for k, v in upstream_response.headers.items() if k not in ("content-length", "transfer-encoding")
        }
        return Response(upstream_response.content, status_code=upstream_response.status_code, headers=passed)

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "HEAD", "PUT", "POST", "DELETE"])])


@pytest.fixture
async def storaged_on_lax_s3(s3: S3Server, tmp_path: Path) -> AsyncIterator[StoragedService]:
    async with run_server(header_stripping_proxy(s3.endpoint)) as proxy:
        config = storaged_config("s3", root=tmp_path, s3=S3Server(proxy))
        async with start_storaged(config) as url:
            yield StoragedService(url, config, "s3", None)


async def test_without_conditional_put_storaged_serialises_writers_itself(storaged_on_lax_s3: StoragedService) -> None:
    async with httpx.AsyncClient(base_url=storaged_on_lax_s3.url, timeout=60) as http:
        # The server really ignores the condition: a create-only PUT straight to it overwrites.
        responses = await asyncio.gather(
            *(http.put(f"{OBJECTS}/race", content=f"w{i}".encode(), headers={"if-none-match": "*"}) for i in range(50))
        )
        first = await http.put(f"{OBJECTS}/m", content=b"1")
        stale = await http.put(f"{OBJECTS}/m", content=b"2", headers={"if-match": '"stale"'})
        fresh = await http.put(f"{OBJECTS}/m", content=b"3", headers={"if-match": first.headers["etag"]})
    assert sorted(r.status_code for r in responses) == [201] + [412] * 49
    assert (stale.status_code, fresh.status_code) == (412, 201)
