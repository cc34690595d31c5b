"""Two-step verification: enrolling an authenticator app, then signing in
with its codes or a recovery code. Codes are computed from the secret the API
returned, at the test's own clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

import pyotp

from models import Account, AuditAction, AuditEvent, OutboxMessage, Session
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient
from tests.mail import code_in

BEGIN = "mutation { beginMfaEnrollment { secret otpauthUri qrCode } }"
CONFIRM = """
mutation($code: String!) {
  confirmMfaEnrollment(code: $code) {
    __typename ... on MfaEnabled { recoveryCodes } ... on Error { code }
  }
}
"""
COMPLETE = """
mutation($challenge: String!, $code: String!) {
  completeMfaLogin(challenge: $challenge, code: $code) {
    __typename
    ... on LoginSuccess { token account { email mfaEnabled } }
    ... on Error { code message }
  }
}
"""
LOGIN_MFA = """
mutation($email: String!, $password: String!) {
  login(practice: "north", email: $email, password: $password) {
    __typename
    ... on MfaRequired { challenge expiresAt }
    ... on LoginSuccess { token }
    ... on Error { code message }
  }
}
"""
ME = "query { me { email mfaEnabled } }"


def qr_code_svg(data_uri: str) -> ElementTree.Element:
    prefix = "data:image/svg+xml;charset=utf-8,"
    assert data_uri.startswith(prefix), data_uri[:40]
    return ElementTree.fromstring(unquote(data_uri.removeprefix(prefix)))  # noqa: S314 (our own image)


def code_at(secret: str, clock: FrozenClock) -> str:
    return pyotp.TOTP(secret).at(clock.now())


async def enrol(client: GraphQLClient, clock: FrozenClock) -> tuple[str, list[str]]:
    begun = (await client.data(BEGIN))["beginMfaEnrollment"]
    confirmed = (await client.data(CONFIRM, code=code_at(begun["secret"], clock)))[
        "confirmMfaEnrollment"
    ]
    assert confirmed["__typename"] == "MfaEnabled", confirmed
    return begun["secret"], confirmed["recoveryCodes"]


async def password_step(anonymous: GraphQLClient, email: str, password: str) -> dict[str, Any]:
    result: dict[str, Any] = (await anonymous.data(LOGIN_MFA, email=email, password=password))[
        "login"
    ]
    return result


async def second_step(anonymous: GraphQLClient, challenge: str, code: str) -> dict[str, Any]:
    result: dict[str, Any] = (await anonymous.data(COMPLETE, challenge=challenge, code=code))[
        "completeMfaLogin"
    ]
    return result


async def test_enrolling_turns_it_on_with_recovery_codes_and_signs_out_other_devices(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account, practice: Any
) -> None:
    here = await anonymous.login("north", admin_account.email, factories.PASSWORD)
    elsewhere = await anonymous.login("north", admin_account.email, factories.PASSWORD)

    begun = (await here.data(BEGIN))["beginMfaEnrollment"]
    secret = begun["secret"]
    wrong = (await here.data(CONFIRM, code="000000"))["confirmMfaEnrollment"]
    confirmed = (await here.data(CONFIRM, code=code_at(secret, clock)))["confirmMfaEnrollment"]
    again = (await here.data(CONFIRM, code=code_at(secret, clock)))["confirmMfaEnrollment"]

    assert len(secret) == 32  # base32: 160 bits
    uri = pyotp.parse_uri(begun["otpauthUri"])
    assert (uri.issuer, uri.name) == (practice.name, admin_account.email)
    # The QR code is an image drawn by the service, for an <img>: the secret
    # is in its modules, never in its text.
    svg = qr_code_svg(begun["qrCode"])
    assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.find(".//{*}path") is not None
    assert secret not in unquote(begun["qrCode"]) and "otpauth" not in unquote(begun["qrCode"])
    assert wrong["code"] == "INVALID_CODE"
    codes = confirmed["recoveryCodes"]
    assert len(codes) == len(set(codes)) == 10
    assert again["code"] == "MFA_ALREADY_ENABLED"
    assert (await here.data(ME))["me"]["mfaEnabled"] is True
    assert (await elsewhere.data(ME))["me"] is None
    stored = await Account.get(id=admin_account.id)
    assert stored.mfa_secret and secret not in stored.mfa_secret
    notice = await OutboxMessage.get(kind="sign_in_settings_changed")
    assert notice.subject == "Your sign-in settings changed"
    assert await AuditEvent.filter(action=AuditAction.MFA_ENABLED).count() == 1


async def test_the_password_then_a_current_code_sign_in_and_a_code_is_never_taken_twice(
    clock: FrozenClock, anonymous: GraphQLClient, admin: GraphQLClient, admin_account: Account
) -> None:
    secret, _ = await enrol(admin, clock)
    clock.advance(seconds=30)

    first = await password_step(anonymous, admin_account.email, factories.PASSWORD)
    wrong_password = await password_step(anonymous, admin_account.email, "not-the-password")

    assert first["__typename"] == "MfaRequired"
    assert first["expiresAt"] == (clock.now() + timedelta(minutes=5)).isoformat()
    assert wrong_password["code"] == "INVALID_CREDENTIALS"  # as for any account
    sessions_before = await Session.filter(ended_at__isnull=True).count()
    signed_in = await second_step(anonymous, first["challenge"], code_at(secret, clock))
    assert signed_in["__typename"] == "LoginSuccess"
    assert signed_in["account"] == {"email": admin_account.email, "mfaEnabled": True}
    assert await Session.filter(ended_at__isnull=True).count() == sessions_before + 1
    # The same step again, even with a new challenge: refused (no replay).
    second = await password_step(anonymous, admin_account.email, factories.PASSWORD)
    replayed = await second_step(anonymous, second["challenge"], code_at(secret, clock))
    assert replayed["code"] == "INVALID_CODE"
    clock.advance(seconds=30)
    assert (await second_step(anonymous, second["challenge"], code_at(secret, clock)))[
        "__typename"
    ] == "LoginSuccess"
    # A challenge is single use.
    used = await second_step(anonymous, second["challenge"], code_at(secret, clock))
    assert used["code"] == "INVALID_TOKEN"


async def test_a_recovery_code_signs_in_once(
    clock: FrozenClock, anonymous: GraphQLClient, admin: GraphQLClient, admin_account: Account
) -> None:
    _, codes = await enrol(admin, clock)

    first = await password_step(anonymous, admin_account.email, factories.PASSWORD)
    used = await second_step(anonymous, first["challenge"], codes[3].upper())
    second = await password_step(anonymous, admin_account.email, factories.PASSWORD)
    again = await second_step(anonymous, second["challenge"], codes[3])

    assert used["__typename"] == "LoginSuccess"
    assert again["code"] == "INVALID_CODE"
    assert await AuditEvent.filter(action=AuditAction.MFA_RECOVERY_CODE_USED).count() == 1


async def test_five_wrong_codes_kill_the_challenge_and_count_towards_the_lockout(
    clock: FrozenClock, anonymous: GraphQLClient, admin: GraphQLClient, admin_account: Account
) -> None:
    secret, _ = await enrol(admin, clock)
    clock.advance(seconds=30)
    first = await password_step(anonymous, admin_account.email, factories.PASSWORD)

    answers = [await second_step(anonymous, first["challenge"], "123456") for _ in range(5)]
    dead = await second_step(anonymous, first["challenge"], code_at(secret, clock))

    assert {a["code"] for a in answers} == {"INVALID_CODE"}
    assert dead["code"] == "INVALID_TOKEN"
    assert await AuditEvent.filter(action=AuditAction.MFA_FAILED).count() == 5
    # The password is known and codes are guessed: a right password does not
    # start the streak again, so the sign-in lockout comes as for passwords.
    outcomes = []
    for _ in range(5):
        step = await password_step(anonymous, admin_account.email, factories.PASSWORD)
        if step["__typename"] != "MfaRequired":
            outcomes.append(step["code"])
            break
        outcomes.append((await second_step(anonymous, step["challenge"], "123456"))["code"])
    assert outcomes[-1] == "RATE_LIMITED", outcomes


async def test_a_disabled_account_is_told_only_after_both_steps(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    admin: GraphQLClient,
    practice: Any,
) -> None:
    bea = await factories.make_staff(practice, email="bea@north.example")
    client = await anonymous.login("north", bea.email, factories.PASSWORD)
    secret, _ = await enrol(client, clock)
    clock.advance(seconds=30)
    await admin.data(
        "mutation($id: ID!) { disableAccount(accountId: $id) { __typename } }", id=str(bea.id)
    )

    first = await password_step(anonymous, bea.email, factories.PASSWORD)
    final = await second_step(anonymous, first["challenge"], code_at(secret, clock))

    assert first["__typename"] == "MfaRequired"
    assert final["code"] == "ACCOUNT_DISABLED"


async def test_one_recovery_code_or_one_step_sent_twice_at_once_signs_in_once(
    clock: FrozenClock, anonymous: GraphQLClient, admin: GraphQLClient, admin_account: Account
) -> None:
    secret, codes = await enrol(admin, clock)
    clock.advance(seconds=30)
    for code in (codes[0], code_at(secret, clock)):
        one = await password_step(anonymous, admin_account.email, factories.PASSWORD)
        two = await password_step(anonymous, admin_account.email, factories.PASSWORD)

        answers = await asyncio.gather(
            second_step(anonymous, one["challenge"], code),
            second_step(anonymous, two["challenge"], code),
        )

        assert sorted(a["__typename"] for a in answers) == ["InvalidCodeError", "LoginSuccess"]


async def test_recovering_the_password_leaves_the_second_step_on(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    admin: GraphQLClient,
    admin_account: Account,
    mailbox: Any,
    deliver_mail: Any,
) -> None:
    await enrol(admin, clock)
    await anonymous.data(
        'mutation($e: String!) { requestVerificationCode(practice: "north", email: $e) '
        "{ __typename } }",
        e=admin_account.email,
    )
    await deliver_mail()
    code = code_in(mailbox.to(admin_account.email)[-1])
    verified = await anonymous.data(
        'mutation($e: String!, $c: String!) { verifyResetCode(practice: "north", email: $e, '
        "code: $c) { ... on ResetCodeVerified { token } } }",
        e=admin_account.email,
        c=code,
    )
    new_password = "orchard-lantern-quasar-88"
    await anonymous.data(
        "mutation($t: String!, $p: String!) { resetPassword(token: $t, password: $p, "
        "passwordConfirmation: $p) { __typename } }",
        t=verified["verifyResetCode"]["token"],
        p=new_password,
    )

    after = await password_step(anonymous, admin_account.email, new_password)

    assert after["__typename"] == "MfaRequired"
