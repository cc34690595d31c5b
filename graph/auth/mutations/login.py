from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import strawberry

from graph import web_session
from graph.auth.types import AccountType, LoginSuccess
from graph.context import Info
from graph.errors import (
    AccountDisabledError,
    InvalidCodeError,
    InvalidCredentialsError,
    InvalidTokenError,
    RateLimitedError,
    error_result,
)
from graph.execution.specs import Request
from portal.services import accounts
from portal.services.access import Viewer
from portal.services.errors import ServiceError
from portal.settings import Settings


@strawberry.type(
    description="`login` got the right password for an account with two-step verification: "
    "finish with `completeMfaLogin`."
)
class MfaRequired:
    challenge: str = strawberry.field(
        description="Single use; send it to `completeMfaLogin` with a code."
    )
    expires_at: datetime


LoginResult = Annotated[
    LoginSuccess
    | MfaRequired
    | InvalidCredentialsError
    | RateLimitedError
    | AccountDisabledError
    | InvalidCodeError
    | InvalidTokenError,
    strawberry.union("LoginResult"),
]


def _result(
    outcome: accounts.SignedIn | accounts.SecondStepNeeded,
) -> tuple[LoginResult, Viewer | None]:
    """The result, and who reads the rest of the response: the person who
    just signed in (None when nobody did yet)."""
    if isinstance(outcome, accounts.SecondStepNeeded):
        needed = MfaRequired(
            challenge=outcome.challenge.token, expires_at=outcome.challenge.expires_at
        )
        return needed, None
    success = LoginSuccess(
        # "" for the web app, whose cookie holds the token instead.
        token=web_session.hand_over(outcome.session.token),
        expires_at=outcome.session.expires_at,
        account=AccountType.from_model(outcome.account, outcome.session.started_at),
    )
    return success, outcome.session.viewer


async def _sign_in(
    settings: Settings, practice: str, email: str, password: str
) -> tuple[LoginResult, Viewer | None]:
    try:
        return _result(await accounts.login(practice, email, password, settings))
    except ServiceError as failure:
        return error_result(failure), None


async def login(info: Info, practice: str, email: str, password: str) -> LoginResult:
    result, viewer = await _sign_in(info.context.settings, practice, email, password)
    if viewer is not None:
        info.context.viewer = viewer
    return result


async def run_login(request: Request, args: Mapping[str, Any]) -> LoginResult:
    """`login` for compiled plans (`graph.execution`)."""
    result, viewer = await _sign_in(
        request.settings, args["practice"], args["email"], args["password"]
    )
    if viewer is not None:
        request.viewer = viewer
    return result


async def complete_mfa_login(info: Info, challenge: str, code: str) -> LoginResult:
    try:
        outcome = await accounts.complete_mfa_login(challenge, code, info.context.settings)
    except ServiceError as failure:
        return error_result(failure)  # type: ignore[no-any-return]
    result, viewer = _result(outcome)
    if viewer is not None:
        info.context.viewer = viewer
    return result
