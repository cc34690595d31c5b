"""Two-step verification with an authenticator app: TOTP codes (RFC 6238,
by pyotp) and single-use recovery codes.

The TOTP secret cannot be hashed, as codes are computed from it: it is sealed
with AES-GCM (the `cryptography` library) under a key derived from
PORTAL_SECRET_KEY with HKDF, bound to its account, and never logged or shown
again after enrolment. Recovery codes, challenges: keyed hashes only.
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import pyotp
import segno
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from models import Account, AuditAction, MfaChallenge, MfaRecoveryCode, Practice, Role, Session
from portal import clock
from portal.db import reading
from portal.mail.outbox import enqueue
from portal.services import audit, passwords, throttling
from portal.services.access import Viewer, parse_id
from portal.services.emails import normalize_email
from portal.services.errors import (
    InvalidCode,
    InvalidCredentials,
    InvalidToken,
    MfaAlreadyEnabled,
    NotAllowed,
    NotFound,
)
from portal.services.practices import find_practice
from portal.services.tokens import keyed_hash, new_token
from portal.settings import Settings

STEP_SECONDS = 30
# A code of the step before or after the current one is accepted too (clocks drift).
STEPS_AROUND = 1
CHALLENGE_TTL = timedelta(minutes=5)
MAX_CHALLENGE_FAILURES = 5
RECOVERY_CODE_COUNT = 10
CHALLENGE_PURPOSE = "mfa-challenge"
RECOVERY_PURPOSE = "mfa-recovery"
NONCE_BYTES = 12


@lru_cache(maxsize=4)
def _aead(secret_key: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"portal:mfa-secret")
    return AESGCM(key.derive(secret_key.encode()))


def seal(settings: Settings, account_id: uuid.UUID, secret: str) -> str:
    """The secret encrypted for this account (the account's id is bound in as
    associated data: a sealed secret copied to another account does not open)."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = _aead(settings.secret_key).encrypt(nonce, secret.encode(), account_id.bytes)
    return base64.b64encode(nonce + sealed).decode()


