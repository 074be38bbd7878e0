"""build_app: wires settings, gateways and listeners into one Keydesk; the transports stay thin."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.agent_api import add_agent_routes
from bot.audit import AuditLog
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.deadlines import Deadlines
from bot.directory import Directory
from bot.logs import get_logger, scrubber
from bot.security_webhook import SecurityWebhook
from bot.services import slack_events
from bot.services.runtime import Runtime, SlackIdentity
from bot.services.timers import register_deadline_handlers
from bot.slack.messenger import Messenger
from bot.store.db import Database
from bot.store.outage import is_database_unavailable
from handlers import failures, register_listeners
from handlers.middleware import SlackHygiene

log = get_logger(__name__)

SLACK_PATH = "/slack/events"


def make_slack_client(settings: Settings) -> AsyncWebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


def default_owner(settings: Settings) -> str:
    return settings.replica_id or f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Readiness:
    slack_verified: bool = False
    problems: list[str] = field(default_factory=list)


class Keydesk:
    """The running product: a Bolt app, its runtime, the scheduler and the HTTP endpoints."""

    def __init__(self, rt: Runtime, bolt: AsyncApp) -> None:
        self.rt = rt
        self.bolt = bolt
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.readiness = Readiness()

    async def verify_slack(self) -> None:
        """auth.test: learn who we are, and refuse to run as another workspace's app."""
        response = await self.rt.slack.client.auth_test()
        me = self.rt.me
        settings = self.rt.settings
        me.team_id = settings.slack_team_id or str(response.get("team_id") or "")
        me.enterprise_id = response.get("enterprise_id") or None
        me.bot_user_id = str(response.get("user_id") or "")
        me.bot_id = str(response.get("bot_id") or "") or None
        me.app_id = settings.slack_app_id or response.get("app_id") or None
        if settings.slack_team_id and response.get("team_id") != settings.slack_team_id:
            raise RuntimeError(
                f"SLACK_BOT_TOKEN belongs to team {response.get('team_id')}, "
                f"but KEYDESK_SLACK_TEAM_ID is {settings.slack_team_id}"
            )
        self.readiness.slack_verified = True

    async def start(self) -> None:
        await self.verify_slack()
        self.rt.deadlines.start(self.scheduler, self.rt.settings.deadline_poll_seconds)
        self.scheduler.add_job(
            slack_events.forget_old_events,
            "interval",
            args=[self.rt],
            hours=1,
            id="forget-events",
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.start()
        log.info(
            "keydesk.started",
            team=self.rt.me.team_id,
            mode="socket" if self.rt.settings.socket_mode else "http",
        )

    async def stop(self) -> None:
        await self.rt.deadlines.stop()  # let a deadline run finish its transaction before we close
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.rt.directory.close()
        if self.rt.security_webhook is not None:
            await self.rt.security_webhook.close()
        await self.rt.db.close()
        log.info("keydesk.stopped")

    # --- HTTP ---------------------------------------------------------------------------------
    async def handle_slack(self, request: web.Request) -> web.StreamResponse:
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await self.bolt.async_dispatch(bolt_request))

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        checks: dict[str, Any] = {"slack": self.readiness.slack_verified}
        try:
            await self.rt.db.ping()
            checks["database"] = True
        except Exception as exc:  # any failure means "not ready"; the kind is enough to debug
            checks["database"] = False
            checks["database_error"] = type(exc).__name__
        ready = bool(checks["slack"] and checks["database"])
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=self.rt.settings.max_body_bytes)
        if not self.rt.settings.socket_mode:
            app.router.add_post(SLACK_PATH, self.handle_slack)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        add_agent_routes(app, self.rt)  # desk agents call in over HTTP in Socket Mode too
        return app


def _static_authorize(rt: Runtime) -> Any:
    """One workspace, one static bot token: authorise from what start() learned, with no per-request call."""
    token = rt.settings.slack_bot_token.get_secret_value() if rt.settings.slack_bot_token else None

    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=rt.me.enterprise_id,
            team_id=rt.me.team_id,
            bot_user_id=rt.me.bot_user_id,
            bot_id=rt.me.bot_id,
            bot_token=token,
        )

    return authorize


def build_bolt(rt: Runtime, client: AsyncWebClient) -> AsyncApp:
    settings = rt.settings
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    # Bolt takes the token from `authorize`; its client copy must not carry one too.
    bolt_client = AsyncWebClient(
        base_url=client.base_url, timeout=client.timeout, retry_handlers=list(client.retry_handlers)
    )
    bolt = AsyncApp(
        client=bolt_client,
        signing_secret=secret,
        before_authorize=SlackHygiene(rt),
        request_verification_enabled=not settings.socket_mode,
        authorize=_static_authorize(rt),
        ignoring_self_events_enabled=True,
        url_verification_enabled=True,
    )

    @bolt.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        request_type = str(body.get("type") or ("slash_command" if body.get("command") else None))[:40]
        if is_database_unavailable(error):  # one outage, many listeners: no statement text, no stack
            cause = getattr(error, "orig", None)
            log.warning(
                "slack.listener.database_unavailable",
                error=type(error).__name__,
                cause=type(cause).__name__ if cause is not None else None,
                request_type=request_type,
            )
        else:
            log.error(
                "slack.listener.failed",
                error=type(error).__name__,
                request_type=request_type,
                detail=scrubber.scrub(str(error))[:300],
            )
        failures.tell_in_background(rt, body, error)  # the person is told plainly, never the exception

    register_listeners(bolt, rt)
    return bolt


def build_app(
    settings: Settings,
    *,
    client: AsyncWebClient | None = None,
    directory: Directory | None = None,
    clock: Clock | None = None,
    db: Database | None = None,
) -> Keydesk:
    """Everything keydesk needs, wired once. Tests inject simulators through the same settings URLs."""
    clock = clock or SystemClock()
    db = db or Database(settings.database_url)
    if directory is None:
        from bot.directory.graph import build_directory  # msgraph is heavy; imported only when needed

        directory = build_directory(settings)
    client = client or make_slack_client(settings)
    rt = Runtime(
        settings=settings,
        db=db,
        clock=clock,
        directory=directory,
        slack=Messenger(client),
        audit=AuditLog(db, clock),
        deadlines=Deadlines(db, clock, owner=default_owner(settings)),
        me=SlackIdentity(),
        security_webhook=_security_webhook(settings),
    )
    register_deadline_handlers(rt)
    bolt = build_bolt(rt, client)
    return Keydesk(rt, bolt)


def _security_webhook(settings: Settings) -> SecurityWebhook | None:
    if settings.security_webhook_url is None:
        return None
    authorization = settings.security_webhook_authorization
    return SecurityWebhook(
        settings.security_webhook_url.get_secret_value(),
        authorization.get_secret_value() if authorization else None,
    )


def redacted_settings(settings: Settings) -> str:
    """Settings as JSON with every secret masked (for `keydesk check`)."""
    data = json.loads(settings.model_dump_json())
    return json.dumps(data, indent=2, sort_keys=True)
