from __future__ import annotations

from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import (
    InvalidCredentialsError,
    PasswordMismatchError,
    RateLimitedError,
    WeakPasswordError,
    error_result,
)
from portal.services import recovery
from portal.services.errors import ServiceError


@strawberry.type
class PasswordChanged:
    email: str


ChangePasswordResult = Annotated[
    PasswordChanged
    | InvalidCredentialsError
    | PasswordMismatchError
    | WeakPasswordError
    | RateLimitedError,
    strawberry.union("ChangePasswordResult"),
]


async def change_password(
    info: Info, current_password: str, password: str, password_confirmation: str
) -> ChangePasswordResult:
    assert info.context.viewer is not None  # guaranteed by IsSignedIn
    try:
        account = await recovery.change_password(
            info.context.viewer,
            current_password,
            password,
            password_confirmation,
            info.context.settings,
        )
    except ServiceError as failure:
        return error_result(failure)
    return PasswordChanged(email=account.email)
