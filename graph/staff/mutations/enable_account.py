from __future__ import annotations

from typing import Annotated

import strawberry

from graph.auth.types import AccountType, account_type
from graph.context import Info
from graph.errors import NotFoundError, error_result
from portal.services import staff
from portal.services.errors import ServiceError


@strawberry.type
class AccountEnabled:
    account: AccountType


EnableAccountResult = Annotated[
    AccountEnabled | NotFoundError, strawberry.union("EnableAccountResult")
]


async def enable_account(info: Info, account_id: strawberry.ID) -> EnableAccountResult:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        account = await staff.enable_account(info.context.viewer, account_id)
    except ServiceError as failure:
        return error_result(failure)
    return AccountEnabled(account=await account_type(account.id))
