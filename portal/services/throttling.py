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
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from ipaddress import ip_address, ip_network

from portal import clock
from portal.db import AS_DATETIME, Reader, Row, Sql, Write
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


def _sql(text: str) -> Sql:
    return Sql(text, types={"blocked_until": AS_DATETIME})


# One statement each, so a burst of parallel requests is counted exactly (the
# row is locked for the upsert) and a request pays one round trip per counter.
COUNT_IN_WINDOW = _sql(
    "INSERT INTO throttle_counter AS c (key_hash, count, remaining, expires_at)"
    " VALUES ($1, 1, 0, $3)"
    " ON CONFLICT (key_hash) DO UPDATE SET"
    " count = CASE WHEN c.expires_at <= $2 THEN 1 ELSE c.count + 1 END, expires_at = $3"
    " RETURNING count"
)
# Granted (a row returned) when the streak had expired, has attempts left, or
# its block is over (then exactly one attempt, however many ask at once).
RESERVE_ATTEMPT = _sql(
    "INSERT INTO throttle_counter AS c (key_hash, count, remaining, expires_at)"
    " VALUES ($1, 1, $2, $4)"
    " ON CONFLICT (key_hash) DO UPDATE SET"
    " count = CASE WHEN c.expires_at <= $3 THEN 1 ELSE c.count + 1 END,"
    " remaining = CASE WHEN c.expires_at <= $3 THEN $2"
    " WHEN c.remaining > 0 THEN c.remaining - 1 ELSE 0 END,"
    " blocked_until = NULL, expires_at = $4"
    " WHERE c.expires_at <= $3 OR c.remaining > 0 OR c.blocked_until <= $3"
    " RETURNING count, remaining"
)
BLOCKED_UNTIL = _sql("SELECT blocked_until FROM throttle_counter WHERE key_hash = $1")
BLOCK = _sql(
    "UPDATE throttle_counter SET blocked_until = $2, expires_at = $3"
    " WHERE key_hash = $1 AND remaining = 0 AND blocked_until IS NULL"
)
CLEAR = _sql(
    "UPDATE throttle_counter SET count = 0, remaining = $2, blocked_until = NULL"
    " WHERE key_hash = $1"
)
# A good sign-in: its streak starts again and its address gets back the
# attempt it was charged up front.
SETTLE_SIGN_IN = _sql(
    "UPDATE throttle_counter SET"
    " count = CASE WHEN key_hash = $1 THEN 0 ELSE count - 1 END,"
    " remaining = CASE WHEN key_hash = $1 THEN $3 ELSE remaining END,"
    " blocked_until = NULL"
    " WHERE key_hash = $1 OR (key_hash = $2 AND count > 0)"
)
REFUND_WINDOW = _sql(
    "UPDATE throttle_counter SET count = count - 1 WHERE key_hash = $1 AND count > 0"
)
PRUNE = _sql("DELETE FROM throttle_counter WHERE expires_at < $1")


@dataclass(frozen=True)
class Attempt:
    """An attempt taken from a streak: its place in the streak, and how many
    the streak may still make after it."""

    key_hash: str
    count: int
    remaining: int


async def prune(reader: Reader) -> int:
    """Deletes counters that expired (the housekeeping task calls it)."""
    return await reader.execute(PRUNE, clock.now())


# --- lockout after consecutive failures ---


def login_key(settings: Settings, practice_slug: str, email: str) -> str:
    # The same normalisation as the account look-up: every spelling that
    # reaches one account shares one streak.
    return login_key_of(settings, normalize_slug(practice_slug), normalize_email(email))


def login_key_of(settings: Settings, slug: str, address: str) -> str:
    """`login_key` of a slug and an address normalised already."""
    return _key(settings, "login", slug, address)


