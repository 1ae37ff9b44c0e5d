"""`lakehouse keys create|list|show|revoke|rotate|usage`: the client keys, through the gateway's `/v1/keys`.

`--json` prints the API's own JSON, so a script takes `.secret` from `lakehouse keys create … --json`; without it,
a short table, and the secret once with a line saying so.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.stack.gateway_client import Gateway, GatewayError
from shared.stack.text_table import render_table

DURATION = re.compile(r"^(\d+)([mhdw])$")
DURATION_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
ACTIONS_WITH_ID = ("show", "revoke", "rotate", "usage")
COLUMNS = ("id", "name", "scopes", "rpm", "tpm", "budget_usd", "expires_at")


def expiry(text: str) -> str:
    """`--expires`: a span from now (30d, 12h, 2w, 90m) or an RFC 3339 time, as RFC 3339."""
    found = DURATION.fullmatch(text)
    if found:
        return (datetime.now(UTC) + int(found[1]) * DURATION_UNITS[found[2]]).isoformat(timespec="seconds")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a span (30d, 12h, 2w, 90m) or an RFC 3339 time, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone (e.g. 2027-01-01T00:00:00Z)")
    return moment.isoformat()


def add_keys_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a key; its secret is shown once")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--scope", action="append", required=True, dest="scopes", help="repeat for each scope")
    create.add_argument("--bucket", action="append", dest="buckets", help="storage and S3: only these buckets")
    create.add_argument("--model", action="append", dest="models", help="chat only these models or tiers")
    create.add_argument("--rpm", type=int, help="requests per minute, every family")
    create.add_argument("--tpm", type=int, help="chat tokens per minute")
    create.add_argument("--budget", type=float, dest="budget_usd", help="chat spend in USD per budget period")
    create.add_argument("--budget-period", choices=["day", "month", "total"], dest="budget_period")
    create.add_argument("--expires", type=expiry, dest="expires_at", help="30d, 12h, 2w, 90m or an RFC 3339 time")
    actions.add_parser("list", help="every key (no secrets)")
    for action in ACTIONS_WITH_ID:
        sub = actions.add_parser(action, help=f"{action} one key")
        sub.add_argument("id", metavar="ID")
    for sub in actions.choices.values():
        sub.add_argument("--json", action="store_true", help="print the API's JSON")


def keys(args: argparse.Namespace, gateway: Gateway) -> int:
    answer = _call(args, gateway)
    if args.json:
        if answer is not None:
            print(json.dumps(answer, indent=2))
        return 0
    if args.action == "list":
        print(render_table(COLUMNS, [[_cell(key.get(c)) for c in COLUMNS] for key in answer["keys"]]))
    elif args.action == "revoke":
        print(f"revoked {args.id}")
    elif args.action == "usage":
        print(json.dumps(answer, indent=2))
    else:
        for name, value in answer.items():
            if name != "secret":
                print(f"{name}: {_cell(value)}")
        if "secret" in answer:
            print(f"secret: {answer['secret']}\n(shown this once: store it now)")
    return 0


def _call(args: argparse.Namespace, gateway: Gateway) -> Any:
    if args.action == "create":
        fields = ("name", "scopes", "buckets", "models", "rpm", "tpm", "budget_usd", "budget_period", "expires_at")
        body = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
        return gateway.keys("POST", body=body)
    if args.action == "list":
        return gateway.keys("GET")
    suffix = {"show": "", "revoke": "", "rotate": "/rotate", "usage": "/usage"}[args.action]
    method = {"show": "GET", "revoke": "DELETE", "rotate": "POST", "usage": "GET"}[args.action]
    if "/" in args.id:
        raise GatewayError(f"no key {args.id!r}")
    return gateway.keys(method, f"/{args.id}{suffix}")


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)
