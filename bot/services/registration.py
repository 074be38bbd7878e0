"""The guided registration in the DM: the wizard's use cases, the completion watch and the nudge.

After the pass is revealed, `start_after_reveal` reads the tenant's FIDO2 policy (pre-flight), posts
ONE wizard message in the person's DM and arms two durable deadlines: the completion watch and the
nudge. Every click moves the wizard with compare-and-set on its version; the message is re-rendered
from the database, so any replica can serve any click, before or after a restart.

Completion watch (deadline `registration.watch`, one per request): it lists the person's methods in
Graph and looks for one of the guide's kind, not there at the reveal and created after it. When found:
the pass is deleted at once, the request closes (ISSUED -> COMPLETED), the wizard says which key Entra
shows and how to test it, the helpdesk card and App Home follow, and the audit log records it.
It stops at the pass's expiry plus `GRACE`.

Polling budget and detection bound (measured by bench/registration_watch.py):
- each person is polled every `max(interval, floor)` seconds (plus jitter). The interval backs off with
  the time since the person's last click: `IDLE_SHARE` of it, from `MIN_INTERVAL` up to `MAX_INTERVAL`
  (no extra state: a click restarts the step clock). `floor = live wizards * 60 / POLL_BUDGET_PER_MINUTE`,
  so all watches together stay within `POLL_BUDGET_PER_MINUTE` list calls per minute (tenant-wide and
  across replicas: the count is global);
- a click (Done, Back, a method) brings the next poll forward to `max(ACTIVE_DELAY, floor)` seconds from
  now, never later than it already was: still at least a floor after the person's previous poll;
- so a registration is noticed within `detection_bound(live, pump)` seconds: the longest interval
  (with jitter) plus one deadline pump period;
- each replica also keeps its own sliding minute under the budget, so a burst (many reveals at once)
  is deferred rather than sent;
- Graph's 429 is honoured: the throttled watch waits `Retry-After`, and every other watch on this
  replica holds off until then too (spread over one floor), so throttling never becomes a busy loop.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deadlines import Deadline, RetryLater
from bot.directory import AuthMethod, DirectoryError, MethodKind, Throttled
from bot.domain import wizard
from bot.domain.guides import Guide, GuideLibrary, GuideMethod, OrgProfile, UnknownGuideError
from bot.domain.tap_request import RequestState
from bot.domain.text import escape_mrkdwn
from bot.domain.wizard import WizardAction, WizardPhase, WizardState, WizardTransitionError
from bot.logs import get_logger
from bot.services import tap_common
from bot.services.runtime import Runtime
from bot.slack import blocks as b
from bot.slack import tap_views, wizard_views
from bot.slack.messenger import PostedMessage, SlackError
from bot.slack.wizard_views import FoundMethod, HomeFacts, Preflight, Screen
from bot.store import tap_repo, wizard_repo
from bot.store.models.tap_requests import TapRequest
from bot.store.models.wizard import Wizard
from bot.store.wizard_repo import state_of

log = get_logger(__name__)

WATCH_DEADLINE = "registration.watch"
NUDGE_DEADLINE = "registration.nudge"

POLL_BUDGET_PER_MINUTE = 1200  # Graph list calls for all watches together (~6% of a small tenant's quota)
FIRST_POLL_AFTER = 20.0  # seconds after the reveal: nobody registers a key faster
MIN_INTERVAL, MAX_INTERVAL, IDLE_SHARE, JITTER = 15.0, 60.0, 0.5, 0.15
ACTIVE_DELAY = 5.0  # after a click: look this soon (if the budget allows)
UNAVAILABLE_RETRY = 30.0
LIVE_COUNT_TTL = timedelta(seconds=5)
GRACE = timedelta(minutes=5)  # keep looking this long after the pass expired (Entra can lag)
NUDGE_BEFORE = timedelta(minutes=10)
CREATED_SKEW = timedelta(minutes=2)  # Entra's clock and ours may differ a little
KIND_OF = {
    GuideMethod.FIDO2: MethodKind.FIDO2,
    GuideMethod.HARDWARE_OATH: MethodKind.HARDWARE_OATH,
    GuideMethod.AUTHENTICATOR: MethodKind.AUTHENTICATOR,
}
ENDED_BY_REQUEST = {
    RequestState.REVOKED: "revoked",
    RequestState.CANCELLED: "cancelled",
    RequestState.DENIED: "cancelled",
    RequestState.EXPIRED: "cancelled",
}

_LIBRARIES: dict[tuple[str, str, str], GuideLibrary] = {}


def detection_bound(live: int, pump_seconds: float) -> float:
    """The longest a registration can go unnoticed with `live` watches (seconds)."""
    floor = live * 60.0 / POLL_BUDGET_PER_MINUTE
    return max(MAX_INTERVAL, floor) * (1 + JITTER) + pump_seconds


def library(rt: Runtime) -> GuideLibrary:
    """The guides, loaded once per settings (prefers `rt.guides` when build_app put one there)."""
    attached = getattr(rt, "guides", None)
    if isinstance(attached, GuideLibrary):
        return attached
    s = rt.settings
    key = (str(s.guides_dir or ""), s.sign_in_url, s.support_contact)
    if key not in _LIBRARIES:
        org = OrgProfile(sign_in_url=s.sign_in_url, support_contact=s.support_contact)
        _LIBRARIES[key] = GuideLibrary.load(s.guides_dir, org=org)
    return _LIBRARIES[key]


# --- loading ------------------------------------------------------------------------------------------
async def load(rt: Runtime, wizard_id: str) -> Wizard | None:
    async with rt.db.read() as session:
        return await wizard_repo.get(session, wizard_id)


async def _pair(
    rt: Runtime,
    *,
    wizard_id: str | None = None,
    request_id: str | None = None,
) -> tuple[Wizard | None, TapRequest | None]:
    async with rt.db.read() as session:
        row = (
            await wizard_repo.get(session, wizard_id)
            if wizard_id
            else await wizard_repo.for_request(session, str(request_id))
        )
        request = await tap_repo.get(session, row.request_id) if row else None
    return row, request


async def _save_latest(
    session: AsyncSession, wizard_id: str, step: Callable[[WizardState], WizardState], **values: object
) -> bool:
    """Apply `step` to the newest stored state, retrying when another writer got there first."""
    for _ in range(5):
        row = await wizard_repo.get(session, wizard_id)
        if row is None or not row.live:
            return False
        try:
            new = step(state_of(row))
        except WizardTransitionError:
            return False
        if await wizard_repo.save(session, wizard_id, new, **values):
            return True
    return False


# --- start ---------------------------------------------------------------------------------------------
async def start_after_reveal(rt: Runtime, request_id: str) -> None:
    """The pass was just shown: post the wizard (or, after another reveal, refresh it with the new expiry)."""
    request = await tap_common.load(rt, request_id)
    if request is None or request.state != RequestState.ISSUED:
        return
    existing, _ = await _pair(rt, request_id=request_id)
    if existing is not None:
        await _revealed_again(rt, existing, request)
        return
    await _close_older(rt, request.target_slack_id, request_id)
    row = await _create(rt, request)
    if row is None:
        return
    preflight = Preflight.from_json(row.preflight)
    if preflight.blocker and library(rt).get(row.guide_id).method is GuideMethod.FIDO2:
        await tap_common.alert(
            rt,
            f"<@{request.target_slack_id}> can't register a security key themselves: {preflight.blocker}. "
            "They have a pass and can pick another method; please check the FIDO2 policy.",
            thread_of=request,
        )
    await show(rt, row.id)


async def _create(rt: Runtime, request: TapRequest) -> Wizard | None:
    now = rt.clock.now()
    preflight = await _preflight(rt, request.target_entra_id)
    baseline = await _baseline(rt, request.target_entra_id)
    guide = library(rt).default()
    state = wizard.start(guide, now)
    # Spread first looks over a full interval: many reveals at once must not poll in one burst.
    spread = max(MAX_INTERVAL, await _spacing(rt))
    first_poll = now + timedelta(seconds=FIRST_POLL_AFTER + random.uniform(0, spread))
    row = Wizard(
        id=_new_id(),
        request_id=request.id,
        user_slack_id=request.target_slack_id,
        user_entra_id=request.target_entra_id,
        **wizard_repo.state_columns(state),
        tz=await _tz(rt, request.target_slack_id),
        preflight=preflight.to_json(),
        revealed_at=now,
        pass_expires_at=request.tap_expires_at,
        baseline_method_ids=baseline,
        oath_failures=0,
    )
    async with rt.db.session() as session:
        try:
            async with session.begin_nested():
                await wizard_repo.add(session, row)
        except IntegrityError:
            if await wizard_repo.for_request(session, request.id) is None:
                raise
            return None  # another reveal of the same request created it a moment ago
        payload = {"request_id": request.id}
        key = f"wizard-watch:{request.id}"
        await rt.deadlines.schedule(
            WATCH_DEADLINE, first_poll, payload, key=key, replace=True, session=session
        )
        await _schedule_nudge(rt, session, request, now)
        await rt.audit.record(
            "registration.started",
            actor="system",
            target=f"entra:{request.target_entra_id}",
            details={
                "request_id": request.id,
                "guide": guide.id,
                "blocked": preflight.blocker,
                "preflight_checked": preflight.checked,
            },
            session=session,
        )
    return row


def _new_id() -> str:
    return str(uuid.uuid4())


async def _schedule_nudge(rt: Runtime, session: AsyncSession, request: TapRequest, now: datetime) -> None:
    expires = request.tap_expires_at
    if expires is None:
        return
    due = max(expires - NUDGE_BEFORE, now + (expires - now) / 2)
    if due > now:
        await rt.deadlines.schedule(
            NUDGE_DEADLINE,
            due,
            {"request_id": request.id},
            key=f"wizard-nudge:{request.id}",
            replace=True,
            session=session,
        )


async def _revealed_again(rt: Runtime, row: Wizard, request: TapRequest) -> None:
    """A new pass replaced the old one: same wizard, new expiry, a nudge for the new pass."""
    async with rt.db.session() as session:
        await wizard_repo.set_fields(session, row.id, pass_expires_at=request.tap_expires_at, nudged_at=None)
        await _schedule_nudge(rt, session, request, rt.clock.now())
    await show(rt, row.id)


async def _close_older(rt: Runtime, user_id: str, request_id: str) -> None:
    async with rt.db.read() as session:
        older = [r for r in await wizard_repo.live_for_user(session, user_id) if r.request_id != request_id]
    now = rt.clock.now()
    for row in older:
        async with rt.db.session() as session:
            await _save_latest(session, row.id, lambda s: wizard.cancel(s, now), ended_reason="replaced")
        await show(rt, row.id)


async def _preflight(rt: Runtime, entra_id: str) -> Preflight:
    """What the FIDO2 policy means for this person; unchecked (and said so) when Entra doesn't answer."""
    org = library(rt).org
    base = Preflight(key_models=org.key_models, pin_min_length=org.pin_min_length)
    try:
        policy = await rt.directory.fido2_policy()
        groups = [*policy.include_group_ids, *policy.exclude_group_ids]
        member = await rt.directory.member_of_groups(entra_id, groups) if groups else set()
    except DirectoryError as exc:
        log.warning("registration.preflight_unavailable", error=type(exc).__name__)
        return base
    included = policy.include_all_users or bool(member & set(policy.include_group_ids))
    return Preflight(
        checked=True,
        fido2_enabled=policy.enabled,
        self_service=policy.self_service_allowed,
        in_scope=included and not member & set(policy.exclude_group_ids),
        restriction=policy.enforcement_type if policy.restrictions_enforced else None,
        restricted_models=len(policy.aaguids),
        attestation=policy.attestation_enforced,
        key_models=org.key_models,
        pin_min_length=org.pin_min_length,
    )


