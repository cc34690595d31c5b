"""The GraphQL HTTP endpoint: authenticates the bearer token into the context."""

from __future__ import annotations

import json
import re
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from graph.context import Context
from graph.schema import build_schema
from portal.http import RETRY_AFTER_SECONDS, error_body
from portal.request_context import current_request
from portal.services.sessions import viewer_for_token
from portal.settings import Settings


def bearer_token(request: Request | WebSocket) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class PortalGraphQL(GraphQL[Context, None]):
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide=None if settings.is_production else "graphiql",
            allow_queries_via_get=False,
        )
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as problem:
            # A request that cannot be run at all still answers in GraphQL's shape.
            response = JSONResponse(
                error_body(problem.reason, "BAD_USER_INPUT"), status_code=problem.status_code
            )
        await response(scope, receive, send)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        assert isinstance(request, Request)
        assert isinstance(response, Response)
        viewer = await viewer_for_token(bearer_token(request), self.settings)
        return Context(request=request, response=response, settings=self.settings, viewer=viewer)

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        try:
            data = await super().parse_http_body(request)
        except (AttributeError, TypeError):
            # A JSON body that is not an object ("s", 42, null).
            raise HTTPException(400, "The request body must be a JSON object.") from None
        if isinstance(data, GraphQLRequestData):
            if data.operation_name is not None and not (
                isinstance(data.operation_name, str) and _NAME.fullmatch(data.operation_name)
            ):
                raise HTTPException(400, "`operationName` must be a GraphQL name.")
            if not _is_unicode_text([data.query, data.variables]):
                # JSON allows "\ud800" (half a character); nothing below can store it.
                raise HTTPException(400, "The request holds text that is not valid Unicode.")
        info = current_request.get()
        if info is not None and isinstance(data, GraphQLRequestData) and data.operation_name:
            info.operation = data.operation_name
        return data

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        codes = []
        for error in response.get("errors") or []:
            if isinstance(error, dict):
                # Errors graphql-core raises itself (a malformed query, a wrong
                # argument type) carry no code; they are the caller's to fix.
                extensions = dict(error.get("extensions") or {})
                extensions.setdefault("code", "BAD_USER_INPUT")
                error["extensions"] = extensions
                codes.append(str(extensions["code"]))
                if self.settings.is_production:
                    error["message"] = _without_suggestions(str(error.get("message", "")))
        info = current_request.get()
        if info is not None and codes:
            info.outcome = "errors"
            info.error_codes = sorted(set(codes))
        return response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        info = current_request.get()
        if info is not None and "SERVICE_UNAVAILABLE" in info.error_codes:
            # The database was away: worth trying again, unlike the other errors.
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")


def _is_unicode_text(value: object) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_SUGGESTION = re.compile(r"\s*Did you mean .*$", re.DOTALL)


def _without_suggestions(message: str) -> str:
    """In production no message may hint at a field, argument or type name."""
    return _SUGGESTION.sub("", message)
