"""Throttling: a growing lockout after failed sign-ins per practice + email,
fixed windows per client address and per email for recovery, and the client
address itself (X-Forwarded-For only from a trusted proxy)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from ipaddress import ip_network
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from models import Account, Patient, Practice, Role, ThrottleCounter
from portal import housekeeping
from portal.http import Edge, client_ip
from portal.lifecycle import Shutdown
from portal.request_context import current_request
from portal.services import throttling
from portal.settings import Settings
from tests import factories
from tests.conftest import FrozenClock, GraphQLClient, Mailbox
from tests.mail import text_of

DeliverMail = Callable[[], Awaitable[object]]

ADMIN = "admin@north.example"
GHOST = "ghost@north.example"
GRACE = "grace@mail.example"
WRONG = "not-the-password-at-all"
NEW_PASSWORD = "velvet-harbour-quantum-57"

LOGIN = """
mutation Login($practice: String!, $email: String!, $password: String!) {
  login(practice: $practice, email: $email, password: $password) {
    __typename
    ... on LoginSuccess { token }
    ... on Error { code message }
    ... on RateLimitedError { retryAfterSeconds }
  }
}
"""

REQUEST_CODE = """
mutation Request($practice: String!, $email: String!) {
  requestVerificationCode(practice: $practice, email: $email) {
    __typename
    ... on Error { code message }
    ... on RateLimitedError { retryAfterSeconds }
  }
}
"""

VERIFY_CODE = """
mutation Verify($practice: String!, $email: String!, $code: String!) {
  verifyResetCode(practice: $practice, email: $email, code: $code) {
    __typename
    ... on ResetCodeVerified { token }
    ... on Error { code message }
    ... on RateLimitedError { retryAfterSeconds }
  }
}
"""

RESET_PASSWORD = """
mutation Reset($token: String!, $password: String!) {
  resetPassword(token: $token, password: $password, passwordConfirmation: $password) {
    __typename
  }
}
"""

OUTCOME = "{ __typename ... on Error { code } ... on RateLimitedError { retryAfterSeconds } }"


def _literal(value: str) -> str:
    # A JSON string of ASCII text is also a GraphQL string literal.
    return json.dumps(value)


def aliased_logins(attempts: list[tuple[str, str, str]]) -> str:
    """One mutation with one aliased `login` per (practice, email, password)."""
    fields = [
        f"a{i}: login(practice: {_literal(p)}, email: {_literal(e)}, password: {_literal(w)}) "
        + OUTCOME
        for i, (p, e, w) in enumerate(attempts)
    ]
    return "mutation {\n" + "\n".join(fields) + "\n}"


def aliased_code_requests(emails: list[str], practice: str = "north") -> str:
    fields = [
        f"a{i}: requestVerificationCode(practice: {_literal(practice)}, email: {_literal(e)}) "
        + OUTCOME
        for i, e in enumerate(emails)
    ]
    return "mutation {\n" + "\n".join(fields) + "\n}"


def aliased_code_checks(emails: list[str], code: str = "000000", practice: str = "north") -> str:
    fields = [
        f"a{i}: verifyResetCode(practice: {_literal(practice)}, email: {_literal(e)}, "
        f"code: {_literal(code)}) " + OUTCOME
        for i, e in enumerate(emails)
    ]
    return "mutation {\n" + "\n".join(fields) + "\n}"


def in_order(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The answers of an aliased request, in the order the aliases were written."""
    return [data[f"a{i}"] for i in range(len(data))]


def codes(answers: list[dict[str, Any]]) -> list[str]:
    return [a.get("code") or a["__typename"] for a in answers]


async def login(
    client: GraphQLClient,
    email: str = ADMIN,
    password: str = WRONG,
    practice: str = "north",
) -> dict[str, Any]:
    result = await client.data(LOGIN, practice=practice, email=email, password=password)
    answer: dict[str, Any] = result["login"]
    return answer


async def fail_logins(
    client: GraphQLClient, times: int, email: str = ADMIN, practice: str = "north"
) -> None:
    for _ in range(times):
        answer = await login(client, email, WRONG, practice)
        assert answer["code"] == "INVALID_CREDENTIALS", answer


async def post(
    http: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None, **variables: Any
) -> dict[str, Any]:
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


