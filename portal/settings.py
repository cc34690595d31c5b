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
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
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
    # The service's own default address (`portal serve` sets its actual one),
    # where it serves the web app its emails link to.
    base_url: str = "http://127.0.0.1:8000"
    env: str = "development"
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    # 0: one per core this process may run on.
    password_hash_threads: int = 0
    smtp_url: str | None = field(default=None, repr=False)
    mail_from: str = "Client Portal <no-reply@localhost>"
    mail_dir: Path = Path("var/mail")
    # Whether `portal serve` delivers mail itself; off when a separate
    # `portal deliver-mail` process does it.
    mail_worker: bool = True
    mail_poll_seconds: int = 2
    # A claimed message is another worker's to send once this lapses (after a
    # crash); it must outlast one SMTP exchange, so it is longer than that timeout.
    mail_lease_seconds: int = 300
    # The most one message's SMTP exchange may take, from connecting to the reply.
    smtp_timeout_seconds: int = 30
    invitation_ttl: timedelta = timedelta(days=7)
    code_ttl: timedelta = timedelta(minutes=15)
    codes_per_hour: int = 3
    reset_token_ttl: timedelta = timedelta(minutes=15)
    reset_link_max_days: int = 30
    password_changed_notice: bool = True
    # Recovery answers take at least this long, so a known email and an
    # unknown one cannot be told apart by timing.
    recovery_response_floor: timedelta = timedelta(milliseconds=300)
    max_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    max_fields: int = 200
    max_directives: int = 5
    max_body_bytes: int = 64 * 1024
    request_timeout_seconds: int = 10
    # PostgreSQL: connections per process, and the longest a statement (or the
    # wait for a connection) may take; below the request budget so a slow
    # table answers 503 and frees its connection before the budget runs out.
    db_pool_size: int = 10
    db_statement_timeout_ms: int = 5000
    # From SIGTERM to exit: requests in flight finish, the mail worker ends
    # after the message it is sending and hands back the rest.
    shutdown_grace_seconds: int = 20
    # Queries run as compiled plans where they can (off: the standard executor only).
    compiled_execution: bool = True
    # A JSON manifest {"sha256:<hex>": "<document>"}: those documents may be
    # sent by `documentId`, and in production nothing else runs.
    trusted_documents: Path | None = None
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    # host:port of the Prometheus listener (never the public port); None: off.
    metrics_address: tuple[str, int] | None = None
    # What has no further use (ended sessions, spent links, settled mail) is
    # deleted this many days after; the audit trail is kept far longer.
    retention_days: int = 30
    audit_retention_days: int = 2190
    # How often a serving process seals new audit rows into their chains (0: never).
    audit_seal_seconds: int = 5

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
        request_timeout_seconds = _int(env, "PORTAL_REQUEST_TIMEOUT_SECONDS", 10, 1, 300)
        statement_timeout_ms = _int(
            env, "PORTAL_DB_STATEMENT_TIMEOUT_MS", request_timeout_seconds * 500, 100, 300_000
        )
        if statement_timeout_ms >= request_timeout_seconds * 1000:
            raise SettingsError(
                "PORTAL_DB_STATEMENT_TIMEOUT_MS must be below the request budget "
                f"(PORTAL_REQUEST_TIMEOUT_SECONDS={request_timeout_seconds})"
            )
        smtp_timeout_seconds = _int(env, "PORTAL_SMTP_TIMEOUT_SECONDS", 30, 1, 600)
        mail_lease_seconds = _int(env, "PORTAL_MAIL_LEASE_SECONDS", 300, 2, 86400)
        if mail_lease_seconds <= smtp_timeout_seconds:
            raise SettingsError(
                "PORTAL_MAIL_LEASE_SECONDS must be longer than PORTAL_SMTP_TIMEOUT_SECONDS "
                f"({smtp_timeout_seconds}), or a slow send could be taken over and sent twice"
            )
        base_url = _base_url(env.get("PORTAL_BASE_URL"), production)
        return cls(
            database_url=_database_url(env.get("DATABASE_URL", DEFAULT_DATABASE_URL)),
            secret_key=_secret_key(env.get("PORTAL_SECRET_KEY"), production),
            base_url=base_url,
            env=portal_env,
            session_idle_minutes=_int(env, "PORTAL_SESSION_IDLE_MINUTES", 30, 1, 24 * 60),
            session_max_hours=_int(env, "PORTAL_SESSION_MAX_HOURS", 12, 1, 24 * 30),
            argon2_memory_kib=_int(env, "PORTAL_ARGON2_MEMORY_KIB", 19 * 1024, 8, 4 * 1024 * 1024),
            argon2_time_cost=_int(env, "PORTAL_ARGON2_TIME_COST", 2, 1, 100),
            argon2_parallelism=_int(env, "PORTAL_ARGON2_PARALLELISM", 1, 1, 64),
            password_hash_threads=_int(env, "PORTAL_PASSWORD_HASH_THREADS", 0, 0, 64),
            smtp_url=_smtp_url(env.get("SMTP_URL")),
            mail_from=_mail_from(env.get("PORTAL_MAIL_FROM", cls.mail_from)),
            mail_dir=Path(env.get("PORTAL_MAIL_DIR") or cls.mail_dir),
            mail_worker=_bool(env, "PORTAL_MAIL_WORKER", True),
            mail_poll_seconds=_int(env, "PORTAL_MAIL_POLL_SECONDS", 2, 1, 3600),
            mail_lease_seconds=mail_lease_seconds,
            smtp_timeout_seconds=smtp_timeout_seconds,
            invitation_ttl=_duration(
                env,
                "PORTAL_INVITATION_TTL",
                timedelta(days=7),
                timedelta(minutes=5),
                timedelta(days=90),
            ),
            code_ttl=_duration(
                env,
                "PORTAL_CODE_TTL",
                timedelta(minutes=15),
                timedelta(minutes=1),
                timedelta(hours=2),
            ),
            codes_per_hour=_int(env, "PORTAL_CODES_PER_HOUR", 3, 1, 20),
            reset_token_ttl=_duration(
                env,
                "PORTAL_RESET_TOKEN_TTL",
                timedelta(minutes=15),
                timedelta(minutes=1),
                timedelta(hours=2),
            ),
            reset_link_max_days=_int(env, "PORTAL_RESET_LINK_MAX_DAYS", 30, 1, 365),
            password_changed_notice=_bool(env, "PORTAL_PASSWORD_CHANGED_NOTICE", True),
            recovery_response_floor=timedelta(
                milliseconds=_int(env, "PORTAL_RECOVERY_RESPONSE_FLOOR_MS", 300, 0, 5000)
            ),
            max_depth=_int(env, "PORTAL_MAX_DEPTH", 10, 2, 50),
            max_aliases=_int(env, "PORTAL_MAX_ALIASES", 15, 0, 1000),
            max_tokens=_int(env, "PORTAL_MAX_TOKENS", 2000, 100, 100_000),
            max_fields=_int(env, "PORTAL_MAX_FIELDS", 200, 10, 10_000),
            max_directives=_int(env, "PORTAL_MAX_DIRECTIVES", 5, 0, 100),
            max_body_bytes=_int(env, "PORTAL_MAX_BODY_BYTES", 64 * 1024, 1024, 10 * 1024 * 1024),
            request_timeout_seconds=request_timeout_seconds,
            db_pool_size=_int(env, "PORTAL_DB_POOL_SIZE", 10, 1, 500),
            db_statement_timeout_ms=statement_timeout_ms,
            shutdown_grace_seconds=_int(env, "PORTAL_SHUTDOWN_GRACE_SECONDS", 20, 1, 600),
            compiled_execution=_bool(env, "PORTAL_COMPILED_EXECUTION", True),
            trusted_documents=Path(env["PORTAL_TRUSTED_DOCUMENTS"])
            if env.get("PORTAL_TRUSTED_DOCUMENTS")
            else None,
            cors_origins=_cors_origins(env.get("PORTAL_CORS_ORIGINS", ""), base_url, production),
            trusted_proxies=_networks(env.get("PORTAL_TRUSTED_PROXIES", "")),
            metrics_address=_address(env.get("PORTAL_METRICS_ADDRESS", "")),
            retention_days=_int(env, "PORTAL_RETENTION_DAYS", 30, 1, 3650),
            audit_retention_days=_int(env, "PORTAL_AUDIT_RETENTION_DAYS", 2190, 30, 36500),
            audit_seal_seconds=_int(env, "PORTAL_AUDIT_SEAL_SECONDS", 5, 0, 3600),
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
        "PORTAL_MAIL_FROM",
        "PORTAL_MAIL_DIR",
        "PORTAL_MAIL_WORKER",
        "PORTAL_MAIL_POLL_SECONDS",
        "PORTAL_MAIL_LEASE_SECONDS",
        "PORTAL_SMTP_TIMEOUT_SECONDS",
        "PORTAL_INVITATION_TTL",
        "PORTAL_CODE_TTL",
        "PORTAL_CODES_PER_HOUR",
        "PORTAL_RESET_TOKEN_TTL",
        "PORTAL_RESET_LINK_MAX_DAYS",
        "PORTAL_PASSWORD_CHANGED_NOTICE",
        "PORTAL_RECOVERY_RESPONSE_FLOOR_MS",
        "PORTAL_MAX_DEPTH",
        "PORTAL_MAX_ALIASES",
        "PORTAL_MAX_TOKENS",
        "PORTAL_MAX_FIELDS",
        "PORTAL_MAX_DIRECTIVES",
        "PORTAL_MAX_BODY_BYTES",
        "PORTAL_REQUEST_TIMEOUT_SECONDS",
        "PORTAL_DB_POOL_SIZE",
        "PORTAL_DB_STATEMENT_TIMEOUT_MS",
        "PORTAL_SHUTDOWN_GRACE_SECONDS",
        "PORTAL_COMPILED_EXECUTION",
        "PORTAL_TRUSTED_DOCUMENTS",
        "PORTAL_CORS_ORIGINS",
        "PORTAL_TRUSTED_PROXIES",
        "PORTAL_METRICS_ADDRESS",
        "PORTAL_RETENTION_DAYS",
        "PORTAL_AUDIT_RETENTION_DAYS",
        "PORTAL_AUDIT_SEAL_SECONDS",
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


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(
    env: Mapping[str, str], name: str, default: timedelta, low: timedelta, high: timedelta
) -> timedelta:
    """A duration like `7d`, `12h`, `30m` or `90s` (a bare number is seconds)."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    unit = raw[-1] if raw[-1] in DURATION_UNITS else "s"
    number = raw[:-1] if raw[-1] in DURATION_UNITS else raw
    try:
        value = timedelta(seconds=float(number) * DURATION_UNITS[unit])
    except (ValueError, OverflowError):
        raise SettingsError(f"{name} must be a duration like 7d, 12h or 30m, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "on", "yes"):
        return True
    if raw in ("0", "false", "off", "no"):
        return False
    raise SettingsError(f"{name} must be on or off, not {raw!r}")


def _smtp_url(value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SettingsError("SMTP_URL must look like smtp://host:port or smtps://user:pass@host")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise SettingsError("SMTP_URL has a malformed port") from None
    return value


def _mail_from(value: str) -> str:
    from email.headerregistry import Address
    from email.utils import parseaddr

    name, address = parseaddr(value)
    if "@" not in address:
        raise SettingsError(
            "PORTAL_MAIL_FROM must be an address like 'Client Portal <no-reply@example.org>'"
        )
    try:
        Address(display_name=name, addr_spec=address)
    except (ValueError, IndexError):
        raise SettingsError(f"PORTAL_MAIL_FROM is not a valid address: {value!r}") from None
    return value


def _cors_origins(raw: str, base_url: str, production: bool) -> tuple[str, ...]:
    """`PORTAL_CORS_ORIGINS`; in development also the origin of `PORTAL_BASE_URL`,
    where the front end the emails link to runs, so it works without a setting.
    Production allows exactly the origins listed."""
    origins = _origins(raw)
    if production:
        return origins
    parts = urlsplit(base_url)
    own = f"{parts.scheme}://{parts.netloc}"
    return origins if own in origins else (*origins, own)


def _origins(raw: str) -> tuple[str, ...]:
    """Comma-separated origins allowed to call the API from a browser."""
    origins = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise SettingsError(
                "PORTAL_CORS_ORIGINS entries must be origins like https://app.example, "
                f"not {item!r}"
            )
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(origins)


def _networks(raw: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """Comma-separated addresses or networks of proxies whose X-Forwarded-For is believed."""
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(
                f"PORTAL_TRUSTED_PROXIES entries must be IP addresses or networks, not {item!r}"
            ) from None
    return tuple(networks)


def _address(raw: str) -> tuple[str, int] | None:
    """`PORTAL_METRICS_ADDRESS`: host:port ([v6]:port), or empty for none."""
    raw = raw.strip()
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(
            f"PORTAL_METRICS_ADDRESS must be host:port, like 127.0.0.1:9100, not {raw!r}"
        )
    return host, int(port)
