from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graph.context import Info
from graph.execution.planner import FieldPlan
from graph.execution.specs import Request
from graph.portal.types import InvitationPreview, ResetLinkPreview
from portal.services import invitations, recovery


async def invitation(info: Info, token: str) -> InvitationPreview | None:
    preview = await invitations.preview_invitation(token, info.context.settings)
    if preview is None:
        return None
    return InvitationPreview(
        practice_name=preview.practice_name,
        email=preview.email,
        expires_at=preview.expires_at,
        usable=preview.usable,
    )


async def fetch_invitation(request: Request, args: Mapping[str, Any], selection: FieldPlan) -> Any:
    return await invitations.preview_invitation(args["token"], request.settings)


async def reset_link_max_days(info: Info) -> int | None:
    return info.context.settings.reset_link_max_days


async def fetch_reset_link_max_days(
    request: Request, args: Mapping[str, Any], selection: FieldPlan
) -> Any:
    return request.settings.reset_link_max_days


async def reset_link(info: Info, token: str) -> ResetLinkPreview | None:
    preview = await recovery.preview_reset_link(token, info.context.settings)
    if preview is None:
        return None
    return ResetLinkPreview(
        email=preview.email, expires_at=preview.expires_at, usable=preview.usable
    )


async def fetch_reset_link(request: Request, args: Mapping[str, Any], selection: FieldPlan) -> Any:
    return await recovery.preview_reset_link(args["token"], request.settings)
