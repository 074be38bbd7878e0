"""Hardware OATH tokens, which Graph lists only in beta, end to end: a token added on the Security info page
during the token guide completes the setup; /lostkey offers a token and removes it through beta's DELETE;
App Home shows it; and a tenant that refuses the beta call loses only the tokens, never the list."""

from __future__ import annotations

from bot.sandbox.company import Company, Person
from bot.sandbox.graph_sim import Fault, MethodKind
from bot.sandbox.stack import Stack
from bot.services import registration
from bot.slack.ids import Action

from .helpers import (
    ShiftableClock,
    audit,
    eventually,
    message_text,
    settle,
    text_of,
    view_text,
)
from .test_lost_key import (
    ANY_DELETE,
    audit_row,
    confirm_and_wait,
    is_confirm,
    method_id,
    open_form,
    report,
    requests,
    submit_form,
    top_view,
)
from .wizard_helpers import advance, methods_polls, press, revealed_wizard, wizard_message

TOKEN_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
TOKEN_LIST = r"/authentication/hardwareOathMethods$"
TOKEN_DELETE = r"/authentication/hardwareOathMethods/[^/]+$"


def token_lists(stack: Stack, person: Person) -> int:
    found = stack.graph.requests_to("GET", TOKEN_LIST, version="beta")
    return len([r for r in found if f"/users/{person.entra_id}/" in r.path])


def give_token(stack: Stack, person: Person, serial: str, name: str) -> str:
    """The person added a token on their Security info page (serial, name, a code from the token)."""
    tenant = stack.graph.tenant
    device_id = tenant.add_hardware_oath_device(serial, "Token2", "C202", TOKEN_SECRET)
    tenant.assign_and_activate(
        person.entra_id, tenant.hardware_oath_devices[device_id], tenant.totp_now(serial), name
    )
    return device_id