async def _baseline(rt: Runtime, entra_id: str) -> list[str] | None:
    """The methods already there at the reveal (None: unknown, then only creation times count)."""
    try:
        return [m.id for m in await rt.directory.list_methods(entra_id)]
    except DirectoryError as exc:
        log.warning("registration.baseline_unavailable", error=type(exc).__name__)
        return None


async def _tz(rt: Runtime, user_id: str) -> str | None:
    try:
        return (await rt.slack.user(user_id)).tz
    except SlackError:
        return None


# --- showing the one message ---------------------------------------------------------------------------
async def show(rt: Runtime, wizard_id: str) -> None:
    """Render the wizard from the database into its DM message (posting it the first time)."""
    for _ in range(3):
        row, request = await _pair(rt, wizard_id=wizard_id)
        if row is None:
            return
        text, blocks = wizard_views.wizard_message(await _screen(rt, row, request))
        if not await _put(rt, row, text, blocks):
            return
        again = await load(rt, wizard_id)
        if again is None or _fingerprint(again) == _fingerprint(row):
            return  # nobody changed it while we rendered; otherwise render the newer state


def _fingerprint(row: Wizard) -> tuple[object, ...]:
    return (row.version, row.helper_slack_id, row.pass_expires_at, row.seen_request_state, row.ended_reason)


