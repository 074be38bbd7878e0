"""Pairing desk agents: one-time codes for approvers, the agent's registration, confirmation, revocation."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from agent import protocol
from bot.logs import get_logger
from bot.services import approvals, desk_keys, desk_link, tap_common
from bot.services.desk_common import LinkRefused, refuse
from bot.services.runtime import Runtime
from bot.slack import desk_views
from bot.slack.messenger import PostedMessage, SlackError
from bot.store import desk_repo
from bot.store.models.desk import AgentState, DeskAgent, PairingCode

if TYPE_CHECKING:
    from bot.services.desk_limits import AgentLimits

log = get_logger(__name__)

CODE_TTL = timedelta(minutes=10)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed at a desk
CODE_LENGTH = 16  # 80 bits
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def code_hash(code: str) -> str:
    return protocol.pairing_code_hash(code)


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


# --- the approver's code ----------------------------------------------------------------------
async def issue_code(rt: Runtime, slack_user_id: str) -> str:
    """The message for the person who asked: a fresh code for an approver, else why not."""
    _, problem = await approvals.authorise_approver(rt, slack_user_id, None)
    if problem:
        await rt.audit.record(
            "desk.pair_code.refused",
            actor=f"slack:{slack_user_id}",
            outcome="refused",
            details={"reason": "not_authorised"},
        )
        return problem.replace("decide pass requests", "pair desk agents")
    code = _new_code()
    now = rt.clock.now()
    code_id = str(uuid.uuid4())
    async with rt.db.session() as session:
        await desk_repo.add_code(
            session,
            PairingCode(
                id=code_id,
                code_hash=code_hash(code),
                issued_by_slack_id=slack_user_id,
                issued_at=now,
                expires_at=now + CODE_TTL,
            ),
        )
        await rt.audit.record(
            "desk.pair_code.issued",
            actor=f"slack:{slack_user_id}",
            target=f"pairing_code:{code_id}",
            details={"expires_at": (now + CODE_TTL).isoformat()},
            session=session,
        )
    second = (
        " Another approver will then confirm the agent in the helpdesk channel."
        if rt.settings.agent_pairing_needs_second_approver
        else ""
    )
    return (
        f"Your one-time pairing code (valid 10 minutes, only you can see it): `{code}`\n"
        f"On the desk computer run:\n`keydesk-agent pair --server URL --code {code} --name DESK-NAME`{second}"
    )


# --- the agent registers ----------------------------------------------------------------------
async def pair(
    rt: Runtime, body: object, *, limits: AgentLimits | None = None, source: str = "unknown"
) -> dict[str, str]:
    """Register an agent from its pairing request; raise LinkRefused (audited) when refused. With
    `limits`, attempts per code are limited and guesses of never-issued codes counted from `source`."""
    if not isinstance(body, dict):
        raise LinkRefused(400, "malformed", "The pairing request is not JSON.")
    code, name, public_key = (str(body.get(k) or "")[:256] for k in ("code", "name", "public_key"))
    actor = "agent:pairing"
    if limits is not None:
        await limits.check(
            rt, limits.pair_per_code, "pairing_code", code_hash(code)[:16], actor=f"ip:{source}"
        )
    if not NAME.match(name):
        raise await refuse(
            rt,
            "desk.pair.refused",
            actor=actor,
            target=None,
            status=400,
            reason="bad_name",
            message="Give the desk a name of letters, digits, '.', '_' or '-' (at most 64).",
        )
    try:
        key = protocol.load_public_key(public_key)
        env = protocol.verify(
            protocol.parse(body.get("proof")), key, now=rt.clock.now(), direction=protocol.Direction.PAIR
        )
    except protocol.ProtocolError as exc:
        raise await refuse(
            rt,
            "desk.pair.refused",
            actor=actor,
            target=f"desk:{name}",
            status=400,
            reason=exc.reason,
            message="The pairing request is not signed by the key it registers.",
        ) from None
    if env.body != {"name": name, "code_hash": code_hash(code)}:
        raise await refuse(
            rt,
            "desk.pair.refused",
            actor=actor,
            target=f"desk:{name}",
            status=400,
            reason="tampered",
            message="The pairing request was altered.",
        )
    return await _register(rt, code, name, public_key, limits, source)


async def _register(
    rt: Runtime, code: str, name: str, public_key: str, limits: AgentLimits | None, source: str
) -> dict[str, str]:
    now = rt.clock.now()
    actor = f"agent:{name}"
    async with rt.db.read() as session:
        found = await desk_repo.code_by_hash(session, code_hash(code))
        taken = await desk_repo.live_agent_by_name(session, name)
    if found is None:
        refused = await refuse(
            rt,
            "desk.pair.refused",
            actor=actor,
            target=f"desk:{name}",
            status=403,
            reason="unknown_code",
            message="That pairing code is not valid. Ask an approver for a new one.",
            details={"source": source},
        )
        if limits is not None:
            await limits.failed_guess(rt, source)
        raise refused
    if found.used_at is not None:
        raise await refuse(
            rt,
            "desk.pair.refused",
            actor=actor,
            target=f"pairing_code:{found.id}",
            status=403,
            reason="code_used",
            message="That pairing code was already used. Ask an approver for a new one.",
            alert=f"A desk agent calling itself `{name}` tried a pairing code that was already used "
            f"(issued by <@{found.issued_by_slack_id}>). If that wasn't one of you, find out who holds the code.",
        )
    if now >= found.expires_at:
        raise await refuse(
            rt,
            "desk.pair.refused",
            actor=actor,
            target=f"pairing_code:{found.id}",
            status=403,
            reason="code_expired",
            message="That pairing code has expired (they last 10 minutes). Ask for a new one.",
        )
    if taken is not None:
        raise await refuse(
            rt,
            "desk.pair.refused",
            actor=actor,
            target=f"desk:{name}",
            status=409,
            reason="name_taken",
            message=f"A desk agent named {name} is already paired. Choose another name, or ask an "
            "approver to revoke the old one first (`/keydesk desk revoke NAME`).",
        )
    needs_second = rt.settings.agent_pairing_needs_second_approver
    agent = DeskAgent(
        id=str(uuid.uuid4()),
        name=name,
        public_key=public_key,
        state=(AgentState.AWAITING_CONFIRMATION if needs_second else AgentState.ACTIVE).value,
        code_issued_by_slack_id=found.issued_by_slack_id,
        paired_at=now,
        confirmed_at=None if needs_second else now,
    )
    try:
        won = await _store_agent(rt, agent, found, now)
    except IntegrityError:  # another pairing took the same live name, or the same key, meanwhile
        raise await refuse(
            rt,
            "desk.pair.refused",
            actor=actor,
            target=f"desk:{name}",
            status=409,
            reason="name_taken",
            message=f"A desk agent named {name} (or with this key) was paired a moment ago. "
            "Choose another name.",
        ) from None
    if not won:  # a concurrent request used the code between our read and our write
        raise await refuse(
            rt,
            "desk.pair.refused",
            actor=actor,
            target=f"pairing_code:{found.id}",
            status=403,
            reason="code_used",
            message="That pairing code was already used. Ask an approver for a new one.",
        )
    await _post_card(rt, agent)
    server = desk_keys.server_key(rt.settings.agent_signing_key_file)
    server_public = protocol.public_key_text(server)
    return {
        "agent_id": agent.id,
        "name": name,
        "state": agent.state,
        "server_public_key": server_public,
        "server_fingerprint": protocol.fingerprint(server_public),
    }


async def _store_agent(rt: Runtime, agent: DeskAgent, found: PairingCode, now: datetime) -> bool:
    """Use the code and store the agent in one transaction; False when the code was used meanwhile.
    A revoked agent's name may be taken again: only live agents' names are unique (the old row, its
    jobs and its audit history stay, under its own id)."""
    async with rt.db.session() as session:
        if not await desk_repo.use_code(session, found.id, now, agent.id):
            return False
        await desk_repo.add_agent(session, agent)
        await rt.audit.record(
            "desk.agent.paired",
            actor=f"agent:{agent.name}",
            target=f"desk:{agent.id}",
            details={
                "name": agent.name,
                "code_issued_by": found.issued_by_slack_id,
                "fingerprint": protocol.fingerprint(agent.public_key),
                "state": agent.state,
            },
            session=session,
        )
    return True


# --- the helpdesk decides ---------------------------------------------------------------------
async def _post_card(rt: Runtime, agent: DeskAgent) -> None:
    channel = rt.settings.helpdesk_channel
    if not channel:
        return
    text, blocks = desk_views.pairing_card(
        agent, protocol.fingerprint(agent.public_key), rt.settings.agent_pairing_needs_second_approver
    )
    try:
        posted = await rt.slack.post(channel, text, blocks)
    except SlackError as exc:
        log.error("desk.card.post_failed", error=exc.code)
        return
    async with rt.db.session() as session:
        await desk_repo.set_agent_fields(session, agent.id, card_channel=posted.channel, card_ts=posted.ts)


async def refresh_card(rt: Runtime, agent_id: str) -> None:
    async with rt.db.read() as session:
        agent = await desk_repo.agent(session, agent_id)
    if agent is None or not (agent.card_channel and agent.card_ts):
        return
    text, blocks = desk_views.pairing_card(
        agent, protocol.fingerprint(agent.public_key), rt.settings.agent_pairing_needs_second_approver
    )
    try:
        await rt.slack.update(PostedMessage(agent.card_channel, agent.card_ts), text, blocks)
    except SlackError as exc:
        log.warning("desk.card.update_failed", error=exc.code)


async def _refused(
    rt: Runtime, action: str, slack_user_id: str, agent_id: str, reason: str, message: str
) -> str:
    await rt.audit.record(
        action,
        actor=f"slack:{slack_user_id}",
        target=f"desk:{agent_id}",
        outcome="refused",
        details={"reason": reason},
    )
    return message


async def confirm(rt: Runtime, agent_id: str, slack_user_id: str) -> str:
    """A second approver confirms a paired agent; returns what the clicker reads."""
    action = "desk.agent.confirm.refused"
    async with rt.db.read() as session:
        agent = await desk_repo.agent(session, agent_id)
    if agent is None:
        return await _refused(
            rt, action, slack_user_id, agent_id, "unknown_agent", "I can't find that desk agent."
        )
    _, problem = await approvals.authorise_approver(rt, slack_user_id, None)
    if problem:
        return await _refused(
            rt,
            action,
            slack_user_id,
            agent_id,
            "not_authorised",
            problem.replace("decide pass requests", "confirm desk agents"),
        )
    if slack_user_id == agent.code_issued_by_slack_id:
        return await _refused(
            rt,
            action,
            slack_user_id,
            agent_id,
            "self_confirmation",
            "You issued the pairing code for this agent, so you can't confirm it: another approver must.",
        )
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await desk_repo.transition_agent(
            session,
            agent_id,
            expected=[AgentState.AWAITING_CONFIRMATION],
            to=AgentState.ACTIVE,
            confirmed_by_slack_id=slack_user_id,
            confirmed_at=now,
        )
        if won:
            await rt.audit.record(
                "desk.agent.confirmed",
                actor=f"slack:{slack_user_id}",
                target=f"desk:{agent_id}",
                details={"name": agent.name},
                session=session,
            )
    if not won:
        return await _refused(
            rt,
            action,
            slack_user_id,
            agent_id,
            "stale",
            f"This agent is no longer waiting for confirmation (it is {agent.state.replace('_', ' ')}).",
        )
    await refresh_card(rt, agent_id)
    return f"Confirmed: desk agent `{agent.name}` can now take jobs."


async def reject(rt: Runtime, agent_id: str, slack_user_id: str) -> str:
    _, problem = await approvals.authorise_approver(rt, slack_user_id, None)
    if problem:
        return await _refused(
            rt,
            "desk.agent.reject.refused",
            slack_user_id,
            agent_id,
            "not_authorised",
            problem.replace("decide pass requests", "decide on desk agents"),
        )
    async with rt.db.read() as session:
        agent = await desk_repo.agent(session, agent_id)
    if agent is None:
        return "I can't find that desk agent."
    return await _revoke(rt, agent, slack_user_id, "rejected")


async def revoke_by_name(rt: Runtime, name: str, slack_user_id: str) -> str:
    _, problem = await approvals.authorise_approver(rt, slack_user_id, None)
    if problem:
        await rt.audit.record(
            "desk.agent.revoke.refused",
            actor=f"slack:{slack_user_id}",
            target=f"desk:{name[:64]}",
            outcome="refused",
            details={"reason": "not_authorised"},
        )
        return problem.replace("decide pass requests", "manage desk agents")
    async with rt.db.read() as session:
        agent = await desk_repo.agent_by_name(session, name)
    if agent is None:
        return f"There is no desk agent named `{name[:64]}`. See `/keydesk desk list`."
    return await _revoke(rt, agent, slack_user_id, "revoked")


async def _revoke(rt: Runtime, agent: DeskAgent, slack_user_id: str, how: str) -> str:
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await desk_repo.transition_agent(
            session,
            agent.id,
            expected=[AgentState.AWAITING_CONFIRMATION, AgentState.ACTIVE],
            to=AgentState.REVOKED,
            revoked_by_slack_id=slack_user_id,
            revoked_at=now,
        )
        if won:
            await rt.audit.record(
                f"desk.agent.{how}",
                actor=f"slack:{slack_user_id}",
                target=f"desk:{agent.id}",
                details={"name": agent.name},
                session=session,
            )
    if not won:
        return f"Desk agent `{agent.name}` was already revoked."
    await desk_link.agent_revoked(rt, agent.id)
    await refresh_card(rt, agent.id)
    await tap_common.alert(
        rt, f"Desk agent `{agent.name}` was {how} by <@{slack_user_id}>; it gets no more jobs."
    )
    return f"Desk agent `{agent.name}` is {how}: its next request is refused and open jobs are cancelled."


async def list_agents(rt: Runtime, slack_user_id: str) -> str:
    _, problem = await approvals.authorise_approver(rt, slack_user_id, None)
    if problem:
        await rt.audit.record(
            "desk.agent.list.refused",
            actor=f"slack:{slack_user_id}",
            outcome="refused",
            details={"reason": "not_authorised"},
        )
        return problem.replace("decide pass requests", "manage desk agents")
    async with rt.db.read() as session:
        return desk_views.agent_list(await desk_repo.agents(session))
