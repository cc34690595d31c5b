from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import strawberry

from graph.auth.types import AccountType, LoginSuccess
from graph.context import Info
from graph.errors import (
    AccountDisabledError,
    InvalidCredentialsError,
    RateLimitedError,
    error_result,
)
from graph.execution.specs import Request
from portal.services import accounts
from portal.services.access import Viewer
from portal.services.errors import ServiceError
from portal.settings import Settings

LoginResult = Annotated[
    LoginSuccess | InvalidCredentialsError | RateLimitedError | AccountDisabledError,
    strawberry.union("LoginResult"),
]


async def _sign_in(
    settings: Settings, practice: str, email: str, password: str
) -> tuple[LoginResult, Viewer | None]:
    """The result, and who reads the rest of the response: the person who
    just signed in (None when nobody did)."""
    try:
        signed_in = await accounts.login(practice, email, password, settings)
    except ServiceError as failure:
        return error_result(failure), None
    success = LoginSuccess(
        token=signed_in.session.token,
        expires_at=signed_in.session.expires_at,
        account=AccountType.from_model(signed_in.account),
    )
    return success, signed_in.session.viewer


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
