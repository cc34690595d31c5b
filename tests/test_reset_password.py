"""With a reset token, from a verified code or an admin's link, the patient sets
a new password: every session ends and every other way in is closed."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from models import (
    Account,
    OutboxMessage,
    Patient,
    Practice,
    ResetSource,
    ResetToken,
    Session,
    VerificationCode,
)
from portal import clock as portal_clock
from portal.services import recovery
from portal.services.errors import InvalidToken
from portal.settings import Settings
from tests import factories
from tests.conftest import LOGIN, FrozenClock, GraphQLClient, Mailbox
from tests.mail import html_of, text_of
from tests.test_request_verification_code import (
    GRACE,
    REVEALING_WORDS,
    DeliverMail,
    request_code,
    verify,
)

NEW_PASSWORD = "velvet-harbour-quantum-57"

RESET_PASSWORD = """
mutation Reset($token: String!, $password: String!, $confirmation: String!) {
  resetPassword(token: $token, password: $password, passwordConfirmation: $confirmation) {
    __typename
    ... on PasswordReset { email }
    ... on Error { code message }
  }
}
"""

GENERATE_LINK = """
mutation Link($id: ID!, $expiresAt: DateTime!) {
  generateResetLink(patientId: $id, expiresAt: $expiresAt) {
    __typename
    ... on ResetLinkGenerated { url expiresAt }
    ... on Error { code message }
  }
}
"""

INVALID_TOKEN = {
    "__typename": "InvalidTokenError",
    "code": "INVALID_TOKEN",
    "message": "This link is not valid: it was used, replaced by a newer one, or has expired.",
}


async def reset(
    client: GraphQLClient,
    token: str,
    password: str = NEW_PASSWORD,
    confirmation: str | None = None,
) -> dict[str, Any]:
    result = await client.data(
        RESET_PASSWORD,
        token=token,
        password=password,
        confirmation=password if confirmation is None else confirmation,
    )
    outcome: dict[str, Any] = result["resetPassword"]
    return outcome


async def token_from_code(
    client: GraphQLClient, mailbox: Mailbox, deliver_mail: DeliverMail
) -> str:
    """The whole self-service path up to the reset token."""
    code = await request_code(client, mailbox, deliver_mail)
    verified = await verify(client, code)
    assert verified["__typename"] == "ResetCodeVerified", verified
    token: str = verified["token"]
    return token


async def token_from_link(
    admin: GraphQLClient, patient: Patient, expires_at: datetime | None = None
) -> str:
    """The token in an admin's reset link."""
    expires_at = expires_at or portal_clock.now() + timedelta(days=2)
    result = await admin.data(GENERATE_LINK, id=str(patient.id), expiresAt=expires_at.isoformat())
    link = result["generateResetLink"]
    assert link["__typename"] == "ResetLinkGenerated", link
    token: str = parse_qs(urlsplit(link["url"]).query)["token"][0]
    return token


async def login(client: GraphQLClient, password: str) -> str:
    result = await client.data(LOGIN, practice="north", email=GRACE, password=password)
    outcome: str = result["login"]["__typename"]
    return outcome


async def unchanged(account: Account) -> None:
    """The failed reset left the password and the sessions as they were."""
    now = await Account.get(id=account.id)
    assert now.password_hash == account.password_hash
    assert now.password_changed_at == account.password_changed_at
    assert await Session.filter(account_id=account.id, ended_at__isnull=False).count() == 0
    assert await OutboxMessage.filter(kind="password_changed").count() == 0


