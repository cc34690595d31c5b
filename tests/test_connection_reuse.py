"""A connection a request gives back clean is kept ready for the next one
(`portal.postgres`), still checked out of asyncpg's pool: nobody may wait on
the pool while one lies there, one kept unused goes back, and closing gives
every kept one back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from starlette.applications import Starlette
from tortoise.connection import connections

from portal import db, gauges
from portal.db import Sql, reading
from portal.postgres import PortalPostgresClient, PostgresReader
from portal.settings import Settings
from tests.processes import postgres_only

pytestmark = postgres_only

BACKEND = Sql("SELECT pg_backend_pid() AS pid")


@pytest.fixture
async def pooled(app: Starlette) -> PortalPostgresClient:
    """The app's client, with nothing kept from earlier tests."""
    client = connections.get("default")
    assert isinstance(client, PortalPostgresClient)
    await client.give_back_kept()
    return client


def pool_of(client: PortalPostgresClient) -> asyncpg.Pool:
    assert client._pool is not None
    return client._pool


async def backend_of_a_reader() -> int:
    async with reading() as reader:
        [row] = await reader.fetch(BACKEND)
    return int(row["pid"])


async def test_a_reader_takes_the_connection_the_last_one_gave_back(
    pooled: PortalPostgresClient,
) -> None:
    client = pooled
    idle_before = pool_of(client).get_idle_size()

    first = await backend_of_a_reader()
    kept = client.ready_count()
    second = await backend_of_a_reader()

    assert first == second
    assert kept == 1 == client.ready_count()
    # Kept out of asyncpg's pool, yet not counted as in use.
    assert pool_of(client).get_idle_size() == idle_before - 1
    assert gauges.pool_in_use() == 0


async def test_a_reader_waiting_on_a_full_pool_gets_the_next_connection_given_back(
    pooled: PortalPostgresClient,
) -> None:
    # Given every connection of the pool held by a reader
    client = pooled
    held = [PostgresReader(client) for _ in range(pool_of(client).get_max_size())]
    for reader in held:
        await reader.fetch(BACKEND)
    assert client.ready_count() == 0

    # When one more reader asks, and the others give theirs back one by one
    waiting = asyncio.create_task(backend_of_a_reader())
    while not client.waiting:
        await asyncio.sleep(0)
    for reader in held:
        await reader.__aexit__(None, None, None)

    # Then the waiting reader got one (kept ones would have left it waiting
    # until its time ran out, DatabaseBusy), and the rest are kept.
    assert await waiting > 0
    assert client.waiting == 0
    assert client.ready_count() == len(held)


async def test_a_connection_kept_unused_goes_back_to_the_pool(
    pooled: PortalPostgresClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = pooled
    async with reading() as first, reading() as second:
        await first.fetch(BACKEND)
        await second.fetch(BACKEND)
    assert client.ready_count() == 2
    idle_before = pool_of(client).get_idle_size()

    # Once a kept connection waited too long, the next one kept sends it back.
    monkeypatch.setattr(client, "READY_SECONDS", -1.0)
    await backend_of_a_reader()
    for _ in range(100):  # given back by a task of its own
        if pool_of(client).get_idle_size() > idle_before:
            break
        await asyncio.sleep(0.01)

    assert client.ready_count() == 1
    assert pool_of(client).get_idle_size() == idle_before + 1


async def test_a_kept_connection_the_server_ended_is_passed_over(
    pooled: PortalPostgresClient, settings: Settings
) -> None:
    # Given a kept connection that the server ends (a restart, an operator)
    client = pooled
    ended = await backend_of_a_reader()
    size = pool_of(client).get_size()
    admin = await asyncpg.connect(settings.database_url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", ended)
    finally:
        await admin.close()
    for _ in range(200):  # asyncpg notices when the socket closes
        if pool_of(client).get_size() < size:
            break
        await asyncio.sleep(0.01)
    assert pool_of(client).get_size() < size

    # When the next reader comes, then it gets a connection that works
    assert await backend_of_a_reader() != ended
    assert client.ready_count() == 1


@pytest.fixture
async def own_client(settings: Settings) -> AsyncIterator[PortalPostgresClient]:
    config: Any = db.tortoise_config(settings.database_url, pool_size=2)
    client = PortalPostgresClient(
        connection_name="reuse-test", **config["connections"]["default"]["credentials"]
    )
    await client.create_connection(with_db=True)
    try:
        yield client
    finally:
        await client.close()


async def test_closing_gives_back_the_kept_connections(
    app: Starlette, own_client: PortalPostgresClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a connection kept ready
    async with PostgresReader(own_client) as reader:
        await reader.fetch(BACKEND)
    assert own_client.ready_count() == 1
    pool = pool_of(own_client)
    terminated: list[asyncpg.Pool] = []

    def terminate(pool: asyncpg.Pool) -> None:
        terminated.append(pool)

    monkeypatch.setattr(asyncpg.Pool, "terminate", terminate)

    # When the client closes
    await own_client.close()

    # Then asyncpg's pool closed gracefully (it waits for every connection
    # checked out, then gives up and terminates them), and keeps nothing more.
    assert own_client.ready_count() == 0
    assert terminated == []
    assert pool._closed
    assert own_client.keep(object()) is False
