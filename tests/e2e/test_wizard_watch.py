"""The completion watch's manners (back-off, Graph throttling honoured, no busy loop), and the pre-flight
read of the tenant's FIDO2 policy, end to end."""

from __future__ import annotations

import pytest

from bot.sandbox.company import Company
from bot.sandbox.graph_sim import Fault, KeyRestrictions
from bot.sandbox.stack import Stack
from bot.services import registration
from bot.slack.ids import Action

from .helpers import (
    ShiftableClock,
    action_ids,
    audit,
    current,
    find_card,
    message_text,
    wait_channel,
    wait_dm,
)
from .wizard_helpers import (
    METHODS_LIST,
    YUBIKEY_5_NFC,
    advance,
    methods_polls,
    press,
    revealed_wizard,
    row_of,
    wizard_message,
)


async def test_polling_backs_off_while_nothing_happens(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    ada = company.ada
    await revealed_wizard(stack, company)
    baseline = methods_polls(stack, ada.entra_id)

    steps = 20
    for _ in range(steps):  # ten minutes, in 30-second steps
        await advance(stack, app_clock, 30)

    polls = methods_polls(stack, ada.entra_id) - baseline
    # 20-80 s to the first look, then half the idle time (15 s to 60 s) between looks: 8 to 11 looks in ten
    # minutes of 30-s steps; never more than one per step (no busy loop), well under one per MIN_INTERVAL
    assert 7 <= polls <= min(steps, 600 / registration.MIN_INTERVAL), polls


async def test_throttled_graph_is_waited_out_without_a_busy_loop(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    graph, ada = stack.graph, company.ada
    await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_DONE, "Step 1 of 11")
    graph.add_fault(Fault("GET", METHODS_LIST, status=429, retry_after=120, times=0))
    graph.tenant.register_fido2_as_user(ada.entra_id, "Desk key", YUBIKEY_5_NFC, "YubiKey 5 NFC")
    before = methods_polls(stack, ada.entra_id)

    await advance(stack, app_clock, registration.FIRST_POLL_AFTER + registration.ACTIVE_DELAY + 1)
    assert methods_polls(stack, ada.entra_id) == before + 1  # one look, answered 429 Retry-After: 120
    for _ in range(11):  # 110 s: still inside Retry-After
        await advance(stack, app_clock, 10)
    assert methods_polls(stack, ada.entra_id) == before + 1
    await advance(stack, app_clock, 15)
    assert methods_polls(stack, ada.entra_id) == before + 2  # asked again only once Retry-After passed

    graph.clear_faults()
    await advance(stack, app_clock, 121)

    await wizard_message(stack, ada, "is set up")
    # two throttled looks, the one that found the key, and App Home listing Ada's methods afterwards
    assert methods_polls(stack, ada.entra_id) == before + 4
    [entry] = await audit(stack, "registration.completed")
    assert entry.details["name"] == "Desk key"


async def test_revoked_pass_stops_the_setup(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    slack, ada, grace = stack.slack, company.ada, company.grace
    await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_DONE, "Step 1 of 11")
    notice = await wait_dm(slack, grace.slack_id, "A Temporary Access Pass was issued")

    await slack.click(grace.slack_id, Action.MANAGER_LOOKS_WRONG, message=current(slack, notice))
    await wait_dm(slack, ada.slack_id, "cancelled and your sign-ins were ended")
    await advance(stack, app_clock, registration.MAX_INTERVAL * (1 + registration.JITTER) + 1)

    stopped = await wizard_message(stack, ada, "cancelled for safety")
    assert not action_ids(stopped.blocks)
    assert (await row_of(stack, ada)).ended_reason == "revoked"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("self_service", "doesn't let people register security keys themselves"),
        ("disabled", "switched off in your organisation's Microsoft Entra settings"),
        ("excluded", "isn't in the group allowed to use security keys"),
    ],
)
async def test_preflight_blocked_tells_the_person_and_the_helpdesk(
    stack: Stack, company: Company, change: str, says: str
) -> None:
    slack, ada = stack.slack, company.ada
    policy = stack.graph.tenant.fido2_policy
    if change == "self_service":
        policy.is_self_service_registration_allowed = False
    elif change == "disabled":
        policy.state = "disabled"
    else:
        group = stack.graph.tenant.add_group("No keys yet", members=[ada.entra_id])
        policy.exclude_targets = [group.id]

    first = await revealed_wizard(stack, company)

    text = message_text(first)
    assert says in text and "I've told the helpdesk" in text
    assert Action.WIZARD_DONE not in action_ids(first.blocks)  # no Start for a key that cannot be registered
    assert "Set up Microsoft Authenticator" in text and "wizard_choose_fido2" not in str(first.blocks)
    alert = await wait_channel(slack, "can't register a security key themselves")
    card = find_card(slack)
    assert card is not None and alert.thread_ts == card.ts
    [started] = await audit(stack, "registration.started")
    assert says.split()[0].lower() in str(started.details["blocked"]).lower()
    step = await press(
        stack, ada, Action.WIZARD_CHOOSE, "Step 1 of 9", block_id="wizard_choose_authenticator"
    )
    assert "Install the app" in message_text(step)


async def test_preflight_names_the_key_rules(stack: Stack, company: Company) -> None:
    stack.graph.tenant.fido2_policy.key_restrictions = KeyRestrictions(
        is_enforced=True, enforcement_type="allow", aaguids=[YUBIKEY_5_NFC]
    )

    first = await revealed_wizard(stack, company)

    text = message_text(first)
    assert "Only approved key models work here" in text
    assert "genuine, certified model" in text  # attestation is enforced in the simulated tenant
    assert Action.WIZARD_DONE in action_ids(first.blocks)
