"""When a listener fails: tell the person who clicked or typed, plainly, instead of failing silently.

Only interactions a person is waiting on get an answer (buttons, modal submissions, shortcuts, slash
commands); events are left alone, since Slack delivers those again. The answer never carries the
exception's text. It goes out in the background, so a failure before the ack is not slowed down by it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.logs import get_logger
from bot.services.runtime import Runtime
from bot.slack import blocks as b
from bot.slack.messenger import SlackError
from bot.store.outage import is_database_unavailable

log = get_logger(__name__)

DATABASE_DOWN = (
    "Sorry, I can't reach my database right now, so I couldn't do that. Please try again in a few minutes."
)
SOMETHING_WENT_WRONG = (
    "Sorry, something went wrong on my side and I couldn't finish that. Please try again in a minute; "
    "if it keeps happening, ask the helpdesk."
)
ANSWERED_TYPES = frozenset({"block_actions", "view_submission", "shortcut", "message_action"})

_pending: set[asyncio.Task[None]] = set()


def who_and_where(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The person waiting on this request and the channel they did it in (None: not one to answer)."""
    if body.get("command"):
        return _str(body.get("user_id")), _str(body.get("channel_id"))
    if body.get("type") not in ANSWERED_TYPES:
        return None, None
    user = body.get("user") or {}
    channel = body.get("channel") or {}
    return _str(user.get("id")), _str(channel.get("id"))


def tell_in_background(rt: Runtime, body: dict[str, Any], error: BaseException) -> None:
    user, channel = who_and_where(body)
    if not user:
        return
    text = DATABASE_DOWN if is_database_unavailable(error) else SOMETHING_WENT_WRONG
    task = asyncio.get_running_loop().create_task(_tell(rt, user, channel, text))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _tell(rt: Runtime, user: str, channel: str | None, text: str) -> None:
    blocks = [b.section(f":warning: {text}")]
    if channel:
        try:
            await rt.slack.ephemeral(channel, user, text, blocks)
            return
        except SlackError as exc:  # not in that channel, say: a DM still reaches them
            log.debug("slack.failure_notice.ephemeral_failed", error=exc.code)
    try:
        await rt.slack.post_dm(user, text, blocks)
    except Exception as exc:  # never let telling about a failure fail loudly in turn
        log.warning("slack.failure_notice.failed", error=type(exc).__name__)


def _str(value: Any) -> str | None:
    return str(value)[:64] if value else None
