"""Run by tests/test_schema_and_migrations.py in a process of its own (the
ORM's state is global): a database at an older migration, holding rows, is
brought up to date, and the columns added since are filled."""

from __future__ import annotations

import asyncio
import sys
import uuid

from tortoise import Tortoise, connections
from tortoise.migrations.api.migrate import migrate

from portal.db import tortoise_config

OLD = "models.0007_short_search_index"


async def main(database_url: str) -> None:
    config = tortoise_config(database_url)
    await migrate(config=config, target=OLD)
    client = connections.get("default")
    marks = [f"${n}" if client.capabilities.dialect == "postgres" else "?" for n in (1, 2, 3)]
    practice, patient, invitation = (str(uuid.uuid4()) for _ in range(3))
    await client.execute_query(
        "INSERT INTO practice (id, name, slug, created_at)"
        f" VALUES ({marks[0]}, 'Old', 'old', '2026-01-01')",
        [practice],
    )
    await client.execute_query(
        "INSERT INTO patient (id, practice_id, first_name, last_name, first_name_key,"
        f" last_name_key, created_at, updated_at) VALUES ({marks[0]}, {marks[1]},"
        " 'A', 'B', 'a', 'b', '2026-01-01', '2026-01-01')",
        [patient, practice],
    )
    await client.execute_query(
        "INSERT INTO invitation (id, practice_id, patient_id, token_hash, sent_to, created_at,"
        f" expires_at) VALUES ({', '.join(marks)}, 'h', 'a@b.example', '2026-01-01',"
        " '2026-01-02')",
        [invitation, practice, patient],
    )
    await client.execute_query(
        "INSERT INTO audit_event (id, practice_id, action, occurred_at)"
        f" VALUES ({marks[0]}, {marks[1]}, 'LOGOUT', '2026-01-01')",
        [str(uuid.uuid4()), practice],
    )
    await Tortoise.close_connections()
    await migrate(config=config)
    client = connections.get("default")
    _, practices = await client.execute_query("SELECT staff_mfa_required FROM practice")
    _, invitations = await client.execute_query("SELECT role FROM invitation")
    counts: list[object] = []
    if client.capabilities.dialect == "postgres":
        # The patient already there is counted (migrations 0012 and 0014).
        _, counts = await client.execute_query(
            "SELECT gram, patients FROM patient_short_gram_count ORDER BY gram"
        )
    # Audit rows from before the chain: marked as such, sealed first later.
    _, events = await client.execute_query("SELECT row_mac, seq FROM audit_event")
    await Tortoise.close_connections()
    assert [bool(row[0]) for row in practices] == [False], practices
    assert [row[0] for row in invitations] == ["PATIENT"], invitations
    assert [tuple(row) for row in events] == [("", None)], events
    if client.capabilities.dialect == "postgres":
        assert [tuple(row) for row in counts] == [("", 1), ("a", 1), ("b", 1)], counts
    print("upgraded")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
