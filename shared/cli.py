"""The `lakehouse` command: serve one service, run the whole stack, show or check the config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from shared.config import ConfigError, LakehouseConfig, load_config
from shared.logging import configure_logging
from shared.remote_cli import REMOTE_COMMANDS, add_remote_commands, run_remote
from shared.runner import GateRefused, serve
from shared.stack import run_stack
from shared.tomlwriter import render_toml
from shared.topology import SERVICES


def _service_name(value: str) -> str:
    if value not in SERVICES:
        raise argparse.ArgumentTypeError(f'unknown service "{value}"; valid names: {", ".join(SERVICES)}')
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakehouse", description="Run and configure the lakehouse stack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", metavar="PATH", help="config file (default: $LH_CONFIG, then ./lakehouse.toml)")
        return p

    serve_cmd = with_config(commands.add_parser("serve", help="run one service"))
    serve_cmd.add_argument("name", type=_service_name, metavar="NAME", help=", ".join(SERVICES))
    with_config(commands.add_parser("up", help="run the gateway and every service until Ctrl-C"))
    config_cmd = commands.add_parser("config", help="show or check the effective configuration")
    config_sub = config_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    with_config(config_sub.add_parser("show", help="print the effective config as TOML, secrets redacted"))
    with_config(config_sub.add_parser("check", help='print "ok" or the error, exit 0 or 1'))
    add_remote_commands(commands, with_config)
    return parser


def _fail(message: str) -> int:
    print(f"lakehouse: error: {message}", file=sys.stderr)
    return 1


def _serve(args: argparse.Namespace, config: LakehouseConfig) -> int:
    configure_logging(config.log.level)
    try:
        serve(args.name, config)
    except GateRefused as exc:
        return _fail(str(exc))
    return 0


def _up(args: argparse.Namespace, config: LakehouseConfig) -> int:
    return run_stack(config, config_path=args.config)


def _config(args: argparse.Namespace, config: LakehouseConfig) -> int:
    if args.action == "show":
        sys.stdout.write(render_toml(config))
    else:
        print("ok")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, LakehouseConfig], int]] = {
    "serve": _serve,
    "up": _up,
    "config": _config,
    **dict.fromkeys(REMOTE_COMMANDS, run_remote),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Until the config says otherwise, warnings (e.g. a missing config file) go to stderr.
    configure_logging("info", stream=sys.stderr)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _fail(f"invalid configuration:\n{exc}")
    return COMMANDS[args.command](args, config)


if __name__ == "__main__":
    sys.exit(main())
