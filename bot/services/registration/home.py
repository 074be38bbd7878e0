"""App Home's part for the person: the open request and its pass, the setup's progress and Resume."""

from __future__ import annotations

from bot.domain import wizard
from bot.domain.tap_request import RequestState
from bot.domain.text import escape_mrkdwn
from bot.domain.wizard import WizardPhase
from bot.services.registration.guides import step_title
from bot.services.registration.screen import name
from bot.services.runtime import Runtime
from bot.slack import blocks as b
from bot.slack import tap_views, wizard_views
from bot.slack.wizard_views import HomeFacts
from bot.store import tap_repo, wizard_repo
from bot.store.wizard_repo import state_of


async def home_blocks(rt: Runtime, user_id: str) -> list[b.Block]:
    """Blocks for App Home: the open request and its pass, the setup's progress, and Resume."""
    async with rt.db.read() as session:
        request = await tap_repo.open_for_target(session, user_id)
        row = await wizard_repo.latest_for_user(session, user_id)
    facts = HomeFacts()
    tz = row.tz if row else None
    if request is not None:
        state = RequestState(request.state)
        until = wizard_views.local_time(request.tap_expires_at, tz) if state is RequestState.ISSUED else None
        facts = HomeFacts(request_label=tap_views.state_label(request), pass_until=until)
    if row is not None and row.live:
        facts = HomeFacts(
            request_label=facts.request_label,
            pass_until=facts.pass_until,
            wizard_id=row.id,
            progress=wizard.progress_label(state_of(row)),
            step_title=step_title(rt, row),
            helper=await name(rt, row.helper_slack_id),
        )
    elif row is not None and row.phase == WizardPhase.COMPLETED.value and request is None:
        name_part = f" named _{escape_mrkdwn(row.method_name)}_" if row.method_name else ""
        what = escape_mrkdwn(row.method_model or "your key") + name_part
        when = f" on {row.completed_at:%Y-%m-%d}" if row.completed_at else ""
        facts = HomeFacts(finished=f"*{what}*{when}")
    return wizard_views.home_blocks(facts)
