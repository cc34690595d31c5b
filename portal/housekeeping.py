"""Tidying that no request should pay for, run now and then by each serving
process. Every step is safe with several workers doing it at once: throttle
counters are deleted idempotently, audit rows are sealed under their chain's
head row (skipped when another process holds it), and retention deletes in
batches whose rows are locked `SKIP LOCKED`."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from portal.db import reading
from portal.services import audit_chain, retention, throttling
from portal.settings import Settings

logger = logging.getLogger("portal.housekeeping")
INTERVAL_SECONDS = 300.0
RETENTION_INTERVAL_SECONDS = 3600.0


async def tidy() -> None:
    """One round: throttle counters that expired."""
    async with reading() as reader:
        await throttling.prune(reader)


async def prune(settings: Settings) -> None:
    pruned = await retention.prune(settings)
    if pruned.total:
        logger.info(
            "retention pruned %d rows (%s)",
            pruned.total,
            ", ".join(f"{kind} {count}" for kind, count in pruned.counts.items() if count),
        )


async def seal() -> None:
    await audit_chain.seal()


async def _every(
    interval: float, step: Callable[[], Awaitable[None]], what: str, jitter: float = 0.0
) -> None:
    failing = False
    while True:
        # Spread over the interval, so workers started together do not all
        # run a step at the same moment.
        await asyncio.sleep(interval + random.uniform(0, jitter))  # noqa: S311 - not a secret
        try:
            await step()
        except Exception as problem:  # the database may be away; the next round tries again
            if not failing:
                logger.warning("%s failed (%s); trying again later", what, type(problem).__name__)
            failing = True
        else:
            failing = False


async def run_forever(settings: Settings | None = None, interval: float = INTERVAL_SECONDS) -> None:
    """Every housekeeping loop of a serving process, until cancelled."""
    loops = [_every(interval, tidy, "housekeeping")]
    if settings is not None:
        loops.append(
            _every(
                RETENTION_INTERVAL_SECONDS,
                lambda: prune(settings),
                "retention pruning",
                jitter=RETENTION_INTERVAL_SECONDS / 4,
            )
        )
        if settings.audit_seal_seconds:
            loops.append(_every(settings.audit_seal_seconds, seal, "sealing the audit trail"))
    await asyncio.gather(*loops)
