"""Portal invitations: sending the sign-up link, previewing it, creating the account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models import Account, AuditAction, Invitation, Patient, Practice, Role
from portal import clock, metrics
from portal.mail.outbox import enqueue
from portal.services import audit, passwords
from portal.services.access import Viewer, find_visible_patient
from portal.services.errors import (
    AccountDisabled,
    AlreadySignedUp,
    EmailTaken,
    InvalidToken,
    MissingEmail,
    NotFound,
)
from portal.services.tokens import keyed_hash, new_token
from portal.settings import Settings

INVITATION_PURPOSE = "invitation"


@dataclass(frozen=True)
class SentInvitation:
    patient: Patient
    sent_to: str
    expires_at: datetime


@dataclass(frozen=True)
class InvitationPreview:
    practice_name: str
    email: str
    expires_at: datetime
    usable: bool


def invitation_link(settings: Settings, practice: Practice, token: str) -> str:
    return f"{settings.base_url}/{practice.slug}/sign-up?token={token}"


def is_usable(invitation: Invitation, now: datetime) -> bool:
    return usable(invitation.used_at, invitation.revoked_at, invitation.expires_at, now)


def usable(
    used_at: datetime | None, revoked_at: datetime | None, expires_at: datetime, now: datetime
) -> bool:
    """Neither used nor revoked nor expired."""
    return used_at is None and revoked_at is None and expires_at > now


async def email_taken_by_another_account(patient: Patient, email: str) -> bool:
    # Staff accounts have no patient: NULL must count as "another account".
    others = Q(patient_id__isnull=True) | Q(patient_id__not=patient.id)
    return await Account.filter(others, practice_id=patient.practice_id, email=email).exists()


async def revoke_open_invitations(patient: Patient) -> int:
    """Makes every invitation of the patient unusable (call inside a
    transaction); returns how many could still have been used."""
    return await Invitation.filter(
        patient_id=patient.id,
        used_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=clock.now(),
    ).update(revoked_at=clock.now())


async def send_invitation(viewer: Viewer, patient_id: str, settings: Settings) -> SentInvitation:
    """Emails the patient a fresh sign-up link; earlier links stop working."""
    async with in_transaction():
        patient = await find_visible_patient(viewer, patient_id, for_update=True)
        if patient is None:
            raise NotFound()
        account = await Account.get_or_none(patient_id=patient.id)
        if account is not None and account.disabled_at is not None:
            raise AccountDisabled("This patient's portal access is revoked: restore it first.")
        if account is not None:
            raise AlreadySignedUp("This patient already has a portal account.")
        if not patient.email:
            raise MissingEmail("Add an email address to the patient's profile first.")
        if await email_taken_by_another_account(patient, patient.email):
            raise EmailTaken("Another account of this practice already uses that email address.")
        practice = await Practice.get(id=patient.practice_id)
        await revoke_open_invitations(patient)
        now = clock.now()
        token = new_token()
        invitation = await Invitation.create(
            practice_id=patient.practice_id,
            patient=patient,
            token_hash=keyed_hash(settings.secret_key, INVITATION_PURPOSE, token),
            sent_to=patient.email,
            sent_by_id=viewer.account_id,
            created_at=now,
            expires_at=now + settings.invitation_ttl,
        )
        await enqueue(
            "invitation",
            patient.email,
            {
                "first_name": patient.first_name,
                "practice_name": practice.name,
                "link": invitation_link(settings, practice, token),
                "expires_at": invitation.expires_at.strftime("%d %B %Y, %H:%M UTC"),
            },
            discard_after=invitation.expires_at,
        )
        await audit.record_for(viewer, AuditAction.INVITATION_SENT, patient.id)
    metrics.INVITATIONS_SENT.labels("patient").inc()
    return SentInvitation(patient=patient, sent_to=patient.email, expires_at=invitation.expires_at)


async def _find(token: str, settings: Settings) -> Invitation | None:
    if not token:
        return None
    # Looked up by its keyed hash: the database never sees the token itself.
    return await Invitation.get_or_none(
        token_hash=keyed_hash(settings.secret_key, INVITATION_PURPOSE, token)
    ).select_related("practice")


async def preview_invitation(token: str, settings: Settings) -> InvitationPreview | None:
    invitation = await _find(token, settings)
    if invitation is None:
        return None
    usable = is_usable(invitation, clock.now())
    return InvitationPreview(
        practice_name=invitation.practice.name,
        # An old link found later (a forwarded mail, a shared screen) should
        # not keep revealing the whole address.
        email=invitation.sent_to if usable else mask_email(invitation.sent_to),
        expires_at=invitation.expires_at,
        usable=usable,
    )


def mask_email(address: str) -> str:
    """`g•••@mail.example`: enough to recognise one's own address."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}"


async def create_account(
    token: str, password: str, password_confirmation: str, settings: Settings
) -> Account:
    """Creates the account an invitation is for (a patient's portal account,
    or a new member of staff's); does not sign in."""
    invitation = await _find(token, settings)
    if invitation is None or not is_usable(invitation, clock.now()):
        raise InvalidToken()
    patient = await Patient.get(id=invitation.patient_id) if invitation.patient_id else None
    password_hash = await passwords.new_password_hash(
        password,
        password_confirmation,
        passwords.own_details(
            patient.email if patient else invitation.sent_to, invitation.practice, patient
        ),
    )
    try:
        async with in_transaction():
            now = clock.now()
            # The redemption itself: of two simultaneous requests, one matches.
            redeemed = await Invitation.filter(
                id=invitation.id,
                used_at__isnull=True,
                revoked_at__isnull=True,
                expires_at__gt=now,
            ).update(used_at=now)
            if not redeemed:
                raise InvalidToken()
            account = await Account.create(
                practice_id=invitation.practice_id,
                email=invitation.sent_to,
                role=invitation.role if patient is None else Role.PATIENT,
                patient_id=patient.id if patient else None,
                password_hash=password_hash,
                password_changed_at=now,
            )
            await audit.record_for_account(AuditAction.ACCOUNT_CREATED, account)
    except IntegrityError:
        # The patient signed up meanwhile, or the address was taken: this
        # invitation can no longer be used either way.
        raise InvalidToken() from None
    metrics.INVITATIONS_REDEEMED.inc()
    return account
