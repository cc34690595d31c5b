"""staff, disableAccount, enableAccount: an ADMIN sees the practice's staff
and turns their access off and on; the practice always keeps an active ADMIN."""

from __future__ import annotations

import asyncio
from typing import Any

from models import Account, AuditAction, AuditEvent, Practice, Role, Session
from tests import factories
from tests.conftest import LOGIN, FrozenClock, GraphQLClient

STAFF = """
query Staff($first: Int!, $after: String) {
  staff(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id email role active mfaEnabled lastSignInAt } }
  }
}
"""
DISABLE = """
mutation($id: ID!) {
  disableAccount(accountId: $id) {
    __typename ... on AccountDisabled { account { id active } } ... on Error { code message }
  }
}
"""
ENABLE = """
mutation($id: ID!) {
  enableAccount(accountId: $id) {
    __typename ... on AccountEnabled { account { id active } } ... on Error { code }
  }
}
"""
ME = "query { me { id } }"


async def page(admin: GraphQLClient, first: int, after: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = (await admin.data(STAFF, first=first, after=after))["staff"]
    return found


async def test_an_admin_lists_the_practices_staff_by_email_a_page_at_a_time(
    clock: FrozenClock,
    admin: GraphQLClient,
    admin_account: Account,
    practice: Practice,
    other_practice: Practice,
    patient: GraphQLClient,
) -> None:
    await factories.make_staff(practice, Role.CLINICIAN, email="bea@north.example")
    await factories.make_staff(practice, Role.CLINICIAN, email="zed@north.example")
    await factories.make_staff(other_practice, Role.ADMIN, email="aaron@south.example")

    first = await page(admin, 2)
    rest = await page(admin, 2, first["pageInfo"]["endCursor"])

    emails = [e["node"]["email"] for e in first["edges"] + rest["edges"]]
    assert emails == ["admin@north.example", "bea@north.example", "zed@north.example"]
    assert (first["totalCount"], first["pageInfo"]["hasNextPage"]) == (3, True)
    assert rest["pageInfo"]["hasNextPage"] is False
    me = first["edges"][0]["node"]
    assert me == {
        "id": str(admin_account.id),
        "email": "admin@north.example",
        "role": "ADMIN",
        "active": True,
        "mfaEnabled": False,
        "lastSignInAt": me["lastSignInAt"],
    }
    assert me["lastSignInAt"] is not None
    assert first["edges"][1]["node"]["lastSignInAt"] is None  # never signed in


async def test_a_disabled_member_of_staff_is_signed_out_and_told_at_sign_in(
    admin: GraphQLClient, anonymous: GraphQLClient, practice: Practice
) -> None:
    account = await factories.make_staff(practice, Role.CLINICIAN, email="bea@north.example")
    bea = await anonymous.login("north", account.email, factories.PASSWORD)

    disabled = await admin.data(DISABLE, id=str(account.id))

    assert disabled["disableAccount"] == {
        "__typename": "AccountDisabled",
        "account": {"id": str(account.id), "active": False},
    }
    assert (await bea.data(ME))["me"] is None
    assert await Session.filter(account_id=account.id, ended_at__isnull=True).count() == 0
    refused = await anonymous.data(
        LOGIN, practice="north", email=account.email, password=factories.PASSWORD
    )
    assert refused["login"]["code"] == "ACCOUNT_DISABLED"

    enabled = await admin.data(ENABLE, id=str(account.id))

    assert enabled["enableAccount"]["account"]["active"] is True
    await anonymous.login("north", account.email, factories.PASSWORD)
    actions = [e.action for e in await AuditEvent.filter(role=Role.ADMIN).order_by("occurred_at")]
    assert AuditAction.ACCOUNT_DISABLED in actions and AuditAction.ACCOUNT_ENABLED in actions


async def test_an_admin_cannot_disable_themself_nor_a_patient_nor_another_practices_staff(
    admin: GraphQLClient,
    admin_account: Account,
    patient: GraphQLClient,
    patient_profile: Any,
    other_practice: Practice,
) -> None:
    patients_account = await Account.get(patient_id=patient_profile.id)
    elsewhere = await factories.make_staff(other_practice, Role.ADMIN, email="a@south.example")

    own = (await admin.data(DISABLE, id=str(admin_account.id)))["disableAccount"]
    of_patient = (await admin.data(DISABLE, id=str(patients_account.id)))["disableAccount"]
    foreign = (await admin.data(DISABLE, id=str(elsewhere.id)))["disableAccount"]
    nonsense = (await admin.data(DISABLE, id="not-an-id"))["disableAccount"]

    assert own["code"] == "NOT_ALLOWED"
    assert [of_patient["code"], foreign["code"], nonsense["code"]] == ["NOT_FOUND"] * 3
    assert await Account.filter(disabled_at__isnull=False).count() == 0


async def test_two_admins_disabling_each_other_at_once_leave_one_active(
    anonymous: GraphQLClient, practice: Practice
) -> None:
    for round_number in range(3):
        first = await factories.make_staff(
            practice, Role.ADMIN, email=f"one{round_number}@north.example"
        )
        second = await factories.make_staff(
            practice, Role.ADMIN, email=f"two{round_number}@north.example"
        )
        one = await anonymous.login("north", first.email, factories.PASSWORD)
        two = await anonymous.login("north", second.email, factories.PASSWORD)
        # Only these two are active ADMINs of the practice.
        await (
            Account.filter(practice_id=practice.id, role=Role.ADMIN)
            .exclude(id__in=[first.id, second.id])
            .update(disabled_at=first.created_at)
        )

        answers = await asyncio.gather(
            one.post(DISABLE, id=str(second.id)), two.post(DISABLE, id=str(first.id))
        )

        active = await Account.filter(
            id__in=[first.id, second.id], disabled_at__isnull=True
        ).count()
        assert active == 1, answers


async def test_only_an_admin_manages_staff(
    clinician: GraphQLClient, patient: GraphQLClient, admin_account: Account
) -> None:
    for caller in (clinician, patient):
        for operation, variables in (
            (STAFF, {"first": 5}),
            (DISABLE, {"id": str(admin_account.id)}),
        ):
            body = await caller.post(operation, **variables)
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
