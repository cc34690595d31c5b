from __future__ import annotations

from graph.context import Info
from graph.portal.types import InvitationPreview
from portal.services import invitations


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
