"""Retention: what has no further use is deleted `PORTAL_RETENTION_DAYS` after
it stopped mattering; the audit trail after `PORTAL_AUDIT_RETENTION_DAYS`.

Deleted in batches (each its own short transaction), the candidates read
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of processes may prune
at once without waiting on each other or on requests.

Kept whatever their age, because something still reads them:
- each account's newest session (`lastSignInAt` is its `created_at`);
- each patient's newest invitation (`portal.invitedAt` and the portal status).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from portal import clock
from portal.db import Sql, reading
from portal.services import audit_chain
from portal.settings import Settings

BATCH = 1000
# Heartbeats of workers gone for this long are forgotten.
HEARTBEAT_MEMORY = timedelta(days=1)


def _batched(table: str, condition: str) -> Sql:
    """Deletes up to $2 rows of `table` matching `condition` ($1: the cutoff)."""
    # Only this module's constants reach the text.
    chosen = f"SELECT id FROM {table} AS t WHERE {condition} LIMIT $2"  # noqa: S608
    return Sql(
        f"DELETE FROM {table} WHERE id IN ({chosen} FOR UPDATE SKIP LOCKED)",  # noqa: S608
        sqlite=f"DELETE FROM {table} WHERE id IN ({chosen})",  # noqa: S608
    )


# Each: what is spent, replaced, ended or expired before the cutoff.
PRUNED = {
    "sessions": _batched(
        "session",
        "(t.ended_at < $1 OR t.expires_at < $1) AND t.created_at <"
        " (SELECT max(n.created_at) FROM session n WHERE n.account_id = t.account_id)",
    ),
    "invitations": _batched(
        "invitation",
        "(t.used_at < $1 OR t.revoked_at < $1 OR t.expires_at < $1) AND (t.patient_id IS NULL"
        " OR t.created_at < (SELECT max(n.created_at) FROM invitation n"
        " WHERE n.patient_id = t.patient_id))",
    ),
    "verification_codes": _batched(
        "verification_code", "t.used_at < $1 OR t.revoked_at < $1 OR t.expires_at < $1"
    ),
    "reset_tokens": _batched(
        "reset_token", "t.used_at < $1 OR t.revoked_at < $1 OR t.expires_at < $1"
    ),
    "mfa_challenges": _batched("mfa_challenge", "t.used_at < $1 OR t.expires_at < $1"),
    "outbox_messages": _batched(
        "outbox_message",
        "(t.status = 'SENT' AND t.sent_at < $1) OR (t.status = 'FAILED' AND t.created_at < $1)",
    ),
}
FORGET_HEARTBEATS = Sql("DELETE FROM worker_heartbeat WHERE beat_at < $1")


@dataclass
class Pruned:
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def prune(settings: Settings, now: datetime | None = None) -> Pruned:
    """One full pass: every kind, batch after batch, then the audit trail."""
    now = now or clock.now()
    cutoff = now - timedelta(days=settings.retention_days)
    result = Pruned()
    for kind, statement in PRUNED.items():
        result.counts[kind] = 0
        while True:
            async with reading() as reader:
                removed = await reader.execute(statement, cutoff, BATCH)
            result.counts[kind] += removed
            if removed < BATCH:
                break
    async with reading() as reader:
        await reader.execute(FORGET_HEARTBEATS, now - HEARTBEAT_MEMORY)
    result.counts["audit_events"] = await audit_chain.prune(
        now - timedelta(days=settings.audit_retention_days)
    )
    return result
