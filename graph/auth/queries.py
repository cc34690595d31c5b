from __future__ import annotations

from graph.auth.types import AccountType
from graph.context import Info
from models import Account


async def me(info: Info) -> AccountType | None:
    viewer = info.context.viewer
    if viewer is None:
        return None
    account = await Account.get(id=viewer.account_id)
    return AccountType.from_model(account)
