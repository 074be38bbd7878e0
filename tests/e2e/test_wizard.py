"""The guided registration end to end: signed Slack requests into the running app, with Slack and Graph
simulated. Each guide is walked through (with Back), the key is "registered" in the Graph simulator as the
person would in the browser, and the tests assert what the person and the helpdesk saw, what Graph was
asked (the pass deleted), and the audit log."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import pytest
from rich.console import Console

from bot.domain.tap_request import RequestState
from bot.sandbox.company import Company
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack
from bot.services import registration
from bot.slack.ids import Action

from .helpers import (
    ShiftableClock,
    action_ids,
    audit,
    current,
    eventually,
    message_text,
    settle,
    stale_click,
    tap_deletes,
    wait_card,
    wait_channel,
    wait_dm,
)
from .wizard_helpers import (
    YUBIKEY_5_NFC,
    advance,
    methods_polls,
    press,
    restart,
    revealed_wizard,
    row_of,
    wizard_message,
    wizard_messages,
)


async def test_fido2_guide_with_back_to_completion(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack, graph, ada = stack.slack, stack.graph, company.ada
    first = await revealed_wizard(stack, company)
    intro = message_text(first)
    assert "Set up your security key" in intro
    assert "Security keys are switched on for your account" in intro
    assert "at least *4 characters*" in intro
    assert {Action.WIZARD_DONE, Action.WIZARD_STUCK} <= action_ids(first.blocks)

    step = await press(stack, ada, Action.WIZARD_DONE, "Step 1 of 11")
    assert "Open your Security info page" in message_text(step)
    assert Action.WIZARD_BACK not in action_ids(step.blocks)  # nothing to go back to
    await press(stack, ada, Action.WIZARD_DONE, "Step 2 of 11")
    step = await press(stack, ada, Action.WIZARD_BACK, "Step 1 of 11")
    assert "Temporary Access Pass" in message_text(step)
    for number in range(2, 8):
        step = await press(stack, ada, Action.WIZARD_DONE, f"Step {number} of 11")
    assert "Touch the key" in message_text(step)

    graph.tenant.register_fido2_as_user(ada.entra_id, "Blue keyring", YUBIKEY_5_NFC, "YubiKey 5 NFC")
    await press(stack, ada, Action.WIZARD_DONE, "Step 8 of 11")
    await advance(stack, app_clock, registration.ACTIVE_DELAY + 1)

    done = await wizard_message(stack, ada, "is set up")
    text = message_text(done)
    assert "*YubiKey 5 NFC* named _Blue keyring_" in text
    assert "Sign out everywhere" in text and "Sign in with a security key" in text
    assert len(wizard_messages(slack, ada)) == 1 and done.ts == first.ts  # one message, updated in place
    [tap] = graph.tenant.taps_of(ada.entra_id)
    assert tap.deleted
    assert [r.path.rsplit("/", 1)[1] for r in tap_deletes(graph, ada.entra_id)] == [tap.id]
    card = await wait_card(slack, "Completed: key registered, pass deleted")
    assert Action.TAP_APPROVE not in action_ids(card.blocks)
    note = await wait_channel(slack, "registered *YubiKey 5 NFC*")
    assert note.thread_ts == card.ts
    [entry] = await audit(stack, "registration.completed")
    assert entry.details["model"] == "YubiKey 5 NFC" and entry.details["request_closed"] is True
    assert entry.details["tap_id"] == tap.id
    home = await eventually(lambda: slack.home_view(ada.slack_id), "Ada's App Home")
    assert "Blue keyring" in message_text_of_view(home)
    shown = [message_text(m) for m in slack.dm_messages(ada.slack_id) + slack.messages(HELPDESK_CHANNEL)]
    assert tap.value and not any(tap.value in text for text in shown)  # the pass never reaches a message


async def test_a_double_click_moves_one_step(stack: Stack, company: Company) -> None:
    slack, ada = stack.slack, company.ada
    await revealed_wizard(stack, company)
    step = await press(stack, ada, Action.WIZARD_DONE, "Step 1 of 11")

    await asyncio.gather(*(slack.click(ada.slack_id, Action.WIZARD_DONE, message=step) for _ in range(2)))

    await wizard_message(stack, ada, "Step 2 of 11")
    await settle(stack)
    row = await row_of(stack, ada)
    assert (row.step_index, row.version) == (1, 2)  # start -> step 1 -> step 2, the second click was stale


def message_text_of_view(view: object) -> str:
    from .helpers import text_of

    return text_of(getattr(view, "blocks", []))


async def test_authenticator_guide_chosen_at_the_start(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    ada = company.ada
    first = await revealed_wizard(stack, company)
    assert "Set up Microsoft Authenticator" in message_text(first)

    step = await press(
        stack, ada, Action.WIZARD_CHOOSE, "Step 1 of 9", block_id="wizard_choose_authenticator"
    )
    assert "Install the app" in message_text(step) and ":iphone:" in message_text(step)
    for number in range(2, 10):
        await press(stack, ada, Action.WIZARD_DONE, f"Step {number} of 9")
    await press(stack, ada, Action.WIZARD_DONE, "All 9 steps done")
    await press(stack, ada, Action.WIZARD_BACK, "Step 9 of 9")
    waiting = await press(stack, ada, Action.WIZARD_DONE, "checking Microsoft Entra")
    assert Action.WIZARD_DONE not in action_ids(waiting.blocks)

    stack.graph.tenant.add_authenticator(ada.entra_id, display_name="Ada's Pixel")
    await advance(stack, app_clock, registration.ACTIVE_DELAY + 1)

    done = await wizard_message(stack, ada, "Authenticator app is set up")
    assert "_Ada's Pixel_" in message_text(done) or "Ada's Pixel" in message_text(done)
    assert stack.graph.tenant.taps_of(ada.entra_id)[-1].deleted
    chosen = await audit(stack, "registration.method_chosen")
    assert [e.details["guide"] for e in chosen] == ["authenticator"]
    [entry] = await audit(stack, "registration.completed")
    assert entry.details["method"] == "authenticator"


async def test_a_key_registered_before_the_reveal_does_not_count(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    """Only a method created after the reveal completes the setup (not one the person already had)."""
    ada = company.ada
    old = stack.graph.clock.now() - timedelta(days=30)  # not added in the last 24 h (IDV-5)
    stack.graph.tenant.add_authenticator(ada.entra_id, display_name="Old phone", created=old)
    await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_CHOOSE, "Step 1 of 9", block_id="wizard_choose_authenticator")
    await advance(stack, app_clock, registration.FIRST_POLL_AFTER + registration.ACTIVE_DELAY + 1)

    assert methods_polls(stack, ada.entra_id) >= 2  # the baseline, then at least one poll
    assert "Step 1 of 9" in message_text(await wizard_message(stack, ada))
    assert not stack.graph.tenant.taps_of(ada.entra_id)[-1].deleted


async def test_restart_mid_guide_keeps_the_step_and_the_watch(
    stack: Stack, company: Company, app_clock: ShiftableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = company.ada
    first = await revealed_wizard(stack, company)
    for number in range(1, 4):
        await press(stack, ada, Action.WIZARD_DONE, f"Step {number} of 11")

    await restart(stack, app_clock, monkeypatch)

    step = await press(stack, ada, Action.WIZARD_DONE, "Step 4 of 11")
    assert step.ts == first.ts
    stack.graph.tenant.register_fido2_as_user(ada.entra_id, "Work key", YUBIKEY_5_NFC, "YubiKey 5 NFC")
    await advance(stack, app_clock, registration.MAX_INTERVAL * (1 + registration.JITTER) + 1)

    await wizard_message(stack, ada, "is set up")
    assert stack.graph.tenant.taps_of(ada.entra_id)[-1].deleted
    row = await row_of(stack, ada)
    assert (row.phase, row.method_name) == ("completed", "Work key")


async def test_pass_expiry_before_completion(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack, ada = stack.slack, company.ada
    await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_DONE, "Step 1 of 11")
    [tap] = stack.graph.tenant.taps_of(ada.entra_id)

    await advance(stack, app_clock, tap.lifetime_minutes * 60 + 5)

    ran_out = await wizard_message(stack, ada, "Your pass ran out")
    assert action_ids(ran_out.blocks) == {Action.TAP_ASK_AGAIN}
    assert tap.deleted
    await wait_channel(slack, "pass expired before a key was registered")
    await advance(stack, app_clock, registration.GRACE.total_seconds() + registration.MAX_INTERVAL * 2)
    row = await row_of(stack, ada)
    assert row.phase == "expired"
    assert [e.action for e in await audit(stack, "registration.expired")] == ["registration.expired"]
    polls = methods_polls(stack, ada.entra_id)
    await advance(stack, app_clock, 600)
    assert methods_polls(stack, ada.entra_id) == polls  # the watch stopped
    assert "Your pass ran out" in message_text(current(slack, ran_out))


async def test_nudge_once_shortly_before_the_pass_expires(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    ada = company.ada
    await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_DONE, "Step 1 of 11")
    [tap] = stack.graph.tenant.taps_of(ada.entra_id)
    before = tap.lifetime_minutes * 60 - registration.NUDGE_BEFORE.total_seconds()

    await advance(stack, app_clock, before + 1)

    nudge = await wait_dm(stack.slack, ada.slack_id, "Your pass runs out in about")
    assert "Step 1 of 11" in message_text(nudge) and Action.WIZARD_RESUME in action_ids(nudge.blocks)
    await advance(stack, app_clock, 240)
    nudges = [m for m in wizard_dm_texts(stack, ada) if "runs out in about" in m]
    assert len(nudges) == 1


def wizard_dm_texts(stack: Stack, person: object) -> list[str]:
    from .helpers import bot_dms

    return [message_text(m) for m in bot_dms(stack.slack, person.slack_id)]  # type: ignore[attr-defined]


async def test_stale_and_foreign_clicks_change_nothing(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack, ada = stack.slack, company.ada
    await revealed_wizard(stack, company)
    step1 = await press(stack, ada, Action.WIZARD_DONE, "Step 1 of 11")
    await press(stack, ada, Action.WIZARD_DONE, "Step 2 of 11")

    await stale_click(slack, ada.slack_id, step1, Action.WIZARD_DONE)  # a client that hasn't refreshed
    await slack.click(company.sam.slack_id, Action.WIZARD_DONE, message=current(slack, step1), forge=True)
    await advance(stack, app_clock, 0)

    row = await row_of(stack, ada)
    assert (row.step_index, row.phase) == (1, "in_step")
    assert "Step 2 of 11" in message_text(await wizard_message(stack, ada))
    [refused] = await audit(stack, "registration.click.refused")
    assert refused.actor == f"slack:{company.sam.slack_id}"


async def test_revealing_again_keeps_the_wizard(stack: Stack, company: Company) -> None:
    from .helpers import reveal

    slack, ada = stack.slack, company.ada
    first = await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_DONE, "Step 1 of 11")
    dm = await wait_dm(slack, ada.slack_id, "You revealed it 1×")

    await reveal(slack, ada.slack_id, dm)

    await wait_dm(slack, ada.slack_id, "You revealed it 2×")
    assert len(wizard_messages(slack, ada)) == 1
    message = await wizard_message(stack, ada, "Step 1 of 11")
    assert message.ts == first.ts
    assert [e.action for e in await audit(stack, "registration.started")] == ["registration.started"]


async def test_app_home_shows_the_setup(stack: Stack, company: Company) -> None:
    slack, ada = stack.slack, company.ada
    first = await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_DONE, "Step 1 of 11")

    await slack.open_home(ada.slack_id)

    home = await eventually(
        lambda: (
            (v := slack.home_view(ada.slack_id)) is not None and "Your setup" in message_text_of_view(v) and v
        ),
        "Ada's App Home with her setup",
    )
    text = message_text_of_view(home)
    assert "Pass issued" in text and "works until" in text
    assert "Step 1 of 11" in text and "Open your Security info page" in text
    assert {Action.WIZARD_RESUME, Action.START_SETUP, Action.REPORT_LOST, Action.ASK_HELP} <= action_ids(
        home.blocks
    )

    await slack.click(ada.slack_id, Action.WIZARD_RESUME, view_id=home.id)

    moved = await eventually(
        lambda: (m := wizard_messages(slack, ada)) and m[-1].ts != first.ts and m[-1], "the setup reposted"
    )
    assert "Step 1 of 11" in message_text(moved)
    await eventually(lambda: len(wizard_messages(slack, ada)) == 1, "the old copy to go")


async def test_demo_scenario_plays(stack: Stack, company: Company) -> None:
    from bot.sandbox.demo import Narrator, onboarding
    from bot.sandbox.demo_registration import registration_scenario

    out = io.StringIO()
    narrator = Narrator(stack, company, Console(file=out, width=110), fast=True)

    await onboarding(narrator)
    await registration_scenario(narrator)

    shown = out.getvalue()
    assert "Before we start" in shown and "Step 1 of 11" in shown and "is set up" in shown
    assert stack.graph.tenant.taps_of(company.ada.entra_id)[-1].deleted
    request_state = await _request_state(stack, company)
    assert request_state == RequestState.COMPLETED


async def _request_state(stack: Stack, company: Company) -> RequestState:
    from bot.store import tap_repo

    async with stack.keydesk.rt.db.read() as session:
        request = await tap_repo.latest_for_target(session, company.ada.slack_id)
    assert request is not None
    return RequestState(request.state)


_ = timedelta
