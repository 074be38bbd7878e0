"""Revealing the pass: created in Entra on the click, shown once in a modal, cleaned up on every failure."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from bot.directory import DirectoryError, IssuedTap, TapPolicy, Throttled
from bot.domain import eligibility as rules
from bot.domain.tap_request import RequestKind, RequestState
from bot.logs import get_logger
from bot.services import pass_modal, privileged, registration, reveal_risk, tap_common
from bot.services.runtime import Runtime
from bot.slack import tap_views
from bot.slack.messenger import SlackError
from bot.store import tap_repo
from bot.store.models.tap_requests import TapIssuance, TapRequest
from bot.store.outage import DATABASE_UNAVAILABLE

log = get_logger(__name__)

ORPHAN_DEADLINE = "tap.orphan_check"
PASS_EXPIRY_DEADLINE = "tap.pass_expired"  # noqa: S105 - a name, not a secret
ORPHAN_AFTER = timedelta(minutes=2)
THROTTLE_BUDGET_SECONDS = 120.0  # security.md REL-4: wait out throttling for about two minutes at most
FIRST_STEP = "open the security info page, sign in, then choose *Add sign-in method* → *Security key*."
# How many reveals do their work (database, Graph, Slack) at once; the rest wait with their modal open.
# A crowd clicking at once queues here instead of taking every database connection while Entra
# throttles them (bench/reveal.py: 200 at once against 20 passes/s).
REVEAL_SLOTS = 8
# The work after a pass is shown (DM and card refresh, the manager's notice, the registration wizard)
# waits while other reveals are still on their way to a pass, at most this long, then runs a few at a time.
FOLLOW_UP_MAX_DEFER = 30.0
FOLLOW_UP_SLOTS = 2
NOTICE_SLOTS = 1  # interim modal updates sent at once (a crowd's "still working" would come all together)
STILL_WORKING_AFTER = 5.0  # seconds of "Creating your pass…" before the modal says we're still on it
STILL_WORKING = (
    "Creating your pass… still working on it: Microsoft Entra is slow to answer right now. "
    "Keep this window open; your pass will appear here."
)
ANOTHER_WINDOW = (
    "I already showed your pass in another window. If you closed it, press *Reveal pass* again "
    "for a fresh one (the one before stops working)."
)
ANOTHER_CLICK_STILL_WORKING = (
    "Another click of yours is still creating your pass. If no pass appears in a few minutes, "
    "press *Reveal pass* again."
)
# A click that finds another click creating the pass waits for it, checking this often, at most as long as
# that click may wait on Entra, plus this grace.
OTHER_CLICK_POLL_SECONDS = 0.2
OTHER_CLICK_GRACE_SECONDS = 30.0
DATABASE_DOWN = (
    "I can't reach my database right now, so I didn't create a pass: nothing was issued. "
    "Please try again in a few minutes: press *Reveal pass* in my message once more."
)


class _AnotherClick:
    """Another click is creating this request's pass right now."""


ANOTHER_CLICK = _AnotherClick()


