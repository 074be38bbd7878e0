"""The HTTP face of the Web API: parameter merging, token checks, faults, dispatch and recording."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

# The method modules register themselves in METHODS when imported.
from bot.sandbox.slack_sim import api_chat, api_directory, api_views  # noqa: F401
from bot.sandbox.slack_sim.api_base import (
    JSON_PARAMS,
    METHODS,
    ApiError,
    ApiRequest,
    TokenKind,
    require_scope,
)
from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.entities import JSON, ApiCall
from bot.sandbox.slack_sim.faults import Fault


async def merged_params(request: web.Request) -> JSON:
    """Query string, form body and JSON body merged, as Slack reads them (slack_sdk uses all three)."""
    params: JSON = dict(request.query)
    raw = await request.text()
    if not raw:
        return params
    if request.content_type == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError("invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError("invalid_json")
        params.update(body)
    else:
        params.update(dict(parse_qsl(raw, keep_blank_values=True)))
    return params


def bearer_token(request: web.Request, params: JSON) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    token = params.pop("token", None)
    return str(token) if token else None


def _check_token(core: SimCore, token: str | None, wanted: TokenKind) -> None:
    cfg = core.config
    if not token:
        raise ApiError("not_authed")
    kinds = {cfg.bot_token: TokenKind.BOT, cfg.app_token: TokenKind.APP}
    if token not in kinds:
        raise ApiError("invalid_auth")
    if kinds[token] != wanted:
        raise ApiError("not_allowed_token_type")


def call_method(core: SimCore, method: str, params: JSON, token: str | None) -> tuple[int, JSON]:
    spec = METHODS.get(method)
    if spec is None:
        return 200, {"ok": False, "error": "unknown_method", "req_method": method}
    try:
        _check_token(core, token, spec.token)
        if spec.scope:
            require_scope(core, spec.scope)
        body = spec.handler(core, ApiRequest(method, params, token))
    except ApiError as exc:
        return exc.status, exc.body()
    return 200, {"ok": True, **body}


class WebApi:
    def __init__(self, core: SimCore) -> None:
        self.core = core

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params = await merged_params(request)
        except ApiError as exc:
            return web.json_response(exc.body(), status=exc.status)
        token = bearer_token(request, params)
        for key in JSON_PARAMS & params.keys():
            # Keep what the app sent, decoded, so tests can read blocks/view as objects.
            params[key] = _maybe_json(params[key])
        self.core.record_outbound({k: v for k, v in params.items() if k != "team_id"})
        fault = self.core.faults.take(method)
        if fault and fault.latency:
            await asyncio.sleep(fault.latency)
        if fault and fault.fails and not fault.apply:
            return await self._fail(request, method, params, token, fault)
        status, body = call_method(self.core, method, params, token)
        if fault and fault.fails:
            return await self._fail(request, method, params, token, fault)
        await self._record(method, params, token, status, body)
        return web.json_response(body, status=status, headers=self._headers())

    async def _fail(
        self, request: web.Request, method: str, params: JSON, token: str | None, fault: Fault
    ) -> web.StreamResponse:
        body = fault.body()
        await self._record(method, params, token, fault.status, body)
        if fault.drop:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=fault.status)
        return web.json_response(body, status=fault.status, headers=fault.headers())

    def _headers(self) -> dict[str, str]:
        return {"X-OAuth-Scopes": ",".join(sorted(self.core.config.scopes))}

    async def _record(self, method: str, params: JSON, token: str | None, status: int, body: JSON) -> None:
        call = ApiCall(method, params, token, status, body, self.core.clock.now())
        self.core.calls.append(call)
        async with self.core.calls_changed:
            self.core.calls_changed.notify_all()


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
