"""The audit trail: append-only events of who did what, to which patient,
when, and from where. Never passwords, tokens, codes or health details."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tortoise.expressions import Q

from models import AuditAction, AuditEvent, Role
from portal import clock
from portal.request_context import client_ip, current_request, user_agent
from portal.services import cursors
from portal.services.access import Viewer
from portal.services.errors import BadInput

MAX_PAGE_SIZE = 100
CURSOR_KIND = "audit"


# Refusals a caller can repeat fifteen times per request (one per alias) are
# written once per request, so an attacker cannot flood the trail with them.
ONCE_PER_REQUEST = frozenset({AuditAction.LOGIN_THROTTLED, AuditAction.PERMISSION_DENIED})


async def record(
    action: AuditAction,
    *,
    practice_id: uuid.UUID | None,
    account_id: uuid.UUID | None = None,
    role: Role | None = None,
    patient_id: uuid.UUID | None = None,
) -> None:
    """Appends an event; call inside the transaction of the change it records."""
    request = current_request.get()
    if action in ONCE_PER_REQUEST and request is not None:
        if action.value in request.audited_once:
            return
        request.audited_once.add(action.value)
    await AuditEvent.create(
        practice_id=practice_id,
        account_id=account_id,
        role=role,
        action=action,
        patient_id=patient_id,
        occurred_at=clock.now(),
        client_ip=client_ip(),
        user_agent=user_agent(),
    )


async def record_for(
    viewer: Viewer, action: AuditAction, patient_id: uuid.UUID | None = None
) -> None:
    await record(
        action,
        practice_id=viewer.practice_id,
        account_id=viewer.account_id,
        role=viewer.role,
        patient_id=patient_id,
    )


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    has_next_page: bool


def encode_cursor(event: AuditEvent) -> str:
    return cursors.encode_cursor(CURSOR_KIND, event.id)


async def list_events(
    viewer: Viewer, *, patient_id: str | None, first: int, after: str | None
) -> AuditPage:
    """The practice's events, newest first, optionally about one patient."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadInput(f"`first` must be between 1 and {MAX_PAGE_SIZE}.")
    events = AuditEvent.filter(practice_id=viewer.practice_id)
    if patient_id is not None:
        try:
            events = events.filter(patient_id=uuid.UUID(patient_id))
        except ValueError:
            raise BadInput("`patientId` is not a patient id.") from None
    page = events
    if after is not None:
        anchor = await events.get_or_none(id=cursors.decode_cursor(CURSOR_KIND, after))
        if anchor is None:
            raise BadInput("`after` is not a cursor from this list.")
        page = page.filter(
            Q(occurred_at__lt=anchor.occurred_at)
            | Q(occurred_at=anchor.occurred_at, id__lt=anchor.id)
        )
    rows = await page.order_by("-occurred_at", "-id").limit(first + 1)
    return AuditPage(events=list(rows[:first]), has_next_page=len(rows) > first)