def unseal(settings: Settings, account_id: uuid.UUID, sealed: str) -> str:
    raw = base64.b64decode(sealed)
    nonce, body = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
    return _aead(settings.secret_key).decrypt(nonce, body, account_id.bytes).decode()


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is, among the current one and those
    next to it; compared in constant time."""
    offered = code.strip().replace(" ", "")
    if len(offered) != 6 or not offered.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int(now.timestamp()) // STEP_SECONDS
    found = None
    for step in range(current - STEPS_AROUND, current + STEPS_AROUND + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), offered):
            found = step
    return found


def _recovery_hash(settings: Settings, account_id: uuid.UUID, code: str) -> str:
    normalized = code.strip().lower().replace("-", "").replace(" ", "")
    return keyed_hash(settings.secret_key, RECOVERY_PURPOSE, f"{account_id}:{normalized}")


def _new_recovery_code() -> str:
    raw = secrets.token_hex(5)  # 40 bits each, single use, behind the password
    return f"{raw[:5]}-{raw[5:]}"


# --- enrolment --------------------------------------------------------------


@dataclass(frozen=True)
class Enrollment:
    secret: str
    otpauth_uri: str

    @property
    def qr_code(self) -> str:
        """The URI as a QR code: an SVG image in a `data:` URI, drawn here so
        that no third party ever sees the secret."""
        return str(segno.make(self.otpauth_uri, error="m").svg_data_uri(scale=4, border=4))


async def begin_enrollment(viewer: Viewer, settings: Settings) -> Enrollment:
    """A new 160-bit secret, pending until a code from it confirms it; a new
    call replaces the pending one."""
    account = await Account.get(id=viewer.account_id)
    practice = await Practice.get(id=account.practice_id)
    secret = pyotp.random_base32(length=32)  # 32 base32 characters: 160 bits
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=account.email, issuer_name=practice.name
    )
    await Account.filter(id=account.id).update(
        mfa_pending_secret=seal(settings, account.id, secret)
    )
    return Enrollment(secret=secret, otpauth_uri=uri)


async def confirm_enrollment(viewer: Viewer, code: str, settings: Settings) -> list[str]:
    """Turns two-step verification on with a current code from the pending
    secret: ten recovery codes (shown this once), the caller's other sessions
    ended, a notice mailed."""
    async with in_transaction():
        account = await Account.select_for_update().get(id=viewer.account_id)
        if account.mfa_enabled_at is not None:
            raise MfaAlreadyEnabled("Two-step verification is already on.")
        if account.mfa_pending_secret is None:
            raise InvalidCode()
        secret = unseal(settings, account.id, account.mfa_pending_secret)
        now = clock.now()
        step = matching_step(secret, code, now)
        if step is None:
            raise InvalidCode()
        await Account.filter(id=account.id).update(
            mfa_secret=account.mfa_pending_secret,
            mfa_pending_secret=None,
            mfa_enabled_at=now,
            mfa_last_step=step,
        )
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        await MfaRecoveryCode.filter(account_id=account.id).delete()
        await MfaRecoveryCode.bulk_create(
            [
                MfaRecoveryCode(
                    account_id=account.id,
                    code_hash=_recovery_hash(settings, account.id, c),
                    created_at=now,
                )
                for c in codes
            ]
        )
        await (
            Session.filter(account_id=account.id, ended_at__isnull=True)
            .exclude(id=viewer.session_id)
            .update(ended_at=now)
        )
        practice = await Practice.get(id=account.practice_id)
        await enqueue("sign_in_settings_changed", account.email, {"practice_name": practice.name})
        await audit.record_for(viewer, AuditAction.MFA_ENABLED)
    return codes


# --- the second step of a sign-in -------------------------------------------


@dataclass(frozen=True)
class Challenge:
    token: str
    expires_at: datetime


async def issue_challenge(account: Account, settings: Settings) -> Challenge:
    """The second step of a sign-in whose password was right: single use,
    five minutes, this account's only."""
    now = clock.now()
    token = new_token()
    challenge = await MfaChallenge.create(
        account_id=account.id,
        token_hash=keyed_hash(settings.secret_key, CHALLENGE_PURPOSE, token),
        created_at=now,
        expires_at=now + CHALLENGE_TTL,
    )
    return Challenge(token=token, expires_at=challenge.expires_at)


async def open_challenge(token: str, settings: Settings) -> MfaChallenge:
    """A challenge that can still be answered; INVALID_TOKEN otherwise."""
    found = (
        await MfaChallenge.get_or_none(
            token_hash=keyed_hash(settings.secret_key, CHALLENGE_PURPOSE, token)
        )
        if token
        else None
    )
    if (
        found is None
        or found.used_at is not None
        or found.expires_at <= clock.now()
        or found.failures >= MAX_CHALLENGE_FAILURES
    ):
        raise InvalidToken()
    return found


async def second_factor_accepted(account: Account, code: str, settings: Settings) -> bool | None:
    """Whether `code` is a TOTP code of a step not used before (then that
    step is used up), or an unused recovery code (then it is spent): each in
    one conditional UPDATE, so of two requests with one code one wins. True
    for a TOTP code, None for a recovery code, False for neither."""
    if account.mfa_secret is None:
        return False  # turned off since the challenge was given
    now = clock.now()
    step = matching_step(unseal(settings, account.id, account.mfa_secret), code, now)
    if step is not None:
        fresh = Q(mfa_last_step__isnull=True) | Q(mfa_last_step__lt=step)
        return await Account.filter(fresh, id=account.id).update(mfa_last_step=step) > 0
    spent = await MfaRecoveryCode.filter(
        account_id=account.id,
        code_hash=_recovery_hash(settings, account.id, code),
        used_at__isnull=True,
    ).update(used_at=now)
    return None if spent else False


async def count_failure(challenge: MfaChallenge) -> None:
    await MfaChallenge.filter(id=challenge.id).update(failures=F("failures") + 1)


async def spend_challenge(challenge: MfaChallenge) -> bool:
    now = clock.now()
    return (
        await MfaChallenge.filter(
            id=challenge.id,
            used_at__isnull=True,
            expires_at__gt=now,
            failures__lt=MAX_CHALLENGE_FAILURES,
        ).update(used_at=now)
        > 0
    )


