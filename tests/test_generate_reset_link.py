"""An admin hands a signed-up patient a link with which to set a new password."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from models import Account, Patient, Practice, ResetSource, ResetToken
from portal.app import create_app
from portal.services.recovery import RESET_PURPOSE
from portal.services.tokens import keyed_hash
from portal.settings import Settings
from tests import factories
from tests.conftest import LOGIN, FrozenClock, GraphQLClient

GENERATE = """
mutation Generate($id: ID!, $expiresAt: DateTime!) {
  generateResetLink(patientId: $id, expiresAt: $expiresAt) {
    __typename
    ... on ResetLinkGenerated { url expiresAt }
    ... on Error { code message }
  }
}
"""

RESET = """
mutation Reset($token: String!, $password: String!, $confirmation: String!) {
  resetPassword(token: $token, password: $password, passwordConfirmation: $confirmation) {
    __typename
    ... on PasswordReset { email }
    ... on Error { code message }
  }
}
"""

NEW_PASSWORD = "velvet-harbour-quantum-57"
OTHER_PASSWORD = "copper-meadow-lantern-83"
LINK_PREFIX = "https://portal.test/north/reset-password?token="
# A non-UTC offset, so that the instant (not the wall-clock reading) is what is compared.
PLUS_TWO = timezone(timedelta(hours=2))


def in_days(clock: FrozenClock, days: float) -> datetime:
    return (clock.now() + timedelta(days=days)).astimezone(PLUS_TWO)


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def generate(admin: GraphQLClient, patient: Patient, expires_at: datetime) -> dict[str, Any]:
    result = await admin.data(GENERATE, id=str(patient.id), expiresAt=expires_at.isoformat())
    answer: dict[str, Any] = result["generateResetLink"]
    return answer


async def generated_token(admin: GraphQLClient, patient: Patient, expires_at: datetime) -> str:
    answer = await generate(admin, patient, expires_at)
    assert answer["__typename"] == "ResetLinkGenerated", answer
    return token_of(answer["url"])


async def reset(anonymous: GraphQLClient, token: str, password: str) -> dict[str, Any]:
    result = await anonymous.data(RESET, token=token, password=password, confirmation=password)
    answer: dict[str, Any] = result["resetPassword"]
    return answer


async def signs_in_with(anonymous: GraphQLClient, password: str) -> bool:
    result = await anonymous.data(
        LOGIN, practice="north", email="grace@mail.example", password=password
    )
    return bool(result["login"]["__typename"] == "LoginSuccess")


async def test_an_admin_generates_a_link_for_a_signed_up_patient(
    clock: FrozenClock,
    admin: GraphQLClient,
    admin_account: Account,
    patient_profile: Patient,
    settings: Settings,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    chosen = in_days(clock, 3)

    answer = await generate(admin, patient_profile, chosen)

    assert answer["__typename"] == "ResetLinkGenerated", answer
    assert answer["url"].startswith(LINK_PREFIX)
    token = token_of(answer["url"])
    assert answer["url"] == LINK_PREFIX + token
    assert len(token) >= 43
    assert datetime.fromisoformat(answer["expiresAt"]) == chosen
    row = await ResetToken.get(account_id=account.id)
    assert row.source == ResetSource.LINK
    assert row.created_by_id == admin_account.id
    assert row.created_at == clock.now()
    assert row.expires_at == chosen
    assert row.used_at is None and row.revoked_at is None
    assert row.token_hash == keyed_hash(settings.secret_key, RESET_PURPOSE, token)


async def test_only_an_hmac_of_the_token_is_stored(
    clock: FrozenClock, admin: GraphQLClient, patient_profile: Patient
) -> None:
    await factories.make_patient_account(patient_profile)

    token = await generated_token(admin, patient_profile, in_days(clock, 3))

    rows = await ResetToken.all().values()
    assert len(rows) == 1
    for column, value in rows[0].items():
        assert token not in str(value), column
    assert len(rows[0]["token_hash"]) == 64


async def test_the_link_uses_the_configured_base_url_not_the_request_host(
    clock: FrozenClock, admin: GraphQLClient, patient_profile: Patient
) -> None:
    await factories.make_patient_account(patient_profile)
    spoofed = {
        "Authorization": f"Bearer {admin.token}",
        "Host": "evil.example",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "http",
        "Origin": "https://evil.example",
    }

    response = await admin.http.post(
        "/graphql",
        json={
            "query": GENERATE,
            "variables": {
                "id": str(patient_profile.id),
                "expiresAt": in_days(clock, 1).isoformat(),
            },
        },
        headers=spoofed,
    )

    assert response.status_code == 200, response.text
    answer = response.json()["data"]["generateResetLink"]
    assert answer["__typename"] == "ResetLinkGenerated", answer
    assert answer["url"].startswith(LINK_PREFIX)
    assert "evil" not in answer["url"]


async def test_the_link_sets_a_new_password_until_just_before_its_expiry(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
) -> None:
    await factories.make_patient_account(patient_profile)
    token = await generated_token(admin, patient_profile, in_days(clock, 3))
    clock.advance(days=3, seconds=-1)

    answer = await reset(anonymous, token, NEW_PASSWORD)

    assert answer == {"__typename": "PasswordReset", "email": "grace@mail.example"}
    assert await signs_in_with(anonymous, NEW_PASSWORD)
    assert not await signs_in_with(anonymous, factories.PASSWORD)
    row = await ResetToken.get()
    assert row.used_at == clock.now()


async def test_the_link_no_longer_works_just_after_its_expiry(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
) -> None:
    account = await factories.make_patient_account(patient_profile)
    first = await generated_token(admin, patient_profile, in_days(clock, 3))
    clock.advance(days=3, seconds=-1)
    assert (await reset(anonymous, first, NEW_PASSWORD))["__typename"] == "PasswordReset"
    # Days later the admin's session has idled out: they sign in again.
    admin_again = await anonymous.login("north", "admin@north.example", factories.PASSWORD)
    second = await generated_token(admin_again, patient_profile, in_days(clock, 2))
    clock.advance(days=2, seconds=1)
    hash_before = (await Account.get(id=account.id)).password_hash

    answer = await reset(anonymous, second, OTHER_PASSWORD)

    assert answer["__typename"] == "InvalidTokenError"
    assert answer["code"] == "INVALID_TOKEN"
    assert (await Account.get(id=account.id)).password_hash == hash_before
    assert await signs_in_with(anonymous, NEW_PASSWORD)
    assert not await signs_in_with(anonymous, OTHER_PASSWORD)


async def test_a_newer_link_replaces_the_older_one(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
) -> None:
    await factories.make_patient_account(patient_profile)
    old = await generated_token(admin, patient_profile, in_days(clock, 3))
    new = await generated_token(admin, patient_profile, in_days(clock, 3))
    assert old != new

    refused = await reset(anonymous, old, NEW_PASSWORD)

    assert refused["code"] == "INVALID_TOKEN"
    assert await signs_in_with(anonymous, factories.PASSWORD)
    accepted = await reset(anonymous, new, NEW_PASSWORD)
    assert accepted["__typename"] == "PasswordReset"
    assert await signs_in_with(anonymous, NEW_PASSWORD)


async def test_a_patient_the_admin_cannot_see_is_not_found(
    clock: FrozenClock,
    admin: GraphQLClient,
    other_practice: Practice,
) -> None:
    stranger = await factories.make_patient(other_practice, email="stranger@mail.example")
    await factories.make_patient_account(stranger)
    unknown = str(uuid.uuid4())

    for patient_id in [str(stranger.id), unknown, "not-an-id", ""]:
        result = await admin.data(GENERATE, id=patient_id, expiresAt=in_days(clock, 3).isoformat())
        answer = result["generateResetLink"]
        assert answer["__typename"] == "NotFoundError", (patient_id, answer)
        assert answer["code"] == "NOT_FOUND"
        assert answer["message"]

    assert await ResetToken.all().count() == 0


async def test_a_patient_without_an_account_is_not_signed_up(
    clock: FrozenClock, admin: GraphQLClient, patient_profile: Patient
) -> None:
    answer = await generate(admin, patient_profile, in_days(clock, 3))

    assert answer["__typename"] == "NotSignedUpError"
    assert answer["code"] == "NOT_SIGNED_UP"
    assert answer["message"]
    assert await ResetToken.all().count() == 0


async def test_an_expiry_in_the_past_now_or_beyond_the_limit_is_refused(
    clock: FrozenClock, admin: GraphQLClient, patient_profile: Patient
) -> None:
    await factories.make_patient_account(patient_profile)
    now = clock.now()
    refused = [
        now - timedelta(days=1),
        now - timedelta(seconds=1),
        now,
        now.astimezone(PLUS_TWO),
        now + timedelta(days=30, seconds=1),
        now + timedelta(days=365),
    ]

    for expires_at in refused:
        answer = await generate(admin, patient_profile, expires_at)
        assert answer["__typename"] == "InvalidExpiryError", (expires_at, answer)
        assert answer["code"] == "INVALID_EXPIRY"
        assert answer["message"]

    assert await ResetToken.all().count() == 0


async def test_exactly_the_maximum_number_of_days_ahead_is_allowed(
    clock: FrozenClock, admin: GraphQLClient, patient_profile: Patient, settings: Settings
) -> None:
    assert settings.reset_link_max_days == 30
    await factories.make_patient_account(patient_profile)
    chosen = in_days(clock, 30)

    answer = await generate(admin, patient_profile, chosen)

    assert answer["__typename"] == "ResetLinkGenerated", answer
    assert datetime.fromisoformat(answer["expiresAt"]) == chosen
    assert (await ResetToken.get()).expires_at == chosen


async def test_a_refused_request_leaves_the_earlier_link_usable(
    clock: FrozenClock,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
) -> None:
    await factories.make_patient_account(patient_profile)
    token = await generated_token(admin, patient_profile, in_days(clock, 3))

    refused = await generate(admin, patient_profile, in_days(clock, 31))

    assert refused["code"] == "INVALID_EXPIRY"
    assert await ResetToken.filter(revoked_at__isnull=True).count() == 1
    assert (await reset(anonymous, token, NEW_PASSWORD))["__typename"] == "PasswordReset"


async def test_a_malformed_date_time_is_a_bad_request(
    clock: FrozenClock, admin: GraphQLClient, patient_profile: Patient
) -> None:
    await factories.make_patient_account(patient_profile)
    patient_id = str(patient_profile.id)
    literal = (
        f'mutation {{ generateResetLink(patientId: "{patient_id}", '
        'expiresAt: "next tuesday") { __typename } }'
    )
    bodies = [await admin.post(literal)]
    for malformed in ["next tuesday", "2026-13-45T99:00:00+02:00", "", "12345"]:
        bodies.append(await admin.post(GENERATE, id=patient_id, expiresAt=malformed))

    for body in bodies:
        assert body.get("data") is None, body
        assert body["errors"], body
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    assert await ResetToken.all().count() == 0


async def test_clinicians_patients_and_anonymous_callers_may_not_generate_links(
    clock: FrozenClock,
    clinician: GraphQLClient,
    patient: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
) -> None:
    expected = [(clinician, "FORBIDDEN"), (patient, "FORBIDDEN"), (anonymous, "UNAUTHENTICATED")]

    for client, code in expected:
        body = await client.post(
            GENERATE, id=str(patient_profile.id), expiresAt=in_days(clock, 3).isoformat()
        )
        assert body["data"] is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], body

    assert await ResetToken.all().count() == 0


# --- how far ahead, for a client's date picker ---


def client_for(app: Any) -> httpx.AsyncClient:
    # Not started: the session's `app` fixture has already set up the ORM.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test")


MAX_DAYS = "query { resetLinkMaxDays }"


async def test_an_admin_reads_how_many_days_ahead_a_link_may_expire(
    settings: Settings, admin: GraphQLClient
) -> None:
    assert await admin.data(MAX_DAYS) == {"resetLinkMaxDays": settings.reset_link_max_days}


async def test_the_limit_read_is_the_configured_one(
    settings: Settings, admin: GraphQLClient
) -> None:
    shorter = create_app(dataclasses.replace(settings, reset_link_max_days=7))

    async with client_for(shorter) as http:
        response = await http.post(
            "/graphql",
            json={"query": MAX_DAYS},
            headers={"Authorization": f"Bearer {admin.token}"},
        )

    assert response.json() == {"data": {"resetLinkMaxDays": 7}}


async def test_only_admins_read_the_limit(
    clinician: GraphQLClient, patient: GraphQLClient, anonymous: GraphQLClient
) -> None:
    for client, code in [
        (clinician, "FORBIDDEN"),
        (patient, "FORBIDDEN"),
        (anonymous, "UNAUTHENTICATED"),
    ]:
        body = await client.post(MAX_DAYS)
        assert body["data"] == {"resetLinkMaxDays": None}, body
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