async def reserve_attempt(key_hash: str, reader: Reader) -> Attempt:
    """Takes one of the attempts the key may still make, before the attempt is
    judged, or raises RateLimited. Taking it up front, in one statement, is
    what stops a burst of parallel guesses from all getting through while the
    first ones are still being checked."""
    now = clock.now()
    taken = await reader.fetch(
        RESERVE_ATTEMPT, key_hash, LOCKOUT_AFTER - 1, now, now + STREAK_MEMORY
    )
    if taken:
        return Attempt(key_hash, count=taken[0]["count"], remaining=taken[0]["remaining"])
    found = await reader.fetch(BLOCKED_UNTIL, key_hash)
    raise _refusal(found[0]["blocked_until"] if found else None, now)


def _refusal(blocked_until: datetime | None, now: datetime) -> RateLimited:
    if blocked_until is None or blocked_until <= now:
        # The last allowed attempts are still being checked.
        return RateLimited(int(FIRST_BLOCK.total_seconds()))
    return RateLimited(_retry_after(blocked_until, now))


# `count_in_window` of a sign-in's address then, unless that refused,
# `reserve_attempt` of its streak, in one statement on PostgreSQL; with the
# streak's block as it stood, for a refusal.
TAKE_SIGN_IN_ATTEMPT = _sql(
    "WITH window_count AS ("
    " INSERT INTO throttle_counter AS c (key_hash, count, remaining, expires_at)"
    " VALUES ($1, 1, 0, $3)"
    " ON CONFLICT (key_hash) DO UPDATE SET"
    " count = CASE WHEN c.expires_at <= $2 THEN 1 ELSE c.count + 1 END, expires_at = $3"
    " RETURNING count),"
    " reserved AS ("
    " INSERT INTO throttle_counter AS c (key_hash, count, remaining, expires_at)"
    " SELECT $4, 1, $5, $6 FROM window_count WHERE window_count.count <= $7"
    " ON CONFLICT (key_hash) DO UPDATE SET"
    " count = CASE WHEN c.expires_at <= $2 THEN 1 ELSE c.count + 1 END,"
    " remaining = CASE WHEN c.expires_at <= $2 THEN $5"
    " WHEN c.remaining > 0 THEN c.remaining - 1 ELSE 0 END,"
    " blocked_until = NULL, expires_at = $6"
    " WHERE c.expires_at <= $2 OR c.remaining > 0 OR c.blocked_until <= $2"
    " RETURNING count, remaining)"
    " SELECT w.count AS window_count, r.count, r.remaining,"
    " (SELECT blocked_until FROM throttle_counter WHERE key_hash = $4) AS blocked_until"
    " FROM window_count w LEFT JOIN reserved r ON true"
)


@dataclass(frozen=True)
class SignInStart:
    """What `take_sign_in_attempt` found: the address's key (for the refund)
    and the attempt taken, or why none was; and the row of the read asked
    for beside it."""

    window_key: str
    attempt: Attempt | None
    refusal: RateLimited | None
    beside: Row | None


async def take_sign_in_attempt(
    settings: Settings, streak: str, reader: Reader, beside: Write | None = None
) -> SignInStart:
    """Counts a sign-in against its client's address (`count_in_window`),
    then takes an attempt of its streak (`reserve_attempt`), refused as they
    refuse. `beside`: a read of at most one row (the account signing in),
    which on PostgreSQL goes in the same statement."""
    window = LOGIN_FAILURES_PER_IP
    if reader.dialect != "postgres":
        found = await reader.fetch(beside[0], *beside[1]) if beside is not None else []
        row = found[0] if found else None
        try:
            window_key = await count_in_window(
                settings, window, "login-ip", client_block(), reader=reader
            )
            attempt = await reserve_attempt(streak, reader)
        except RateLimited as refusal:
            return SignInStart("", None, refusal, row)
        return SignInStart(window_key, attempt, None, row)
    now = clock.now()
    window_key = _window_key(settings, window, now, "login-ip", client_block())
    sql, extra = (TAKE_SIGN_IN_ATTEMPT, ()) if beside is None else (_with(beside[0]), beside[1])
    [taken] = await reader.fetch(
        sql,
        window_key,
        now,
        now + window.length * 2,
        streak,
        LOCKOUT_AFTER - 1,
        now + STREAK_MEMORY,
        window.limit,
        *extra,
    )
    row = taken if beside is not None and taken["beside_found"] else None
    if taken["window_count"] > window.limit:
        return SignInStart(window_key, None, RateLimited(_window_retry_after(window, now)), row)
    if taken["count"] is None:
        return SignInStart(window_key, None, _refusal(taken["blocked_until"], now), row)
    attempt = Attempt(streak, count=taken["count"], remaining=taken["remaining"])
    return SignInStart(window_key, attempt, None, row)


