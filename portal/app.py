"""The ASGI application: GraphQL, health check, and the ORM's lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tortoise.connection import connections

from portal import db
from portal.http import Edge
from portal.logs import configure_logging
from portal.mail.delivery import run_delivery_loop
from portal.services import passwords
from portal.settings import Settings

logger = logging.getLogger("portal.app")


async def health(request: Request) -> JSONResponse:
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception as problem:  # any failure means "not healthy", whatever its kind
        logger.warning("health check failed: %s", type(problem).__name__)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings) -> Starlette:
    # Imported here so the core never depends on the API layer at import time.
    from graph.view import PortalGraphQL

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        passwords.configure(settings)
        async with db.connected(settings.database_url):
            if not settings.mail_worker:
                yield
                return
            stop = asyncio.Event()
            delivery = asyncio.create_task(run_delivery_loop(settings, stop))
            try:
                yield
            finally:
                stop.set()
                await delivery

    graphql = PortalGraphQL(settings)
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        middleware=[
            Middleware(Edge, settings=settings),  # type: ignore[arg-type]
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            ),
        ],
        lifespan=lifespan,
    )
    return app


def app_from_environment() -> Starlette:
    """Factory for `uvicorn --factory portal.app:app_from_environment`."""
    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(settings)
