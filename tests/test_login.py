"""Signing in with practice, email and password; sessions; signing out."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from tortoise import connections

from models import Account, Practice, Role, Session
from portal.services import passwords
from portal.services.tokens import keyed_hash
from tests import factories
from tests.conftest import LOGIN, FrozenClock, GraphQLClient, QueryCounter

ME = "query { me { id email role practice { slug name } patient { firstName } } }"
LOGOUT = "mutation { logout }"


async def test_staff_signs_in_and_sees_themself(
    anonymous: GraphQLClient, admin_account: Account
) -> None:
    result = await anonymous.data(
        LOGIN, practice="north", email="admin@north.example", password=factories.PASSWORD
    )

    login = result["login"]
    assert login["__typename"] == "LoginSuccess"
    assert login["account"]["role"] == "ADMIN"
    signed_in = GraphQLClient(anonymous.http, login["token"])
    me = (await signed_in.data(ME))["me"]
    assert me["email"] == "admin@north.example"
    assert me["practice"] == {"slug": "north", "name": "North Street Practice"}
    assert me["patient"] is None


async def test_email_is_matched_ignoring_case_and_surrounding_space(
    anonymous: GraphQLClient, admin_account: Account
) -> None:
    result = await anonymous.data(
        LOGIN, practice="north", email="  ADMIN@North.Example ", password=factories.PASSWORD
    )

    assert result["login"]["__typename"] == "LoginSuccess"


async def test_a_patient_signs_in_and_sees_their_profile(patient: GraphQLClient) -> None:
    me = (await patient.data(ME))["me"]

    assert me["role"] == "PATIENT"
    assert me["patient"] == {"firstName": "Grace"}


async def test_wrong_password_unknown_email_and_unknown_practice_fail_alike(
    anonymous: GraphQLClient, admin_account: Account
) -> None:
    attempts = [
        ("north", "admin@north.example", "not-the-password-at-all"),
        ("north", "nobody@north.example", factories.PASSWORD),
        ("nowhere", "admin@north.example", factories.PASSWORD),
    ]
    answers = []
    for practice, email, password in attempts:
        result = await anonymous.data(LOGIN, practice=practice, email=email, password=password)
        answers.append(result["login"])

    assert answers[0]["code"] == "INVALID_CREDENTIALS"
    assert answers[0] == answers[1] == answers[2]
    assert await Session.all().count() == 0


async def test_an_account_of_another_practice_cannot_sign_in_here(
    anonymous: GraphQLClient, admin_account: Account, other_practice: Practice
) -> None:
    result = await anonymous.data(
        LOGIN, practice="south", email="admin@north.example", password=factories.PASSWORD
    )

    assert result["login"]["code"] == "INVALID_CREDENTIALS"


async def test_unknown_email_still_costs_one_password_verification(
    anonymous: GraphQLClient, practice: Practice, monkeypatch: object
) -> None:
    verified: list[str] = []
    original = PasswordHasher.verify

    def counting_verify(self: PasswordHasher, hash: str, password: str) -> bool:
        verified.append(hash)
        return original(self, hash, password)

    import pytest

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PasswordHasher, "verify", counting_verify)
        result = await anonymous.data(
            LOGIN, practice="north", email="ghost@north.example", password=factories.PASSWORD
        )

    assert result["login"]["code"] == "INVALID_CREDENTIALS"
    assert len(verified) == 1


async def test_the_token_is_long_random_and_stored_only_as_an_hmac(
    anonymous: GraphQLClient, admin_account: Account, settings: object
) -> None:
    result = await anonymous.data(
        LOGIN, practice="north", email="admin@north.example", password=factories.PASSWORD
    )

    token = result["login"]["token"]
    assert len(token) >= 43  # 32 random bytes, base64url
    session = await Session.get(account_id=admin_account.id)
    assert session.token_hash != token
    assert session.token_hash == keyed_hash(settings.secret_key, "session", token)  # type: ignore[attr-defined]


async def test_logout_ends_the_session(admin: GraphQLClient) -> None:
    assert (await admin.data(LOGOUT))["logout"] is True

    assert (await admin.data(ME))["me"] is None
    assert (await admin.data(LOGOUT))["logout"] is False


async def test_logout_without_a_session_ends_nothing(anonymous: GraphQLClient) -> None:
    assert (await anonymous.data(LOGOUT))["logout"] is False


async def test_session_ends_after_30_idle_minutes_and_slides_with_use(
    clock: FrozenClock, admin: GraphQLClient
) -> None:
    clock.advance(minutes=25)
    assert (await admin.data(ME))["me"] is not None  # slides the idle deadline

    clock.advance(minutes=25)
    assert (await admin.data(ME))["me"] is not None

    clock.advance(minutes=31)
    assert (await admin.data(ME))["me"] is None


async def test_session_ends_after_12_hours_however_busy(
    clock: FrozenClock, admin: GraphQLClient
) -> None:
    for _ in range(12 * 4 - 1):
        clock.advance(minutes=15)
        assert (await admin.data(ME))["me"] is not None

    clock.advance(minutes=16)
    assert (await admin.data(ME))["me"] is None


async def test_login_reports_when_the_session_would_idle_out(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    result = await anonymous.data(
        LOGIN, practice="north", email="admin@north.example", password=factories.PASSWORD
    )

    expected = clock.now() + timedelta(minutes=30)
    assert result["login"]["expiresAt"] == expected.isoformat()


async def test_a_hash_made_with_older_parameters_is_upgraded_on_login(
    anonymous: GraphQLClient, practice: Practice
) -> None:
    old_hasher = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
    account = await Account.create(
        practice=practice,
        email="old@north.example",
        role=Role.CLINICIAN,
        password_hash=old_hasher.hash(factories.PASSWORD),
        password_changed_at=practice.created_at,
    )

    await anonymous.login("north", "old@north.example", factories.PASSWORD)

    await account.refresh_from_db()
    assert not passwords.needs_rehash(account.password_hash)
    assert "m=512" not in account.password_hash
    await anonymous.login("north", "old@north.example", factories.PASSWORD)


async def test_an_unknown_or_garbage_bearer_token_is_signed_out(
    anonymous: GraphQLClient, admin: GraphQLClient
) -> None:
    for token in ["", "garbage", admin.token + "x"]:  # type: ignore[operator]
        client = GraphQLClient(anonymous.http, token)
        assert (await client.data(ME))["me"] is None


async def test_a_sign_in_costs_at_most_six_statements_whatever_its_outcome(
    anonymous: GraphQLClient, admin_account: Account, sql_queries: QueryCounter
) -> None:
    attempts = {
        "signed in": ("north", "admin@north.example", factories.PASSWORD),
        "wrong password": ("north", "admin@north.example", "not-the-password-at-all"),
        "unknown email": ("north", "nobody@north.example", factories.PASSWORD),
        "unknown practice": ("nowhere", "admin@north.example", factories.PASSWORD),
    }
    costs = {}
    for outcome, (practice, email, password) in attempts.items():
        sql_queries.count = 0
        await anonymous.data(LOGIN, practice=practice, email=email, password=password)
        costs[outcome] = sql_queries.count

    assert max(costs.values()) <= 6, costs
    # On PostgreSQL the account and the counters a sign-in takes before its
    # hash go in one statement, and what a good one writes after it (its
    # streak settled, the session, the audit event) in another.
    if connections.get("default").capabilities.dialect == "postgres":
        assert costs["signed in"] == 2, costs


async def test_an_account_shows_when_it_last_signed_in(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    first = await anonymous.login("north", admin_account.email, factories.PASSWORD)
    signed_in_at = clock.now()
    clock.advance(minutes=3)

    shown = await first.data("query { me { active lastSignInAt } }")
    await anonymous.login("north", admin_account.email, factories.PASSWORD)
    again = await first.data("query { me { lastSignInAt } }")

    assert shown["me"] == {"active": True, "lastSignInAt": signed_in_at.isoformat()}
    assert again["me"]["lastSignInAt"] == clock.now().isoformat()