class RevealLanes:
    """The pass first, everything else after. One per app (the Reveal listener's); a lone call gets its own.

    `slots` bounds the reveals working at once, after their modal opened (Slack's 3-second trigger_id
    is spent before anyone queues). Follow-up work waits until no reveal is on its way to a pass (or
    FOLLOW_UP_MAX_DEFER passed), then runs FOLLOW_UP_SLOTS at a time: a crowd's passes are not slowed
    by messages nobody is waiting for, and those messages all still go out right after.
    """

    def __init__(self, slots: int = REVEAL_SLOTS) -> None:
        self.slots = asyncio.Semaphore(slots)
        self.follow_ups = asyncio.Semaphore(FOLLOW_UP_SLOTS)
        self.notices = asyncio.Semaphore(NOTICE_SLOTS)
        self._on_the_way = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextlib.asynccontextmanager
    async def on_the_way(self) -> AsyncIterator[None]:
        self._on_the_way += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._on_the_way -= 1
            if self._on_the_way == 0:
                self._quiet.set()

    async def quiet(self, at_most: float) -> None:
        """Until no reveal is on its way to a pass, or `at_most` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._quiet.wait()


class _Modal:
    """The reveal's modal. Interim notices ("still working") never overwrite the final view (the pass
    or why there is none): both go through one lock, and once the final one is sent nothing else is."""

    def __init__(self, rt: Runtime, view_id: str, notices: asyncio.Semaphore) -> None:
        self.rt = rt
        self.view_id = view_id
        self._notices = notices
        self._lock = asyncio.Lock()
        self._final = False
        self._timer: asyncio.Task[None] | None = None

    def still_working_after(self, seconds: float) -> None:
        self._timer = asyncio.create_task(self._still_working(seconds))

    async def _still_working(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.interim(tap_views.working_modal(STILL_WORKING))

    async def interim(self, view: dict[str, Any]) -> None:
        async with self._notices:
            if self._final:
                return
            async with self._lock:
                if not self._final:
                    await _show(self.rt, self.view_id, view)

    async def final(self, view: dict[str, Any]) -> None:
        """Raises SlackError when Slack did not take it."""
        async with self._lock:
            self._final = True
            await self.rt.slack.update_view(self.view_id, view)

    async def final_or_log(self, view: dict[str, Any]) -> None:
        try:
            await self.final(view)
        except SlackError as exc:
            log.warning("tap.modal.update_failed", error=exc.code)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


async def reveal(
    rt: Runtime, request_id: str, clicker: str, view_id: str, lanes: RevealLanes | None = None
) -> None:
    """Called right after the modal opened with 'Creating your pass…'; fills it in or explains why not.

    Whoever waits (for a slot, or for Entra) is told after STILL_WORKING_AFTER seconds that we are
    still on it. Once the pass is shown and on record, the follow-up work runs (see `RevealLanes`).
    """
    lanes = lanes or RevealLanes()
    modal = _Modal(rt, view_id, lanes.notices)
    modal.still_working_after(STILL_WORKING_AFTER)
    try:
        issued = await _reveal_or_follow(rt, request_id, clicker, modal, lanes)
    except DATABASE_UNAVAILABLE as exc:
        # Fail closed (no pass is left usable, see `_reveal`) and say so, instead of "Creating…" for good.
        # Nothing can be audited without the database; the log says what happened.
        log.warning("tap.reveal.database_unavailable", request=request_id, error=type(exc).__name__)
        await modal.final_or_log(tap_views.problem_modal(DATABASE_DOWN))
        return
    finally:
        modal.close()
    if issued is not None:
        await lanes.quiet(FOLLOW_UP_MAX_DEFER)
        async with lanes.follow_ups:
            try:
                await _after_issue(rt, issued)
            except DATABASE_UNAVAILABLE as exc:  # the pass is shown and on record; the rest can wait
                log.warning("tap.after_issue.database_unavailable", request=issued, error=type(exc).__name__)


async def _reveal_or_follow(
    rt: Runtime, request_id: str, clicker: str, modal: _Modal, lanes: RevealLanes
) -> str | None:
    """`_reveal`, and when another click is already creating the pass, follow that click.

    A double click opens two modals, and the second replaces the first on screen: the first click's
    pass then can't be shown and is deleted unseen. So the later click waits (outside the reveal slots)
    for the other one to end, and takes over when it gave way, showing the pass in the window that is
    really open.
    """
    async with lanes.on_the_way(), lanes.slots:
        issued = await _reveal(rt, request_id, clicker, modal)
    if not isinstance(issued, _AnotherClick):
        return issued
    other_ended_in = await _while_another_click_works(rt, request_id)
    if other_ended_in not in (RequestState.ISSUED, RequestState.ISSUING):
        async with lanes.on_the_way(), lanes.slots:  # it gave way (or the request closed: `_reveal` says so)
            issued = await _reveal(rt, request_id, clicker, modal)
        if not isinstance(issued, _AnotherClick):
            return issued
    still = other_ended_in == RequestState.ISSUING
    await modal.final_or_log(
        tap_views.problem_modal(ANOTHER_CLICK_STILL_WORKING if still else ANOTHER_WINDOW)
    )
    return None


async def _while_another_click_works(rt: Runtime, request_id: str) -> RequestState | None:
    """Wait while another click is creating the pass: the request's state then (None if it is gone),
    still ISSUING if that click outlasted its own time limit (a process that died: the orphan deadline
    cleans up)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + THROTTLE_BUDGET_SECONDS + OTHER_CLICK_GRACE_SECONDS
    while loop.time() < give_up:
        await asyncio.sleep(OTHER_CLICK_POLL_SECONDS)
        request = await tap_common.load(rt, request_id)
        if request is None or request.state != RequestState.ISSUING:
            return None if request is None else RequestState(request.state)
    return RequestState.ISSUING