async def _put(rt: Runtime, row: Wizard, text: str, blocks: list[b.Block]) -> bool:
    try:
        if row.channel and row.message_ts:
            try:
                await rt.slack.update(PostedMessage(row.channel, row.message_ts), text, blocks)
                return True
            except SlackError as exc:
                if exc.code != "message_not_found":
                    raise
        posted = await rt.slack.post_dm(row.user_slack_id, text, blocks)
    except SlackError as exc:
        log.warning("registration.message_failed", wizard=row.id, error=exc.code)
        return False
    async with rt.db.session() as session:
        await wizard_repo.set_fields(session, row.id, channel=posted.channel, message_ts=posted.ts)
    return True


async def _screen(rt: Runtime, row: Wizard, request: TapRequest | None) -> Screen:
    lib = library(rt)
    until = wizard_views.local_time(row.pass_expires_at, row.tz)
    context = {"tap_expiry": until} if until else {}
    state, guide = _guide_for(lib, state_of(row), context)
    choosing = state.phase is WizardPhase.CHOOSING
    alternatives = tuple(lib.render(g.id, context) for g in lib.all() if g.id != guide.id) if choosing else ()
    found = None
    if state.phase is WizardPhase.COMPLETED:
        found = FoundMethod(guide.method, row.method_model, row.method_name)
    return Screen(
        wizard_id=row.id,
        state=state,
        guide=guide,
        alternatives=alternatives,
        preflight=Preflight.from_json(row.preflight),
        pass_until=until,
        ended=row.ended_reason or _ended_by(request),
        helper=await _name(rt, row.helper_slack_id)
        if row.helper_slack_id and state.phase.value in _LIVE
        else None,
        found=found,
        sign_in_url=lib.org.sign_in_url,
        support=rt.settings.support_contact,
    )


