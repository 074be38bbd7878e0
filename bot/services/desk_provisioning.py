"""Preparing a security key for a person at a desk agent, from the technician's ask to the key in hand.

Preparing a key is issuing a credential, so it rides on the TAP request machinery (kind `desk_key`):
the same automatic checks on the person (member, pinned Slack<->Entra mapping, never privileged,
limits), the same card, approve/deny modals and approver rules (a second approver, neither the
technician who asked nor the person), the same compare-and-set states. What differs, and why:

* no pass is created, so the TAP policy and "no valid pass" checks do not apply, and a person who
  already has a key may get another (a replacement), see `onboarding.evaluate`;
* after the approval the desk does the work, in signed jobs (agent/jobs.py `provision`):
  `create` (PIN, passkey, attestation) -> Graph registers the passkey -> `finish` (forced PIN change
  at first use and the minimum PIN length; only now, or the key would refuse to create the passkey).
  If Graph refuses the passkey (model not allowed, challenge expired, already registered...), a
  `discard` job deletes it from the key again, and the technician is told plainly;
* request states: APPROVED -> ISSUING (desk working) -> ISSUED (registered) -> COMPLETED; a failure
  before the registration ends in CANCELLED, with the reason in `desk_provisionings.error` and audit.

Pickup keys get a random PIN the technician never sees: the agent seals it to a one-time key of ours
(bot/services/pin_seal.py), the person reveals it once in a modal from their DM, then it is destroyed
(or after 24 h). No PIN ever reaches a log, the audit, Slack text or blocks, or private_metadata.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from agent import sealed_pin
from bot.deadlines import Deadline, RetryLater
from bot.directory import (
    AttestationRejected,
    ChallengeInvalid,
    DirectoryError,
    Fido2Attestation,
    Forbidden,
    InvalidRequest,
    KeyAlreadyRegistered,
    KeyModelNotAllowed,
    MethodKind,
)
from bot.domain.eligibility import CheckName
from bot.domain.tap_request import RequestKind, RequestState
from bot.domain.text import safe
from bot.logs import get_logger
from bot.services import (
    desk_common,
    desk_inventory,
    desk_link,
    desk_notices,
    identity,
    onboarding,
    pin_seal,
    risk,
    tap_common,
)
from bot.services.approvals import authorise_approver
from bot.services.desk_link import JobOutcome
from bot.services.runtime import Runtime
from bot.slack import blocks as b
from bot.slack import provision_views
from bot.slack.messenger import PostedMessage, SlackError
from bot.store import desk_repo, tap_repo
from bot.store.models.desk import AgentState, JobState
from bot.store.models.desk_provisioning import DeskProvisioning, PinMode, ProvisioningStep, SealedPin
from bot.store.models.tap_requests import TapRequest

log = get_logger(__name__)

JOB_KIND = "provision"
WATCH_DEADLINE = "desk.provision_watch"
WATCH_GRACE = timedelta(seconds=5)
DISPLAY_NAME_CHARS = 30  # Entra's passkey display name limit (DSInternals: 1-30)


# --- asking ----------------------------------------------------------------------------------------
async def ask(
    rt: Runtime, technician: str, desk_name: str, target_slack_id: str, mode: str, channel: str | None = None
) -> str:
    """A technician asks for a key for `target_slack_id` at `desk_name`; returns what they read."""
    try:
        pin_mode = PinMode(mode)
    except ValueError:
        return "Choose how the PIN is set: `at-desk` (the person types it) or `pickup` (random, revealed in Slack)."
    _, problem = await authorise_approver(rt, technician, None)
    if problem:
        await _refused(rt, technician, target_slack_id, "not_authorised")
        return problem.replace("decide pass requests", "prepare keys at a desk")
    if target_slack_id == technician:
        await _refused(rt, technician, target_slack_id, "self")
        return "You can't prepare a key for yourself: ask another member of the helpdesk."
    async with rt.db.read() as session:
        agent = await desk_repo.agent_by_name(session, desk_name)
        existing = await tap_repo.open_for_target(session, target_slack_id)
    if agent is None:
        await _refused(rt, technician, target_slack_id, "unknown_desk")
        return f"There is no desk agent named `{safe(desk_name, 64)}`. See `/keydesk desk list`."
    if agent.state != AgentState.ACTIVE:
        await _refused(rt, technician, target_slack_id, f"desk_{agent.state}")
        return f"Desk `{agent.name}` can't take jobs: it is {agent.state.replace('_', ' ')}."
    if existing is not None:
        await _refused(rt, technician, target_slack_id, "already_open")
        return f"<@{target_slack_id}> already has a request in progress; finish or close that one first."
    try:
        who = await identity.resolve(rt, target_slack_id)
        checks = await onboarding.evaluate(rt, who, RequestKind.DESK_KEY)
    except identity.IdentityRefused as refusal:
        await _refused(rt, technician, target_slack_id, refusal.reason.value)
        return f"I can't prepare a key for <@{target_slack_id}>: {refusal.reason.value.replace('_', ' ')}."
    except DirectoryError as exc:
        await _refused(rt, technician, target_slack_id, "directory_unavailable", error=type(exc).__name__)
        return "Microsoft Entra didn't answer, so I couldn't check that person. Nothing was asked; try again shortly."
    failed = next((c for c in checks if not c.passed), None)
    if failed is not None:
        await _refused(rt, technician, target_slack_id, failed.name.value, evidence=failed.evidence)
        if failed.name is CheckName.NOT_PRIVILEGED:
            await tap_common.alert(
                rt,
                f"<@{technician}> asked to prepare a desk key for <@{target_slack_id}>, a privileged account "
                f"({failed.evidence}). Refused: privileged accounts go through the admin process.",
                loud=True,
            )
            return (
                f"I can't prepare a key for <@{target_slack_id}>: the account is privileged "
                f"({failed.evidence}). Privileged accounts go through the separate admin process."
            )
        if failed.name is CheckName.USER_RISK:  # the technician may know why; the channel must too
            asked = f"<@{technician}> asked to prepare a desk key for <@{target_slack_id}>"
            await risk.alert(rt, failed, asked)
        return f"I can't prepare a key for <@{target_slack_id}>: {failed.label.lower()} failed ({failed.evidence})."
    now = rt.clock.now()

    async def with_desk(session: Any, request_id: str) -> None:  # in the request's own transaction
        session.add(
            DeskProvisioning(
                request_id=request_id,
                agent_id=agent.id,
                pin_mode=pin_mode.value,
                step=ProvisioningStep.AWAITING_APPROVAL.value,
                technician_slack_id=technician,
                reply_channel=channel,
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        await rt.audit.record(
            "desk.provision.requested",
            actor=f"slack:{technician}",
            target=f"entra:{who.entra.id}",
            details={"request_id": request_id, "desk": agent.id, "pin_mode": pin_mode.value},
            session=session,
        )

    outcome = await onboarding.file_request(
        rt,
        who,
        checks,
        RequestKind.DESK_KEY,
        requester=technician,
        profile_extra={"desk": agent.name, "pin_mode": pin_mode.value},
        on_filed=with_desk,
    )
    if outcome.request_id is None:
        return f"<@{target_slack_id}> already has a request in progress; finish or close that one first."
    return (
        f"Asked: a second approver must approve the card for <@{target_slack_id}> in the helpdesk channel. "
        f"Then desk `{agent.name}` prepares the key (PIN {provision_views.MODE_SHORT[pin_mode]}); "
        "I'll post the progress in the card's thread."
    )


async def _refused(rt: Runtime, technician: str, target: str, reason: str, **details: Any) -> None:
    await rt.audit.record(
        "desk.provision.refused",
        actor=f"slack:{technician}",
        target=f"slack:{target}",
        outcome="refused",
        details={"reason": reason, **details},
    )


# --- after the approval ----------------------------------------------------------------------------
async def start(rt: Runtime, request_id: str, approver: str) -> str:
    """The request was just approved: get creation options from Graph and send the desk its job."""
    request = await tap_common.load(rt, request_id)
    prov = await desk_common.provisioning(rt, request_id)
    if request is None or prov is None:
        return "Approved, but I can't find the desk for this request; nothing was sent."
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await tap_repo.transition(
            session, request_id, expected=RequestState.APPROVED, to=RequestState.ISSUING, issuing_since=now
        )
        if won:
            await rt.deadlines.cancel(f"tap-approval:{request_id}", session=session)
            await _set(session, request_id, step=ProvisioningStep.CREATING, now=now)
    if not won:
        return "Approved, but the request moved on meanwhile; nothing was sent to the desk."
    minutes = rt.settings.provisioning_challenge_minutes
    try:
        options = await rt.directory.fido2_creation_options(request.target_entra_id, minutes)
    except DirectoryError as exc:
        hint = (
            " keydesk's Graph app may lack UserAuthMethod-Passkey.ReadWrite.All, or the FIDO2 policy doesn't "
            "cover this person (v1.0 also needs 'Allow self-service setup')."
            if isinstance(exc, Forbidden | InvalidRequest)
            else ""
        )
        await _fail(
            rt, request, f"Microsoft Entra didn't give a passkey challenge ({type(exc).__name__}).{hint}"
        )
        return (
            "Approved, but Microsoft Entra didn't answer; the key was not prepared. The technician was told."
        )
    try:
        async with rt.db.session() as session:
            agent = await desk_repo.agent(session, prov.agent_id)
            params: dict[str, Any] = {
                "phase": "create",
                "provisioning_id": request_id,
                "pin_mode": prov.pin_mode,
                "options": options.as_json(),
                "min_pin_length": rt.settings.desk_min_pin_length,
                "person": str((request.target_profile or {}).get("display_name") or "")[:100],
            }
            if prov.pin_mode == PinMode.PICKUP:
                params["pin_recipient"] = await pin_seal.prepare(
                    rt, session, request_id, request.target_slack_id
                )
            await _set(
                session,
                request_id,
                now=now,
                api_version=options.api_version,
                challenge_expires_at=options.challenge_expires,
            )
        job_id = await _submit(rt, request, prov, params)
    except desk_link.AgentUnavailable as exc:
        await _fail(rt, request, f"Desk `{agent.name if agent else '?'}` can't take jobs: it is {exc}.")
        return "Approved, but the desk can't take jobs; the key was not prepared. The technician was told."
    expires = options.challenge_expires
    await rt.audit.record(
        "desk.provision.started",
        actor=f"slack:{approver}",
        target=f"entra:{request.target_entra_id}",
        details={
            "request_id": request_id,
            "job_id": job_id,
            "desk": prov.agent_id,
            "api_version": options.api_version,
            "challenge_minutes": minutes,
        },
    )
    desk = agent.name if agent else "?"
    who = (
        f"<@{request.target_slack_id}> types their own PIN on the desk's screen when it asks"
        if prov.pin_mode == PinMode.AT_DESK
        else "the key gets a random PIN nobody at the desk sees"
    )
    await _progress(
        rt,
        request,
        f":key: Approved by <@{approver}>. Desk `{desk}` has the job: plug in a *new or reset* key there now; "
        f"{who}. Entra's challenge runs until {provision_views.ts(expires)}.",
    )
    return f"Approved. Desk `{desk}` is preparing the key; the progress is in the card's thread."


async def _submit(rt: Runtime, request: TapRequest, prov: DeskProvisioning, params: dict[str, Any]) -> str:
    job_id = await desk_link.submit_job(
        rt,
        prov.agent_id,
        JOB_KIND,
        request.target_entra_id,
        params,
        requested_by_slack_id=prov.technician_slack_id,
    )
    async with rt.db.session() as session:
        if params["phase"] == "create":
            await _set(session, request.id, now=rt.clock.now(), create_job_id=job_id)
        elif params["phase"] == "finish":
            await _set(session, request.id, now=rt.clock.now(), finish_job_id=job_id)
        job = await desk_repo.job(session, job_id)
        assert job is not None
        await rt.deadlines.schedule(
            WATCH_DEADLINE,
            job.expires_at + WATCH_GRACE,
            {"request_id": request.id, "job_id": job_id, "phase": params["phase"]},
            key=f"desk-provision:{job_id}",
            session=session,
        )
    return job_id


# --- the desk's answers ----------------------------------------------------------------------------
async def on_result(rt: Runtime, outcome: JobOutcome) -> None:
    phase = outcome.params.get("phase")
    request_id = str(outcome.params.get("provisioning_id") or "")
    request = await tap_common.load(rt, request_id)
    prov = await desk_common.provisioning(rt, request_id)
    if request is None or prov is None or request.kind != RequestKind.DESK_KEY:
        log.warning("desk.provision.orphan_result", job=outcome.job_id)
        return
    if phase == "create" and outcome.job_id == prov.create_job_id:
        await _created(rt, request, prov, outcome)
    elif phase == "finish" and outcome.job_id == prov.finish_job_id:
        await _finished(rt, request, prov, outcome)
    elif phase == "discard":
        await _discarded(rt, request, outcome)


async def _created(rt: Runtime, request: TapRequest, prov: DeskProvisioning, outcome: JobOutcome) -> None:
    if request.state != RequestState.ISSUING or prov.step != ProvisioningStep.CREATING:
        return
    if not outcome.ok:
        await _fail(rt, request, f"Desk `{outcome.agent_name}`: {outcome.error}")
        return
    result = outcome.result
    report = result.get("key") if isinstance(result.get("key"), dict) else {}
    assert isinstance(report, dict)
    try:
        attestation = Fido2Attestation.from_public_key_credential(result.get("public_key_credential") or {})
    except (ValueError, AttributeError):
        await _discard(rt, request, prov, "the desk's answer carried no usable passkey")
        return
    if prov.pin_mode == PinMode.PICKUP:
        try:
            await pin_seal.keep(
                rt,
                request.id,
                result.get("sealed_pin"),
                sealed_pin.context(outcome.job_id, outcome.target_entra_id or ""),
            )
        except pin_seal.PinUnavailable as exc:
            await _discard(rt, request, prov, f"the key's PIN did not come back sealed for us ({exc})")
            return
    now = rt.clock.now()
    async with rt.db.session() as session:
        await _set(
            session, request.id, step=ProvisioningStep.REGISTERING, now=now, key_report=_key_facts(report)
        )
    await _progress(rt, request, f"Desk `{outcome.agent_name}` created the passkey; registering it in Entra…")
    name = _display_name(report)
    try:
        method = await rt.directory.register_fido2(
            request.target_entra_id, name, attestation, api_version=prov.api_version or "v1.0"
        )
        method_id = method.id
    except DirectoryError as exc:
        found = await _already_there(rt, request.target_entra_id, attestation.credential_id)
        if found is None:
            await _discard(rt, request, prov, _graph_refusal(exc, report, prov))
            return
        method_id = found
    await _registered(rt, request, prov, outcome, report, method_id)


async def _registered(
    rt: Runtime,
    request: TapRequest,
    prov: DeskProvisioning,
    outcome: JobOutcome,
    report: dict[str, Any],
    method_id: str,
) -> None:
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await tap_repo.transition(
            session, request.id, expected=RequestState.ISSUING, to=RequestState.ISSUED, tap_created_at=now
        )
        if won:
            await _set(session, request.id, step=ProvisioningStep.FINISHING, now=now, method_id=method_id)
            await rt.audit.record(
                "desk.provision.registered",
                actor=f"agent:{outcome.agent_name}",
                target=f"entra:{request.target_entra_id}",
                details={
                    "request_id": request.id,
                    "method_id": method_id,
                    "aaguid": report.get("aaguid"),
                    "serial": report.get("serial_number"),
                },
                session=session,
            )
    if not won:
        return
    record = await desk_inventory.record_provisioned(
        rt,
        agent_id=prov.agent_id,
        report=report,
        target_entra_id=request.target_entra_id,
        target_slack_id=request.target_slack_id,
        method_id=method_id,
        actor=f"slack:{prov.technician_slack_id}",
    )
    if record is not None:
        async with rt.db.session() as session:
            await _set(session, request.id, now=now, key_record_id=record.id)
    await tap_common.refresh(rt, request.id)
    try:
        await _submit(rt, request, prov, {"phase": "finish", "provisioning_id": request.id})
    except desk_link.AgentUnavailable as exc:
        await _complete(rt, request, prov, warning=f"the desk can't take jobs any more ({exc})")
        return
    await _progress(
        rt, request, "Registered in Entra. The desk is now setting the key to ask for a new PIN at first use…"
    )


async def _finished(rt: Runtime, request: TapRequest, prov: DeskProvisioning, outcome: JobOutcome) -> None:
    if request.state != RequestState.ISSUED or prov.step != ProvisioningStep.FINISHING:
        return
    forced = outcome.ok and outcome.result.get("force_pin_change_pending") is True
    warning = None if forced else (outcome.error or "the key did not confirm the forced PIN change")
    await _complete(rt, request, prov, warning=warning, min_length=outcome.result.get("min_pin_length"))


async def _complete(
    rt: Runtime, request: TapRequest, prov: DeskProvisioning, *, warning: str | None, min_length: Any = None
) -> None:
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await tap_repo.transition(
            session, request.id, expected=RequestState.ISSUED, to=RequestState.COMPLETED, closed_at=now
        )
        if won:
            await _set(session, request.id, step=ProvisioningStep.DONE, now=now, error=warning)
            await rt.audit.record(
                "desk.provision.completed",
                actor="system",
                target=f"entra:{request.target_entra_id}",
                outcome="ok" if warning is None else "failed",
                details={
                    "request_id": request.id,
                    "force_pin_change": warning is None,
                    "min_pin_length": min_length if isinstance(min_length, int) else None,
                    "warning": safe(warning, 300) if warning else None,
                },
                session=session,
            )
    if not won:
        return
    desk = await _desk_name(rt, prov.agent_id)
    fresh = await tap_common.refresh(rt, request.id)
    if warning is None:
        await _progress(
            rt,
            fresh or request,
            f":white_check_mark: Done. <@{request.target_slack_id}>'s key is registered in Entra, asks for a new "
            f"PIN at first use (minimum {min_length} characters), and is in the inventory. "
            + (
                "Hand it over at the desk."
                if prov.pin_mode == PinMode.AT_DESK
                else "It's ready for pickup; they reveal the PIN in their DM with me."
            ),
        )
    else:
        await _progress(
            rt,
            fresh or request,
            f":warning: The key is registered in Entra, but finishing it failed: {safe(warning, 300)}. "
            "It does *not* force a PIN change at first use: have the person change the PIN at the desk.",
        )
    if prov.pin_mode == PinMode.PICKUP:
        await _offer_pin(rt, request, desk)
    await desk_notices.announce(rt, request.id)  # the manager and the person's mailbox (IDV-6); never raises


async def _offer_pin(rt: Runtime, request: TapRequest, desk: str) -> None:
    row = await pin_seal.load(rt, request.id)
    if row is None:
        return
    text, blocks = provision_views.pin_message(request.id, desk, row.destroy_at)
    try:
        posted = await rt.slack.post_dm(request.target_slack_id, text, blocks)
    except SlackError as exc:
        log.warning("desk.pin.offer_failed", request=request.id, error=exc.code)
        return
    await pin_seal.set_message(rt, request.id, posted.channel, posted.ts)


# --- refusals and failures -------------------------------------------------------------------------
def _graph_refusal(exc: DirectoryError, report: dict[str, Any], prov: DeskProvisioning) -> str:
    model = safe(str(report.get("model") or "unknown model"), 100)
    aaguid = safe(str(report.get("aaguid") or "?"), 36)
    if isinstance(exc, KeyModelNotAllowed):
        return (
            f"Entra's FIDO2 policy doesn't allow this key model ({model}, AAGUID `{aaguid}`). "
            "Use a model the policy allows, or ask an Entra admin to add it to the key restrictions."
        )
    if isinstance(exc, ChallengeInvalid):
        minutes = 5 if (prov.api_version or "v1.0") == "v1.0" else None
        how_long = f"{minutes} minutes" if minutes else "its time"
        return (
            f"Entra's passkey challenge ran out ({how_long}) or was already used before the key was ready. "
            "Ask again and have the key at hand (KEYDESK_PROVISIONING_CHALLENGE_MINUTES allows longer challenges "
            "through the beta API)."
        )
    if isinstance(exc, KeyAlreadyRegistered):
        return "This passkey is already registered for the person in Entra."
    if isinstance(exc, AttestationRejected):
        return "Entra could not verify the key's attestation (is it a genuine, supported key?)."
    if isinstance(exc, Forbidden):
        return "Entra refused keydesk's call: the Graph app needs UserAuthMethod-Passkey.ReadWrite.All."
    return f"Entra didn't register the passkey ({type(exc).__name__})."


async def _already_there(rt: Runtime, user_id: str, credential_id: str) -> str | None:
    """After a failed POST: did Entra register it after all (a lost answer)? Method id or None."""
    try:
        methods = await rt.directory.list_methods(user_id, hardware_oath=False)
    except DirectoryError:
        return None
    for method in methods:
        bare = method.id[:-1] if method.id[-1:] in ("0", "1", "2") else method.id
        if method.kind is MethodKind.FIDO2 and credential_id.rstrip("=") in (bare, method.id):
            return method.id
    return None


async def _discard(rt: Runtime, request: TapRequest, prov: DeskProvisioning, reason: str) -> None:
    """Graph refused the passkey: fail the request, and ask the desk to delete it from the key."""
    await _fail(rt, request, reason, key_touched=True)
    try:
        await _submit(rt, request, prov, {"phase": "discard", "provisioning_id": request.id})
    except desk_link.AgentUnavailable:
        await _progress(
            rt, request, "The desk can't take jobs, so the passkey stays on the key: reset the key."
        )


async def _discarded(rt: Runtime, request: TapRequest, outcome: JobOutcome) -> None:
    if outcome.ok:
        text = (
            f"Desk `{outcome.agent_name}` deleted the refused passkey from the key. The key keeps the PIN it got: "
            "reset it (`keydesk-agent reset`) before preparing it again."
        )
    else:
        text = (
            f"Desk `{outcome.agent_name}` could not delete the refused passkey ({outcome.error}). "
            "Reset the key before using it."
        )
    await rt.audit.record(
        "desk.provision.discarded",
        actor=f"agent:{outcome.agent_name}",
        target=f"entra:{request.target_entra_id}",
        outcome="ok" if outcome.ok else "failed",
        details={"request_id": request.id, "job_id": outcome.job_id},
    )
    await _progress(rt, request, text)


async def _fail(rt: Runtime, request: TapRequest, reason: str, *, key_touched: bool = False) -> None:
    """Before registration: close the request as cancelled, destroy any sealed PIN, tell everyone."""
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await tap_repo.transition(
            session, request.id, expected=RequestState.ISSUING, to=RequestState.CANCELLED, closed_at=now
        )
        if won:
            await _set(session, request.id, step=ProvisioningStep.FAILED, now=now, error=safe(reason, 500))
            await rt.audit.record(
                "desk.provision.failed",
                actor="system",
                target=f"entra:{request.target_entra_id}",
                outcome="failed",
                details={"request_id": request.id, "reason": safe(reason, 500)},
                session=session,
            )
            await pin_seal.destroy(rt, request.id, reason="provisioning_failed", session=session)
    if not won:
        return
    fresh = await tap_common.refresh(rt, request.id)
    after = " The passkey is being deleted from the key again." if key_touched else ""
    await _progress(
        rt,
        fresh or request,
        f":no_entry: The key was *not* prepared: {safe(reason, 500)}{after} Nothing was registered in Entra. "
        f"Ask again with `/keydesk desk provision`.",
    )


# --- watching for jobs that never came back --------------------------------------------------------
async def watch(rt: Runtime, request_id: str, job_id: str, phase: str) -> None:
    """Deadline just after a job's expiry: if it ended without a result (expired, agent revoked), act."""
    async with rt.db.read() as session:
        job = await desk_repo.job(session, job_id)
    if job is None:
        return
    if job.state in (JobState.QUEUED, JobState.DELIVERED):
        if rt.clock.now() < job.expires_at:
            raise RetryLater(5, "job still open")
        await desk_link.expire_job(rt, job_id)  # its own deadline may not have run yet (idempotent)
        async with rt.db.read() as session:
            job = await desk_repo.job(session, job_id)
        if job is None or job.state in (JobState.QUEUED, JobState.DELIVERED):
            raise RetryLater(5, "job still open")
    request = await tap_common.load(rt, request_id)
    prov = await desk_common.provisioning(rt, request_id)
    if request is None or prov is None or job.state == JobState.DONE:
        return
    why = (
        "it was revoked"
        if job.error == "agent revoked"
        else "it did not answer in time (is `keydesk-agent run` running?)"
    )
    if job.state == JobState.FAILED and job.error != "agent revoked":
        return  # a failure with a result went through on_result
    if phase == "create" and prov.create_job_id == job_id and request.state == RequestState.ISSUING:
        await _fail(rt, request, f"the desk never sent the passkey back: {why}")
    elif phase == "finish" and prov.finish_job_id == job_id and request.state == RequestState.ISSUED:
        await _complete(rt, request, prov, warning=f"the desk never confirmed it: {why}")
    elif phase == "discard":
        await _progress(rt, request, f"The desk didn't delete the refused passkey ({why}): reset the key.")


