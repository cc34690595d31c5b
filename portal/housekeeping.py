"""Tidying that no request should pay for, run now and then by each serving
process. Every step is idempotent, so several workers doing it is harmless."""

from __future__ import annotations

import asyncio
import logging

from portal.db import reading
from portal.services import throttling

logger = logging.getLogger("portal.housekeeping")
INTERVAL_SECONDS = 300.0


async def tidy() -> None:
    """One round: throttle counters that expired."""
    async with reading() as reader:
        await throttling.prune(reader)


async def run_forever(interval: float = INTERVAL_SECONDS) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await tidy()
        except Exception as problem:  # the database may be away; the next round tries again
            logger.warning("housekeeping failed (%s); trying again later", type(problem).__name__)
