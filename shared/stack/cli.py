"""The `lakehouse` command: serve one service, run the whole stack, show or check the config."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from shared.config import ConfigError, LakehouseConfig, load_config
from shared.config.toml import render_toml
from shared.registry import names
from shared.server.runner import GateRefused, serve
from shared.stack.checks import check_service
from shared.stack.remote_cli import REMOTE_COMMANDS, add_remote_commands, run_remote
from shared.stack.systemd import write_units
from shared.stack.up import READY_TIMEOUT_SECS, RESTART_POLICIES, run_stack
from shared.telemetry.logging import configure_logging

DEFAULT_UNIT_CONFIG = "/etc/lakehouse/lakehouse.toml"


def _service_name(value: str) -> str:
    if value not in names():
        raise argparse.ArgumentTypeError(f'unknown service "{value}"; valid names: {", ".join(names())}')
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakehouse", description="Run and configure the lakehouse stack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", metavar="PATH", help="config file (default: $LH_CONFIG, then ./lakehouse.toml)")
        return p

    serve_cmd = with_config(commands.add_parser("serve", help="run one service"))
    serve_cmd.add_argument("name", type=_service_name, metavar="NAME", help=", ".join(names()))
    serve_cmd.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default="auto",
        help="auto (default): console lines on a terminal, JSON lines otherwise",
    )
    up_cmd = with_config(commands.add_parser("up", help="run the gateway and every service until Ctrl-C"))
    up_cmd.add_argument(
        "--ready-timeout",
        type=float,
        default=READY_TIMEOUT_SECS,
        metavar="SECS",
        help=f"how long to wait for every service and the gateway's /v1/health (default {READY_TIMEOUT_SECS:g})",
    )
    up_cmd.add_argument(
        "--restart",
        choices=RESTART_POLICIES,
        default="on-failure",
        help="on-failure (default): restart a crashed service with backoff, giving up after 5 crashes in 60 s; "
        "no: stop the whole stack when one service dies",
    )
    up_cmd.add_argument("--quiet", action="store_true", help="show only the summary and problems (warnings, errors)")
    units_cmd = commands.add_parser("systemd-units", help="write one systemd unit per service and lakehouse.target")
    units_cmd.add_argument("--out", required=True, metavar="DIR", help="where to write the units")
    units_cmd.add_argument(
        "--config",
        default=DEFAULT_UNIT_CONFIG,
        metavar="PATH",
        help=f"the config file the units use (LH_CONFIG), also read here (default {DEFAULT_UNIT_CONFIG})",
    )
    units_cmd.add_argument("--user", default="lakehouse", help="the user and group the services run as")
    config_cmd = commands.add_parser("config", help="show or check the effective configuration")
    config_sub = config_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    with_config(config_sub.add_parser("show", help="print the effective config as TOML, secrets redacted"))
    check_cmd = with_config(config_sub.add_parser("check", help='print "ok" or the error, exit 0 or 1'))
    check_cmd.add_argument(
        "--for",
        dest="service",
        type=_service_name,
        metavar="NAME",
        help="also check what this service needs on this box: its bind gate, upstream URLs, directories, key files",
    )
    add_remote_commands(commands, with_config)
    return parser


def _fail(message: str) -> int:
    print(f"lakehouse: error: {message}", file=sys.stderr)
    return 1


def _serve(args: argparse.Namespace, config: LakehouseConfig) -> int:
    configure_logging(config.log.level, json={"auto": None, "json": True, "console": False}[args.log_format])
    try:
        serve(args.name, config)
    except GateRefused as exc:
        return _fail(str(exc))
    return 0


def _up(args: argparse.Namespace, config: LakehouseConfig) -> int:
    return run_stack(
        config, config_path=args.config, ready_timeout_secs=args.ready_timeout, restart=args.restart, quiet=args.quiet
    )


def _config(args: argparse.Namespace, config: LakehouseConfig) -> int:
    if args.action == "show":
        sys.stdout.write(render_toml(config))
        return 0
    if args.service is None:
        print("ok")
        return 0
    problems, notes = check_service(config, args.service, os.environ)
    for note in notes:
        print(f"note: {note}")
    if problems:
        return _fail("\n".join(problems))
    print(f"ok: {args.service} has what it needs on this box")
    return 0


def _systemd_units(args: argparse.Namespace, config: LakehouseConfig) -> int:
    beside = Path(sys.executable).parent / "lakehouse"
    executable = str(beside) if beside.is_file() else shutil.which("lakehouse")
    if executable is None:
        return _fail("cannot find the installed `lakehouse` command for ExecStart; install the package first")
    config_path = str(Path(args.config).absolute())
    for path in write_units(config, Path(args.out), executable=executable, config_path=config_path, user=args.user):
        print(path)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, LakehouseConfig], int]] = {
    "serve": _serve,
    "up": _up,
    "config": _config,
    "systemd-units": _systemd_units,
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
