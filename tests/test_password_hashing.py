"""Password hashing runs beside the event loop: one thread per usable core, at
a lower priority than the loop, so a storm of sign-ins leaves requests their pace."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from portal.services import passwords
from portal.settings import Settings


@pytest.fixture
def default_pool(settings: Settings) -> Iterator[passwords.HashingThreads]:
    """The pool as configured when PORTAL_PASSWORD_HASH_THREADS is not set."""
    passwords.configure(
        Settings(secret_key=settings.secret_key, argon2_memory_kib=8, argon2_time_cost=1)
    )
    yield passwords._current().pool
    passwords.configure(settings)


def niceness_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_the_pool_has_one_thread_per_core_this_process_may_use(
    default_pool: passwords.HashingThreads,
) -> None:
    assert default_pool.size == len(os.sched_getaffinity(0))


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")
async def test_hashing_threads_run_below_the_event_loop(
    default_pool: passwords.HashingThreads,
) -> None:
    hashing_niceness = await default_pool.run(niceness_of_this_thread)

    assert hashing_niceness == min(niceness_of_this_thread() + 10, 19)
    assert await passwords.verify_password(await passwords.hash_password("x" * 12), "x" * 12)


async def test_only_hashes_made_otherwise_than_the_service_makes_them_are_rehashed() -> None:
    own = await passwords.hash_password("copper-lantern-meadow-2047")
    current = passwords._current().hasher
    other_cost = PasswordHasher(
        time_cost=current.time_cost + 1, memory_cost=current.memory_cost, parallelism=1
    )
    shorter_salt = PasswordHasher(
        time_cost=current.time_cost,
        memory_cost=current.memory_cost,
        parallelism=current.parallelism,
        salt_len=8,
    )

    assert not passwords.needs_rehash(own)
    assert passwords.needs_rehash(other_cost.hash("copper-lantern-meadow-2047"))
    assert passwords.needs_rehash(shorter_salt.hash("copper-lantern-meadow-2047"))


async def test_what_a_hashing_thread_raises_reaches_the_request_that_waits() -> None:
    threads = passwords.HashingThreads(1)

    with pytest.raises(ZeroDivisionError):
        await threads.run(lambda: 1 / 0)
    # The thread lives on for the next job.
    assert await threads.run(lambda: 6 * 7) == 42
    threads.shutdown()


async def test_a_request_given_up_on_leaves_the_threads_to_others() -> None:
    threads = passwords.HashingThreads(1)
    started, release = threading.Event(), threading.Event()

    def slow_hash() -> bool:
        started.set()
        return release.wait(5)

    abandoned = asyncio.create_task(threads.run(slow_hash))
    await asyncio.to_thread(started.wait, 5)

    abandoned.cancel()
    release.set()

    with pytest.raises(asyncio.CancelledError):
        await abandoned
    assert await threads.run(lambda: "next") == "next"
    threads.shutdown()