async def _reveal(rt: Runtime, request_id: str, clicker: str, modal: _Modal) -> str | _AnotherClick | None:
    """The way to a pass: the id of the request when one was shown (and recorded), else None; or
    ANOTHER_CLICK when another click is creating this request's pass right now (nothing shown yet)."""
    request = await tap_common.load(rt, request_id)
    problem = _reveal_problem(rt, request, clicker)
    if problem or request is None:
        await rt.audit.record(
            "tap.reveal.refused",
            actor=f"slack:{clicker}",
            target=f"request:{request_id}",
            outcome="refused",
            details={"reason": problem or "unknown_request"},
        )
        await modal.final_or_log(tap_views.problem_modal(problem or "I can't find that request."))
        return None
    if request.state == RequestState.ISSUING:  # another click is on it (and checked the risk): follow it
        return ANOTHER_CLICK
    now = rt.clock.now()
    # The TAP policy is read while the risk is checked: one Graph round trip less before the pass.
    policy = asyncio.ensure_future(rt.directory.tap_policy())
    try:
        risky = await reveal_risk.refusal(rt, request, clicker)  # IDV-5, once more before anything is created
        started = not risky and await _start_issuing(rt, request, clicker, now)
    except BaseException:
        _drop(policy)
        raise
    if not started:
        _drop(policy)
        if risky:
            await modal.final_or_log(tap_views.problem_modal(risky))
            return None
        return ANOTHER_CLICK
    if request.state == RequestState.ISSUED:  # the pass on screen now is replaced or, on failure, deleted
        await pass_modal.redact(rt, request.pass_view_id, "replaced")
    try:
        tap = await _create_with_patience(rt, request, modal, await policy)
    except DirectoryError as exc:
        await _abandon(rt, request, modal, exc)
        return None
    try:
        await modal.final(
            tap_views.pass_modal(
                tap.value,
                _expiry(tap, now),
                bool(tap.usable_once),
                rt.settings.sign_in_url,
                FIRST_STEP,
                for_today=request.kind == RequestKind.FORGOTTEN,
            ),
        )
    except SlackError as exc:
        # Nobody saw this pass: it must not stay alive (issue #3 §7).
        log.warning("tap.reveal.show_failed", request=request_id, error=exc.code)
        await _delete_quietly(rt, request.target_entra_id, tap.id)
        await _back_to_approved(rt, request_id, reason=f"modal_failed:{exc.code}")
        await tap_common.tell(
            rt,
            clicker,
            "I couldn't show your pass, so I cancelled it to be safe. "
            "If no pass is on your screen now, press *Reveal pass* again.",
        )
        return None
    try:
        recorded = await _mark_issued(rt, request, tap, now, modal.view_id)
    except DATABASE_UNAVAILABLE:
        # Shown but not on record: it must not stay usable. The caller replaces the modal; the orphan
        # deadline (scheduled above) puts the request back once the database answers again.
        await _delete_quietly(rt, request.target_entra_id, tap.id)
        raise
    if not recorded:
        await _cancel_unrecorded(rt, request, tap, modal)
        return None
    return request_id


