"""Tortoise configuration and lifecycle, shared by the app, the CLI and the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.migrations.api import migrate as run_migrations

MODELS_APP = "models"


def tortoise_config(database_url: str) -> dict[str, Any]:
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    return {
        "connections": {"default": database_url},
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


async def migrate(database_url: str) -> None:
    """Applies every migration not yet applied to the database."""
    try:
        await run_migrations(config=tortoise_config(database_url))
    finally:
        await Tortoise.close_connections()


async def connect(database_url: str) -> None:
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def disconnect() -> None:
    await Tortoise.close_connections()


@asynccontextmanager
async def connected(database_url: str) -> AsyncIterator[None]:
    await connect(database_url)
    try:
        yield
    finally:
        await disconnect()


def _developer_config() -> dict[str, Any]:
    import os

    from portal.settings import DEFAULT_DATABASE_URL

    return tortoise_config(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))


# For Tortoise's own CLI (`tortoise makemigrations`), named in pyproject.toml.
TORTOISE_ORM = _developer_config()
