"""Readiness for orchestrators: the database answers, its migrations are the
ones this code expects, and mail is being delivered (by this process's worker,
or by a separate one whose heartbeat is in the database)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from portal import clock
from portal.db import AS_DATETIME, Sql, reading
from portal.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "models" / "migrations"
_MIGRATION_FILE = re.compile(r"^(\d{4}_\w+)\.py$")

APPLIED = Sql("SELECT name FROM tortoise_migrations WHERE app = 'models'")
FRESHEST_BEAT = Sql(
    "SELECT max(beat_at) AS beat_at FROM worker_heartbeat", types={"beat_at": AS_DATETIME}
)
BEAT = Sql(
    "INSERT INTO worker_heartbeat (worker_id, beat_at) VALUES ($1, $2)"
    " ON CONFLICT (worker_id) DO UPDATE SET beat_at = excluded.beat_at"
)


def expected_migrations() -> frozenset[str]:
    return frozenset(
        found.group(1)
        for path in MIGRATIONS.iterdir()
        if (found := _MIGRATION_FILE.match(path.name)) is not None
    )


class Readiness:
    """What `/health/ready` asks the database. Migrations, once current,
    stay current for the life of the process (they only move forward)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.expected = expected_migrations()
        self.migrations_current = False
        # As the in-process worker judges staleness: a send, a few statements, a few polls.
        self.stale_after = timedelta(
            seconds=settings.smtp_timeout_seconds
            + 3 * settings.mail_poll_seconds
            + 3 * settings.db_statement_timeout_ms / 1000
        )

    async def migrations(self) -> str:
        if not self.migrations_current:
            async with reading() as reader:
                applied = {row["name"] for row in await reader.fetch(APPLIED)}
            self.migrations_current = self.expected <= applied
        return "ok" if self.migrations_current else "behind"

    async def mail_heartbeat(self) -> str:
        """ok when some delivery worker, anywhere, completed a round lately."""
        async with reading() as reader:
            found = await reader.fetch(FRESHEST_BEAT)
        beat = found[0]["beat_at"] if found else None
        if beat is None:
            return "missing"
        return "ok" if clock.now() - beat <= self.stale_after else "stale"


async def beat(worker_id: str) -> None:
    """A delivery worker's heartbeat, for readiness checks in other processes."""
    async with reading() as reader:
        await reader.execute(BEAT, worker_id, clock.now())
