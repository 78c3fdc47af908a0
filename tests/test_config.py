from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcptrio._ops.config import (
    Config,
    ConfigError,
    HttpConfig,
    ServerConfig,
    StdioConfig,
    TlsConfig,
    config_from_mapping,
    config_to_mapping,
    load_config,
)

LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen(kw_only=True)
class Inner:
    flag: bool = False
    ratio: float = 0.5


@attrs.frozen(kw_only=True)
class Sample:
    name: str = "x"
    tags: tuple[str, ...] = ()
    color: Color = Color.RED
    limit: int | None = None
    inner: Inner = attrs.field(factory=Inner)
    extra: Inner | None = None


# --------------------------------------------------------------------------- classes


def test_defaults() -> None:
    config = Config()
    assert config.server == ServerConfig()
    assert config.server.page_size == 100
    assert config.server.max_in_flight_requests == 256
    assert config.server.max_message_bytes == 4 * 1024 * 1024
    assert config.server.cancel_notify_timeout == 1.0
    assert config.server.shutdown_grace == 5.0
    assert config.server.log_level == "info"
    assert config.server.sync_handler_limit == 16
    assert config.stdio == StdioConfig(terminate_grace=2.0, stderr="inherit")


def test_config_error_is_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"page_size": 0}, "ServerConfig.page_size: must be >= 1, got 0"),
        ({"max_in_flight_requests": 0}, "max_in_flight_requests: must be >= 1"),
        ({"max_message_bytes": 1023}, "max_message_bytes: must be >= 1024"),
        ({"cancel_notify_timeout": 0.0}, "cancel_notify_timeout: must be > 0.0"),
        ({"cancel_notify_timeout": float("nan")}, "cancel_notify_timeout: must be > 0.0"),
        ({"shutdown_grace": -0.5}, "shutdown_grace: must be >= 0.0"),
        ({"log_level": "verbose"}, "log_level: expected one of 'debug'"),
        ({"sync_handler_limit": 0}, "sync_handler_limit: must be >= 1"),
        ({"page_size": True}, "page_size: expected int, got bool"),
        ({"page_size": "10"}, "page_size: expected int, got str"),
        ({"shutdown_grace": "1"}, "shutdown_grace: expected float, got str"),
    ],
)
def test_validators_run_at_creation(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        ServerConfig(**kwargs)
    assert fragment in str(info.value)


def test_stdio_validators() -> None:
    with pytest.raises(ConfigError, match=r"terminate_grace: must be >= 0\.0"):
        StdioConfig(terminate_grace=-1)
    with pytest.raises(ConfigError, match="stderr: expected one of"):
        StdioConfig(stderr="pipe")  # type: ignore[arg-type]


def test_float_fields_accept_ints() -> None:
    config = ServerConfig(shutdown_grace=3, cancel_notify_timeout=2)
    assert config.shutdown_grace == 3.0
    assert isinstance(config.shutdown_grace, float)
    assert ServerConfig(shutdown_grace=0).shutdown_grace == 0.0


def test_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ServerConfig().page_size = 5  # type: ignore[misc]


# --------------------------------------------------------------------------- from a mapping


def test_from_mapping_builds_nested() -> None:
    config = config_from_mapping(
        Config,
        {"server": {"page_size": 5, "log_level": "debug"}, "stdio": {"stderr": "devnull"}},
        source="config.toml",
    )
    assert config.server.page_size == 5
    assert config.server.log_level == "debug"
    assert config.server.shutdown_grace == 5.0
    assert config.stdio.stderr == "devnull"


def test_unknown_key_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(Config, {"server": {"page_sise": 3}}, source="config.toml")
    assert str(info.value) == (
        "config.toml: unknown key 'server.page_sise'; did you mean 'page_size'?"
    )


def test_unknown_top_level_key_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(Config, {"sever": {}}, source="a.toml")
    assert str(info.value) == "a.toml: unknown key 'sever'; did you mean 'server'?"


def test_unknown_key_without_close_match_lists_known() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(Config, {"stdio": {"zzz": 1}}, source="c.toml")
    assert str(info.value) == (
        "c.toml: unknown key 'stdio.zzz'; known keys here: terminate_grace, stderr"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"server": {"page_size": "3"}},
            "c.toml: server.page_size: expected int, got str ('3')",
        ),
        (
            {"server": {"page_size": True}},
            "c.toml: server.page_size: expected int, got bool (True)",
        ),
        (
            {"server": {"page_size": 2.0}},
            "c.toml: server.page_size: expected int, got float (2.0)",
        ),
        (
            {"server": {"shutdown_grace": "soon"}},
            "c.toml: server.shutdown_grace: expected float, got str ('soon')",
        ),
        (
            {"server": {"shutdown_grace": False}},
            "c.toml: server.shutdown_grace: expected float, got bool (False)",
        ),
        ({"server": 3}, "c.toml: server: expected a table (ServerConfig), got int (3)"),
        (
            {"server": {"log_level": "INFO"}},
            "c.toml: server.log_level: expected one of 'debug', 'info', 'notice', 'warning',"
            " 'error', 'critical', 'alert', 'emergency', got 'INFO'",
        ),
        ({"server": {"page_size": 0}}, "c.toml: server.page_size: must be >= 1, got 0"),
        (
            {"server": {"page_size": [1]}},
            "c.toml: server.page_size: expected int, got array ([1])",
        ),
    ],
)
def test_wrong_values_name_path_and_types(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(Config, data, source="c.toml")
    assert str(info.value) == message


def test_float_field_accepts_int_from_mapping() -> None:
    config = config_from_mapping(Config, {"server": {"shutdown_grace": 2}}, source="x")
    assert config.server.shutdown_grace == 2.0
    assert isinstance(config.server.shutdown_grace, float)


def test_generic_types() -> None:
    sample = config_from_mapping(
        Sample,
        {
            "name": "n",
            "tags": ["a", "b"],
            "color": "blue",
            "limit": 7,
            "inner": {"flag": True, "ratio": 1},
            "extra": {"flag": True},
        },
        source="s",
    )
    assert sample == Sample(
        name="n",
        tags=("a", "b"),
        color=Color.BLUE,
        limit=7,
        inner=Inner(flag=True, ratio=1.0),
        extra=Inner(flag=True),
    )
    assert config_from_mapping(Sample, {"limit": None, "extra": None}, source="s") == Sample()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tags": "a,b"}, "s: tags: expected an array of str, got str ('a,b')"),
        ({"tags": ["a", 1]}, "s: tags[1]: expected str, got int (1)"),
        ({"color": "green"}, "s: color: expected one of 'red', 'blue', got 'green'"),
        ({"limit": "7"}, "s: limit: expected int, got str ('7')"),
        ({"name": None}, "s: name: expected str, got NoneType (None)"),
        ({"inner": {"flag": 1}}, "s: inner.flag: expected bool, got int (1)"),
        ({"extra": {"flg": True}}, "s: unknown key 'extra.flg'; did you mean 'flag'?"),
    ],
)
def test_generic_type_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(Sample, data, source="s")
    assert str(info.value) == message


