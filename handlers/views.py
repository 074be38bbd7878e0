"""Modal submissions. Slack waits at most 3 s for the answer, so slow checks run after a 'working' ack."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.domain.text import clean
from bot.services import approvals, onboarding
from bot.services.runtime import Runtime
from bot.slack import blocks as b
from bot.slack.ids import ViewId
from bot.slack.messenger import SlackError


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _state(view: dict[str, Any], block: str, action: str) -> dict[str, Any]:
    return dict(((view.get("state") or {}).get("values") or {}).get(block, {}).get(action) or {})


def _result_view(title: str, message: str) -> dict[str, Any]:
    return b.modal(title, [b.section(message)], close="Close")


def register(app: AsyncApp, rt: Runtime) -> None:
    async def finish(view_id: str, title: str, message: str) -> None:
        # The person may have closed the modal; the card and the audit already say what happened.
        with contextlib.suppress(SlackError):
            await rt.slack.update_view(view_id, _result_view(title, message))

    @app.view(ViewId.TAP_APPROVE.value)
    async def approve_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        method = (_state(view, "verification", "method").get("selected_option") or {}).get("value")
        if not method:
            await ack(
                response_action="errors", errors={"verification": "Choose how you verified the person."}
            )
            return
        await ack(response_action="update", view=_result_view("Approve pass", ":hourglass: Checking…"))
        meta = _metadata(view)
        try:
            opened_at = datetime.fromisoformat(str(meta.get("opened_at")))
        except ValueError:
            opened_at = datetime.min.replace(tzinfo=rt.clock.now().tzinfo)
        note = clean(_state(view, "note", "text").get("value"), 500)
        decision = await approvals.approve(
            rt, str(meta.get("request_id", ""))[:64], body["user"]["id"], str(method)[:64], note, opened_at
        )
        await finish(
            view["id"],
            "Approve pass",
            (":white_check_mark: " if decision.ok else ":no_entry: ") + decision.message,
        )

    @app.view(ViewId.TAP_DENY.value)
    async def deny_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = clean(_state(view, "reason", "text").get("value"), 500)
        if not reason:
            await ack(response_action="errors", errors={"reason": "Say why, for the audit log."})
            return
        await ack(response_action="update", view=_result_view("Deny pass", ":hourglass: Recording…"))
        decision = await approvals.deny(
            rt, str(_metadata(view).get("request_id", ""))[:64], body["user"]["id"], reason
        )
        await finish(view["id"], "Deny pass", decision.message)

    @app.view(ViewId.HELPDESK_TAP_FOR_USER.value)
    async def tap_for_user_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        target = _state(view, "target", "user").get("selected_user")
        if not target:
            await ack(response_action="errors", errors={"target": "Pick the person."})
            return
        await ack(response_action="update", view=_result_view("Pass for someone", ":hourglass: Checking…"))
        message = await onboarding.open_for_user(rt, body["user"]["id"], str(target)[:32])
        await finish(view["id"], "Pass for someone", message)