async def _start_issuing(rt: Runtime, request: TapRequest, clicker: str, now: datetime) -> bool:
    """APPROVED or ISSUED -> ISSUING, with the orphan deadline and the intent on record (REL-6) before Graph
    is asked for anything. False when another click got there first."""
    request_id = request.id
    async with rt.db.session() as session:
        started = await tap_repo.transition(
            session,
            request_id,
            expected=[RequestState.APPROVED, RequestState.ISSUED],
            to=RequestState.ISSUING,
            issuing_since=now,
            pass_view_id=None,
        )
        if started:
            await rt.deadlines.schedule(
                ORPHAN_DEADLINE,
                now + ORPHAN_AFTER,
                {"request_id": request_id},
                key=f"tap-orphan:{request_id}",
                replace=True,
                session=session,
            )
            await rt.audit.record(
                "tap.issue.started",
                actor=f"slack:{clicker}",
                target=f"entra:{request.target_entra_id}",
                details={"request_id": request_id, "reveal": request.reveal_count + 1},
                session=session,
            )
    return started


async def _cancel_unrecorded(rt: Runtime, request: TapRequest, tap: IssuedTap, modal: _Modal) -> None:
    """The request was closed (revoked) while its pass was being created: that pass must not live on."""
    log.warning("tap.reveal.closed_meanwhile", request=request.id)
    await _delete_quietly(rt, request.target_entra_id, tap.id)
    await modal.final_or_log(tap_views.pass_ended_modal("cancelled"))
    await rt.audit.record(
        "tap.issue.abandoned",
        actor="system",
        target=f"request:{request.id}",
        outcome="failed",
        details={"request_id": request.id, "reason": "request_closed", "passes_deleted": 1},
    )


def _reveal_problem(rt: Runtime, request: TapRequest | None, clicker: str) -> str | None:
    if request is None:
        return "I can't find that request."
    if clicker != request.target_slack_id:
        return "This pass belongs to someone else, so I can't show it to you."
    if request.kind == RequestKind.DESK_KEY:  # a key prepared at a desk: never a pass to create
        return "This request is for a security key prepared at a desk; it has no pass."
    if request.state not in (
        RequestState.APPROVED,
        RequestState.ISSUED,
        RequestState.ISSUING,
    ):  # ISSUING: follow
        return f"This request is {RequestState(request.state).value.replace('_', ' ')}, so there's no pass to show."
    cooling_off = privileged.reveal_problem(request, rt.clock.now())  # admin process: not before the delay
    if cooling_off:
        return cooling_off
    if request.approval_valid_until is None or rt.clock.now() >= request.approval_valid_until:
        return "The approval for this pass has run out. Ask me again and the helpdesk will take another look."
    return None


async def _create_with_patience(
    rt: Runtime, request: TapRequest, modal: _Modal, policy: TapPolicy
) -> IssuedTap:
    """Create the pass; while Entra throttles us, wait as told (bounded) and keep the person informed."""
    minutes = rules.configured_lifetime(
        RequestKind(request.kind), rt.settings.tap_lifetime_minutes, rt.settings.today_pass_minutes
    )
    lifetime = rules.pass_lifetime(minutes, policy)
    once = rules.usable_once(rt.settings.tap_usable_once, policy)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + THROTTLE_BUDGET_SECONDS
    while True:
        try:
            return await rt.directory.create_tap(
                request.target_entra_id, lifetime_minutes=lifetime, usable_once=once
            )
        except Throttled as exc:
            wait = max(exc.retry_after, 0.1)
            if loop.time() + wait > give_up:
                raise
            await modal.interim(
                tap_views.working_modal(
                    f"Microsoft Entra is busy right now, so this is taking a little longer (about {int(wait) + 1} s). "
                    "Keep this window open."
                ),
            )
            await asyncio.sleep(wait)


def _drop(read: asyncio.Future[Any]) -> None:
    """A read nobody will use: stop it, and don't let its failure be reported as never retrieved."""
    read.cancel()
    read.add_done_callback(lambda done: done.cancelled() or done.exception())


