"""The DM conversation and App Home: greet, understand what the person wants, show their status."""

from __future__ import annotations

from bot.directory import DirectoryError
from bot.domain.intents import Intent, classify
from bot.logs import get_logger
from bot.services import identity, registration, stuck
from bot.services.runtime import Runtime
from bot.slack import welcome

log = get_logger(__name__)


async def greet(rt: Runtime, user_id: str) -> None:
    user = await rt.slack.user(user_id)
    text, blocks = welcome.welcome(user.real_name or user.name, rt.settings.support_contact)
    await rt.slack.post_dm(user_id, text, blocks)


async def on_direct_message(rt: Runtime, user_id: str, text: str) -> Intent:
    """Answer a DM. Returns the intent understood, for the caller's routing of flows."""
    if await stuck.relay_from_user(rt, user_id, text):  # a person the helpdesk is already helping
        return Intent.HELP
    intent = classify(text)
    log.info("dm.received", user=user_id, intent=intent.value)
    if intent is Intent.SET_UP_KEY:
        from bot.services import onboarding

        await onboarding.request_pass(rt, user_id)
    elif intent is Intent.LOST_KEY:
        await explain_lost_key(rt, user_id)
    elif intent is Intent.HELP:
        await ask_for_help(rt, user_id)
    else:
        await greet(rt, user_id)
    return intent


# App Home is opened often; hardware tokens change rarely, and every fresh read (the setup watch,
# the lost-key flow) refreshes the list this reuses. Saves a beta Graph call per opening.
HOME_TOKEN_MAX_AGE_SECONDS = 60.0


async def ask_for_help(rt: Runtime, user_id: str) -> None:
    from bot.services import tap_common

    await tap_common.alert(rt, f"<@{user_id}> asked for help from keydesk. Could someone reach out to them?")
    await tap_common.tell(
        rt,
        user_id,
        f"I've asked {rt.settings.support_contact} to get in touch with you here in Slack. "
        "Never share your password, PIN or pass with anyone, including them.",
    )
    await rt.audit.record("help.requested", actor=f"slack:{user_id}", target=f"slack:{user_id}")


async def explain_lost_key(rt: Runtime, user_id: str) -> None:
    from bot.services import tap_common

    await tap_common.tell(
        rt,
        user_id,
        "Sorry to hear that. Type `/lostkey` and pick the key: I'll switch it off straight away "
        "and help you get a new one.",
    )


async def refresh_home(rt: Runtime, user_id: str) -> None:
    """Publish the App Home tab with the methods Entra lists for this user."""
    slack_user = await rt.slack.user(user_id)
    name = slack_user.real_name or slack_user.name
    extra = await registration.home_blocks(rt, user_id)
    try:
        who = await identity.resolve(rt, user_id)
        methods = await rt.directory.list_methods(who.entra.id, token_max_age=HOME_TOKEN_MAX_AGE_SECONDS)
    except identity.IdentityRefused as refused:
        view = welcome.home(
            name, None, problem=refused.user_message(rt.settings.support_contact), extra=extra
        )
    except DirectoryError as exc:
        log.warning("home.directory_unavailable", user=user_id, error=type(exc).__name__)
        view = welcome.home(name, None, extra=extra)
    else:
        view = welcome.home(name, methods, tz_offset=slack_user.tz_offset, extra=extra)
    await rt.slack.publish_home(user_id, view)
