"""Throttling kept in the database, so it holds across workers and hosts.

Two shapes:
- a lockout after consecutive failures (sign-in per practice + email): after
  `LOCKOUT_AFTER` failures the key is blocked for 1 minute, and after each
  further failure for twice as long, at most 15; a success clears it;
- a fixed-window count (per client address, per email for recovery).

Keys are stored as HMACs, so the table holds no email or address.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address, ip_network

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from models import ThrottleCounter
from portal import clock
from portal.request_context import client_ip
from portal.services.emails import normalize_email
from portal.services.errors import RateLimited
from portal.services.practices import normalize_slug
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
    return _key(settings, "login", normalize_slug(practice_slug), normalize_email(email))


async def reserve_attempt(key_hash: str) -> None:
    """Takes one of the attempts the key may still make, before the attempt is
    judged, or raises RateLimited. Taking it up front, by one conditional
    UPDATE, is what stops a burst of parallel guesses from all getting through
    while the first ones are still being checked."""
    now = clock.now()
    for _ in range(4):
        if await ThrottleCounter.filter(key_hash=key_hash, expires_at__lte=now).update(
            count=1, remaining=LOCKOUT_AFTER - 1, blocked_until=None, expires_at=now + STREAK_MEMORY
        ):
            return  # the old streak was forgotten: this starts a new one
        if await ThrottleCounter.filter(
            key_hash=key_hash, remaining__gt=0, expires_at__gt=now
        ).update(
            count=F("count") + 1, remaining=F("remaining") - 1, expires_at=now + STREAK_MEMORY
        ):
            return
        counter = await ThrottleCounter.get_or_none(key_hash=key_hash)
        if counter is None:
            try:
                await ThrottleCounter.create(
                    key_hash=key_hash,
                    count=1,
                    remaining=LOCKOUT_AFTER - 1,
                    expires_at=now + STREAK_MEMORY,
                )
                return
            except IntegrityError:
                continue  # a parallel attempt created it: take from theirs
        if counter.blocked_until is None:
            # The last allowed attempts are still being checked.
            raise RateLimited(int(FIRST_BLOCK.total_seconds()))
        if counter.blocked_until > now:
            raise RateLimited(_retry_after(counter.blocked_until, now))
        # The block is over: one more attempt, granted once however many ask.
        await ThrottleCounter.filter(key_hash=key_hash, blocked_until=counter.blocked_until).update(
            blocked_until=None, remaining=1
        )
    raise RateLimited(int(FIRST_BLOCK.total_seconds()))


async def record_failure(key_hash: str) -> None:
    """After a failed attempt: when it was the last one allowed, the key is
    blocked for 1, 2, 4 … minutes (at most 15) as the streak grows."""
    now = clock.now()
    counter = await ThrottleCounter.get_or_none(key_hash=key_hash)
    if counter is None or counter.remaining > 0 or counter.blocked_until is not None:
        return
    doublings = min(max(counter.count - LOCKOUT_AFTER, 0), 10)
    block = min(FIRST_BLOCK * 2**doublings, LONGEST_BLOCK)
    await ThrottleCounter.filter(key_hash=key_hash, remaining=0, blocked_until__isnull=True).update(
        blocked_until=now + block, expires_at=now + block + STREAK_MEMORY
    )
    await _prune_now_and_then(now)


async def clear(key_hash: str) -> None:
    await ThrottleCounter.filter(key_hash=key_hash).delete()


# --- fixed windows ---


def address_block(address: str) -> str:
    """What a per-address limit counts: the address, or for IPv6 its /64,
    since one client commonly holds a whole /64."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def client_block() -> str:
    """The current request's client, as per-address limits count it."""
    return address_block(client_ip())


def _window_key(settings: Settings, window: Window, now: datetime, *parts: object) -> str:
    index = int(now.timestamp() // window.length.total_seconds())
    return _key(settings, *parts, index)


async def count_in_window(settings: Settings, window: Window, *parts: object) -> None:
    """Counts one attempt; raises RateLimited when it goes over the limit."""
    now = clock.now()
    key_hash = _window_key(settings, window, now, *parts)
    counter = await _increment(key_hash, now + window.length * 2)
    await _prune_now_and_then(now)
    if counter.count > window.limit:
        raise RateLimited(_window_retry_after(window, now))


async def refund_in_window(settings: Settings, window: Window, *parts: object) -> None:
    """Takes back an attempt counted up front that turned out well."""
    now = clock.now()
    key_hash = _window_key(settings, window, now, *parts)
    await ThrottleCounter.filter(key_hash=key_hash, count__gt=0).update(count=F("count") - 1)


def _window_retry_after(window: Window, now: datetime) -> int:
    seconds = window.length.total_seconds()
    return max(1, math.ceil(seconds - now.timestamp() % seconds))
