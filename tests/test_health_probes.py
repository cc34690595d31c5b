"""Kubernetes-style probes: `/health/live` answers while the process and its
event loop do; `/health/ready` while the database answers, its migrations are
current and some mail worker's heartbeat is fresh. `/health` is unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette

from models import WorkerHeartbeat
from portal import health
from portal.app import create_app
from portal.mail.delivery import DeliveryWorker
from portal.settings import Settings
from tests.conftest import FrozenClock
from tests.test_errors_and_health import UNREACHABLE, break_database


async def test_live_answers_without_asking_the_database(
    monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    break_database(monkeypatch, UNREACHABLE)

    response = await http.get("/health/live")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_not_ready_while_no_mail_worker_has_a_heartbeat(http: httpx.AsyncClient) -> None:
    response = await http.get("/health/ready")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "migrations": "ok", "mail_worker": "missing"},
    }


async def test_ready_once_a_separate_mail_worker_beats(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    # A `portal deliver-mail` elsewhere: its rounds write its heartbeat.
    worker = DeliveryWorker(settings)
    worker.start()
    try:
        async with asyncio.timeout(30):
            while not await WorkerHeartbeat.exists(worker_id=worker.worker_id):
                await asyncio.sleep(0.05)
    finally:
        await worker.stop(deadline=asyncio.get_running_loop().time() + 5)

    response = await http.get("/health/ready")

    assert (response.status_code, response.json()["status"]) == (200, "ok")
    assert (await http.get("/health")).json()["checks"]["mail_worker"] == "off"  # unchanged


async def test_not_ready_when_the_heartbeat_is_stale(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await health.beat("elsewhere:1")
    assert (await http.get("/health/ready")).status_code == 200

    clock.advance(minutes=5)
    response = await http.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["mail_worker"] == "stale"


@pytest.fixture
async def newer_code(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    """This code, deployed before its migration ran: it knows one more."""
    known = health.expected_migrations()
    monkeypatch.setattr(health, "expected_migrations", lambda: known | {"0099_from_the_future"})
    newer = create_app(settings)  # the database is the suite's, connected already
    transport = httpx.ASGITransport(app=newer)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        yield client


async def test_not_ready_while_migrations_are_behind_the_code(
    newer_code: httpx.AsyncClient,
) -> None:
    await health.beat("elsewhere:1")

    response = await newer_code.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "behind",
        "mail_worker": "ok",
    }


async def test_not_ready_when_the_database_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    await health.beat("elsewhere:1")
    break_database(monkeypatch, UNREACHABLE)

    response = await http.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"


def test_every_migration_file_is_expected() -> None:
    expected = health.expected_migrations()

    assert "0001_initial" in expected and "0013_audit_chain_and_retention" in expected
    assert timedelta(0) < health.Readiness(Settings()).stale_after