# --- the registration watch ---------------------------------------------------------------------------------
async def test_a_token_added_on_the_security_info_page_completes_the_token_guide(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    ada, tenant = company.ada, stack.graph.tenant
    await revealed_wizard(stack, company)
    await settle(stack)
    at_start = token_lists(stack, ada)  # the baseline: which tokens were there at the reveal
    polls = methods_polls(stack, ada.entra_id)
    await advance(stack, app_clock, registration.FIRST_POLL_AFTER + registration.MAX_INTERVAL * 2)
    assert methods_polls(stack, ada.entra_id) > polls  # the security-key guide is watched...
    assert token_lists(stack, ada) == at_start  # ...without asking beta for tokens on each look

    await press(stack, ada, Action.WIZARD_CHOOSE, "Step 1 of 7", block_id="wizard_choose_hardware_oath")
    await press(stack, ada, Action.WIZARD_DONE, "Step 2 of 7")
    device_id = give_token(stack, ada, "TK-2024-0100", "Work token")
    await press(stack, ada, Action.WIZARD_DONE, "Step 3 of 7")  # a click: the next look comes soon

    await advance(stack, app_clock, registration.ACTIVE_DELAY + 1)
    done = await wizard_message(stack, ada, "code token is set up", timeout=5.0)

    assert "How to test it" in message_text(done)
    assert token_lists(stack, ada) > at_start
    [tap] = tenant.taps_of(ada.entra_id)
    assert tap.deleted  # the pass is gone at once, not when it runs out
    [entry] = await audit(stack, "registration.completed")
    assert entry.details["method"] == "hardware_oath"
    assert (entry.details["method_id"], entry.details["name"], entry.details["model"]) == (
        device_id,
        "Work token",
        "Token2 C202",
    )


async def test_a_token_assigned_but_not_activated_does_not_complete_the_setup(
    stack: Stack, company: Company, app_clock: ShiftableClock
) -> None:
    ada, tenant = company.ada, stack.graph.tenant
    await revealed_wizard(stack, company)
    await press(stack, ada, Action.WIZARD_CHOOSE, "Step 1 of 7", block_id="wizard_choose_hardware_oath")
    device_id = tenant.add_hardware_oath_device("TK-2024-0101", "Token2", "C202", TOKEN_SECRET)
    tenant.assign_device(ada.entra_id, device_id)  # the helpdesk assigned it; Ada has not activated it

    await press(stack, ada, Action.WIZARD_DONE, "Step 2 of 7")
    await advance(stack, app_clock, registration.MAX_INTERVAL * 2)
    assert await audit(stack, "registration.completed") == []
    assert not tenant.taps_of(ada.entra_id)[0].deleted

    tenant.activate_device(ada.entra_id, device_id, tenant.totp_now("TK-2024-0101"), "Desk token")
    await press(stack, ada, Action.WIZARD_DONE, "Step 3 of 7")
    await advance(stack, app_clock, registration.ACTIVE_DELAY + 1)
    await wizard_message(stack, ada, "code token is set up", timeout=5.0)
    [entry] = await audit(stack, "registration.completed")
    assert entry.details["method_id"] == device_id


# --- /lostkey and App Home ----------------------------------------------------------------------------------
async def test_lostkey_offers_a_token_and_removes_it_through_beta(stack: Stack, company: Company) -> None:
    morgan, tenant = company.morgan, stack.graph.tenant
    device_id = give_token(stack, morgan, "TK-2024-0200", "Morgan's token")

    form = await open_form(stack, morgan.slack_id)
    offered = view_text(form)
    assert "Morgan's token" in offered and "serial TK-2024-0200" in offered and "Token2 C202" in offered
    await submit_form(stack.slack, morgan.slack_id, form, "lost", others=[device_id])
    confirm = await top_view(stack.slack, morgan.slack_id, is_confirm, "the confirmation")
    assert "Morgan's token (hardware token)" in view_text(confirm)
    result = view_text(await confirm_and_wait(stack.slack, morgan.slack_id, confirm))

    [delete] = requests(stack, "DELETE", ANY_DELETE, morgan)
    assert (delete.version, delete.path, delete.status) == (
        "beta",
        f"/users/{morgan.entra_id}/authentication/hardwareOathMethods/{device_id}",
        204,
    )
    assert tenant.hardware_oath_devices[device_id].assigned_to is None
    assert "Morgan's token (hardware token)*: removed" in result
    assert MethodKind.FIDO2 in {m.kind for m in tenant.methods_of(morgan.entra_id)}  # only what was ticked
    assert (await audit_row(stack, "lostkey.verified")).details["strong_left"] is True
    removed = (await audit_row(stack, "lostkey.method.removed")).details["method"]
    assert (removed["kind"], removed["id"], removed["name"]) == ("hardware_oath", device_id, "Morgan's token")


async def test_app_home_lists_a_token(stack: Stack, company: Company) -> None:
    slack, morgan = stack.slack, company.morgan
    give_token(stack, morgan, "TK-2024-0300", "Keyring token")

    await slack.open_home(morgan.slack_id)

    home = await eventually(
        lambda: (
            (v := slack.home_view(morgan.slack_id)) is not None and "Keyring token" in text_of(v.blocks) and v
        ),
        "Morgan's App Home listing her token",
    )
    assert "Hardware token" in text_of(home.blocks) and "Token2 C202" in text_of(home.blocks)


# --- a tenant that refuses the beta call --------------------------------------------------------------------
async def test_a_forbidden_beta_call_loses_only_the_tokens(stack: Stack, company: Company) -> None:
    slack, morgan = stack.slack, company.morgan
    give_token(stack, morgan, "TK-2024-0400", "Morgan's token")
    stack.graph.add_fault(Fault(method="GET", path=TOKEN_LIST, status=403, times=0))
    yubikey = method_id(stack, morgan, MethodKind.FIDO2)

    form = await open_form(stack, morgan.slack_id)
    assert "YubiKey 5 NFC" in view_text(form) and "Morgan's token" not in view_text(form)
    await slack.open_home(morgan.slack_id)
    home = await eventually(
        lambda: (
            (v := slack.home_view(morgan.slack_id)) is not None and "YubiKey 5 NFC" in text_of(v.blocks) and v
        ),
        "Morgan's App Home without her token",
    )
    assert "couldn't reach Microsoft Entra" not in text_of(home.blocks)
    await submit_form(slack, morgan.slack_id, form, "lost", keys=[yubikey])
    confirm = await top_view(slack, morgan.slack_id, is_confirm, "the confirmation")
    result = view_text(await confirm_and_wait(slack, morgan.slack_id, confirm))

    assert "removed" in result
    assert [r.path.rsplit("/", 2)[-2] for r in requests(stack, "DELETE", ANY_DELETE, morgan)] == [
        "fido2Methods"
    ]
    assert token_lists(stack, morgan) >= 3 and all(
        r.status == 403 for r in stack.graph.requests_to("GET", TOKEN_LIST, version="beta")
    )
    assert (await audit_row(stack, "lostkey.verified")).details["strong_left"] is False


async def test_a_token_picked_is_never_taken_as_gone_when_beta_stops_answering(
    stack: Stack, company: Company
) -> None:
    slack, morgan, tenant = stack.slack, company.morgan, stack.graph.tenant
    device_id = give_token(stack, morgan, "TK-2024-0500", "Morgan's token")
    form = await open_form(stack, morgan.slack_id)  # beta answered: the token is offered
    stack.graph.add_fault(Fault(method="GET", path=TOKEN_LIST, status=403, times=0))

    await submit_form(slack, morgan.slack_id, form, "lost", others=[device_id])
    confirm = await top_view(slack, morgan.slack_id, is_confirm, "the confirmation")
    assert "Morgan's token (hardware token)" in view_text(confirm)
    result = view_text(await confirm_and_wait(slack, morgan.slack_id, confirm))

    [delete] = requests(stack, "DELETE", TOKEN_DELETE, morgan)  # deleted by id, not assumed gone
    assert (delete.version, delete.status) == ("beta", 204)
    assert tenant.hardware_oath_devices[device_id].assigned_to is None
    assert "Morgan's token (hardware token)*: removed" in result


async def test_report_helper_still_removes_keys(stack: Stack, company: Company) -> None:
    """The security-key path is unchanged by the extra token list (one delete, through v1.0)."""
    morgan = company.morgan
    yubikey = method_id(stack, morgan, MethodKind.FIDO2)
    await report(stack, morgan, "broken", keys=[yubikey])
    [delete] = requests(stack, "DELETE", ANY_DELETE, morgan)
    assert (delete.version, delete.path) == (
        "v1.0",
        f"/users/{morgan.entra_id}/authentication/fido2Methods/{yubikey}",
    )
