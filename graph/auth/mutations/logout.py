from __future__ import annotations

from graph import web_session
from graph.context import Info
from portal.services import sessions


async def logout(info: Info) -> bool:
    web_session.signed_out()
    viewer = info.context.viewer
    if viewer is None:
        return False
    return await sessions.logout(viewer)