_LIVE = {WizardPhase.CHOOSING.value, WizardPhase.IN_STEP.value, WizardPhase.WAITING_FOR_ENTRA.value}


def _guide_for(lib: GuideLibrary, state: WizardState, context: dict[str, str]) -> tuple[WizardState, Guide]:
    """The rendered guide; if an edit of the guides removed it since, show the default one instead."""
    try:
        return state, lib.render(state.guide_id, context)
    except UnknownGuideError:
        guide = lib.render(lib.default().id, context)
        count = len(guide.steps)
        shown = WizardState(
            guide.id,
            state.phase,
            min(state.step_index, count - 1),
            count,
            state.started_at,
            state.step_started_at,
            state.stuck,
            state.version,
        )
        return shown, guide


def _ended_by(request: TapRequest | None) -> str | None:
    if request is None:
        return None
    if request.state == RequestState.PASS_EXPIRED:
        return "expired"
    return ENDED_BY_REQUEST.get(RequestState(request.state))


async def _name(rt: Runtime, user_id: str | None) -> str | None:
    if not user_id:
        return None
    try:
        return (await rt.slack.user(user_id)).display
    except SlackError:
        return "Someone"


# --- clicks ----------------------------------------------------------------------------------------------
Step = Callable[[WizardState, Wizard, datetime], WizardState]


async def move(
    rt: Runtime, user_id: str, value: str, step: Step, *, action: WizardAction, **values: object
) -> Wizard | None:
    """Check a click on the wizard and apply one transition with compare-and-set.

    Returns the row after the move, or None when nothing moved (someone else's wizard, a stale button,
    a move that makes no sense now); the message is brought up to date either way.
    """
    try:
        wizard_id, version, _ = wizard_views.parse_value(value)
    except ValueError:
        return None
    row = await load(rt, wizard_id)
    if row is None or row.user_slack_id != user_id:
        await rt.audit.record(
            "registration.click.refused",
            actor=f"slack:{user_id}",
            target=f"wizard:{wizard_id}",
            outcome="refused",
            details={"action": action.value, "reason": "not_the_owner"},
        )
        return None
    if row.version != version or not row.live:
        await show(rt, wizard_id)
        return None
    now = rt.clock.now()
    try:
        new = step(state_of(row), row, now)
    except (WizardTransitionError, UnknownGuideError):
        await show(rt, wizard_id)
        return None
    async with rt.db.session() as session:
        won = await wizard_repo.save(session, wizard_id, new, **values)
    if won:
        await _poll_soon(rt, row)
    await show(rt, wizard_id)
    return await load(rt, wizard_id) if won else None


