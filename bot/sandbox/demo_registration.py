"""The demo's registration chapter: after the reveal, Ada follows the guide in her DM, registers her
YubiKey in the browser (the Graph simulator plays that part), and keydesk notices, deletes the pass and
closes the request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.sandbox.company import YUBIKEY_5_NFC
from bot.slack import wizard_views
from bot.slack.ids import Action

if TYPE_CHECKING:
    from bot.sandbox.narrator import Narrator

_MARKS = (
    wizard_views.NAV_BLOCK,
    wizard_views.RESULT_BLOCK,
    wizard_views.AGAIN_BLOCK,
    wizard_views.CHOOSE_PREFIX,
)


def _wizard(n: Narrator) -> Any:
    """Ada's wizard message as it stands now, or None."""
    dm = n.stack.slack.dm_with(n.company.ada.slack_id) or ""
    found = [
        m
        for m in n.stack.slack.messages(dm)
        if m.is_bot and any(str(block.get("block_id", "")).startswith(_MARKS) for block in m.blocks)
    ]
    return found[-1] if found else None


def _shows(n: Narrator, words: str) -> Any:
    message = _wizard(n)
    return message if message is not None and words in message.text + str(message.blocks) else None


async def _press(n: Narrator, action: Action, expect: str, *, show: bool = False) -> None:
    await n.stack.slack.click(n.company.ada.slack_id, action, message=_wizard(n))
    message = await n.until(lambda: _shows(n, expect), f"the wizard to show {expect!r}")
    if show:
        n.show_message(message, "DM with Ada Lovelace")


async def registration_scenario(n: Narrator) -> None:
    slack, graph, ada = n.stack.slack, n.stack.graph, n.company.ada
    channel = n.company.helpdesk_channel
    n.chapter("Ada sets up her key, one step at a time")
    for view in slack.open_views(ada.slack_id)[-1:]:
        await slack.close_view(ada.slack_id, view.id)
    first = await n.until(lambda: _shows(n, "Let's do this together"), "the setup message")
    n.note("Right after the reveal, one setup message appears in Ada's DM. keydesk read the tenant's FIDO2")
    n.note("policy first, so Ada knows what applies to her before she starts:")
    n.show_message(first, "DM with Ada Lovelace")
    await n.pause()
    n.note("She clicks *Start*. The same message now shows the first step:")
    await _press(n, Action.WIZARD_DONE, "Step 1 of", show=True)
    await _press(n, Action.WIZARD_DONE, "Step 2 of")
    await _press(n, Action.WIZARD_DONE, "Step 3 of")
    n.note("She clicks *Done* after each step, and *Back* when she wants to re-read one:")
    await _press(n, Action.WIZARD_BACK, "Step 2 of", show=True)
    for number in range(3, 8):
        await _press(n, Action.WIZARD_DONE, f"Step {number} of")
    n.note("Step 7, in the browser. Ada's message says:")
    n.show_message(_wizard(n), "DM with Ada Lovelace")
    await n.pause()

    n.chapter("The key is registered, and keydesk notices by itself")
    n.note("Ada creates her PIN and touches the key: Entra registers the passkey (the Graph simulator plays")
    n.note("the browser's part). Nobody tells keydesk; it watches Entra, with back-off and a budget.")
    graph.tenant.register_fido2_as_user(ada.entra_id, "YubiKey, blue keyring", YUBIKEY_5_NFC, "YubiKey 5 NFC")
    await _press(n, Action.WIZARD_DONE, "Step 8 of")
    done = await n.until(lambda: _shows(n, "is set up"), "the success message", timeout=20.0)
    n.show_message(done, "DM with Ada Lovelace")
    [tap] = graph.tenant.taps_of(ada.entra_id)[-1:]
    n.note(
        f"In Entra, the pass is already gone (deleted: {'yes' if tap.deleted else 'no'}). The helpdesk card closed:"
    )
    await n.until(lambda: "Completed" in str(slack.messages(channel)[0].blocks), "the closed card")
    n.show_latest(channel, "#helpdesk-keys", text_contains="Temporary Access Pass request")
    n.show_latest(channel, "#helpdesk-keys (thread)", text_contains="registered")
    await n.open_home(ada.slack_id)
