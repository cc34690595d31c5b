"""Password hashing (argon2id) and the password policy, used by every flow that sets one.

Both argon2 and the strength estimate are CPU work: they run in a small bounded
thread pool so a burst of sign-ins cannot stall the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from models import Patient, Practice
from portal import metrics
from portal.services.errors import PasswordMismatch, WeakPassword
from portal.settings import Settings

MIN_LENGTH = 12
MAX_LENGTH = 128
# zxcvbn's matching grows fast with length; a long passphrase whose first 64
# characters are strong is strong.
STRENGTH_CHECKED_PREFIX = 64
MIN_STRENGTH_SCORE = 3

T = TypeVar("T")


@dataclass
class PasswordHashing:
    hasher: PasswordHasher
    pool: HashingThreads
    dummy_hash: str
    # A hash spelled as this hasher spells its own (parameters, then salt and
    # digest of the same lengths) has its parameters: no rehash.
    own_parameters: str
    own_lengths: tuple[int, int]


_hashing: PasswordHashing | None = None


def configure(settings: Settings) -> None:
    """Sets the argon2 parameters and the size of the thread pool."""
    global _hashing
    if _hashing is not None:
        _hashing.pool.shutdown()
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    # Made at start-up, so even the first unknown email costs one verify.
    dummy_hash = hasher.hash(secrets.token_urlsafe(16))
    parameters, salt, digest = dummy_hash.rsplit("$", 2)
    _hashing = PasswordHashing(
        hasher=hasher,
        pool=HashingThreads(settings.password_hash_threads or usable_cores()),
        dummy_hash=dummy_hash,
        own_parameters=parameters,
        own_lengths=(len(salt), len(digest)),
    )


def usable_cores() -> int:
    """The cores this process may run on (a container's or `taskset`'s limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Hashing threads run at a lower priority (10 steps nicer than the process;
# Linux schedules threads one by one): a storm of sign-ins then takes the CPU
# the event loop leaves over, and signed-in requests keep their pace.
HASH_THREAD_NICENESS = 10
NICEST = 19


def _yield_to_the_event_loop() -> None:
    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + HASH_THREAD_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, NICEST))


class HashingThreads:
    """The threads that hash, beside the event loop, taking jobs in turn.

    Not a ThreadPoolExecutor: a job here settles its asyncio future itself,
    with no concurrent.futures.Future (and its locks and callbacks) between.
    While a core hashes, the event loop's share of it is what a sign-in costs
    beyond the hash, and the hop to a thread and back was a good part of it.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"password-{number}", daemon=True)
            for number in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def _serve(self) -> None:
        _yield_to_the_event_loop()
        while (job := self._jobs.get()) is not None:
            job()

    async def run(self, work: Callable[[], T]) -> T:
        """`work()` on one of the threads; its result, or what it raised."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()

        def job() -> None:
            try:
                result = work()
            except BaseException as problem:  # handed to the awaiting task
                _hand_back(loop, _fail, done, problem)
            else:
                _hand_back(loop, _succeed, done, result)

        self._jobs.put(job)
        return await done

    def shutdown(self) -> None:
        """The threads finish the jobs already queued, then end."""
        for _ in self._threads:
            self._jobs.put(None)


def _hand_back(loop: asyncio.AbstractEventLoop, settle: Callable[..., None], *args: Any) -> None:
    # A loop closed since (a test's, at its end) has nobody waiting.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle, *args)


def _succeed(done: asyncio.Future[T], result: T) -> None:
    if not done.done():  # the request may have been cancelled meanwhile
        done.set_result(result)


def _fail(done: asyncio.Future[Any], problem: BaseException) -> None:
    if not done.done():
        done.set_exception(problem)


def _current() -> PasswordHashing:
    if _hashing is None:
        raise RuntimeError("passwords.configure(settings) was not called")
    return _hashing


async def _in_pool(work: Callable[[], T]) -> T:
    return await _current().pool.run(work)


