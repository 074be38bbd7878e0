"""SlackSimulator: a stateful Slack on 127.0.0.1 (Web API, Socket Mode, response URLs) that drives a bot."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.clock import Clock, SystemClock
from bot.sandbox.slack_sim import payloads
from bot.sandbox.slack_sim.config import DEFAULT_BOT_EVENTS, DEFAULT_SCOPES, SimConfig
from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.delivery import Courier
from bot.sandbox.slack_sim.entities import (
    JSON,
    Delivery,
    DeliveryKind,
    SentRequest,
    SimChannel,
    SimMessage,
    SimSlackUser,
    SimUsageError,
)
from bot.sandbox.slack_sim.faults import Fault
from bot.sandbox.slack_sim.observe import ObserverMixin
from bot.sandbox.slack_sim.people import PeopleMixin
from bot.sandbox.slack_sim.responses import ResponseUrlEndpoint, apply_slash_ack
from bot.sandbox.slack_sim.socket_mode import SocketHub
from bot.sandbox.slack_sim.ui_driver import UiDriverMixin
from bot.sandbox.slack_sim.webapi import WebApi


class SlackSimulator(PeopleMixin, UiDriverMixin, ObserverMixin):
    """Start it, point `AsyncWebClient(base_url=sim.api_url)` at it, connect the bot, then drive."""

    def __init__(
        self,
        *,
        signing_secret: str,
        team_id: str = "T0KEYDESK",
        enterprise_id: str | None = None,
        app_id: str = "A0KEYDESK",
        bot_user_id: str = "U0KEYBOT",
        bot_id: str = "B0KEYBOT",
        bot_token: str = "xoxb-sim-token",  # noqa: S107 - simulated
        app_token: str = "xapp-sim-token",  # noqa: S107
        clock: Clock | None = None,
        scopes: frozenset[str] = DEFAULT_SCOPES,
        bot_events: frozenset[str] = DEFAULT_BOT_EVENTS,
    ) -> None:
        self.config = SimConfig(
            signing_secret=signing_secret,
            team_id=team_id,
            enterprise_id=enterprise_id,
            app_id=app_id,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            bot_token=bot_token,
            app_token=app_token,
            scopes=frozenset(scopes),
            bot_events=frozenset(bot_events),
        )
        self.core = SimCore(self.config, clock or SystemClock())
        self._hub = SocketHub(self.core)
        self._courier = Courier(self.core, self._hub)
        self._hooks = ResponseUrlEndpoint(self.core)
        self._runner: web.AppRunner | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", WebApi(self.core).handle)
        app.router.add_get("/link/", self._hub.handle)
        app.router.add_post("/hooks/{key}", self._hooks.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.core.base_url = f"http://127.0.0.1:{port}/"
        self.core.ws_url = f"ws://127.0.0.1:{port}/link/"
        return self.api_url

    async def stop(self) -> None:
        """Close the bot's sockets first (`handler.close_async()`) or its client will try to reconnect."""
        await self._hub.close()
        await self._courier.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackSimulator:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        if not self.core.base_url:
            raise SimUsageError("start() the simulator first")
        return f"{self.core.base_url}api/"

    @property
    def clock(self) -> Clock:
        return self.core.clock

    def connect_bot(self, events_url: str) -> None:
        """HTTP mode: where Slack posts events, commands and interactions (Bolt serves all on one path)."""
        self._courier.events_url = events_url

    @property
    def socket_connected(self) -> bool:
        return self._hub.connected

    @property
    def ack_timeout(self) -> float:
        """How long Slack waits for the app's answer (3 s); lower it in tests of a silent app."""
        return self._courier.ack_timeout

    @ack_timeout.setter
    def ack_timeout(self, seconds: float) -> None:
        self._courier.ack_timeout = seconds

    async def refresh_socket(self, reason: str = "refresh_requested") -> None:
        await self._hub.refresh(reason)

    # --- raw delivery (abuse tests) -----------------------------------------------------------

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Slack's signature headers for `body` (timestamp: wall-clock seconds, as Bolt checks them)."""
        return self._courier.sign(body, timestamp)

    async def deliver(
        self, kind: DeliveryKind, payload: JSON, *, retry_num: int = 0, retry_reason: str = ""
    ) -> Delivery:
        """Send a payload built (and perhaps tampered with) by the test, signed and encoded like Slack."""
        return await self._courier.send(kind, payload, retry_num=retry_num, retry_reason=retry_reason)

    async def deliver_raw(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """POST exactly these bytes and headers to the bot's URL (HTTP mode): bad signatures and so on."""
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        kind = DeliveryKind.EVENTS_API if "json" in content_type else DeliveryKind.INTERACTIVE
        if b"payload=" not in body and kind != DeliveryKind.EVENTS_API:
            kind = DeliveryKind.SLASH_COMMANDS
        return await self._courier.post(body, headers, SentRequest(kind, {}, body, content_type))

    async def redeliver(
        self, delivery: Delivery, *, retry_num: int = 1, reason: str = "http_timeout"
    ) -> Delivery:
        """Send the same request again as Slack's retry (same event_id; retry headers or envelope fields)."""
        return await self._courier.send(
            delivery.request.kind, delivery.request.payload, retry_num=retry_num, retry_reason=reason
        )

    @property
    def socket_envelopes(self) -> list[JSON]:
        """Every Socket Mode envelope sent to the bot, in order."""
        return list(self._hub.envelopes_sent)

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self._courier.sent)

    # --- the Slack side of people's actions ---------------------------------------------------

    async def _event(self, subscription: str, event: JSON) -> Delivery | None:
        if subscription not in self.config.bot_events:
            return None
        return await self.deliver(DeliveryKind.EVENTS_API, payloads.event_callback(self.core, event))

    async def send_dm(self, user_id: str, text: str) -> Delivery:
        """The user types `text` in the app's Messages tab: a `message` event with channel_type im."""
        user = self.user(user_id)
        channel, _ = self.core.workspace.open_dm(user.id)
        message = self._user_post(user, channel, text)
        delivery = await self._event("message.im", payloads.message_event(self.core, message, channel, user))
        if delivery is None:
            raise SimUsageError("the app does not subscribe to message.im")
        return delivery

    async def send_thread_reply(
        self, user_id: str, channel: str, thread_ts: str, text: str, *, forge: bool = False
    ) -> Delivery | None:
        """A reply in a thread; None when Slack would not tell the app (bot not in the channel)."""
        user = self.user(user_id)
        target = self._channel(channel)
        if not forge and user.id not in target.members:
            raise SimUsageError(f"{user.id} is not a member of {target.id}")
        parent = self.core.workspace.find(target.id, thread_ts)
        if parent is None:
            raise SimUsageError(f"no message {thread_ts} in {target.id} to reply to")
        message = self._user_post(user, target, text, thread_ts=thread_ts)
        if not self.core.workspace.bot_is_member(target):
            return None
        kind = "message.im" if target.is_im else "message.groups" if target.is_private else "message.channels"
        event = payloads.message_event(self.core, message, target, user, parent_user_id=parent.user)
        return await self._event(kind, event)

    def _user_post(self, user: SimSlackUser, channel: SimChannel, text: str, **fields: Any) -> SimMessage:
        return self.core.workspace.post(
            channel.id,
            user=user.id,
            text=text,
            team=user.team_id,
            blocks=payloads.rich_text(text),
            client_msg_id=str(uuid.uuid4()),
            **fields,
        )

    async def open_home(self, user_id: str, tab: str = "home") -> Delivery | None:
        user = self.user(user_id)
        channel, _ = self.core.workspace.open_dm(user.id)
        home = self.core.views.home(user.id)
        return await self._event(
            "app_home_opened", payloads.app_home_opened(self.core, user, channel.id, tab, home)
        )

    async def slash(
        self,
        user_id: str,
        command: str,
        text: str = "",
        channel_id: str | None = None,
        *,
        forge: bool = False,
    ) -> Delivery:
        """The user runs a slash command (in their DM with the app unless `channel_id` is given)."""
        if not command.startswith("/"):
            raise SimUsageError("slash commands start with '/'")
        user = self.user(user_id)
        channel = self._channel(channel_id) if channel_id else self.core.workspace.open_dm(user.id)[0]
        if not forge and user.id not in channel.members:
            raise SimUsageError(f"{user.id} is not a member of {channel.id}")
        trigger = self.core.views.issue_trigger(user.id)
        response_url = self.core.issue_response_url(channel.id, user.id, None)
        fields = payloads.slash_command(self.core, user, command, text, channel, trigger, response_url)
        delivery = await self.deliver(DeliveryKind.SLASH_COMMANDS, fields)
        apply_slash_ack(self.core, channel.id, user.id, delivery)
        return delivery

    async def shortcut(self, user_id: str, callback_id: str) -> Delivery:
        """A global shortcut (the lightning menu)."""
        user = self.user(user_id)
        trigger = self.core.views.issue_trigger(user.id)
        return await self.deliver(
            DeliveryKind.INTERACTIVE, payloads.global_shortcut(self.core, user, callback_id, trigger)
        )

    def issue_trigger(self, user_id: str) -> str:
        """A fresh trigger_id for `user_id`, as Slack puts in an interaction (for tests of views.*)."""
        return self.core.views.issue_trigger(self.user(user_id).id)

    # --- faults -------------------------------------------------------------------------------

    def add_fault(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: float | None = None,
        times: int = 1,
        latency: float = 0.0,
        drop: bool = False,
        apply: bool = False,
    ) -> Fault:
        return self.core.faults.add(Fault(method, error, status, retry_after, times, latency, drop, apply))

    def clear_faults(self) -> None:
        self.core.faults.clear()