def test_to_mapping_is_plain_and_round_trips() -> None:
    config = Config(server=ServerConfig(page_size=3, log_level="error"))
    mapping = config.to_mapping()
    assert mapping["server"]["page_size"] == 3
    assert type(mapping["server"]) is dict
    assert config_from_mapping(Config, mapping, source="m") == config

    sample = Sample(tags=("a",), color=Color.BLUE, extra=Inner())
    plain = config_to_mapping(sample)
    assert plain["tags"] == ["a"]
    assert plain["color"] == "blue"
    assert plain["limit"] is None
    assert config_from_mapping(Sample, plain, source="m") == sample


server_configs = st.builds(
    ServerConfig,
    page_size=st.integers(1, 10**6),
    max_in_flight_requests=st.integers(1, 10**6),
    max_message_bytes=st.integers(1024, 2**40),
    cancel_notify_timeout=st.floats(min_value=1e-6, max_value=1e6),
    shutdown_grace=st.floats(min_value=0, max_value=1e6),
    log_level=st.sampled_from(LEVELS),
    sync_handler_limit=st.integers(1, 1000),
)
paths = st.text(alphabet="abcxyz/._-0123456789", min_size=1, max_size=20)
tls_configs = st.just(TlsConfig()) | st.builds(
    TlsConfig,
    certfile=paths,
    keyfile=st.none() | paths,
    password=st.none() | paths,
    ca_certs=st.none() | paths,
    client_cert_required=st.booleans(),
    min_version=st.sampled_from(["1.2", "1.3"]),
    watch_interval=st.floats(min_value=0, max_value=1e6),
)
configs = st.builds(
    Config,
    server=server_configs,
    stdio=st.builds(
        StdioConfig,
        terminate_grace=st.floats(min_value=0, max_value=1e6),
        stderr=st.sampled_from(["inherit", "capture", "devnull"]),
    ),
    http=st.builds(HttpConfig, tls=tls_configs),
)


