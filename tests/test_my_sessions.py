"""mySessions, endSession, endOtherSessions: anyone signed in sees where they
are signed in and signs out any of those devices."""

from __future__ import annotations

from typing import Any

import httpx

from models import Account, AuditAction, AuditEvent, Session
from tests import factories
from tests.conftest import LOGIN, FrozenClock, GraphQLClient

MY_SESSIONS = """
query { mySessions { id createdAt lastSeenAt expiresAt device current } }
"""
END_SESSION = "mutation($id: ID!) { endSession(id: $id) }"
END_OTHERS = "mutation { endOtherSessions }"
ME = "query { me { id } }"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


async def sign_in_from(http: httpx.AsyncClient, email: str, user_agent: str) -> GraphQLClient:
    response = await http.post(
        "/graphql",
        json={
            "query": LOGIN,
            "variables": {"practice": "north", "email": email, "password": factories.PASSWORD},
        },
        headers={"User-Agent": user_agent},
    )
    token = response.json()["data"]["login"]["token"]
    return GraphQLClient(http, token)


async def sessions_of(client: GraphQLClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await client.data(MY_SESSIONS))["mySessions"]
    return found


async def test_a_person_sees_their_devices_most_recently_used_first(
    clock: FrozenClock, http: httpx.AsyncClient, admin_account: Account
) -> None:
    laptop = await sign_in_from(http, admin_account.email, FIREFOX)
    clock.advance(minutes=2)
    phone = await sign_in_from(http, admin_account.email, IPHONE)

    listed = await sessions_of(laptop)

    assert [(s["device"], s["current"]) for s in listed] == [
        ("Mobile Safari on iOS", False),
        ("Firefox on Windows", True),
    ]
    assert listed[0]["lastSeenAt"] == clock.now().isoformat()
    # Nothing that could be turned into a token: the ids are the sessions' ids.
    stored = {str(s.id): s.token_hash for s in await Session.all()}
    for shown in listed:
        assert set(shown) == {"id", "createdAt", "lastSeenAt", "expiresAt", "device", "current"}
        assert stored[shown["id"]] not in str(shown)
        assert phone.token not in str(shown)


async def test_ending_a_session_signs_that_device_out_only(
    http: httpx.AsyncClient, admin_account: Account
) -> None:
    laptop = await sign_in_from(http, admin_account.email, FIREFOX)
    phone = await sign_in_from(http, admin_account.email, IPHONE)
    [phone_session] = [s for s in await sessions_of(laptop) if not s["current"]]

    ended = await laptop.data(END_SESSION, id=phone_session["id"])

    assert ended == {"endSession": True}
    assert (await phone.data(ME))["me"] is None
    assert (await laptop.data(ME))["me"] is not None
    assert await AuditEvent.filter(action=AuditAction.SESSION_ENDED).count() == 1


async def test_another_persons_session_cannot_be_ended_and_nothing_says_it_exists(
    http: httpx.AsyncClient, admin_account: Account, practice: Any
) -> None:
    other = await factories.make_staff(practice, email="clin@north.example")
    mine = await sign_in_from(http, admin_account.email, FIREFOX)
    theirs = await sign_in_from(http, other.email, IPHONE)
    [their_session] = await sessions_of(theirs)

    for unknown in (their_session["id"], "not-an-id", "00000000-0000-0000-0000-000000000000"):
        assert await mine.data(END_SESSION, id=unknown) == {"endSession": False}
    assert (await theirs.data(ME))["me"] is not None


async def test_ending_the_other_sessions_keeps_this_one(
    http: httpx.AsyncClient, admin_account: Account
) -> None:
    devices = [await sign_in_from(http, admin_account.email, FIREFOX) for _ in range(3)]

    ended = await devices[0].data(END_OTHERS)
    again = await devices[0].data(END_OTHERS)

    assert (ended, again) == ({"endOtherSessions": 2}, {"endOtherSessions": 0})
    assert (await devices[0].data(ME))["me"] is not None
    for device in devices[1:]:
        assert (await device.data(ME))["me"] is None
    assert [s["current"] for s in await sessions_of(devices[0])] == [True]
    assert await AuditEvent.filter(action=AuditAction.OTHER_SESSIONS_ENDED).count() == 1


async def test_sessions_are_for_the_signed_in_only(anonymous: GraphQLClient) -> None:
    for operation in (MY_SESSIONS, END_OTHERS):
        body = await anonymous.post(operation)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
