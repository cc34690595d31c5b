"""Password recovery: emailed verification codes, admin reset links, and
setting the new password; changing a password while signed in."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models import (
    Account,
    AuditAction,
    Patient,
    Practice,
    ResetSource,
    ResetToken,
    Session,
    VerificationCode,
)
from portal import clock, metrics
from portal.db import reading
from portal.mail.outbox import enqueue
from portal.services import audit, passwords, throttling
from portal.services.access import Viewer, find_visible_patient
from portal.services.accounts import find_account
from portal.services.emails import normalize_email
from portal.services.errors import (
    AccountDisabled,
    InvalidCode,
    InvalidCredentials,
    InvalidExpiry,
    InvalidToken,
    NotFound,
    NotSignedUp,
)
from portal.services.invitations import mask_email
from portal.services.practices import find_practice, normalize_slug
from portal.services.tokens import keyed_hash, new_token
from portal.settings import Settings

CODE_PURPOSE = "verification-code"
RESET_PURPOSE = "password-reset"
CODE_DIGITS = 6
MAX_CODE_ATTEMPTS = 5
REVOKED_MESSAGE = "This patient's portal access is revoked: restore it first."
CODE_SENT_MESSAGE = (
    "If an account with that email address exists, we have sent it a verification code."
)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


@asynccontextmanager
async def at_least(duration: timedelta) -> AsyncIterator[None]:
    """Makes the enclosed work take at least `duration` of real time, so a
    known and an unknown email answer in about the same time."""
    started = time.monotonic()
    try:
        yield
    finally:
        remaining = duration.total_seconds() - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)


def _code_hash(settings: Settings, account_id: object, code: str) -> str:
    # Bound to the account: the same six digits sent to two people differ here.
    return keyed_hash(settings.secret_key, CODE_PURPOSE, f"{account_id}:{code}")


async def _find_account(practice_slug: str, email: str) -> Account | None:
    return await find_account(await find_practice(practice_slug), email)


async def request_verification_code(practice_slug: str, email: str, settings: Settings) -> str:
    """Emails a code when an account has that email; answers the same either way."""
    async with at_least(settings.recovery_response_floor):
        await _count_attempt(
            settings,
            "code-request",
            throttling.CODE_REQUESTS_PER_EMAIL,
            throttling.CODE_REQUESTS_PER_IP,
            practice_slug,
            email,
        )
        account = await _find_account(practice_slug, email)
        # A disabled account is answered alike, and sent nothing.
        if account is not None and account.disabled_at is None:
            await _issue_code(account, settings)
    return CODE_SENT_MESSAGE


async def _count_attempt(
    settings: Settings,
    kind: str,
    per_email: throttling.Window,
    per_address: throttling.Window,
    practice_slug: str,
    email: str,
) -> None:
    """Per email (known or not, so the limit reveals nothing) and per address."""
    async with reading() as reader:
        await throttling.count_in_window(
            settings,
            per_email,
            kind,
            normalize_slug(practice_slug),
            normalize_email(email),
            reader=reader,
        )
        await throttling.count_in_window(
            settings, per_address, kind, throttling.client_block(), reader=reader
        )


async def _issue_code(account: Account, settings: Settings) -> None:
    if await _write_code(account, settings):
        metrics.CODES.labels("sent").inc()


async def _write_code(account: Account, settings: Settings) -> bool:
    """Whether a code was written, with its email."""
    now = clock.now()
    async with in_transaction() as connection:
        # Serialises simultaneous requests for one account, so the hourly
        # limit below cannot be overrun by a burst (PostgreSQL; SQLite
        # serialises writers anyway).
        await Account.filter(id=account.id).select_for_update().using_db(connection).first()
        recent = await VerificationCode.filter(
            account_id=account.id, created_at__gt=now - timedelta(hours=1)
        ).count()
        if recent >= settings.codes_per_hour:
            return False  # same answer, no mail: a flood of requests cannot flood an inbox
        await VerificationCode.filter(
            account_id=account.id, used_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        await audit.record_for_account(AuditAction.CODE_REQUESTED, account)
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        issued = await VerificationCode.create(
            account_id=account.id,
            code_hash=_code_hash(settings, account.id, code),
            created_at=now,
            expires_at=now + settings.code_ttl,
        )
        practice = await Practice.get(id=account.practice_id)
        await enqueue(
            "verification_code",
            account.email,
            {
                "code": code,
                "valid_minutes": int(settings.code_ttl.total_seconds() // 60),
                "practice_name": practice.name,
            },
            discard_after=issued.expires_at,
        )
    return True


async def verify_reset_code(
    practice_slug: str, email: str, code: str, settings: Settings
) -> IssuedToken:
    """Trades the right code for a short-lived, single-use reset token."""
    async with at_least(settings.recovery_response_floor):
        await _count_attempt(
            settings,
            "code-check",
            throttling.CODE_CHECKS_PER_EMAIL,
            throttling.CODE_CHECKS_PER_IP,
            practice_slug,
            email,
        )
        account = await _find_account(practice_slug, email)
        if account is None or account.disabled_at is not None:
            raise InvalidCode()
        offered = _code_hash(settings, account.id, code.strip())
        try:
            issued = await _redeem_code(account, offered, settings)
        except InvalidCode:
            await audit.record_for_account(AuditAction.CODE_FAILED, account)
            metrics.CODES.labels("failed").inc()
            raise
        metrics.CODES.labels("verified").inc()
        return issued


async def _redeem_code(account: Account, offered: str, settings: Settings) -> IssuedToken:
    """The account's current code, if `offered` is its hash, for a reset token."""
    now = clock.now()
    current = (
        await VerificationCode.filter(
            account_id=account.id,
            used_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=now,
        )
        .order_by("-created_at")
        .first()
    )
    if current is None:
        raise InvalidCode()
    # The attempt is counted before the code is compared, in one
    # conditional UPDATE: parallel guesses cannot exceed the limit.
    still_live = {"used_at__isnull": True, "revoked_at__isnull": True, "expires_at__gt": now}
    counted = await VerificationCode.filter(
        id=current.id, attempts__lt=MAX_CODE_ATTEMPTS, **still_live
    ).update(attempts=F("attempts") + 1)
    if not counted or not hmac.compare_digest(offered, current.code_hash):
        raise InvalidCode()
    async with in_transaction():
        redeemed = await VerificationCode.filter(id=current.id, **still_live).update(used_at=now)
        if not redeemed:
            raise InvalidCode()
        await audit.record_for_account(AuditAction.CODE_VERIFIED, account)
        return await _issue_reset_token(
            account.id, ResetSource.CODE, now + settings.reset_token_ttl, None, settings
        )