# --- revealing a pickup PIN ------------------------------------------------------------------------
async def reveal_pin(rt: Runtime, request_id: str, clicker: str, view_id: str) -> None:
    """Called right after a 'working' modal opened; fills it with the PIN for its owner, once."""
    row = await pin_seal.load(rt, request_id)
    problem: str | None = None
    if row is None:
        problem = "This PIN is no longer here: it was revealed already, or deleted after 24 hours."
    elif clicker != row.target_slack_id:
        problem = "This PIN belongs to someone else, so I can't show it to you."
    secret = None
    if row is not None and problem is None:
        try:
            secret = pin_seal.open_pin(rt, row)
        except pin_seal.PinUnavailable:
            problem = "The PIN isn't ready to show. Ask the helpdesk."
    if problem or secret is None or row is None:
        await rt.audit.record(
            "desk.pin.reveal_refused",
            actor=f"slack:{clicker}",
            target=f"request:{request_id}",
            outcome="refused",
            details={
                "reason": "not_owner" if row is not None and clicker != row.target_slack_id else "unavailable"
            },
        )
        with contextlib.suppress(SlackError):
            await rt.slack.update_view(view_id, provision_views.problem_modal(problem or "Not available."))
        return
    request = await tap_common.load(rt, request_id)
    desk = str(((request.target_profile or {}) if request else {}).get("desk") or "the helpdesk")
    try:
        await rt.slack.update_view(view_id, provision_views.pin_modal(secret, desk))
    except SlackError as exc:
        log.warning("desk.pin.show_failed", request=request_id, error=exc.code)
        await tap_common.tell(rt, clicker, "I couldn't show the PIN; press *Reveal PIN* again.")
        return
    del secret
    await pin_seal.destroy(rt, request_id, reason="revealed", actor=f"slack:{clicker}")
    await rt.audit.record(
        "desk.pin.revealed",
        actor=f"slack:{clicker}",
        target=f"request:{request_id}",
        details={"request_id": request_id},
    )
    await _replace_pin_message(rt, row, revealed=True)


