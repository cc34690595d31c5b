"""The exported schema and the checked-in migrations match the code."""

from __future__ import annotations

import json
from pathlib import Path

from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector

from graph.clients import possible_types
from graph.schema import schema
from portal.db import MODELS_APP, tortoise_config

ROOT = Path(__file__).resolve().parent.parent


def test_schema_graphql_is_exported_from_the_code() -> None:
    exported = (ROOT / "schema.graphql").read_text()

    assert exported.strip() == schema.as_str().strip(), "run `make schema` and commit the result"


def test_the_clients_possible_types_are_written_from_the_code() -> None:
    written = json.loads((ROOT / "clients" / "possible-types.json").read_text())

    assert written == possible_types(schema._schema), "run `make schema` and commit the result"
    # What Apollo needs to apply `... on Error` inside a mutation's result.
    assert "InvalidCredentialsError" in written["Error"]
    assert set(written["LoginResult"]) >= {"LoginSuccess", "InvalidCredentialsError"}


async def test_migrations_describe_the_current_models(app: object) -> None:
    apps_config = tortoise_config("sqlite://:memory:")["apps"]
    detector = MigrationAutodetector(Tortoise.apps, apps_config)

    pending = await detector.changes()

    assert pending == [], (
        f"models changed without a migration ({MODELS_APP}): run `make migrations`"
    )
