from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from scripts.write_default_config import default_config_text
from shared.config import ConfigError, LakehouseConfig, load_config
from shared.config.base import split_bind
from shared.config.models import TIERS
from shared.registry import names

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "lh.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_follow_the_seed() -> None:
    config = load_config()
    assert config.gateway.bind == "127.0.0.1:3110"
    assert config.gateway.upstream_url("chatd") == "http://127.0.0.1:3220"
    binds = [config.section_bind(name) for name in names()]
    assert binds == ["127.0.0.1:3110", *(f"127.0.0.1:{port}" for port in range(3211, 3221))]
    assert config.ingestd.max_ingest_bytes == 256 * 1024 * 1024
    assert config.embedd.cache_size == 10_000
    assert config.embedd.provider_url == "http://localhost:11434"
    assert config.queryd.refresh_every == "30s"
    assert config.queryd.secrets_path == "/etc/lakehouse/secrets-go.toml"
    assert config.chatd.timeout_secs == 180
    chatd = config.chatd.model_dump()
    assert chatd["openrouter_key_env"] == "OPENROUTER_API_KEY"
    assert chatd["kimi_key_file"] == "/etc/lakehouse/kimi.env"
    assert config.s3.bucket == "lakehouse-primary"
    assert config.s3.use_path_style is True
    assert config.models.weak_models == ["qwen3.5:latest", "qwen3:latest"]
    assert config.log.level == "info"
    assert config.auth.token.get_secret_value() == ""
    assert config.auth.allowed_ips == []


def test_models_resolve_and_is_weak() -> None:
    models = load_config().models
    assert models.resolve("cloud_judge") == "kimi-k2.6:cloud"
    assert models.resolve("frontier_free") == "opencode/claude-opus-4-7"
    assert models.resolve("no_such_tier") == ""
    assert models.resolve("weak_models") == ""
    assert all(models.resolve(tier) for tier in TIERS)
    assert models.is_weak("qwen3:latest")
    assert not models.is_weak("deepseek-v3.2")


def test_file_then_environment_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[chatd]\nbind = "127.0.0.1:4001"\ntimeout_secs = 5\n')
    assert load_config(path).chatd.bind == "127.0.0.1:4001"

    monkeypatch.setenv("LH_CHATD__BIND", "127.0.0.1:4000")
    config = load_config(path)
    assert config.chatd.bind == "127.0.0.1:4000"
    assert config.chatd.timeout_secs == 5  # the file's other key in the same section survives
    assert config.chatd.model_dump()["ollama_url"] == "http://localhost:11434"  # and the defaults under both

    config = load_config(path, chatd={"bind": "127.0.0.1:4002"})
    assert config.chatd.bind == "127.0.0.1:4002"
    assert config.chatd.timeout_secs == 5


def test_nested_table_deep_merges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[gateway.timeouts]\nsql = 12\n")
    monkeypatch.setenv("LH_GATEWAY__TIMEOUTS__CHAT", "7")
    gateway = load_config(path).gateway
    assert (gateway.timeout("sql"), gateway.timeout("chat"), gateway.timeout("catalog")) == (12, 7, 30)


def test_file_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, '[log]\nlevel = "debug"\n', "lakehouse.toml")
    assert load_config().log.level == "debug"
    env_file = write(tmp_path, '[log]\nlevel = "warning"\n', "env.toml")
    monkeypatch.setenv("LH_CONFIG", env_file)
    assert load_config().log.level == "warning"
    arg_file = write(tmp_path, '[log]\nlevel = "error"\n', "arg.toml")
    assert load_config(arg_file).log.level == "error"


