"""`lakehouse systemd-units`: one systemd unit per service plus lakehouse.target, for one service per box."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from shared.config import LakehouseConfig
from shared.registry import names
from shared.registry import service as registered

TARGET = "lakehouse.target"
# Each service runs in the state directory systemd creates for it (StateDirectory=lakehouse), so a relative path in
# the config (storaged's default root "lakehouse-data/objects") lands there, writable and owned by the service user.
STATE_DIR = PurePosixPath("/var/lib/lakehouse")

# What systemd offers a network service that reads its config and writes only its own paths.
SANDBOX = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "SystemCallArchitectures=native",
    "CapabilityBoundingSet=",
    "UMask=0027",
)


def writable_paths(config: LakehouseConfig, service: str) -> list[str]:
    section = config.section(service)
    paths = []
    for writable in registered(service).writable:
        value = str(getattr(section, writable.key) or "")
        if value:
            path = STATE_DIR / value  # an absolute value stays as it is
            paths.append(str(path.parent if writable.is_file else path))
    return paths


def key_files(config: LakehouseConfig, service: str) -> list[str]:
    return [key.path for key in registered(service).key_files(config.section(service)) if key.path]


def service_unit(config: LakehouseConfig, service: str, *, executable: str, config_path: str, user: str) -> str:
    lines = [
        "[Unit]",
        f"Description=lakehouse {service}",
        "Documentation=https://github.com/lakehouse/lakehouse/blob/main/docs/deploy.md",
        "Wants=network-online.target",
        "After=network-online.target",
        f"PartOf={TARGET}",
        "",
        "[Service]",
        # READY=1 comes once the service's own /health is ok (shared/server/notify.py), so a unit is "active" when
        # it serves, and units ordered after it start then; a replay of a large vector log may take minutes.
        "Type=notify",
        "NotifyAccess=main",
        "TimeoutStartSec=15min",
        f"User={user}",
        f"Group={user}",
        f"Environment=LH_CONFIG={config_path}",
        # Secrets (LH_AUTH__TOKEN, LH_S3__SECRET_ACCESS_KEY, ...) belong in an env file only root can read.
        "EnvironmentFile=-/etc/lakehouse/lakehouse.env",
        *(f"EnvironmentFile=-{path}" for path in key_files(config, service)),
        f"ExecStart={executable} serve {service} --log-format json",
        f"StateDirectory={STATE_DIR.name}",
        f"WorkingDirectory={STATE_DIR}",
        "Restart=on-failure",
        "RestartSec=2",
        "TimeoutStopSec=15",
        "LimitNOFILE=65536",
        *SANDBOX,
        *(f"ReadWritePaths={path}" for path in writable_paths(config, service)),
        "",
        "[Install]",
        f"WantedBy={TARGET}",
        "",
    ]
    return "\n".join(lines)


def target_unit() -> str:
    wants = " ".join(f"lakehouse-{name}.service" for name in names())
    return "\n".join(
        [
            "[Unit]",
            "Description=the lakehouse stack (every lakehouse-*.service enabled on this box)",
            f"Wants={wants}",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def write_units(config: LakehouseConfig, out: Path, *, executable: str, config_path: str, user: str) -> list[Path]:
    """Write lakehouse-<name>.service for every service and lakehouse.target into `out`; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names():
        path = out / f"lakehouse-{name}.service"
        path.write_text(service_unit(config, name, executable=executable, config_path=config_path, user=user))
        written.append(path)
    target = out / TARGET
    target.write_text(target_unit())
    written.append(target)
    return written
