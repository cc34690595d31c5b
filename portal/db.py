"""Tortoise configuration and lifecycle, shared by the app, the CLI and the
tests, and what the rest of the service knows of the database being away."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import connections
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api import migrate as run_migrations

from portal.settings import DEFAULT_DATABASE_URL, Settings

MODELS_APP = "models"
POSTGRES_ENGINE = "portal.postgres"
APPLICATION_NAME = "client-portal"

logger = logging.getLogger("portal.db")
# Hand-written statements, without their values, at DEBUG (the tests count them).
statements = logging.getLogger("portal.sql")


class DatabaseUnavailable(DBConnectionError):
    """The database cannot answer now: unreachable, dropped, shutting down.
    Carries only the underlying exception's type name, never its text."""


class DatabaseBusy(DatabaseUnavailable):
    """The database answers, but not in time: a statement or lock timeout, or
    no free connection. Also worth a retry, but the database is not away."""


def is_unavailable(problem: BaseException | None) -> bool:
    """Whether `problem`, or what caused it, is the database being away.
    A bare OSError counts: in a request only the database is a socket away."""
    seen = 0
    while problem is not None and seen < 10:
        if isinstance(problem, DatabaseUnavailable | OSError):
            return True
        problem = problem.__cause__ or problem.__context__
        seen += 1
    return False


def cause_name(problem: BaseException) -> str:
    """What went wrong, by type: the underlying one for `DatabaseUnavailable`."""
    if isinstance(problem, DatabaseUnavailable) and problem.args:
        return str(problem.args[0])
    return type(problem).__name__


# How long the database must go on answering before the log says it is back:
# as a server goes down, connections it has not closed yet still answer for a
# moment after the first one failed.
RECOVERY_CONFIRM_SECONDS = 0.5


class Availability:
    """Says once when the database stops answering and once when it is back,
    however many requests, health checks and workers notice in between.
    Silent until a long-running process (`serve`, `deliver-mail`) `watch`es."""

    def __init__(self) -> None:
        self.watching = False
        self.down_since: float | None = None
        self.last_failure = 0.0
        self.confirming = False

    def watch(self) -> None:
        self.watching = True

    def forget(self) -> None:
        """Back to "answering" (tests, between their outages)."""
        self.down_since = None
        self.last_failure = 0.0

    def failed(self, problem: BaseException) -> None:
        if not self.watching:
            return
        self.last_failure = time.monotonic()
        if self.down_since is not None:
            return
        self.down_since = self.last_failure
        logger.error(
            "The database is not answering (%s); requests answer 503 SERVICE_UNAVAILABLE "
            "and the service keeps retrying.",
            cause_name(problem),
        )

    def answered(self, asked_at: float) -> None:
        """`asked_at` (time.monotonic()) is when the answered call was made:
        only a call made after the last failure counts, and the outage is over
        when no failure follows it for RECOVERY_CONFIRM_SECONDS."""
        if self.down_since is None or asked_at <= self.last_failure or self.confirming:
            return
        self.confirming = True
        try:
            asyncio.get_running_loop().call_later(RECOVERY_CONFIRM_SECONDS, self._confirm, asked_at)
        except RuntimeError:  # no loop to wait on: take the answer's word
            self._confirm(asked_at)

    def _confirm(self, asked_at: float) -> None:
        self.confirming = False
        if self.down_since is None or self.last_failure >= asked_at:
            return  # over already, or it failed again: the outage goes on
        seconds = asked_at - self.down_since
        self.down_since = None
        logger.warning("The database is answering again after %.1f s.", seconds)


availability = Availability()


