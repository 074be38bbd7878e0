"""Jobs for desk agents: queue, long-poll delivery of signed jobs, signed results, expiry.

Public API for later code (provisioning):
- `await submit_job(rt, agent_id, kind, target_entra_id, params) -> job_id`
- `on_result(kind, handler)`: `handler(rt, outcome)` runs once per accepted result of that kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from agent import protocol
from bot.deadlines import Deadline
from bot.domain.text import safe
from bot.logs import get_logger
from bot.services import desk_keys, tap_common
from bot.services.desk_common import LinkRefused, refuse
from bot.services.runtime import Runtime
from bot.store import desk_repo

if TYPE_CHECKING:
    from bot.services.desk_limits import AgentLimits
from bot.store.models.desk import OPEN_JOB_STATES, AgentState, DeskAgent, DeskJob, JobState

log = get_logger(__name__)

JOB_DEADLINE = "desk.job_expired"
MAX_RESULT_CHARS = 64 * 1024
WAKE_CHECK_SECONDS = 1.0  # a long-poll re-reads the database this often (jobs queued by another replica)


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    agent_id: str
    agent_name: str
    kind: str
    target_entra_id: str | None
    params: dict[str, Any]
    requested_by_slack_id: str | None
    ok: bool
    result: dict[str, Any]
    error: str | None


ResultHandler = Callable[[Runtime, JobOutcome], Awaitable[None]]
_handlers: dict[str, list[ResultHandler]] = {}


def on_result(kind: str, handler: ResultHandler) -> None:
    """Run `handler` for every accepted result of `kind` (registering the same handler twice is a no-op)."""
    registered = _handlers.setdefault(protocol.JobKind(kind).value, [])
    if handler not in registered:
        registered.append(handler)


class AgentUnavailable(Exception):
    """The agent does not exist, or is not confirmed, or is revoked: no job was queued."""


# --- wake-ups for long polls in this process ----------------------------------------------------
_wakeups: dict[str, asyncio.Event] = {}


def _wake(agent_id: str) -> None:
    event = _wakeups.get(agent_id)
    if event is not None:
        event.set()


async def agent_revoked(rt: Runtime, agent_id: str) -> None:
    """Cancel the agent's open jobs and end its pending long-poll now."""
    now = rt.clock.now()
    async with rt.db.session() as session:
        jobs = await desk_repo.open_jobs_of(session, agent_id, OPEN_JOB_STATES)
        for job in jobs:
            if await desk_repo.transition_job(
                session,
                job.id,
                expected=OPEN_JOB_STATES,
                to=JobState.FAILED,
                finished_at=now,
                error="agent revoked",
            ):
                await rt.deadlines.cancel(f"desk-job:{job.id}", session=session)
    for job in jobs:
        if job.requested_by_slack_id:
            await tap_common.tell(
                rt, job.requested_by_slack_id, "A desk job was cancelled: its desk agent was revoked."
            )
    _wake(agent_id)


# --- submitting -------------------------------------------------------------------------------
async def submit_job(
    rt: Runtime,
    agent_id: str,
    kind: str,
    target_entra_id: str | None,
    params: dict[str, Any],
    *,
    requested_by_slack_id: str | None = None,
) -> str:
    job_kind = protocol.JobKind(kind)
    now = rt.clock.now()
    expires = now + timedelta(seconds=rt.settings.agent_job_ttl_seconds)
    job_id = str(uuid.uuid4())
    async with rt.db.session() as session:
        agent = await desk_repo.agent(session, agent_id)
        if agent is None or agent.state != AgentState.ACTIVE:
            raise AgentUnavailable(agent.state if agent else "unknown")
        await desk_repo.add_job(
            session,
            DeskJob(
                id=job_id,
                agent_id=agent_id,
                kind=job_kind.value,
                target_entra_id=target_entra_id,
                params=dict(params),
                state=JobState.QUEUED.value,
                requested_by_slack_id=requested_by_slack_id,
                created_at=now,
                expires_at=expires,
            ),
        )
        await rt.deadlines.schedule(
            JOB_DEADLINE, expires, {"job_id": job_id}, key=f"desk-job:{job_id}", session=session
        )
        await rt.audit.record(
            "desk.job.queued",
            actor=f"slack:{requested_by_slack_id}" if requested_by_slack_id else "keydesk",
            target=f"desk:{agent_id}",
            details={"job_id": job_id, "kind": job_kind.value, "target_entra_id": target_entra_id},
            session=session,
        )
    _wake(agent_id)
    return job_id


