"""The demo's lost-key chapter: Morgan loses a YubiKey on the train and cuts it off with `/lostkey`."""

from __future__ import annotations

from typing import Any

from bot.sandbox.graph_sim import MethodKind
from bot.sandbox.narrator import Narrator
from bot.slack.ids import Action, ViewId


def _choices(blocks: list[dict[str, Any]]) -> list[str]:
    """The checkbox options of the form, as a person reads them."""
    found = []
    for block in blocks:
        element = block.get("element") or {}
        if element.get("type") == "checkboxes":
            for option in element.get("options") or []:
                found.append(f"{option['text']['text']}: {option.get('description', {}).get('text', '')}")
    return found


async def lost_key_scenario(n: Narrator) -> None:
    slack, company = n.stack.slack, n.company
    morgan, grace = company.morgan, company.grace
    channel = company.helpdesk_channel
    key = next(m for m in n.stack.graph.tenant.methods_of(morgan.entra_id) if m.kind == MethodKind.FIDO2)

    n.chapter("Morgan loses a security key")
    n.note("Morgan Lee left a YubiKey on the train. Morgan types /lostkey in Slack.")
    await slack.slash(morgan.slack_id, "/lostkey")
    form = await n.until(
        lambda: [v for v in slack.open_views(morgan.slack_id) if v.callback_id == ViewId.LOST_KEY_FORM],
        "the lost-key form",
    )
    n.show_modal(morgan.slack_id, "Morgan's screen")
    n.note("The checkboxes list what Entra has for Morgan, security keys first:")
    for line in _choices(form[-1].blocks):
        n.note(f"  ☐ {line}")
    n.note("Morgan ticks only the YubiKey, picks 'I lost it' and presses Next.")
    await slack.submit_view(
        morgan.slack_id,
        form[-1].id,
        {
            "lost_keys": {"picked": [key.id]},
            "lost_reason": {"picked": "lost"},
            "lost_note": {"text": "On the train"},
        },
    )
    confirm = await n.until(
        lambda: [v for v in slack.open_views(morgan.slack_id) if v.callback_id == ViewId.LOST_KEY_CONFIRM],
        "the confirmation",
    )
    n.note("Before anything changes, keydesk says exactly what will happen:")
    n.show_modal(morgan.slack_id, "Morgan's screen")
    await n.pause()

    n.chapter("The key is cut off, Morgan is signed out everywhere, everyone hears")
    n.note(
        "Morgan presses *Remove now*. keydesk deletes the key in Entra, revokes the sessions and reads back."
    )
    await slack.submit_view(morgan.slack_id, confirm[-1].id)
    await n.until(
        lambda: any("Done." in str(v.blocks) for v in slack.open_views(morgan.slack_id)), "the result"
    )
    n.show_modal(morgan.slack_id, "Morgan's screen")
    dm = await n.until(lambda: slack.dm_with(morgan.slack_id), "Morgan's DM")
    await n.until(lambda: any("Get a new key" in str(m.blocks) for m in slack.messages(dm)), "the DM")
    n.note("Morgan's DM keeps the record, and offers the ways to a new key:")
    n.show_latest(dm, "DM with Morgan Lee", text_contains="lost-key report")
    await n.until(lambda: slack.dm_with(grace.slack_id), "the manager's DM")
    n.note("Grace, Morgan's manager, is told, with a way to flag it if it looks wrong:")
    n.show_latest(slack.dm_with(grace.slack_id) or "", "DM with Grace Hopper", text_contains="reported")
    await n.until(lambda: any("reported their key" in m.text for m in slack.messages(channel)), "the alert")
    n.note("The helpdesk channel gets the facts:")
    n.show_latest(channel, "#helpdesk-keys", text_contains="reported their key")
    await n.pause()

    n.chapter("Morgan asks for a new key")
    n.note("Morgan clicks *Get a new key*: a replacement pass request goes to the helpdesk for approval.")
    await slack.click(morgan.slack_id, Action.LOST_NEW_KEY)
    await n.until(
        lambda: any("Replacement after a lost key" in str(m.blocks) for m in slack.messages(channel)),
        "the replacement card",
    )
    n.show_latest(channel, "#helpdesk-keys", text_contains="Temporary Access Pass request")
