from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graph.auth.types import AccountType, Role
from graph.context import Info
from graph.errors import BadUserInput
from graph.execution.planner import FieldPlan
from graph.execution.specs import Request
from graph.patients.types import PageInfo
from graph.staff.types import AccountConnection, AccountEdge, PendingStaffInvitation
from portal.services import staff as service
from portal.services.errors import BadInput


async def staff(info: Info, first: int = 25, after: str | None = None) -> AccountConnection:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    try:
        page = await service.list_staff(info.context.viewer, first, after)
    except BadInput as bad:
        raise BadUserInput(str(bad)) from None
    edges = [
        AccountEdge(cursor=service.encode_cursor(row["id"]), node=AccountType.from_row(row))
        for row in page.accounts
    ]
    return AccountConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        total_count=page.total_count,
    )


async def fetch_staff(request: Request, args: Mapping[str, Any], selection: FieldPlan) -> Any:
    assert request.viewer is not None  # the plan has decided IsAdmin
    return await service.list_staff(
        request.viewer, args["first"], args.get("after"), reader=request.reader
    )


async def pending_staff_invitations(info: Info) -> list[PendingStaffInvitation] | None:
    assert info.context.viewer is not None  # guaranteed by IsAdmin
    rows = await service.list_pending_invitations(info.context.viewer)
    return [
        PendingStaffInvitation(
            email=row["email"],
            role=Role(row["role"]),
            invited_at=row["invited_at"],
            expires_at=row["expires_at"],
        )
        for row in rows
    ]


async def fetch_pending_staff_invitations(
    request: Request, args: Mapping[str, Any], selection: FieldPlan
) -> Any:
    assert request.viewer is not None  # the plan has decided IsAdmin
    return await service.list_pending_invitations(request.viewer, reader=request.reader)