@given(configs)
def test_mapping_round_trip_property(config: Config) -> None:
    assert config_from_mapping(Config, config.to_mapping(), source="m") == config


@given(configs)
def test_env_round_trip_property(config: Config) -> None:
    env: dict[str, str] = {}

    def flatten(prefix: str, fields: dict[str, Any]) -> None:
        for name, value in fields.items():
            if isinstance(value, dict):  # a nested section: http.tls
                flatten(f"{prefix}{name.upper()}__", value)
                continue
            if value is None:
                text = ""
            elif isinstance(value, list | tuple):
                text = ",".join(value)
            elif isinstance(value, float):
                text = repr(value)
            else:
                text = str(value)
            env[f"{prefix}{name.upper()}"] = text

    flatten("MCPTRIO_", config.to_mapping())
    assert load_config(env=env) == config


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
keys = st.sampled_from(["server", "stdio", "page_size", "log_level", "stderr", "x"]) | st.text(
    max_size=5
)
trees = st.recursive(
    json_scalars, lambda children: st.dictionaries(keys, children, max_size=4), max_leaves=10
)


@given(st.dictionaries(keys, trees, max_size=4))
def test_arbitrary_mappings_build_or_raise_config_error(data: dict[str, Any]) -> None:
    try:
        config = config_from_mapping(Config, data, source="fuzz")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz: ")
    else:
        assert isinstance(config, Config)


# --------------------------------------------------------------------------- load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mcptrio.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_defaults_without_file_or_env() -> None:
    assert load_config(env={}) == Config()


def test_load_toml(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[server]\npage_size = 20\nshutdown_grace = 1\nlog_level = "warning"\n'
        '[stdio]\nstderr = "capture"\n',
    )
    config = load_config(path=path, env={})
    assert config.server.page_size == 20
    assert config.server.shutdown_grace == 1.0
    assert config.server.log_level == "warning"
    assert config.stdio.stderr == "capture"


def test_load_toml_unknown_key_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\npage_sise = 20\n")
    with pytest.raises(ConfigError) as info:
        load_config(path=path, env={})
    assert str(info.value) == f"{path}: unknown key 'server.page_sise'; did you mean 'page_size'?"


def test_load_toml_bad_value_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\npage_size = 0\n")
    with pytest.raises(ConfigError, match=r"mcptrio\.toml: server\.page_size: must be >= 1"):
        load_config(path=path, env={})


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(path=tmp_path / "nope.toml", env={})


def test_load_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path=path, env={})


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\npage_size = 20\nsync_handler_limit = 4\n")
    config = load_config(
        path=path,
        env={"MCPTRIO_SERVER__PAGE_SIZE": "7", "HOME": "/root", "OTHER_SERVER__X": "1"},
    )
    assert config.server.page_size == 7
    assert config.server.sync_handler_limit == 4


def test_env_is_case_insensitive() -> None:
    config = load_config(
        env={"mcptrio_server__page_size": "9", "Mcptrio_Server__Log_Level": "DEBUG"}
    )
    assert config.server.page_size == 9
    assert config.server.log_level == "debug"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("0", False),
        ("No", False),
    ],
)
def test_env_bools(text: str, value: bool) -> None:
    assert load_config(Sample, env={"MCPTRIO_INNER__FLAG": text}).inner.flag is value


