from __future__ import annotations

from graph.auth.types import AccountType
from graph.context import Info
from portal.services.accounts import get_account


async def me(info: Info) -> AccountType | None:
    viewer = info.context.viewer
    if viewer is None:
        return None
    return AccountType.from_model(await get_account(viewer.account_id))
