"""Staff accounts managed by a practice's ADMINs: invited by email, listed,
disabled and enabled. A practice always keeps one active ADMIN."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from models import Account, AuditAction, Invitation, Patient, Practice, Role
from portal import clock, metrics
from portal.db import AS_DATETIME, AS_UUID, Reader, Row, Sql, reading
from portal.mail.outbox import enqueue
from portal.services import audit, cursors
from portal.services.access import Viewer, parse_id
from portal.services.accounts import find_account
from portal.services.emails import valid_email
from portal.services.errors import BadInput, EmailTaken, NotAllowed, NotFound, ValidationFailed
from portal.services.invitations import INVITATION_PURPOSE, invitation_link
from portal.services.portal_access import disable, enable
from portal.services.practices import find_practice
from portal.services.tokens import keyed_hash, new_token
from portal.settings import Settings

STAFF_ROLES = (Role.ADMIN, Role.CLINICIAN)
MAX_PAGE_SIZE = 100
CURSOR_KIND = "staff"


@dataclass(frozen=True)
class StaffInvitation:
    email: str
    role: Role
    expires_at: datetime


async def invite_staff(
    viewer: Viewer, email: str, role: Role, settings: Settings
) -> StaffInvitation:
    """Emails a new member of staff a single-use link to create their account
    with `role`; a new invitation to the same address replaces the earlier."""
    if role not in STAFF_ROLES:
        raise ValidationFailed(
            "Invite staff as ADMIN or CLINICIAN; patients are invited from their profile.",
            field="role",
        )
    address = valid_email(email)
    if address is None:
        raise ValidationFailed("Enter a valid email address.", field="email")
    async with in_transaction():
        practice = await Practice.get(id=viewer.practice_id)
        taken = await Account.exists(practice_id=practice.id, email=address) or (
            await Patient.exists(practice_id=practice.id, email=address)
        )
        if taken:
            raise EmailTaken("Someone of this practice already uses that email address.")
        now = clock.now()
        await Invitation.filter(
            practice_id=practice.id,
            patient_id__isnull=True,
            sent_to=address,
            used_at__isnull=True,
            revoked_at__isnull=True,
        ).update(revoked_at=now)
        token = new_token()
        invitation = await Invitation.create(
            practice_id=practice.id,
            patient=None,
            role=role,
            token_hash=keyed_hash(settings.secret_key, INVITATION_PURPOSE, token),
            sent_to=address,
            sent_by_id=viewer.account_id,
            created_at=now,
            expires_at=now + settings.invitation_ttl,
        )
        await enqueue(
            "staff_invitation",
            address,
            {
                "practice_name": practice.name,
                "link": invitation_link(settings, practice, token),
                "expires_at": invitation.expires_at.strftime("%d %B %Y, %H:%M UTC"),
            },
            discard_after=invitation.expires_at,
        )
        await audit.record_for(viewer, AuditAction.STAFF_INVITED)
    metrics.INVITATIONS_SENT.labels("staff").inc()
    return StaffInvitation(email=address, role=role, expires_at=invitation.expires_at)


# --- the practice's staff, a page at a time ------------------------------------

STAFF_PAGE = Sql(
    "SELECT id, email, role, practice_id, patient_id, disabled_at IS NULL AS active,"
    " (SELECT max(created_at) FROM session WHERE session.account_id = account.id)"
    " AS last_sign_in_at, mfa_enabled_at IS NOT NULL AS mfa_enabled,"
    " (SELECT count(*) FROM account WHERE practice_id = $1 AND role IN ('ADMIN', 'CLINICIAN'))"
    " AS total_count"
    " FROM account WHERE practice_id = $1 AND role IN ('ADMIN', 'CLINICIAN') AND email > $2"
    " ORDER BY email LIMIT $3",
    types={
        "id": AS_UUID,
        "practice_id": AS_UUID,
        "patient_id": AS_UUID,
        "last_sign_in_at": AS_DATETIME,
    },
)
ANCHOR = Sql(
    "SELECT email FROM account WHERE id = $1 AND practice_id = $2"
    " AND role IN ('ADMIN', 'CLINICIAN')"
)


PENDING_INVITATIONS = Sql(
    "SELECT sent_to AS email, role, created_at AS invited_at, expires_at FROM invitation"
    " WHERE practice_id = $1 AND patient_id IS NULL AND used_at IS NULL AND revoked_at IS NULL"
    " ORDER BY expires_at DESC, sent_to LIMIT $2",
    types={"invited_at": AS_DATETIME, "expires_at": AS_DATETIME},
)
MAX_PENDING_INVITATIONS = 100


@dataclass(frozen=True)
class StaffPage:
    accounts: list[Row]
    has_next_page: bool
    total_count: int

    @property
    def end_cursor(self) -> str | None:
        return encode_cursor(self.accounts[-1]["id"]) if self.accounts else None


def encode_cursor(account_id: uuid.UUID) -> str:
    return cursors.encode_cursor(CURSOR_KIND, account_id)


async def list_staff(
    viewer: Viewer, first: int, after: str | None, reader: Reader | None = None
) -> StaffPage:
    """The practice's ADMIN and CLINICIAN accounts by email; keyset pages."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadInput(f"`first` must be between 1 and {MAX_PAGE_SIZE}.")
    if reader is None:
        async with reading() as reader:
            return await list_staff(viewer, first, after, reader)
    after_email = ""
    if after is not None:
        anchor = cursors.decode_cursor(CURSOR_KIND, after)
        found = await reader.fetch(ANCHOR, anchor, viewer.practice_id)
        if not found:
            raise BadInput("`after` is not a cursor from this list.")
        after_email = found[0]["email"]
    rows = list(await reader.fetch(STAFF_PAGE, viewer.practice_id, after_email, first + 1))
    total = int(rows[0]["total_count"]) if rows else 0
    if not rows and after is not None:
        total = await Account.filter(practice_id=viewer.practice_id, role__in=STAFF_ROLES).count()
    return StaffPage(accounts=rows[:first], has_next_page=len(rows) > first, total_count=total)


