"""Tortoise's asyncpg backend, made to survive a database that goes away.

Named as the engine in `portal.db.tortoise_config`. Three things differ from
the stock backend:

- A transaction whose `BEGIN` fails gives its connection back and forgets it.
  Tortoise takes a connection and binds it to the task's context before
  `BEGIN`; when `BEGIN` fails the connection was never released and the task
  kept using it, so a long-lived task (the mail worker) failed every round
  from then on, and each request it happened to lost the pool a connection.
- Every wait has a bound: taking a connection from the pool, each statement
  on the client (a connection that went silent is given up), and giving a
  connection back (a broken one is closed instead of waited for).
- Failures that mean "the database cannot answer now" (refused, dropped,
  shutting down) are raised as `DatabaseUnavailable`, and "not in time" (a
  statement or lock timeout, no connection free) as `DatabaseBusy`; the API
  answers both with 503. Only the first says the database is away.

And a connection a request gives back clean is kept ready for the next one
(`PortalPostgresClient.keep`), still checked out of asyncpg's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    NestedTransactionContext,
    PoolConnectionWrapper,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.connection import connections

from portal.db import DatabaseBusy, DatabaseUnavailable, Sql, availability, statements

# The database answering, but not in time: a statement or lock timeout.
BUSY: tuple[type[BaseException], ...] = (asyncpg.QueryCanceledError, asyncpg.LockNotAvailableError)
# The database not answering at all: sockets refused, reset or silent
# (OSError, TimeoutError), a connection closed under us (asyncpg reports some
# of those as its own internal state errors), the server shutting down or not
# yet accepting connections, too many connections.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)


# Connections whose every statement since they were taken completed: giving
# them back needs no reset. Any other (a statement cancelled or failed
# mid-way, or a connection Tortoise used) gets asyncpg's reset, which also
# brings a connection left mid-protocol back in step with the server.
_CLEAN: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()
RESET_SESSION = "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;"


async def _reset_unless_clean(connection: asyncpg.Connection) -> None:
    """The pool's reset (asyncpg has rolled back any open transaction)."""
    if connection in _CLEAN:
        _CLEAN.discard(connection)
        return
    await connection.execute(RESET_SESSION)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    asked_at = time.monotonic()
    try:
        yield
    except DatabaseBusy:
        raise
    except DatabaseUnavailable as problem:
        availability.failed(problem)
        raise
    except BUSY as problem:
        raise DatabaseBusy(type(problem).__name__) from problem
    except UNAVAILABLE as problem:
        availability.failed(problem)
        raise DatabaseUnavailable(type(problem).__name__) from problem
    availability.answered(asked_at)


