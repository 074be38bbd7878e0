"""A pass for today (/lostkey, "I left it at home today") end to end: the pass lasts the day, nothing is set
up, nothing is watched or nudged, and every text says it is a pass for today."""

from __future__ import annotations

import pytest

from bot.sandbox.company import Company
from bot.sandbox.slack_sim import SimMessage
from bot.sandbox.stack import Stack
from bot.slack.ids import Action

from .helpers import (
    ShiftableClock,
    approve,
    audit,
    bot_dms,
    channel_messages,
    message_text,
    pass_value,
    reveal,
    settle,
    tap_posts,
    view_text,
    wait_card,
    wait_dm,
)
from .test_lost_key import is_message, open_form, submit_form, top_view
from .wizard_helpers import METHODS_LIST, advance, wizard_messages


async def pass_for_today_ready(stack: Stack, company: Company) -> SimMessage:
    """Morgan left her key at home: /lostkey, ask for a pass for today, Grace confirms, Sam approves.
    Returns Morgan's DM with the Reveal button."""
    slack, morgan = stack.slack, company.morgan
    form = await open_form(stack, morgan.slack_id)
    await submit_form(slack, morgan.slack_id, form, "at_home")
    await top_view(slack, morgan.slack_id, is_message("Nothing was removed"), "the result")
    offer = await wait_dm(slack, morgan.slack_id, "Ask for a pass for today")
    await slack.click(morgan.slack_id, Action.LOST_PASS_TODAY, message=offer)
    question = await wait_dm(slack, company.grace.slack_id, "Did you expect Morgan Lee")
    assert "for today, having left their security key at home" in message_text(question)
    await slack.click(company.grace.slack_id, Action.MANAGER_CONFIRM, message=question)
    card = await wait_card(slack, ":white_check_mark: confirmed")
    assert "Key left at home: a pass for today" in message_text(card)
    assert "A pass for today only" in message_text(card) and "no key setup follows" in message_text(card)
    outcome = await approve(slack, company.sam.slack_id, card)
    assert ":white_check_mark:" in outcome, outcome
    return await wait_dm(slack, morgan.slack_id, "Your pass for today is ready")


def requested_lifetime(stack: Stack, entra_id: str) -> int:
    [post] = tap_posts(stack.graph, entra_id)
    return int(post.json["lifetimeInMinutes"])


async def test_a_pass_for_today_lasts_the_day_and_starts_no_setup(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack, morgan = stack.slack, company.morgan
    ready = await pass_for_today_ready(stack, company)
    assert "ready to sign in" in message_text(ready) and "set up your key" not in message_text(ready)

    modal = await reveal(slack, morgan.slack_id, ready)

    shown = view_text(modal)
    assert pass_value(modal)
    assert "pass for today" in shown and "Your security key still works" in shown
    assert "nothing to set up" in shown and "First step" not in shown and "Add sign-in method" not in shown
    assert requested_lifetime(stack, morgan.entra_id) == 480  # KEYDESK_TODAY_PASS_MINUTES' default
    [tap] = stack.graph.tenant.taps_of(morgan.entra_id)
    assert tap.lifetime_minutes == 480 and tap.is_usable_once  # one-time unless configured otherwise
    await settle(stack)
    assert wizard_messages(slack, morgan) == []
    assert not [m for m in bot_dms(slack, morgan.slack_id) if "Set up your security key" in message_text(m)]
    assert await audit(stack, "registration.") == []
    looks = len(stack.graph.requests_to("GET", METHODS_LIST))

    await advance(stack, app_clock, (480 - 5) * 60)  # past when a setup would be nudged (10 min before)
    assert not [m for m in bot_dms(slack, morgan.slack_id) if "runs out in about" in message_text(m)]
    assert len(stack.graph.requests_to("GET", METHODS_LIST)) == looks  # nothing watches for a new key

    await advance(stack, app_clock, 6 * 60)  # the pass runs out
    ended = await wait_dm(slack, morgan.slack_id, "Your pass for today has ended")
    assert "Your security key still works" in message_text(ended)
    assert "before a security key was registered" not in message_text(ended)
    assert tap.deleted
    card = await wait_card(slack, "Pass for today ended")
    assert "before a key was registered" not in message_text(card)
    assert not [m for m in channel_messages(slack) if "expired before a key was registered" in m.text]
    assert not [m for m in bot_dms(slack, morgan.slack_id) if "ran out before I saw" in message_text(m)]
    issued = [e for e in await audit(stack, "tap.issued")]
    assert [e.details["lifetime_minutes"] for e in issued] == [480]


@pytest.mark.keydesk_settings(today_pass_minutes=1440)
async def test_the_lifetime_for_today_is_clamped_to_the_tenant_policy(stack: Stack, company: Company) -> None:
    stack.graph.tenant.tap_policy.maximum_lifetime_in_minutes = 300
    ready = await pass_for_today_ready(stack, company)

    modal = await reveal(stack.slack, company.morgan.slack_id, ready)

    assert pass_value(modal), view_text(modal)
    assert requested_lifetime(stack, company.morgan.entra_id) == 300


@pytest.mark.keydesk_settings(today_pass_minutes=120, tap_lifetime_minutes=90)
async def test_a_setup_pass_keeps_its_own_lifetime(stack: Stack, company: Company) -> None:
    from .helpers import approved_dm

    ada = company.ada
    dm = await approved_dm(stack, company)
    modal = await reveal(stack.slack, ada.slack_id, dm)
    assert "First step" in view_text(modal) and "pass for today" not in view_text(modal)
    assert requested_lifetime(stack, ada.entra_id) == 90

    ready = await pass_for_today_ready(stack, company)
    await reveal(stack.slack, company.morgan.slack_id, ready)
    assert requested_lifetime(stack, company.morgan.entra_id) == 120
