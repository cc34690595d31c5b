from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graph.auth.types import AccountType, account_type
from graph.context import Info
from graph.execution.planner import FieldPlan
from graph.execution.specs import Request
from portal.services.accounts import account_row


async def me(info: Info) -> AccountType | None:
    viewer = info.context.viewer
    if viewer is None:
        return None
    return await account_type(viewer.account_id)


async def fetch_me(request: Request, args: Mapping[str, Any], selection: FieldPlan) -> Any:
    if request.viewer is None:
        return None
    return await account_row(request.viewer.account_id, request.reader)
