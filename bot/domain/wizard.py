"""The DM setup wizard as an immutable value and pure transitions (the service stores and renders it).

One Slack message walks the user through a guide: "Step 3 of 9" with Done / Back / I'm stuck.
At the start the user may pick another method; after the last step the wizard waits until Entra
shows the new method. Every transition returns a new state with `version + 1`, so the service can
save it with compare-and-set; a transition that makes no sense (a stale button) raises
`WizardTransitionError` and leaves the state as it was.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.guides import Guide, GuideStep


class WizardPhase(StrEnum):
    CHOOSING = "choosing"
    IN_STEP = "in_step"
    WAITING_FOR_ENTRA = "waiting_for_entra"  # all steps done; waiting to see the registration
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset({WizardPhase.COMPLETED, WizardPhase.EXPIRED, WizardPhase.CANCELLED})
_LIVE_PHASES = frozenset(WizardPhase) - TERMINAL_PHASES


class WizardAction(StrEnum):
    CHOOSE = "choose"
    DONE = "done"
    BACK = "back"
    STUCK = "stuck"
    COMPLETE = "complete"
    EXPIRE = "expire"
    CANCEL = "cancel"


@dataclass(frozen=True)
class WizardState:
    guide_id: str
    phase: WizardPhase
    step_index: int
    step_count: int
    started_at: datetime
    step_started_at: datetime  # when the current step (or the wait for Entra) began
    stuck: bool = False  # the user pressed "I'm stuck" on the current step
    version: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "phase", WizardPhase(self.phase))
        if self.step_count < 1 or not 0 <= self.step_index < self.step_count:
            raise ValueError(f"step_index {self.step_index} is outside a guide of {self.step_count} steps")
        if self.version < 0:
            raise ValueError("version must not be negative")

    @property
    def is_terminal(self) -> bool:
        return self.phase.is_terminal


class WizardTransitionError(Exception):
    """The action does not apply to the state (usually a button from an older message)."""

    def __init__(self, action: WizardAction, state: WizardState, reason: str) -> None:
        self.action, self.phase, self.reason = action, state.phase, reason
        where = f"phase {state.phase}, {progress_label(state)}"
        super().__init__(f"'{action}' is not possible: {reason} ({where})")


def start(guide: Guide, now: datetime) -> WizardState:
    """A new wizard offering `guide` (normally the default) and the choice of another method."""
    return WizardState(guide.id, WizardPhase.CHOOSING, 0, _step_count(guide), now, now)


def choose(state: WizardState, guide: Guide, now: datetime) -> WizardState:
    """The user picked a method (possibly the offered one): its first step begins."""
    _require(state, WizardAction.CHOOSE, phases={WizardPhase.CHOOSING})
    count = _step_count(guide)
    return _advance(state, now, guide_id=guide.id, step_count=count, step_index=0, phase=WizardPhase.IN_STEP)


def done(state: WizardState, now: datetime) -> WizardState:
    """Done: start with the offered guide, go to the next step, or after the last one wait for Entra."""
    _require(state, WizardAction.DONE, phases={WizardPhase.CHOOSING, WizardPhase.IN_STEP})
    if state.phase is WizardPhase.CHOOSING:
        return _advance(state, now, phase=WizardPhase.IN_STEP, step_index=0)
    if state.step_index + 1 < state.step_count:
        return _advance(state, now, step_index=state.step_index + 1)
    return _advance(state, now, phase=WizardPhase.WAITING_FOR_ENTRA)


def back(state: WizardState, now: datetime) -> WizardState:
    """Back one step; from the wait for Entra, back to the last step."""
    _require(state, WizardAction.BACK, phases={WizardPhase.IN_STEP, WizardPhase.WAITING_FOR_ENTRA})
    if state.phase is WizardPhase.WAITING_FOR_ENTRA:
        return _advance(state, now, phase=WizardPhase.IN_STEP)
    if state.step_index == 0:
        raise WizardTransitionError(WizardAction.BACK, state, "this is the first step")
    return _advance(state, now, step_index=state.step_index - 1)


def stuck(state: WizardState, now: datetime) -> WizardState:
    """The user asked for help on the current step (once per step; moving on clears it)."""
    _require(state, WizardAction.STUCK, phases=_LIVE_PHASES)
    if state.stuck:
        raise WizardTransitionError(WizardAction.STUCK, state, "help was already requested on this step")
    return replace(state, stuck=True, version=state.version + 1)


def complete(state: WizardState, now: datetime) -> WizardState:
    """Entra shows the new method. May come before the user clicked through the last steps."""
    return _finish(state, WizardAction.COMPLETE, WizardPhase.COMPLETED)


def expire(state: WizardState, now: datetime) -> WizardState:
    return _finish(state, WizardAction.EXPIRE, WizardPhase.EXPIRED)


def cancel(state: WizardState, now: datetime) -> WizardState:
    return _finish(state, WizardAction.CANCEL, WizardPhase.CANCELLED)


def allowed_actions(state: WizardState) -> frozenset[WizardAction]:
    """The actions the state accepts now (e.g. to leave out the Back button on the first step)."""
    if state.is_terminal:
        return frozenset()
    probes = {
        WizardAction.DONE: done,
        WizardAction.BACK: back,
        WizardAction.STUCK: stuck,
        WizardAction.COMPLETE: complete,
        WizardAction.EXPIRE: expire,
        WizardAction.CANCEL: cancel,
    }
    allowed = {WizardAction.CHOOSE} if state.phase is WizardPhase.CHOOSING else set()
    for action, transition in probes.items():
        try:
            transition(state, state.step_started_at)
        except WizardTransitionError:
            continue
        allowed.add(action)
    return frozenset(allowed)


def progress_label(state: WizardState) -> str:
    """A short line for the top of the message, e.g. "Step 3 of 9"."""
    match state.phase:
        case WizardPhase.CHOOSING:
            return "Getting started"
        case WizardPhase.IN_STEP:
            return f"Step {state.step_index + 1} of {state.step_count}"
        case WizardPhase.WAITING_FOR_ENTRA:
            return f"All {state.step_count} steps done"
        case WizardPhase.COMPLETED:
            return "Finished"
        case WizardPhase.EXPIRED:
            return "Timed out"
        case WizardPhase.CANCELLED:
            return "Cancelled"


def current_step(state: WizardState, guide: Guide) -> GuideStep | None:
    """The step to show, or None while choosing and once finished."""
    if guide.id != state.guide_id:
        raise ValueError(f"the wizard follows guide '{state.guide_id}', not '{guide.id}'")
    if state.phase not in (WizardPhase.IN_STEP, WizardPhase.WAITING_FOR_ENTRA):
        return None
    # The guide may have been edited since the wizard started; stay inside it.
    return guide.steps[min(state.step_index, len(guide.steps) - 1)]


def _step_count(guide: Guide) -> int:
    if not guide.steps:
        raise ValueError(f"guide '{guide.id}' has no steps")
    return len(guide.steps)


def _require(state: WizardState, action: WizardAction, *, phases: Collection[WizardPhase]) -> None:
    if state.phase in phases:
        return
    reasons = {
        WizardPhase.CHOOSING: "the setup has not started yet",
        WizardPhase.IN_STEP: "a method was already chosen",
        WizardPhase.WAITING_FOR_ENTRA: "all steps are already done",
    }
    reason = "the setup is over" if state.is_terminal else reasons[state.phase]
    raise WizardTransitionError(action, state, reason)


def _advance(state: WizardState, now: datetime, **changes: Any) -> WizardState:
    """Move to a (possibly different) step: the step clock restarts and the stuck flag clears."""
    return replace(state, step_started_at=now, stuck=False, version=state.version + 1, **changes)


def _finish(state: WizardState, action: WizardAction, phase: WizardPhase) -> WizardState:
    _require(state, action, phases=_LIVE_PHASES)
    return replace(state, phase=phase, version=state.version + 1)
