"""Trigram indexes for the patient search on PostgreSQL (pg_trgm): a search
for any part of a name, an email or a phone number reads an index instead of
every row of the practice; and a narrow index on the practice alone, which
counts a practice's patients without reading them. SQLite keeps scanning,
which is fine at its size.

Creating the extension needs a role allowed to (the database owner, since
pg_trgm is a trusted extension, or a superuser)."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

SEARCHED = ("first_name_key", "last_name_key", "email", "phone_digits")


async def create_indexes(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    await client.execute_script(
        "CREATE INDEX IF NOT EXISTS patient_practice_id ON patient (practice_id)"
    )
    for column in SEARCHED:
        await client.execute_script(
            f"CREATE INDEX IF NOT EXISTS patient_{column}_trgm"
            f" ON patient USING gin ({column} gin_trgm_ops)"
        )


async def drop_indexes(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script("DROP INDEX IF EXISTS patient_practice_id")
    for column in SEARCHED:
        await client.execute_script(f"DROP INDEX IF EXISTS patient_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("models", "0005_attempt_reservations_and_mail_expiry")]

    initial = False

    operations = [ops.RunPython(create_indexes, drop_indexes)]