_TAKEN_COUNT = 7
_with_cache: dict[int, tuple[Sql, Sql]] = {}


def _with(read: Sql) -> Sql:
    """TAKE_SIGN_IN_ATTEMPT with `read` (its placeholders shifted past the
    statement's own) left-joined: its columns, and `beside_found`."""
    known = _with_cache.get(id(read))
    if known is not None:
        return known[1]
    shifted = re.sub(r"\$(\d+)", lambda m: f"${int(m.group(1)) + _TAKEN_COUNT}", read.text)
    tail = " FROM window_count w LEFT JOIN reserved r ON true"
    assert TAKE_SIGN_IN_ATTEMPT.text.endswith(tail)
    # Both statements are this code's own constants: nothing of a request's.
    joined = (
        f" LEFT JOIN (SELECT *, true AS beside_found FROM ({shifted}) AS read) AS beside ON true"  # noqa: S608
    )
    text = TAKE_SIGN_IN_ATTEMPT.text[: -len(tail)] + ", beside.*" + tail + joined
    combined = Sql(text, types={**TAKE_SIGN_IN_ATTEMPT.types, **read.types})
    _with_cache[id(read)] = (read, combined)
    return combined


async def record_failure(attempt: Attempt, reader: Reader) -> None:
    """After a failed attempt: when it was the last one allowed, the key is
    blocked for 1, 2, 4 … minutes (at most 15) as the streak grows."""
    if attempt.remaining > 0:
        return
    now = clock.now()
    doublings = min(max(attempt.count - LOCKOUT_AFTER, 0), 10)
    block = min(FIRST_BLOCK * 2**doublings, LONGEST_BLOCK)
    await reader.execute(BLOCK, attempt.key_hash, now + block, now + block + STREAK_MEMORY)


async def clear(key_hash: str, reader: Reader) -> None:
    """A success: the streak starts again."""
    await reader.execute(CLEAR, key_hash, LOCKOUT_AFTER)


def refund_window(window_key: str) -> Write:
    """The write that gives an address back the attempt it was charged up front."""
    return (REFUND_WINDOW, (window_key,))


def settle_sign_in(streak: str, window_key: str) -> Write:
    """The write of a good sign-in: `clear` of its streak, and the attempt its
    address was charged up front given back."""
    return (SETTLE_SIGN_IN, (streak, window_key, LOCKOUT_AFTER))


# --- fixed windows ---


# Every sign-in asks; clients come back from the same few addresses.
@lru_cache(maxsize=4096)
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


async def count_in_window(
    settings: Settings, window: Window, *parts: object, reader: Reader
) -> str:
    """Counts one attempt, and returns the counter's key for a refund; raises
    RateLimited when it goes over the limit."""
    now = clock.now()
    key_hash = _window_key(settings, window, now, *parts)
    counted = await reader.fetch(COUNT_IN_WINDOW, key_hash, now, now + window.length * 2)
    if counted[0]["count"] > window.limit:
        raise RateLimited(_window_retry_after(window, now))
    return key_hash


def _window_retry_after(window: Window, now: datetime) -> int:
    seconds = window.length.total_seconds()
    return max(1, math.ceil(seconds - now.timestamp() % seconds))