HASH_SECONDS = metrics.PASSWORD_HASH_SECONDS.labels("hash")
VERIFY_SECONDS = metrics.PASSWORD_HASH_SECONDS.labels("verify")


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


async def hash_password(password: str) -> str:
    hasher = _current().hasher
    normalized = normalize(password)
    started = time.perf_counter()
    hashed = await _in_pool(lambda: hasher.hash(normalized))
    HASH_SECONDS.observe(time.perf_counter() - started)
    return hashed


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches. With no hash, verifies against a dummy
    hash anyway so an unknown account costs the same time as a known one."""
    hashing = _current()
    known = password_hash is not None
    password_hash = password_hash if password_hash is not None else hashing.dummy_hash
    normalized = normalize(password)

    def verify() -> bool:
        try:
            return hashing.hasher.verify(password_hash, normalized)
        except (VerificationError, InvalidHashError):
            return False

    started = time.perf_counter()
    matches = await _in_pool(verify)
    VERIFY_SECONDS.observe(time.perf_counter() - started)
    return matches and known


def needs_rehash(password_hash: str) -> bool:
    hashing = _current()
    parameters, _, rest = password_hash.rpartition("$")
    parameters, _, salt = parameters.rpartition("$")
    # Every sign-in asks; argon2's own check parses the whole hash.
    if parameters == hashing.own_parameters and (len(salt), len(rest)) == hashing.own_lengths:
        return False
    return hashing.hasher.check_needs_rehash(password_hash)


async def check_policy(password: str, context: Iterable[str | None]) -> str:
    """Returns the normalised password, or raises WeakPassword saying why.

    `context` holds the account's own details (email, names, practice): a
    password built from them is guessable by anyone who knows the person.
    """
    normalized = normalize(password)
    if len(normalized) < MIN_LENGTH:
        raise WeakPassword(f"Use at least {MIN_LENGTH} characters.", field="password")
    if len(normalized) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.", field="password")
    words = _context_words(context)
    # zxcvbn alone rates "gracehopper2024" strong even knowing the names, so
    # the account's own words are taken out and what is left must be strong.
    remainder = normalized.casefold()
    for word in sorted(words, key=len, reverse=True):
        remainder = remainder.replace(word, "")
    candidate = remainder[:STRENGTH_CHECKED_PREFIX]
    if not candidate:
        raise WeakPassword(
            "This password is made of your own details. Try a phrase of unrelated words.",
            field="password",
        )
    user_inputs = sorted(words)
    result = await _in_pool(
        lambda: zxcvbn(candidate, user_inputs=user_inputs, max_length=MAX_LENGTH)
    )
    if result["score"] < MIN_STRENGTH_SCORE:
        warning = result["feedback"].get("warning") or "This password is easy to guess."
        raise WeakPassword(
            f"{warning} Try a longer phrase of several unrelated words.", field="password"
        )
    return normalized


def own_details(
    email: str | None, practice: Practice, patient: Patient | None = None
) -> list[str | None]:
    """What a password must not be built from: the account's email, its
    practice, and for a patient their names and profile email."""
    details = [email, practice.name, practice.slug]
    if patient is not None:
        details += [patient.first_name, patient.last_name, patient.email]
    return details


async def new_password_hash(password: str, confirmation: str, details: Iterable[str | None]) -> str:
    """The argon2 hash of a new password typed twice, once it meets the policy."""
    if password != confirmation:
        raise PasswordMismatch()
    return await hash_password(await check_policy(password, details))


def _context_words(context: Iterable[str | None]) -> set[str]:
    words: set[str] = set()
    for item in context:
        if not item:
            continue
        lowered = item.strip().casefold()
        words.add(lowered)
        for separator in "@.-_+ ":
            lowered = lowered.replace(separator, " ")
        words.update(part for part in lowered.split() if len(part) >= 3)
    return words