async def test_a_verified_code_lets_the_patient_set_a_new_password_without_signing_in(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    token = await token_from_code(anonymous, mailbox, deliver_mail)

    result = await reset(anonymous, token)

    assert result == {"__typename": "PasswordReset", "email": GRACE}
    assert await Session.filter(account_id=account.id).count() == 0  # does not sign in
    assert await login(anonymous, factories.PASSWORD) == "InvalidCredentialsError"
    assert await login(anonymous, NEW_PASSWORD) == "LoginSuccess"
    changed = await Account.get(id=account.id)
    assert changed.password_hash != account.password_hash
    assert changed.password_changed_at > account.password_changed_at


async def test_an_admin_reset_link_sets_a_new_password(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    expires_at = clock.now() + timedelta(days=3)

    result = await admin.data(
        GENERATE_LINK, id=str(patient_profile.id), expiresAt=expires_at.isoformat()
    )

    link = result["generateResetLink"]
    assert link["url"].startswith("https://portal.test/north/reset-password?token=")
    assert datetime.fromisoformat(link["expiresAt"]) == expires_at
    token = parse_qs(urlsplit(link["url"]).query)["token"][0]
    [row] = await ResetToken.filter(account_id=account.id)
    assert row.source is ResetSource.LINK and token not in row.token_hash
    clock.advance(days=2)
    assert await reset(anonymous, token) == {"__typename": "PasswordReset", "email": GRACE}
    assert await login(anonymous, NEW_PASSWORD) == "LoginSuccess"
    assert await reset(anonymous, token, "other-orchard-lantern-42") == INVALID_TOKEN


async def test_resetting_ends_every_session_and_closes_every_other_way_in(
    admin: GraphQLClient,
    patient: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    practice: Practice,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await Account.get(patient_id=patient_profile.id)
    other_device = await anonymous.login("north", GRACE, factories.PASSWORD)
    link_token = await token_from_link(admin, patient_profile)
    token = await token_from_code(anonymous, mailbox, deliver_mail)
    pending_code = await request_code(anonymous, mailbox, deliver_mail)
    alan = await factories.make_patient_account(
        await factories.make_patient(practice, email="alan@mail.example")
    )
    alans_code = await request_code(anonymous, mailbox, deliver_mail, email="alan@mail.example")

    assert (await reset(anonymous, token))["__typename"] == "PasswordReset"

    assert (await patient.data("{ me { id } }"))["me"] is None
    assert (await other_device.data("{ me { id } }"))["me"] is None
    sessions = await Session.filter(account_id=account.id)
    assert len(sessions) == 2 and all(s.ended_at is not None for s in sessions)
    assert (await admin.data("{ me { role } }"))["me"] == {"role": "ADMIN"}
    codes = await VerificationCode.filter(account_id=account.id, used_at__isnull=True)
    assert len(codes) == 1 and codes[0].revoked_at is not None
    tokens = {t.source: t for t in await ResetToken.filter(account_id=account.id)}
    assert tokens[ResetSource.CODE].used_at is not None
    assert tokens[ResetSource.LINK].revoked_at is not None
    assert tokens[ResetSource.LINK].used_at is None
    assert (await verify(anonymous, pending_code))["code"] == "INVALID_CODE"
    assert await reset(anonymous, link_token, "other-orchard-lantern-42") == INVALID_TOKEN
    assert await login(anonymous, NEW_PASSWORD) == "LoginSuccess"
    # Another account's code is not touched.
    [alans] = await VerificationCode.filter(account_id=alan.id)
    assert alans.revoked_at is None
    verified = await verify(anonymous, alans_code, email="alan@mail.example")
    assert verified["__typename"] == "ResetCodeVerified"


async def test_the_change_is_one_transaction(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    patient: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await Account.get(patient_id=patient_profile.id)
    token = await token_from_code(anonymous, mailbox, deliver_mail)
    pending_code = await request_code(anonymous, mailbox, deliver_mail)

    async def failing_enqueue(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the outbox is unavailable")

    monkeypatch.setattr(recovery, "enqueue", failing_enqueue)
    with pytest.raises(RuntimeError):
        await recovery.reset_password(token, NEW_PASSWORD, NEW_PASSWORD, settings)
    monkeypatch.undo()

    await unchanged(account)
    assert (await patient.data("{ me { email } }"))["me"] == {"email": GRACE}
    assert await ResetToken.filter(account_id=account.id, used_at__isnull=False).count() == 0
    assert await VerificationCode.filter(revoked_at__isnull=False).count() == 0
    assert (await reset(anonymous, token))["__typename"] == "PasswordReset"
    assert (await verify(anonymous, pending_code))["code"] == "INVALID_CODE"


async def test_a_neutral_password_changed_notice_goes_to_the_account_email(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await factories.make_patient_account(patient_profile)
    token = await token_from_code(anonymous, mailbox, deliver_mail)

    await reset(anonymous, token)
    await deliver_mail()

    [notice] = [m for m in mailbox.to(GRACE) if "password" in m["Subject"].lower()]
    assert len(mailbox.to(GRACE)) == 2  # the code, then the notice
    assert notice["From"] == "Client Portal <no-reply@portal.test>"
    headers = " ".join(f"{k} {v}" for k, v in notice.items()).lower()
    for revealing in REVEALING_WORDS:
        assert revealing not in headers, revealing
    body = text_of(notice) + html_of(notice)
    assert "changed" in text_of(notice)
    for secret in (NEW_PASSWORD, factories.PASSWORD, token, "https://"):
        assert secret not in body
    assert "Hopper" not in body and "1990" not in body
    for revealing in REVEALING_WORDS:
        assert revealing not in body.lower(), revealing


async def test_unknown_tokens_are_invalid(
    anonymous: GraphQLClient, patient_profile: Patient
) -> None:
    account = await factories.make_patient_account(patient_profile)

    for token in ["", "made-up-token", "x" * 500]:
        assert await reset(anonymous, token) == INVALID_TOKEN, token

    await unchanged(account)


async def test_a_used_token_is_invalid(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await factories.make_patient_account(patient_profile)
    token = await token_from_code(anonymous, mailbox, deliver_mail)
    await reset(anonymous, token)

    again = await reset(anonymous, token, "other-orchard-lantern-42")

    assert again == INVALID_TOKEN
    assert await login(anonymous, "other-orchard-lantern-42") == "InvalidCredentialsError"
    assert await login(anonymous, NEW_PASSWORD) == "LoginSuccess"


async def test_an_expired_token_is_invalid(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    from_code = await token_from_code(anonymous, mailbox, deliver_mail)
    from_link = await token_from_link(admin, patient_profile, clock.now() + timedelta(hours=1))

    clock.advance(minutes=15, seconds=1)
    assert await reset(anonymous, from_code) == INVALID_TOKEN
    clock.advance(minutes=45)
    assert await reset(anonymous, from_link) == INVALID_TOKEN

    await unchanged(account)


async def test_a_replaced_token_is_invalid(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    old_from_code = await token_from_code(anonymous, mailbox, deliver_mail)
    new_from_code = await token_from_code(anonymous, mailbox, deliver_mail)
    old_link = await token_from_link(admin, patient_profile)
    new_link = await token_from_link(admin, patient_profile)

    assert await reset(anonymous, old_from_code) == INVALID_TOKEN
    assert await reset(anonymous, old_link) == INVALID_TOKEN

    await unchanged(account)
    assert (await reset(anonymous, new_link))["__typename"] == "PasswordReset"
    # The password change closed the other path too.
    assert await reset(anonymous, new_from_code, "other-orchard-lantern-42") == INVALID_TOKEN


async def test_a_mismatched_confirmation_changes_nothing_and_the_token_stays_usable(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    token = await token_from_code(anonymous, mailbox, deliver_mail)

    result = await reset(anonymous, token, NEW_PASSWORD, NEW_PASSWORD + "x")

    assert result["code"] == "PASSWORD_MISMATCH"
    await unchanged(account)
    assert (await ResetToken.get(account_id=account.id)).used_at is None
    assert (await reset(anonymous, token))["__typename"] == "PasswordReset"


async def test_weak_passwords_change_nothing_and_the_token_stays_usable(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    token = await token_from_code(anonymous, mailbox, deliver_mail)

    for weak in ["password123", "GraceHopper1990!", "short", GRACE]:
        result = await reset(anonymous, token, weak)
        assert result["code"] == "WEAK_PASSWORD", weak

    await unchanged(account)
    assert (await ResetToken.get(account_id=account.id)).used_at is None
    assert (await reset(anonymous, token))["__typename"] == "PasswordReset"


async def test_simultaneous_resets_with_one_token_succeed_exactly_once(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    token = await token_from_code(anonymous, mailbox, deliver_mail)
    passwords = [f"velvet-harbour-quantum-{n}{n}" for n in range(5)]

    results = await asyncio.gather(*(reset(anonymous, token, pw) for pw in passwords))

    outcomes = [r["__typename"] for r in results]
    assert outcomes.count("PasswordReset") == 1, results
    assert outcomes.count("InvalidTokenError") == 4, results
    assert await OutboxMessage.filter(kind="password_changed").count() == 1
    [winner] = [pw for pw, r in zip(passwords, results, strict=True) if "email" in r]
    assert await login(anonymous, winner) == "LoginSuccess"
    assert (await ResetToken.get(account_id=account.id)).used_at is not None


async def test_without_the_notice_setting_no_notice_is_queued(
    settings: Settings,
    patient: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    token = await token_from_code(anonymous, mailbox, deliver_mail)
    quiet = dataclasses.replace(settings, password_changed_notice=False)

    account = await recovery.reset_password(token, NEW_PASSWORD, NEW_PASSWORD, quiet)

    assert account.email == GRACE
    assert await OutboxMessage.filter(kind="password_changed").count() == 0
    await deliver_mail()
    assert len(mailbox.to(GRACE)) == 1  # only the code
    assert (await patient.data("{ me { id } }"))["me"] is None  # the rest still happens
    assert await login(anonymous, NEW_PASSWORD) == "LoginSuccess"
    with pytest.raises(InvalidToken):
        await recovery.reset_password(token, NEW_PASSWORD, NEW_PASSWORD, quiet)