async def press(rt: Runtime, user_id: str, action: WizardAction, value: str) -> None:
    """Done / Back / a method picked at the start."""
    if action is WizardAction.DONE:
        await move(rt, user_id, value, lambda s, _r, now: wizard.done(s, now), action=action)
    elif action is WizardAction.BACK:
        await move(rt, user_id, value, lambda s, _r, now: wizard.back(s, now), action=action)
    elif action is WizardAction.CHOOSE:
        moved = await move(rt, user_id, value, _chooser(rt, value), action=action)
        if moved is not None:
            await rt.audit.record(
                "registration.method_chosen",
                actor=f"slack:{user_id}",
                target=f"entra:{moved.user_entra_id}",
                details={"request_id": moved.request_id, "guide": moved.guide_id},
            )


def _chooser(rt: Runtime, value: str) -> Step:
    try:
        guide_id = wizard_views.parse_value(value)[2]
    except ValueError:
        guide_id = ""

    def step(state: WizardState, row: Wizard, now: datetime) -> WizardState:
        guide = library(rt).get(guide_id)
        if guide.method is GuideMethod.FIDO2 and Preflight.from_json(row.preflight).blocker:
            raise WizardTransitionError(WizardAction.CHOOSE, state, "FIDO2 is blocked for this person")
        return wizard.choose(state, guide, now)

    return step


async def resume(rt: Runtime, user_id: str) -> None:
    """Bring the person's setup back to the bottom of their DM (from App Home or the reminder)."""
    async with rt.db.read() as session:
        rows = await wizard_repo.live_for_user(session, user_id)
    if not rows:
        await tap_common.tell(
            rt, user_id, "You have no setup in progress. Press *Set up my security key* to start."
        )
        return
    row = rows[0]
    async with rt.db.session() as session:
        await wizard_repo.set_fields(session, row.id, channel=None, message_ts=None)
    await show(rt, row.id)
    if row.channel and row.message_ts:
        try:
            await rt.slack.delete(PostedMessage(row.channel, row.message_ts))
        except SlackError as exc:
            log.info("registration.old_message_kept", error=exc.code)


# --- pacing -------------------------------------------------------------------------------------------
async def _spacing(rt: Runtime) -> float:
    """The least time between two looks for one person, so that all of them fit the budget."""
    async with rt.db.read() as session:
        live = await wizard_repo.count_live(session)
    return max(ACTIVE_DELAY, live * 60.0 / POLL_BUDGET_PER_MINUTE)


def next_interval(idle_seconds: float, floor: float) -> float:
    """Seconds to the next look: backs off while the person is idle, never below the budget's floor."""
    backoff = min(MAX_INTERVAL, max(MIN_INTERVAL, idle_seconds * IDLE_SHARE))
    return max(backoff, floor) * random.uniform(1.0, 1.0 + JITTER)


async def _poll_soon(rt: Runtime, row: Wizard) -> None:
    """A click: look at Entra shortly; only ever brings the next look forward, never closer than a floor."""
    due = rt.clock.now() + timedelta(seconds=await _spacing(rt))
    key = f"wizard-watch:{row.request_id}"
    async with rt.db.session() as session:
        scheduled = await wizard_repo.watch_due(session, key)
        if scheduled is not None and scheduled <= due:
            return
        await rt.deadlines.schedule(
            WATCH_DEADLINE, due, {"request_id": row.request_id}, key=key, replace=True, session=session
        )