def _expiry(tap: IssuedTap, now: datetime) -> datetime:
    start = tap.start or tap.created or now
    return start + timedelta(minutes=tap.lifetime_minutes or 60)


async def _mark_issued(rt: Runtime, request: TapRequest, tap: IssuedTap, now: datetime, view_id: str) -> bool:
    """On record as issued, with the modal showing it; False if the request was closed meanwhile."""
    expires = _expiry(tap, now)
    async with rt.db.session() as session:
        won = await tap_repo.transition(
            session,
            request.id,
            expected=RequestState.ISSUING,
            to=RequestState.ISSUED,
            tap_id=tap.id,
            tap_created_at=tap.created or now,
            tap_expires_at=expires,
            reveal_count=request.reveal_count + 1,
            issuing_since=None,
            pass_view_id=view_id,
        )
        if not won:  # e.g. the manager pressed "this looks wrong" while the pass was being created
            return False
        await tap_repo.record_issuance(
            session,
            TapIssuance(
                request_id=request.id,
                target_entra_id=request.target_entra_id,
                approver_slack_id=request.decided_by_slack_id or "",
                tap_id=tap.id,
                created_at=now,
                expires_at=expires,
            ),
        )
        await rt.deadlines.cancel(f"tap-orphan:{request.id}", session=session)
        await rt.deadlines.cancel(f"tap-approval:{request.id}", session=session)
        await rt.deadlines.schedule(
            PASS_EXPIRY_DEADLINE,
            expires,
            {"request_id": request.id},
            key=f"tap-pass:{request.id}",
            replace=True,
            session=session,
        )
        await rt.audit.record(
            "tap.issued",
            actor=f"slack:{request.target_slack_id}",
            target=f"entra:{request.target_entra_id}",
            details={
                "request_id": request.id,
                "tap_id": tap.id,
                "expires_at": expires.isoformat(),
                "lifetime_minutes": tap.lifetime_minutes,
                "usable_once": tap.usable_once,
                "reveal": request.reveal_count + 1,
                "approved_by": request.decided_by_slack_id,
            },
            session=session,
        )
    return True


async def _after_issue(rt: Runtime, request_id: str) -> None:
    """After the pass was shown and recorded: the DM and card, the manager's notice, the wizard."""
    issued = await tap_common.refresh(rt, request_id)
    if issued is not None:
        await _notify_issued(rt, issued)
    await registration.start_after_reveal(rt, request_id)


async def _notify_issued(rt: Runtime, request: TapRequest) -> None:
    """NIST 800-63B: every newly issued credential is announced on an independent channel too."""
    if request.manager_slack_id:
        text, blocks = tap_views.manager_issued_notice(request)
        try:
            await rt.slack.post_dm(request.manager_slack_id, text, blocks)
        except SlackError as exc:
            log.warning("tap.notify.manager_failed", error=exc.code)
    mailbox = rt.settings.notify_mailbox
    await tap_common.mail_person(
        rt,
        request,
        "A Temporary Access Pass was issued for your account",
        "A Temporary Access Pass was just issued for your account through keydesk, "
        + (
            "to sign in today while your security key is at home. "
            if request.kind == RequestKind.FORGOTTEN
            else "to register a security key. "
        )
        + "If this wasn't you, contact the helpdesk immediately.",
        event="tap.notify.mail_failed",
    )
    await rt.audit.record(
        "tap.notified",
        actor="system",
        target=f"entra:{request.target_entra_id}",
        details={"request_id": request.id, "manager": bool(request.manager_slack_id), "email": bool(mailbox)},
    )


async def _abandon(rt: Runtime, request: TapRequest, modal: _Modal, exc: DirectoryError) -> None:
    """Creating failed or its answer was lost: make sure no pass survives, then let the person retry."""
    log.warning("tap.issue.failed", request=request.id, error=type(exc).__name__)
    removed = await _delete_unseen(rt, request)
    await _back_to_approved(rt, request.id, reason=type(exc).__name__, removed=removed)
    message = (
        "Microsoft Entra is too busy right now, so I couldn't create your pass. Nothing was left behind. "
        "Please press *Reveal pass* again in a few minutes."
        if isinstance(exc, Throttled)
        else "I couldn't create your pass because Microsoft Entra didn't answer properly. Nothing usable was "
        "left behind. Please press *Reveal pass* again in a minute."
    )
    await modal.final_or_log(tap_views.problem_modal(message))


