"""Odd text in look-ups (found by the schemathesis fuzzing): too long for its
column, or holding a NUL byte PostgreSQL refuses. Each is simply "not found",
never an internal error."""

from __future__ import annotations

import json

import pytest

from models import Practice
from tests.conftest import GraphQLClient

LOGIN = """
mutation ($practice: String!, $email: String!) {
  login(practice: $practice, email: $email, password: "lunar-teapot-orchestra-91") {
    __typename
  }
}
"""
REQUEST_CODE = """
mutation ($practice: String!, $email: String!) {
  requestVerificationCode(practice: $practice, email: $email) { __typename }
}
"""
VERIFY_CODE = """
mutation ($practice: String!, $email: String!) {
  verifyResetCode(practice: $practice, email: $email, code: "123456") { __typename }
}
"""
# Each look-up by practice and email, and what it answers for a practice or
# an email that does not exist.
LOOK_UPS = [
    pytest.param(LOGIN, "InvalidCredentialsError", id="login"),
    pytest.param(REQUEST_CODE, "VerificationCodeSent", id="requestVerificationCode"),
    pytest.param(VERIFY_CODE, "InvalidCodeError", id="verifyResetCode"),
]


async def outcome(client: GraphQLClient, query: str, practice: str, email: str) -> str:
    body = await client.post(query, practice=practice, email=email)
    assert "errors" not in body, body["errors"]
    [result] = body["data"].values()
    typename: str = result["__typename"]
    return typename


@pytest.mark.parametrize(("query", "answer"), LOOK_UPS)
async def test_an_overlong_practice_slug_is_just_an_unknown_practice(
    anonymous: GraphQLClient, query: str, answer: str
) -> None:
    assert await outcome(anonymous, query, "a" * 64, "someone@mail.example") == answer


@pytest.mark.parametrize(("query", "answer"), LOOK_UPS)
async def test_an_overlong_email_is_just_an_unknown_email(
    anonymous: GraphQLClient, practice: Practice, query: str, answer: str
) -> None:
    assert await outcome(anonymous, query, practice.slug, "a" * 255) == answer


@pytest.mark.parametrize(("query", "answer"), LOOK_UPS)
@pytest.mark.parametrize("where", ["practice", "email"])
async def test_a_nul_character_is_just_an_unknown_practice_or_email(
    anonymous: GraphQLClient, practice: Practice, query: str, answer: str, where: str
) -> None:
    slug, email = practice.slug, "someone@mail.example"
    if where == "practice":
        slug += "\x00"
    else:
        email = "some\x00one@mail.example"
    assert await outcome(anonymous, query, slug, email) == answer


async def test_a_nul_character_in_a_search_finds_nothing(admin: GraphQLClient) -> None:
    body = await admin.post('{ patients(search: "a\\u0000") { totalCount } }')
    assert "errors" not in body, body["errors"]
    assert body["data"]["patients"]["totalCount"] == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"query": LOGIN, "variables": {"practice": "north", "email": "\ud800@x.example"}},
            id="half-a-character-in-a-variable",
        ),
        pytest.param({"query": '{ invitation(token: "\ud800") { usable } }'}, id="in-the-query"),
        pytest.param({"query": "{ __typename }", "operationName": "\ud800"}, id="operation-name"),
        pytest.param({"query": "{ __typename }", "operationName": "not a name"}, id="bad-name"),
    ],
)
async def test_text_that_is_not_valid_unicode_is_refused_up_front(
    anonymous: GraphQLClient, body: dict[str, object]
) -> None:
    payload = json.dumps(body).encode()  # escapes the lone surrogate as JSON allows

    response = await anonymous.http.post(
        "/graphql", content=payload, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400


async def test_a_search_of_too_many_words_is_bad_user_input(admin: GraphQLClient) -> None:
    for search in [" ".join(["a"] * 11), "a" * 201, " ".join(["a"] * 3000)]:
        body = await admin.post(
            "query($s: String) { patients(search: $s) { totalCount } }", s=search
        )
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
