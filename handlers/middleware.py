"""Global request hygiene: refuse foreign teams and apps, and drop repeated Slack events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import extract_enterprise_id, extract_team_id
from slack_bolt.response import BoltResponse

from bot.logs import get_logger
from bot.services import slack_events
from bot.services.runtime import Runtime

log = get_logger(__name__)


class SlackHygiene(AsyncMiddleware):
    """Runs before authorization, so a foreign or repeated request costs one cheap check and no work."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        body: dict[str, Any] = req.body or {}
        if body.get("type") == "url_verification":
            return await next()
        refusal = self._foreign(body)
        if refusal:
            await slack_events.refuse_foreign(self.rt, refusal, body)
            return BoltResponse(status=403, body='{"error":"forbidden"}')
        if body.get("type") == "view_submission" and isinstance(body.get("view"), dict):
            self.rt.slack.view_submitted(str(body["view"].get("id")))
        event_id = body.get("event_id")
        repeated = (
            body.get("type") == "event_callback"
            and isinstance(event_id, str)
            and not await slack_events.first_delivery(self.rt, event_id)
        )
        if repeated:
            log.info("slack.event.duplicate", event_id=event_id, retry=req.headers.get("x-slack-retry-num"))
            return BoltResponse(status=200, body="")
        return await next()

    def _foreign(self, body: dict[str, Any]) -> str | None:
        me = self.rt.me
        app_id = body.get("api_app_id")
        if me.app_id and app_id and app_id != me.app_id:
            return f"api_app_id {app_id}"
        team_id = extract_team_id(body)
        enterprise_id = extract_enterprise_id(body)
        if me.enterprise_id and enterprise_id == me.enterprise_id:
            return None
        if me.team_id and team_id != me.team_id:
            return f"team_id {team_id}"
        return None
