"""The long-running process behind `keydesk run`: HTTP or Socket Mode, and a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError

from bot.app import Keydesk, build_app
from bot.config import Settings
from bot.logs import configure_logging, get_logger
from bot.store.migrate import migrate

log = get_logger(__name__)


def _secrets(settings: Settings) -> list[str | None]:
    values = (
        settings.slack_bot_token,
        settings.slack_app_token,
        settings.slack_signing_secret,
        settings.azure_client_secret,
        settings.graph_token,
        settings.security_webhook_url,
        settings.security_webhook_authorization,
    )
    return [v.get_secret_value() for v in values if v is not None]


@dataclass
class Running:
    """A started keydesk: its HTTP site and, in Socket Mode, the socket handler."""

    keydesk: Keydesk
    runner: web.AppRunner
    socket: AsyncSocketModeHandler | None
    port: int

    async def stop(self) -> None:
        if self.socket is not None:
            await self.socket.close_async()
        await self.runner.cleanup()
        await self.keydesk.stop()


async def start(settings: Settings, keydesk: Keydesk | None = None) -> Running:
    """Migrate, verify Slack, start the scheduler, then open the HTTP port (and the socket)."""
    await migrate(settings.database_url)
    keydesk = keydesk or build_app(settings)
    await keydesk.start()
    runner = web.AppRunner(keydesk.web_app(), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else settings.http_port
    socket = None
    if settings.socket_mode and settings.slack_app_token is not None:
        socket = AsyncSocketModeHandler(keydesk.bolt, app_token=settings.slack_app_token.get_secret_value())
        await socket.connect_async()
    log.info("keydesk.listening", host=settings.http_host, port=port, socket_mode=settings.socket_mode)
    return Running(keydesk=keydesk, runner=runner, socket=socket, port=port)


async def serve(settings: Settings) -> int:
    from bot.cli import install_signal_handlers

    configure_logging(settings.log_level, settings.log_format, _secrets(settings))
    try:
        running = await start(settings)
    except SlackApiError as exc:
        log.error("keydesk.slack_auth_failed", error=exc.response.get("error"))
        print(f"keydesk: Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')}): check the token")
        return 1
    except OSError as exc:
        log.error("keydesk.startup_failed", error=str(exc))
        print(f"keydesk: could not start: {exc}")
        return 1
    stop = asyncio.Event()
    install_signal_handlers(stop)
    await stop.wait()
    log.info("keydesk.stopping")
    await running.stop()
    return 0
