"""Settings loading: precedence between sources and every validation error."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

import pytest

from porchlight_op.settings import (
    ClientSettings,
    Settings,
    SettingsError,
    load_settings,
)

CONFIDENTIAL = """
[clients.web]
redirect_uris = ["https://rp.example/cb"]
secret = "0123456789abcdef"
"""


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "porchlight.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(
    tmp_path: Path,
    toml: str = "",
    environ: dict[str, str] | None = None,
    overrides: dict[str, object] | None = None,
) -> str:
    """Return the one-line message of the SettingsError that loading raises."""
    path = write_toml(tmp_path, toml)
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ=environ or {}, overrides=overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------
# Defaults and precedence


def test_defaults_without_file_or_environment() -> None:
    settings = load_settings(environ={})

    assert settings == Settings()
    assert settings.issuer == "http://localhost:8080"
    assert settings.redis_url is None
    assert settings.data_dir == Path("var")
    assert isinstance(settings.clients, MappingProxyType)
    assert settings.secure_cookies is False


def test_file_overrides_defaults(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'port = 9000\nissuer = "https://op.example"\n')

    settings = load_settings(path, environ={})

    assert settings.port == 9000
    assert settings.issuer == "https://op.example"
    assert settings.host == "127.0.0.1"


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'port = 9000\nissuer = "https://op.example"\n')
    environ = {"PORCHLIGHT_PORT": "9100", "PORCHLIGHT_ISSUER": "https://env.example"}

    settings = load_settings(path, environ=environ)

    assert settings.port == 9100
    assert settings.issuer == "https://env.example"


def test_overrides_beat_environment(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 9000\n")

    settings = load_settings(
        path, environ={"PORCHLIGHT_PORT": "9100"}, overrides={"port": 9200}
    )

    assert settings.port == 9200


def test_config_variable_names_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 9300\n")

    settings = load_settings(environ={"PORCHLIGHT_CONFIG": str(path)})

    assert settings.port == 9300


def test_path_argument_beats_config_variable(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 9300\n")
    other = tmp_path / "other.toml"
    other.write_text("port = 9400\n", encoding="utf-8")

    settings = load_settings(path, environ={"PORCHLIGHT_CONFIG": str(other)})

    assert settings.port == 9300


def test_environment_values_are_cast() -> None:
    environ = {
        "PORCHLIGHT_COOKIE_SECURE": "true",
        "PORCHLIGHT_REDIS_SOCKET_TIMEOUT": "2.5",
        "PORCHLIGHT_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8",
        "PORCHLIGHT_DATA_DIR": "/srv/porchlight",
        "PORCHLIGHT_REDIS_URL": "redis://127.0.0.1:6379/0",
        "PORCHLIGHT_LOG_LEVEL": "debug",
    }

    settings = load_settings(environ=environ)

    assert settings.cookie_secure is True
    assert settings.redis_socket_timeout == 2.5
    assert settings.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert settings.data_dir == Path("/srv/porchlight")
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("text", "expected"), [("1", True), ("0", False), ("FALSE", False)]
)
def test_environment_booleans(text: str, expected: bool) -> None:
    settings = load_settings(environ={"PORCHLIGHT_COOKIE_SECURE": text})

    assert settings.cookie_secure is expected


def test_empty_redis_url_variable_means_embedded() -> None:
    settings = load_settings(environ={"PORCHLIGHT_REDIS_URL": ""})

    assert settings.redis_url is None


def test_issuer_trailing_slash_is_stripped() -> None:
    settings = load_settings(
        environ={"PORCHLIGHT_ISSUER": "https://op.example/tenant/"}
    )

    assert settings.issuer == "https://op.example/tenant"


def test_cookie_samesite_is_normalized() -> None:
    settings = load_settings(environ={"PORCHLIGHT_COOKIE_SAMESITE": "strict"})

    assert settings.cookie_samesite == "Strict"


def test_secure_cookies_follow_https_issuer() -> None:
    https = load_settings(environ={"PORCHLIGHT_ISSUER": "https://op.example"})
    forced_off = load_settings(
        environ={
            "PORCHLIGHT_ISSUER": "https://op.example",
            "PORCHLIGHT_COOKIE_SECURE": "0",
        }
    )

    assert https.secure_cookies is True
    assert forced_off.secure_cookies is False


def test_settings_are_frozen() -> None:
    settings = Settings()

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Clients


def test_clients_from_file(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        CONFIDENTIAL
        + """
