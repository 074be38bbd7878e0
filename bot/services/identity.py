"""Who is asking: a full member of our Slack, mapped to exactly one enabled Entra member, pinned once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy.exc import IntegrityError

from bot.directory import DirectoryUser
from bot.services.runtime import Runtime
from bot.slack.messenger import SlackUser
from bot.store import identity_repo


class Refusal(StrEnum):
    NOT_FULL_MEMBER = "not_full_member"
    DEACTIVATED = "deactivated"
    BOT = "bot"
    FOREIGN = "foreign"
    NO_EMAIL = "no_email"
    NO_ENTRA_ACCOUNT = "no_entra_account"
    AMBIGUOUS = "ambiguous"
    ACCOUNT_DISABLED = "account_disabled"
    ENTRA_GUEST = "entra_guest"
    DRIFT = "drift"


# What the person reads. Deliberately generic for guests and outsiders (security.md abuse case 11).
REFUSAL_TEXT: dict[Refusal, str] = {
    Refusal.NOT_FULL_MEMBER: "Sorry, I can only help full members of this workspace. "
    "Please contact {support} directly.",
    Refusal.DEACTIVATED: "Sorry, I can't help with this account. Please contact {support}.",
    Refusal.BOT: "Sorry, I only help people.",
    Refusal.FOREIGN: "Sorry, I can only help full members of this workspace. Please contact {support} directly.",
    Refusal.NO_EMAIL: "I couldn't read the email address of your Slack profile, so I can't find your work "
    "account. Please contact {support}.",
    Refusal.NO_ENTRA_ACCOUNT: "I couldn't find a work account that matches your Slack email address. "
    "Please contact {support}; they can check your account.",
    Refusal.AMBIGUOUS: "Your Slack email address matches more than one work account, so I can't tell which "
    "one is yours. I've let {support} know; they will sort it out.",
    Refusal.ACCOUNT_DISABLED: "Your work account is disabled, so I can't set anything up for it. "
    "Please contact {support}.",
    Refusal.ENTRA_GUEST: "Your work account is a guest account, and I can only help employees. "
    "Please contact {support}.",
    Refusal.DRIFT: "Your Slack email address no longer matches the work account it was linked to, so I've "
    "stopped here to be safe and told the helpdesk. Please contact {support}.",
}

# The link is re-checked on every use; the "last verified" stamp need not be written every time.
REVERIFY_STAMP_EVERY = timedelta(hours=1)

# Refusals the helpdesk must hear about (someone may be trying to take over an account).
ALERTING = {Refusal.DRIFT, Refusal.AMBIGUOUS}


@dataclass(frozen=True)
class Identity:
    slack: SlackUser
    entra: DirectoryUser
    newly_pinned: bool


class IdentityRefused(Exception):
    def __init__(self, reason: Refusal, detail: str, slack: SlackUser | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.slack = slack

    def user_message(self, support: str) -> str:
        return REFUSAL_TEXT[self.reason].format(support=support)


def check_slack_member(user: SlackUser, team_id: str, enterprise_id: str | None) -> None:
    """Refuse anyone who is not a full, active, human member of our own workspace (SLK-2)."""
    if user.deleted:
        raise IdentityRefused(Refusal.DEACTIVATED, "slack user is deactivated", user)
    if user.is_bot:
        raise IdentityRefused(Refusal.BOT, "slack user is a bot", user)
    if user.is_restricted or user.is_ultra_restricted:
        raise IdentityRefused(Refusal.NOT_FULL_MEMBER, "slack guest (restricted)", user)
    ours = user.team_id == team_id or (enterprise_id is not None and user.enterprise_id == enterprise_id)
    if user.is_stranger or not ours:
        raise IdentityRefused(Refusal.FOREIGN, f"slack user from team {user.team_id}", user)


def check_entra_user(user: DirectoryUser, slack: SlackUser) -> None:
    if not user.account_enabled:
        raise IdentityRefused(Refusal.ACCOUNT_DISABLED, f"entra user {user.id} is disabled", slack)
    if (user.user_type or "").lower() != "member":
        raise IdentityRefused(Refusal.ENTRA_GUEST, f"entra user {user.id} is {user.user_type}", slack)


async def resolve(rt: Runtime, slack_user_id: str) -> Identity:
    """Map a Slack user to their Entra account, pinning the first successful mapping.

    Raises IdentityRefused with a reason; Directory errors (Graph down) propagate: callers fail closed.
    """
    slack = await rt.slack.user(slack_user_id)
    check_slack_member(slack, rt.me.team_id, rt.me.enterprise_id)
    if not slack.email:
        raise IdentityRefused(Refusal.NO_EMAIL, "slack profile has no email", slack)
    matches = [u for u in await rt.directory.find_users_by_email(slack.email)]
    async with rt.db.read() as session:
        link = await identity_repo.link_for_slack_user(session, slack.id)
    if link is not None:
        if len(matches) != 1 or matches[0].id != link.entra_object_id:
            raise IdentityRefused(
                Refusal.DRIFT,
                f"email {slack.email} now maps to {[m.id for m in matches]}, pinned {link.entra_object_id}",
                slack,
            )
        entra = await rt.directory.get_user(link.entra_object_id)
        check_entra_user(entra, slack)
        if rt.clock.now() - link.last_verified_at > REVERIFY_STAMP_EVERY:
            async with rt.db.session() as session:
                await identity_repo.mark_verified(session, slack.id, rt.clock.now())
        return Identity(slack=slack, entra=entra, newly_pinned=False)
    if not matches:
        raise IdentityRefused(Refusal.NO_ENTRA_ACCOUNT, f"no entra user for {slack.email}", slack)
    if len(matches) > 1:
        raise IdentityRefused(Refusal.AMBIGUOUS, f"{len(matches)} entra users for {slack.email}", slack)
    entra = matches[0]
    check_entra_user(entra, slack)
    try:
        newly_pinned = await _pin(rt, slack, entra)
    except IntegrityError:
        # A concurrent first contact (a double click) pinned a moment ago: check against that pin.
        return await resolve(rt, slack_user_id)
    return Identity(slack=slack, entra=entra, newly_pinned=newly_pinned)


async def _pin(rt: Runtime, slack: SlackUser, entra: DirectoryUser) -> bool:
    """Pin the pair; False when a concurrent first contact already pinned exactly this pair."""
    async with rt.db.session() as session:
        taken = await identity_repo.link_for_entra_user(session, entra.id)
        if taken is not None and taken.slack_user_id == slack.id:
            return False
        if taken is not None:
            raise IdentityRefused(
                Refusal.DRIFT,
                f"entra user {entra.id} is already linked to slack {taken.slack_user_id}",
                slack,
            )
        await identity_repo.pin(
            session,
            slack_user_id=slack.id,
            slack_team_id=slack.team_id or rt.me.team_id,
            entra_object_id=entra.id,
            upn=entra.user_principal_name,
            email=slack.email or "",
            now=rt.clock.now(),
        )
        await rt.audit.record(
            "identity.pinned",
            actor=f"slack:{slack.id}",
            target=f"entra:{entra.id}",
            details={"upn": entra.user_principal_name, "email": slack.email},
            session=session,
        )
    return True
