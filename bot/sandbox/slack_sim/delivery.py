"""Getting requests to the app: signed HTTP posts to its request URL, or envelopes over Socket Mode."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.entities import JSON, Delivery, DeliveryKind, SentRequest, SimUsageError, Transport
from bot.sandbox.slack_sim.socket_mode import SocketHub

FORM = "application/x-www-form-urlencoded"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


def encode(kind: DeliveryKind, payload: JSON) -> tuple[bytes, str]:
    """The HTTP body Slack sends: JSON for events, a form for commands, `payload=<json>` otherwise."""
    if kind == DeliveryKind.EVENTS_API:
        return json.dumps(payload, separators=(",", ":")).encode(), "application/json"
    if kind == DeliveryKind.SLASH_COMMANDS:
        return urlencode(payload).encode(), FORM
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode(), FORM


def normalise(body: Any) -> JSON | None:
    """An app's answer as Slack reads it: nothing, `{"text": ...}` for plain text, or the object."""
    if body in (None, "", b""):
        return None
    if isinstance(body, dict):
        return body
    return {"text": str(body)}


class Courier:
    def __init__(self, core: SimCore, hub: SocketHub) -> None:
        self.core = core
        self.hub = hub
        self.events_url: str | None = None
        self.ack_timeout = 3.0
        # Bolt checks signatures against the wall clock, so that is what signs by default.
        self.signing_time: Callable[[], float] = time.time
        self.sent: list[Delivery] = []
        self._session: aiohttp.ClientSession | None = None

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        ts = int(self.signing_time()) if timestamp is None else timestamp
        return sign(self.core.config.signing_secret, body, ts)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, kind: DeliveryKind, payload: JSON, *, retry_num: int = 0, retry_reason: str = ""
    ) -> Delivery:
        body, content_type = encode(kind, payload)
        request = SentRequest(kind, payload, body, content_type)
        if self.hub.connected:
            delivery = await self._over_socket(request, retry_num, retry_reason)
        elif self.events_url:
            headers = {"Content-Type": content_type, **self.sign(body)}
            if retry_num:
                headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason})
            delivery = await self.post(body, headers, request)
        else:
            raise SimUsageError("the bot is not connected: call connect_bot(url) or connect over Socket Mode")
        self.sent.append(delivery)
        return delivery

    async def post(self, body: bytes, headers: Mapping[str, str], request: SentRequest) -> Delivery:
        if not self.events_url:
            raise SimUsageError("no events URL: call connect_bot(url) first")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        started = time.monotonic()
        try:
            async with self._session.post(
                self.events_url,
                data=body,
                headers={"User-Agent": USER_AGENT, **headers},
                timeout=aiohttp.ClientTimeout(total=self.ack_timeout),
            ) as response:
                raw = await response.read()
                parsed = _parse(raw, response.content_type)
                self.core.record_outbound(raw.decode(errors="replace"))
                return Delivery(
                    status=response.status,
                    body=parsed,
                    headers=dict(response.headers),
                    payload=normalise(parsed) if response.status == 200 else None,
                    kind=request.kind,
                    transport=Transport.HTTP,
                    request=request,
                    elapsed=time.monotonic() - started,
                )
        except TimeoutError:
            return _timed_out(request, Transport.HTTP, time.monotonic() - started)

    async def _over_socket(self, request: SentRequest, retry_num: int, retry_reason: str) -> Delivery:
        started = time.monotonic()
        ack = await self.hub.deliver(
            request.kind,
            request.payload,
            wait=self.ack_timeout,
            retry_attempt=retry_num,
            retry_reason=retry_reason,
        )
        if ack is None:
            return _timed_out(request, Transport.SOCKET, time.monotonic() - started)
        return Delivery(
            status=200,
            body=ack.payload,
            headers={},
            payload=normalise(ack.payload),
            kind=request.kind,
            transport=Transport.SOCKET,
            request=request,
            elapsed=time.monotonic() - started,
        )


def _parse(raw: bytes, content_type: str) -> Any:
    text = raw.decode(errors="replace")
    if content_type == "application/json" and text:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _timed_out(request: SentRequest, transport: Transport, elapsed: float) -> Delivery:
    return Delivery(0, None, {}, None, request.kind, transport, request, elapsed, timed_out=True)
