from __future__ import annotations

from typing import Annotated

import strawberry

from graph.auth.types import AccountType, LoginSuccess
from graph.context import Info
from graph.errors import InvalidCredentialsError, RateLimitedError, error_result
from portal.services import accounts
from portal.services.errors import ServiceError

LoginResult = Annotated[
    LoginSuccess | InvalidCredentialsError | RateLimitedError, strawberry.union("LoginResult")
]


async def login(info: Info, practice: str, email: str, password: str) -> LoginResult:
    settings = info.context.settings
    try:
        signed_in = await accounts.login(practice, email, password, settings)
    except ServiceError as failure:
        return error_result(failure)
    # The rest of this response is read by the person who just signed in.
    info.context.viewer = signed_in.session.viewer
    return LoginSuccess(
        token=signed_in.session.token,
        expires_at=signed_in.session.expires_at,
        account=AccountType.from_model(signed_in.account),
    )
