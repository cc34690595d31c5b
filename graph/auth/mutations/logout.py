from __future__ import annotations

from graph.context import Info
from portal.services.sessions import end_session


async def logout(info: Info) -> bool:
    viewer = info.context.viewer
    if viewer is None:
        return False
    return await end_session(viewer.session_id)