async def list_pending_invitations(viewer: Viewer, reader: Reader | None = None) -> list[Row]:
    """The practice's staff invitations that can still be used (one per
    address: a new one replaces the earlier), the latest to expire first; at
    most 100."""
    if reader is None:
        async with reading() as reader:
            return await list_pending_invitations(viewer, reader)
    rows = await reader.fetch(PENDING_INVITATIONS, viewer.practice_id, MAX_PENDING_INVITATIONS)
    now = clock.now()
    # The latest to expire come first, so the expired ones are the tail.
    return [row for row in rows if row["expires_at"] > now]


# --- disabling and enabling ----------------------------------------------------


async def disable_staff(
    practice_id: uuid.UUID, account_id: uuid.UUID | None, actor: Viewer | None
) -> Account:
    """Disables a staff account of the practice and ends its sessions, codes
    and links. Refused for the actor's own account, and for the last active
    ADMIN: every active ADMIN of the practice is locked first, so two ADMINs
    disabling each other at once leave one. `actor` None: the operator's CLI."""
    async with in_transaction():
        # Every active ADMIN first, always in one order (so two of these never
        # wait on each other crosswise), then the account itself. A row a
        # concurrent disabling changed is read again once it is free.
        active_admins = [
            admin.id
            for admin in await Account.select_for_update()
            .filter(practice_id=practice_id, role=Role.ADMIN, disabled_at__isnull=True)
            .order_by("id")
        ]
        account = await _staff_account(practice_id, account_id)
        if actor is not None and account.id == actor.account_id:
            raise NotAllowed("You cannot disable your own account.")
        if account.id in active_admins and len(active_admins) <= 1:
            raise NotAllowed("The practice must keep at least one active ADMIN.")
        if await disable(account.id, clock.now()) and actor is not None:
            await audit.record_for(actor, AuditAction.ACCOUNT_DISABLED)
        return await Account.get(id=account.id)


async def enable_staff(
    practice_id: uuid.UUID, account_id: uuid.UUID | None, actor: Viewer | None
) -> Account:
    async with in_transaction():
        account = await _staff_account(practice_id, account_id)
        if await enable(account.id) and actor is not None:
            await audit.record_for(actor, AuditAction.ACCOUNT_ENABLED)
        return await Account.get(id=account.id)


async def _staff_account(practice_id: uuid.UUID, account_id: uuid.UUID | None) -> Account:
    # A patient's account is managed through portal access, not here.
    account = (
        await Account.select_for_update()
        .filter(id=account_id, practice_id=practice_id, role__in=STAFF_ROLES)
        .first()
        if account_id is not None
        else None
    )
    if account is None:
        raise NotFound("No such staff account in your practice.")
    return account


async def disable_account(viewer: Viewer, account_id: str) -> Account:
    return await disable_staff(viewer.practice_id, parse_id(account_id), viewer)


async def enable_account(viewer: Viewer, account_id: str) -> Account:
    return await enable_staff(viewer.practice_id, parse_id(account_id), viewer)


async def set_staff_enabled(practice_slug: str, email: str, enabled: bool) -> Account:
    """The operator's `disable-user`/`enable-user`: by practice and email."""
    practice = await find_practice(practice_slug)
    account = await find_account(practice, email) if practice is not None else None
    if practice is None or account is None or account.role not in STAFF_ROLES:
        raise NotFound("No staff account with that email in that practice.")
    if enabled:
        return await enable_staff(practice.id, account.id, None)
    return await disable_staff(practice.id, account.id, None)
