"""Where each patient stands with the client portal."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tortoise.transactions import in_transaction

from models import Account, AuditAction, Patient, ResetToken, Session, VerificationCode
from portal import clock
from portal.db import AS_DATETIME, AS_UUID, Reader, Row, Sql, reading
from portal.services import audit
from portal.services.access import Viewer, find_visible_patient
from portal.services.errors import NotFound, NotSignedUp
from portal.services.invitations import revoke_open_invitations, usable


class PortalStatus(StrEnum):
    YET_TO_SIGN_UP = "YET_TO_SIGN_UP"
    INITIATED = "INITIATED"
    SIGNED_UP = "SIGNED_UP"
    REVOKED = "REVOKED"


@dataclass(frozen=True)
class PortalState:
    patient_id: uuid.UUID
    status: PortalStatus
    invited_at: datetime | None = None
    invitation_expires_at: datetime | None = None
    signed_up_at: datetime | None = None
    revoked_at: datetime | None = None


# Per patient: its account's creation, and its latest invitation.
PORTAL_STATES = Sql(
    "SELECT p.id AS patient_id, a.created_at AS signed_up_at, a.disabled_at,"
    " i.created_at AS invited_at, i.expires_at, i.used_at, i.revoked_at"
    " FROM unnest(string_to_array($1, ',')::uuid[]) AS p(id)"
    " LEFT JOIN account a ON a.patient_id = p.id"
    " LEFT JOIN LATERAL (SELECT created_at, expires_at, used_at, revoked_at FROM invitation"
    "  WHERE patient_id = p.id ORDER BY created_at DESC LIMIT 1) i ON true",
    sqlite="SELECT p.value AS patient_id, a.created_at AS signed_up_at, a.disabled_at,"
    " i.created_at AS invited_at, i.expires_at, i.used_at, i.revoked_at"
    " FROM json_each($1) AS p"
    " LEFT JOIN account a ON a.patient_id = p.value"
    " LEFT JOIN invitation i ON i.id = (SELECT id FROM invitation WHERE patient_id = p.value"
    "  ORDER BY created_at DESC LIMIT 1)",
    types={
        "patient_id": AS_UUID,
        "signed_up_at": AS_DATETIME,
        "disabled_at": AS_DATETIME,
        "invited_at": AS_DATETIME,
        "expires_at": AS_DATETIME,
        "used_at": AS_DATETIME,
        "revoked_at": AS_DATETIME,
    },
)


async def portal_states(
    patient_ids: Sequence[uuid.UUID], reader: Reader | None = None
) -> list[PortalState]:
    """The portal state of each patient, in order, in one statement whatever the count."""
    if reader is None:
        async with reading() as reader:
            return await portal_states(patient_ids, reader)
    ids = [str(pid) for pid in patient_ids]
    # One text, not an array of texts: asyncpg inspects every item of an array.
    argument = ",".join(ids) if reader.dialect == "postgres" else json.dumps(ids)
    rows = {str(row["patient_id"]): row for row in await reader.fetch(PORTAL_STATES, argument)}
    now = clock.now()
    return [_state(patient_id, rows.get(str(patient_id)), now) for patient_id in patient_ids]


def _state(patient_id: uuid.UUID, row: Row | None, now: datetime) -> PortalState:
    signed_up_at = row["signed_up_at"] if row else None
    invited_at = row["invited_at"] if row else None
    expires_at = row["expires_at"] if row else None
    revoked_at = row["disabled_at"] if row else None
    if revoked_at is not None:
        status = PortalStatus.REVOKED
    elif signed_up_at is not None:
        status = PortalStatus.SIGNED_UP
    elif (
        row is not None
        and expires_at is not None
        and usable(row["used_at"], row["revoked_at"], expires_at, now)
    ):
        status = PortalStatus.INITIATED
    else:
        status = PortalStatus.YET_TO_SIGN_UP
    return PortalState(
        patient_id=patient_id,
        status=status,
        invited_at=invited_at,
        invitation_expires_at=expires_at,
        signed_up_at=signed_up_at,
        revoked_at=revoked_at,
    )


# --- revoking and restoring (ADMIN of the patient's practice) ---------------


async def revoke_portal_access(viewer: Viewer, patient_id: str) -> Patient:
    """Takes the patient's portal access away, in one transaction: a pending
    invitation is cancelled; an account is disabled, its sessions ended and
    its codes, reset tokens and links killed. Again: nothing changes. No
    email is sent (a custody or safety situation may be why)."""
    async with in_transaction():
        patient = await find_visible_patient(viewer, patient_id, for_update=True)
        if patient is None:
            raise NotFound()
        now = clock.now()
        changed = await revoke_open_invitations(patient) > 0
        account = await Account.select_for_update().get_or_none(patient_id=patient.id)
        if account is not None:
            changed |= await disable(account.id, now)
        if changed:
            await audit.record_for(viewer, AuditAction.PORTAL_ACCESS_REVOKED, patient.id)
    return patient


async def restore_portal_access(viewer: Viewer, patient_id: str) -> Patient:
    """Lets a revoked patient's account sign in again with its password (or
    a reset link an ADMIN makes); NOT_SIGNED_UP without an account."""
    async with in_transaction():
        patient = await find_visible_patient(viewer, patient_id, for_update=True)
        if patient is None:
            raise NotFound()
        account = await Account.select_for_update().get_or_none(patient_id=patient.id)
        if account is None:
            raise NotSignedUp("This patient has no portal account: send an invitation.")
        if await enable(account.id):
            await audit.record_for(viewer, AuditAction.PORTAL_ACCESS_RESTORED, patient.id)
    return patient


async def disable(account_id: uuid.UUID, now: datetime) -> bool:
    """Disables the account and ends everything that lets it in (call inside
    a transaction); True when anything changed."""
    disabled = await Account.filter(id=account_id, disabled_at__isnull=True).update(disabled_at=now)
    ended = await Session.filter(account_id=account_id, ended_at__isnull=True).update(ended_at=now)
    open_codes = VerificationCode.filter(
        account_id=account_id, used_at__isnull=True, revoked_at__isnull=True
    )
    killed = await open_codes.update(revoked_at=now)
    open_tokens = ResetToken.filter(
        account_id=account_id, used_at__isnull=True, revoked_at__isnull=True
    )
    killed += await open_tokens.update(revoked_at=now)
    return disabled + ended + killed > 0


async def enable(account_id: uuid.UUID) -> bool:
    """True when the account was disabled."""
    return (
        await Account.filter(id=account_id, disabled_at__isnull=False).update(disabled_at=None) > 0
    )
