"""TAP-4: a pass still on screen is redacted once it stops working (expired, replaced, cancelled, used).

The request row keeps the id of the modal that showed its pass (`pass_view_id`, not a secret). Whoever
ends the pass clears that column in its own transaction and then calls `redact` with the id it read.
"""

from __future__ import annotations

from typing import Literal

from bot.logs import get_logger
from bot.services.runtime import Runtime
from bot.slack import tap_views
from bot.slack.messenger import SlackError

log = get_logger(__name__)

Why = Literal["expired", "replaced", "cancelled", "registered"]
CLOSED = frozenset({"not_found", "view_not_found"})  # the person closed the modal: nothing to redact


async def redact(rt: Runtime, view_id: str | None, why: Why) -> None:
    """Replace the pass in its modal with why it ended. A closed modal is fine; no retry either way."""
    if not view_id:
        return
    try:
        await rt.slack.update_view(view_id, tap_views.pass_ended_modal(why))
    except SlackError as exc:
        if exc.code in CLOSED:
            log.debug("tap.pass_modal.already_closed", why=why)
        else:
            log.warning("tap.pass_modal.redact_failed", why=why, error=exc.code)
