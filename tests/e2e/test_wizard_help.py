"""Getting help during the setup (I'm stuck, Take it, the relay both ways) and adding a hardware OATH token
from Slack, end to end through signed requests."""

from __future__ import annotations

from bot.sandbox.company import Company
from bot.sandbox.graph_sim import Fault
from bot.sandbox.stack import HELPDESK_CHANNEL, Stack
from bot.slack.ids import Action, ViewId

from .helpers import (
    action_ids,
    audit,
    bot_dms,
    channel_messages,
    current,
    eventually,
    find_card,
    message_text,
    settle,
    stale_click,
    view_text,
    wait_channel,
    wait_dm,
)
from .wizard_helpers import press, revealed_wizard, row_of, wizard_message

TOKEN_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


async def test_stuck_take_and_relay_both_ways(stack: Stack, company: Company) -> None:
    slack = stack.slack
    ada, sam, alex = company.ada, company.sam, company.alex
    await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_DONE, "Step 1 of 11")
    await press(stack, ada, Action.WIZARD_DONE, "Step 2 of 11")

    step = await press(stack, ada, Action.WIZARD_STUCK, "asked the helpdesk")
    assert Action.WIZARD_STUCK not in action_ids(step.blocks)  # once per step
    post = await wait_channel(slack, "is stuck on *Step 2 of 11* (Add a security key)")
    card = find_card(slack)
    assert card is not None and post.thread_ts == card.ts
    assert "On this step for" in message_text(post) and Action.STUCK_TAKE in action_ids(post.blocks)

    await slack.click(sam.slack_id, Action.STUCK_TAKE, message=post)
    await wait_dm(slack, ada.slack_id, "*Sam Rivera* from the helpdesk is on it")
    taken = await eventually(
        lambda: "is on it" in message_text(current(slack, post)) and current(slack, post), "the post taken"
    )
    assert Action.STUCK_TAKE not in action_ids(taken.blocks)
    assert "Sam Rivera" in message_text(await wizard_message(stack, ada, "from the helpdesk is on it"))
    await stale_click(slack, alex.slack_id, post, Action.STUCK_TAKE)
    await eventually(
        lambda: [m for m in slack.ephemerals(HELPDESK_CHANNEL, alex.slack_id) if "already took" in m.text],
        "Alex told it is taken",
    )

    await slack.send_thread_reply(
        sam.slack_id, HELPDESK_CHANNEL, post.thread_ts or "", "Try the other USB port"
    )
    await wait_dm(slack, ada.slack_id, "*Sam Rivera* (helpdesk): Try the other USB port")
    await slack.send_thread_reply(
        alex.slack_id, HELPDESK_CHANNEL, post.thread_ts or "", "internal: policy ok?"
    )
    await slack.send_dm(ada.slack_id, "It worked on the other port, thanks!")
    await wait_channel(slack, f"<@{ada.slack_id}>: It worked on the other port, thanks!")
    await slack.send_dm(ada.slack_id, "my PIN is 482913")
    await wait_dm(slack, ada.slack_id, "didn't pass it on")
    await settle(stack)
    assert not any("internal" in message_text(m) for m in bot_dms(slack, ada.slack_id))
    assert not any("482913" in message_text(m) for m in channel_messages(slack))

    await slack.click(sam.slack_id, Action.STUCK_RELEASE, message=current(slack, post))
    await wait_dm(slack, ada.slack_id, "has finished helping you")
    await slack.send_dm(ada.slack_id, "hello again")
    await settle(stack)
    assert not any("hello again" in message_text(m) for m in channel_messages(slack))
    assert [e.action for e in await audit(stack, "registration.")] == [
        "registration.started",
        "registration.stuck",
        "registration.help.taken",
        "registration.help.released",
    ]
    [stuck] = await audit(stack, "registration.stuck")
    assert stuck.details["step"] == "Step 2 of 11" and stuck.details["guide"] == "fido2"


async def test_the_person_cannot_take_their_own_setup(stack: Stack, company: Company) -> None:
    slack, ada = stack.slack, company.ada
    await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_STUCK, "asked the helpdesk")
    post = await wait_channel(slack, "is stuck on")

    await slack.click(ada.slack_id, Action.STUCK_TAKE, message=post, forge=True)
    await settle(stack)

    assert (await row_of(stack, ada)).helper_slack_id is None
    [refused] = await audit(stack, "registration.help.refused")
    assert refused.details["reason"].startswith("You can't take your own setup")


async def test_only_approvers_can_take_a_setup(stack: Stack, company: Company) -> None:
    """Being in the helpdesk channel is not enough: the taker talks to the person as the helpdesk."""
    slack, ada, grace = stack.slack, company.ada, company.grace
    slack.channel(HELPDESK_CHANNEL).members.add(grace.slack_id)  # in the channel, not an approver
    await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_STUCK, "asked the helpdesk")
    post = await wait_channel(slack, "is stuck on")

    await slack.click(grace.slack_id, Action.STUCK_TAKE, message=post)

    await eventually(
        lambda: [
            m for m in slack.ephemerals(HELPDESK_CHANNEL, grace.slack_id) if "approver groups" in m.text
        ],
        "Grace told why not",
    )
    [refused] = await audit(stack, "registration.help.refused")
    assert refused.actor == f"slack:{grace.slack_id}"
    assert refused.details["reason"].startswith("Only members of the keydesk approver groups")
    assert (await row_of(stack, ada)).helper_slack_id is None
    assert Action.STUCK_TAKE in action_ids(current(slack, post).blocks)
    assert not [m for m in bot_dms(slack, ada.slack_id) if "from the helpdesk is on it" in message_text(m)]


