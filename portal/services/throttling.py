"""Throttling kept in the database, so it holds across workers and hosts.

Two shapes:
- a lockout after consecutive failures (sign-in per practice + email): after
  `LOCKOUT_AFTER` failures each further one blocks for 1, 2, 4 … minutes, at
  most 15; a success clears it;
- a fixed-window count (per client address, per email for recovery).

Keys are stored as HMACs, so the table holds no email or address.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from models import ThrottleCounter
from portal import clock
from portal.services.emails import normalize_email
from portal.services.errors import RateLimited
from portal.services.tokens import keyed_hash
from portal.settings import Settings

THROTTLE_PURPOSE = "throttle"
LOCKOUT_AFTER = 10
FIRST_BLOCK = timedelta(minutes=1)
LONGEST_BLOCK = timedelta(minutes=15)
# A failure streak is forgotten after a day without failures.
STREAK_MEMORY = timedelta(days=1)
PRUNE_ONE_IN = 200


@dataclass(frozen=True)
class Window:
    limit: int
    length: timedelta


LOGIN_FAILURES_PER_IP = Window(limit=50, length=timedelta(minutes=15))
CODE_REQUESTS_PER_EMAIL = Window(limit=10, length=timedelta(hours=1))
CODE_REQUESTS_PER_IP = Window(limit=30, length=timedelta(hours=1))
CODE_CHECKS_PER_EMAIL = Window(limit=10, length=timedelta(minutes=15))
CODE_CHECKS_PER_IP = Window(limit=50, length=timedelta(hours=1))


def _key(settings: Settings, *parts: object) -> str:
    return keyed_hash(settings.secret_key, THROTTLE_PURPOSE, "\x1f".join(str(p) for p in parts))


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


async def _increment(key_hash: str, expires_at: datetime) -> ThrottleCounter:
    """Adds one to the counter atomically, creating it when missing and
    starting it again at one when it had expired."""
    now = clock.now()
    for _ in range(3):
        restarted = await ThrottleCounter.filter(key_hash=key_hash, expires_at__lte=now).update(
            count=1, blocked_until=None, expires_at=expires_at
        )
        if restarted:
            return await ThrottleCounter.get(key_hash=key_hash)
        updated = await ThrottleCounter.filter(key_hash=key_hash, expires_at__gt=now).update(
            count=F("count") + 1, expires_at=expires_at
        )
        if updated:
            return await ThrottleCounter.get(key_hash=key_hash)
        try:
            return await ThrottleCounter.create(key_hash=key_hash, count=1, expires_at=expires_at)
        except IntegrityError:
            continue  # another request created it first: increment theirs
    raise RuntimeError("throttle counter kept changing under us")


async def _prune_now_and_then(now: datetime) -> None:
    if secrets.randbelow(PRUNE_ONE_IN) == 0:
        await ThrottleCounter.filter(expires_at__lt=now).delete()


# --- lockout after consecutive failures ---


def login_key(settings: Settings, practice_slug: str, email: str) -> str:
    # The same normalisation as the account look-up: every spelling that
    # reaches one account shares one streak.
    return _key(settings, "login", practice_slug.strip().lower(), normalize_email(email))


async def ensure_not_locked(key_hash: str) -> None:
    now = clock.now()
    counter = await ThrottleCounter.get_or_none(key_hash=key_hash)
    if counter and counter.blocked_until and counter.blocked_until > now:
        raise RateLimited(_retry_after(counter.blocked_until, now))


async def record_failure(key_hash: str) -> None:
    now = clock.now()
    counter = await _increment(key_hash, now + STREAK_MEMORY)
    if counter.count >= LOCKOUT_AFTER:
        doublings = min(counter.count - LOCKOUT_AFTER, 10)
        block = min(FIRST_BLOCK * 2**doublings, LONGEST_BLOCK)
        await ThrottleCounter.filter(key_hash=key_hash).update(
            blocked_until=now + block, expires_at=now + block + STREAK_MEMORY
        )
    await _prune_now_and_then(now)


async def clear(key_hash: str) -> None:
    await ThrottleCounter.filter(key_hash=key_hash).delete()


# --- fixed windows ---


def _window_key(settings: Settings, window: Window, now: datetime, *parts: object) -> str:
    index = int(now.timestamp() // window.length.total_seconds())
    return _key(settings, *parts, index)


async def check_window(settings: Settings, window: Window, *parts: object) -> None:
    """Raises RateLimited when the window is already full, without counting."""
    now = clock.now()
    counter = await ThrottleCounter.get_or_none(key_hash=_window_key(settings, window, now, *parts))
    if counter is not None and counter.count >= window.limit:
        raise RateLimited(_window_retry_after(window, now))


async def count_in_window(
    settings: Settings, window: Window, *parts: object, raise_over: bool = True
) -> None:
    """Counts one attempt; raises RateLimited when it goes over the limit
    (unless `raise_over` is false: counting a failure already answered)."""
    now = clock.now()
    key_hash = _window_key(settings, window, now, *parts)
    counter = await _increment(key_hash, now + window.length * 2)
    await _prune_now_and_then(now)
    if raise_over and counter.count > window.limit:
        raise RateLimited(_window_retry_after(window, now))


def _window_retry_after(window: Window, now: datetime) -> int:
    seconds = window.length.total_seconds()
    return max(1, math.ceil(seconds - now.timestamp() % seconds))
