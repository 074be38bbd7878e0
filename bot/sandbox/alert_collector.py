"""A security team's alert collector (a SIEM's HTTP input or a pager's webhook) on 127.0.0.1.

It records every POST it receives (headers and JSON body) and answers 202, or what a test planned:
an error status, with Retry-After if asked, for the next N requests.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

PATH = "/alerts"


@dataclass(frozen=True)
class ReceivedAlert:
    headers: dict[str, str]
    body: dict[str, Any]
    answered: int  # the status we answered with


@dataclass
class _Plan:
    status: int
    retry_after: float | None
    remaining: int


class AlertCollector:
    def __init__(self) -> None:
        self.received: list[ReceivedAlert] = []
        self._plans: list[_Plan] = []
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Condition()
        self.url = ""

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """The alerts it accepted (a retried alert appears once per request, see `received`)."""
        return [r.body for r in self.received if r.answered < 300]

    def fail_next(self, status: int, *, retry_after: float | None = None, times: int = 1) -> None:
        self._plans.append(_Plan(status, retry_after, times))

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Until `count` alerts were accepted; their bodies."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.delivered) >= count)
        return self.delivered

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(PATH, self._receive)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}{PATH}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.json()
        status, headers = 202, {}
        if self._plans:
            plan = self._plans[0]
            status = plan.status
            if plan.retry_after is not None:
                headers["Retry-After"] = f"{plan.retry_after:g}"
            plan.remaining -= 1
            if plan.remaining <= 0:
                self._plans.pop(0)
        async with self._arrived:
            self.received.append(ReceivedAlert(dict(request.headers), body, status))
            self._arrived.notify_all()
        return web.json_response({"ok": status < 300}, status=status, headers=headers)
