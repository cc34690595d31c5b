from __future__ import annotations

from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import InvalidTokenError, PasswordMismatchError, WeakPasswordError, error_result
from portal.services import invitations
from portal.services.errors import ServiceError


@strawberry.type
class AccountCreated:
    email: str


CreateAccountResult = Annotated[
    AccountCreated | InvalidTokenError | PasswordMismatchError | WeakPasswordError,
    strawberry.union("CreateAccountResult"),
]


async def create_account(
    info: Info, token: str, password: str, password_confirmation: str
) -> CreateAccountResult:
    try:
        account = await invitations.create_account(
            token, password, password_confirmation, info.context.settings
        )
    except ServiceError as failure:
        return error_result(failure)
    return AccountCreated(email=account.email)
