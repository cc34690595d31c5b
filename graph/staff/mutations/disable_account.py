from __future__ import annotations

from typing import Annotated

import strawberry

from graph.auth.types import AccountType, account_type
from graph.context import Info
from graph.errors import NotAllowedError, NotFoundError, error_result
from portal.services import staff
from portal.services.errors import ServiceError


@strawberry.type
class AccountDisabled:
    account: AccountType


DisableAccountResult = Annotated[
    AccountDisabled | NotFoundError | NotAllowedError, strawberry.union("DisableAccountResult")
]


async def disable_account(info: Info, account_id: strawberry.ID) -> DisableAccountResult:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        account = await staff.disable_account(info.context.viewer, account_id)
    except ServiceError as failure:
        return error_result(failure)
    return AccountDisabled(account=await account_type(account.id))
