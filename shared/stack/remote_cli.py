"""The `lakehouse` commands that talk to a running stack through its gateway (status, sql, ingest, chat, ...).

Each command is a function of its parsed arguments and a `Gateway`; the table below wires them into the parser.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from shared.config import LakehouseConfig
from shared.config.s3_api import describe_s3_api
from shared.stack.gateway_client import Gateway, GatewayError, gateway_url_from_bind
from shared.stack.keys_cli import add_keys_arguments, keys
from shared.stack.text_table import render_table

URL_ENV = "LAKEHOUSE_URL"
TOKEN_ENV = "LAKEHOUSE_TOKEN"
SQL_ACCEPT = {"table": "application/json", "json": "application/json", "csv": "text/csv"}


def status(args: argparse.Namespace, gateway: Gateway) -> int:
    report = gateway.health()
    rows = [
        (name, s["status"], f"{s['latency_ms']:.1f}", s.get("detail", "")) for name, s in report["services"].items()
    ]
    print(render_table(["service", "status", "latency_ms", "detail"], rows))
    print(f"\nstack: {report['status']} (gateway {gateway.url})")
    s3_api = report.get("s3_api")
    if isinstance(s3_api, dict):
        print(
            describe_s3_api(enabled=bool(s3_api.get("enabled")), endpoint=gateway.url, region=str(s3_api.get("region")))
        )
    return 0 if report["status"] == "ok" else 1


def datasets(args: argparse.Namespace, gateway: Gateway) -> int:
    listing = gateway.datasets()
    # A dataset whose manifest catalogd cannot read comes with only name, version and error.
    rows = [
        (
            d["name"],
            d["version"],
            d.get("rows", ""),
            d.get("bytes", ""),
            d.get("updated_at") or f"unreadable: {d['error']}",
        )
        for d in listing
    ]
    print(render_table(["dataset", "version", "rows", "bytes", "updated_at"], rows) if rows else "no datasets yet")
    return 0


def ingest(args: argparse.Namespace, gateway: Gateway) -> int:
    path = Path(args.file)
    try:
        file = path.open("rb")
    except OSError as exc:
        raise GatewayError(f"cannot read {path}: {exc.strerror}") from None
    with file, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr) as bar:
        result = gateway.ingest(file, args.dataset, mode=args.mode, filename=path.name, progress=bar.update)
    print(
        f"{result['dataset']}: version {result['version']} ({result['mode']}), {result['rows']} rows, "
        f"{len(result['files'])} file(s), {result['bytes_in']} bytes in, {result['bytes_out']} bytes out"
    )
    return 0


def sql(args: argparse.Namespace, gateway: Gateway) -> int:
    fmt = args.format or ("table" if sys.stdout.isatty() else "csv")
    chunks = gateway.sql(args.query, accept=SQL_ACCEPT[fmt])
    if fmt == "csv":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        return 0
    result = json.loads(b"".join(chunks))
    if fmt == "json":
        print(json.dumps(result, indent=2))
        return 0
    print(render_table([c["name"] for c in result["columns"]], result["rows"]))
    more = " (truncated: use --format csv for every row)" if result.get("truncated") else ""
    print(f"\n{result['row_count']} row(s){more}")
    return 0


def chat(args: argparse.Namespace, gateway: Gateway) -> int:
    for delta in gateway.chat(args.model, args.prompt):
        sys.stdout.write(delta)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _open_input(name: str | None) -> IO[bytes]:
    if name is None or name == "-":
        return sys.stdin.buffer
    try:
        return Path(name).open("rb")
    except OSError as exc:
        raise GatewayError(f"cannot read {name}: {exc.strerror}") from None


def put(args: argparse.Namespace, gateway: Gateway) -> int:
    content_type = (mimetypes.guess_type(args.file)[0] if args.file else None) or "application/octet-stream"
    with _open_input(args.file) as file:
        result = gateway.put(args.key, file, content_type=content_type)
    print(f"{result['key']}: {result['size']} bytes, etag {result['etag']}")
    return 0


def get(args: argparse.Namespace, gateway: Gateway) -> int:
    chunks = gateway.get(args.key)
    if args.file is None or args.file == "-":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        return 0
    target = Path(args.file)
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return 0


RemoteCommand = Callable[[argparse.Namespace, Gateway], int]

REMOTE_COMMANDS: dict[str, tuple[RemoteCommand, str]] = {
    "status": (status, "every service's health and latency, through the gateway"),
    "datasets": (datasets, "the catalog's datasets"),
    "ingest": (ingest, "upload a CSV / NDJSON / Parquet file into a dataset"),
    "sql": (sql, "run a read-only SQL query"),
    "chat": (chat, "ask a model, streaming the answer"),
    "put": (put, "store an object (from FILE or stdin)"),
    "get": (get, "read an object (to FILE or stdout)"),
    "keys": (keys, "make and manage client keys (create, list, show, revoke, rotate, usage)"),
}


def add_remote_commands(
    commands: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
) -> None:
    """Add the remote commands to the `lakehouse` parser's subcommands."""
    parsers = {name: with_config(commands.add_parser(name, help=text)) for name, (_, text) in REMOTE_COMMANDS.items()}
    for parser in parsers.values():
        parser.add_argument("--url", help=f"the gateway (default: ${URL_ENV}, then the config's gateway bind)")
        parser.add_argument("--token", help=f"the stack's auth token (default: ${TOKEN_ENV}, then the config's)")
    parsers["ingest"].add_argument("file", metavar="FILE")
    parsers["ingest"].add_argument("dataset", metavar="DATASET")
    parsers["ingest"].add_argument("--mode", choices=["append", "replace", "create"], default="append")
    parsers["sql"].add_argument("query", metavar="QUERY")
    parsers["sql"].add_argument("--format", choices=list(SQL_ACCEPT), help="default: table on a terminal, else csv")
    parsers["chat"].add_argument("model", metavar="MODEL", help="a model string or a [models] tier name")
    parsers["chat"].add_argument("prompt", metavar="PROMPT")
    for name in ("put", "get"):
        parsers[name].add_argument("key", metavar="KEY")
        parsers[name].add_argument("file", metavar="FILE", nargs="?", help="default: stdin / stdout")
    add_keys_arguments(parsers["keys"])


def run_remote(args: argparse.Namespace, config: LakehouseConfig) -> int:
    url = args.url or os.environ.get(URL_ENV) or gateway_url_from_bind(config.gateway.bind)
    token = args.token or os.environ.get(TOKEN_ENV) or config.auth.token.get_secret_value()
    command, _ = REMOTE_COMMANDS[args.command]
    try:
        with Gateway(url, token=token) as gateway:
            return command(args, gateway)
    except GatewayError as exc:
        print(f"lakehouse {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
