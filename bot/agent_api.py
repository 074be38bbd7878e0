"""The desk agents' HTTP endpoints (thin): POST /agent/v1/pair, GET /agent/v1/jobs, POST .../result.

Served on keydesk's HTTP port in both Slack modes: agents sit behind NAT and only ever call out.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from agent import protocol
from bot.logs import get_logger
from bot.services import desk_link, desk_pairing
from bot.services.desk_common import LinkRefused
from bot.services.runtime import Runtime

log = get_logger(__name__)

PAIR_PATH = "/agent/v1/pair"
JOBS_PATH = "/agent/v1/jobs"
RESULT_PATH = "/agent/v1/jobs/{job_id}/result"


def _refused(exc: LinkRefused) -> web.Response:
    return web.json_response({"error": exc.reason, "message": exc.message}, status=exc.status)


async def _json(request: web.Request) -> object:
    try:
        return json.loads(await request.read())
    except ValueError:
        raise LinkRefused(400, "malformed", "The body is not JSON.") from None


def _guarded(
    work: Callable[[web.Request], Awaitable[web.Response]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        try:
            return await work(request)
        except LinkRefused as exc:
            log.info("agent.request.refused", path=request.path, reason=exc.reason)
            return _refused(exc)

    return handler


def add_agent_routes(app: web.Application, rt: Runtime) -> None:
    async def pair(request: web.Request) -> web.Response:
        return web.json_response(await desk_pairing.pair(rt, await _json(request)), status=201)

    async def jobs(request: web.Request) -> web.Response:
        header = request.headers.get(protocol.AUTH_HEADER, "")
        try:
            signed = protocol.parse_header(header)
        except protocol.ProtocolError:
            raise LinkRefused(401, "unsigned", f"Send a signed {protocol.AUTH_HEADER} header.") from None
        job = await desk_link.poll(rt, signed)
        if job is None:
            return web.Response(status=204)
        return web.json_response(job)

    async def result(request: web.Request) -> web.Response:
        await desk_link.accept_result(rt, request.match_info["job_id"], await _json(request))
        return web.json_response({"status": "accepted"})

    app.router.add_post(PAIR_PATH, _guarded(pair))
    app.router.add_get(JOBS_PATH, _guarded(jobs))
    app.router.add_post(RESULT_PATH, _guarded(result))