async def _replace_pin_message(rt: Runtime, row: SealedPin | None, *, revealed: bool) -> None:
    if row is None or not (row.dm_channel and row.dm_ts):
        return
    text, blocks = provision_views.pin_gone_message(rt.clock.now() if revealed else None)
    try:
        await rt.slack.update(PostedMessage(row.dm_channel, row.dm_ts), text, blocks)
    except SlackError as exc:
        log.warning("desk.pin.message_update_failed", error=exc.code)


async def _pin_expired(rt: Runtime, request_id: str, row: SealedPin | None) -> None:
    await _replace_pin_message(rt, row, revealed=False)
    prov = await desk_common.provisioning(rt, request_id)
    request = await tap_common.load(rt, request_id)
    if prov is not None and request is not None and request.state == RequestState.COMPLETED:
        await _progress(
            rt,
            request,
            f"<@{request.target_slack_id}> didn't reveal the key's PIN within 24 hours, so it was deleted. "
            "Reset the key and prepare it again when they come for it.",
        )


# --- small helpers ---------------------------------------------------------------------------------
async def _set(
    session: Any, request_id: str, *, now: Any, step: ProvisioningStep | None = None, **values: Any
) -> None:
    row = await session.get(DeskProvisioning, request_id, populate_existing=True)
    if row is None:
        return
    if step is not None:
        row.step = step.value
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = now


