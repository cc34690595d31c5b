"""Accounts: creating staff accounts and signing in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from models import Account, AuditAction, Practice, Role
from portal import clock
from portal.db import AS_DATETIME, AS_UUID, Reader, Row, Sql, reading, write_together
from portal.services import audit, passwords, throttling
from portal.services.emails import normalize_email, valid_email
from portal.services.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from portal.services.practices import find_practice, normalize_slug, valid_slug
from portal.services.sessions import StartedSession, new_session
from portal.settings import Settings

STAFF_ROLES = (Role.ADMIN, Role.CLINICIAN)
MAX_EMAIL_LENGTH = 254


async def create_staff_account(
    practice_slug: str, email: str, role: Role, password: str
) -> Account:
    practice = await find_practice(practice_slug)
    if practice is None:
        raise NotFound(f"There is no practice with the slug {practice_slug!r}.")
    if role not in STAFF_ROLES:
        raise ValidationFailed("Staff accounts are ADMIN or CLINICIAN.", field="role")
    address = valid_email(email)
    if address is None:
        raise ValidationFailed("That is not a valid email address.", field="email")
    if await Account.exists(practice=practice, email=address):
        raise EmailTaken("Another account of this practice already uses that email address.")
    password_hash = await passwords.new_password_hash(
        password, password, passwords.own_details(address, practice)
    )
    try:
        return await Account.create(
            practice=practice,
            email=address,
            role=role,
            password_hash=password_hash,
            password_changed_at=clock.now(),
        )
    except IntegrityError:
        raise EmailTaken(
            "Another account of this practice already uses that email address."
        ) from None


async def find_account(practice: Practice | None, email: str) -> Account | None:
    """The practice's account with that email, matched as stored; None for
    text that cannot be a stored address (too long, a NUL byte)."""
    address = normalize_email(email)
    if practice is None or len(address) > MAX_EMAIL_LENGTH or "\x00" in address:
        return None
    return await Account.get_or_none(practice=practice, email=address)


DISABLED_MESSAGE = (
    "Your access to this practice's portal is turned off. Contact your practice to restore it."
)


@dataclass(frozen=True)
class SignedIn:
    account: Account
    session: StartedSession


# The practice and, when its email matches, the account: one statement.
ACCOUNT_FOR_SIGN_IN = Sql(
    "SELECT p.id AS practice_id, a.id AS account_id, a.email, a.role, a.patient_id,"
    " a.password_hash, a.disabled_at FROM practice p"
    " LEFT JOIN account a ON a.practice_id = p.id AND a.email = $2 WHERE p.slug = $1",
    types={
        "practice_id": AS_UUID,
        "account_id": AS_UUID,
        "patient_id": AS_UUID,
        "disabled_at": AS_DATETIME,
    },
)


async def _account_for_sign_in(
    slug: str, address: str, reader: Reader
) -> tuple[uuid.UUID | None, Account | None]:
    if not valid_slug(slug) or len(address) > MAX_EMAIL_LENGTH or "\x00" in address:
        return None, None
    rows = await reader.fetch(ACCOUNT_FOR_SIGN_IN, slug, address)
    if not rows:
        return None, None
    row = rows[0]
    if row["account_id"] is None:
        return row["practice_id"], None
    account = Account(
        id=row["account_id"],
        practice_id=row["practice_id"],
        email=row["email"],
        role=Role(row["role"]),
        patient_id=row["patient_id"],
        password_hash=row["password_hash"],
        disabled_at=row["disabled_at"],
    )
    return row["practice_id"], account


async def login(practice_slug: str, email: str, password: str, settings: Settings) -> SignedIn:
    """Signs in; wrong practice, email or password all fail the same way, in the same time.

    Failures are counted per practice + email whether or not the account
    exists (a lockout with growing back-off) and per client address. At most
    six statements whatever the outcome (three for a good one on PostgreSQL);
    no connection is held while the password hash is checked.
    """
    # Normalised once: the address's validation is a good part of a
    # sign-in's work beside the hash.
    slug, address = normalize_slug(practice_slug), normalize_email(email)
    streak = throttling.login_key_of(settings, slug, address)
    async with reading() as reader:
        practice_id, account = await _account_for_sign_in(slug, address, reader)
        try:
            window_key, attempt = await throttling.take_sign_in_attempt(settings, streak, reader)
        except RateLimited as refusal:
            limited: RateLimited | None = refusal
        else:
            limited = None
    if limited is not None:
        await audit.record(AuditAction.LOGIN_THROTTLED, practice_id=practice_id)
        raise limited
    password_hash = account.password_hash if account is not None else None
    if not await passwords.verify_password(password_hash, password) or account is None:
        async with reading() as reader:
            await throttling.record_failure(attempt, reader)
            await audit.record(
                AuditAction.LOGIN_FAILED,
                practice_id=practice_id,
                account_id=account.id if account else None,
                role=account.role if account else None,
                reader=reader,
            )
        raise InvalidCredentials()
    if account.disabled_at is not None:
        # Said only to whoever knows the password: a wrong one answers as
        # for any account, in the same time. Not a failed guess: the streak
        # and the address get their attempt back.
        async with reading() as reader:
            await write_together(
                reader,
                [
                    throttling.settle_sign_in(streak, window_key),
                    audit.event_for_account(AuditAction.LOGIN_DISABLED, account),
                ],
            )
        raise AccountDisabled(DISABLED_MESSAGE)
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = await passwords.hash_password(password)
        await Account.filter(id=account.id).update(password_hash=account.password_hash)
    session, starting = new_session(account, settings)
    async with reading() as reader:
        await write_together(
            reader,
            [
                # Only failures count against the address and the streak.
                throttling.settle_sign_in(streak, window_key),
                starting,
                audit.event_for_account(AuditAction.LOGIN_SUCCEEDED, account),
            ],
        )
    return SignedIn(account=account, session=session)


async def get_account(account_id: uuid.UUID) -> Account:
    return await Account.get(id=account_id)


ACCOUNT_BY_ID = Sql(
    "SELECT id, email, role, practice_id, patient_id, disabled_at IS NULL AS active,"
    " last_sign_in_at, FALSE AS mfa_enabled FROM account WHERE id = $1",
    types={
        "id": AS_UUID,
        "practice_id": AS_UUID,
        "patient_id": AS_UUID,
        "last_sign_in_at": AS_DATETIME,
    },
)


async def account_row(account_id: uuid.UUID, reader: Reader) -> Row | None:
    rows = await reader.fetch(ACCOUNT_BY_ID, account_id)
    return rows[0] if rows else None