[clients.spa]
redirect_uris = ["http://localhost:5173/cb", "com.example.app:/cb"]
auth_method = "none"
scope = "openid email openid"
name = "Single-page app"
""",
    )

    clients = load_settings(path, environ={}).clients

    assert isinstance(clients, MappingProxyType)
    assert set(clients) == {"web", "spa"}
    assert clients["web"].auth_method == "client_secret_basic"
    assert clients["web"].scope == ("openid", "profile", "email", "offline_access")
    assert clients["spa"].is_public
    assert clients["spa"].scope == ("openid", "email")
    assert clients["spa"].redirect_uris == (
        "http://localhost:5173/cb",
        "com.example.app:/cb",
    )


def test_client_secret_is_not_in_repr(tmp_path: Path) -> None:
    path = write_toml(tmp_path, CONFIDENTIAL)

    settings = load_settings(path, environ={})

    assert "0123456789abcdef" not in repr(settings)


def test_client_settings_are_frozen() -> None:
    client = ClientSettings("spa", ("https://rp.example/cb",), auth_method="none")

    with pytest.raises(dataclasses.FrozenInstanceError):
        client.name = "x"  # type: ignore[misc]


CLIENT_A = '[clients.a]\nredirect_uris = ["https://rp.example/cb"]\n'

CLIENT_ERRORS = [
    (
        '[clients.a]\nredirect_uris = ["/cb"]\nsecret = "s"\n',
        "clients.a.redirect_uris: must be an absolute URI",
    ),
    (
        '[clients.a]\nredirect_uris = ["https://rp.example/cb#frag"]\nsecret = "s"\n',
        "clients.a.redirect_uris: must not contain a fragment",
    ),
    (
        '[clients.a]\nredirect_uris = ["https:///cb"]\nsecret = "s"\n',
        "clients.a.redirect_uris: must name a host",
    ),
    (
        '[clients.a]\nredirect_uris = []\nsecret = "s"\n',
        "clients.a.redirect_uris: must contain at least one URI",
    ),
    ('[clients.a]\nsecret = "s"\n', "clients.a.redirect_uris: missing"),
    (
        '[clients.a]\nredirect_uris = "https://rp.example/cb"\nsecret = "s"\n',
        "clients.a.redirect_uris: must be a list of strings",
    ),
    (
        CLIENT_A + 'auth_method = "tls_client_auth"\nsecret = "s"\n',
        "clients.a.auth_method: must be one of",
    ),
    (
        '[clients.a]\nredirect_uris = ["https://rp.example/cb"]\n',
        "clients.a.secret: missing, but required for auth_method client_secret_basic",
    ),
    (
        '[clients.a]\nredirect_uris = ["https://rp.example/cb"]\nsecret = ""\n',
        "clients.a.secret: must not be empty",
    ),
    (
        CLIENT_A + 'auth_method = "none"\nsecret = "s"\n',
        "clients.a.secret: a public client (auth_method none) must not have a secret",
    ),
    (
        CLIENT_A + 'secret = "s"\nscope = "openid bad\\"token"\n',
        "clients.a.scope: invalid scope token",
    ),
    (
        CLIENT_A + 'secret = "s"\nscope = ""\n',
        "clients.a.scope: must contain at least one scope",
    ),
    (
        CLIENT_A + 'secret = "s"\ncolour = 1\n',
        "clients.a.colour: unknown client setting",
    ),
    (
        CLIENT_A + 'secret = "s"\nname = 3\n',
        "clients.a.name: must be a string, got int",
    ),
    ("clients = 3\n", "clients: must be a table of tables"),
    (
        '[clients]\n"a b" = {redirect_uris = ["https://x/cb"], secret = "s"}\n',
        "clients.'a b'",
    ),
]


@pytest.mark.parametrize(("toml", "expected"), CLIENT_ERRORS)
def test_client_validation_errors(tmp_path: Path, toml: str, expected: str) -> None:
    message = load_error(tmp_path, toml)

    assert message.startswith(expected)


def test_client_secret_value_not_in_error(tmp_path: Path) -> None:
    toml = '[clients.a]\nredirect_uris = ["https://rp.example/cb"]\n'
    toml += 'auth_method = "none"\nsecret = "hunter2-secret"\n'

    message = load_error(tmp_path, toml)

    assert "hunter2-secret" not in message


# ---------------------------------------------------------------------------
# Top-level errors


TOML_ERRORS = [
    ("colour = 1\n", "colour: unknown setting"),
    ("port = true\n", "port: must be an integer, got bool"),
    ('port = "8080"\n', "port: must be an integer, got str"),
    ("port = 0\n", "port: must be between 1 and 65535, got 0"),
    ("port = 70000\n", "port: must be between 1 and 65535"),
    ("issuer = 5\n", "issuer: must be a string, got int"),
    ('issuer = "ftp://op.example"\n', "issuer: must be an absolute http(s) URL"),
    ('issuer = "op.example"\n', "issuer: must be an absolute http(s) URL"),
    ('issuer = "https://op.example?x=1"\n', "issuer: must not contain a query"),
    ('issuer = "https://op.example?"\n', "issuer: must not contain a query"),
    ('issuer = "https://op.example#top"\n', "issuer: must not contain a fragment"),
    ('issuer = "https://u:p@op.example"\n', "issuer: must not contain a user name"),
    ('issuer = "https://op.example:99999"\n', "issuer: invalid URL"),
    ('issuer = "https://op example"\n', "issuer: must not contain spaces"),
    ('host = ""\n', "host: must not be empty"),
    ('redis_url = "http://127.0.0.1:6379"\n', "redis_url: must start with redis://"),
    (
        'redis_url = "unix://"\n',
        "redis_url: a unix:// URL must contain the socket path",
    ),
    ('data_dir = ""\n', "data_dir: must name a directory"),
    ('environment = "staging"\n', "environment: must be development or production"),
    ("code_lifetime = 0\n", "code_lifetime: must be greater than 0"),
    ("access_token_lifetime = -5\n", "access_token_lifetime: must be greater than 0"),
    ("id_token_lifetime = 0\n", "id_token_lifetime: must be greater than 0"),
    ("refresh_token_lifetime = 0\n", "refresh_token_lifetime: must be greater than 0"),
    ("session_idle_timeout = 0\n", "session_idle_timeout: must be greater than 0"),
    ("session_max_age = 0\n", "session_max_age: must be greater than 0"),
    ("pending_request_lifetime = 0\n", "pending_request_lifetime: must be greater"),
    ("claims_cache_ttl = 0\n", "claims_cache_ttl: must be greater than 0"),
    ("code_lifetime = 1.5\n", "code_lifetime: must be an integer, got float"),
    ('cookie_name = "a b"\n', "cookie_name: must be an HTTP token"),
    ('cookie_samesite = "None"\n', "cookie_samesite: must be Lax or Strict"),
    ('cookie_secure = "yes"\n', "cookie_secure: must be true or false, got str"),
    ("argon2_time_cost = 0\n", "argon2_time_cost: must be greater than 0"),
    ("argon2_parallelism = 0\n", "argon2_parallelism: must be greater than 0"),
    (
        "argon2_memory_cost = 15\nargon2_parallelism = 2\n",
        "argon2_memory_cost: must be",
    ),
    ("redis_socket_timeout = 0\n", "redis_socket_timeout: must be greater than 0"),
    ("redis_connect_timeout = false\n", "redis_connect_timeout: must be a number"),
    ("redis_connect_timeout = nan\n", "redis_connect_timeout: must be a finite number"),
    ("redis_max_connections = 0\n", "redis_max_connections: must be greater than 0"),
    ('trusted_proxies = "10.0.0.1"\n', "trusted_proxies: must be a list of strings"),
    ('trusted_proxies = ["not-an-ip"]\n', "trusted_proxies: must be IP addresses"),
    ('log_level = "LOUD"\n', "log_level: must be a logging level"),
    ("port = \n", "config: invalid TOML"),
]


@pytest.mark.parametrize(("toml", "expected"), TOML_ERRORS)
def test_file_validation_errors(tmp_path: Path, toml: str, expected: str) -> None:
    message = load_error(tmp_path, toml)

    assert message.startswith(expected)


ENV_ERRORS = [
    ({"PORCHLIGHT_COLOUR": "red"}, "PORCHLIGHT_COLOUR: unknown setting variable"),
    ({"PORCHLIGHT_PORT": "80a"}, "PORCHLIGHT_PORT: must be an integer"),
    ({"PORCHLIGHT_PORT": "8.0"}, "PORCHLIGHT_PORT: must be an integer"),
    (
        {"PORCHLIGHT_COOKIE_SECURE": "yes"},
        "PORCHLIGHT_COOKIE_SECURE: must be true, false",
    ),
    (
        {"PORCHLIGHT_REDIS_SOCKET_TIMEOUT": "x"},
        "PORCHLIGHT_REDIS_SOCKET_TIMEOUT: must be a",
    ),
    ({"PORCHLIGHT_CLIENTS": "a"}, "PORCHLIGHT_CLIENTS: clients can only be set in"),
    ({"PORCHLIGHT_PORT": "0"}, "port: must be between 1 and 65535"),
]


@pytest.mark.parametrize(("environ", "expected"), ENV_ERRORS)
def test_environment_validation_errors(
    tmp_path: Path, environ: dict[str, str], expected: str
) -> None:
    message = load_error(tmp_path, environ=environ)

    assert message.startswith(expected)


def test_unknown_override_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, overrides={"colour": 1})

    assert message == "colour: unknown setting"


def test_override_of_wrong_type_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, overrides={"port": "8080"})

    assert message == "port: must be an integer, got str"


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path / "absent.toml", environ={})

    assert caught.value.key == "config"
    assert "file not found" in caught.value.problem


def test_error_has_key_and_problem() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"PORCHLIGHT_PORT": "0"})

    assert caught.value.key == "port"
    assert caught.value.problem == "must be between 1 and 65535, got 0"


def test_redis_password_not_in_error(tmp_path: Path) -> None:
    message = load_error(tmp_path, 'redis_url = "http://user:s3cr3t@127.0.0.1:1"\n')

    assert "s3cr3t" not in message


# ---------------------------------------------------------------------------
# Production checks and warnings


PRODUCTION = {
    "PORCHLIGHT_ENVIRONMENT": "production",
    "PORCHLIGHT_ISSUER": "https://op.example",
    "PORCHLIGHT_REDIS_URL": "redis://127.0.0.1:6379/0",
}


def test_production_accepts_https_and_redis_url() -> None:
    settings = load_settings(environ=PRODUCTION)

    assert settings.environment == "production"
    assert settings.warnings() == []


def test_production_rejects_http_issuer(tmp_path: Path) -> None:
    environ = {**PRODUCTION, "PORCHLIGHT_ISSUER": "http://op.example"}

    message = load_error(tmp_path, environ=environ)

    assert message == "issuer: must use https when environment is production"


def test_production_allows_http_localhost() -> None:
    environ = {**PRODUCTION, "PORCHLIGHT_ISSUER": "http://localhost:8080"}

    settings = load_settings(environ=environ)

    assert settings.issuer == "http://localhost:8080"


def test_production_rejects_embedded_redis(tmp_path: Path) -> None:
    environ = {k: v for k, v in PRODUCTION.items() if k != "PORCHLIGHT_REDIS_URL"}

    message = load_error(tmp_path, environ=environ)

    assert message.startswith(
        "redis_url: missing. The embedded Redis is for development"
    )


def test_warnings_list_development_defaults() -> None:
    warnings = Settings().warnings()

    assert len(warnings) == 2
    assert "embedded Redis" in warnings[0]
    assert "plain http" in warnings[1]


def test_warnings_mention_disabled_secure_cookies() -> None:
    settings = load_settings(
        environ={**PRODUCTION, "PORCHLIGHT_COOKIE_SECURE": "false"}
    )

    assert settings.warnings() == [
        "cookie_secure is false, so session cookies travel without TLS"
    ]


def test_example_config_loads() -> None:
    example = Path(__file__).resolve().parent.parent / "conf" / "porchlight.toml"

    settings = load_settings(example, environ={})

    assert set(settings.clients) == {"example-web", "example-spa"}
    assert settings.clients["example-spa"].is_public