def test_env_generic_types() -> None:
    sample = load_config(
        Sample,
        env={
            "MCPTRIO_TAGS": " a, b ,,c",
            "MCPTRIO_COLOR": "BLUE",
            "MCPTRIO_LIMIT": "12",
            "MCPTRIO_INNER__RATIO": "2",
            "MCPTRIO_EXTRA__FLAG": "yes",
            "MCPTRIO_NAME": " spaced ",
        },
    )
    assert sample == Sample(
        name=" spaced ",
        tags=("a", "b", "c"),
        color=Color.BLUE,
        limit=12,
        inner=Inner(ratio=2.0),
        extra=Inner(flag=True),
    )
    assert load_config(Sample, env={"MCPTRIO_LIMIT": "", "MCPTRIO_TAGS": ""}) == Sample()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"MCPTRIO_SERVER__PAGE_SISE": "1"},
            "environment variable MCPTRIO_SERVER__PAGE_SISE: unknown key 'server.page_sise';"
            " did you mean 'page_size'?",
        ),
        (
            {"MCPTRIO_SEVER__PAGE_SIZE": "1"},
            "environment variable MCPTRIO_SEVER__PAGE_SIZE: unknown key 'sever';"
            " did you mean 'server'?",
        ),
        (
            {"MCPTRIO_SERVER_PAGE_SIZE": "1"},
            "environment variable MCPTRIO_SERVER_PAGE_SIZE: unknown key 'server_page_size';"
            " separate sections with a double underscore: MCPTRIO_SERVER__PAGE_SIZE",
        ),
        (
            {"MCPTRIO_SERVER__PAGE_SIZE": "ten"},
            "environment variable MCPTRIO_SERVER__PAGE_SIZE: server.page_size:"
            " expected int, got 'ten'",
        ),
        (
            {"MCPTRIO_SERVER__PAGE_SIZE": "0"},
            "environment variable MCPTRIO_SERVER__PAGE_SIZE: server.page_size: must be >= 1, got 0",
        ),
        (
            {"MCPTRIO_SERVER__SHUTDOWN_GRACE": "nan"},
            "environment variable MCPTRIO_SERVER__SHUTDOWN_GRACE: server.shutdown_grace:"
            " expected a number, got 'nan'",
        ),
        (
            {"MCPTRIO_SERVER__LOG_LEVEL": "loud"},
            "environment variable MCPTRIO_SERVER__LOG_LEVEL: server.log_level: expected one of"
            " 'debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency',"
            " got 'loud'",
        ),
        (
            {"MCPTRIO_SERVER": "1"},
            "environment variable MCPTRIO_SERVER: 'server' is a section, not a value;"
            " set its fields one by one, e.g. MCPTRIO_SERVER__<FIELD>",
        ),
        (
            {"MCPTRIO_SERVER__PAGE_SIZE__X": "1"},
            "environment variable MCPTRIO_SERVER__PAGE_SIZE__X: 'server.page_size' is a value,"
            " not a section; use MCPTRIO_SERVER__PAGE_SIZE",
        ),
    ],
)
def test_env_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert str(info.value) == message


def test_env_bool_error() -> None:
    with pytest.raises(ConfigError, match=r"expected a bool \(true/false/1/0/yes/no\), got 'on'"):
        load_config(Sample, env={"MCPTRIO_INNER__FLAG": "on"})


def test_env_into_non_table_in_file_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "server = 3\n")
    with pytest.raises(ConfigError, match=r"server: expected a table, got int \(3\)"):
        load_config(path=path, env={"MCPTRIO_SERVER__PAGE_SIZE": "2"})


def test_env_none_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("MCPTRIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MCPTRIO_STDIO__TERMINATE_GRACE", "0.25")
    assert load_config().stdio.terminate_grace == 0.25
    monkeypatch.setenv("MCPTRIO_STDIO__TERMINATE_GRAC", "1")
    with pytest.raises(ConfigError, match="did you mean 'terminate_grace'"):
        load_config()
