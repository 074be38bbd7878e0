"""The DM wizard: pure transitions, stale buttons refused, invariants under random clicking."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain import wizard
from bot.domain.guides import Guide, GuideLibrary, GuideMethod, GuideStep
from bot.domain.wizard import (
    WizardAction,
    WizardPhase,
    WizardState,
    WizardTransitionError,
    allowed_actions,
    current_step,
    progress_label,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LIBRARY = GuideLibrary.load()
FIDO2 = LIBRARY.get("fido2")
AUTHENTICATOR = LIBRARY.get("authenticator")


def make_guide(guide_id: str, steps: int) -> Guide:
    return Guide(
        id=guide_id,
        method=GuideMethod.FIDO2,
        title=guide_id,
        summary=guide_id,
        default=False,
        estimated_minutes=1,
        steps=tuple(GuideStep(f"s{i}", f"Step {i}", "Do it.") for i in range(steps)),
    )


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def walk(state: WizardState, dones: int) -> WizardState:
    for i in range(dones):
        state = wizard.done(state, at(i + 1))
    return state


def test_start_offers_the_guide_and_the_choice() -> None:
    state = wizard.start(FIDO2, T0)
    assert state == WizardState("fido2", WizardPhase.CHOOSING, 0, len(FIDO2.steps), T0, T0, False, 0)
    assert progress_label(state) == "Getting started"
    assert allowed_actions(state) == {
        WizardAction.CHOOSE,
        WizardAction.DONE,
        WizardAction.STUCK,
        WizardAction.COMPLETE,
        WizardAction.EXPIRE,
        WizardAction.CANCEL,
    }
    assert current_step(state, FIDO2) is None


def test_done_at_the_start_begins_the_offered_guide() -> None:
    state = wizard.done(wizard.start(FIDO2, T0), at(1))
    assert (state.phase, state.step_index, state.version, state.step_started_at) == (
        WizardPhase.IN_STEP,
        0,
        1,
        at(1),
    )
    assert progress_label(state) == "Step 1 of 11"
    assert current_step(state, FIDO2) == FIDO2.steps[0]


def test_choosing_another_method_switches_guide() -> None:
    state = wizard.choose(wizard.start(FIDO2, T0), AUTHENTICATOR, at(1))
    assert (state.guide_id, state.phase, state.step_index, state.step_count) == (
        "authenticator",
        WizardPhase.IN_STEP,
        0,
        len(AUTHENTICATOR.steps),
    )
    assert progress_label(state) == "Step 1 of 9"
    assert state.started_at == T0 and state.step_started_at == at(1)
    with pytest.raises(ValueError, match="follows guide 'authenticator', not 'fido2'"):
        current_step(state, FIDO2)


def test_method_can_only_be_chosen_at_the_start() -> None:
    state = walk(wizard.start(FIDO2, T0), 3)
    with pytest.raises(WizardTransitionError, match="'choose' is not possible: a method was already chosen"):
        wizard.choose(state, AUTHENTICATOR, at(9))


def test_done_walks_every_step_then_waits_for_entra() -> None:
    state = walk(wizard.start(FIDO2, T0), 1)
    labels = []
    for _ in range(len(FIDO2.steps)):
        labels.append(progress_label(state))
        state = wizard.done(state, at(state.version + 1))
    assert labels == [f"Step {n} of 11" for n in range(1, 12)]
    assert state.phase is WizardPhase.WAITING_FOR_ENTRA
    assert state.step_index == 10 and progress_label(state) == "All 11 steps done"
    assert current_step(state, FIDO2) == FIDO2.steps[-1]
    with pytest.raises(WizardTransitionError, match="all steps are already done"):
        wizard.done(state, at(99))
    assert allowed_actions(state) == {
        WizardAction.BACK,
        WizardAction.STUCK,
        WizardAction.COMPLETE,
        WizardAction.EXPIRE,
        WizardAction.CANCEL,
    }


def test_back_from_waiting_returns_to_the_last_step() -> None:
    waiting = walk(wizard.start(FIDO2, T0), 12)
    state = wizard.back(waiting, at(50))
    assert (state.phase, state.step_index, state.step_started_at) == (WizardPhase.IN_STEP, 10, at(50))


def test_back_goes_one_step_back_but_not_before_the_first() -> None:
    state = walk(wizard.start(FIDO2, T0), 3)  # step 3
    state = wizard.back(state, at(10))
    assert (state.step_index, progress_label(state), state.step_started_at) == (1, "Step 2 of 11", at(10))
    first = wizard.back(state, at(11))
    assert WizardAction.BACK not in allowed_actions(first)
    with pytest.raises(WizardTransitionError) as caught:
        wizard.back(first, at(12))
    assert str(caught.value) == "'back' is not possible: this is the first step (phase in_step, Step 1 of 11)"
    assert caught.value.action is WizardAction.BACK and caught.value.phase is WizardPhase.IN_STEP
    with pytest.raises(WizardTransitionError, match="the setup has not started yet"):
        wizard.back(wizard.start(FIDO2, T0), T0)


def test_stuck_is_flagged_once_per_step_and_cleared_by_moving_on() -> None:
    state = walk(wizard.start(FIDO2, T0), 2)
    flagged = wizard.stuck(state, at(30))
    assert flagged.stuck and flagged.step_index == state.step_index
    assert flagged.step_started_at == state.step_started_at  # asking for help doesn't restart the step clock
    assert WizardAction.STUCK not in allowed_actions(flagged)
    with pytest.raises(WizardTransitionError, match="help was already requested on this step"):
        wizard.stuck(flagged, at(31))
    assert not wizard.done(flagged, at(32)).stuck
    assert not wizard.back(flagged, at(32)).stuck


def test_registration_seen_mid_guide_completes_it() -> None:
    state = walk(wizard.start(FIDO2, T0), 8)
    done = wizard.complete(state, at(20))
    assert (done.phase, done.step_index, done.version) == (WizardPhase.COMPLETED, 7, state.version + 1)
    assert progress_label(done) == "Finished" and current_step(done, FIDO2) is None


@pytest.mark.parametrize(
    ("finish", "phase", "label"),
    [
        (wizard.complete, WizardPhase.COMPLETED, "Finished"),
        (wizard.expire, WizardPhase.EXPIRED, "Timed out"),
        (wizard.cancel, WizardPhase.CANCELLED, "Cancelled"),
    ],
)
def test_terminal_phases_accept_nothing(
    finish: Callable[[WizardState, datetime], WizardState], phase: WizardPhase, label: str
) -> None:
    state = finish(walk(wizard.start(FIDO2, T0), 2), at(5))
    assert state.phase is phase and state.is_terminal and progress_label(state) == label
    assert allowed_actions(state) == frozenset()
    for attempt in (*ACTIONS.values(), lambda s, now: wizard.choose(s, FIDO2, now)):
        with pytest.raises(WizardTransitionError, match="the setup is over"):
            attempt(state, at(6))


def test_state_from_the_database_is_checked() -> None:
    row = WizardState("fido2", "in_step", 2, 11, T0, T0, False, 7)  # type: ignore[arg-type]
    assert row.phase is WizardPhase.IN_STEP
    with pytest.raises(ValueError, match="step_index 11 is outside a guide of 11 steps"):
        WizardState("fido2", WizardPhase.IN_STEP, 11, 11, T0, T0)
    with pytest.raises(ValueError):
        WizardState("fido2", "dancing", 0, 1, T0, T0)  # type: ignore[arg-type]


def test_current_step_stays_inside_a_guide_that_shrank() -> None:
    state = walk(wizard.start(FIDO2, T0), 11)  # step 11 of 11
    shorter = make_guide("fido2", 4)
    assert current_step(state, shorter) == shorter.steps[-1]


def test_a_guide_without_steps_cannot_start() -> None:
    with pytest.raises(ValueError, match="has no steps"):
        wizard.start(make_guide("empty", 0), T0)


# --- properties under random clicking ------------------------------------------------------

ACTIONS: dict[WizardAction, Callable[[WizardState, datetime], WizardState]] = {
    WizardAction.DONE: wizard.done,
    WizardAction.BACK: wizard.back,
    WizardAction.STUCK: wizard.stuck,
    WizardAction.COMPLETE: wizard.complete,
    WizardAction.EXPIRE: wizard.expire,
    WizardAction.CANCEL: wizard.cancel,
}
GUIDES = [make_guide("one", 1), make_guide("two", 2), make_guide("max", 25), FIDO2, AUTHENTICATOR]
clicks = st.one_of(
    st.sampled_from([WizardAction.DONE, WizardAction.BACK, WizardAction.STUCK]),
    st.sampled_from(GUIDES),  # choose
)
# mostly no ending, so sequences get deep into a guide before it completes, expires or is cancelled
endings = st.sampled_from([None] * 12 + [WizardAction.COMPLETE, WizardAction.EXPIRE, WizardAction.CANCEL])


def apply(state: WizardState, click: WizardAction | Guide, now: datetime) -> WizardState:
    if isinstance(click, Guide):
        return wizard.choose(state, click, now)
    return ACTIONS[click](state, now)


@settings(max_examples=300, deadline=None)
@given(
    first=st.sampled_from(GUIDES),
    sequence=st.lists(st.tuples(clicks, endings), max_size=60),
)
def test_random_clicking_keeps_the_invariants(
    first: Guide, sequence: list[tuple[WizardAction | Guide, WizardAction | None]]
) -> None:
    state = wizard.start(first, T0)
    for minute, (click, ending) in enumerate(sequence, 1):
        for action in (click, ending):
            if action is None:
                continue
            allowed = allowed_actions(state)
            name = WizardAction.CHOOSE if isinstance(action, Guide) else action
            try:
                after = apply(state, action, at(minute))
            except WizardTransitionError:
                assert name not in allowed  # refused exactly when not offered
                continue
            assert name in allowed and not state.is_terminal
            assert 0 <= after.step_index < after.step_count
            assert after.version == state.version + 1
            assert after.started_at == T0
            guide = next(g for g in GUIDES if g.id == after.guide_id)
            assert after.step_count == len(guide.steps)
            if after.phase is WizardPhase.IN_STEP:
                assert progress_label(after) == f"Step {after.step_index + 1} of {after.step_count}"
            state = after


@settings(max_examples=200, deadline=None)
@given(
    guide=st.sampled_from(GUIDES),
    dones=st.integers(min_value=0, max_value=30),
    backs=st.integers(min_value=0, max_value=30),
)
def test_done_and_back_move_exactly_one_step(guide: Guide, dones: int, backs: int) -> None:
    state = wizard.done(wizard.start(guide, T0), T0)
    for _ in range(dones):
        if state.phase is not WizardPhase.IN_STEP:
            break
        state = wizard.done(state, T0)
    expected = min(dones, len(guide.steps) - 1)
    assert state.step_index == expected
    finished = dones >= len(guide.steps)
    assert state.phase is (WizardPhase.WAITING_FOR_ENTRA if finished else WizardPhase.IN_STEP)
    index = state.step_index
    for _ in range(backs):
        try:
            state = wizard.back(state, T0)
        except WizardTransitionError:
            assert state.step_index == 0
            break
    waited = 1 if finished else 0  # the first Back leaves the wait, not a step
    assert state.step_index == max(0, index - max(0, backs - waited))
