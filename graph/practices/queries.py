from __future__ import annotations

from graph.context import Info
from portal.services import practices


async def practice_name(info: Info, slug: str) -> str | None:
    return await practices.display_name(slug)
