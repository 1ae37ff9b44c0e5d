"""A client of a running stack, through its gateway: what the `lakehouse` commands and scripts call.

Every failure surfaces as `GatewayError` carrying the API's own error message (or why the gateway could not be
reached), so a command prints one line and exits non-zero instead of a traceback.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any
from urllib.parse import quote

import httpx

from shared.config.base import split_bind

CHUNK_BYTES = 1 << 20
# A query or an ingest may run for minutes; only connecting is expected to be quick.
TIMEOUT = httpx.Timeout(connect=5.0, read=None, write=None, pool=5.0)

Progress = Callable[[int], object]


class GatewayError(Exception):
    """The stack answered with an error, or could not be reached; the message is for a human."""


def gateway_url_from_bind(bind: str) -> str:
    """The URL a client on this box uses for a gateway bound to `bind` (a wildcard bind is reached on loopback)."""
    host, port = split_bind(bind)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def object_path(key: str) -> str:
    return "/v1/storage/objects/" + quote(key, safe="/")


def error_message(response: httpx.Response) -> str:
    """The API's own message when the body has the stack's error shape, else the status line."""
    try:
        error = response.json()["error"]
        return f"{error['message']} ({error['code']}, HTTP {response.status_code})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code} {response.reason_phrase}"


class Gateway:
    def __init__(self, url: str, *, token: str = "", transport: httpx.BaseTransport | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.url, headers=headers, timeout=TIMEOUT, transport=transport, trust_env=False
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        try:
            with self._client.stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise GatewayError(error_message(response))
                yield response
        except httpx.TransportError as exc:
            raise GatewayError(f"cannot reach the gateway at {self.url}: {exc}") from exc

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._stream(method, path, **kwargs) as response:
            response.read()
            try:
                return response.json()
            except ValueError:
                raise GatewayError(f"{method} {path} answered a body that is not JSON") from None

    def keys(self, method: str, suffix: str = "", body: dict[str, Any] | None = None) -> Any:
        """`/v1/keys<suffix>`: the JSON answer, or None for a 204 (a revocation)."""
        with self._stream(method, "/v1/keys" + suffix, json=body) as response:
            response.read()
            if response.status_code == 204:
                return None
            try:
                return response.json()
            except ValueError:
                raise GatewayError(f"{method} /v1/keys{suffix} answered a body that is not JSON") from None

    def health(self) -> dict[str, Any]:
        """GET /v1/health; a degraded stack answers 503 with the same report, which is what a status wants."""
        try:
            response = self._client.get("/v1/health")
        except httpx.TransportError as exc:
            raise GatewayError(f"cannot reach the gateway at {self.url}: {exc}") from exc
        if response.status_code not in (200, 503):
            raise GatewayError(error_message(response))
        report: dict[str, Any] = response.json()
        return report

    def datasets(self) -> list[dict[str, Any]]:
        datasets: list[dict[str, Any]] = self._json("GET", "/v1/catalog/datasets")["datasets"]
        return datasets

    def ingest(
        self, file: IO[bytes], dataset: str, *, mode: str, filename: str, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Upload `file` as `curl -F file=@<filename>` does: a multipart form carrying the file's name, so that
        ingestd picks the format from it by its own suffix table, the one place that table lives."""
        boundary = secrets.token_hex(16)
        # Quotes and line breaks in a file name are percent-encoded, as the HTML standard has browsers do.
        quoted = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )

        def chunks() -> Iterator[bytes]:
            yield head.encode()
            while chunk := file.read(CHUNK_BYTES):
                if progress is not None:
                    progress(len(chunk))
                yield chunk
            yield f"\r\n--{boundary}--\r\n".encode()

        result: dict[str, Any] = self._json(
            "POST",
            f"/v1/ingest/{quote(dataset, safe='')}",
            params={"mode": mode},
            content=chunks(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        return result

    def sql(self, query: str, *, accept: str) -> Iterator[bytes]:
        """The result in the `accept` format, chunk by chunk as queryd streams it."""
        body = json.dumps({"sql": query}).encode()
        headers = {"content-type": "application/json", "accept": accept}
        with self._stream("POST", "/v1/sql", content=body, headers=headers) as response:
            yield from response.iter_bytes()

    def chat(self, model: str, prompt: str) -> Iterator[str]:
        """The answer's text deltas, as chatd streams them (OpenAI chat.completion.chunk events)."""
        payload = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True}
        with self._stream("POST", "/v1/chat/completions", json=payload) as response:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    return
                event = json.loads(data)
                if "error" in event:
                    raise GatewayError(f"{event['error'].get('message')} ({event['error'].get('code')}, mid-stream)")
                for choice in event.get("choices", []):
                    if text := (choice.get("delta") or {}).get("content"):
                        yield text

    def put(self, key: str, file: IO[bytes], *, content_type: str) -> dict[str, Any]:
        def chunks() -> Iterator[bytes]:
            while chunk := file.read(CHUNK_BYTES):
                yield chunk

        result: dict[str, Any] = self._json(
            "PUT", object_path(key), content=chunks(), headers={"content-type": content_type}
        )
        return result

    def get(self, key: str) -> Iterator[bytes]:
        with self._stream("GET", object_path(key)) as response:
            yield from response.iter_bytes()