# --- completion ---------------------------------------------------------------------------------------
def new_method(methods: list[AuthMethod], row: Wizard, method: GuideMethod) -> AuthMethod | None:
    """The newest method of the guide's kind that was not there at the reveal."""
    kind = KIND_OF[method]
    baseline = set(row.baseline_method_ids) if row.baseline_method_ids is not None else None
    since = row.revealed_at - CREATED_SKEW

    def is_new(m: AuthMethod) -> bool:
        if m.kind is not kind or (baseline is not None and m.id in baseline):
            return False
        return m.created >= since if m.created is not None else baseline is not None

    fresh = [m for m in methods if is_new(m)]
    return max(fresh, key=lambda m: m.created or row.revealed_at) if fresh else None


def pending_method(row: Wizard) -> AuthMethod | None:
    """A method keydesk itself registered (a hardware token) whose completion could not finish yet."""
    if not row.method_id:
        return None
    kind = (
        KIND_OF[GuideMethod.HARDWARE_OATH] if row.method_id.startswith("hardware_oath:") else MethodKind.OTHER
    )
    return AuthMethod(row.method_id, kind, row.method_name, row.revealed_at, model=row.method_model)


async def remember_pending(rt: Runtime, row: Wizard, method: AuthMethod) -> None:
    """Graph accepted a token but finishing failed (deleting the pass): the watch finishes it."""
    async with rt.db.session() as session:
        await wizard_repo.set_fields(
            session,
            row.id,
            method_id=method.id[:256],
            method_model=method.model,
            method_name=method.display_name,
        )
    await _poll_soon(rt, row)


async def complete(rt: Runtime, wizard_id: str, method: AuthMethod) -> bool:
    """Entra shows the new method: delete the pass, close the request, tell everyone. True if this call won."""
    row, request = await _pair(rt, wizard_id=wizard_id)
    if row is None or not row.live or request is None or request.state == RequestState.ISSUING:
        return False  # issuing: a new pass is being made right now; the next look finishes the job
    if request.tap_id and request.state == RequestState.ISSUED:
        # At once, before anything else. If Graph fails, nothing is recorded and the next look retries.
        await rt.directory.delete_tap(request.target_entra_id, request.tap_id)
    now = rt.clock.now()
    guide_method = library(rt).get(row.guide_id).method
    async with rt.db.session() as session:
        won = await _save_latest(
            session,
            wizard_id,
            lambda s: wizard.complete(s, now),
            completed_at=now,
            method_id=method.id[:256],
            method_model=(method.model or "")[:200] or None,
            method_name=(method.display_name or "")[:200] or None,
        )
        if not won:
            return False
        closed = await tap_repo.transition(
            session, request.id, expected=RequestState.ISSUED, to=RequestState.COMPLETED, closed_at=now
        )
        for key in (f"tap-pass:{request.id}", f"wizard-nudge:{request.id}"):
            await rt.deadlines.cancel(key, session=session)
        await rt.audit.record(
            "registration.completed",
            actor="system",
            target=f"entra:{request.target_entra_id}",
            details={
                "request_id": request.id,
                "wizard_id": wizard_id,
                "method": guide_method.value,
                "method_id": method.id,
                "model": method.model,
                "name": method.display_name,
                "tap_id": request.tap_id,
                "request_closed": closed,
                "seconds_since_reveal": int((now - row.revealed_at).total_seconds()),
            },
            session=session,
        )
    await _announce(rt, row, request, FoundMethod(guide_method, method.model, method.display_name), now)
    return True


async def _announce(rt: Runtime, row: Wizard, request: TapRequest, found: FoundMethod, now: datetime) -> None:
    await show(rt, row.id)
    await tap_common.refresh(rt, request.id)
    if request.card_channel and request.card_ts:
        note = wizard_views.completion_note(
            row.user_slack_id, found, _minutes(now - row.revealed_at), _minutes(now - request.created_at)
        )
        try:
            await rt.slack.post(request.card_channel, note, [b.section(note)], thread_ts=request.card_ts)
        except SlackError as exc:
            log.warning("registration.card_note_failed", error=exc.code)
    from bot.services import conversation  # conversation shows home_blocks: import late, no cycle

    try:
        await conversation.refresh_home(rt, row.user_slack_id)
    except (SlackError, DirectoryError) as exc:
        log.info("registration.home_not_refreshed", error=type(exc).__name__)


def _minutes(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))