async def test_taking_a_setup_while_entra_is_down_is_refused_with_the_reason(
    stack: Stack, company: Company
) -> None:
    slack, ada, sam = stack.slack, company.ada, company.sam
    await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_STUCK, "asked the helpdesk")
    post = await wait_channel(slack, "is stuck on")
    stack.graph.add_fault(Fault(status=503, retry_after=0.01, times=0))

    await slack.click(sam.slack_id, Action.STUCK_TAKE, message=post)

    told = await eventually(
        lambda: [m for m in slack.ephemerals(HELPDESK_CHANNEL, sam.slack_id) if "approver rights" in m.text],
        "Sam told why not",
        timeout=10.0,
    )
    assert "you need them to take a setup" in told[0].text
    [refused] = await audit(stack, "registration.help.refused")
    assert refused.actor == f"slack:{sam.slack_id}"
    stack.graph.clear_faults()
    assert (await row_of(stack, ada)).helper_slack_id is None


# --- hardware OATH in Slack --------------------------------------------------------------------------------
async def open_token_modal(stack: Stack, company: Company) -> str:
    ada = company.ada
    await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_CHOOSE, "Step 1 of 7", block_id="wizard_choose_hardware_oath")
    await press(stack, ada, Action.WIZARD_DONE, "Step 2 of 7")
    step = await press(stack, ada, Action.WIZARD_BACK, "Step 1 of 7")
    assert "Find the serial number" in message_text(step) and Action.WIZARD_OATH in action_ids(step.blocks)
    await stack.slack.click(ada.slack_id, Action.WIZARD_OATH, message=current(stack.slack, step))
    view = await eventually(
        lambda: [v for v in stack.slack.open_views(ada.slack_id) if v.callback_id == ViewId.WIZARD_OATH],
        "the token modal",
    )
    return view[-1].id


async def submit_token(
    stack: Stack, company: Company, view_id: str, serial: str, code: str, expect: str
) -> str:
    slack = stack.slack
    view = slack.view(view_id)
    assert view is not None
    code_block = next(
        b["block_id"] for b in view.blocks if str(b.get("block_id", "")).startswith("oath_code_")
    )
    await slack.submit_view(
        company.ada.slack_id, view_id, {"oath_serial": {"value": serial}, code_block: {"value": code}}
    )
    shown = await eventually(
        lambda: (v := slack.view(view_id)) is not None and expect in view_text(v) and v,
        f"the modal to say {expect!r}",
        timeout=10.0,
    )
    return view_text(shown)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_hardware_token_added_from_slack(stack: Stack, company: Company) -> None:
    slack, tenant, ada = stack.slack, stack.graph.tenant, company.ada
    tenant.add_hardware_oath_device("TK-2024-0001", "Token2", "C202", TOKEN_SECRET)
    view_id = await open_token_modal(stack, company)

    wrong = await submit_token(
        stack,
        company,
        view_id,
        "TK-2024-0001",
        other_code(tenant.totp_now("TK-2024-0001")),
        "wasn't accepted",
    )
    again = slack.view(view_id)
    assert again is not None and "oath_code_1" in {
        b.get("block_id") for b in again.blocks
    }  # a fresh code field
    unknown = await submit_token(
        stack, company, view_id, "NOPE-999", tenant.totp_now("TK-2024-0001"), "can't find a token"
    )
    assert "NOPE-999" in unknown and "wasn't accepted" in wrong
    good_code = tenant.totp_now("TK-2024-0001")
    done = await submit_token(stack, company, view_id, "TK-2024-0001", good_code, "is added to your account")

    assert "TK-2024-0001" in done
    device = tenant.device_by_serial("TK-2024-0001")
    assert device is not None and device.assigned_to == ada.entra_id and device.status == "activated"
    message = await wizard_message(stack, ada, "code token is set up", timeout=5.0)
    assert "How to test it" in message_text(message)
    assert tenant.taps_of(ada.entra_id)[-1].deleted
    reasons = [e.details["reason"] for e in await audit(stack, "registration.oath.refused")]
    assert reasons == ["wrong_code", "unknown_token"]
    entries = await audit(stack)
    assert good_code not in slack.all_outbound_text()
    assert not any(good_code in str(e.details) for e in entries)


async def test_a_token_assigned_to_someone_else_is_refused_and_reported(
    stack: Stack, company: Company
) -> None:
    tenant = stack.graph.tenant
    tenant.add_hardware_oath_device(
        "TK-2024-0002", "Token2", "C202", TOKEN_SECRET, assigned_to=company.morgan.entra_id
    )
    view_id = await open_token_modal(stack, company)

    text = await submit_token(
        stack, company, view_id, "TK-2024-0002", tenant.totp_now("TK-2024-0002"), "belongs to someone else"
    )

    assert "TK-2024-0002" in text
    device = tenant.device_by_serial("TK-2024-0002")
    assert device is not None and device.assigned_to == company.morgan.entra_id
    alert = await wait_channel(stack.slack, "which is assigned to someone else")
    card = find_card(stack.slack)
    assert card is not None and alert.thread_ts == card.ts
    [refused] = await audit(stack, "registration.oath.refused")
    assert refused.details["reason"] == "assigned_elsewhere"
