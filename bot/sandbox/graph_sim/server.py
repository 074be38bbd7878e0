"""GraphSimulator: a real HTTP server on 127.0.0.1 speaking Microsoft Graph's wire format."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from bot.clock import Clock, SystemClock

from .errors import DEFAULT_CODES, DEFAULT_MESSAGES, GraphError, error_body
from .faults import Fault, FaultBook, retry_after_header
from .odata import parse_query
from .recording import RecordedRequest
from .router import BETA, V1, Ctx, Reply
from .routes import build_router
from .tenant import Tenant
from .throttle import Throttle

JSON_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
_VERSION = re.compile(r"^/(v1\.0|beta)(?=/|$)", re.IGNORECASE)


def split_target(target: str) -> tuple[str, str, str, str]:
    """(version, decoded path, encoded path, raw query) from a request target like `/v1.0//users/a%40b?x`."""
    raw_path, _, raw_query = target.partition("?")
    collapsed = re.sub(r"/{2,}", "/", raw_path)
    match = _VERSION.match(collapsed)
    version = ""
    if match is not None:
        version = V1 if match.group(1).lower() == V1 else BETA
        collapsed = collapsed[match.end() :]
    encoded = collapsed.rstrip("/") or "/"
    decoded = "/".join(unquote(segment) for segment in encoded.split("/"))
    return version, decoded, encoded, raw_query


class GraphSimulator:
    """Stateful Microsoft Graph for tests and the demo; point the SDK at `{base_url}/v1.0` or `/beta`."""

    def __init__(self, clock: Clock | None = None, token: str = "sim-graph-token") -> None:  # noqa: S107 - not a secret
        self.clock = clock or SystemClock()
        self.token = token
        self.tenant = Tenant(self.clock)
        self.requests: list[RecordedRequest] = []
        self.internal_errors: list[BaseException] = []
        self.page_size = 100
        self.base_url = ""
        self._faults = FaultBook()
        self._latency = 0.0
        self.throttle: Throttle | None = None  # rate throttling (bench/reveal.py); None: off
        self._router = build_router()
        self._runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> GraphSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def v1_url(self) -> str:
        return f"{self.base_url}/{V1}"

    @property
    def beta_url(self) -> str:
        return f"{self.base_url}/{BETA}"

    # -- test controls -------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        return self._faults.pending

    def set_latency(self, seconds: float) -> None:
        self._latency = max(0.0, seconds)

    def requests_to(
        self, method: str, path_regex: str, *, version: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests with this method whose decoded path matches `path_regex` (re.search)."""
        return [
            r
            for r in self.requests
            if r.method == method.upper()
            and re.search(path_regex, r.path)
            and (version is None or r.version == version)
        ]

    # -- request pipeline ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ctx, original_query = self._context(request)
        raw_body = await request.read()
        body, body_error = _parse_json(raw_body)
        ctx.body = body
        if self._latency:
            await asyncio.sleep(self._latency)
        auth_error = self._auth_error(ctx.headers)
        fault = None if auth_error else self._faults.take(ctx.method, ctx.path)  # 401s use up no fault
        if (
            fault is None
            and auth_error is None
            and self.throttle
            and self.throttle.matches(ctx.method, ctx.path)
        ):
            wait = self.throttle.take()
            if wait is not None:
                fault = Fault(status=429, retry_after=wait, code="TooManyRequests")
        if fault is not None and fault.latency:
            await asyncio.sleep(fault.latency)
        reply = self._respond(ctx, body_error, fault, auth_error)
        dropped = fault is not None and (fault.drop_after_commit or fault.drop_before_commit)
        self.requests.append(
            RecordedRequest(
                ctx.method,
                ctx.path,
                ctx.version,
                original_query,
                ctx.headers,
                body,
                reply.status,
                dropped=dropped,
                target=request.raw_path,
                route=ctx.route,
            )
        )
        if dropped:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the client: the connection is gone
        return _web_response(reply, ctx.headers)

    def _context(self, request: web.Request) -> tuple[Ctx, dict[str, str]]:
        version, path, encoded, raw_query = split_target(request.raw_path)
        original_query, query = parse_query(raw_query)
        ctx = Ctx(
            tenant=self.tenant,
            method=request.method.upper(),
            version=version,
            path=path,
            encoded_path=encoded,
            params={},
            query=query,
            raw_query=raw_query,
            body=None,
            headers={k.lower(): v for k, v in request.headers.items()},
            service_root=f"{self.base_url}/{version}",
            page_size=self.page_size,
        )
        return ctx, original_query

    def _respond(
        self, ctx: Ctx, body_error: bool, fault: Fault | None, auth_error: GraphError | None
    ) -> Reply:
        if auth_error is not None:
            return self._error_reply(auth_error, ctx.headers)
        if fault is not None and fault.drop_before_commit:
            return Reply(0)
        if fault is not None and fault.is_error:
            return self._error_reply(_fault_error(fault), ctx.headers)
        try:
            return self._dispatch(ctx, body_error)
        except GraphError as exc:
            return self._error_reply(exc, ctx.headers)
        except Exception as exc:  # a simulator bug: answer like Graph's 500 and keep it for the test to see
            self.internal_errors.append(exc)
            error = GraphError(500, "generalException", f"Simulator error: {exc!r}")
            return self._error_reply(error, ctx.headers)

    def _dispatch(self, ctx: Ctx, body_error: bool) -> Reply:
        if not ctx.version:
            segment = ctx.path.strip("/").split("/", 1)[0]
            raise GraphError(400, "BadRequest", f"Invalid version: {segment}")
        if body_error:
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set and "
                "payload is of valid JSON format.",
            )
        if ctx.path == "/me" or ctx.path.startswith("/me/"):
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        route, ctx.params = self._router.resolve(ctx.method, ctx.version, ctx.path)
        ctx.route = f"{route.method} {route.template}"
        return route.handler(ctx)

    def _auth_error(self, headers: dict[str, str]) -> GraphError | None:
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if not presented:
            return GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        if scheme.lower() != "bearer" or presented.strip() != self.token:
            return GraphError(
                401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."
            )
        return None

    def _error_reply(self, error: GraphError, headers: dict[str, str]) -> Reply:
        body = error_body(
            error.code,
            error.message,
            when=self.clock.now(),
            request_id=str(uuid.uuid4()),
            client_request_id=headers.get("client-request-id") or str(uuid.uuid4()),
        )
        return Reply(error.status, body, dict(error.headers))


def _fault_error(fault: Fault) -> GraphError:
    extra: dict[str, str] = {}
    retry_after = fault.retry_after
    if retry_after is None and fault.status == 429:
        retry_after = 1
    if retry_after is not None:
        extra["Retry-After"] = retry_after_header(retry_after)
    code = fault.code or DEFAULT_CODES.get(fault.status, "UnknownError")
    message = fault.message or DEFAULT_MESSAGES.get(
        fault.status, "The simulator was told to fail this request."
    )
    return GraphError(fault.status, code, message, extra)


def _parse_json(raw: bytes) -> tuple[Any, bool]:
    if not raw.strip():
        return None, False
    try:
        return json.loads(raw), False
    except (ValueError, UnicodeDecodeError):
        return None, True


def _web_response(reply: Reply, request_headers: dict[str, str]) -> web.Response:
    headers = {
        "request-id": str(uuid.uuid4()),
        "client-request-id": request_headers.get("client-request-id") or str(uuid.uuid4()),
        **reply.headers,
    }
    if reply.body is None:
        return web.Response(status=reply.status, headers=headers)
    headers["Content-Type"] = JSON_CONTENT_TYPE
    return web.Response(status=reply.status, body=json.dumps(reply.body).encode(), headers=headers)