# --- authenticating an agent's message --------------------------------------------------------
async def authenticate(
    rt: Runtime, signed: protocol.Signed, direction: protocol.Direction
) -> tuple[DeskAgent, protocol.Envelope]:
    claimed = signed.envelope.agent_id
    action = f"desk.{direction.value}.refused"
    async with rt.db.read() as session:
        agent = await desk_repo.agent(session, claimed)
    if agent is None:
        raise await refuse(
            rt,
            action,
            actor="agent:unknown",
            target=None,
            status=401,
            reason="unknown_agent",
            message="This agent is not paired with this server.",
        )
    actor, target = f"agent:{agent.name}", f"desk:{agent.id}"
    now = rt.clock.now()
    try:
        env = protocol.verify(
            signed,
            protocol.load_public_key(agent.public_key),
            now=now,
            direction=direction,
            agent_id=agent.id,
        )
    except protocol.ProtocolError as exc:
        alert = None
        if exc.reason not in ("expired", "clock_skew"):  # a skewed clock is a desk problem, not an attack
            alert = f"Desk agent `{agent.name}` sent a message that failed its signature check ({exc.reason}). Refused."
        raise await refuse(
            rt,
            action,
            actor=actor,
            target=target,
            status=401,
            reason=exc.reason,
            message=f"Refused: the message is {exc.reason.replace('_', ' ')}.",
            alert=alert,
            details={"job_id": signed.envelope.job_id[:64]},
        ) from None
    if agent.state == AgentState.REVOKED:
        raise await refuse(
            rt,
            action,
            actor=actor,
            target=target,
            status=403,
            reason="revoked",
            message="This desk agent was revoked. Ask an approver to pair it again.",
            alert=f"Revoked desk agent `{agent.name}` is still calling the server. Refused.",
        )
    async with rt.db.session() as session:
        # A nonce is kept until its envelope can no longer verify, clock-skew grace included.
        await desk_repo.forget_nonces(session, now - timedelta(minutes=1))
        fresh = await desk_repo.remember_nonce(session, env.nonce, agent.id, protocol.accepted_until(env))
        if fresh:
            await desk_repo.set_agent_fields(session, agent.id, last_seen_at=now)
    if not fresh:
        raise await refuse(
            rt,
            action,
            actor=actor,
            target=target,
            status=401,
            reason="replayed",
            message="Refused: this message was already received (replay).",
            alert=f"Someone replayed a signed message of desk agent `{agent.name}`. Refused.",
            details={"job_id": env.job_id[:64]},
        )
    return agent, env


# --- long-poll --------------------------------------------------------------------------------
async def poll(
    rt: Runtime, signed: protocol.Signed, *, limits: AgentLimits | None = None
) -> dict[str, Any] | None:
    """The agent's next job as a signed envelope, or None after the long-poll time with nothing to do.
    With `limits`, an agent asking for work too often is refused with 429 (after it proved who it is,
    so nobody can throttle a desk by naming its id)."""
    agent, _ = await authenticate(rt, signed, protocol.Direction.POLL)
    if limits is not None:
        await limits.check(rt, limits.polls_per_agent, "agent_polls", agent.id, actor=f"agent:{agent.name}")
    if agent.state != AgentState.ACTIVE:
        raise await refuse(
            rt,
            "desk.poll.refused",
            actor=f"agent:{agent.name}",
            target=f"desk:{agent.id}",
            status=403,
            reason="not_confirmed",
            message="This agent is paired but not confirmed yet: a second approver must confirm it in Slack.",
        )
    loop = asyncio.get_running_loop()
    give_up = loop.time() + rt.settings.agent_long_poll_seconds
    event = _wakeups.setdefault(agent.id, asyncio.Event())
    try:
        while True:
            event.clear()
            delivered = await _deliver_next(rt, agent)
            if delivered is not None:
                return delivered
            left = give_up - loop.time()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(WAKE_CHECK_SECONDS, left))
    finally:
        if _wakeups.get(agent.id) is event:
            del _wakeups[agent.id]


async def _deliver_next(rt: Runtime, agent: DeskAgent) -> dict[str, Any] | None:
    now = rt.clock.now()
    async with rt.db.session() as session:
        current = await desk_repo.agent(session, agent.id)
        if current is None or current.state != AgentState.ACTIVE:
            raise LinkRefused(403, "revoked", "This desk agent was revoked while waiting for work.")
        job = await desk_repo.next_queued(session, agent.id, now)
        if job is None:
            return None
        if not await desk_repo.transition_job(
            session, job.id, expected=[JobState.QUEUED], to=JobState.DELIVERED, delivered_at=now
        ):
            return None
        await rt.audit.record(
            "desk.job.delivered",
            actor=f"agent:{agent.name}",
            target=f"desk:{agent.id}",
            details={"job_id": job.id, "kind": job.kind},
            session=session,
        )
    lifetime = min(job.expires_at - now, protocol.MAX_LIFETIME)
    env = protocol.envelope(
        protocol.Direction.JOB,
        agent_id=agent.id,
        now=now,
        lifetime=lifetime,
        job_id=job.id,
        kind=job.kind,
        target=job.target_entra_id or "",
        body=job.params,
    )
    return protocol.sign(env, desk_keys.server_key(rt.settings.agent_signing_key_file)).to_json()


