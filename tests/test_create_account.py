"""A patient opens the emailed link, chooses a password, and signs in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from models import Account, Invitation, Patient, Role, Session
from tests.conftest import LOGIN, FrozenClock, GraphQLClient, Mailbox
from tests.mail import token_in

SEND_INVITATION = "mutation($id: ID!) { sendInvitation(patientId: $id) { __typename } }"

CREATE_ACCOUNT = """
mutation Create($token: String!, $password: String!, $confirmation: String!) {
  createAccount(token: $token, password: $password, passwordConfirmation: $confirmation) {
    __typename
    ... on AccountCreated { email patientId }
    ... on Error { code message }
  }
}
"""

NEW_PASSWORD = "velvet-harbour-quantum-57"


Invite = Callable[[], Awaitable[str]]


@pytest.fixture
def invite(
    admin: GraphQLClient,
    patient_profile: Patient,
    mailbox: Mailbox,
    deliver_mail: Callable[[], Awaitable[object]],
) -> Invite:
    """Has the admin invite Grace; returns the token from the email that arrives."""

    async def send() -> str:
        await admin.data(SEND_INVITATION, id=str(patient_profile.id))
        await deliver_mail()
        return token_in(mailbox.to("grace@mail.example")[-1])

    return send


async def create_account(
    client: GraphQLClient,
    token: str,
    password: str = NEW_PASSWORD,
    confirmation: str | None = None,
) -> dict[str, Any]:
    """Submits the sign-up form: the password typed twice (the same, unless told)."""
    result = await client.data(
        CREATE_ACCOUNT,
        token=token,
        password=password,
        confirmation=password if confirmation is None else confirmation,
    )
    outcome: dict[str, Any] = result["createAccount"]
    return outcome


async def test_invite_create_account_then_sign_in(
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    invite: Invite,
) -> None:
    token = await invite()

    result = await create_account(anonymous, token)

    assert result == {
        "__typename": "AccountCreated",
        "email": "grace@mail.example",
        "patientId": str(patient_profile.id),
    }
    account = await Account.get(patient_id=patient_profile.id)
    assert account.role is Role.PATIENT
    assert await Session.filter(account_id=account.id).count() == 0  # does not sign in
    signed_in = await anonymous.data(
        LOGIN, practice="north", email="grace@mail.example", password=NEW_PASSWORD
    )
    assert signed_in["login"]["account"]["role"] == "PATIENT"
    portal = await admin.data(
        "query($id: ID!) { patient(id: $id) { portal { status signedUpAt } } }",
        id=str(patient_profile.id),
    )
    assert portal["patient"]["portal"]["status"] == "SIGNED_UP"
    assert portal["patient"]["portal"]["signedUpAt"] is not None


async def test_a_link_works_only_once(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    invite: Invite,
) -> None:
    token = await invite()
    await create_account(anonymous, token)

    again = await create_account(anonymous, token)

    assert again["code"] == "INVALID_TOKEN"
    assert await Account.filter(patient_id=patient_profile.id).count() == 1


async def test_a_replaced_link_no_longer_works(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    invite: Invite,
) -> None:
    old_token = await invite()
    new_token = await invite()

    old = await create_account(anonymous, old_token)

    assert old["code"] == "INVALID_TOKEN"
    assert await Account.filter(patient_id=patient_profile.id).count() == 0
    new = await create_account(anonymous, new_token)
    assert new["__typename"] == "AccountCreated"


async def test_an_expired_link_no_longer_works(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    invite: Invite,
) -> None:
    token = await invite()
    clock.advance(days=7, seconds=1)

    result = await create_account(anonymous, token)

    assert result["code"] == "INVALID_TOKEN"
    assert await Account.filter(patient_id=patient_profile.id).count() == 0


async def test_an_unknown_token_is_invalid(anonymous: GraphQLClient) -> None:
    for token in ["", "made-up-token", "x" * 500]:
        result = await create_account(anonymous, token)
        assert result["code"] == "INVALID_TOKEN"


async def test_the_confirmation_must_match_and_the_link_stays_usable(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    invite: Invite,
) -> None:
    token = await invite()

    result = await create_account(anonymous, token, confirmation=NEW_PASSWORD + "x")

    assert result["code"] == "PASSWORD_MISMATCH"
    assert await Account.all().filter(role=Role.PATIENT).count() == 0
    invitation = await Invitation.get(patient_id=patient_profile.id)
    assert invitation.used_at is None


async def test_weak_passwords_and_ones_made_of_the_patients_details_are_refused(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    invite: Invite,
) -> None:
    token = await invite()

    for weak in ["password123", "short", "GraceHopper1990!", "grace@mail.example"]:
        result = await create_account(anonymous, token, weak)
        assert result["code"] == "WEAK_PASSWORD", weak

    assert await Account.filter(patient_id=patient_profile.id).count() == 0
    assert (await Invitation.get(patient_id=patient_profile.id)).used_at is None


async def test_two_simultaneous_calls_with_one_token_create_exactly_one_account(
    anonymous: GraphQLClient,
    patient_profile: Patient,
    invite: Invite,
) -> None:
    token = await invite()

    results = await asyncio.gather(*(create_account(anonymous, token) for _ in range(4)))

    outcomes = sorted(r["__typename"] for r in results)
    assert outcomes.count("AccountCreated") == 1
    assert outcomes.count("InvalidTokenError") == 3
    assert await Account.filter(patient_id=patient_profile.id).count() == 1
