"""Slack's side of Socket Mode: the /link WebSocket, `hello`, envelopes out, acks back."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.entities import JSON, DeliveryKind


@dataclass(frozen=True)
class Ack:
    envelope_id: str
    payload: JSON | None


class SocketHub:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self._connections: list[web.WebSocketResponse] = []
        self._pending: dict[str, asyncio.Future[Ack]] = {}
        self._next = 0
        self.envelopes_sent: list[JSON] = []

    @property
    def connected(self) -> bool:
        return any(not ws.closed for ws in self._connections)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.core.ws_tickets:
            return web.Response(status=401, text="invalid_ticket")
        self.core.ws_tickets.discard(ticket)  # a ticket opens one connection
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)  # close handshake: do not hang teardown
        await ws.prepare(request)
        self._connections.append(ws)
        try:
            await ws.send_str(json.dumps(self._hello()))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(msg.data)
        finally:
            self._connections.remove(ws)
        return ws

    def _hello(self) -> JSON:
        return {
            "type": "hello",
            "num_connections": len(self._connections),
            "debug_info": {"host": "applink-sim", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.core.config.app_id},
        }

    def _on_text(self, data: str) -> None:
        try:
            message: Any = json.loads(data)
        except ValueError:
            self.core.protocol_error(f"socket mode: not JSON: {data[:80]!r}")
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        future = self._pending.get(envelope_id or "")
        if future is None:
            self.core.protocol_error(f"socket mode: ack for unknown envelope {envelope_id!r}")
            return
        payload = message.get("payload")
        self.core.record_outbound(payload)
        if not future.done():
            future.set_result(Ack(str(envelope_id), payload if isinstance(payload, dict) else None))

    def _pick(self) -> web.WebSocketResponse:
        live = [ws for ws in self._connections if not ws.closed]
        if not live:
            raise ConnectionError("no Socket Mode connection")
        self._next = (self._next + 1) % len(live)
        return live[self._next]

    async def deliver(
        self,
        kind: DeliveryKind,
        payload: JSON,
        *,
        wait: float,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> Ack | None:
        """Send one envelope and wait for its ack; None when none came within `wait` seconds."""
        envelope: JSON = {
            "envelope_id": self.core.ids.envelope(),
            "payload": payload,
            "type": kind.value,
            "accepts_response_payload": kind != DeliveryKind.EVENTS_API,
        }
        if kind == DeliveryKind.EVENTS_API:
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[envelope["envelope_id"]] = future
        self.envelopes_sent.append(envelope)
        try:
            await self._pick().send_str(json.dumps(envelope))
            return await asyncio.wait_for(future, wait)
        except TimeoutError:
            return None
        finally:
            self._pending.pop(envelope["envelope_id"], None)

    async def refresh(self, reason: str = "refresh_requested") -> None:
        """Ask every connected client to reconnect, as Slack does every few hours."""
        for ws in list(self._connections):
            if not ws.closed:
                await ws.send_str(
                    json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "sim"}})
                )

    async def close(self) -> None:
        for ws in list(self._connections):
            await ws.close()
