"""The audit trail: append-only events of who did what, to which patient,
when, and from where. Never passwords, tokens, codes or health details."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from models import Account, AuditAction, Role
from portal import clock
from portal.db import AS_DATETIME, AS_UUID, Reader, Row, Sql, Write, reading
from portal.request_context import client_ip, current_request, user_agent
from portal.services import audit_chain, cursors
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
    reader: Reader | None = None,
) -> None:
    """Appends an event; call inside the transaction of the change it records
    (or give the `reader` the change was made with)."""
    request = current_request.get()
    if action in ONCE_PER_REQUEST and request is not None:
        if action.value not in request.audited_once:
            request.audited_once[action.value] = asyncio.ensure_future(
                _write(action, practice_id, account_id, role, patient_id)
            )
        await asyncio.shield(request.audited_once[action.value])
        return
    await _write(action, practice_id, account_id, role, patient_id, reader)


async def _write(
    action: AuditAction,
    practice_id: uuid.UUID | None,
    account_id: uuid.UUID | None,
    role: Role | None,
    patient_id: uuid.UUID | None,
    reader: Reader | None = None,
) -> None:
    # One statement, on the caller's transaction when there is one (reading()
    # joins it): every request that is refused or signs in writes one.
    if reader is None:
        async with reading() as reader:
            await _write(action, practice_id, account_id, role, patient_id, reader)
        return
    sql, args = _event(action, practice_id, account_id, role, patient_id)
    await reader.execute(sql, *args)


def _event(
    action: AuditAction,
    practice_id: uuid.UUID | None,
    account_id: uuid.UUID | None,
    role: Role | None,
    patient_id: uuid.UUID | None,
) -> Write:
    row = {
        "id": uuid.uuid4(),
        "practice_id": practice_id,
        "account_id": account_id,
        "role": role.value if role is not None else None,
        "action": action.value,
        "patient_id": patient_id,
        "occurred_at": clock.now(),
        "client_ip": client_ip(),
        "user_agent": user_agent(),
    }
    # The row's MAC goes in with it: no read, no lock, no statement more. Its
    # place in the practice's chain is sealed shortly after (audit_chain).
    return (INSERT_EVENT, (*row.values(), audit_chain.row_mac(row)))


INSERT_EVENT = Sql(
    "INSERT INTO audit_event (id, practice_id, account_id, role, action, patient_id,"
    " occurred_at, client_ip, user_agent, row_mac)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)


def event_for_account(action: AuditAction, account: Account) -> Write:
    """The write of `record_for_account`, for the caller to run with others
    (not for the actions written once per request)."""
    assert action not in ONCE_PER_REQUEST
    return _event(action, account.practice_id, account.id, account.role, account.patient_id)


async def record_for_account(
    action: AuditAction, account: Account, reader: Reader | None = None
) -> None:
    """An event concerning `account`, whoever is signed in (a sign-in, a reset)."""
    await record(
        action,
        practice_id=account.practice_id,
        account_id=account.id,
        role=account.role,
        patient_id=account.patient_id,
        reader=reader,
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


EVENT_COLUMNS = (
    "id",
    "action",
    "occurred_at",
    "account_id",
    "role",
    "patient_id",
    "client_ip",
    "user_agent",
)
# Who acted and which patient, in words a reader of the trail knows them by
# (the trail itself keeps ids only; these read the current email and name).
NAMING_COLUMNS = (
    "(SELECT account.email FROM account WHERE account.id = audit_event.account_id) AS actor_email",
    "(SELECT patient.first_name || ' ' || patient.last_name FROM patient"
    " WHERE patient.id = audit_event.patient_id) AS patient_name",
)
EVENT_TYPES = {
    "id": AS_UUID,
    "occurred_at": AS_DATETIME,
    "account_id": AS_UUID,
    "patient_id": AS_UUID,
}


@dataclass(frozen=True)
class AuditPage:
    events: list[Row]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return encode_cursor(self.events[-1]["id"]) if self.events else None


def encode_cursor(event_id: object) -> str:
    return cursors.encode_cursor(CURSOR_KIND, event_id)  # type: ignore[arg-type]


@lru_cache(maxsize=32)
def _statement(text: str) -> Sql:
    return Sql(text, types=EVENT_TYPES)


async def list_events(
    viewer: Viewer,
    *,
    patient_id: str | None,
    first: int,
    after: str | None,
    reader: Reader | None = None,
) -> AuditPage:
    """The practice's events, newest first, optionally about one patient."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadInput(f"`first` must be between 1 and {MAX_PAGE_SIZE}.")
    args: list[Any] = [viewer.practice_id]
    where = "practice_id = $1"
    if patient_id is not None:
        try:
            args.append(uuid.UUID(patient_id))
        except ValueError:
            raise BadInput("`patientId` is not a patient id.") from None
        where += " AND patient_id = $2"
    anchor = cursors.decode_cursor(CURSOR_KIND, after) if after is not None else None
    if reader is None:
        async with reading() as reader:
            return await _page(reader, where, args, first, anchor)
    return await _page(reader, where, args, first, anchor)


async def _page(
    reader: Reader, where: str, args: list[Any], first: int, anchor: uuid.UUID | None
) -> AuditPage:
    page_args = list(args)
    keyset = ""
    if anchor is not None:
        page_args.append(anchor)
        keyset = (
            " AND (occurred_at, id) < (SELECT occurred_at, id FROM audit_event"
            f" WHERE {where} AND id = ${len(page_args)})"
        )
    page_args.append(first + 1)
    rows = await reader.fetch(
        _statement(
            f"SELECT {', '.join(EVENT_COLUMNS + NAMING_COLUMNS)} FROM audit_event"
            f" WHERE {where}{keyset}"
            f" ORDER BY occurred_at DESC, id DESC LIMIT ${len(page_args)}"
        ),
        *page_args,
    )
    if not rows and anchor is not None:
        known = await reader.fetch(
            _statement(f"SELECT id FROM audit_event WHERE {where} AND id = ${len(args) + 1}"),
            *args,
            anchor,
        )
        if not known:
            raise BadInput("`after` is not a cursor from this list.")
    return AuditPage(events=list(rows[:first]), has_next_page=len(rows) > first)
