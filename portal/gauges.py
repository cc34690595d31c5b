"""The gauges no request sets: sampled by a task of each serving process (and
of `portal deliver-mail`) while metrics are on, never on a request's path."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from tortoise.connection import connections

from portal import clock, metrics
from portal.db import AS_DATETIME, Sql, reading

LAG_INTERVAL_SECONDS = 1.0
# The outbox is read once per this many lag samples (one statement).
OUTBOX_EVERY = 15

OUTBOX = Sql(
    "SELECT count(*) AS backlog,"
    " (SELECT min(next_attempt_at) FROM outbox_message"
    " WHERE status = 'PENDING' AND next_attempt_at <= $1) AS oldest_due"
    " FROM outbox_message WHERE status = 'PENDING'",
    types={"oldest_due": AS_DATETIME},
)


def pool_in_use() -> int:
    """Connections checked out of this process's PostgreSQL pool (0 on SQLite)."""
    client = connections.get("default")
    pool = getattr(client, "_pool", None)
    if pool is None:
        return 0
    # Those kept ready for the next request are checked out, yet idle.
    ready = client.ready_count() if hasattr(client, "ready_count") else 0
    return int(pool.get_size() - pool.get_idle_size() - ready)


async def sample_outbox(now: datetime | None = None) -> None:
    now = now or clock.now()
    async with reading() as reader:
        [row] = await reader.fetch(OUTBOX, now)
    metrics.OUTBOX_BACKLOG.set(row["backlog"])
    oldest_due = row["oldest_due"]
    metrics.OUTBOX_OLDEST_DUE_AGE.set(
        max((now - oldest_due).total_seconds(), 0.0) if oldest_due is not None else 0.0
    )


async def run_forever() -> None:
    loop = asyncio.get_running_loop()
    samples = 0
    while True:
        asked = loop.time()
        await asyncio.sleep(LAG_INTERVAL_SECONDS)
        metrics.EVENT_LOOP_LAG.set(max(loop.time() - asked - LAG_INTERVAL_SECONDS, 0.0))
        with contextlib.suppress(Exception):  # no pool yet, or being closed
            metrics.DB_POOL_IN_USE.set(pool_in_use())
        if samples % OUTBOX_EVERY == 0:
            with contextlib.suppress(Exception):  # the database may be away: next time
                await sample_outbox()
        samples += 1
