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
    patient_id: strawberry.ID | None = strawberry.field(
        description="The patient whose account this is, so a client can update what it keeps "
        "of that patient (its portal is SIGNED_UP now); null for a staff account."
    )


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
    patient_id = strawberry.ID(str(account.patient_id)) if account.patient_id else None
    return AccountCreated(email=account.email, patient_id=patient_id)
