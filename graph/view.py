"""The GraphQL HTTP endpoint: a compiled plan when the request has one, the
standard (Strawberry) executor for everything else; both authenticate the
bearer token into their context."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, located_error, parse
from graphql.execution.values import VariableValues
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from graph import second_factor, trusted, web_documents, web_session
from graph.context import Context
from graph.execution.planner import OperationPlan, Planner
from graph.execution.runner import MutationFailed, run, run_mutation
from graph.execution.specs import NotCompiled
from graph.execution.specs import Request as ExecutionRequest
from graph.schema import MaskUnexpectedErrors, PortalSchema, build_schema, is_expected
from portal import metrics
from portal.db import reading
from portal.http import RETRY_AFTER_SECONDS, STATIC_DIRECTORY, error_body, send_json
from portal.request_context import WebSession, current_request
from portal.services.sessions import (
    ViewerChanged,
    Vouching,
    recent_viewer,
    token_key,
    viewer_for_token,
)
from portal.settings import Settings, SettingsError


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

    @property
    def graphql_ide_html(self) -> str:
        # Strawberry's page loads GraphiQL from a CDN; ours from the service.
        return GRAPHIQL_PAGE.read_text()

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        assert isinstance(request, Request)
        assert isinstance(response, Response)
        state = request.scope.get("state", {})
        if "viewer" in state:
            viewer = state["viewer"]  # looked up already by the compiled path
        else:
            viewer = await viewer_for_token(web_session.session_token(request.scope), self.settings)
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
        errors = response.get("errors")
        if errors:
            response["errors"] = self.worded(list(errors))
        return response

    def formatted_errors(self, errors: list[GraphQLError]) -> list[dict[str, Any]]:
        """Errors as `process_result` writes them (for compiled mutations)."""
        return self.worded([error.formatted for error in errors])

    def worded(self, errors: list[Any]) -> list[Any]:
        codes = []
        for error in errors:
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
        return errors

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
GRAPHIQL_PAGE = STATIC_DIRECTORY / "graphiql" / "index.html"


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


class GraphQLEndpoint:
    """POST /graphql tries a compiled plan first (`graph.execution`); whatever
    a plan cannot answer exactly goes to the standard executor, with the body
    already read handed on as it came."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.standard = PortalGraphQL(settings)
        self.planner = Planner(self.standard.schema._schema, settings)  # type: ignore[attr-defined]
        self.trusted = trusted.with_web_app(
            trusted.load(settings.trusted_documents, enforced=settings.is_production),
            web_documents.MANIFEST,
        )
        for key, document in self.trusted.by_id.items():
            if not self.planner.pin(key, document):
                raise SettingsError(
                    f"PORTAL_TRUSTED_DOCUMENTS: {key} is not valid against this schema"
                )
            # Their operation names are the metrics' labels; with the
            # operator's manifest, no other name is.
            metrics.trust_operation_names(
                {
                    definition.name.value
                    for definition in parse(document).definitions
                    if isinstance(definition, OperationDefinitionNode) and definition.name
                },
                only=settings.trusted_documents is not None,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.standard(scope, receive, send)
            return
        try:
            session = web_session.web_session(scope, self.settings)
        except web_session.CrossOrigin:
            await _refuse(send, web_session.REFUSAL, "FORBIDDEN", status=403)
            return
        scope.setdefault("state", {})["web_session"] = session
        if session is not None:
            send = _setting_cookie(send, session)
            info = current_request.get()
            if info is not None:
                info.web = session
        body = await _body(receive)
        payload = _json_object(body)
        if payload is not None and "documentId" in payload:
            document = self.trusted.find(payload.pop("documentId"))
            if document is None:
                await _refuse(send, NO_SUCH_DOCUMENT, PERSISTED_DOCUMENT_NOT_FOUND)
                return
            if payload.get("query") not in (None, document):
                await _refuse(send, "Send `query` or `documentId`, not both.", "BAD_USER_INPUT")
                return
            payload["query"] = document
            body = orjson.dumps(payload)
        elif self.trusted.enforced and not (
            payload is not None
            and isinstance(payload.get("query"), str)
            and self.trusted.trusts(payload["query"])
        ):
            await _refuse(send, ONLY_TRUSTED_DOCUMENTS, PERSISTED_DOCUMENT_NOT_FOUND)
            return
        answer = None
        if payload is not None and self.settings.compiled_execution:
            answer = await self.compiled(scope, payload)
        info = current_request.get()
        if info is not None:
            info.executor = "standard" if answer is None else "compiled"
        if answer is None:
            await self.standard(scope, _replay(body), send)
            return
        await send_json(send, *answer)

    async def compiled(
        self, scope: Scope, payload: dict[str, Any]
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """The response of a compiled plan (status, body, headers), or None
        for the standard executor."""
        query, name = payload.get("query"), payload.get("operationName")
        variables = payload.get("variables") or {}
        if not isinstance(query, str) or not isinstance(variables, dict):
            return None
        if not isinstance(payload.get("extensions") or {}, dict):
            return None
        if name is not None and not isinstance(name, str):
            return None
        prepared = self.planner.prepare(query)
        operation = prepared.operation(name) if prepared is not None else None
        if prepared is None or operation is None:
            return None
        if name is None and operation.name is not None:
            info = current_request.get()
            if info is not None:
                info.named_in_document = operation.name.value
        coerced = self.planner.variables(prepared, operation, variables)
        if coerced is None:
            return None  # variable errors: the standard executor words them
        plan = self.planner.plan(prepared, operation, coerced)
        if plan is None:
            return None
        info = current_request.get()
        if info is not None and name is not None:
            info.operation = name
        if plan.mutation is not None:
            return await self.mutate(scope, plan, coerced, prepared.document, name)
        token = web_session.session_token(scope)
        token_hash = token_key(token, self.settings) if token else ""
        guess = recent_viewer(token_hash) if token else None
        state = scope.setdefault("state", {})
        async with reading() as reader:
            vouching = None
            if guess is None or reader.dialect != "postgres":
                viewer = await viewer_for_token(token, self.settings, reader)
                state["viewer"] = viewer
            else:
                # Planned for who the token was lately; the session is checked
                # within the first statement, and nothing is answered unless
                # it is still that viewer.
                viewer = guess
                vouching = Vouching(reader, token_hash, guess, self.settings)
            if second_factor.refused(viewer, prepared.document, name):
                return None  # the standard executor words the refusal
            try:
                data = await run(
                    plan, coerced, ExecutionRequest(viewer, vouching or reader, self.settings)
                )
                if vouching is not None:
                    await vouching.confirm()
            except (NotCompiled, ViewerChanged):
                if vouching is not None and vouching.checked:
                    state["viewer"] = vouching.found  # no need to look again
                return None
            if vouching is not None:
                state["viewer"] = viewer
        return 200, orjson.dumps({"data": data}), []

    async def mutate(
        self,
        scope: Scope,
        plan: OperationPlan,
        variables: VariableValues,
        document: DocumentNode,
        name: str | None,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """A planned mutation. No connection is held while it runs: its
        services take their own (a sign-in must not hold one through its hash)."""
        token = web_session.session_token(scope)
        viewer = None
        if token:
            async with reading() as reader:
                viewer = await viewer_for_token(token, self.settings, reader)
        scope.setdefault("state", {})["viewer"] = viewer
        if second_factor.refused(viewer, document, name):
            return None  # the standard executor words the refusal
        # A reader its selection never uses (a mutation's plan reads only the
        # value the mutation returns), so it never takes a connection.
        async with reading() as unused:
            request = ExecutionRequest(viewer, unused, self.settings)
            try:
                data = await run_mutation(plan, variables, request)
            except NotCompiled:
                return None  # refused or not taken before it ran: nothing happened yet
            except MutationFailed as failure:
                return self._failed(failure)
        return 200, orjson.dumps({"data": data}), []

    def _failed(self, failure: MutationFailed) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The answer the standard executor gives when a mutation raises:
        our own top-level errors as they are, anything else logged and masked."""
        field = failure.field
        error = located_error(failure.problem, [field.node], [field.key])
        schema = self.standard.schema
        assert isinstance(schema, PortalSchema)
        schema.process_errors([error])
        if not is_expected(error):
            error = MaskUnexpectedErrors().anonymise_error(error)
        formatted = self.standard.formatted_errors([error])
        status, headers = 200, []
        if formatted[0]["extensions"]["code"] == "SERVICE_UNAVAILABLE":
            status, headers = 503, [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
        data = None if not field.nullable else {field.key: None}
        return status, orjson.dumps({"data": data, "errors": formatted}), headers


PERSISTED_DOCUMENT_NOT_FOUND = "PERSISTED_DOCUMENT_NOT_FOUND"
NO_SUCH_DOCUMENT = "No trusted document has that documentId."
ONLY_TRUSTED_DOCUMENTS = (
    "Only the service's trusted documents run here: send one by its documentId."
)


def _json_object(body: bytes) -> dict[str, Any] | None:
    """The body's object; None for anything orjson refuses (also half
    characters, and integers beyond 64 bits), which the standard executor
    answers in its words, or in production with trusted documents refuses."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


async def _refuse(send: Send, message: str, code: str, status: int = 400) -> None:
    """A request error: nothing ran."""
    info = current_request.get()
    if info is not None:
        info.outcome = "errors"
        info.error_codes = [code]
    await send_json(send, status, orjson.dumps(error_body(message, code)))


def _setting_cookie(send: Send, session: WebSession) -> Send:
    """The response, with the Set-Cookie a sign-in or sign-out asked for
    (whichever executor ran it)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and session.set_cookie is not None:
            headers = list(message.get("headers", []))
            headers.append((b"set-cookie", session.set_cookie.encode("latin-1")))
            message["headers"] = headers
        await send(message)

    return sending


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
