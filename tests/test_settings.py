"""Settings read from the environment: defaults, and one clear refusal for
anything missing, unknown or malformed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from portal.settings import DEFAULT_DATABASE_URL, Settings, SettingsError

DEV_KEY = "a-development-key-" + "d" * 20
# Random-looking, long enough, and free of placeholder words.
PRODUCTION_KEY = "Zq3vN8wLr5TbYp2KmX7cHd9FjS4gWa6EuR1o"
PRODUCTION = {
    "PORTAL_ENV": "production",
    "PORTAL_SECRET_KEY": PRODUCTION_KEY,
    "PORTAL_BASE_URL": "https://portal.example",
}


def test_defaults() -> None:
    settings = Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY})

    # The front end the emails link to may call the API from a browser.
    assert settings.cors_origins == ("http://127.0.0.1:8000",)
    assert settings == Settings(secret_key=DEV_KEY, cors_origins=settings.cors_origins)
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite://var/portal.sqlite3"
    assert settings.env == "development"
    assert not settings.is_production
    assert settings.base_url == "http://127.0.0.1:8000"
    assert (settings.session_idle_minutes, settings.session_max_hours) == (30, 12)
    assert (settings.argon2_memory_kib, settings.argon2_time_cost) == (19 * 1024, 2)
    assert (settings.argon2_parallelism, settings.password_hash_threads) == (1, 0)


def test_every_setting_is_read() -> None:
    settings = Settings.from_env(
        {
            **PRODUCTION,
            "DATABASE_URL": "postgres://portal:pw@db.internal/portal",
            "PORTAL_SESSION_IDLE_MINUTES": "15",
            "PORTAL_SESSION_MAX_HOURS": "8",
            "PORTAL_ARGON2_MEMORY_KIB": "65536",
            "PORTAL_ARGON2_TIME_COST": "3",
            "PORTAL_ARGON2_PARALLELISM": "4",
            "PORTAL_PASSWORD_HASH_THREADS": "8",
            "PORTAL_PASSWORD": "read by the CLI, not a setting",
            "HOME": "/root",  # variables outside PORTAL_* are none of its business
        }
    )

    assert settings == Settings(
        database_url="postgres://portal:pw@db.internal/portal",
        secret_key=PRODUCTION_KEY,
        base_url="https://portal.example",
        env="production",
        session_idle_minutes=15,
        session_max_hours=8,
        argon2_memory_kib=65536,
        argon2_time_cost=3,
        argon2_parallelism=4,
        password_hash_threads=8,
    )
    assert settings.is_production


def test_the_secret_key_is_not_shown_in_the_repr() -> None:
    assert PRODUCTION_KEY not in repr(Settings.from_env(PRODUCTION))


def test_production_accepts_a_key_of_exactly_32_characters() -> None:
    settings = Settings.from_env({**PRODUCTION, "PORTAL_SECRET_KEY": PRODUCTION_KEY[:32]})

    assert settings.secret_key == PRODUCTION_KEY[:32]


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        PRODUCTION_KEY[:31],
        "change-me-change-me-change-me-change-me",
        "my-Secret-Key-9f8e7d6c5b4a3210zyxwvu",
        "a" * 40,
        "abababababababababababababababab1234",
    ],
    ids=["missing", "empty", "31-chars", "change-me", "secret-word", "aaaa", "few-distinct"],
)
def test_production_requires_a_strong_secret_key(key: str | None) -> None:
    environ = dict(PRODUCTION)
    if key is None:
        del environ["PORTAL_SECRET_KEY"]
    else:
        environ["PORTAL_SECRET_KEY"] = key

    with pytest.raises(SettingsError, match="PORTAL_SECRET_KEY"):
        Settings.from_env(environ)


@pytest.mark.parametrize("base_url", [None, "", "http://portal.example"])
def test_production_requires_an_https_base_url(base_url: str | None) -> None:
    environ = dict(PRODUCTION)
    if base_url is None:
        del environ["PORTAL_BASE_URL"]
    else:
        environ["PORTAL_BASE_URL"] = base_url

    with pytest.raises(SettingsError, match="PORTAL_BASE_URL"):
        Settings.from_env(environ)


def test_development_allows_an_http_base_url() -> None:
    settings = Settings.from_env(
        {"PORTAL_SECRET_KEY": DEV_KEY, "PORTAL_BASE_URL": "http://localhost:5173"}
    )

    assert settings.base_url == "http://localhost:5173"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://portal.example/", "https://portal.example"),
        ("https://portal.example//", "https://portal.example"),
        ("https://portal.example/app/", "https://portal.example/app"),
        ("https://portal.example", "https://portal.example"),
    ],
)
def test_the_base_url_loses_its_trailing_slash(given: str, expected: str) -> None:
    settings = Settings.from_env({**PRODUCTION, "PORTAL_BASE_URL": given})

    assert settings.base_url == expected


@pytest.mark.parametrize(
    "base_url",
    ["portal.example", "ftp://portal.example", "https://", "https://portal.example/?next=1"],
)
def test_a_malformed_base_url_is_refused(base_url: str) -> None:
    with pytest.raises(SettingsError, match="PORTAL_BASE_URL"):
        Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY, "PORTAL_BASE_URL": base_url})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTAL_SESSION_IDLE_MINUTES", "ten"),
        ("PORTAL_SESSION_IDLE_MINUTES", "1.5"),
        ("PORTAL_SESSION_IDLE_MINUTES", "0"),
        ("PORTAL_SESSION_IDLE_MINUTES", "-5"),
        ("PORTAL_SESSION_IDLE_MINUTES", "1441"),
        ("PORTAL_SESSION_MAX_HOURS", "721"),
        ("PORTAL_ARGON2_MEMORY_KIB", "7"),
        ("PORTAL_ARGON2_MEMORY_KIB", "19MiB"),
        ("PORTAL_ARGON2_TIME_COST", "0"),
        ("PORTAL_ARGON2_PARALLELISM", "65"),
        ("PORTAL_PASSWORD_HASH_THREADS", "0x2"),
    ],
)
def test_a_malformed_or_out_of_range_number_is_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY, name: value})


def test_numbers_at_their_bounds_and_with_spaces_are_accepted() -> None:
    settings = Settings.from_env(
        {
            "PORTAL_SECRET_KEY": DEV_KEY,
            "PORTAL_SESSION_IDLE_MINUTES": "1",
            "PORTAL_SESSION_MAX_HOURS": " 720 ",
            "PORTAL_ARGON2_MEMORY_KIB": "8",
            "PORTAL_ARGON2_TIME_COST": "",  # empty means the default
        }
    )

    assert (settings.session_idle_minutes, settings.session_max_hours) == (1, 720)
    assert (settings.argon2_memory_kib, settings.argon2_time_cost) == (8, 2)


@pytest.mark.parametrize(
    "name", ["PORTAL_SESION_IDLE_MINUTES", "PORTAL_SECRET", "PORTAL_DATABASE_URL", "PORTAL_"]
)
def test_an_unknown_portal_variable_is_refused(name: str) -> None:
    with pytest.raises(SettingsError, match=f"unknown setting {name}"):
        Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY, name: "5"})


@pytest.mark.parametrize(
    "url",
    ["mysql://portal@db/portal", "var/portal.sqlite3", "http://db.example/portal", ""],
)
def test_a_database_url_of_another_kind_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY, "DATABASE_URL": url})


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://:memory:",
        "sqlite:///srv/portal.sqlite3",
        "postgres://portal:pw@db/portal",
        "postgresql://portal@db/portal",
        "asyncpg://portal@db/portal",
    ],
)
def test_sqlite_and_postgres_database_urls_are_accepted(url: str) -> None:
    assert (
        Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY, "DATABASE_URL": url}).database_url == url
    )


@pytest.mark.parametrize("env", ["staging", "Production", "prod", "dev", "test"])
def test_portal_env_is_development_or_production(env: str) -> None:
    with pytest.raises(SettingsError, match="PORTAL_ENV"):
        Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY, "PORTAL_ENV": env})


def test_development_generates_and_keeps_a_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    first = Settings.from_env({})
    second = Settings.from_env({"PORTAL_ENV": "development"})

    key_file = tmp_path / "var" / "dev-secret-key"
    assert len(first.secret_key) >= 32
    assert second.secret_key == first.secret_key
    assert key_file.read_text().strip() == first.secret_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_each_development_checkout_gets_its_own_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = []
    for checkout in ("one", "two"):
        (tmp_path / checkout).mkdir()
        monkeypatch.chdir(tmp_path / checkout)
        keys.append(Settings.from_env({}).secret_key)

    assert keys[0] != keys[1]


def test_a_given_key_is_used_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY}).secret_key == DEV_KEY
    assert Settings.from_env(PRODUCTION).secret_key == PRODUCTION_KEY
    assert not (tmp_path / "var").exists()


def test_production_never_generates_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Settings.from_env({})  # a development key on disk must not stand in for production's
    environ = {key: value for key, value in PRODUCTION.items() if key != "PORTAL_SECRET_KEY"}

    with pytest.raises(SettingsError, match="PORTAL_SECRET_KEY"):
        Settings.from_env(environ)


def test_the_failure_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "PORTAL_SECRET_KEY": DEV_KEY,
            "PORTAL_DB_POOL_SIZE": "20",
            "PORTAL_REQUEST_TIMEOUT_SECONDS": "6",
            "PORTAL_DB_STATEMENT_TIMEOUT_MS": "2500",
            "PORTAL_SMTP_TIMEOUT_SECONDS": "10",
            "PORTAL_MAIL_LEASE_SECONDS": "60",
            "PORTAL_SHUTDOWN_GRACE_SECONDS": "30",
        }
    )

    assert (settings.db_pool_size, settings.db_statement_timeout_ms) == (20, 2500)
    assert (settings.smtp_timeout_seconds, settings.mail_lease_seconds) == (10, 60)
    assert settings.shutdown_grace_seconds == 30


def test_the_statement_timeout_defaults_to_half_the_request_budget() -> None:
    default = Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY})
    shorter = Settings.from_env(
        {"PORTAL_SECRET_KEY": DEV_KEY, "PORTAL_REQUEST_TIMEOUT_SECONDS": "4"}
    )

    assert (default.request_timeout_seconds, default.db_statement_timeout_ms) == (10, 5000)
    assert shorter.db_statement_timeout_ms == 2000


@pytest.mark.parametrize(
    ("given", "named"),
    [
        pytest.param(
            {"PORTAL_DB_STATEMENT_TIMEOUT_MS": "10000"},
            "PORTAL_DB_STATEMENT_TIMEOUT_MS",
            id="statement-timeout-not-below-the-budget",
        ),
        pytest.param(
            {"PORTAL_MAIL_LEASE_SECONDS": "30"},
            "PORTAL_MAIL_LEASE_SECONDS",
            id="lease-not-longer-than-a-send",
        ),
        pytest.param(
            {"PORTAL_SMTP_TIMEOUT_SECONDS": "300"},
            "PORTAL_MAIL_LEASE_SECONDS",
            id="send-longer-than-the-lease",
        ),
        pytest.param({"PORTAL_DB_POOL_SIZE": "0"}, "PORTAL_DB_POOL_SIZE", id="empty-pool"),
        pytest.param(
            {"PORTAL_SHUTDOWN_GRACE_SECONDS": "0"}, "PORTAL_SHUTDOWN_GRACE_SECONDS", id="no-grace"
        ),
    ],
)
def test_bounds_that_contradict_each_other_are_refused(given: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY, **given})


def test_the_operations_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "PORTAL_SECRET_KEY": DEV_KEY,
            "PORTAL_METRICS_ADDRESS": " 127.0.0.1:9100 ",
            "PORTAL_RETENTION_DAYS": "14",
            "PORTAL_AUDIT_RETENTION_DAYS": "3650",
            "PORTAL_AUDIT_SEAL_SECONDS": "0",
        }
    )

    assert settings.metrics_address == ("127.0.0.1", 9100)
    assert (settings.retention_days, settings.audit_retention_days) == (14, 3650)
    assert settings.audit_seal_seconds == 0
    defaults = Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY})
    assert defaults.metrics_address is None
    assert (defaults.retention_days, defaults.audit_retention_days) == (30, 2190)
    assert Settings.from_env(
        {"PORTAL_SECRET_KEY": DEV_KEY, "PORTAL_METRICS_ADDRESS": "[::1]:9100"}
    ).metrics_address == ("::1", 9100)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTAL_METRICS_ADDRESS", "9100"),
        ("PORTAL_METRICS_ADDRESS", "127.0.0.1:"),
        ("PORTAL_METRICS_ADDRESS", "127.0.0.1:70000"),
        ("PORTAL_RETENTION_DAYS", "0"),
        ("PORTAL_AUDIT_RETENTION_DAYS", "7"),
    ],
)
def test_a_malformed_operations_setting_is_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"PORTAL_SECRET_KEY": DEV_KEY, name: value})