async def _desk_name(rt: Runtime, agent_id: str) -> str:
    async with rt.db.read() as session:
        agent = await desk_repo.agent(session, agent_id)
    return agent.name if agent else "the helpdesk"


def _key_facts(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("aaguid", "serial_number", "model", "product_name", "firmware")
    return {k: safe(str(report[k]), 200) for k in keep if report.get(k) is not None}


def _display_name(report: dict[str, Any]) -> str:
    model = str(report.get("model") or report.get("product_name") or "Security key")
    serial = str(report.get("serial_number") or "")
    name = f"{model} {serial}".strip() if serial else model
    return safe(name, DISPLAY_NAME_CHARS)[:DISPLAY_NAME_CHARS] or "Security key"


async def _progress(rt: Runtime, request: TapRequest, text: str) -> None:
    """The technician's running commentary: in the card's thread, or by DM when there is no card."""
    prov = await desk_common.provisioning(rt, request.id)
    technician = prov.technician_slack_id if prov else request.requester_slack_id
    if request.card_channel and request.card_ts:
        try:
            await rt.slack.post(
                request.card_channel, text[:3000], [b.section(text)], thread_ts=request.card_ts
            )
            return
        except SlackError as exc:
            log.warning("desk.provision.thread_failed", error=exc.code)
    await tap_common.tell(rt, technician, text)


def register(rt: Runtime) -> None:
    """Deadlines and the desk's results; called once at startup (bot/services/timers.py)."""

    async def watch_handler(deadline: Deadline) -> None:
        payload = deadline.payload
        await watch(rt, str(payload["request_id"]), str(payload["job_id"]), str(payload.get("phase")))

    rt.deadlines.register(WATCH_DEADLINE, watch_handler)
    pin_seal.register_deadlines(rt, _pin_expired)
    desk_link.on_result(JOB_KIND, on_result)