@pytest.fixture
async def other_peer(app: Starlette) -> AsyncIterator[GraphQLClient]:
    """A client connecting from another address than the `anonymous` one."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        yield GraphQLClient(client)


@pytest.fixture
async def grace_account(patient_profile: Patient) -> Account:
    return await factories.make_patient_account(patient_profile)


# --- sign-in: the lockout per practice + email ---


async def test_ten_failures_block_even_the_right_password_for_a_minute(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    await fail_logins(anonymous, 10)

    blocked = await login(anonymous, password=factories.PASSWORD)

    assert blocked["__typename"] == "RateLimitedError"
    assert blocked["code"] == "RATE_LIMITED"
    assert blocked["message"]
    assert blocked["retryAfterSeconds"] == 60
    clock.advance(seconds=59)
    assert (await login(anonymous, password=factories.PASSWORD))["retryAfterSeconds"] == 1
    clock.advance(seconds=2)
    assert (await login(anonymous, password=factories.PASSWORD))["__typename"] == "LoginSuccess"


async def test_nine_failures_do_not_block(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    await fail_logins(anonymous, 9)

    assert (await login(anonymous, password=factories.PASSWORD))["__typename"] == "LoginSuccess"


async def test_each_further_failure_doubles_the_block_up_to_15_minutes(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    await fail_logins(anonymous, 10)
    assert (await login(anonymous))["retryAfterSeconds"] == 60

    previous = 1
    for minutes in (2, 4, 8, 15, 15):
        clock.advance(minutes=previous, seconds=1)
        assert (await login(anonymous))["code"] == "INVALID_CREDENTIALS"

        blocked = await login(anonymous, password=factories.PASSWORD)
        assert blocked["code"] == "RATE_LIMITED", minutes
        assert blocked["retryAfterSeconds"] == minutes * 60
        clock.advance(seconds=minutes * 60 - 1)
        assert (await login(anonymous, password=factories.PASSWORD))["retryAfterSeconds"] == 1
        previous = 0  # the block has one second left

    clock.advance(seconds=1)
    assert (await login(anonymous, password=factories.PASSWORD))["__typename"] == "LoginSuccess"


async def test_attempts_while_blocked_neither_count_nor_extend_the_block(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    await fail_logins(anonymous, 10)
    for _ in range(20):
        assert (await login(anonymous))["code"] == "RATE_LIMITED"

    clock.advance(minutes=1, seconds=1)

    assert (await login(anonymous, password=factories.PASSWORD))["__typename"] == "LoginSuccess"


async def test_a_success_after_the_block_clears_the_streak(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    await fail_logins(anonymous, 10)
    clock.advance(minutes=1, seconds=1)
    assert (await login(anonymous, password=factories.PASSWORD))["__typename"] == "LoginSuccess"

    assert (await login(anonymous))["code"] == "INVALID_CREDENTIALS"
    assert (await login(anonymous, password=factories.PASSWORD))["__typename"] == "LoginSuccess"
    await fail_logins(anonymous, 9)
    assert (await login(anonymous, password=factories.PASSWORD))["__typename"] == "LoginSuccess"


async def test_an_email_without_an_account_is_throttled_exactly_alike(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    transcripts: dict[str, list[dict[str, Any]]] = {ADMIN: [], GHOST: []}
    for email, transcript in transcripts.items():
        start = clock.now()
        for _ in range(10):
            transcript.append(await login(anonymous, email))
        transcript.append(await login(anonymous, email, factories.PASSWORD))
        clock.advance(minutes=1, seconds=1)
        transcript.append(await login(anonymous, email))
        transcript.append(await login(anonymous, email, factories.PASSWORD))
        clock.current = start  # same moments for both, so the same retry times

    assert transcripts[ADMIN] == transcripts[GHOST]
    assert codes(transcripts[GHOST]) == ["INVALID_CREDENTIALS"] * 10 + [
        "RATE_LIMITED",
        "INVALID_CREDENTIALS",
        "RATE_LIMITED",
    ]
    assert [a.get("retryAfterSeconds") for a in transcripts[GHOST][-3:]] == [60, None, 120]


async def test_an_unknown_practice_is_throttled_too(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    await fail_logins(anonymous, 10, practice="nowhere")

    assert (await login(anonymous, practice="nowhere"))["retryAfterSeconds"] == 60


async def test_the_lockout_is_per_practice_and_email(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    admin_account: Account,
    practice: Practice,
    other_practice: Practice,
) -> None:
    await factories.make_staff(practice, Role.CLINICIAN, email="clin@north.example")
    await factories.make_staff(other_practice, Role.ADMIN, email=ADMIN)
    await fail_logins(anonymous, 10)
    assert (await login(anonymous, password=factories.PASSWORD))["code"] == "RATE_LIMITED"

    other_email = await login(anonymous, "clin@north.example", factories.PASSWORD)
    other_practice_same_email = await login(anonymous, ADMIN, factories.PASSWORD, "south")

    assert other_email["__typename"] == "LoginSuccess"
    assert other_practice_same_email["__typename"] == "LoginSuccess"


async def test_case_and_surrounding_space_do_not_escape_the_lockout(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    variants = [ADMIN, ADMIN.upper(), f"  {ADMIN} ", "Admin@North.Example"]
    for i in range(10):
        answer = await login(anonymous, variants[i % len(variants)], practice=" North ")
        assert answer["code"] == "INVALID_CREDENTIALS"

    for variant in variants:
        answer = await login(anonymous, variant, factories.PASSWORD)
        assert answer["code"] == "RATE_LIMITED", variant


async def test_other_spellings_of_the_same_address_share_one_lockout(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    fullwidth = "admin@ｎｏｒｔｈ.example"  # the domain in fullwidth letters  # noqa: RUF001
    # The spelling reaches the account: with the right password it signs in.
    assert (await login(anonymous, fullwidth, factories.PASSWORD))["__typename"] == "LoginSuccess"
    await fail_logins(anonymous, 10)

    answer = await login(anonymous, fullwidth, factories.PASSWORD)

    assert answer["__typename"] == "RateLimitedError"


async def test_a_streak_is_forgotten_after_a_day_without_failures(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    await fail_logins(anonymous, 9)
    clock.advance(days=1, minutes=1)

    assert (await login(anonymous))["code"] == "INVALID_CREDENTIALS"

    assert (await login(anonymous, password=factories.PASSWORD))["__typename"] == "LoginSuccess"


async def test_self_service_reset_keeps_working_while_sign_in_is_blocked(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    grace_account: Account,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await fail_logins(anonymous, 10, email=GRACE)
    assert (await login(anonymous, GRACE, factories.PASSWORD))["code"] == "RATE_LIMITED"

    requested = await anonymous.data(REQUEST_CODE, practice="north", email=GRACE)
    assert requested["requestVerificationCode"]["__typename"] == "VerificationCodeSent"
    await deliver_mail()
    [code] = re.findall(r"\b\d{6}\b", text_of(mailbox.to(GRACE)[-1]))
    verified = await anonymous.data(VERIFY_CODE, practice="north", email=GRACE, code=code)
    assert verified["verifyResetCode"]["__typename"] == "ResetCodeVerified"
    token = verified["verifyResetCode"]["token"]
    reset = await anonymous.data(RESET_PASSWORD, token=token, password=NEW_PASSWORD)

    assert reset["resetPassword"]["__typename"] == "PasswordReset"


# --- sign-in: every alias counts ---


async def test_ten_aliased_attempts_in_one_request_count_ten_failures(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    result = await anonymous.data(aliased_logins([("north", ADMIN, WRONG)] * 10))
    assert codes(in_order(result)) == ["INVALID_CREDENTIALS"] * 10

    answer = await login(anonymous, password=factories.PASSWORD)

    assert answer["code"] == "RATE_LIMITED"
    assert answer["retryAfterSeconds"] == 60


async def test_aliases_beyond_the_tenth_failure_are_refused_within_the_request(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    attempts = [("north", ADMIN, WRONG)] * 12 + [("north", ADMIN, factories.PASSWORD)]

    result = await anonymous.data(aliased_logins(attempts))

    assert codes(in_order(result)) == ["INVALID_CREDENTIALS"] * 10 + ["RATE_LIMITED"] * 3


async def test_more_than_15_aliases_are_refused_before_any_attempt(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    body = await anonymous.post(aliased_logins([("north", ADMIN, WRONG)] * 16))

    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await ThrottleCounter.all().count() == 0
    assert (await login(anonymous, password=factories.PASSWORD))["__typename"] == "LoginSuccess"


# --- sign-in: failures per client address ---


async def fail_from_one_address(
    client: GraphQLClient, count: int, first: int = 0, headers: list[dict[str, str]] | None = None
) -> None:
    """`count` failed sign-ins, each with another unknown email, 15 aliases a request."""
    emails = [f"guess{n}@north.example" for n in range(first, first + count)]
    for batch_number, start in enumerate(range(0, count, 15)):
        query = aliased_logins([("north", e, WRONG) for e in emails[start : start + 15]])
        if headers is None:
            result = await client.data(query)
        else:
            result = await post(client.http, query, headers[batch_number])
        assert set(codes(in_order(result))) == {"INVALID_CREDENTIALS"}


async def test_50_failures_from_one_address_block_it_for_the_rest_of_the_window(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    assert throttling.LOGIN_FAILURES_PER_IP.limit == 50
    await fail_from_one_address(anonymous, 50)

    blocked = await login(anonymous, password=factories.PASSWORD)

    assert blocked["code"] == "RATE_LIMITED"
    assert 0 < blocked["retryAfterSeconds"] <= 15 * 60
    clock.advance(seconds=blocked["retryAfterSeconds"])
    assert (await login(anonymous, password=factories.PASSWORD))["__typename"] == "LoginSuccess"


async def test_49_failures_from_one_address_do_not_block_it(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    await fail_from_one_address(anonymous, 49)

    assert (await login(anonymous, password=factories.PASSWORD))["__typename"] == "LoginSuccess"


async def test_the_address_limit_does_not_touch_other_addresses(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    other_peer: GraphQLClient,
    admin_account: Account,
) -> None:
    await fail_from_one_address(anonymous, 50)
    assert (await login(anonymous, password=factories.PASSWORD))["code"] == "RATE_LIMITED"

    answer = await login(other_peer, password=factories.PASSWORD)

    assert answer["__typename"] == "LoginSuccess"


async def test_a_spoofed_forwarded_for_does_not_escape_the_address_limit(
    clock: FrozenClock, settings: Settings, anonymous: GraphQLClient, admin_account: Account
) -> None:
    assert settings.trusted_proxies == ()
    spoofed = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(1, 5)]
    await fail_from_one_address(anonymous, 50, headers=spoofed)

    result = await post(
        anonymous.http,
        LOGIN,
        {"X-Forwarded-For": "203.0.113.99"},
        practice="north",
        email=ADMIN,
        password=factories.PASSWORD,
    )

    assert result["login"]["code"] == "RATE_LIMITED"


# --- the client address ---

PEER = ("127.0.0.1", 123)


def scope_with(forwarded: str | None, peer: tuple[str, int] = PEER) -> dict[str, Any]:
    headers = [(b"user-agent", b"test")]
    if forwarded is not None:
        headers.append((b"x-forwarded-for", forwarded.encode("latin-1")))
    return {"type": "http", "client": peer, "headers": headers}


@pytest.fixture
def behind_proxy(settings: Settings) -> Settings:
    return dataclasses.replace(settings, trusted_proxies=(ip_network("127.0.0.0/8"),))


def test_without_trusted_proxies_the_forwarded_for_header_is_ignored(settings: Settings) -> None:
    assert client_ip(scope_with("203.0.113.5"), settings) == "127.0.0.1"
    assert client_ip(scope_with(None), settings) == "127.0.0.1"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("203.0.113.5, 127.0.0.9", "203.0.113.5"),  # a second, trusted proxy hop
        ("198.51.100.1, 203.0.113.5", "203.0.113.5"),  # the client's own claim is ignored
        (" 198.51.100.1 ,203.0.113.5 , 127.0.0.2", "203.0.113.5"),
        ("2001:db8::1", "2001:db8::1"),
    ],
)
def test_a_trusted_proxy_s_forwarded_for_gives_the_nearest_untrusted_hop(
    behind_proxy: Settings, forwarded: str, expected: str
) -> None:
    assert client_ip(scope_with(forwarded), behind_proxy) == expected


def test_an_untrusted_peer_s_forwarded_for_is_ignored(behind_proxy: Settings) -> None:
    scope = scope_with("203.0.113.5", peer=("192.0.2.10", 5555))

    assert client_ip(scope, behind_proxy) == "192.0.2.10"


@pytest.mark.parametrize(
    "forwarded",
    ["", "not-an-address", "203.0.113.5, garbage", "garbage, 127.0.0.3", " , ,", "999.1.1.1"],
)
def test_a_garbled_forwarded_for_falls_back_to_the_peer(
    behind_proxy: Settings, forwarded: str
) -> None:
    assert client_ip(scope_with(forwarded), behind_proxy) == "127.0.0.1"


def test_a_missing_peer_is_an_unspecified_address(settings: Settings) -> None:
    assert client_ip({"type": "http", "headers": []}, settings) == "0.0.0.0"  # noqa: S104


async def test_the_edge_hands_the_client_address_to_the_layers_below(
    behind_proxy: Settings,
) -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        info = current_request.get()
        assert info is not None
        seen.append(info.client_ip)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    edge = Edge(inner, behind_proxy, Shutdown(1))
    for peer in [("127.0.0.1", 123), ("192.0.2.10", 5555)]:
        transport = httpx.ASGITransport(app=edge, client=peer)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as c:
            response = await c.get("/health", headers={"X-Forwarded-For": "203.0.113.5"})
            assert response.status_code == 204

    assert seen == ["203.0.113.5", "192.0.2.10"]


# --- recovery: code requests and code checks ---


async def test_code_requests_are_limited_to_10_an_hour_per_email_known_or_not(
    clock: FrozenClock, anonymous: GraphQLClient, grace_account: Account
) -> None:
    transcripts = {}
    for email in (GRACE, "nobody@mail.example"):
        result = await anonymous.data(aliased_code_requests([email] * 11))
        transcripts[email] = in_order(result)

    assert transcripts[GRACE] == transcripts["nobody@mail.example"]
    answers = transcripts[GRACE]
    assert codes(answers) == ["VerificationCodeSent"] * 10 + ["RATE_LIMITED"]
    retry = answers[-1]["retryAfterSeconds"]
    assert 0 < retry <= 3600
    # Another spelling of the same address shares its window.
    respelled = await anonymous.data(aliased_code_requests([" GRACE@Mail.Example"]))
    assert codes(in_order(respelled)) == ["RATE_LIMITED"]
    # Another email is not affected.
    other = in_order(await anonymous.data(aliased_code_requests(["else@mail.example"])))
    assert codes(other) == ["VerificationCodeSent"]
    clock.advance(seconds=retry)
    again = in_order(await anonymous.data(aliased_code_requests([GRACE])))
    assert codes(again) == ["VerificationCodeSent"]


async def test_code_requests_are_limited_to_30_an_hour_per_address(
    clock: FrozenClock, anonymous: GraphQLClient, other_peer: GraphQLClient
) -> None:
    emails = [f"someone{n}@mail.example" for n in range(31)]
    answers = []
    for start in range(0, 31, 15):
        answers += in_order(await anonymous.data(aliased_code_requests(emails[start : start + 15])))

    assert codes(answers) == ["VerificationCodeSent"] * 30 + ["RATE_LIMITED"]
    assert 0 < answers[-1]["retryAfterSeconds"] <= 3600
    elsewhere = in_order(await other_peer.data(aliased_code_requests(["someone99@mail.example"])))
    assert codes(elsewhere) == ["VerificationCodeSent"]


async def test_code_checks_are_limited_to_10_per_15_minutes_per_email_known_or_not(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    grace_account: Account,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    await anonymous.data(REQUEST_CODE, practice="north", email=GRACE)
    await deliver_mail()
    [code] = re.findall(r"\b\d{6}\b", text_of(mailbox.to(GRACE)[-1]))
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    transcripts = {}
    for email in (GRACE, "nobody@mail.example"):
        result = await anonymous.data(aliased_code_checks([email] * 11, code=wrong))
        transcripts[email] = in_order(result)

    assert transcripts[GRACE] == transcripts["nobody@mail.example"]
    answers = transcripts[GRACE]
    assert codes(answers) == ["INVALID_CODE"] * 10 + ["RATE_LIMITED"]
    retry = answers[-1]["retryAfterSeconds"]
    assert 0 < retry <= 15 * 60
    clock.advance(seconds=retry)
    again = in_order(await anonymous.data(aliased_code_checks(["nobody@mail.example"])))
    assert codes(again) == ["INVALID_CODE"]


async def test_a_right_code_is_refused_once_the_email_s_checks_are_used_up(
    clock: FrozenClock,
    anonymous: GraphQLClient,
    grace_account: Account,
    mailbox: Mailbox,
    deliver_mail: DeliverMail,
) -> None:
    # Ten checks against codes that are not Grace's current one (none exists yet).
    assert (
        codes(in_order(await anonymous.data(aliased_code_checks([GRACE] * 10))))
        == ["INVALID_CODE"] * 10
    )
    await anonymous.data(REQUEST_CODE, practice="north", email=GRACE)
    await deliver_mail()
    [code] = re.findall(r"\b\d{6}\b", text_of(mailbox.to(GRACE)[-1]))

    answer = await anonymous.data(VERIFY_CODE, practice="north", email=GRACE, code=code)

    assert answer["verifyResetCode"]["code"] == "RATE_LIMITED"


async def test_code_checks_are_limited_per_address_too(
    clock: FrozenClock, anonymous: GraphQLClient, other_peer: GraphQLClient
) -> None:
    limit = throttling.CODE_CHECKS_PER_IP.limit
    emails = [f"someone{n}@mail.example" for n in range(limit + 1)]
    answers = []
    for start in range(0, limit + 1, 15):
        answers += in_order(await anonymous.data(aliased_code_checks(emails[start : start + 15])))

    assert codes(answers) == ["INVALID_CODE"] * limit + ["RATE_LIMITED"]
    elsewhere = in_order(await other_peer.data(aliased_code_checks(["someone0@mail.example"])))
    assert codes(elsewhere) == ["INVALID_CODE"]


# --- what the throttle table holds ---


async def test_throttle_rows_hold_no_email_and_no_address(
    clock: FrozenClock, anonymous: GraphQLClient, grace_account: Account, admin_account: Account
) -> None:
    await fail_logins(anonymous, 10, email=ADMIN)
    await fail_logins(anonymous, 2, email=GRACE)
    await anonymous.data(REQUEST_CODE, practice="north", email=GRACE)
    await anonymous.data(VERIFY_CODE, practice="north", email=GRACE, code="123456")

    rows = await ThrottleCounter.all().values()

    assert len(rows) >= 6  # two streaks, the address window, four recovery windows
    needles = [ADMIN, GRACE, "admin", "grace", "north", "127.0.0.1"]
    for row in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", row["key_hash"]), row
        dumped = " ".join(str(value) for value in row.values()).lower()
        for needle in needles:
            assert needle not in dumped, (needle, row)


async def test_parallel_guesses_cannot_overrun_the_lockout(
    anonymous: GraphQLClient, admin_account: Account
) -> None:
    # Every guess takes its attempt before the slow password check, so a burst
    # gets no more than the ten attempts a sequence would.
    guesses = await asyncio.gather(
        *(
            anonymous.data(
                LOGIN, practice="north", email=admin_account.email, password=f"wrong-{n}"
            )
            for n in range(30)
        )
    )

    outcomes = [g["login"]["__typename"] for g in guesses]
    assert outcomes.count("InvalidCredentialsError") == 10
    assert outcomes.count("RateLimitedError") == 20


async def test_guessing_the_current_password_shares_the_sign_in_lockout(
    patient: GraphQLClient,
) -> None:
    change = """
    mutation($current: String!) {
      changePassword(currentPassword: $current, password: "orbit-lantern-fjord-42",
                     passwordConfirmation: "orbit-lantern-fjord-42") {
        __typename ... on Error { code }
      }
    }
    """
    answers = [
        (await patient.data(change, current=f"guess-{n}"))["changePassword"]["code"]
        for n in range(11)
    ]

    assert answers == ["INVALID_CREDENTIALS"] * 10 + ["RATE_LIMITED"]
    right = await patient.data(change, current=factories.PASSWORD)
    assert right["changePassword"]["code"] == "RATE_LIMITED"


def test_per_address_limits_count_an_ipv6_client_by_its_64_block() -> None:
    assert throttling.address_block("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert throttling.address_block("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert throttling.address_block("2001:db8:1:3::1") != "2001:db8:1:2::/64"
    assert throttling.address_block("192.0.2.7") == "192.0.2.7"


async def test_housekeeping_forgets_counters_that_expired(
    clock: FrozenClock, anonymous: GraphQLClient, admin_account: Account
) -> None:
    await fail_logins(anonymous, 2, email=ADMIN)
    old = {row.key_hash for row in await ThrottleCounter.all()}
    clock.advance(days=2)
    await anonymous.data(REQUEST_CODE, practice="north", email=GRACE)
    recent = {row.key_hash for row in await ThrottleCounter.all()} - old
    assert old and recent

    await housekeeping.tidy()

    assert {row.key_hash for row in await ThrottleCounter.all()} == recent


async def test_parallel_sign_ins_with_the_right_password_are_never_throttled(
    anonymous: GraphQLClient, admin_account: Account
) -> None:
    for _ in range(5):
        answers = await asyncio.gather(
            *(
                anonymous.data(
                    LOGIN, practice="north", email=admin_account.email, password=factories.PASSWORD
                )
                for _ in range(8)
            )
        )

        assert [a["login"]["__typename"] for a in answers] == ["LoginSuccess"] * 8