# --- results ----------------------------------------------------------------------------------
async def accept_result(rt: Runtime, job_id: str, body: object) -> None:
    try:
        signed = protocol.parse(body)
    except protocol.ProtocolError as exc:
        raise LinkRefused(400, exc.reason, "The result is not a signed envelope.") from None
    agent, env = await authenticate(rt, signed, protocol.Direction.RESULT)
    actor, target = f"agent:{agent.name}", f"desk:{agent.id}"
    action = "desk.result.refused"
    if env.job_id != job_id:
        raise await refuse(
            rt,
            action,
            actor=actor,
            target=target,
            status=400,
            reason="tampered",
            message="The result names another job than its URL.",
            alert=f"Desk agent `{agent.name}` sent a result for a job it was not about.",
        )
    if agent.state != AgentState.ACTIVE:
        raise await refuse(
            rt,
            action,
            actor=actor,
            target=target,
            status=403,
            reason="not_confirmed",
            message="This agent is not confirmed.",
        )
    async with rt.db.read() as session:
        job = await desk_repo.job(session, job_id)
    if job is None:
        raise await refuse(
            rt, action, actor=actor, target=target, status=404, reason="unknown_job", message="No such job."
        )
    if job.agent_id != agent.id:
        raise await refuse(
            rt,
            action,
            actor=actor,
            target=target,
            status=403,
            reason="wrong_agent",
            message="That job was sent to another desk agent.",
            alert=f"Desk agent `{agent.name}` sent a result for a job of another desk. Refused.",
            details={"job_id": job_id},
        )
    if env.kind != job.kind or env.target != (job.target_entra_id or ""):
        raise await refuse(
            rt,
            action,
            actor=actor,
            target=target,
            status=400,
            reason="tampered",
            message="The result does not match its job.",
            details={"job_id": job_id},
            alert=f"Desk agent `{agent.name}` sent a result whose kind or target differs from its job. Refused.",
        )
    now = rt.clock.now()
    if job.state == JobState.EXPIRED or now >= job.expires_at:
        raise await refuse(
            rt,
            action,
            actor=actor,
            target=target,
            status=410,
            reason="expired",
            message="The job expired before its result arrived.",
            details={"job_id": job_id},
        )
    if job.state != JobState.DELIVERED:
        raise await refuse(
            rt,
            action,
            actor=actor,
            target=target,
            status=409,
            reason="stale",
            message=f"The job is {job.state}, not waiting for a result.",
            details={"job_id": job_id},
        )
    await _finish(rt, agent, job, env.body, now)


async def _finish(rt: Runtime, agent: DeskAgent, job: DeskJob, body: dict[str, Any], now: Any) -> None:
    ok = body.get("ok") is True
    result = body.get("result") if isinstance(body.get("result"), dict) else {}
    assert isinstance(result, dict)
    if len(protocol.canonical(result)) > MAX_RESULT_CHARS:
        result, ok = {}, False
        body = {"error": "the agent's result was too large"}
    error = None if ok else safe(str(body.get("error") or "the agent reported a failure"), 500)
    async with rt.db.session() as session:
        won = await desk_repo.transition_job(
            session,
            job.id,
            expected=[JobState.DELIVERED],
            to=JobState.DONE if ok else JobState.FAILED,
            finished_at=now,
            result=result,
            error=error,
        )
        if won:
            await rt.deadlines.cancel(f"desk-job:{job.id}", session=session)
            await rt.audit.record(
                "desk.job.finished",
                actor=f"agent:{agent.name}",
                target=f"desk:{agent.id}",
                outcome="ok" if ok else "failed",
                details={"job_id": job.id, "kind": job.kind, "error": error},
                session=session,
            )
    if not won:
        raise LinkRefused(409, "stale", "The job is no longer waiting for a result.")
    outcome = JobOutcome(
        job_id=job.id,
        agent_id=agent.id,
        agent_name=agent.name,
        kind=job.kind,
        target_entra_id=job.target_entra_id,
        params=dict(job.params),
        requested_by_slack_id=job.requested_by_slack_id,
        ok=ok,
        result=result,
        error=error,
    )
    for handler in _handlers.get(job.kind, []):
        try:
            await handler(rt, outcome)
        except Exception as exc:  # one handler's failure must not lose the recorded result
            log.error("desk.result_handler.failed", kind=job.kind, job=job.id, error=type(exc).__name__)


# --- expiry -----------------------------------------------------------------------------------
async def expire_job(rt: Runtime, job_id: str) -> None:
    now = rt.clock.now()
    async with rt.db.session() as session:
        job = await desk_repo.job(session, job_id)
        if job is None:
            return
        won = await desk_repo.transition_job(
            session, job_id, expected=OPEN_JOB_STATES, to=JobState.EXPIRED, finished_at=now
        )
        if won:
            await rt.audit.record(
                "desk.job.expired",
                actor="keydesk",
                target=f"desk:{job.agent_id}",
                details={"job_id": job_id, "kind": job.kind, "was": job.state},
                session=session,
            )
    if won and job.requested_by_slack_id:
        await tap_common.tell(
            rt,
            job.requested_by_slack_id,
            f"The desk agent did not answer the {job.kind} job in time, so it expired. Check that "
            "`keydesk-agent run` is running at the desk, then ask again.",
        )


def register_deadlines(rt: Runtime) -> None:
    async def handler(deadline: Deadline) -> None:
        await expire_job(rt, str(deadline.payload["job_id"]))

    rt.deadlines.register(JOB_DEADLINE, handler)