async def _delete_unseen(rt: Runtime, request: TapRequest) -> int:
    """REL-3: after a lost answer, any pass Entra holds for this person was never seen: delete it."""
    removed = 0
    try:
        for tap in await rt.directory.list_taps(request.target_entra_id):
            removed += int(await rt.directory.delete_tap(request.target_entra_id, tap.id))
    except DirectoryError as exc:
        log.warning("tap.orphan.cleanup_deferred", request=request.id, error=type(exc).__name__)
        raise
    return removed


async def _back_to_approved(rt: Runtime, request_id: str, *, reason: str, removed: int = 1) -> None:
    async with rt.db.session() as session:
        await tap_repo.transition(
            session, request_id, expected=RequestState.ISSUING, to=RequestState.APPROVED, issuing_since=None
        )
        await rt.deadlines.cancel(f"tap-orphan:{request_id}", session=session)
        await rt.audit.record(
            "tap.issue.abandoned",
            actor="system",
            target=f"request:{request_id}",
            outcome="failed",
            details={"request_id": request_id, "reason": reason, "passes_deleted": removed},
            session=session,
        )
    await tap_common.refresh(rt, request_id, card=False)


async def _delete_quietly(rt: Runtime, entra_id: str, tap_id: str) -> None:
    try:
        await rt.directory.delete_tap(entra_id, tap_id)
    except DirectoryError as exc:
        log.warning("tap.delete.deferred", error=type(exc).__name__)  # the orphan deadline retries


async def _show(rt: Runtime, view_id: str, view: dict[str, object]) -> None:
    try:
        await rt.slack.update_view(view_id, view)
    except SlackError as exc:
        log.warning("tap.modal.update_failed", error=exc.code)


# --- Deadlines ----------------------------------------------------------------------------------------
async def check_orphan(rt: Runtime, request_id: str) -> None:
    """Still 'issuing' long after the click: the process died mid-way. Delete what Entra holds; reveal again."""
    request = await tap_common.load(rt, request_id)
    if request is None or request.state != RequestState.ISSUING:
        return
    removed = await _delete_unseen(rt, request)
    await _back_to_approved(rt, request_id, reason="orphan", removed=removed)
    await tap_common.tell(
        rt,
        request.target_slack_id,
        "Something interrupted me while I was creating your pass, "
        "so I cancelled it to be safe. Press *Reveal pass* again when you're ready.",
    )


async def expire_pass(rt: Runtime, request_id: str) -> None:
    """The pass ran out before a key was registered: delete it in Entra and say so."""
    request = await tap_common.load(rt, request_id)
    if request is None or request.state != RequestState.ISSUED:
        return
    if request.tap_id:
        await rt.directory.delete_tap(request.target_entra_id, request.tap_id)
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await tap_repo.transition(
            session,
            request_id,
            expected=RequestState.ISSUED,
            to=RequestState.PASS_EXPIRED,
            closed_at=now,
            pass_view_id=None,
        )
        if won:
            await rt.audit.record(
                "tap.pass.expired",
                actor="system",
                target=f"entra:{request.target_entra_id}",
                details={"request_id": request_id, "tap_id": request.tap_id},
                session=session,
            )
    if won:
        await pass_modal.redact(rt, request.pass_view_id, "expired")
        await tap_common.refresh(rt, request_id)
        if request.kind != RequestKind.FORGOTTEN:  # a pass for today simply ends: nothing went wrong
            await tap_common.alert(
                rt,
                f"<@{request.target_slack_id}>'s pass expired before a key was registered.",
                thread_of=request,
            )
        await registration.on_request_changed(rt, request_id)
