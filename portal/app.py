"""The ASGI application: GraphQL, health check, and the ORM's lifecycle."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from portal import db, gauges, housekeeping, metrics, webapp
from portal.health import Readiness
from portal.http import STATIC_DIRECTORY, Edge, error_body
from portal.lifecycle import Shutdown, watch_stop_signals
from portal.logs import configure_logging
from portal.mail.delivery import DeliveryWorker
from portal.services import audit_chain, devices, passwords
from portal.settings import Settings

logger = logging.getLogger("portal.app")

# /health waits no longer than this for the database, connection included.
HEALTH_DATABASE_SECONDS = 1.0
# How long start-up waits to learn whether the database answers.
STARTUP_PROBE_SECONDS = 5.0


async def _database_answers(seconds: float) -> bool:
    asked_at = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            await db.ping()
    except (TimeoutError, db.DatabaseBusy):
        return False  # slow or out of connections: not necessarily away
    except Exception as problem:  # any other failure means "not answering", whatever its kind
        db.availability.failed(problem)
        return False
    db.availability.answered(asked_at)
    return True


def create_app(settings: Settings, watch_signals: bool = False) -> Starlette:
    """The service. `watch_signals` (under `portal serve` only) starts the
    graceful shutdown the moment SIGTERM arrives, not after requests drain."""
    # Imported here so the core never depends on the API layer at import time.
    from graph.view import GraphQLEndpoint

    shutdown = Shutdown(settings.shutdown_grace_seconds)
    mail_worker: DeliveryWorker | None = None

    readiness = Readiness(settings)

    async def live(request: Request) -> JSONResponse:
        # Answered by the event loop itself: a loop that is stuck answers nothing.
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> JSONResponse:
        checks = {"database": "unavailable", "migrations": "unknown", "mail_worker": "unknown"}
        if await _database_answers(HEALTH_DATABASE_SECONDS):
            checks["database"] = "ok"
            try:
                async with asyncio.timeout(HEALTH_DATABASE_SECONDS):
                    checks["migrations"] = await readiness.migrations()
                    if mail_worker is not None:
                        checks["mail_worker"] = mail_worker.status()
                    else:
                        checks["mail_worker"] = await readiness.mail_heartbeat()
            except Exception:  # slow or away since the ping: not ready, whatever it was
                checks["database"] = "unavailable"
        if shutdown.requested:
            status = "stopping"
        elif all(value == "ok" for value in checks.values()):
            status = "ok"
        else:
            status = "unavailable"
        return JSONResponse(
            {"status": status, "checks": checks}, status_code=200 if status == "ok" else 503
        )

    async def health(request: Request) -> JSONResponse:
        checks = {
            "database": "ok" if await _database_answers(HEALTH_DATABASE_SECONDS) else "unavailable",
            "mail_worker": mail_worker.status() if mail_worker is not None else "off",
        }
        if shutdown.requested:
            status = "stopping"
        elif checks["database"] == "ok" and checks["mail_worker"] in ("ok", "off"):
            status = "ok"
        else:
            status = "unavailable"
        return JSONResponse(
            {"status": status, "checks": checks}, status_code=200 if status == "ok" else 503
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal mail_worker
        passwords.configure(settings)
        audit_chain.configure(settings)
        await asyncio.to_thread(devices.warm_up)
        restore_signals = watch_stop_signals(shutdown) if watch_signals else None
        db.availability.watch()
        async with db.connected(settings):
            # Serving without the database is allowed (it answers 503 and
            # recovers by itself); the log says so once, right away.
            if not await _database_answers(STARTUP_PROBE_SECONDS):
                db.availability.failed(TimeoutError())
            if settings.mail_worker:
                mail_worker = DeliveryWorker(settings)
                shutdown.on_request(mail_worker.stopping.set)
                mail_worker.start()
            tidying = asyncio.create_task(housekeeping.run_forever(settings))
            sampling = (
                asyncio.create_task(gauges.run_forever())
                if settings.metrics_address is not None
                else None
            )
            try:
                yield
            finally:
                tidying.cancel()
                if sampling is not None:
                    sampling.cancel()
                    metrics.process_ended()
                deadline = shutdown.begin()
                if mail_worker is not None:
                    await mail_worker.stop(deadline)
                if restore_signals is not None:
                    restore_signals()

    async def http_error(request: Request, problem: Exception) -> JSONResponse:
        assert isinstance(problem, HTTPException)
        return JSONResponse(
            error_body(
                problem.detail,
                "BAD_USER_INPUT" if problem.status_code < 500 else "INTERNAL_SERVER_ERROR",
            ),
            status_code=problem.status_code,
            headers=problem.headers,
        )

    graphql = GraphQLEndpoint(settings)
    app = PortalApp(
        Edge(graphql, settings, shutdown),  # type: ignore[arg-type]
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/health/live", live, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC_DIRECTORY), name="static"),
            *webapp.routes(),
        ],
        middleware=[
            Middleware(Edge, settings=settings, shutdown=shutdown),  # type: ignore[arg-type]
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            ),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    return app


class PortalApp(Starlette):
    """Starlette, with one short cut: a plain `POST /graphql` (no Origin, so
    no CORS to answer) goes from the edge straight to the endpoint, past the
    router and middleware that have nothing to do for it."""

    def __init__(self, direct: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.direct = direct

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/graphql"
            and not any(name == b"origin" for name, _ in scope["headers"])
        ):
            await self.direct(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def app_from_environment() -> Starlette:
    """Factory for `uvicorn --factory portal.app:app_from_environment`."""
    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(settings, watch_signals=True)