class PortalPostgresClient(AsyncpgDBClient):
    """The pool of one process; `acquire_timeout` comes from the credentials."""

    # A kept connection unused this long goes back to asyncpg's pool, whose
    # own idle limit then closes it: a burst does not hold its connections
    # open for good.
    READY_SECONDS = 30.0

    def __init__(self, acquire_timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.acquire_timeout = acquire_timeout
        # Connections given back clean (every statement on them completed),
        # still checked out of asyncpg's pool, each with when it was kept:
        # asyncpg's checkout and return (a proxy, a task and a timeout to
        # give it back, a timer to re-arm) were a tenth of a request's work.
        # Whatever takes a connection looks here first, so none waits on
        # asyncpg's pool while one lies here; the last kept is taken first.
        self._ready: deque[tuple[float, Any]] = deque()
        # Takers waiting on asyncpg's pool: a connection given back goes to
        # them, not here, or they would wait while it lies idle.
        self.waiting = 0
        self._closing = False

    def ready_count(self) -> int:
        """Connections kept ready (checked out of asyncpg's pool, idle)."""
        return len(self._ready)

    async def take_ready(self) -> Any:
        """A connection kept ready, or None."""
        while self._ready:
            _, connection = self._ready.pop()
            if _open(connection):
                return connection
            if connection._con is not None:
                await _release(self, connection)  # asyncpg's pool replaces it
        return None

    def keep(self, connection: Any) -> bool:
        """Keeps a connection given back clean for the next taker; False when
        it must go back to asyncpg's pool instead (someone waits there, the
        pool is closing, the connection is closed or inside a transaction)."""
        if self.waiting or self._closing or self._pool is None:
            return False
        if not _open(connection) or connection.is_in_transaction():
            return False
        now = time.monotonic()
        ready = self._ready
        ready.append((now, connection))
        if ready[0][0] < now - self.READY_SECONDS:
            _, unused = ready.popleft()
            # Given back outside the request keeping this one.
            task = asyncio.get_running_loop().create_task(_give_back_clean(self, unused))
            _releasing.add(task)
            task.add_done_callback(_releasing.discard)
        return True

    async def give_back_kept(self) -> None:
        """Gives every kept connection back to asyncpg's pool."""
        while self._ready:
            await _give_back_clean(self, self._ready.pop()[1])

    async def _close(self) -> None:
        # asyncpg's close waits for every checked-out connection to come back.
        self._closing = True
        try:
            await self.give_back_kept()
            await super()._close()
        finally:
            self._closing = False  # the pool is gone: nothing is kept until a new one

    async def _translate_exceptions(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        with _translated():
            return await super()._translate_exceptions(func, *args, **kwargs)

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        return await asyncpg.create_pool(None, reset=_reset_unless_clean, **kwargs)

    async def take_connection(self) -> Any:
        """A connection from the pool, waited for at most `acquire_timeout`
        (the same bound then applies to giving it back)."""
        assert self._pool is not None
        ready = await self.take_ready()
        if ready is not None:
            return ready
        self.waiting += 1
        try:
            return await self._pool.acquire(timeout=self.acquire_timeout)
        except TimeoutError:
            raise DatabaseBusy("no free connection") from None
        finally:
            self.waiting -= 1

    def acquire_connection(self) -> PoolConnectionWrapper:  # type: ignore[override]
        return _TimedPoolConnection(self, self._pool_init_lock)

    def _in_transaction(self) -> TransactionContext:
        return _PooledTransaction(_Transaction(self), self._pool_init_lock)


class _TimedPoolConnection(PoolConnectionWrapper):
    """A connection for one statement."""

    async def __aenter__(self) -> Any:
        assert isinstance(self.client, PortalPostgresClient)
        await self.ensure_connection()
        self.connection = await self.client.take_connection()
        return self.connection


class _Transaction(TransactionWrapper):
    """Statements inside a transaction; their failures are translated too."""

    async def _translate_exceptions(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        with _translated():
            return await super()._translate_exceptions(func, *args, **kwargs)

    async def commit(self) -> None:
        with _translated():
            await super().commit()

    async def rollback(self) -> None:
        with _translated():
            await super().rollback()

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(_Transaction(self))


class _PooledTransaction(TransactionContextPooled):
    async def __aenter__(self) -> Any:
        parent = self.client._parent
        assert isinstance(parent, PortalPostgresClient)
        with _translated():
            await self.ensure_connection()
            self.client._connection = await parent.take_connection()
        self.token = connections.set(self.connection_name, self.client)
        try:
            await self.client.begin()
        except BaseException:
            # __aexit__ does not run when __aenter__ fails: undo both here.
            connections.reset(self.token)
            await _release(parent, self.client._connection)
            raise
        return self.client


async def _release(client: PortalPostgresClient, connection: Any) -> None:
    # asyncpg closes a connection it cannot reset; nothing more to do if even that fails.
    with contextlib.suppress(Exception):
        if client._pool is not None:
            await client._pool.release(connection)


def _open(connection: Any) -> bool:
    """Whether a pooled connection (asyncpg's proxy) can still be used. When
    the connection behind it closes (the database went away), asyncpg
    returns it to the pool itself and detaches the proxy, whose every
    method then raises."""
    driver = connection._con
    return driver is not None and not driver.is_closed()


async def _give_back_clean(client: PortalPostgresClient, connection: Any) -> None:
    """Gives back a kept connection (no reset: it was given back clean)."""
    if connection._con is None:
        return  # closed meanwhile: asyncpg's pool has it back already
    _CLEAN.add(connection._con)
    await _release(client, connection)


# Tasks giving back connections kept too long (a reference, so none is
# collected mid-way).
_releasing: set[asyncio.Task[None]] = set()


class PostgresReader:
    """Statements on one connection, taken at the first and given back at the
    end of the `async with`. Every request runs this, so it is written for its
    cost: one object, the pool used directly (outside a transaction), no
    generator-based context managers."""

    dialect = "postgres"
    __slots__ = ("client", "connection", "given_back", "interrupted")

    def __init__(self, client: Any) -> None:
        self.client = client
        self.connection: Any = None
        # How this connection goes back: to the pool, or (in a transaction) nowhere.
        self.given_back: Any = None
        # Whether a statement ended other than by completing.
        self.interrupted = False

    async def __aenter__(self) -> PostgresReader:
        return self

    async def __aexit__(self, kind: Any, problem: Any, traceback: Any) -> None:
        if self.given_back is None:
            return
        give_back, self.given_back, self.connection = self.given_back, None, None
        try:
            with _translated():
                await give_back()
        except Exception:
            if problem is None:
                raise
            # What went wrong is the news; a connection that cannot be given
            # back is closed by asyncpg and replaced later.

    async def _take(self) -> Any:
        client = self.client
        if isinstance(client, PortalPostgresClient) and client._pool is not None:
            pool = client._pool
            connection = await client.take_ready()
            if connection is None:
                asked_at = time.monotonic()
                client.waiting += 1
                try:
                    # asyncio.timeout, not acquire(timeout=): no task per request.
                    async with asyncio.timeout(client.acquire_timeout):
                        connection = await pool.acquire()
                except TimeoutError:
                    raise DatabaseBusy("no free connection") from None
                except UNAVAILABLE as problem:
                    availability.failed(problem)
                    raise DatabaseUnavailable(type(problem).__name__) from problem
                finally:
                    client.waiting -= 1
                availability.answered(asked_at)

            async def release() -> None:
                if connection._con is None:
                    return  # it closed: asyncpg's pool has it back already
                if not self.interrupted:
                    if client.keep(connection):
                        return
                    # The driver's connection behind the pool's proxy.
                    _CLEAN.add(connection._con)
                # Bounded: a connection whose statement was cancelled (a
                # request that ran out of time) waits for the server to
                # confirm the cancel, and is closed if it does not in time.
                await pool.release(connection, timeout=client.acquire_timeout)

        else:  # in a transaction, or before the pool exists: Tortoise's way
            held = client.acquire_connection()
            with _translated():
                connection = await held.__aenter__()

            async def release() -> None:
                await held.__aexit__(None, None, None)

        self.connection, self.given_back = connection, release
        return connection

    async def fetch(self, sql: Sql, *args: Any) -> Any:
        connection = self.connection or await self._take()
        statements.debug(sql.text)
        try:
            with _translated():
                return await connection.fetch(sql.text, *args)
        except BaseException:
            self.interrupted = True
            raise

    async def execute(self, sql: Sql, *args: Any) -> int:
        connection = self.connection or await self._take()
        statements.debug(sql.text)
        try:
            with _translated():
                status = await connection.execute(sql.text, *args)
        except BaseException:
            self.interrupted = True
            raise
        # "UPDATE 3", "DELETE 0", "INSERT 0 1": the count is the last word.
        return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0


client_class = PortalPostgresClient
