"""Writes emails into the outbox table, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models import OutboxMessage
from portal import clock
from portal.mail.render import render


async def enqueue(
    kind: str, to_address: str, context: dict[str, Any], discard_after: datetime | None = None
) -> OutboxMessage:
    """Queues an email. Call inside the transaction that makes the change the
    email reports, so the two are committed, or rolled back, together.
    `discard_after`: when what it carries expires, so it is never sent late."""
    email = render(kind, context)
    now = clock.now()
    return await OutboxMessage.create(
        kind=kind,
        to_address=to_address,
        subject=email.subject,
        text_body=email.text,
        html_body=email.html,
        created_at=now,
        next_attempt_at=now,
        discard_after=discard_after,
    )