# --- turning it off, and the practice policy ---------------------------------


async def _turn_off(account_id: uuid.UUID) -> bool:
    """Off, with its recovery codes and pending secret gone (call inside a
    transaction); True when it was on."""
    was_on = await Account.filter(id=account_id, mfa_enabled_at__isnull=False).update(
        mfa_secret=None, mfa_enabled_at=None, mfa_last_step=None
    )
    # A pending enrolment goes too, whether or not it was on.
    await Account.filter(id=account_id).update(mfa_pending_secret=None)
    await MfaRecoveryCode.filter(account_id=account_id).delete()
    await MfaChallenge.filter(account_id=account_id, used_at__isnull=True).update(
        used_at=clock.now()
    )
    return was_on > 0


async def disable_mfa(viewer: Viewer, password: str, settings: Settings) -> Account:
    """The caller turns their own second step off with their password; a wrong
    one counts toward the sign-in lockout. A notice is mailed."""
    account = await Account.get(id=viewer.account_id).select_related("practice")
    streak = throttling.login_key(settings, account.practice.slug, account.email)
    async with reading() as reader:
        attempt = await throttling.reserve_attempt(streak, reader)
    right = await passwords.verify_password(account.password_hash, password)
    if not right:
        async with reading() as reader:
            await throttling.record_failure(attempt, reader)
        raise InvalidCredentials("The password is wrong.")
    async with in_transaction():
        if await _turn_off(account.id):
            await enqueue(
                "sign_in_settings_off", account.email, {"practice_name": account.practice.name}
            )
            await audit.record_for(viewer, AuditAction.MFA_DISABLED)
    return await Account.get(id=account.id)


async def reset_staff_mfa(viewer: Viewer, account_id: str) -> Account:
    """An ADMIN turns a member of staff's second step off (a lost device);
    their sessions end. NOT_FOUND for a patient's account or another
    practice's."""
    return await _reset(viewer.practice_id, parse_id(account_id), viewer)


async def reset_mfa_by_operator(practice_slug: str, email: str) -> Account:
    """`portal reset-mfa`: the operator's way back in for a locked-out ADMIN."""
    practice = await find_practice(practice_slug)
    address = normalize_email(email)
    account = (
        await Account.get_or_none(practice_id=practice.id, email=address)
        if practice is not None
        else None
    )
    if practice is None or account is None:
        raise NotFound("No account with that email in that practice.")
    return await _reset(practice.id, account.id, None, staff_only=False)


async def _reset(
    practice_id: uuid.UUID,
    account_id: uuid.UUID | None,
    actor: Viewer | None,
    staff_only: bool = True,
) -> Account:
    roles = (Role.ADMIN, Role.CLINICIAN) if staff_only else tuple(Role)
    async with in_transaction():
        account = (
            await Account.select_for_update()
            .filter(id=account_id, practice_id=practice_id, role__in=roles)
            .first()
            if account_id is not None
            else None
        )
        if account is None:
            raise NotFound("No such staff account in your practice.")
        if await _turn_off(account.id):
            await Session.filter(account_id=account.id, ended_at__isnull=True).update(
                ended_at=clock.now()
            )
            if actor is not None:
                await audit.record_for(actor, AuditAction.MFA_RESET)
        return await Account.get(id=account.id)


async def set_staff_mfa_required(viewer: Viewer, required: bool) -> Practice:
    """The practice policy. Turning it on needs the caller's own second step
    on, so a practice cannot lock itself out."""
    async with in_transaction():
        practice = await Practice.select_for_update().get(id=viewer.practice_id)
        if required:
            own = await Account.get(id=viewer.account_id)
            if own.mfa_enabled_at is None:
                raise NotAllowed("Turn on two-step verification for your own account first.")
        if practice.staff_mfa_required != required:
            await Practice.filter(id=practice.id).update(staff_mfa_required=required)
            await audit.record_for(viewer, AuditAction.MFA_POLICY_CHANGED)
        return await Practice.get(id=practice.id)
