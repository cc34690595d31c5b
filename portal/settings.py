"""Every setting of the service, read once from the environment.

Unknown or malformed values stop start-up with one clear sentence: a typo in a
variable name must not silently fall back to a default on a server that holds
health data.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "sqlite://var/portal.sqlite3"
DEV_SECRET_KEY_FILE = Path("var/dev-secret-key")
MIN_SECRET_KEY_LENGTH = 32
PLACEHOLDER_WORDS = ("change", "secret", "example", "placeholder", "default", "xxxx", "test")

# Variables read elsewhere that the settings check must not call unknown.
OTHER_KNOWN_VARIABLES = frozenset({"PORTAL_PASSWORD"})


class SettingsError(ValueError):
    """A setting is missing, unknown or malformed."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = field(default="", repr=False)
    base_url: str = "http://127.0.0.1:5173"
    env: str = "development"
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    password_hash_threads: int = 2

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        _reject_unknown_variables(env)
        portal_env = env.get("PORTAL_ENV", "development")
        if portal_env not in ("development", "production"):
            raise SettingsError(
                f"PORTAL_ENV must be 'development' or 'production', not {portal_env!r}"
            )
        production = portal_env == "production"
        return cls(
            database_url=_database_url(env.get("DATABASE_URL", DEFAULT_DATABASE_URL)),
            secret_key=_secret_key(env.get("PORTAL_SECRET_KEY"), production),
            base_url=_base_url(env.get("PORTAL_BASE_URL"), production),
            env=portal_env,
            session_idle_minutes=_int(env, "PORTAL_SESSION_IDLE_MINUTES", 30, 1, 24 * 60),
            session_max_hours=_int(env, "PORTAL_SESSION_MAX_HOURS", 12, 1, 24 * 30),
            argon2_memory_kib=_int(env, "PORTAL_ARGON2_MEMORY_KIB", 19 * 1024, 8, 4 * 1024 * 1024),
            argon2_time_cost=_int(env, "PORTAL_ARGON2_TIME_COST", 2, 1, 100),
            argon2_parallelism=_int(env, "PORTAL_ARGON2_PARALLELISM", 1, 1, 64),
            password_hash_threads=_int(env, "PORTAL_PASSWORD_HASH_THREADS", 2, 1, 64),
        )


KNOWN_VARIABLES = frozenset(
    {
        "PORTAL_ENV",
        "PORTAL_SECRET_KEY",
        "PORTAL_BASE_URL",
        "PORTAL_SESSION_IDLE_MINUTES",
        "PORTAL_SESSION_MAX_HOURS",
        "PORTAL_ARGON2_MEMORY_KIB",
        "PORTAL_ARGON2_TIME_COST",
        "PORTAL_ARGON2_PARALLELISM",
        "PORTAL_PASSWORD_HASH_THREADS",
    }
    | OTHER_KNOWN_VARIABLES
)


def _reject_unknown_variables(env: Mapping[str, str]) -> None:
    unknown = sorted(k for k in env if k.startswith("PORTAL_") and k not in KNOWN_VARIABLES)
    if unknown:
        raise SettingsError(
            f"unknown setting {unknown[0]} (known: {', '.join(sorted(KNOWN_VARIABLES))})"
        )


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _database_url(url: str) -> str:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ("sqlite", "postgres", "postgresql", "asyncpg"):
        raise SettingsError("DATABASE_URL must start with sqlite:// or postgres://")
    return url


def _secret_key(value: str | None, production: bool) -> str:
    if production:
        if not value:
            raise SettingsError("PORTAL_SECRET_KEY is required when PORTAL_ENV=production")
        if len(value) < MIN_SECRET_KEY_LENGTH:
            raise SettingsError(
                f"PORTAL_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters "
                "in production"
            )
        lowered = value.lower()
        if any(word in lowered for word in PLACEHOLDER_WORDS) or len(set(value)) < 10:
            raise SettingsError("PORTAL_SECRET_KEY looks like a placeholder; generate a random one")
        return value
    if value:
        return value
    return _development_secret_key()


def _development_secret_key() -> str:
    # Kept on disk so sessions survive restarts and every worker agrees on it.
    if DEV_SECRET_KEY_FILE.exists():
        return DEV_SECRET_KEY_FILE.read_text().strip()
    DEV_SECRET_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    descriptor = os.open(DEV_SECRET_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key)
    return key


def _base_url(value: str | None, production: bool) -> str:
    if not value:
        if production:
            raise SettingsError("PORTAL_BASE_URL is required when PORTAL_ENV=production")
        return Settings.base_url
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(
            "PORTAL_BASE_URL must be an http(s) address without query, like https://portal.example"
        )
    if production and parts.scheme != "https":
        raise SettingsError("PORTAL_BASE_URL must use https in production")
    return value.rstrip("/")
