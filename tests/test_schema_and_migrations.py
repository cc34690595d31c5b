"""The exported schema and the checked-in migrations match the code."""

from __future__ import annotations

from pathlib import Path

from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector

from graph.schema import schema
from portal.db import MODELS_APP, tortoise_config

ROOT = Path(__file__).resolve().parent.parent


def test_schema_graphql_is_exported_from_the_code() -> None:
    exported = (ROOT / "schema.graphql").read_text()

    assert exported.strip() == schema.as_str().strip(), "run `make schema` and commit the result"


async def test_migrations_describe_the_current_models(app: object) -> None:
    apps_config = tortoise_config("sqlite://:memory:")["apps"]
    detector = MigrationAutodetector(Tortoise.apps, apps_config)

    pending = await detector.changes()

    assert pending == [], (
        f"models changed without a migration ({MODELS_APP}): run `make migrations`"
    )
