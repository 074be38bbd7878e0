"""The desk agents' HTTP endpoints (thin): POST /agent/v1/pair, GET /agent/v1/jobs, POST .../result.

Served on keydesk's HTTP port in both Slack modes: agents sit behind NAT and only ever call out.
Every request is counted against its source address first (a flood is refused with 429 before any
body is parsed); pairing is also limited per code, polling per agent. Every refusal carries the
server's time so an agent with a wrong clock can say by how much it is off.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from agent import protocol
from bot.logs import get_logger
from bot.services import desk_link, desk_pairing
from bot.services.desk_common import LinkRefused
from bot.services.desk_limits import AgentLimits
from bot.services.runtime import Runtime

log = get_logger(__name__)

PAIR_PATH = "/agent/v1/pair"
JOBS_PATH = "/agent/v1/jobs"
RESULT_PATH = "/agent/v1/jobs/{job_id}/result"


def _refused(exc: LinkRefused, rt: Runtime) -> web.Response:
    body = {"error": exc.reason, "message": exc.message, "server_time": protocol.iso(rt.clock.now())}
    headers = {"Retry-After": str(int(exc.retry_after))} if exc.retry_after is not None else None
    return web.json_response(body, status=exc.status, headers=headers)


async def _json(request: web.Request) -> object:
    try:
        return json.loads(await request.read())
    except ValueError:
        raise LinkRefused(400, "malformed", "The body is not JSON.") from None


def source_address(request: web.Request, trusted_proxies: tuple[str, ...]) -> str:
    """The caller's address: the peer, or behind a trusted proxy the last untrusted X-Forwarded-For hop."""
    peer = request.remote or "unknown"
    if peer not in trusted_proxies:
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop[:64]
    return peer


def add_agent_routes(app: web.Application, rt: Runtime) -> None:
    limits = AgentLimits.from_settings(rt.settings)

    def guarded(
        work: Callable[[web.Request, str], Awaitable[web.Response]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            source = source_address(request, rt.settings.agent_trusted_proxies)
            try:
                await limits.check(rt, limits.per_source, "source", source, actor=f"ip:{source}")
                return await work(request, source)
            except LinkRefused as exc:
                log.info("agent.request.refused", path=request.path, reason=exc.reason)
                return _refused(exc, rt)

        return handler

    async def pair(request: web.Request, source: str) -> web.Response:
        await limits.check(rt, limits.pair_per_source, "pairing_source", source, actor=f"ip:{source}")
        body = await _json(request)
        result = await desk_pairing.pair(rt, body, limits=limits, source=source)
        return web.json_response(result, status=201)

    async def jobs(request: web.Request, source: str) -> web.Response:
        header = request.headers.get(protocol.AUTH_HEADER, "")
        try:
            signed = protocol.parse_header(header)
        except protocol.ProtocolError:
            raise LinkRefused(401, "unsigned", f"Send a signed {protocol.AUTH_HEADER} header.") from None
        job = await desk_link.poll(rt, signed, limits=limits)
        if job is None:
            return web.Response(status=204)
        return web.json_response(job)

    async def result(request: web.Request, source: str) -> web.Response:
        await desk_link.accept_result(rt, request.match_info["job_id"], await _json(request))
        return web.json_response({"status": "accepted"})

    app.router.add_post(PAIR_PATH, guarded(pair))
    app.router.add_get(JOBS_PATH, guarded(jobs))
    app.router.add_post(RESULT_PATH, guarded(result))