def test_missing_given_file_warns_and_uses_defaults(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    with capture_logs() as logs:
        config = load_config(missing)
    assert config == load_config()  # no file here: the defaults
    assert [(entry["log_level"], entry["path"]) for entry in logs] == [("warning", missing)]


def test_misspelled_key_names_file_key_and_known_keys(tmp_path: Path) -> None:
    path = write(tmp_path, '[chatd]\nbnd = "127.0.0.1:1"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: key chatd.bnd: unknown key; known keys in [chatd]: bind,")


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[chat]\nbind = "127.0.0.1:1"\n')
    with pytest.raises(ConfigError, match=r"key chat: unknown key"):
        load_config(path)


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path, '[chatd]\ntimeout_secs = "soon"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: key chatd.timeout_secs: Input should be a valid integer, "
        "unable to parse string as an integer, got 'soon'"
    )


def test_broken_toml_names_file_and_position(tmp_path: Path) -> None:
    path = write(tmp_path, "[chatd\nbind = 1\n")
    with pytest.raises(ConfigError, match=r"lh\.toml: invalid TOML: .*line 1, column 7"):
        load_config(path)


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LH_INGESTD__MAX_INGEST_BYTES", "lots")
    with pytest.raises(ConfigError, match=r"^environment LH_INGESTD__MAX_INGEST_BYTES: Input should be"):
        load_config()


def test_misspelled_environment_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LH_CHATD__TIMEOUT", "5")
    with pytest.raises(ConfigError, match=r"^environment LH_CHATD__TIMEOUT: unknown key"):
        load_config()


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[auth]\nallowed_ips = ["10.0.0.0/8", "not-an-ip"]\n', 'bare IPv4/IPv6 address, got "not-an-ip"'),
        ('[chatd]\nbind = "3220"\n', 'expected "host:port"'),
        ('[chatd]\nollama_url = "localhost:11434"\n', "expected an http:// or https:// URL"),
        ('[log]\nlevel = "loud"\n', "Input should be 'debug', 'info', 'warning' or 'error'"),
    ],
)
def test_invalid_values(tmp_path: Path, toml: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, toml))


def test_secrets_are_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LH_AUTH__TOKEN", "hunter2")
    monkeypatch.setenv("LH_S3__SECRET_ACCESS_KEY", "s3cret")
    config = load_config()
    assert config.auth.token.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(config)
    assert "s3cret" not in str(config)


def test_split_bind() -> None:
    assert split_bind("127.0.0.1:3110") == ("127.0.0.1", 3110)
    assert split_bind("[::1]:3110") == ("::1", 3110)
    with pytest.raises(ValueError, match="host:port"):
        split_bind("localhost")


def test_committed_lakehouse_toml_is_the_defaults() -> None:
    committed = (REPO / "lakehouse.toml").read_text()
    assert committed == default_config_text(), "run: uv run python scripts/write_default_config.py"
    config = load_config(str(REPO / "lakehouse.toml"))
    assert config == load_config()  # no file here: the defaults
    assert set(tomllib.loads(committed)) == set(LakehouseConfig.model_fields)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[auth]\ntoken = 123456789\n", "auth.token"),
        ('[s3]\nsecret_access_key = ["12345678"]\n', "s3.secret_access_key"),
        ("[s3]\nsecret_access_key = 12345678.5\n", "s3.secret_access_key"),
    ],
)
def test_a_wrongly_typed_secret_is_never_printed(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "lh.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: key {key}: Input should be a valid string, got a value of type")
    assert "(not shown)" in message
    assert "12345678" not in message


def test_a_secret_from_the_environment_with_a_wrong_type_is_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LH_AUTH", '{"token": 987654321}')
    with pytest.raises(ConfigError) as err:
        load_config()
    assert "987654321" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("LH_AUTH__ALLOWED_IPS", "127.0.0.1", 'environment LH_AUTH__ALLOWED_IPS: expected a JSON list, e.g. \'["a", '),
        ("LH_MODELS__WEAK_MODELS", "qwen3", "environment LH_MODELS__WEAK_MODELS: expected a JSON list"),
        ("LH_GATEWAY__TIMEOUTS", "sql=5", "environment LH_GATEWAY__TIMEOUTS: expected a JSON object"),
    ],
)
def test_environment_value_that_is_not_json_is_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_config()
    assert str(err.value).startswith(expected)
    assert str(err.value).endswith(f"got {value!r}")
    assert "\n" not in str(err.value)


def test_cli_reports_bad_environment_json_without_a_traceback() -> None:
    env = {**os.environ, "LH_AUTH__ALLOWED_IPS": "127.0.0.1"}
    done = subprocess.run(
        [sys.executable, "-m", "shared.stack.cli", "config", "check"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "lakehouse: error: invalid configuration:",
        "environment LH_AUTH__ALLOWED_IPS: expected a JSON list, e.g. '[\"a\", \"b\"]', got '127.0.0.1'",
    ]