def tortoise_config(
    database_url: str, pool_size: int = 5, statement_timeout_ms: int | None = None
) -> dict[str, Any]:
    """The ORM's configuration. On PostgreSQL, `statement_timeout_ms` bounds
    every statement and every wait for a connection (migrations go unbounded)."""
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection: str | dict[str, Any] = database_url
    else:
        connection = _postgres(database_url, pool_size, statement_timeout_ms)
    return {
        "connections": {"default": connection},
        "apps": {
            MODELS_APP: {
                "models": ["models"],
                "migrations": "models.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _postgres(
    database_url: str, pool_size: int, statement_timeout_ms: int | None
) -> dict[str, Any]:
    expanded = expand_db_url(database_url)
    credentials: dict[str, Any] = {
        **expanded["credentials"],
        "maxsize": pool_size,
        "application_name": APPLICATION_NAME,
    }
    if statement_timeout_ms is not None:
        seconds = statement_timeout_ms / 1000
        credentials["server_settings"] = {
            **credentials.get("server_settings", {}),
            "statement_timeout": str(statement_timeout_ms),
        }
        # The client gives up a little after the server would have, so a
        # connection that went silent (a dropped route, a dead proxy) is
        # noticed too. A wait for a free connection outlasts one statement
        # timeout of whoever holds it (and bounds giving a broken one back).
        credentials["command_timeout"] = seconds + 1
        credentials["timeout"] = seconds
        credentials["acquire_timeout"] = seconds * 1.5
    return {"engine": POSTGRES_ENGINE, "credentials": credentials}


async def migrate(database_url: str) -> None:
    """Applies every migration not yet applied to the database."""
    try:
        await run_migrations(config=tortoise_config(database_url))
    finally:
        await Tortoise.close_connections()


async def connect(settings: Settings) -> None:
    config = tortoise_config(
        settings.database_url, settings.db_pool_size, settings.db_statement_timeout_ms
    )
    await Tortoise.init(config=config, _enable_global_fallback=True)


async def disconnect() -> None:
    await Tortoise.close_connections()


@asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[None]:
    await connect(settings)
    try:
        yield
    finally:
        await disconnect()


# --- hand-written SQL for the paths that run on every request -----------------

Row = Mapping[str, Any]
Decoder = Callable[[Any], Any]


def _text_to_uuid(value: Any) -> Any:
    return uuid.UUID(value) if isinstance(value, str) else value


def _text_to_datetime(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _text_to_date(value: Any) -> Any:
    return date.fromisoformat(value) if isinstance(value, str) else value


# How SQLite hands back what PostgreSQL types (it keeps these as text).
AS_UUID: Decoder = _text_to_uuid
AS_DATETIME: Decoder = _text_to_datetime
AS_DATE: Decoder = _text_to_date
_PLACEHOLDER = re.compile(r"\$(\d+)")


@dataclass(frozen=True)
class Sql:
    """One statement in PostgreSQL's words with `$1` placeholders, which
    SQLite reads as `?1`; `sqlite` where it needs other words. `types` names
    the columns SQLite returns as text that are UUIDs, dates or times."""

    text: str
    types: Mapping[str, Decoder] = field(default_factory=dict)
    sqlite: str | None = None
    # Answers with exactly one row whatever it finds (an aggregate): another
    # one-row read may be joined to it (see portal.services.sessions).
    one_row: bool = False
    sqlite_text: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sqlite_text", _PLACEHOLDER.sub(r"?\1", self.sqlite or self.text))


_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")


@dataclass(frozen=True)
class Member:
    """One member of a JSON object the database writes for a row: its key and
    one of a column, a constant (a type name), a column written through
    `encode` (the SQL of a value computed from it, such as a cursor), or an
    object made of `members` of the same row."""

    key: str
    column: str | None = None
    constant: str | None = None
    encode: Callable[[str, str], str] | None = None
    members: tuple[Member, ...] | None = None


Rendering = tuple[Member, ...]


def json_object(dialect: str, members: Rendering, columns: Sequence[str], table: str = "") -> str:
    """SQL for the text of one JSON object made of the given members, all
    names and constants checked to be plain names and columns to be among
    `columns`, so nothing but known words reaches the statement."""
    written = _json_members(dialect, members, columns, table)
    return f"{written}::text" if dialect == "postgres" else written


def _json_members(dialect: str, members: Rendering, columns: Sequence[str], table: str) -> str:
    parts = []
    for member in members:
        if not _NAME.fullmatch(member.key):
            raise ValueError(f"not a plain name: {member.key!r}")
        parts.append(f"'{member.key}'")
        if member.members is not None:
            parts.append(_json_members(dialect, member.members, columns, table))
        elif member.column is not None:
            if member.column not in columns:
                raise ValueError(f"not a column here: {member.column!r}")
            column = f"{table}{member.column}"
            parts.append(member.encode(dialect, column) if member.encode else column)
        else:
            constant = member.constant
            if constant is None or not _NAME.fullmatch(constant):
                raise ValueError(f"not a plain name: {constant!r}")
            parts.append(f"'{constant}'::text" if dialect == "postgres" else f"'{constant}'")
    function = "json_build_object" if dialect == "postgres" else "json_object"
    return f"{function}({', '.join(parts)})"


@dataclass(frozen=True)
class RenderedList:
    """A list of objects the database wrote as the text of one JSON array
    (`alias` names the selection it wrote), with, for each input their
    permissions decide on, that input of every object in order, as text
    joined by commas (ids, which hold none)."""

    alias: str
    text: str
    inputs: Mapping[str, str]

    def column(self, name: str) -> list[str]:
        joined = self.inputs[name]
        return joined.split(",") if joined else []


class Reader(Protocol):
    """Runs hand-written statements on one connection (PostgreSQL) for as long
    as it is held, or inside the caller's transaction when there is one."""

    dialect: str

    async def fetch(self, sql: Sql, *args: Any) -> Sequence[Row]: ...

    async def execute(self, sql: Sql, *args: Any) -> int: ...


class _SqliteReader:
    dialect = "sqlite"

    def __init__(self, client: Any) -> None:
        self.client = client

    async def __aenter__(self) -> _SqliteReader:
        return self

    async def __aexit__(self, *problem: object) -> None:
        return None

    async def fetch(self, sql: Sql, *args: Any) -> Sequence[Row]:
        # The client's lock is taken per statement: a Tortoise query in
        # between, on the same single connection, must not wait for us.
        async with self.client.acquire_connection() as connection:
            statements.debug(sql.text)
            found = await connection.execute_fetchall(sql.sqlite_text, _sqlite_args(args))
        rows: list[dict[str, Any]] = [dict(row) for row in found]
        for name, decode in sql.types.items():
            for row in rows:
                if name in row:
                    row[name] = decode(row[name])
        return rows

    async def execute(self, sql: Sql, *args: Any) -> int:
        async with self.client.acquire_connection() as connection:
            statements.debug(sql.text)
            cursor = await connection.execute(sql.sqlite_text, _sqlite_args(args))
            return int(cursor.rowcount)


def _sqlite_args(args: Sequence[Any]) -> list[Any]:
    return [str(a) if isinstance(a, uuid.UUID) else a for a in args]


# A statement and its arguments, to be run later (see `write_together`).
Write = tuple[Sql, tuple[Any, ...]]


async def write_together(reader: Reader, writes: Sequence[Write]) -> None:
    """Writes that do not depend on one another, in one round trip on
    PostgreSQL, atomically: each a data-modifying WITH clause, which runs once
    and to completion (none sees the others' rows, so none may need to).
    Elsewhere one after another."""
    if reader.dialect != "postgres":
        for sql, args in writes:
            await reader.execute(sql, *args)
        return
    combined, counts = _together(tuple(sql for sql, _ in writes))
    if counts != tuple(len(args) for _, args in writes):
        raise ValueError("each statement takes as many arguments as its placeholders")
    await reader.execute(combined, *(value for _, args in writes for value in args))


_combined: dict[tuple[int, ...], tuple[tuple[Sql, ...], Sql, tuple[int, ...]]] = {}


def _together(statements: tuple[Sql, ...]) -> tuple[Sql, tuple[int, ...]]:
    """The combined statement, and how many arguments each part takes."""
    # Keyed by the statements' identities (module constants): one text per
    # combination, which asyncpg then prepares once per connection.
    key = tuple(id(sql) for sql in statements)
    known = _combined.get(key)
    if known is not None:
        return known[1], known[2]
    clauses, counts, offset = [], [], 0
    for number, sql in enumerate(statements):
        used = max((int(n) for n in _PLACEHOLDER.findall(sql.text)), default=0)
        shifted = _PLACEHOLDER.sub(_shifted_by(offset), sql.text)
        clauses.append(f"write_{number} AS ({shifted})")
        counts.append(used)
        offset += used
    combined = Sql("WITH " + ", ".join(clauses) + " SELECT 1")
    # The statements are kept with it, so their identities stay theirs.
    _combined[key] = (statements, combined, tuple(counts))
    return combined, tuple(counts)


def shifted(text: str, offset: int) -> str:
    """A statement's text with its placeholders moved `offset` places on."""
    return _PLACEHOLDER.sub(_shifted_by(offset), text)


def _shifted_by(offset: int) -> Callable[[re.Match[str]], str]:
    return lambda placeholder: f"${int(placeholder.group(1)) + offset}"


def reading() -> AbstractAsyncContextManager[Reader]:
    """A Reader for a few statements in a row: on PostgreSQL they share one
    pooled connection (one checkout), taken at the first statement."""
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        from portal.postgres import PostgresReader

        return PostgresReader(client)
    return _SqliteReader(client)


async def ping() -> None:
    """One round trip to the database; raises when it does not answer."""
    await connections.get("default").execute_query("SELECT 1")


def _developer_config() -> dict[str, Any]:
    import os

    return tortoise_config(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))


# For Tortoise's own CLI (`tortoise makemigrations`), named in pyproject.toml.
TORTOISE_ORM = _developer_config()
