from __future__ import annotations

from graph.context import Info
from portal.services import sessions


async def logout(info: Info) -> bool:
    viewer = info.context.viewer
    if viewer is None:
        return False
    return await sessions.logout(viewer)
