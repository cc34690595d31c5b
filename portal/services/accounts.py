"""Accounts: creating staff accounts and signing in."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from models import Account, AuditAction, Practice, Role
from portal import clock, metrics
from portal.db import AS_DATETIME, AS_UUID, Reader, Row, Sql, Write, reading, write_together
from portal.services import audit, mfa, passwords, throttling
from portal.services.emails import normalize_email, valid_email
from portal.services.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCode,
    InvalidCredentials,
    InvalidToken,
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
    " a.password_hash, a.disabled_at, a.mfa_enabled_at, a.mfa_secret FROM practice p"
    " LEFT JOIN account a ON a.practice_id = p.id AND a.email = $2 WHERE p.slug = $1",
    types={
        "practice_id": AS_UUID,
        "account_id": AS_UUID,
        "patient_id": AS_UUID,
        "disabled_at": AS_DATETIME,
        "mfa_enabled_at": AS_DATETIME,
    },
)


def _account_lookup(slug: str, address: str) -> Write | None:
    """The read of the practice and account signing in; None for text that
    cannot name one (then nothing is read)."""
    if not valid_slug(slug) or len(address) > MAX_EMAIL_LENGTH or "\x00" in address:
        return None
    return (ACCOUNT_FOR_SIGN_IN, (slug, address))


def _account_of(row: Row | None) -> tuple[uuid.UUID | None, Account | None]:
    if row is None or row["practice_id"] is None:
        return None, None
    if row["account_id"] is None:
        return row["practice_id"], None
    # As Tortoise makes the rows it reads itself (columns already of their
    # types); a model built through __init__ checks every field again.
    account = Account._init_from_db(
        id=row["account_id"],
        practice_id=row["practice_id"],
        email=row["email"],
        role=row["role"],
        patient_id=row["patient_id"],
        password_hash=row["password_hash"],
        disabled_at=row["disabled_at"],
        mfa_enabled_at=row["mfa_enabled_at"],
        mfa_secret=row["mfa_secret"],
    )
    return row["practice_id"], account


@dataclass(frozen=True)
class SecondStepNeeded:
    """The password was right; the account asks for a code next."""

    challenge: mfa.Challenge


SIGN_IN_RESULTS: dict[type[Exception], str] = {
    InvalidCredentials: "invalid",
    InvalidCode: "invalid",
    InvalidToken: "invalid",
    RateLimited: "throttled",
    AccountDisabled: "disabled",
}


def _count_sign_in(outcome: object) -> None:
    if isinstance(outcome, SignedIn):
        metrics.SIGN_INS.labels("ok").inc()
    elif isinstance(outcome, SecondStepNeeded):
        metrics.SIGN_INS.labels("mfa_required").inc()
    elif type(outcome) in SIGN_IN_RESULTS:
        metrics.SIGN_INS.labels(SIGN_IN_RESULTS[type(outcome)]).inc()  # type: ignore[index]


async def login(
    practice_slug: str, email: str, password: str, settings: Settings
) -> SignedIn | SecondStepNeeded:
    """`sign_in`, counted by its result in the metrics."""
    try:
        outcome = await sign_in(practice_slug, email, password, settings)
    except Exception as refused:
        _count_sign_in(refused)
        raise
    _count_sign_in(outcome)
    return outcome


async def sign_in(
    practice_slug: str, email: str, password: str, settings: Settings
) -> SignedIn | SecondStepNeeded:
    """Signs in; wrong practice, email or password all fail the same way, in the same time.

    Failures are counted per practice + email whether or not the account
    exists (a lockout with growing back-off) and per client address. At most
    six statements whatever the outcome (two for a good one on PostgreSQL);
    no connection is held while the password hash is checked.
    """
    # Normalised once: the address's validation is a good part of a
    # sign-in's work beside the hash.
    slug, address = normalize_slug(practice_slug), normalize_email(email)
    streak = throttling.login_key_of(settings, slug, address)
    async with reading() as reader:
        # The account and both counters: one statement on PostgreSQL.
        start = await throttling.take_sign_in_attempt(
            settings, streak, reader, beside=_account_lookup(slug, address)
        )
    practice_id, account = _account_of(start.beside)
    if start.refusal is not None:
        await audit.record(AuditAction.LOGIN_THROTTLED, practice_id=practice_id)
        raise start.refusal
    assert start.attempt is not None
    window_key, attempt = start.window_key, start.attempt
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
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = await passwords.hash_password(password)
        await Account.filter(id=account.id).update(password_hash=account.password_hash)
    if account.mfa_enabled_at is not None:
        # Asked whatever else holds (a disabled account is told so only after
        # the code): nobody learns more from a password alone. The address
        # gets its attempt back; the streak does not: one who knows the
        # password and guesses codes is locked out as a password guesser is,
        # and only a sign-in finished with a right code starts it again.
        challenge = await mfa.issue_challenge(account, settings)
        async with reading() as reader:
            await write_together(reader, [throttling.refund_window(window_key)])
        return SecondStepNeeded(challenge)
    return await _signed_in(account, streak, window_key, settings)


async def _signed_in(
    account: Account,
    streak: str,
    window_key: str,
    settings: Settings,
    also: Sequence[Write] = (),
) -> SignedIn:
    """The end of a sign-in whose every step was right: a session, unless
    the account is disabled (then ACCOUNT_DISABLED, to one who proved to be
    its owner). Either way the attempts it was charged are given back."""
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
    session, starting = new_session(account, settings)
    async with reading() as reader:
        await write_together(
            reader,
            [
                # Only failures count against the address and the streak.
                throttling.settle_sign_in(streak, window_key),
                starting,
                audit.event_for_account(AuditAction.LOGIN_SUCCEEDED, account),
                *also,
            ],
        )
    return SignedIn(account=account, session=session)


async def complete_mfa_login(challenge: str, code: str, settings: Settings) -> SignedIn:
    """`finish_mfa_sign_in`, counted by its result in the metrics."""
    try:
        signed_in = await finish_mfa_sign_in(challenge, code, settings)
    except Exception as refused:
        _count_sign_in(refused)
        raise
    _count_sign_in(signed_in)
    return signed_in


async def finish_mfa_sign_in(challenge: str, code: str, settings: Settings) -> SignedIn:
    """The second step: a current authenticator code or an unused recovery
    code for a challenge `login` gave. Wrong codes count against the same
    lockout as wrong passwords; five kill the challenge."""
    found = await mfa.open_challenge(challenge, settings)
    account = await Account.get(id=found.account_id)
    practice = await Practice.get(id=account.practice_id)
    streak = throttling.login_key_of(settings, practice.slug, account.email)
    async with reading() as reader:
        start = await throttling.take_sign_in_attempt(settings, streak, reader)
        if start.refusal is not None:
            await audit.record(AuditAction.LOGIN_THROTTLED, practice_id=practice.id, reader=reader)
            raise start.refusal
    assert start.attempt is not None
    window_key, attempt = start.window_key, start.attempt
    accepted = await mfa.second_factor_accepted(account, code, settings)
    if accepted is False:
        await mfa.count_failure(found)
        async with reading() as reader:
            await throttling.record_failure(attempt, reader)
            await audit.record_for_account(AuditAction.MFA_FAILED, account, reader)
        raise InvalidCode()
    if not await mfa.spend_challenge(found):
        raise InvalidToken()
    also = (
        [] if accepted else [audit.event_for_account(AuditAction.MFA_RECOVERY_CODE_USED, account)]
    )
    return await _signed_in(account, streak, window_key, settings, also)


# `last_sign_in_at`: the account's newest session, read when shown and never
# written by a sign-in (which stays as lean as its hash allows).
ACCOUNT_BY_ID = Sql(
    "SELECT id, email, role, practice_id, patient_id, disabled_at IS NULL AS active,"
    " (SELECT max(created_at) FROM session WHERE session.account_id = account.id)"
    " AS last_sign_in_at, mfa_enabled_at IS NOT NULL AS mfa_enabled FROM account WHERE id = $1",
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