# --- the request moved on without us (pass expired, revoked, cancelled) -------------------------------
async def on_request_changed(rt: Runtime, request_id: str) -> None:
    """Call after the request left ISSUED elsewhere (delivery.expire_pass, a revocation)."""
    row, request = await _pair(rt, request_id=request_id)
    if row is not None and request is not None and row.live:
        await _follow_request(rt, row, request)


async def _follow_request(rt: Runtime, row: Wizard, request: TapRequest) -> bool:
    """Bring the wizard in line with its request; True when the wizard ended because of it."""
    state = RequestState(request.state)
    ended = ENDED_BY_REQUEST.get(state)
    if ended:
        now = rt.clock.now()
        async with rt.db.session() as session:
            await _save_latest(session, row.id, lambda s: wizard.cancel(s, now), ended_reason=ended)
        await show(rt, row.id)
        return True
    if state is RequestState.PASS_EXPIRED and row.seen_request_state != state.value:
        async with rt.db.session() as session:
            await wizard_repo.set_fields(session, row.id, seen_request_state=state.value)
        await show(rt, row.id)  # "your pass ran out", while the watch keeps looking through the grace period
    return False


async def _expire(rt: Runtime, row: Wizard) -> None:
    now = rt.clock.now()
    async with rt.db.session() as session:
        won = await _save_latest(session, row.id, lambda s: wizard.expire(s, now), ended_reason="expired")
        if won:
            await rt.audit.record(
                "registration.expired",
                actor="system",
                target=f"entra:{row.user_entra_id}",
                details={"request_id": row.request_id},
                session=session,
            )
    await show(rt, row.id)


