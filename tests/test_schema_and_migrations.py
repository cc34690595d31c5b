"""The exported schema and the checked-in migrations match the code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector

from graph.clients import possible_types
from graph.schema import schema
from portal.db import MODELS_APP, tortoise_config
from tests.processes import TEST_DATABASE_URL, fresh_postgres_database, postgres_only

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


def upgraded(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "tests" / "upgrade_check.py"), database_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_database_holding_rows_upgrades_to_the_latest_migration(tmp_path: Path) -> None:
    result = upgraded(f"sqlite://{tmp_path / 'old.sqlite3'}")

    assert result.returncode == 0 and "upgraded" in result.stdout, result.stderr


@postgres_only
def test_a_postgresql_database_holding_rows_upgrades_to_the_latest_migration() -> None:
    with fresh_postgres_database(TEST_DATABASE_URL, "portal_upgrade") as url:
        result = upgraded(url)

    assert result.returncode == 0 and "upgraded" in result.stdout, result.stderr
