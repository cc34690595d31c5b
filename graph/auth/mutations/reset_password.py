from __future__ import annotations

from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import InvalidTokenError, PasswordMismatchError, WeakPasswordError, error_result
from portal.services import recovery
from portal.services.errors import ServiceError


@strawberry.type
class PasswordReset:
    email: str


ResetPasswordResult = Annotated[
    PasswordReset | InvalidTokenError | PasswordMismatchError | WeakPasswordError,
    strawberry.union("ResetPasswordResult"),
]


async def reset_password(
    info: Info, token: str, password: str, password_confirmation: str
) -> ResetPasswordResult:
    try:
        account = await recovery.reset_password(
            token, password, password_confirmation, info.context.settings
        )
    except ServiceError as failure:
        return error_result(failure)
    return PasswordReset(email=account.email)