# --- the deadlines ------------------------------------------------------------------------------------
class Watcher:
    """The completion watch and the nudge. Holds this replica's view of throttling and of the load."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.quiet_until: datetime | None = None
        self._live: tuple[int, datetime] | None = None
        self._recent: deque[datetime] = deque()  # this replica's looks in the last minute

    def _wait_for_room(self, now: datetime) -> float:
        """Seconds until this replica may look again without passing the budget (0: now)."""
        cutoff = now - timedelta(minutes=1)
        while self._recent and self._recent[0] <= cutoff:
            self._recent.popleft()
        if len(self._recent) < POLL_BUDGET_PER_MINUTE:
            return 0.0
        return (self._recent[0] - cutoff).total_seconds()

    async def floor(self) -> float:
        now = self.rt.clock.now()
        if self._live is None or now - self._live[1] > LIVE_COUNT_TTL:
            async with self.rt.db.read() as session:
                self._live = (await wizard_repo.count_live(session), now)
        return self._live[0] * 60.0 / POLL_BUDGET_PER_MINUTE

    async def poll(self, deadline: Deadline) -> None:
        rt = self.rt
        row, request = await _pair(rt, request_id=str(deadline.payload["request_id"]))
        if row is None or request is None or not row.live:
            return
        if await _follow_request(rt, row, request):
            return
        now = rt.clock.now()
        floor = await self.floor()
        if self.quiet_until is not None and now < self.quiet_until:
            wait = (self.quiet_until - now).total_seconds() + random.uniform(0, max(floor, 1.0))
            raise RetryLater(wait, "graph throttled (held off)")
        room = self._wait_for_room(now)
        if room:
            raise RetryLater(room + random.uniform(0, max(floor, 1.0)), "polling budget reached")
        self._recent.append(now)
        methods = await self._list(row, floor)
        found = pending_method(row) or new_method(methods, row, library(rt).get(row.guide_id).method)
        if found is not None:
            await self._complete(row, found)
            return
        give_up = (row.pass_expires_at or request.tap_expires_at or now) + GRACE
        if now >= give_up and request.state != RequestState.ISSUED:
            await _expire(rt, row)
            return
        self._again(row, now, floor, give_up)

    async def _complete(self, row: Wizard, found: AuthMethod) -> None:
        try:
            won = await complete(self.rt, row.id, found)
        except Throttled as exc:
            raise RetryLater(exc.retry_after, "graph throttled while deleting the pass") from None
        except DirectoryError as exc:
            raise RetryLater(UNAVAILABLE_RETRY, f"pass not deleted: {type(exc).__name__}") from None
        if not won:
            raise RetryLater(ACTIVE_DELAY, "not finished yet")  # e.g. a new pass was being issued

    async def _list(self, row: Wizard, floor: float) -> list[AuthMethod]:
        try:
            return await self.rt.directory.list_methods(row.user_entra_id)
        except Throttled as exc:
            until = self.rt.clock.now() + timedelta(seconds=exc.retry_after)
            self.quiet_until = max(self.quiet_until or until, until)
            log.info("registration.watch_throttled", retry_after=exc.retry_after)
            raise RetryLater(exc.retry_after, "graph throttled") from None
        except DirectoryError as exc:
            raise RetryLater(UNAVAILABLE_RETRY + random.uniform(0, floor), type(exc).__name__) from None

    @staticmethod
    def _again(row: Wizard, now: datetime, floor: float, give_up: datetime) -> None:
        due = now + timedelta(seconds=next_interval((now - row.step_started_at).total_seconds(), floor))
        if now < give_up < due:
            due = give_up  # one last look right at the end
        raise RetryLater(max((due - now).total_seconds(), ACTIVE_DELAY), "nothing registered yet")

    async def nudge(self, deadline: Deadline) -> None:
        """Once, shortly before the pass runs out, if Entra shows nothing yet."""
        rt = self.rt
        row, request = await _pair(rt, request_id=str(deadline.payload["request_id"]))
        if row is None or request is None or not row.live or request.state != RequestState.ISSUED:
            return
        now = rt.clock.now()
        expires = row.pass_expires_at or request.tap_expires_at
        if expires is None or expires <= now or row.nudged_at is not None:
            return
        async with rt.db.session() as session:
            if not await wizard_repo.claim_once(session, row.id, "nudged_at", now):
                return
        state = state_of(row)
        step = _step_title(rt, row)
        text, blocks = wizard_views.nudge_message(
            row.id,
            wizard.progress_label(state),
            step,
            wizard_views.local_time(expires, row.tz),
            math.ceil((expires - now).total_seconds() / 60),
        )
        try:
            await rt.slack.post_dm(row.user_slack_id, text, blocks)
        except SlackError as exc:
            log.warning("registration.nudge_failed", error=exc.code)
            return
        await rt.audit.record(
            "registration.nudged",
            actor="system",
            target=f"slack:{row.user_slack_id}",
            details={"request_id": row.request_id, "step": state.step_index + 1},
        )


def _step_title(rt: Runtime, row: Wizard) -> str | None:
    state = state_of(row)
    if state.phase is not WizardPhase.IN_STEP:
        return None
    try:
        guide = library(rt).get(row.guide_id)
    except UnknownGuideError:
        return None
    step = wizard.current_step(state, guide)
    return step.title if step else None


def register_registration_deadlines(rt: Runtime) -> Watcher:
    watcher = Watcher(rt)
    rt.deadlines.register(WATCH_DEADLINE, watcher.poll)
    rt.deadlines.register(NUDGE_DEADLINE, watcher.nudge)
    return watcher


# --- App Home -----------------------------------------------------------------------------------------
async def home_blocks(rt: Runtime, user_id: str) -> list[b.Block]:
    """Blocks for App Home: the open request and its pass, the setup's progress, and Resume."""
    async with rt.db.read() as session:
        request = await tap_repo.open_for_target(session, user_id)
        row = await wizard_repo.latest_for_user(session, user_id)
    facts = HomeFacts()
    tz = row.tz if row else None
    if request is not None:
        state = RequestState(request.state)
        until = wizard_views.local_time(request.tap_expires_at, tz) if state is RequestState.ISSUED else None
        facts = HomeFacts(request_label=tap_views.STATE_LABEL[state], pass_until=until)
    if row is not None and row.live:
        facts = HomeFacts(
            request_label=facts.request_label,
            pass_until=facts.pass_until,
            wizard_id=row.id,
            progress=wizard.progress_label(state_of(row)),
            step_title=_step_title(rt, row),
            helper=await _name(rt, row.helper_slack_id),
        )
    elif row is not None and row.phase == WizardPhase.COMPLETED.value and request is None:
        name = f" named _{escape_mrkdwn(row.method_name)}_" if row.method_name else ""
        what = escape_mrkdwn(row.method_model or "your key") + name
        when = f" on {row.completed_at:%Y-%m-%d}" if row.completed_at else ""
        facts = HomeFacts(finished=f"*{what}*{when}")
    return wizard_views.home_blocks(facts)