async def _issue_reset_token(
    account_id: object,
    source: ResetSource,
    expires_at: datetime,
    created_by_id: object,
    settings: Settings,
) -> IssuedToken:
    """A new reset token; it replaces earlier unused ones from the same source."""
    now = clock.now()
    await ResetToken.filter(
        account_id=account_id, source=source, used_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    token = new_token()
    await ResetToken.create(
        account_id=account_id,
        source=source,
        token_hash=keyed_hash(settings.secret_key, RESET_PURPOSE, token),
        created_by_id=created_by_id,
        created_at=now,
        expires_at=expires_at,
    )
    return IssuedToken(token=token, expires_at=expires_at)


def reset_link(settings: Settings, practice: Practice, token: str) -> str:
    return f"{settings.base_url}/{practice.slug}/reset-password?token={token}"


@dataclass(frozen=True)
class GeneratedLink:
    url: str
    expires_at: datetime


async def generate_reset_link(
    viewer: Viewer, patient_id: str, expires_at: datetime, settings: Settings
) -> GeneratedLink:
    """A reset link for a signed-up patient, valid until the chosen moment."""
    async with in_transaction():
        patient = await find_visible_patient(viewer, patient_id, for_update=True)
        if patient is None:
            raise NotFound()
        account = await Account.get_or_none(patient_id=patient.id)
        if account is None:
            raise NotSignedUp("This patient has no portal account yet: send an invitation.")
        if account.disabled_at is not None:
            raise AccountDisabled(REVOKED_MESSAGE)
        now = clock.now()
        latest = now + timedelta(days=settings.reset_link_max_days)
        if expires_at.tzinfo is None:
            raise InvalidExpiry("Give the expiry with its UTC offset.", field="expires_at")
        if expires_at <= now:
            raise InvalidExpiry("The expiry must be in the future.", field="expires_at")
        if expires_at > latest:
            raise InvalidExpiry(
                f"The expiry can be at most {settings.reset_link_max_days} days ahead.",
                field="expires_at",
            )
        issued = await _issue_reset_token(
            account.id, ResetSource.LINK, expires_at, viewer.account_id, settings
        )
        await audit.record_for(viewer, AuditAction.RESET_LINK_GENERATED, patient.id)
        practice = await Practice.get(id=patient.practice_id)
    return GeneratedLink(url=reset_link(settings, practice, issued.token), expires_at=expires_at)


@dataclass(frozen=True)
class ResetLinkPreview:
    email: str
    expires_at: datetime
    usable: bool


async def preview_reset_link(token: str, settings: Settings) -> ResetLinkPreview | None:
    """What a reset link is for, so its page can say at once when it cannot be
    used; None for a token that was never issued. Changes nothing."""
    if not token:
        return None
    found = await ResetToken.get_or_none(
        token_hash=keyed_hash(settings.secret_key, RESET_PURPOSE, token)
    ).select_related("account")
    if found is None:
        return None
    usable = (
        found.used_at is None
        and found.revoked_at is None
        and found.expires_at > clock.now()
        and found.account.disabled_at is None
    )
    # Whoever holds a usable link may set the password anyway; an old one
    # found later (a forwarded message, a shared screen) reveals little.
    email = found.account.email if usable else mask_email(found.account.email)
    return ResetLinkPreview(email=email, expires_at=found.expires_at, usable=usable)


async def _checked_new_password(account: Account, password: str, password_confirmation: str) -> str:
    """The argon2 hash of an acceptable new password for this account."""
    practice = await Practice.get(id=account.practice_id)
    patient = await Patient.get(id=account.patient_id) if account.patient_id else None
    return await passwords.new_password_hash(
        password, password_confirmation, passwords.own_details(account.email, practice, patient)
    )


async def _after_password_change(
    account: Account, settings: Settings, keep_session_id: object = None
) -> None:
    """Inside the change's transaction: sessions end (but the caller's own when
    changing while signed in), every outstanding code and reset token dies,
    and the account's owner is told."""
    now = clock.now()
    sessions = Session.filter(account_id=account.id, ended_at__isnull=True)
    if keep_session_id is not None:
        sessions = sessions.exclude(id=keep_session_id)
    await sessions.update(ended_at=now)
    await _revoke_outstanding(account.id, ResetSource.CODE, ResetSource.LINK)
    if settings.password_changed_notice:
        practice = await Practice.get(id=account.practice_id)
        await enqueue("password_changed", account.email, {"practice_name": practice.name})


async def _revoke_outstanding(account_id: uuid.UUID, *sources: ResetSource) -> None:
    """Kills every live verification code of the account and its reset tokens
    from the given sources (inside the caller's transaction)."""
    now = clock.now()
    live = {"account_id": account_id, "used_at__isnull": True, "revoked_at__isnull": True}
    await VerificationCode.filter(**live).update(revoked_at=now)
    await ResetToken.filter(source__in=list(sources), **live).update(revoked_at=now)


async def revoke_recovery_by_email(account_id: uuid.UUID) -> None:
    """After the account's email changed: what was emailed to the old address
    dies; an admin's link, handed over in person, stays."""
    await _revoke_outstanding(account_id, ResetSource.CODE)


async def reset_password(
    token: str, password: str, password_confirmation: str, settings: Settings
) -> Account:
    """Sets a new password with a reset token from either path; does not sign in."""
    found = (
        await ResetToken.get_or_none(
            token_hash=keyed_hash(settings.secret_key, RESET_PURPOSE, token)
        )
        if token
        else None
    )
    now = clock.now()
    if (
        found is None
        or found.used_at is not None
        or found.revoked_at is not None
        or found.expires_at <= now
    ):
        raise InvalidToken()
    account = await Account.get(id=found.account_id)
    password_hash = await _checked_new_password(account, password, password_confirmation)
    async with in_transaction():
        now = clock.now()
        redeemed = await ResetToken.filter(
            id=found.id, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        # Disabling kills an account's tokens; one that raced it is refused
        # here, inside the transaction that would use it.
        active = await Account.filter(id=account.id, disabled_at__isnull=True).exists()
        if not redeemed or not active:
            raise InvalidToken()
        await Account.filter(id=account.id).update(
            password_hash=password_hash, password_changed_at=now
        )
        await _after_password_change(account, settings)
        await audit.record_for_account(
            AuditAction.PASSWORD_RESET_BY_CODE
            if found.source is ResetSource.CODE
            else AuditAction.PASSWORD_RESET_BY_LINK,
            account,
        )
    return account


async def change_password(
    viewer: Viewer,
    current_password: str,
    password: str,
    password_confirmation: str,
    settings: Settings,
) -> Account:
    """Changes the signed-in caller's password; their other sessions end."""
    account = await Account.get(id=viewer.account_id).select_related("practice")
    # Guesses of the current password share the sign-in lockout: a session
    # left open must not become an unlimited password oracle.
    streak = throttling.login_key(settings, account.practice.slug, account.email)
    async with reading() as reader:
        attempt = await throttling.reserve_attempt(streak, reader)
    right = await passwords.verify_password(account.password_hash, current_password)
    async with reading() as reader:
        if not right:
            await throttling.record_failure(attempt, reader)
            raise InvalidCredentials("The current password is wrong.")
        await throttling.clear(streak, reader)
    password_hash = await _checked_new_password(account, password, password_confirmation)
    async with in_transaction():
        now = clock.now()
        await Account.filter(id=account.id).update(
            password_hash=password_hash, password_changed_at=now
        )
        await _after_password_change(account, settings, keep_session_id=viewer.session_id)
        await audit.record_for_account(AuditAction.PASSWORD_CHANGED, account)
    return account
